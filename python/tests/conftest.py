"""A fresh catalog database per test: a SQLite file always, and a fresh schema of the
PostgreSQL server of ``JAMMI_TEST_PG_URL`` when it is set (skipped, with the reason,
otherwise), so each test body runs on both backends."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

TENANT_A = "6f1c2a0e-3b9d-4c1e-9a7f-0d2b4e6f8a10"
TENANT_B = "0b7e3c91-5d2a-4f86-8c1e-2a9f4b6d7e30"


def _psql(base: str, sql: str) -> None:
    subprocess.run(["psql", base, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'jammi.db'}"
        return
    base = os.environ.get("JAMMI_TEST_PG_URL")
    if not base:
        pytest.skip("JAMMI_TEST_PG_URL is not set; skipping the Postgres lane")
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed; skipping the Postgres lane")
    schema = f"jammi_py_{uuid.uuid4().hex}"
    _psql(base, f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-c%20search_path%3D{schema}"
    _psql(base, f"DROP SCHEMA {schema} CASCADE")
