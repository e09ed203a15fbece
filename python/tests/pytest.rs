//! The Python suite (`python/tests/`, pytest): the package installed the way the README
//! says (`pip install ./python`, which builds the native module with maturin into the
//! workspace's target directory, reusing the test build's DataFusion), then exercised
//! through the published `datafusion` wheel. The pinned packages are installed once into a
//! virtualenv under the target directory (re-installed when the pins change).

use std::path::Path;
use std::process::Command;

#[test]
fn python_suite_passes() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("note: python3 is not installed; skipping the Python suite");
        return;
    }
    let package = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-venv");
    let python = venv.join("bin/python");
    let requirements = std::fs::read_to_string(package.join("tests/requirements.txt")).unwrap();
    let stamp = venv.join("installed-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(requirements.as_str()) {
        let _ = std::fs::remove_dir_all(&venv);
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        run(Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "-r"])
            .arg(package.join("tests/requirements.txt")));
        std::fs::write(&stamp, &requirements).unwrap();
    }
    // The README's install command; the venv's maturin builds it (no download).
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-build-isolation",
            "--force-reinstall",
            "--no-deps",
        ])
        .arg(package)
        .env("PATH", path_with(&venv.join("bin"))));
    // Not from the package's directory: `python -m` puts the working directory first on
    // the import path, where the sources (without the native module) would shadow the
    // installed package.
    run(Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(package.join("tests"))
        .current_dir(&venv));
}

fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
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
