//! `jammi serve` through arrow-flight's own Flight SQL client, on both backends: the
//! server is the built binary, started on a free port of a test database.

use std::process::Stdio;
use std::time::Duration;

use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables};
use arrow_flight::{FlightInfo, decode::FlightRecordBatchStream};
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use futures::TryStreamExt;
use jammi_testkit::fixture::{TENANT_A, TENANT_B, populate};
use jammi_testkit::{TestDb, backend_tests, cells};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::Code;
use tonic::transport::Channel;

/// A `jammi serve` process on a free port of 127.0.0.1, killed when dropped.
pub struct Server {
    child: Child,
    pub address: String,
}

impl Server {
    pub async fn start(db: &str) -> Server {
        Server::start_with(db, &[]).await
    }

    /// A server with extra `jammi serve` options.
    pub async fn start_with(db: &str, options: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_jammi"))
            .args(["serve", "--db", db, "--listen", "127.0.0.1:0"])
            .args(options)
            .stdout(Stdio::piped())
            .stderr(server_log())
            .kill_on_drop(true)
            .spawn()
            .expect("start jammi serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("jammi serve prints its address")
            .unwrap()
            .expect("a line");
        let address = line
            .rsplit("://")
            .next()
            .expect("listening on grpc://ADDR")
            .to_owned();
        Server { child, address }
    }

    /// A client of this server presenting `token` (none when `None`).
    pub async fn client(&self, token: Option<&str>) -> FlightSqlServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.address))
            .unwrap()
            .connect()
            .await
            .expect("connect to jammi serve");
        let mut client = FlightSqlServiceClient::new(channel);
        if let Some(token) = token {
            client.set_token(token.to_owned());
        }
        client
    }

    /// Kills the server with SIGKILL (`kill -9`: nothing of it runs after) and waits.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill jammi serve");
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running") as i32;
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("jammi serve exits after SIGTERM")
            .unwrap()
    }
}

/// The server's log: discarded, or appended to the file `JAMMI_TEST_SERVER_LOG` names.
fn server_log() -> Stdio {
    match std::env::var("JAMMI_TEST_SERVER_LOG") {
        Ok(path) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_or_else(|_| Stdio::null(), Stdio::from),
        Err(_) => Stdio::null(),
    }
}

/// `jammi token create` on `db` for an admin token (every call allowed); returns the
/// token it prints.
pub fn create_token(db: &str, tenant: Option<&str>, name: &str) -> String {
    create_token_with(db, tenant, name, &["--access", "admin"])
}

/// `jammi token create` on `db` with `options` (e.g. `--access read`); returns the token.
pub fn create_token_with(db: &str, tenant: Option<&str>, name: &str, options: &[&str]) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_jammi"));
    cmd.args(["token", "create", "--db", db, "--name", name]);
    if let Some(tenant) = tenant {
        cmd.args(["--tenant", tenant]);
    }
    cmd.args(options);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Every batch behind `info`'s endpoints.
pub async fn fetch(
    client: &mut FlightSqlServiceClient<Channel>,
    info: FlightInfo,
) -> Result<Vec<RecordBatch>, arrow_flight::error::FlightError> {
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("a ticket");
        let stream: FlightRecordBatchStream = client.do_get(ticket).await?;
        batches.extend(stream.try_collect::<Vec<_>>().await?);
    }
    Ok(batches)
}

/// Runs `sql` through the query path (GetFlightInfo + DoGet) and returns its cells.
pub async fn query(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Vec<Vec<String>> {
    let info = client
        .execute(sql.to_owned(), None)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    cells(
        &fetch(client, info)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}")),
    )
}

/// The gRPC code a failed query path gives.
async fn query_code(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Code {
    let error = match client.execute(sql.to_owned(), None).await {
        Ok(info) => match fetch(client, info).await {
            Ok(rows) => panic!("{sql}: expected an error, got {rows:?}"),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    };
    code_in(&error)
}

/// The code of a failed call: the client flattens a status into its error's text, which
/// carries the code's description.
fn code_in(error: &str) -> Code {
    [
        Code::Unauthenticated,
        Code::PermissionDenied,
        Code::InvalidArgument,
        Code::NotFound,
        Code::ResourceExhausted,
        Code::DeadlineExceeded,
    ]
    .into_iter()
    .find(|code| error.contains(code.description()))
    .unwrap_or_else(|| panic!("no gRPC code in {error:?}"))
}

fn column(rows: &[Vec<String>]) -> Vec<String> {
    rows.iter().map(|r| r[0].clone()).collect()
}

const NAMES: &str = "SELECT DISTINCT model_id FROM jammi.public.models ORDER BY model_id";

async fn each_token_sees_only_its_scope(db: &TestDb) {
    populate(&db.catalog).await;
    let a = create_token(&db.url, Some(TENANT_A), "a");
    let b = create_token(&db.url, Some(TENANT_B), "b");
    let operator = create_token(&db.url, None, "operator");
    let server = Server::start(&db.url).await;
    let global = ["base", "g-embed", "g-ner"];
    for (token, own) in [(&a, Some("a")), (&b, Some("b")), (&operator, None)] {
        let mut client = server.client(Some(token)).await;
        let mut expected: Vec<String> = global.iter().map(|s| s.to_string()).collect();
        if let Some(prefix) = own {
            expected.extend([format!("{prefix}-embed"), format!("{prefix}-ner")]);
        }
        expected.sort();
        assert_eq!(column(&query(&mut client, NAMES).await), expected);
        // Unqualified names resolve in jammi.public.
        assert_eq!(
            column(
                &query(
                    &mut client,
                    "SELECT DISTINCT model_id FROM models ORDER BY 1"
                )
                .await
            ),
            expected
        );
    }
}

/// No token, a wrong one, a revoked one: UNAUTHENTICATED, and nothing runs.
async fn calls_without_a_valid_token_run_nothing(db: &TestDb) {
    let good = create_token(&db.url, Some(TENANT_A), "good");
    let revoked = create_token(&db.url, Some(TENANT_A), "revoked");
    let server = Server::start(&db.url).await;
    let register =
        "SELECT register_model('intruder', NULL, 'embedding', 'candle', 'text_embedding')";
    let mut wrong = good.clone();
    wrong.replace_range(wrong.len() - 4.., "0000");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_jammi"))
        .args(["token", "revoke", "--db", &db.url, "revoked"])
        .output()
        .unwrap();
    assert!(out.status.success());
    for token in [
        None,
        Some(wrong.as_str()),
        Some(revoked.as_str()),
        Some("Bearer"),
    ] {
        let mut client = server.client(token).await;
        assert_eq!(
            query_code(&mut client, register).await,
            Code::Unauthenticated,
            "{token:?}"
        );
        let update = client.execute_update(register.to_owned(), None).await;
        assert_eq!(
            code_in(&update.unwrap_err().to_string()),
            Code::Unauthenticated
        );
        let catalogs = client.get_catalogs().await;
        assert_eq!(
            code_in(&catalogs.unwrap_err().to_string()),
            Code::Unauthenticated
        );
    }
    let mut client = server.client(Some(&good)).await;
    assert_eq!(
        query(
            &mut client,
            "SELECT count(*) FROM jammi.public.models WHERE model_id = 'intruder'"
        )
        .await,
        vec![vec!["0".to_owned()]]
    );
}

/// A Basic handshake with the token as password hands back the bearer.
async fn a_basic_handshake_yields_the_bearer(db: &TestDb) {
    populate(&db.catalog).await;
    let token = create_token(&db.url, Some(TENANT_A), "notebook");
    let server = Server::start(&db.url).await;
    let mut client = server.client(None).await;
    client.handshake("anyone", &token).await.expect("handshake");
    assert_eq!(client.token(), Some(&token));
    assert!(column(&query(&mut client, NAMES).await).contains(&"a-embed".to_owned()));
    let mut stranger = server.client(None).await;
    assert!(stranger.handshake("anyone", "jammi_nope").await.is_err());
}

async fn prepared_statements_bind_parameters(db: &TestDb) {
    populate(&db.catalog).await;
    let token = create_token(&db.url, Some(TENANT_A), "a");
    let server = Server::start(&db.url).await;
    let mut client = server.client(Some(&token)).await;
    let mut prepared = client
        .prepare(
            "SELECT model_id, version FROM jammi.public.models WHERE model_id = $1 \
             AND version >= $2 ORDER BY version"
                .to_owned(),
            None,
        )
        .await
        .unwrap();
    let parameters = Arc::new(Schema::new(vec![
        Field::new("$1", DataType::Utf8, false),
        Field::new("$2", DataType::Int64, false),
    ]));
    for (name, from, expected) in [
        (
            "a-embed",
            1,
            vec![vec!["a-embed", "1"], vec!["a-embed", "2"]],
        ),
        ("a-embed", 2, vec![vec!["a-embed", "2"]]),
        ("b-embed", 1, vec![]),
    ] {
        prepared
            .set_parameters(
                RecordBatch::try_new(
                    Arc::clone(&parameters),
                    vec![
                        Arc::new(StringArray::from(vec![name])),
                        Arc::new(Int64Array::from(vec![from])),
                    ],
                )
                .unwrap(),
            )
            .unwrap();
        let info = prepared.execute().await.unwrap();
        let expected: Vec<Vec<String>> = expected
            .into_iter()
            .map(|r| r.into_iter().map(String::from).collect())
            .collect();
        assert_eq!(
            cells(&fetch(&mut client, info).await.unwrap()),
            expected,
            "{name} {from}"
        );
    }
    prepared.close().await.unwrap();

    // A placeholder of no known type: the plan is cached unanalyzed, and each
    // GetFlightInfo and DoGet (cache hits) analyzes it with its value, in a session of its
    // own.
    let mut untyped = client
        .prepare("SELECT $1 AS v".to_owned(), None)
        .await
        .unwrap();
    for value in ["x", "y"] {
        untyped
            .set_parameters(text_parameter_rows(&[value]))
            .unwrap();
        let info = untyped.execute().await.unwrap();
        assert_eq!(
            cells(&fetch(&mut client, info).await.unwrap()),
            vec![vec![value.to_owned()]]
        );
    }
    untyped.close().await.unwrap();
}

/// INSERT, DELETE and the functions, through DoPut updates (with their counts) and the
/// query path, including a prepared INSERT of several parameter rows in one statement.
async fn updates_report_their_counts(db: &TestDb) {
    populate(&db.catalog).await;
    let token = create_token(&db.url, Some(TENANT_A), "a");
    let server = Server::start(&db.url).await;
    let mut client = server.client(Some(&token)).await;
    let inserted = client
        .execute_update(
            "INSERT INTO jammi.public.models (model_id, version, model_type, backend, task) \
             VALUES ('u1', 1, 'embedding', 'candle', 'text_embedding'), \
                    ('u1', 2, 'embedding', 'candle', 'text_embedding')"
                .to_owned(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(inserted, 2);
    let deleted = client
        .execute_update(
            "DELETE FROM jammi.public.models WHERE model_id = 'u1' AND version = 1".to_owned(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(
        query(
            &mut client,
            "SELECT register_model('u2', NULL, 'embedding', 'candle', 'text_embedding')"
        )
        .await,
        vec![vec!["1".to_owned()]]
    );
    // ADBC's cursor.execute sends INSERTs through the query path: it runs once, at DoGet.
    assert_eq!(
        query(
            &mut client,
            "INSERT INTO jammi.public.models (model_id, version, model_type, backend, task) \
             VALUES ('u3', 1, 'embedding', 'candle', 'text_embedding')"
        )
        .await,
        vec![vec!["1".to_owned()]]
    );

    // executemany: one prepared INSERT, three parameter rows, one statement.
    let mut prepared = client
        .prepare(
            "INSERT INTO jammi.public.models (model_id, version, model_type, backend, task) \
             VALUES ($1, $2, 'embedding', 'candle', 'text_embedding')"
                .to_owned(),
            None,
        )
        .await
        .unwrap();
    let rows = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("0", DataType::Utf8, false),
            Field::new("1", DataType::Int64, false),
        ])),
        vec![
            Arc::new(StringArray::from(vec!["m1", "m2", "m3"])),
            Arc::new(Int64Array::from(vec![1, 1, 1])),
        ],
    )
    .unwrap();
    prepared.set_parameters(rows.clone()).unwrap();
    assert_eq!(prepared.execute_update().await.unwrap(), 3);

    // Rows without a version are registered in the order sent: versions 1, 2, 3.
    let mut versions = client
        .prepare(
            "INSERT INTO jammi.public.models (model_id, model_type, backend, task) \
             VALUES ('ordered', $1, 'candle', 'text_embedding')"
                .to_owned(),
            None,
        )
        .await
        .unwrap();
    versions
        .set_parameters(text_parameter_rows(&["first", "second", "third"]))
        .unwrap();
    assert_eq!(versions.execute_update().await.unwrap(), 3);
    assert_eq!(
        query(
            &mut client,
            "SELECT version, model_type FROM models WHERE model_id = 'ordered' ORDER BY version"
        )
        .await,
        [("1", "first"), ("2", "second"), ("3", "third")]
            .iter()
            .map(|(v, t)| vec![v.to_string(), t.to_string()])
            .collect::<Vec<_>>()
    );

    // A bad row refuses the whole statement: nothing of it is written.
    let bad = RecordBatch::try_new(
        rows.schema(),
        vec![
            Arc::new(StringArray::from(vec!["n1", "n2"])),
            Arc::new(Int64Array::from(vec![1, 0])),
        ],
    )
    .unwrap();
    prepared.set_parameters(bad).unwrap();
    assert!(prepared.execute_update().await.is_err());
    assert_eq!(
        query(
            &mut client,
            "SELECT model_id, version FROM jammi.public.models \
             WHERE model_id LIKE 'u%' OR model_id LIKE 'm_' OR model_id LIKE 'n_' \
             ORDER BY model_id, version"
        )
        .await,
        [
            ("m1", "1"),
            ("m2", "1"),
            ("m3", "1"),
            ("u1", "2"),
            ("u2", "1"),
            ("u3", "1")
        ]
        .iter()
        .map(|(m, v)| vec![m.to_string(), v.to_string()])
        .collect::<Vec<_>>()
    );
}

/// What would touch the server's machine or session is refused, and changes nothing.
async fn ddl_copy_and_set_are_refused(db: &TestDb) {
    let token = create_token(&db.url, Some(TENANT_A), "a");
    let server = Server::start(&db.url).await;
    let mut client = server.client(Some(&token)).await;
    for sql in [
        "CREATE TABLE t AS SELECT 1 AS x",
        "CREATE EXTERNAL TABLE etc STORED AS CSV LOCATION '/etc/passwd'",
        "CREATE VIEW v AS SELECT * FROM jammi.public.models",
        "DROP TABLE jammi.public.models",
        "COPY (SELECT 1) TO '/tmp/jammi-serve-copy.csv'",
        "EXPLAIN ANALYZE COPY (SELECT 1) TO '/tmp/jammi-serve-copy.csv'",
        "EXPLAIN CREATE TABLE t AS SELECT 1 AS x",
        "SET datafusion.execution.batch_size = 1",
    ] {
        assert_eq!(
            query_code(&mut client, sql).await,
            Code::PermissionDenied,
            "{sql}"
        );
        let update = client.execute_update(sql.to_owned(), None).await;
        assert_eq!(
            code_in(&update.unwrap_err().to_string()),
            Code::PermissionDenied,
            "{sql}"
        );
    }
    assert!(!std::path::Path::new("/tmp/jammi-serve-copy.csv").exists());
}

/// GetCatalogs / GetDbSchemas / GetTables with no catalog named (as ADBC asks).
async fn metadata_lists_the_catalog(db: &TestDb) {
    let token = create_token(&db.url, Some(TENANT_A), "a");
    let server = Server::start(&db.url).await;
    let mut client = server.client(Some(&token)).await;
    let info = client.get_catalogs().await.unwrap();
    assert_eq!(
        column(&cells(&fetch(&mut client, info).await.unwrap())),
        ["jammi"]
    );
    let info = client
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: None,
        })
        .await
        .unwrap();
    let schemas = cells(&fetch(&mut client, info).await.unwrap());
    assert!(
        schemas.contains(&vec!["jammi".into(), "public".into()]),
        "{schemas:?}"
    );
    let info = client
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: Some("public".into()),
            table_name_filter_pattern: None,
            table_types: vec![],
            include_schema: true,
        })
        .await
        .unwrap();
    let tables = fetch(&mut client, info).await.unwrap();
    let listed: Vec<Vec<String>> = cells(&tables)
        .into_iter()
        .map(|row| row[..4].to_vec())
        .collect();
    assert_eq!(
        listed,
        [
            "eval_runs",
            "events",
            "model_aliases",
            "model_tags",
            "models",
            "result_tables",
            "training_jobs",
            "webhook_deliveries",
            "webhooks"
        ]
        .iter()
        .map(|t| vec![
            "jammi".into(),
            "public".into(),
            t.to_string(),
            "BASE TABLE".into()
        ])
        .collect::<Vec<_>>()
    );
}

/// How a Flight SQL client sends a write.
#[derive(Clone, Copy, Debug)]
enum UpdatePath {
    /// GetFlightInfo + DoGet, what ADBC's `cursor.execute` does.
    Query,
    /// DoPut of a statement update.
    Update,
    /// A prepared statement with one parameter row, run as an update.
    Prepared,
    /// A prepared statement with two parameter rows (`executemany`).
    Many,
}

/// The writes each path sends: a template with `{}` for a model name (`$1` when prepared).
const GRADED_WRITES: [(&str, &str); 4] = [
    (
        "register_model()",
        "SELECT register_model({}, NULL, 'embedding', 'candle', 'ner')",
    ),
    (
        "INSERT",
        "INSERT INTO models (model_id, version, model_type, backend, task) \
         VALUES ({}, 1, 'embedding', 'candle', 'ner')",
    ),
    ("DELETE", "DELETE FROM models WHERE model_id = {}"),
    ("delete_model()", "SELECT delete_model({}, 1)"),
];

/// Sends `template` for `names` along `path`; the gRPC code of a failure.
async fn send_write(
    client: &mut FlightSqlServiceClient<Channel>,
    path: UpdatePath,
    template: &str,
    names: &[String],
) -> Result<(), Code> {
    let code = |e: &dyn std::fmt::Display| code_in(&e.to_string());
    let literal = |name: &str| template.replace("{}", &format!("'{name}'"));
    match path {
        UpdatePath::Query => {
            let info = client
                .execute(literal(&names[0]), None)
                .await
                .map_err(|e| code(&e))?;
            fetch(client, info).await.map_err(|e| code(&e))?;
        }
        UpdatePath::Update => {
            client
                .execute_update(literal(&names[0]), None)
                .await
                .map_err(|e| code(&e))?;
        }
        UpdatePath::Prepared | UpdatePath::Many => {
            let mut prepared = client
                .prepare(template.replace("{}", "$1"), None)
                .await
                .map_err(|e| code(&e))?;
            let rows = RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new("0", DataType::Utf8, false)])),
                vec![Arc::new(StringArray::from(names.to_vec()))],
            )
            .unwrap();
            prepared.set_parameters(rows).unwrap();
            prepared.execute_update().await.map_err(|e| code(&e))?;
        }
    }
    Ok(())
}

/// Every Flight SQL way to write (the query path, DoPut updates, prepared updates,
/// executemany), with each write of the catalog, at each access level: it runs, or it is
/// refused with `PERMISSION_DENIED` and nothing is written (SPEC §14). The table of
/// outcomes is asserted as a whole.
async fn every_flight_sql_write_is_graded_by_the_tokens_access(db: &TestDb) {
    let paths = [
        UpdatePath::Query,
        UpdatePath::Update,
        UpdatePath::Prepared,
        UpdatePath::Many,
    ];
    let levels = ["read", "write", "admin"];
    let names = |path: UpdatePath, write: usize, level: &str| -> Vec<String> {
        let rows = if matches!(path, UpdatePath::Many) {
            2
        } else {
            1
        };
        (0..rows)
            .map(|row| format!("m-{path:?}-{write}-{level}-{row}").to_lowercase())
            .collect()
    };
    // The rows the deletes target, in tenant A.
    let tenant = db
        .catalog
        .with_scope(Some(jammi_testkit::fixture::tenant_a()));
    for path in paths {
        for level in levels {
            for write in [2, 3] {
                for name in names(path, write, level) {
                    tenant
                        .register_model(
                            jammi_catalog::RegisterModel::new(
                                name,
                                "embedding",
                                "candle",
                                jammi_catalog::ModelTask::Ner,
                            )
                            .version(1),
                        )
                        .await
                        .unwrap();
                }
            }
        }
    }
    let server = Server::start(&db.url).await;
    let mut clients = Vec::new();
    for level in levels {
        let token = create_token_with(&db.url, Some(TENANT_A), level, &["--access", level]);
        clients.push(server.client(Some(&token)).await);
    }
    let checker_token = create_token(&db.url, Some(TENANT_A), "checker");
    let mut checker = server.client(Some(&checker_token)).await;
    let count = |names: &[String]| {
        let list = names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("SELECT count(*) FROM models WHERE model_id IN ({list})")
    };
    let mut table = String::new();
    for path in paths {
        for (write, (label, template)) in GRADED_WRITES.iter().enumerate() {
            let mut line = format!("{:<9} {label:<17}", format!("{path:?}"));
            for (level, client) in levels.iter().zip(clients.iter_mut()) {
                let names = names(path, write, level);
                let outcome = send_write(client, path, template, &names).await;
                let expected_rows = match (outcome, write) {
                    (Ok(()), 0 | 1) => names.len(),
                    (Ok(()), _) => 0,
                    (Err(Code::PermissionDenied), 0 | 1) => 0,
                    (Err(Code::PermissionDenied), _) => names.len(),
                    (Err(other), _) => panic!("{path:?} {label} at {level}: {other:?}"),
                };
                assert_eq!(
                    query(&mut checker, &count(&names)).await,
                    vec![vec![expected_rows.to_string()]],
                    "{path:?} {label} at {level}"
                );
                line.push_str(match outcome {
                    Ok(()) => " | ok    ",
                    Err(_) => " | denied",
                });
            }
            table.push_str(line.trim_end());
            table.push('\n');
        }
    }
    let expected = "\
Query     register_model()  | denied | ok     | ok
Query     INSERT            | denied | ok     | ok
Query     DELETE            | denied | denied | ok
Query     delete_model()    | denied | denied | ok
Update    register_model()  | denied | ok     | ok
Update    INSERT            | denied | ok     | ok
Update    DELETE            | denied | denied | ok
Update    delete_model()    | denied | denied | ok
Prepared  register_model()  | denied | ok     | ok
Prepared  INSERT            | denied | ok     | ok
Prepared  DELETE            | denied | denied | ok
Prepared  delete_model()    | denied | denied | ok
Many      register_model()  | denied | ok     | ok
Many      INSERT            | denied | ok     | ok
Many      DELETE            | denied | denied | ok
Many      delete_model()    | denied | denied | ok
";
    assert_eq!(table, expected);
}

/// The statement every client of `plans_and_sessions_stay_with_their_caller` prepares: one
/// text for both tenants, so that a plan cached for one would answer the other.
const SHARED: &str = "SELECT model_id, version FROM models WHERE model_id LIKE $1 \
                      ORDER BY model_id, version";

/// Parameters of a statement with one text placeholder (`$1`): a row for each value.
fn text_parameter_rows(values: &[&str]) -> RecordBatch {
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("$1", DataType::Utf8, false)])),
        vec![Arc::new(StringArray::from(values.to_vec()))],
    )
    .unwrap()
}

/// `SHARED` prepared by `client`, bound to `pattern`, run: its cells.
async fn run_shared(
    client: &mut FlightSqlServiceClient<Channel>,
    pattern: &str,
) -> Vec<Vec<String>> {
    let mut prepared = client.prepare(SHARED.to_owned(), None).await.unwrap();
    prepared
        .set_parameters(text_parameter_rows(&[pattern]))
        .unwrap();
    let info = prepared.execute().await.unwrap();
    let rows = cells(&fetch(client, info).await.unwrap());
    prepared.close().await.unwrap();
    rows
}

/// 32 concurrent clients of two tenants (read and admin tokens) through one server, each
/// interleaving the same prepared statement with parameters, the same text as a plain
/// query, and a DELETE that only admin may run: every answer is its caller's, never a row
/// of the other tenant; a plan made for one grant is never served to another (the read
/// token's DELETE stays refused after admin's plan of the same text is cached).
async fn plans_and_sessions_stay_with_their_caller(db: &TestDb) {
    populate(&db.catalog).await;
    let tokens = [
        create_token_with(&db.url, Some(TENANT_A), "a-read", &["--access", "read"]),
        create_token_with(&db.url, Some(TENANT_B), "b-read", &["--access", "read"]),
        create_token(&db.url, Some(TENANT_A), "a-admin"),
        create_token(&db.url, Some(TENANT_B), "b-admin"),
    ];
    let server = Server::start(&db.url).await;
    // What each tenant must see, asked once on its own.
    let mut expected = Vec::new();
    for (token, own, other) in [(&tokens[0], "a-", "b-"), (&tokens[1], "b-", "a-")] {
        let mut client = server.client(Some(token)).await;
        let rows = run_shared(&mut client, "%embed").await;
        assert!(rows.iter().any(|r| r[0].starts_with(own)), "{rows:?}");
        assert!(!rows.iter().any(|r| r[0].starts_with(other)), "{rows:?}");
        expected.push(rows);
    }
    const CLIENTS: usize = 32;
    const ROUNDS: usize = 12;
    let clients = (0..CLIENTS).map(|i| {
        let tenant = i % 2;
        let token = tokens[tenant + 2 * ((i / 2) % 2)].clone();
        let reads_only = (i / 2) % 2 == 0;
        let expected = expected[tenant].clone();
        let address = server.address.clone();
        tokio::spawn(async move {
            let channel = Channel::from_shared(format!("http://{address}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut client = FlightSqlServiceClient::new(channel);
            client.set_token(token);
            for round in 0..ROUNDS {
                match (round + i) % 3 {
                    0 => assert_eq!(run_shared(&mut client, "%embed").await, expected),
                    1 => assert_eq!(
                        query(&mut client, &SHARED.replace("$1", "'%embed'")).await,
                        expected
                    ),
                    _ => {
                        let delete = "DELETE FROM models WHERE model_id = 'nothing-here'";
                        if reads_only {
                            assert_eq!(
                                query_code(&mut client, delete).await,
                                Code::PermissionDenied
                            );
                        } else {
                            assert_eq!(
                                query(&mut client, delete).await,
                                vec![vec!["0".to_owned()]]
                            );
                        }
                    }
                }
            }
        })
    });
    for client in futures::future::join_all(clients).await {
        client.unwrap();
    }
}

/// A prepared statement made and bound on one server runs on another, which never saw it
/// (servers keep no state: the handle carries the statement, the plan cache is only a
/// cache).
async fn a_prepared_handle_runs_on_another_server(db: &TestDb) {
    populate(&db.catalog).await;
    let token = create_token_with(&db.url, Some(TENANT_A), "a", &["--access", "read"]);
    let servers = [Server::start(&db.url).await, Server::start(&db.url).await];
    let mut first = servers[0].client(Some(&token)).await;
    let mut second = servers[1].client(Some(&token)).await;
    // Planned (and cached) on the first server, run there once.
    let on_first = run_shared(&mut first, "a-%").await;
    assert!(!on_first.is_empty());
    let mut prepared = first.prepare(SHARED.to_owned(), None).await.unwrap();
    prepared
        .set_parameters(text_parameter_rows(&["a-%"]))
        .unwrap();
    // Its FlightInfo from the first server, its ticket fetched from the second…
    let info = prepared.execute().await.unwrap();
    assert_eq!(cells(&fetch(&mut second, info).await.unwrap()), on_first);
    // …and the bound handle's FlightInfo asked of the second server itself (a prepared
    // statement's ticket is the command GetFlightInfo takes).
    let info = prepared.execute().await.unwrap();
    let command = info.endpoint[0].ticket.clone().unwrap().ticket;
    let mut request = tonic::Request::new(arrow_flight::FlightDescriptor::new_cmd(command));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let info = second
        .inner_mut()
        .get_flight_info(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cells(&fetch(&mut second, info).await.unwrap()), on_first);
}

backend_tests!(
    plans_and_sessions_stay_with_their_caller,
    a_prepared_handle_runs_on_another_server,
    every_flight_sql_write_is_graded_by_the_tokens_access,
    each_token_sees_only_its_scope,
    calls_without_a_valid_token_run_nothing,
    a_basic_handshake_yields_the_bearer,
    prepared_statements_bind_parameters,
    updates_report_their_counts,
    ddl_copy_and_set_are_refused,
    metadata_lists_the_catalog
);

/// SIGTERM while a result streams: the stream completes, then the server exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_finishes_calls_in_flight() {
    let db = TestDb::sqlite().await;
    jammi_testkit::generate::generate_models(&db.catalog, 20_000, 1).await;
    let tenant = jammi_testkit::generate::tenant(0).to_string();
    let token = create_token(&db.url, Some(&tenant), "t");
    let server = Server::start(&db.url).await;
    let mut client = server.client(Some(&token)).await;
    let info = client
        .execute("SELECT * FROM jammi.public.models".to_owned(), None)
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut stream = client.do_get(ticket).await.unwrap();
    let first = stream.try_next().await.unwrap().expect("a first batch");
    let terminated = tokio::spawn(server.terminate());
    let rest: Vec<RecordBatch> = stream.try_collect().await.unwrap();
    let rows = first.num_rows() + rest.iter().map(RecordBatch::num_rows).sum::<usize>();
    assert_eq!(rows, 20_000);
    assert!(terminated.await.unwrap().success());
}

/// A client that stops reading a large result: the server stops the query, and its
/// Postgres connection stops running it (Postgres shows it; SQLite has no such view).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_departed_client_stops_its_query() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    jammi_testkit::generate::generate_models(&db.catalog, 200_000, 1).await;
    let tenant = jammi_testkit::generate::tenant(0).to_string();
    let token = create_token(&db.url, Some(&tenant), "t");
    // The server's connections carry a name of their own: other tests share the server.
    let name = format!("departed-{}", uuid::Uuid::new_v4().simple());
    let server = Server::start(&format!("{}&application_name={name}", db.url)).await;
    let admin = sqlx::PgPool::connect(&db.url).await.unwrap();
    let running = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
             AND application_name = $1",
        )
        .bind(&name)
        .fetch_one(&admin)
        .await
        .unwrap()
    };
    let mut client = server.client(Some(&token)).await;
    let info = client
        .execute("SELECT * FROM jammi.public.models".to_owned(), None)
        .await
        .unwrap();
    let mut stream = client
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap();
    stream.try_next().await.unwrap().expect("a first batch");
    assert_eq!(
        running().await,
        1,
        "the scan is running while the client reads"
    );
    drop(stream);
    drop(client);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while running().await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the scan still runs 10 s after its client left"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    admin.close().await;
    drop(server);
    db.cleanup().await;
}

/// Two servers on one PostgreSQL catalog: a statement prepared and bound on one runs on the
/// other (handles carry their statement), and 32 clients spread over both, each running 50 queries and registers, see no
/// error and leave the registered versions gap-free.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_share_one_postgres_catalog() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    populate(&db.catalog).await;
    let token = create_token(&db.url, Some(TENANT_A), "a");
    let servers = [Server::start(&db.url).await, Server::start(&db.url).await];

    // Prepared and bound on the first server…
    let mut first = servers[0].client(Some(&token)).await;
    let mut prepared = first
        .prepare(
            "SELECT model_id, version FROM models WHERE model_id = $1 ORDER BY version".into(),
            None,
        )
        .await
        .unwrap();
    prepared
        .set_parameters(text_parameter_rows(&["a-embed"]))
        .unwrap();
    let info = prepared.execute().await.unwrap();
    // …its ticket (the bound handle) runs on the second.
    let mut second = servers[1].client(Some(&token)).await;
    assert_eq!(
        cells(&fetch(&mut second, info).await.unwrap()),
        vec![
            vec!["a-embed".to_owned(), "1".into()],
            vec!["a-embed".into(), "2".into()]
        ]
    );

    const CLIENTS: usize = 32;
    const CALLS: usize = 50;
    let started = std::time::Instant::now();
    let clients = (0..CLIENTS).map(|i| {
        let (address, token) = (servers[i % 2].address.clone(), token.clone());
        tokio::spawn(async move {
            let channel = Channel::from_shared(format!("http://{address}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut client = FlightSqlServiceClient::new(channel);
            client.set_token(token);
            for call in 0..CALLS {
                let sql = if call % 2 == 0 {
                    "SELECT register_model('shared', NULL, 'embedding', 'candle', 'text_embedding')"
                } else {
                    "SELECT count(*) FROM models WHERE model_id = 'shared'"
                };
                let rows = query(&mut client, sql).await;
                assert_eq!(rows.len(), 1, "{sql}");
            }
        })
    });
    for client in futures::future::join_all(clients).await {
        client.unwrap();
    }
    eprintln!(
        "{CLIENTS} clients x {CALLS} calls over two servers: {:?}",
        started.elapsed()
    );
    let registers = (CLIENTS * CALLS / 2).to_string();
    assert_eq!(
        query(
            &mut first,
            "SELECT min(version), max(version), count(*) FROM models WHERE model_id = 'shared'"
        )
        .await,
        vec![vec!["1".to_owned(), registers.clone(), registers]]
    );
    drop(servers);
    db.cleanup().await;
}

/// The gRPC health service reports the Flight SQL service as serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_serving() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let db = TestDb::sqlite().await;
    let server = Server::start(&db.url).await;
    let channel = Channel::from_shared(format!("http://{}", server.address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "arrow.flight.protocol.FlightService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
}

/// `--query-timeout` and `--memory-limit` stop what exceeds them with their status, also
/// when the client does not read; the turn of a stopped statement comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_stop_statements_that_exceed_them() {
    let db = TestDb::sqlite().await;
    let token = create_token(&db.url, None, "operator");
    let server = Server::start_with(
        &db.url,
        &[
            "--query-timeout",
            "2",
            "--max-concurrent",
            "1",
            "--memory-limit",
            "20000000",
        ],
    )
    .await;
    let mut client = server.client(Some(&token)).await;

    let started = std::time::Instant::now();
    let endless = "SELECT count(*) FROM generate_series(1, 1000000000000)";
    assert_eq!(
        query_code(&mut client, endless).await,
        Code::DeadlineExceeded
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    let hoard = "SELECT array_agg(value) FROM generate_series(1, 50000000)";
    assert_eq!(
        query_code(&mut client, hoard).await,
        Code::ResourceExhausted
    );

    // A result nobody reads is stopped at the deadline all the same: its turn (the only
    // one) comes back, and the client reading on gets the deadline after what was sent.
    let info = client
        .execute(
            "SELECT * FROM generate_series(1, 100000000)".to_owned(),
            None,
        )
        .await
        .unwrap();
    let mut unread = client
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap();
    unread.try_next().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut other = server.client(Some(&token)).await;
    assert_eq!(
        query(&mut other, "SELECT 1").await,
        vec![vec!["1".to_owned()]]
    );
    let rest: Result<Vec<RecordBatch>, _> = unread.try_collect().await;
    assert!(
        rest.unwrap_err()
            .to_string()
            .contains(Code::DeadlineExceeded.description())
    );
}

/// A value built inside one batch counts against `--memory-limit`, and `--query-timeout`
/// holds inside a batch and while a statement is planned (SPEC §14): each probe is
/// refused or stopped in time, and the server serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn values_built_inside_a_batch_stay_within_the_limits() {
    let db = TestDb::sqlite().await;
    let token = create_token_with(&db.url, None, "reader", &["--access", "read"]);
    let server = Server::start_with(
        &db.url,
        &["--query-timeout", "3", "--memory-limit", "64000000"],
    )
    .await;
    let mut client = server.client(Some(&token)).await;
    // Many calls, each within the limit, folded while the statement is planned.
    let folded = (0..400)
        .map(|i| format!("length(repeat('{}', 40000000))", i % 10))
        .collect::<Vec<_>>()
        .join(" + ");
    for (sql, expected) in [
        (
            "SELECT length(repeat('x', 1500000000))".to_owned(),
            Code::ResourceExhausted,
        ),
        (
            "SELECT length(lpad('x', 1500000000))".to_owned(),
            Code::ResourceExhausted,
        ),
        (
            "SELECT length(rpad('x', 1500000000, 'é'))".to_owned(),
            Code::ResourceExhausted,
        ),
        (
            "SELECT cardinality(array_repeat(1, 1500000000))".to_owned(),
            Code::ResourceExhausted,
        ),
        (
            "SELECT cardinality(range(1500000000))".to_owned(),
            Code::ResourceExhausted,
        ),
        // Each call builds 40 MB; the aggregate's accumulator passes the memory limit.
        (
            "SELECT length(string_agg(repeat('x', 5000), ',')) FROM generate_series(1, 100000)"
                .to_owned(),
            Code::ResourceExhausted,
        ),
        // Doubling a value by nesting stops where it passes the limit.
        (
            "SELECT length(concat(b, b)) FROM (SELECT concat(a, a) AS b FROM \
             (SELECT concat(s, s) AS a FROM (SELECT repeat('x', 20000000) AS s)))"
                .to_owned(),
            Code::ResourceExhausted,
        ),
        (
            "SELECT levenshtein(repeat('a', 100000), repeat('b', 100000))".to_owned(),
            Code::ResourceExhausted,
        ),
        // A constant value is copied into every row of the batch: 10 × 30 MB.
        (
            "SELECT repeat('x', 30000000) AS s FROM generate_series(1, 10)".to_owned(),
            Code::ResourceExhausted,
        ),
        // The same doubling through `concat`'s own simplification (NULL arguments are
        // dropped: a new call of the built-in), and through `[…]` syntax.
        (
            "SELECT length(concat(b, NULL, b)) FROM (SELECT concat(a, NULL, a) AS b FROM \
             (SELECT concat(s, NULL, s) AS a FROM (SELECT repeat('x', 20000000) AS s)))"
                .to_owned(),
            Code::ResourceExhausted,
        ),
        (
            "SELECT cardinality([s, s, s, s, s, s, s, s]) FROM (SELECT repeat('x', 10000000) AS s)"
                .to_owned(),
            Code::ResourceExhausted,
        ),
        // The ordered form joins its values only when it answers: 10 000 × 10 kB of
        // delimiter, not charged to the memory pool.
        (
            format!(
                "SELECT length(string_agg(CAST(value AS VARCHAR), '{}' ORDER BY value)) \
                 FROM generate_series(1, 10000)",
                "x".repeat(10_000)
            ),
            Code::ResourceExhausted,
        ),
        // As a window function the answer is copied into every row: 10 000 × ~50 kB.
        (
            "SELECT length(string_agg(CAST(value AS VARCHAR), ',') OVER ()) \
             FROM generate_series(1, 10000)"
                .to_owned(),
            Code::ResourceExhausted,
        ),
        // A step that can cycle at a month's end would never end.
        (
            "SELECT cardinality(range(DATE '2024-01-28', DATE '2024-12-31', \
             INTERVAL '1 month -28 days'))"
                .to_owned(),
            Code::ResourceExhausted,
        ),
        // Endless small batches: stopped at the deadline.
        (
            "SELECT count(repeat('x', 1000)) FROM generate_series(1, 1000000000000)".to_owned(),
            Code::DeadlineExceeded,
        ),
        (format!("SELECT {folded}"), Code::DeadlineExceeded),
    ] {
        let started = std::time::Instant::now();
        assert_eq!(query_code(&mut client, &sql).await, expected, "{sql:.80}");
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{sql:.80}: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        query(&mut client, "SELECT length(repeat('x', 1000))").await,
        vec![vec!["1000".to_owned()]]
    );
}

/// More statements than `--max-concurrent` wait for a turn, at most 10 s, then get
/// `RESOURCE_EXHAUSTED`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statements_beyond_the_concurrency_cap_are_refused_after_a_wait() {
    let db = TestDb::sqlite().await;
    let token = create_token(&db.url, None, "operator");
    let server = Server::start_with(&db.url, &["--max-concurrent", "1"]).await;
    let mut client = server.client(Some(&token)).await;
    let info = client
        .execute(
            "SELECT * FROM generate_series(1, 100000000)".to_owned(),
            None,
        )
        .await
        .unwrap();
    let mut held = client
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap();
    held.try_next().await.unwrap();
    let mut other = server.client(Some(&token)).await;
    let started = std::time::Instant::now();
    assert_eq!(
        query_code(&mut other, "SELECT 1").await,
        Code::ResourceExhausted
    );
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    drop(held);
    // The turn comes back once the stream is dropped.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let outcome = match other.execute("SELECT 1".to_owned(), None).await {
            Ok(info) => fetch(&mut other, info).await.map(|_| ()),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => break,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("no turn after the stream was dropped: {e}"),
        }
    }
}

/// With `--tls-cert` and `--tls-key` the server speaks TLS only: a client trusting the
/// certificate queries it, a plaintext client gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_only_tls_clients() {
    use tonic::transport::{Certificate, ClientTlsConfig};

    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match made {
        Ok(out) if out.status.success() => {}
        _ => {
            eprintln!("note: openssl cannot make a test certificate; skipping the TLS test");
            return;
        }
    }
    let db = TestDb::sqlite().await;
    let token = create_token(&db.url, None, "operator");
    let server = Server::start_with(
        &db.url,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    )
    .await;
    let port = server.address.rsplit(':').next().unwrap().to_owned();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(&cert).unwrap()))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .expect("a TLS client connects");
    let mut client = FlightSqlServiceClient::new(channel);
    client.set_token(token.clone());
    assert_eq!(
        query(&mut client, "SELECT 1").await,
        vec![vec!["1".to_owned()]]
    );

    // A plaintext client fails to connect, or its first call fails.
    let plaintext = Channel::from_shared(format!("http://{}", server.address))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plaintext {
        let mut client = FlightSqlServiceClient::new(channel);
        client.set_token(token);
        assert!(client.execute("SELECT 1".to_owned(), None).await.is_err());
    }
}
