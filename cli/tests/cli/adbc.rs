//! The ADBC suite (`cli/tests/adbc/`, pytest): `jammi serve` through a real client nobody
//! here wrote, Python's `adbc-driver-flightsql`. The pinned packages are installed once into
//! a virtualenv under the target directory (re-installed when the pins change).

use std::path::Path;
use std::process::Command;

#[test]
fn adbc_flight_sql_suite_passes() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("note: python3 is not installed; skipping the ADBC suite");
        return;
    }
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/adbc");
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("adbc-venv");
    let python = venv.join("bin/python");
    let requirements = std::fs::read_to_string(suite.join("requirements.txt")).unwrap();
    let stamp = venv.join("installed-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(requirements.as_str()) {
        let _ = std::fs::remove_dir_all(&venv);
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(suite.join("requirements.txt")));
        std::fs::write(&stamp, &requirements).unwrap();
    }
    run(Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&suite)
        .env("JAMMI_BIN", env!("CARGO_BIN_EXE_jammi")));
}

fn run(command: &mut Command) {
    let out = command.output().expect("start the command");
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // pytest's summary, for the test log.
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}
