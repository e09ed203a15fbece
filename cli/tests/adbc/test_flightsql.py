"""`jammi serve` through ADBC's Flight SQL driver, as a notebook user runs it."""

import contextlib
import time

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
            "webhook_deliveries",
            "webhooks",
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


# Every write a client can send, each naming a model `{}` of its own.
WRITES = {
    "register": "SELECT register_model('{}', NULL, 'embedding', 'candle', 'text_embedding')",
    "insert": "INSERT INTO models (model_id, version, model_type, backend, task) "
    "VALUES ('{}', 1, 'embedding', 'candle', 'text_embedding')",
    "alias": "SELECT set_model_alias('a-embed', '{}', 1)",
    "tag": "SELECT set_model_tag('a-embed', 1, '{}', 'v')",
    "delete": "DELETE FROM models WHERE model_id = 'a-embed' AND version = 1 AND '{}' <> ''",
    "delete_model": "SELECT delete_model('a-embed', 1) AS deleted_{}",
}


def write_code(uri, tok, sql):
    """The ADBC status of running `sql`, or None when it ran."""
    try:
        with connect(uri, tok) as conn, conn.cursor() as cur:
            cur.execute(sql)
            cur.fetchall()
    except adbc_driver_manager.Error as e:
        return e.status_code
    return None


def test_a_read_token_reads_and_every_write_is_denied(seeded, server):
    reader = token(seeded, "dashboard", TENANT_A, "read")
    with connect(server, reader) as conn, conn.cursor() as cur:
        cur.execute("SELECT model_id FROM models ORDER BY model_id")
        assert cur.fetchall() == [("a-embed",), ("base",)]
        cur.execute(
            "SELECT model_id FROM models_as_of(now()) ORDER BY model_id"
        )
        assert cur.fetchall() == [("a-embed",), ("base",)]
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        assert "jammi" in [o["catalog_name"] for o in objects]
        for kind, sql in WRITES.items():
            with pytest.raises(adbc_driver_manager.Error) as refused:
                cur.execute(sql.format(f"r_{kind}"))
                cur.fetchall()
            # The server's PERMISSION_DENIED, as ADBC names it.
            assert refused.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHORIZED, kind
            assert "permission denied" in str(refused.value), kind
        with pytest.raises(adbc_driver_manager.Error) as refused:
            cur.executemany(
                "INSERT INTO models (model_id, model_type, backend, task) "
                "VALUES ($1, 'embedding', 'candle', 'text_embedding')",
                [("r-many-1",), ("r-many-2",)],
            )
        assert refused.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHORIZED
        cur.execute("SELECT count(*) FROM events")
        events = cur.fetchall()
    admin = token(seeded, "ops", TENANT_A)
    assert names(server, admin) == ["a-embed", "base"]
    with connect(server, admin) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM events")
        assert cur.fetchall() == events, "a refused write appended an event"


def test_a_write_token_writes_but_cannot_delete(seeded, server):
    writer = token(seeded, "pipeline", TENANT_A, "write")
    for kind in ["register", "insert", "alias", "tag"]:
        assert write_code(server, writer, WRITES[kind].format(f"w_{kind}")) is None, kind
    for kind in ["delete", "delete_model"]:
        assert (
            write_code(server, writer, WRITES[kind].format(f"w_{kind}"))
            == adbc_driver_manager.AdbcStatusCode.UNAUTHORIZED
        ), kind
    with connect(server, writer) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO models (model_id, model_type, backend, task) "
            "VALUES ($1, 'embedding', 'candle', 'text_embedding')",
            [("w-many-1",), ("w-many-2",)],
        )
    assert names(server, writer) == [
        "a-embed",
        "base",
        "w-many-1",
        "w-many-2",
        "w_insert",
        "w_register",
    ]
    admin = token(seeded, "ops", TENANT_A)
    with connect(server, admin) as conn, conn.cursor() as cur:
        cur.execute("SELECT delete_model('w_insert', 1)")
        assert cur.fetchall() == [(True,)]


def test_an_expired_token_is_unauthenticated(seeded, server):
    brief = token(seeded, "brief", TENANT_A, "read", "--expires-in", "2s")
    assert names(server, brief) == ["a-embed", "base"]
    time.sleep(2.5)
    with pytest.raises(adbc_driver_manager.Error) as refused:
        names(server, brief)
    assert refused.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHENTICATED


@contextlib.contextmanager
def refused_connection(server, secret):
    """A cursor of a connection whose token will be refused before it closes: closing
    releases the server's prepared statement, which the refused token can no longer do,
    so what closing raises is left out."""
    conn = connect(server, secret)
    cur = conn.cursor()
    try:
        yield cur
    finally:
        for closable in (cur, conn):
            with contextlib.suppress(adbc_driver_manager.Error, RuntimeError):
                closable.close()


def test_a_revocation_holds_within_a_second_on_an_open_connection(seeded, server):
    # The server remembers a verified token for at most a second (jammi_catalog's
    # tokens::VERIFIED_TTL): a revocation made elsewhere (here the CLI) holds within it.
    doomed = token(seeded, "doomed", TENANT_A, "read")
    with refused_connection(server, doomed) as cur:
        cur.execute(NAMES)
        assert [row[0] for row in cur.fetchall()] == ["a-embed", "base"]
        jammi("token", "revoke", "doomed", db=seeded)
        time.sleep(1.0)
        with pytest.raises(adbc_driver_manager.Error) as refused:
            cur.execute(NAMES)
            cur.fetchall()
    assert refused.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHENTICATED


def test_expiry_holds_on_time_on_an_open_connection(seeded, server):
    # Used up to its expiry on one connection (the server remembers it), then refused
    # from the first call after it: expiry is checked on every call.
    before = time.time()
    brief = token(seeded, "brief-open", TENANT_A, "read", "--expires-in", "2s")
    after = time.time()  # the expiry is between before + 2 s and after + 2 s
    with refused_connection(server, brief) as cur:
        while time.time() < before + 1.8:
            cur.execute(NAMES)
            assert [row[0] for row in cur.fetchall()] == ["a-embed", "base"]
            time.sleep(0.05)
        time.sleep(max(0.0, after + 2.0 - time.time()) + 0.05)
        with pytest.raises(adbc_driver_manager.Error) as refused:
            cur.execute(NAMES)
            cur.fetchall()
    assert refused.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHENTICATED
