#!/usr/bin/env python3
"""What a notebook user sees through ADBC's Flight SQL driver (issue 24): one connection to
a `jammi serve` on loopback, on one SQLite file, in one run:

- `SELECT 1` (the client's and the protocol's own floor),
- `SELECT $1` with one parameter: the four calls ADBC makes for any parameterized
  statement (CreatePreparedStatement, DoPut, GetFlightInfo, DoGet; `SELECT 1` makes two),
  with no catalog work: the floor of the two below,
- a parameterized point query (`cursor.execute(sql, (name, version))`),
- a parameterized register (`SELECT register_model($1, …)`, a new version each time),

each `cursor.execute` + `fetchall`, medians of many. Bars: the point query within 1.25×
of `SELECT 1`, the register within 1.5×. Run it in the ADBC virtualenv the test suite
makes (target/tmp/adbc-venv, from cli/tests/adbc/requirements.txt), with the release
`jammi` built:

    target/tmp/adbc-venv/bin/python cli/benches/adbc.py [target/release/jammi] \
        [target/criterion/adbc/result.json]

`python3 benches/report.py` puts the result in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql

TENANT = "6f1c2a0e-3b9d-4c1e-9a7f-0d2b4e6f8a10"
RUNS = 2000
WARMUP = 200

STATEMENTS = {
    "SELECT 1": ("SELECT 1", lambda i: None),
    "SELECT $1": ("SELECT $1", lambda i: ("m-17",)),
    "point query": (
        "SELECT model_id, version FROM models WHERE model_id = $1 AND version = $2",
        lambda i: ("m-17", 1),
    ),
    "register": (
        "SELECT register_model($1, NULL, 'embedding', 'candle', 'text_embedding')",
        lambda i: ("bench-register",),
    ),
}


def jammi(binary: str, db: str, *args: str) -> str:
    done = subprocess.run([binary, *args, "--db", db], capture_output=True, text=True, check=True)
    return done.stdout


def median_seconds(cursor, sql: str, parameters, runs: int) -> float:
    seconds = []
    for i in range(WARMUP + runs):
        values = parameters(i)
        start = time.perf_counter()
        if values is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, values)
        cursor.fetchall()
        if i >= WARMUP:
            seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/jammi"
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "target/criterion/adbc/result.json")
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite://{tmp}/bench.db"
        jammi(binary, db, "--tenant", TENANT, "-c",
              "INSERT INTO jammi.public.models (model_id, version, model_type, backend, task) "
              "SELECT 'm-' || CAST(value AS VARCHAR), 1, 'embedding', 'candle', "
              "'text_embedding' FROM generate_series(1, 1000)")
        token = jammi(binary, db, "token", "create", "--tenant", TENANT, "--name", "bench",
                      "--access", "write").strip()
        server = subprocess.Popen([binary, "serve", "--db", db, "--listen", "127.0.0.1:0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            uri = "grpc://" + server.stdout.readline().rsplit("grpc://", 1)[1].strip()
            kwargs = {"adbc.flight.sql.authorization_header": f"Bearer {token}"}
            results = {}
            with flightsql.connect(uri, db_kwargs=kwargs, autocommit=True) as conn:
                with conn.cursor() as cur:
                    # Interleaved rounds, so that drift on the machine touches all alike.
                    rounds = 4
                    samples = {name: [] for name in STATEMENTS}
                    for _ in range(rounds):
                        for name, (sql, parameters) in STATEMENTS.items():
                            samples[name].append(
                                median_seconds(cur, sql, parameters, RUNS // rounds))
                    for name in STATEMENTS:
                        results[name] = {"median_s": statistics.median(samples[name])}
        finally:
            server.terminate()
            server.wait(timeout=60)
    floor = results["SELECT 1"]["median_s"]
    parameterized = results["SELECT $1"]["median_s"]
    for name, r in results.items():
        r["vs_select_1"] = r["median_s"] / floor
        r["vs_select_param"] = r["median_s"] / parameterized
        print(f"{name}: {r['median_s'] * 1e3:.3f} ms ({r['vs_select_1']:.2f}x SELECT 1, "
              f"{r['vs_select_param']:.2f}x SELECT $1)")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
