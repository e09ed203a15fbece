#!/usr/bin/env python3
"""The catalog through datafusion-python's FFI against the same query through a Rust
`SessionContext`, in one run on one SQLite file (SPEC §12; issue bar: within 1.5×).

Both sides plan and execute the statement each time and collect every batch (pyarrow
record batches on the Python side, zero-copy; Arrow batches on the Rust side). Run it in a
virtualenv where `jammi_catalog` is installed (`pip install ./python`):

    python python/benches/ffi.py [target/criterion/python_ffi/result.json]

`python3 benches/report.py` puts the result in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from datafusion import SessionContext

from jammi_catalog import JammiCatalog, _native

TENANT = "6f1c2a0e-3b9d-4c1e-9a7f-0d2b4e6f8a10"
ROWS = 100_000
QUERIES = {
    "point query by name": (
        "SELECT * FROM jammi.public.models WHERE model_id = 'bench/m-50000'", 300),
    "listing, 100 000 rows": ("SELECT * FROM jammi.public.models", 15),
}


def time_python(ctx: SessionContext, sql: str, runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        ctx.sql(sql).collect()
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion/python_ffi/result.json")
    with tempfile.TemporaryDirectory() as tmp:
        catalog = JammiCatalog(f"sqlite://{tmp}/bench.db", TENANT)
        catalog.execute(
            "INSERT INTO jammi.public.models (model_id, version, model_type, backend, task) "
            "SELECT 'bench/m-' || CAST(value AS VARCHAR), 1, 'embedding', 'candle', "
            f"'text_embedding' FROM generate_series(1, {ROWS})"
        )
        ctx = SessionContext()
        ctx.register_catalog_provider("jammi", catalog)
        results = {}
        for name, (sql, runs) in QUERIES.items():
            # Warm both paths (pool connections, page cache), then alternate the two.
            time_python(ctx, sql, 3)
            _native.time_in_rust(catalog._native, sql, 3)
            python, rust = [], []
            for _ in range(3):
                python += time_python(ctx, sql, runs)
                rust += _native.time_in_rust(catalog._native, sql, runs)
            results[name] = {
                "sql": sql,
                "python_median_s": statistics.median(python),
                "rust_median_s": statistics.median(rust),
                "runs": len(python),
            }
            ratio = results[name]["python_median_s"] / results[name]["rust_median_s"]
            print(f"{name}: datafusion-python {results[name]['python_median_s'] * 1e3:.3f} ms, "
                  f"Rust {results[name]['rust_median_s'] * 1e3:.3f} ms, ratio {ratio:.2f}")
        # `JammiCatalog.execute`: the statement in the catalog's own session (issue 24:
        # a point query within 0.4 ms), beside the same query in one Rust session.
        sql, runs = QUERIES["point query by name"]
        catalog.execute(sql)
        execute = []
        for _ in range(3):
            for _ in range(runs):
                start = time.perf_counter()
                catalog.execute(sql)
                execute.append(time.perf_counter() - start)
        executed = {
            "point query by name": {
                "sql": sql,
                "execute_median_s": statistics.median(execute),
                "rust_median_s": results["point query by name"]["rust_median_s"],
                "runs": len(execute),
            }
        }
        print(f"JammiCatalog.execute point query: "
              f"{executed['point query by name']['execute_median_s'] * 1e3:.3f} ms")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    execute_out = out.parent.parent / "python_execute" / "result.json"
    execute_out.parent.mkdir(parents=True, exist_ok=True)
    execute_out.write_text(json.dumps(executed, indent=2))


if __name__ == "__main__":
    main()
