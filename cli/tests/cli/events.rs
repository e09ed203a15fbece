//! `jammi events` (SPEC §16): the scope's events as ndjson, and `--follow` printing an event
//! registered by another process as it commits.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jammi_catalog::{ModelTask, RegisterModel, TenantId};
use jammi_testkit::TestDb;

use super::{jammi, run, stderr, stdout};

fn model(name: &str) -> RegisterModel {
    RegisterModel::new(name, "embedding", "candle", ModelTask::TextEmbedding)
}

async fn events_follow_prints_a_new_event_as_it_commits(db: TestDb) {
    let (a, b) = (TenantId::random(), TenantId::random());
    db.scoped(a).register_model(model("before")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tenant = a.to_string();

    // Without --follow: what is there, then exit; --since and --kind narrow it.
    let out = run(jammi(dir.path()).args(["--db", &db.url, "--tenant", &tenant, "events"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{}", stdout(&out));
    assert_eq!(lines[0]["model_id"], "before");
    assert_eq!(lines[0]["kind"], "model_registered");
    assert_eq!(lines[0]["tenant_id"], tenant.as_str());
    let since = lines[0]["event_id"].as_i64().unwrap().to_string();
    let out = run(jammi(dir.path()).args([
        "--db", &db.url, "--tenant", &tenant, "events", "--since", &since,
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "{}", stderr(&out));
    let out = run(jammi(dir.path()).args([
        "--db",
        &db.url,
        "--tenant",
        &tenant,
        "events",
        "--kind",
        "nothing_like_this",
    ]));
    assert_eq!(out.status.code(), Some(2), "a bad kind is refused");

    let mut child = jammi(dir.path())
        .args([
            "--db", &db.url, "--tenant", &tenant, "events", "--follow", "--since", &since,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    // Let it start and read up to now, then write: another tenant's event first.
    std::thread::sleep(Duration::from_millis(500));
    db.scoped(b).register_model(model("theirs")).await.unwrap();
    db.scoped(a).register_model(model("after")).await.unwrap();
    let committed = Instant::now();
    let line = lines_rx.recv_timeout(Duration::from_secs(10));
    let waited = committed.elapsed();
    child.kill().unwrap();
    child.wait().unwrap();
    let event: serde_json::Value = serde_json::from_str(&line.expect("an event line")).unwrap();
    assert_eq!(event["model_id"], "after", "never another tenant's event");
    // SPEC §16 asks for a second; the poll is 0.1 s, and the bound leaves room for a
    // loaded machine.
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn events_follow_on_sqlite() {
    events_follow_prints_a_new_event_as_it_commits(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn events_follow_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    events_follow_prints_a_new_event_as_it_commits(db).await;
}
