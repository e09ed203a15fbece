//! The pytest suites' plumbing: a virtualenv with pinned packages under the target
//! directory, installed once and again only when the pins change, and a command runner
//! that fails the test with the command's output.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python of a virtualenv at `dir` with the packages of `requirements` installed, or
/// `None` (with a note) when `python3` is not on the machine.
pub fn virtualenv(dir: &Path, requirements: &Path) -> Option<PathBuf> {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("note: python3 is not installed; skipping this Python suite");
        return None;
    }
    let python = dir.join("bin/python");
    let pins = std::fs::read_to_string(requirements).expect("read the requirements");
    let stamp = dir.join("installed-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(pins.as_str()) {
        let _ = std::fs::remove_dir_all(dir);
        run(Command::new("python3").args(["-m", "venv"]).arg(dir));
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(requirements));
        std::fs::write(&stamp, &pins).expect("write the stamp");
    }
    Some(python)
}

/// Runs `command`; panics with its stdout and stderr when it fails, else prints its stdout
/// (pytest's summary, for the test log).
pub fn run(command: &mut Command) {
    let out = command.output().expect("start the command");
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}
