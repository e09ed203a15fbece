//! The `jammi` binary as a person runs it (SPEC §8).

mod adbc;
mod events;
mod insert_memory;
mod serve;
mod webhooks;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use jammi_testkit::TestDb;
use jammi_testkit::fixture::{TENANT_A, TENANT_B, populate};

/// `jammi` with a clean environment (no JAMMI_DB / JAMMI_TENANT from the caller), run in `dir`.
fn jammi(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jammi"));
    cmd.current_dir(dir)
        .env_remove("JAMMI_DB")
        .env_remove("JAMMI_TENANT");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run jammi")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// A SQLite catalog file populated with the fixture, and its URL.
async fn fixture_db() -> TestDb {
    let db = TestDb::sqlite().await;
    populate(&db.catalog).await;
    db
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn default_database_is_created_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(jammi(dir.path()).args(["-c", "SELECT count(*) AS n FROM jammi.public.models"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("jammi.db").exists());
    assert!(stdout(&out).contains("| n |"), "{}", stdout(&out));
}

#[tokio::test]
async fn jammi_db_env_and_bare_paths_select_the_database() {
    let db = fixture_db().await;
    let dir = tempfile::tempdir().unwrap();
    let path = db.url.trim_start_matches("sqlite://").to_owned();
    let q = [
        "--format",
        "csv",
        "-c",
        "SELECT count(*) AS n FROM jammi.public.models",
    ];
    let by_env = run(jammi(dir.path()).env("JAMMI_DB", &db.url).args(q));
    let by_path = run(jammi(dir.path()).args(["--db", &path]).args(q));
    assert_eq!(stdout(&by_env), "n\n6\n", "{}", stderr(&by_env));
    assert_eq!(stdout(&by_path), "n\n6\n", "{}", stderr(&by_path));
    assert!(
        !dir.path().join("jammi.db").exists(),
        "the default file was created anyway"
    );
}

#[tokio::test]
async fn tenants_are_isolated_across_invocations_on_one_file() {
    let db = fixture_db().await;
    let dir = tempfile::tempdir().unwrap();
    let q = "SELECT DISTINCT tenant_id FROM jammi.public.models WHERE tenant_id IS NOT NULL";
    for (tenant, other) in [(TENANT_A, TENANT_B), (TENANT_B, TENANT_A)] {
        let out = run(jammi(dir.path()).args([
            "--db", &db.url, "--tenant", tenant, "--format", "csv", "-c", q,
        ]));
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), format!("tenant_id\n{tenant}\n"));
        assert!(!stdout(&out).contains(other));
    }
    let by_env = run(jammi(dir.path())
        .env("JAMMI_TENANT", TENANT_A)
        .args(["--db", &db.url, "--format", "csv", "-c", q]));
    assert_eq!(stdout(&by_env), format!("tenant_id\n{TENANT_A}\n"));
    let unscoped = run(jammi(dir.path()).args(["--db", &db.url, "--format", "csv", "-c", q]));
    assert_eq!(
        stdout(&unscoped),
        "",
        "unscoped sees no tenant rows; an empty result prints nothing"
    );
}

#[tokio::test]
async fn every_format_parses_back_to_the_same_rows() {
    let db = fixture_db().await;
    let dir = tempfile::tempdir().unwrap();
    let q = "SELECT model_id, version, base_model_id FROM jammi.public.models WHERE model_id = 'g-embed' ORDER BY version";
    let fmt = |f: &str| run(jammi(dir.path()).args(["--db", &db.url, "--format", f, "-c", q]));

    let csv = fmt("csv");
    assert_eq!(
        csv_rows(&stdout(&csv)),
        vec![
            vec!["model_id", "version", "base_model_id"],
            vec!["g-embed", "1", "base"],
            vec!["g-embed", "2", "base"]
        ]
    );

    let json: serde_json::Value = serde_json::from_str(&stdout(&fmt("json"))).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"model_id": "g-embed", "version": 1, "base_model_id": "base"},
            {"model_id": "g-embed", "version": 2, "base_model_id": "base"}
        ])
    );

    let ndjson: Vec<serde_json::Value> = stdout(&fmt("ndjson"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ndjson, json.as_array().unwrap().clone());

    let table = stdout(&fmt("table"));
    assert!(
        table.contains("| model_id | version | base_model_id |"),
        "{table}"
    );
    assert!(
        table.contains("| g-embed  | 2       | base          |"),
        "{table}"
    );

    // JSON keeps NULLs explicit.
    let nulls = run(jammi(dir.path()).args([
        "--db",
        &db.url,
        "--format",
        "json",
        "-c",
        "SELECT NULL AS x",
    ]));
    assert_eq!(stdout(&nulls).trim(), r#"[{"x":null}]"#);
}

#[tokio::test]
async fn statements_without_rows_print_nothing_in_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["csv", "json", "ndjson"] {
        let out = run(jammi(dir.path()).args([
            "--format",
            format,
            "-c",
            "CREATE TABLE t (a INT); SELECT * FROM jammi.public.models WHERE model_id = 'none'",
        ]));
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), "", "{format}");
    }
}

#[tokio::test]
async fn commands_and_files_run_in_the_order_given() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("script.sql");
    std::fs::write(
        &file,
        "-- a comment; not a statement\nSELECT 'file; one' AS s;\n\nSELECT 'it''s two' AS s; /* ; */",
    )
    .unwrap();
    let out = run(jammi(dir.path()).args([
        "--format",
        "csv",
        "-c",
        "SELECT 'first' AS s",
        "-f",
        file.to_str().unwrap(),
        "-c",
        "SELECT 'last' AS s",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "s\nfirst\ns\nfile; one\ns\nit's two\ns\nlast\n"
    );
}

#[tokio::test]
async fn statements_are_read_from_stdin_when_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = jammi(dir.path())
        .args(["--format", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT 1 AS a;\nSELECT 'x;y' AS b;\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "a\n1\nb\nx;y\n");
}

#[tokio::test]
async fn the_first_failing_statement_stops_the_run_with_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(jammi(dir.path()).args([
        "--format",
        "csv",
        "-c",
        "SELECT 'before' AS s",
        "-c",
        "SELECT * FROM no_such_table",
        "-c",
        "SELECT 'after' AS s",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "s\nbefore\n");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains("no_such_table"),
        "the error names the table: {err}"
    );

    let missing = run(jammi(dir.path()).args(["-f", "does-not-exist.sql"]));
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).starts_with("error: cannot read does-not-exist.sql"),
        "{}",
        stderr(&missing)
    );
}

#[tokio::test]
async fn bad_arguments_exit_with_status_two() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--tenant", "not-a-uuid", "-c", "SELECT 1"],
        vec![
            "--tenant",
            "00000000-0000-0000-0000-000000000000",
            "-c",
            "SELECT 1",
        ],
        vec!["--format", "xml", "-c", "SELECT 1"],
        vec!["--no-such-flag"],
    ] {
        let out = run(jammi(dir.path()).args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with("error:"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let bad_env = run(jammi(dir.path())
        .env("JAMMI_TENANT", "nil")
        .args(["-c", "SELECT 1"]));
    assert_eq!(bad_env.status.code(), Some(2));
    assert!(
        !dir.path().join("jammi.db").exists(),
        "bad arguments must not create the database"
    );
}

#[tokio::test]
async fn help_documents_every_option_with_an_example() {
    let out = run(jammi(Path::new(".")).arg("--help"));
    assert!(out.status.success());
    let help = stdout(&out);
    for option in [
        "--db",
        "--tenant",
        "--access",
        "--format",
        "--command",
        "--file",
    ] {
        assert!(help.contains(option), "{option} missing from --help");
    }
    assert_eq!(help.matches("Example:").count(), 6, "{help}");
    assert!(help.contains("JAMMI_DB") && help.contains("JAMMI_TENANT"));
}

#[tokio::test]
async fn external_tables_join_the_catalog() {
    let db = fixture_db().await;
    let dir = tempfile::tempdir().unwrap();
    let scores = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/data/eval_scores.csv"
    );
    let out = run(jammi(dir.path()).args([
        "--db",
        &db.url,
        "--tenant",
        TENANT_A,
        "--format",
        "csv",
        "-c",
        &format!("CREATE EXTERNAL TABLE scores STORED AS CSV LOCATION '{scores}' OPTIONS ('format.has_header' 'true')"),
        "-c",
        "SELECT m.model_id, s.ndcg FROM jammi.public.models m JOIN scores s \
         ON s.model_id = m.model_id AND s.version = m.version ORDER BY s.ndcg DESC LIMIT 1",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "model_id,ndcg\na-embed,0.742\n");
}

#[tokio::test]
async fn postgres_catalog_via_db_url() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    populate(&db.catalog).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(jammi(dir.path()).args([
        "--db",
        &db.url,
        "--tenant",
        TENANT_B,
        "--format",
        "csv",
        "-c",
        "SELECT count(*) AS n FROM jammi.public.models",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "n\n9\n");
    db.cleanup().await;
}

#[tokio::test]
async fn the_quickstart_prints_each_tenants_leaderboard() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/quickstart.sh"
        ))
        .env("JAMMI", env!("CARGO_BIN_EXE_jammi"))
        .env("QUICKSTART_DIR", dir.path())
        .env_remove("JAMMI_TENANT")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let (acme, globex) = text.split_once("== 4b.").expect("both leaderboards");
    // Each section: its heading line, then the table.
    let acme = acme
        .split_once("== 4a.")
        .unwrap()
        .1
        .split_once('\n')
        .unwrap()
        .1;
    let (globex, history) = globex.split_once("== 5.").expect("the alias steps");
    let globex = globex.split_once('\n').unwrap().1;
    assert!(
        acme.contains("| acme/support-embed                     | 2       | own    |"),
        "{acme}"
    );
    assert!(acme.contains("| 0.768 | 0.05 |"), "{acme}");
    assert!(!acme.contains("globex"), "acme saw globex's rows:\n{acme}");
    assert!(
        globex.contains("| globex/legal-embed     | 1       | own    |"),
        "{globex}"
    );
    assert!(
        !globex.contains("acme/"),
        "globex saw acme's rows:\n{globex}"
    );
    assert_eq!(globex.matches("| global |").count(), 1, "{globex}");
    // The champion before the move, from the event log, and now.
    let (_, answer) = history.split_once("== 7.").expect("the time-travel step");
    assert!(answer.contains("| then | 1       |"), "{answer}");
    assert!(answer.contains("| now  | 2       |"), "{answer}");
    for kind in [
        "model_registered",
        "eval_run_created",
        "alias_set",
        "tag_set",
    ] {
        assert!(
            answer.contains(kind),
            "{kind} missing from the history:\n{answer}"
        );
    }
}

#[tokio::test]
async fn delete_with_limit_or_a_subquery_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let setup =
        run(jammi(dir.path()).args(["-c", "SELECT register_model('m', NULL, 'e', 'c', 'ner')"]));
    assert!(setup.status.success(), "{}", stderr(&setup));
    for sql in [
        "DELETE FROM jammi.public.models WHERE model_id = 'm' LIMIT 1",
        "DELETE FROM jammi.public.models WHERE model_id IN (SELECT model_id FROM jammi.public.models)",
        "DELETE FROM jammi.public.models",
    ] {
        let out = run(jammi(dir.path()).args(["-c", sql]));
        assert_eq!(out.status.code(), Some(1), "{sql}");
        let err = stderr(&out);
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "{err}"
        );
        assert!(err.contains("DELETE FROM jammi.public.models"), "{err}");
    }
    let left = run(jammi(dir.path()).args([
        "--format",
        "csv",
        "-c",
        "SELECT count(*) AS n FROM jammi.public.models",
    ]));
    assert_eq!(stdout(&left), "n\n1\n");
}

#[tokio::test]
async fn eight_processes_register_versions_one_to_two_hundred_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("shared.db").display());
    // All eight open (create, migrate) the new file at the same time, then write.
    let children: Vec<_> = (0..8)
        .map(|_| {
            jammi(dir.path())
                .args([
                    "--db",
                    &db,
                    "--format",
                    "csv",
                    "-c",
                    "SELECT register_model('hot', NULL, 'embedding', 'candle', 'ner') AS v FROM generate_series(1, 25)",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut versions = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a writer failed: {}", stderr(&out));
        versions.extend(
            stdout(&out)
                .lines()
                .skip(1)
                .map(|v| v.parse::<i32>().unwrap()),
        );
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=200).collect::<Vec<_>>());
    let count = run(jammi(dir.path()).args([
        "--db",
        &db,
        "--format",
        "csv",
        "-c",
        "SELECT count(*) AS n FROM jammi.public.models",
    ]));
    assert_eq!(stdout(&count), "n\n200\n");
}

/// Global options work wherever a user types them (SPEC §14): before the subcommand,
/// between it and its own subcommand, or after. Options that a part of the command does
/// not use are refused with status 2.
#[tokio::test]
async fn global_options_work_before_and_after_subcommands() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let url = db.url.as_str();
    for (label, args) in [
        (
            "before",
            vec!["--db", url, "token", "create", "--name", "before"],
        ),
        (
            "between",
            vec!["token", "--db", url, "create", "--name", "between"],
        ),
        (
            "after",
            vec!["token", "create", "--name", "after", "--db", url],
        ),
        (
            "scoped",
            vec![
                "--tenant", TENANT_A, "--db", url, "token", "create", "--name", "scoped",
                "--access", "write",
            ],
        ),
    ] {
        let out = run(jammi(dir.path()).args(&args));
        assert!(out.status.success(), "{label}: {}", stderr(&out));
        assert!(stdout(&out).starts_with("jammi_"), "{label}");
    }
    let out = run(jammi(dir.path()).args(["token", "list", "--db", url]));
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    for line in [
        "| before  | unscoped",
        "| between | unscoped",
        "| after   | unscoped",
    ] {
        assert!(listed.contains(line), "{line}\n{listed}");
    }
    let scoped = listed.lines().find(|l| l.contains("| scoped")).unwrap();
    assert!(scoped.contains(&format!("tenant {TENANT_A}")), "{scoped}");
    assert!(scoped.contains("| write "), "{scoped}");
    assert!(scoped.contains("| live "), "{scoped}");
    // Nothing was created in the working directory: --db reached every subcommand.
    assert!(!dir.path().join("jammi.db").exists());

    for args in [
        vec!["--db", url, "--access", "read", "token", "list"],
        vec!["--db", url, "--tenant", TENANT_A, "token", "list"],
        vec!["--db", url, "token", "revoke", "x", "--tenant", TENANT_A],
        vec!["--db", url, "--tenant", TENANT_A, "serve"],
        vec!["--db", url, "-c", "SELECT 1", "token", "list"],
        vec!["--db", url, "--format", "csv", "serve"],
        vec![
            "--db", url, "token", "create", "--name", "x", "--access", "owner",
        ],
        vec![
            "--db",
            url,
            "token",
            "create",
            "--name",
            "x",
            "--expires-in",
            "soon",
        ],
        vec![
            "--db",
            url,
            "token",
            "create",
            "--name",
            "x",
            "--expires-at",
            "tomorrow",
        ],
        vec![
            "--db",
            url,
            "token",
            "create",
            "--name",
            "x",
            "--expires-in",
            "1d",
            "--expires-at",
            "2099-01-01",
        ],
    ] {
        let out = run(jammi(dir.path()).args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with("error:"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

/// `token create` gives a read token unless told otherwise, with an expiry when asked;
/// `token list` shows access, expiry, last use and status.
#[tokio::test]
async fn token_create_grades_and_expires_tokens() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let url = db.url.as_str();
    for args in [
        vec!["--name", "dashboard"],
        vec![
            "--name",
            "pipeline",
            "--access",
            "write",
            "--expires-in",
            "90d",
        ],
        vec![
            "--name",
            "ops",
            "--access",
            "admin",
            "--expires-at",
            "2099-06-30T18:00:00Z",
        ],
    ] {
        let out = run(jammi(dir.path())
            .args(["--db", url, "token", "create"])
            .args(&args));
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let out = run(jammi(dir.path()).args(["--db", url, "token", "list"]));
    let listed = stdout(&out);
    let line = |label: &str| {
        listed
            .lines()
            .find(|l| l.contains(&format!("| {label} ")))
            .unwrap_or_else(|| panic!("{label} in\n{listed}"))
            .to_owned()
    };
    assert!(line("dashboard").contains("| read "), "{listed}");
    assert!(line("pipeline").contains("| write "), "{listed}");
    let ops = line("ops");
    assert!(
        ops.contains("| admin ") && ops.contains("2099-06-30T18:00:00Z"),
        "{ops}"
    );
    for header in [
        "label",
        "scope",
        "access",
        "created",
        "expires",
        "last_used",
        "status",
    ] {
        assert!(
            listed.lines().nth(1).unwrap().contains(header),
            "{header}\n{listed}"
        );
    }
}

/// `--access read` makes a session that reads and refuses every write before it runs.
#[tokio::test]
async fn a_read_session_refuses_writes() {
    let db = fixture_db().await;
    let dir = tempfile::tempdir().unwrap();
    let write = "SELECT register_model('sneaky', NULL, 'embedding', 'candle', 'ner')";
    let out = run(jammi(dir.path()).args(["--db", &db.url, "--access", "read", "-c", write]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("permission denied: register_model(…) needs write access"),
        "{}",
        stderr(&out)
    );
    let out = run(jammi(dir.path()).args([
        "--db",
        &db.url,
        "--access",
        "read",
        "--format",
        "csv",
        "-c",
        "SELECT count(*) AS n FROM jammi.public.models WHERE model_id = 'sneaky'",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "n\n0\n");
}
