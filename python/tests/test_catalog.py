"""jammi_catalog in datafusion-python (SPEC §12), on a real database, through the
published ``datafusion`` wheel: reads in the analyst's session over DataFusion's FFI,
writes in the catalog's own session."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datafusion import SessionConfig, SessionContext, udf

from conftest import TENANT_A, TENANT_B
from jammi_catalog import CatalogError, JammiCatalog

MODEL_COLUMNS = "(model_id, version, model_type, backend, task, base_model_id)"


def insert_models(catalog: JammiCatalog, *rows: str) -> None:
    values = ", ".join(rows)
    result = catalog.execute(f"INSERT INTO jammi.public.models {MODEL_COLUMNS} VALUES {values}")
    assert result.column("count").to_pylist() == [len(rows)]


def seed(url: str) -> None:
    """Two global base models; tenant A's model in two versions; tenant B's model."""
    insert_models(
        JammiCatalog(url),
        "('base/mini', 1, 'embedding', 'candle', 'text_embedding', NULL)",
        "('base/bge', 1, 'embedding', 'candle', 'text_embedding', NULL)",
    )
    insert_models(
        JammiCatalog(url, TENANT_A),
        "('acme/emb', 1, 'embedding', 'candle', 'text_embedding', 'base/mini')",
        "('acme/emb', 2, 'embedding', 'candle', 'text_embedding', 'base/bge')",
    )
    insert_models(
        JammiCatalog(url, TENANT_B),
        "('globex/emb', 1, 'embedding', 'candle', 'text_embedding', 'base/mini')",
    )


def session(catalog: JammiCatalog, name: str = "jammi") -> SessionContext:
    ctx = SessionContext(SessionConfig().with_information_schema(True))
    ctx.register_catalog_provider(name, catalog)
    return ctx


def models(url: str, tenant: str | None = TENANT_A) -> list[tuple[str, int]]:
    """Every model version the scope sees, read in the catalog's own session."""
    table = JammiCatalog(url, tenant).execute(
        "SELECT model_id, version FROM jammi.public.models ORDER BY model_id, version"
    )
    return list(zip(table.column("model_id").to_pylist(), table.column("version").to_pylist()))


def test_the_catalog_registers_with_its_nine_tables(url):
    ctx = session(JammiCatalog(url, TENANT_A))
    tables = ctx.sql(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = 'jammi' AND table_schema = 'public' ORDER BY table_name"
    ).to_pydict()
    assert tables == {
        "table_schema": ["public"] * 9,
        "table_name": [
            "eval_runs",
            "events",
            "model_aliases",
            "model_tags",
            "models",
            "result_tables",
            "training_jobs",
            "webhook_deliveries",
            "webhooks",
        ],
    }


def test_an_alias_is_set_in_the_catalogs_session_and_read_in_yours(url):
    seed(url)
    catalog = JammiCatalog(url, TENANT_A)
    ctx = session(catalog)
    ctx.from_pandas(pd.DataFrame({"alias": ["champion"], "version": [2]}), name="promote")
    moved = catalog.execute(
        "SELECT set_model_alias('acme/emb', alias, version) AS moved FROM promote", ctx
    )
    assert moved.to_pydict() == {"moved": [True]}
    # Read over the FFI in the analyst's session: the alias and its event.
    aliases = ctx.sql(
        "SELECT model_id, alias, version FROM jammi.public.model_aliases"
    ).to_pydict()
    assert aliases == {"model_id": ["acme/emb"], "alias": ["champion"], "version": [2]}
    kinds = ctx.sql(
        "SELECT kind FROM jammi.public.events WHERE model_id = 'acme/emb' ORDER BY event_id"
    ).to_pydict()
    assert kinds["kind"][-1] == "alias_set"
    # Time travel runs in the catalog's session.
    then = catalog.execute(
        "SELECT count(*) AS n FROM model_aliases_as_of(TIMESTAMP '2000-01-01T00:00:00Z')"
    )
    assert then.to_pydict() == {"n": [0]}
    now = catalog.execute("SELECT version FROM model_aliases_as_of(now())")
    assert now.to_pydict() == {"version": [2]}


def test_two_tenants_under_two_names_see_only_their_own_and_global_rows(url):
    seed(url)
    ctx = SessionContext()
    ctx.register_catalog_provider("acme", JammiCatalog(url, TENANT_A))
    ctx.register_catalog_provider("globex", JammiCatalog(url, TENANT_B))
    query = "SELECT model_id, version, tenant_id FROM {}.public.models ORDER BY model_id, version"
    assert ctx.sql(query.format("acme")).to_pydict() == {
        "model_id": ["acme/emb", "acme/emb", "base/bge", "base/mini"],
        "version": [1, 2, 1, 1],
        "tenant_id": [TENANT_A, TENANT_A, None, None],
    }
    assert ctx.sql(query.format("globex")).to_pydict() == {
        "model_id": ["base/bge", "base/mini", "globex/emb"],
        "version": [1, 1, 1],
        "tenant_id": [None, None, TENANT_B],
    }


def test_a_filter_on_model_id_is_pushed_down_and_fetches_one_row(url):
    seed(url)
    ctx = session(JammiCatalog(url, TENANT_A))
    query = "SELECT model_id, version FROM jammi.public.models WHERE model_id = 'base/bge'"
    plan = "\n".join(ctx.sql(f"EXPLAIN {query}").to_pydict()["plan"])
    # Exact pushdown: the scan takes the filter and nothing above it filters again.
    assert "full_filters=[jammi.public.models.model_id = Utf8(\"base/bge\")]" in plan, plan
    assert "Filter:" not in plan and "FilterExec" not in plan, plan
    analyzed = "\n".join(ctx.sql(f"EXPLAIN ANALYZE {query}").to_pydict()["plan"])
    assert "rows_fetched=1," in analyzed or "rows_fetched=1]" in analyzed, analyzed
    assert ctx.sql(query).to_pydict() == {"model_id": ["base/bge"], "version": [1]}


def test_a_leaderboard_joins_a_pandas_frame_and_a_parquet_file(url, tmp_path):
    seed(url)
    ctx = session(JammiCatalog(url, TENANT_A))
    ctx.from_pandas(
        pd.DataFrame(
            {
                "model_id": ["acme/emb", "acme/emb", "base/mini", "base/bge", "globex/emb"],
                "version": [1, 2, 1, 1, 1],
                "ndcg": [0.712, 0.768, 0.641, 0.688, 0.9],
            }
        ),
        name="evals",
    )
    costs = tmp_path / "costs.parquet"
    pq.write_table(
        pa.table({"model_id": ["acme/emb", "base/mini", "base/bge", "globex/emb"],
                  "cost": [0.05, 0.02, 0.03, 0.01]}),
        costs,
    )
    ctx.register_parquet("costs", str(costs))
    board = ctx.sql(
        """
        SELECT m.model_id, m.version, m.base_model_id, e.ndcg, c.cost
        FROM jammi.public.models m
        JOIN evals e ON e.model_id = m.model_id AND e.version = m.version
        JOIN costs c ON c.model_id = m.model_id
        ORDER BY e.ndcg DESC
        """
    ).to_pandas()
    board = board.astype(object).where(board.notna(), None)
    # globex/emb scores best but is another tenant's model: it is not on acme's board.
    assert board.to_dict("list") == {
        "model_id": ["acme/emb", "acme/emb", "base/bge", "base/mini"],
        "version": [2, 1, 1, 1],
        "base_model_id": ["base/bge", "base/mini", None, None],
        "ndcg": [0.768, 0.712, 0.688, 0.641],
        "cost": [0.05, 0.05, 0.03, 0.02],
    }


def test_insert_through_execute_returns_its_count_and_is_visible(url):
    catalog = JammiCatalog(url, TENANT_A)
    result = catalog.execute(
        f"INSERT INTO jammi.public.models {MODEL_COLUMNS} VALUES "
        "('acme/a', NULL, 'embedding', 'candle', 'text_embedding', NULL), "
        "('acme/a', NULL, 'embedding', 'candle', 'text_embedding', NULL)"
    )
    assert result.to_pydict() == {"count": [2]}
    ctx = session(catalog)
    assert ctx.sql("SELECT model_id, version FROM jammi.public.models").to_pydict() == {
        "model_id": ["acme/a", "acme/a"],
        "version": [1, 2],
    }


def test_functions_register_and_delete_per_row_of_a_session_table(url):
    catalog = JammiCatalog(url, TENANT_A)
    ctx = session(catalog)
    ctx.from_pandas(pd.DataFrame({"name": ["acme/x", "acme/y", "acme/x"]}), name="staging")
    registered = catalog.execute(
        "SELECT name, register_model(name, NULL, 'embedding', 'candle', 'text_embedding') "
        "AS version FROM staging",
        ctx,
    )
    assert sorted(zip(registered.column("name").to_pylist(),
                      registered.column("version").to_pylist())) == [
        ("acme/x", 1), ("acme/x", 2), ("acme/y", 1),
    ]
    assert models(url) == [("acme/x", 1), ("acme/x", 2), ("acme/y", 1)]

    ctx.from_pandas(pd.DataFrame({"name": ["acme/x"], "version": [2]}), name="retire")
    deleted = catalog.execute(
        "SELECT delete_model(name, version) AS deleted FROM retire", ctx
    )
    assert deleted.to_pydict() == {"deleted": [True]}
    assert models(url) == [("acme/x", 1), ("acme/y", 1)]
    # The session's own table was read, not changed.
    assert ctx.sql("SELECT count(*) AS n FROM staging").to_pydict() == {"n": [3]}


def test_delete_through_execute_checks_references(url):
    seed(url)
    catalog = JammiCatalog(url, TENANT_A)
    insert_models(catalog, "('acme/base', 1, 'embedding', 'candle', 'text_embedding', NULL)",
                  "('acme/free', 1, 'embedding', 'candle', 'text_embedding', NULL)")
    catalog.execute(
        "INSERT INTO jammi.public.eval_runs (run_id, model_id, model_version, eval_type, metrics) "
        "VALUES ('run-1', 'acme/base', 1, 'retrieval', '{\"ndcg\": 0.7}')"
    )
    with pytest.raises(CatalogError, match="acme/base version 1 is still referenced by eval_runs"):
        catalog.execute("DELETE FROM jammi.public.models WHERE model_id LIKE 'acme/%'")
    # All or nothing: the unreferenced models of the same DELETE are still there.
    assert [m for m in models(url) if m[0] in ("acme/base", "acme/free")] == [
        ("acme/base", 1), ("acme/free", 1),
    ]
    deleted = catalog.execute("DELETE FROM jammi.public.models WHERE model_id = 'acme/free'")
    assert deleted.to_pydict() == {"count": [1]}
    assert ("acme/free", 1) not in models(url)


# Every write tried in the analyst's own session, with the catalog functions registered the
# way SPEC §12 shows; each must be refused before it runs.
FOREIGN_WRITES = [
    # The only form the catalog's own session accepts: still refused here, where the
    # catalog cannot see the statement.
    "SELECT delete_model(model_id, version) FROM jammi.public.models WHERE model_id = 'acme/emb'",
    "SELECT register_model('acme/new', NULL, 'embedding', 'candle', 'text_embedding')",
    # Placements the catalog's session refuses (SPEC §7).
    "SELECT CASE WHEN model_id = 'nothing' THEN delete_model(model_id, version) END "
    "FROM jammi.public.models",
    "SELECT COALESCE(NULL, delete_model(model_id, version)) FROM jammi.public.models",
    "SELECT * FROM jammi.public.models WHERE model_id = 'nothing' AND delete_model(model_id, version)",
    "SELECT delete_model(model_id, version) FROM jammi.public.models LIMIT 1",
    "SELECT count(*) FROM (SELECT delete_model(model_id, version) FROM jammi.public.models)",
    # DML the FFI carries (INSERT) or not (DELETE).
    f"INSERT INTO jammi.public.models {MODEL_COLUMNS} "
    "VALUES ('acme/new', 2.5, 'embedding', 'candle', 'text_embedding', NULL)",
    f"INSERT INTO jammi.public.models {MODEL_COLUMNS} "
    "VALUES ('acme/new', 3, 'embedding', 'candle', 'text_embedding', NULL)",
    "DELETE FROM jammi.public.models WHERE model_id = 'acme/emb'",
]


@pytest.mark.parametrize("statement", FOREIGN_WRITES)
def test_writes_in_the_analysts_session_are_refused_and_write_nothing(url, statement):
    seed(url)
    catalog = JammiCatalog(url, TENANT_A)
    ctx = session(catalog)
    for function in catalog.functions():
        ctx.register_udf(udf(function))
    before = models(url)
    with pytest.raises(Exception, match="cannot run in this session|DELETE not supported"):
        ctx.sql(statement).collect()
    assert models(url) == before


# The same placements in the catalog's own session: refused by its SQL rules.
REFUSED_IN_EXECUTE = [
    "SELECT CASE WHEN model_id = 'nothing' THEN delete_model(model_id, version) END "
    "FROM jammi.public.models",
    "SELECT * FROM jammi.public.models WHERE model_id = 'nothing' AND delete_model(model_id, version)",
    "SELECT delete_model(model_id, version) FROM jammi.public.models LIMIT 1",
    "SELECT register_model(name, NULL, 'embedding', 'candle', 'text_embedding') FROM staging LIMIT 1",
]


@pytest.mark.parametrize("statement", REFUSED_IN_EXECUTE)
def test_unsafe_placements_are_refused_by_execute(url, statement):
    seed(url)
    catalog = JammiCatalog(url, TENANT_A)
    ctx = session(catalog)
    ctx.from_pandas(pd.DataFrame({"name": ["acme/p", "acme/q"]}), name="staging")
    before = models(url)
    with pytest.raises(CatalogError, match="cannot be called"):
        catalog.execute(statement, ctx)
    assert models(url) == before


def test_execute_refuses_a_write_to_a_session_table_and_ddl(url):
    catalog = JammiCatalog(url, TENANT_A)
    ctx = SessionContext()
    ctx.from_pandas(pd.DataFrame({"name": ["a"]}), name="staging")
    with pytest.raises(CatalogError):
        catalog.execute("INSERT INTO staging VALUES ('b')", ctx)
    assert ctx.sql("SELECT name FROM staging").to_pydict() == {"name": ["a"]}
    with pytest.raises(CatalogError, match="DDL not supported"):
        catalog.execute("CREATE TABLE t AS SELECT 1 AS x")
    with pytest.raises(CatalogError):
        catalog.execute("SELECT 1; SELECT 2")


def test_bad_input_raises_the_catalogs_message_and_writes_nothing(url):
    with pytest.raises(CatalogError, match=r"invalid tenant: \"acme\" is not a UUID"):
        JammiCatalog(url, tenant="acme")
    with pytest.raises(CatalogError, match="invalid database url.*expected sqlite://PATH"):
        JammiCatalog("mysql://localhost/jammi")
    catalog = JammiCatalog(url, TENANT_A)
    with pytest.raises(CatalogError, match="invalid config_json: is not valid JSON"):
        catalog.execute(
            "SELECT register_model('acme/j', NULL, 'embedding', 'candle', 'text_embedding', "
            "NULL, NULL, '{not json')"
        )
    with pytest.raises(CatalogError, match="invalid config_json: is not valid JSON"):
        catalog.execute(
            "INSERT INTO jammi.public.models (model_id, model_type, backend, task, config_json) "
            "VALUES ('acme/j', 'embedding', 'candle', 'text_embedding', '{}'), "
            "('acme/k', 'embedding', 'candle', 'text_embedding', '{not json')"
        )
    assert models(url) == []


def test_the_spec_example_runs(url):
    seed(url)
    cat = JammiCatalog(url, tenant=TENANT_A)
    ctx = SessionContext()
    ctx.register_catalog_provider("jammi", cat)
    for f in cat.functions():
        ctx.register_udf(udf(f))
    frame = ctx.sql("SELECT * FROM jammi.public.models WHERE model_id = 'acme/emb'").to_pandas()
    assert frame["version"].tolist() == [1, 2]


# Each write `execute` runs, and the level it needs (SPEC §14).
GRADED_WRITES = [
    ("register_model()", "SELECT register_model('new', NULL, 'embedding', 'candle', 'ner')"),
    ("INSERT", f"INSERT INTO jammi.public.models {MODEL_COLUMNS} "
               "VALUES ('new', 1, 'embedding', 'candle', 'ner', NULL)"),
    ("set_model_alias()", "SELECT set_model_alias('acme/emb', 'champion', 1)"),
    ("DELETE", "DELETE FROM jammi.public.models WHERE model_id = 'acme/emb' AND version = 2"),
    ("delete_model()", "SELECT delete_model('acme/emb', 2)"),
]


def test_execute_is_graded_by_the_catalogs_access_level(url):
    seed(url)
    outcomes = []
    for label, statement in GRADED_WRITES:
        row = [label]
        for access in ["read", "write", "admin"]:
            before = models(url)
            events = JammiCatalog(url, TENANT_A).execute("SELECT count(*) AS n FROM jammi.public.events")
            try:
                JammiCatalog(url, TENANT_A, access=access).execute(statement)
                row.append("ok")
            except CatalogError as e:
                assert f"needs {'admin' if 'DELETE' in label or 'delete' in label else 'write'} access" in str(e), str(e)
                assert models(url) == before, f"{label} at {access} changed the models"
                assert (
                    JammiCatalog(url, TENANT_A).execute("SELECT count(*) AS n FROM jammi.public.events")
                    == events
                ), f"{label} at {access} appended an event"
                row.append("denied")
            # Start each level from the seeded catalog again.
            JammiCatalog(url, TENANT_A).execute(
                "DELETE FROM jammi.public.model_aliases WHERE model_id = 'acme/emb'"
            )
            for stray in ["new"]:
                if (stray, 1) in models(url):
                    JammiCatalog(url, TENANT_A).execute(f"SELECT delete_model('{stray}', 1)")
            if ("acme/emb", 2) not in models(url):
                insert_models(
                    JammiCatalog(url, TENANT_A),
                    "('acme/emb', 2, 'embedding', 'candle', 'text_embedding', 'base/bge')",
                )
        outcomes.append(row)
    assert outcomes == [
        ["register_model()", "denied", "ok", "ok"],
        ["INSERT", "denied", "ok", "ok"],
        ["set_model_alias()", "denied", "ok", "ok"],
        ["DELETE", "denied", "denied", "ok"],
        ["delete_model()", "denied", "denied", "ok"],
    ]
    with pytest.raises(CatalogError, match="read, write or admin"):
        JammiCatalog(url, TENANT_A, access="owner")
