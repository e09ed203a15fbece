//! The ADBC suite (`cli/tests/adbc/`, pytest): `jammi serve` through a real client nobody
//! here wrote, Python's `adbc-driver-flightsql`, from pinned packages in a virtualenv under
//! the target directory.

use std::path::Path;
use std::process::Command;

use jammi_testkit::python::{run, virtualenv};

#[test]
fn adbc_flight_sql_suite_passes() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/adbc");
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("adbc-venv");
    let Some(python) = virtualenv(&venv, &suite.join("requirements.txt")) else {
        return;
    };
    run(Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&suite)
        .env("JAMMI_BIN", env!("CARGO_BIN_EXE_jammi")));
}
