//! The Python suite (`python/tests/`, pytest): the package installed the way the README
//! says (`pip install ./python`, which builds the native module with maturin into the
//! workspace's target directory, reusing the test build's DataFusion), then exercised
//! through the published `datafusion` wheel, from pinned packages in a virtualenv under
//! the target directory.

use std::path::Path;
use std::process::Command;

use jammi_testkit::python::{run, virtualenv};

#[test]
fn python_suite_passes() {
    let package = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-venv");
    let Some(python) = virtualenv(&venv, &package.join("tests/requirements.txt")) else {
        return;
    };
    // The README's install command, built by the virtualenv's pinned maturin.
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--no-build-isolation"])
        .args(["--force-reinstall", "--no-deps"])
        .arg(package)
        .env("PATH", path));
    // Not from the package's directory: `python -m` puts the working directory first on
    // the import path, where the sources (without the native module) would shadow the
    // installed package.
    run(Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(package.join("tests"))
        .current_dir(&venv));
}
