"""`jammi serve` through ADBC's Flight SQL driver, as a notebook user runs it."""

import adbc_driver_manager
import pytest

from conftest import TENANT_A, TENANT_B, connect, jammi, token

NAMES = "SELECT DISTINCT model_id FROM jammi.public.models ORDER BY model_id"


def names(uri, tok):
    with connect(uri, tok) as conn, conn.cursor() as cur:
        cur.execute(NAMES)
        return [row[0] for row in cur.fetchall()]


def test_each_token_sees_only_its_scope(seeded, server):
    a = token(seeded, "a", TENANT_A)
    b = token(seeded, "b", TENANT_B)
    operator = token(seeded, "operator")
    assert names(server, a) == ["a-embed", "base"]
    assert names(server, b) == ["b-embed", "base"]
    assert names(server, operator) == ["base"]


@pytest.mark.parametrize("which", ["none", "wrong", "revoked"])
def test_no_valid_token_is_unauthenticated_and_runs_nothing(seeded, server, which):
    good = token(seeded, "good", TENANT_A)
    revoked = token(seeded, "revoked", TENANT_A)
    jammi("token", "revoke", "revoked", db=seeded)
    presented = {
        "none": None,
        "wrong": good[:-4] + ("0000" if not good.endswith("0000") else "1111"),
        "revoked": revoked,
    }[which]
    with pytest.raises(adbc_driver_manager.Error) as refused:
        with connect(server, presented) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT register_model('intruder', NULL, 'embedding', 'candle', "
                "'text_embedding')"
            )
            cur.fetchall()
    assert refused.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHENTICATED
    assert "intruder" not in names(server, good)


def test_execute_binds_parameters(seeded, server):
    with connect(server, token(seeded, "a", TENANT_A)) as conn, conn.cursor() as cur:
        query = "SELECT model_id, version FROM models WHERE model_id = $1 AND version >= $2"
        cur.execute(query, ("a-embed", 1))
        assert cur.fetchall() == [("a-embed", 1)]
        cur.execute(query, ("b-embed", 1))
        assert cur.fetchall() == []


def test_insert_through_execute_is_then_visible(seeded, server):
    with connect(server, token(seeded, "a", TENANT_A)) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO jammi.public.models (model_id, version, model_type, backend, task) "
            "VALUES ('a-new', 1, 'embedding', 'candle', 'text_embedding')"
        )
        assert cur.fetchall() == [(1,)]
        # Rows without a version: registered in the order sent, in one statement.
        cur.executemany(
            "INSERT INTO models (model_id, model_type, backend, task) "
            "VALUES ('a-many', $1, 'candle', 'text_embedding')",
            [("first",), ("second",), ("third",)],
        )
        cur.execute(
            "SELECT version, model_type FROM models WHERE model_id = 'a-many' ORDER BY version"
        )
        assert cur.fetchall() == [(1, "first"), (2, "second"), (3, "third")]
    assert names(server, token(seeded, "a2", TENANT_A)) == ["a-embed", "a-many", "a-new", "base"]
    assert "a-new" not in names(server, token(seeded, "b", TENANT_B))


def test_get_objects_lists_the_catalog(seeded, server):
    with connect(server, token(seeded, "a", TENANT_A)) as conn:
        objects = conn.adbc_get_objects().read_all().to_pylist()
        catalogs = {o["catalog_name"]: o for o in objects}
        assert "jammi" in catalogs
        schemas = {s["db_schema_name"]: s for s in catalogs["jammi"]["catalog_db_schemas"]}
        tables = sorted(t["table_name"] for t in schemas["public"]["db_schema_tables"])
        assert tables == [
            "eval_runs",
            "events",
            "model_aliases",
            "model_tags",
            "models",
            "result_tables",
            "training_jobs",
        ]
        schema = conn.adbc_get_table_schema("models", catalog_filter="jammi", db_schema_filter="public")
        assert "model_id" in schema.names and "tenant_id" in schema.names


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE t AS SELECT 1 AS x",
        "CREATE EXTERNAL TABLE etc STORED AS CSV LOCATION '/etc/passwd'",
        "SET datafusion.execution.batch_size = 1",
        "COPY (SELECT 1) TO '{copy}'",
    ],
)
def test_what_touches_the_server_is_refused(seeded, server, sql, tmp_path):
    copy = tmp_path / "copy.csv"
    with connect(server, token(seeded, "a", TENANT_A)) as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as refused:
            cur.execute(sql.format(copy=copy))
            cur.fetchall()
    # The server's PERMISSION_DENIED, as ADBC names it.
    assert refused.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHORIZED
    assert "not allowed on the server" in str(refused.value)
    assert not copy.exists()
