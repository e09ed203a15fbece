"""Fixtures for the ADBC suite: a fresh catalog per test on SQLite (and on PostgreSQL when
JAMMI_TEST_PG_URL is set), a `jammi serve` on a free port, and tokens made by `jammi token`.

The `jammi` binary comes from JAMMI_BIN (set by the Rust test that runs this suite)."""

import os
import subprocess
import uuid

import adbc_driver_flightsql.dbapi as flightsql
import pytest

JAMMI = os.environ["JAMMI_BIN"]
PG_URL = os.environ.get("JAMMI_TEST_PG_URL")

TENANT_A = "aaaaaaaa-0000-4000-8000-000000000001"
TENANT_B = "bbbbbbbb-0000-4000-8000-000000000002"


def jammi(*args, db):
    """Runs `jammi` on `db`; returns its stdout, failing the test on a non-zero exit."""
    done = subprocess.run(
        [JAMMI, *args, "--db", db], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    """The URL of a new catalog database."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'catalog.db'}"
        return
    if not PG_URL:
        pytest.skip("JAMMI_TEST_PG_URL is not set; skipping the Postgres lane")
    schema = f"jammi_adbc_{uuid.uuid4().hex}"
    subprocess.run(["psql", PG_URL, "-qc", f"CREATE SCHEMA {schema}"], check=True)
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-c%20search_path%3D{schema}"
    subprocess.run(["psql", PG_URL, "-qc", f"DROP SCHEMA {schema} CASCADE"], check=True)


@pytest.fixture
def seeded(db):
    """`db` with models of tenants A and B and global base models."""
    register = (
        "SELECT register_model('{}', NULL, 'embedding', 'candle', 'text_embedding')"
    )
    jammi("-c", register.format("base"), db=db)
    jammi("--tenant", TENANT_A, "-c", register.format("a-embed"), db=db)
    jammi("--tenant", TENANT_B, "-c", register.format("b-embed"), db=db)
    return db


@pytest.fixture
def server(db):
    """A `jammi serve` on `db`; yields its grpc:// URI."""
    process = subprocess.Popen(
        [JAMMI, "serve", "--db", db, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = process.stdout.readline()
    assert "listening on grpc://" in line, line
    yield "grpc://" + line.rsplit("grpc://", 1)[1].strip()
    process.terminate()
    assert process.wait(timeout=60) == 0


def token(db, name, tenant=None, access="admin", *options):
    """A new token labelled `name` for `tenant` (unscoped when None) with `access`."""
    args = ["token", "create", "--name", name, "--access", access, *options]
    if tenant:
        args += ["--tenant", tenant]
    return jammi(*args, db=db).strip()


def connect(uri, token=None):
    """An ADBC DB-API connection presenting `token` (none when None)."""
    kwargs = {}
    if token is not None:
        kwargs["adbc.flight.sql.authorization_header"] = f"Bearer {token}"
    return flightsql.connect(uri, db_kwargs=kwargs, autocommit=True)
