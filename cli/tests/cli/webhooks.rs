//! Webhooks end to end (SPEC §16): `jammi webhook` administers them, `jammi serve` delivers
//! them to a receiver on 127.0.0.1 — signed, in order, filtered, scoped, retried, paused,
//! across a `kill -9`, and shared between two servers — on both backends.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jammi_catalog::{Catalog, ModelTask, RegisterModel, TenantId};
use jammi_testkit::receiver::{Receiver, Reply};
use jammi_testkit::{TestDb, backend_tests};

use super::serve::Server;
use super::{jammi, run, stderr, stdout};

/// Generous: a loaded machine runs every suite at once.
const WAIT: Duration = Duration::from_secs(30);

fn model(name: &str) -> RegisterModel {
    RegisterModel::new(name, "embedding", "candle", ModelTask::TextEmbedding)
}

/// `jammi webhook create` as `tenant` with `options`; its id and secret.
fn create_webhook(db: &str, tenant: Option<TenantId>, options: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = jammi(dir.path());
    cmd.args(["--db", db, "webhook", "create"]).args(options);
    if let Some(t) = tenant {
        cmd.args(["--tenant", &t.to_string()]);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let secret = stdout(&out).trim().to_owned();
    let id = stderr(&out)
        .split_whitespace()
        .nth(2)
        .expect("created webhook <id> …")
        .to_owned();
    (id, secret)
}

/// A server delivering webhooks with quick retries and a short lease; `extra` options
/// replace these.
async fn delivering_server(db: &str, extra: &[&str]) -> Server {
    let defaults = [
        ("--webhook-backoff", "50ms"),
        ("--webhook-lease", "3s"),
        ("--webhook-timeout", "1s"),
    ];
    let mut options: Vec<&str> = defaults
        .iter()
        .filter(|(flag, _)| !extra.contains(flag))
        .flat_map(|(flag, value)| [*flag, *value])
        .collect();
    options.extend_from_slice(extra);
    Server::start_with(db, &options).await
}

/// Waits until the webhook's cursor has reached `id` (the acknowledgement commits just
/// after the receiver answers); the webhook then.
async fn cursor_reaches(catalog: &Catalog, webhook_id: &str, id: i64) -> jammi_catalog::Webhook {
    let start = std::time::Instant::now();
    loop {
        let webhook = catalog.get_webhook(webhook_id).await.unwrap();
        // On Postgres the cursor also moves past other tenants' ids: at least `id`.
        if webhook.last_event_id >= id || start.elapsed() > WAIT {
            return webhook;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `jammi -c sql --format csv` as `tenant`.
fn csv_query(db: &str, tenant: TenantId, sql: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    run(jammi(dir.path()).args([
        "--db",
        db,
        "--tenant",
        &tenant.to_string(),
        "--format",
        "csv",
        "-c",
        sql,
    ]))
}

async fn event_ids(catalog: &Catalog) -> Vec<i64> {
    catalog
        .list_events()
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_id)
        .collect()
}

async fn the_webhook_commands_administer_a_scopes_webhooks(db: &TestDb) {
    let (a, b) = (TenantId::random(), TenantId::random());
    let dir = tempfile::tempdir().unwrap();
    let (id, secret) = create_webhook(
        &db.url,
        Some(a),
        &[
            "--url",
            "https://ci.example.com/hook",
            "--events",
            "alias_set",
            "--model",
            "fraud-*",
        ],
    );
    assert!(secret.starts_with("whsec_"), "{secret}");
    let list = |tenant: TenantId| {
        run(jammi(dir.path()).args([
            "--db",
            &db.url,
            "--tenant",
            &tenant.to_string(),
            "webhook",
            "list",
        ]))
    };
    let out = list(a);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    assert!(listed.contains(&id) && listed.contains("alias_set") && listed.contains("fraud-*"));
    assert!(!listed.contains(&secret), "the secret is shown once");
    assert!(
        !stdout(&list(b)).contains(&id),
        "another tenant does not see it"
    );

    let act = |tenant: TenantId, args: &[&str]| {
        run(jammi(dir.path())
            .args(["--db", &db.url, "--tenant", &tenant.to_string(), "webhook"])
            .args(args))
    };
    let out = act(b, &["delete", &id]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "another tenant's webhook is not found"
    );
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    let out = act(a, &["pause", &id, "--reason", "freeze"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&list(a)).contains("freeze"));
    assert!(act(a, &["resume", &id]).status.success());
    let out = act(a, &["create", "--url", "ftp://example.com/x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("http or https"), "{}", stderr(&out));
    let out = act(
        a,
        &[
            "create",
            "--url",
            "https://x.example/",
            "--events",
            "no_such_kind",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(act(a, &["delete", &id]).status.success());
    assert!(!stdout(&list(a)).contains(&id));
}

/// Signed, in event-id order, only what the filters and the scope let through.
async fn a_server_delivers_signed_filtered_events_in_order(db: &TestDb) {
    let (a, b) = (TenantId::random(), TenantId::random());
    let (filtered, everything) = (Receiver::start().await, Receiver::start().await);
    let (_, filtered_secret) = create_webhook(
        &db.url,
        Some(a),
        &[
            "--url",
            &filtered.url(),
            "--events",
            "model_registered,alias_set",
            "--model",
            "fraud-*",
        ],
    );
    let (every_id, every_secret) = create_webhook(&db.url, Some(a), &["--url", &everything.url()]);
    let server = delivering_server(&db.url, &[]).await;

    let (ours, theirs) = (db.scoped(a), db.scoped(b));
    ours.register_model(model("fraud-v1")).await.unwrap();
    theirs.register_model(model("fraud-v1")).await.unwrap();
    ours.register_model(model("ranker")).await.unwrap();
    db.global()
        .register_model(model("fraud-global"))
        .await
        .unwrap();
    ours.set_model_alias("fraud-v1", "champion", 1)
        .await
        .unwrap();
    ours.set_model_tag("fraud-v1", 1, "stage", "prod")
        .await
        .unwrap();
    theirs
        .set_model_alias("fraud-v1", "champion", 1)
        .await
        .unwrap();

    // The scope's events: its own and global ones, never the other tenant's.
    let visible = event_ids(&ours).await;
    assert_eq!(visible.len(), 5);
    assert!(
        everything
            .wait_until(WAIT, |r| r.len() >= visible.len())
            .await,
        "{} of {} events arrived",
        everything.received().len(),
        visible.len()
    );
    let got = everything.acknowledged();
    assert_eq!(
        got.iter().map(|r| r.event_id()).collect::<Vec<_>>(),
        visible
    );
    for r in &got {
        assert!(r.signed_with(&every_secret), "{:?}", r.headers);
        assert!(
            !r.signed_with(&filtered_secret),
            "another secret does not verify"
        );
        assert_eq!(r.header("jammi-webhook-id"), every_id);
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(r.json()["event_id"], r.event_id());
        assert!(r.json()["tenant_id"].is_null() || r.json()["tenant_id"] == a.to_string().as_str());
    }
    let champion = &got[3].json();
    assert_eq!(champion["kind"], "alias_set");
    assert_eq!(
        champion["state"]["alias"], "champion",
        "the state is a JSON object"
    );
    // Delivery ids are unique per attempt.
    let ids: BTreeSet<&str> = got.iter().map(|r| r.header("jammi-delivery-id")).collect();
    assert_eq!(ids.len(), got.len());

    // The filtered webhook: registrations and alias moves of fraud-* models only.
    assert!(filtered.wait_until(WAIT, |r| r.len() >= 3).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kinds: Vec<(String, String)> = filtered
        .received()
        .iter()
        .map(|r| {
            let json = r.json();
            (
                json["kind"].as_str().unwrap().to_owned(),
                json["model_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("model_registered", "fraud-v1"),
        ("model_registered", "fraud-global"),
        ("alias_set", "fraud-v1"),
    ]
    .map(|(k, m)| (k.to_owned(), m.to_owned()));
    assert_eq!(kinds, expected);
    assert!(
        filtered
            .received()
            .iter()
            .all(|r| r.signed_with(&filtered_secret))
    );

    // Every attempt is recorded in the webhook's scope; the cursor is at the last event.
    let last = *visible.last().unwrap();
    let webhook = cursor_reaches(&ours, &every_id, last).await;
    assert!(webhook.last_event_id >= last, "{webhook:?}");
    let out = csv_query(
        &db.url,
        a,
        &format!(
            "SELECT count(*) AS n FROM jammi.public.webhook_deliveries \
             WHERE webhook_id = '{every_id}' AND status_code = 200"
        ),
    );
    assert_eq!(stdout(&out), "n\n5\n", "{}", stderr(&out));
    let code = server.terminate().await;
    assert!(code.success(), "{code:?}");
}

/// 500s, then no answer in time, then 200: every event arrives, in order, each attempt
/// recorded. A URL that never answers pauses its webhook after the bound, with the reason.
async fn failures_are_retried_in_order_and_a_dead_url_is_paused(db: &TestDb) {
    let a = TenantId::random();
    let receiver = Receiver::start().await;
    receiver.script([
        Reply::Status(500),
        Reply::Status(503),
        Reply::After(Duration::from_millis(1_500)),
    ]);
    let (id, _) = create_webhook(&db.url, Some(a), &["--url", &receiver.url()]);
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (dead_id, _) = create_webhook(&db.url, Some(a), &["--url", &format!("http://{dead}/")]);
    let server = delivering_server(
        &db.url,
        &["--webhook-timeout", "500ms", "--webhook-max-failures", "4"],
    )
    .await;
    let ours = db.scoped(a);
    for name in ["m1", "m2", "m3"] {
        ours.register_model(model(name)).await.unwrap();
    }
    let events = event_ids(&ours).await;
    assert!(
        receiver
            .wait_until(WAIT, |r| r
                .iter()
                .filter(|r| r.status == 200 && !r.late)
                .count()
                >= 3)
            .await
    );
    let got = receiver.received();
    let order: Vec<(i64, u16, bool)> = got
        .iter()
        .map(|r| (r.event_id(), r.status, r.late))
        .collect();
    assert_eq!(
        order,
        [
            (events[0], 500, false),
            (events[0], 503, false),
            (events[0], 200, true),
            (events[0], 200, false),
            (events[1], 200, false),
            (events[2], 200, false),
        ]
    );
    let webhook = cursor_reaches(&ours, &id, events[2]).await;
    assert_eq!((webhook.last_event_id, webhook.failures), (events[2], 0));

    // The dead URL: paused after 4 failures in a row at its first event.
    let paused = async {
        for _ in 0..300 {
            let w = ours.get_webhook(&dead_id).await.unwrap();
            if w.state == jammi_catalog::WebhookState::Paused {
                return Some(w);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
    .await
    .expect("the dead URL's webhook is paused");
    let reason = paused.paused_reason.unwrap();
    assert!(
        reason.contains(&format!(
            "4 failed deliveries in a row of event {}",
            events[0]
        )),
        "{reason}"
    );
    assert!(reason.contains("cannot connect"), "{reason}");

    let out = csv_query(
        &db.url,
        a,
        &format!(
            "SELECT webhook_id = '{id}' AS ours, attempt, status_code, \
               error LIKE '%no answer%' AS timed_out \
             FROM jammi.public.webhook_deliveries WHERE event_id = {} \
             ORDER BY ours, attempted_at",
            events[0]
        ),
    );
    assert_eq!(
        stdout(&out),
        "ours,attempt,status_code,timed_out\n\
         false,1,,false\nfalse,2,,false\nfalse,3,,false\nfalse,4,,false\n\
         true,1,500,false\ntrue,2,503,false\ntrue,3,,true\ntrue,4,200,\n",
        "{}",
        stderr(&out)
    );
    server.terminate().await;
}

/// `kill -9` mid-delivery: after a restart every event arrives, and nothing the catalog
/// had recorded as acknowledged arrives again.
async fn a_killed_server_loses_nothing(db: &TestDb) {
    let a = TenantId::random();
    let receiver = Receiver::start().await;
    let (id, _) = create_webhook(&db.url, Some(a), &["--url", &receiver.url()]);
    let server = delivering_server(&db.url, &[]).await;
    let ours = db.scoped(a);
    let writer = {
        let ours = ours.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                ours.register_model(model(&format!("m{i}"))).await.unwrap();
            }
        })
    };
    assert!(receiver.wait_until(WAIT, |r| r.len() >= 40).await);
    server.kill().await;
    writer.await.unwrap();
    let acknowledged = ours.get_webhook(&id).await.unwrap().last_event_id;
    let before = receiver.received().len();

    let restarted = delivering_server(&db.url, &[]).await;
    let events = event_ids(&ours).await;
    assert_eq!(events.len(), 200);
    let all: BTreeSet<i64> = events.iter().copied().collect();
    assert!(
        receiver
            .wait_until(WAIT * 2, |r| all
                .is_subset(&r.iter().map(|r| r.event_id()).collect()))
            .await,
        "every event arrives after the restart"
    );
    let after: Vec<i64> = receiver.received()[before..]
        .iter()
        .map(|r| r.event_id())
        .collect();
    assert!(
        after.iter().all(|&e| e > acknowledged),
        "nothing acknowledged ({acknowledged}) is delivered again: {after:?}"
    );
    assert!(after.windows(2).all(|w| w[0] < w[1]), "in order: {after:?}");
    // At most the attempt in flight at the kill arrives twice.
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    for r in receiver.received() {
        *seen.entry(r.event_id()).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.len() <= 1, "{twice:?}");
    restarted.terminate().await;
}

backend_tests!(
    the_webhook_commands_administer_a_scopes_webhooks,
    a_server_delivers_signed_filtered_events_in_order,
    failures_are_retried_in_order_and_a_dead_url_is_paused,
    a_killed_server_loses_nothing
);

/// Two servers on one Postgres: they share the webhooks, each event arrives once between
/// them, and stopping one hands its webhooks to the other at its next round.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_share_the_webhooks_of_one_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let a = TenantId::random();
    let receiver = Receiver::start().await;
    let webhooks: Vec<String> = (0..6)
        .map(|_| create_webhook(&db.url, Some(a), &["--url", &receiver.url()]).0)
        .collect();
    // Started together, they split the webhooks (each round a server claims half of the
    // free ones).
    let (one, two) = tokio::join!(
        delivering_server(&db.url, &["--webhook-lease", "6s"]),
        delivering_server(&db.url, &["--webhook-lease", "6s"])
    );
    let ours = db.scoped(a);
    let holders = async || -> Vec<Option<String>> {
        let webhooks = ours.list_webhooks().await.unwrap();
        webhooks.into_iter().map(|w| w.claimed_by).collect()
    };
    for _ in 0..300 {
        if holders().await.iter().all(Option::is_some) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let distinct: BTreeSet<Option<String>> = holders().await.into_iter().collect();
    assert_eq!(distinct.len(), 2, "both servers deliver some: {distinct:?}");
    for i in 0..10 {
        ours.register_model(model(&format!("m{i}"))).await.unwrap();
    }
    assert!(receiver.wait_until(WAIT, |r| r.len() >= 60).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_pair = |received: &[jammi_testkit::receiver::Received]| {
        let mut count: BTreeMap<(String, i64), usize> = BTreeMap::new();
        for r in received {
            *count
                .entry((r.header("jammi-webhook-id").to_owned(), r.event_id()))
                .or_default() += 1;
        }
        count
    };
    let counts = per_pair(&receiver.received());
    assert_eq!(counts.len(), 60);
    assert!(
        counts.values().all(|&n| n == 1),
        "each event once: {counts:?}"
    );

    // Stop the first: its webhooks go to the second at its next round (a third of a lease).
    assert!(one.terminate().await.success());
    for i in 10..12 {
        ours.register_model(model(&format!("m{i}"))).await.unwrap();
    }
    assert!(
        receiver
            .wait_until(Duration::from_secs(60), |r| r.len() >= 72)
            .await,
        "{} of 72",
        receiver.received().len()
    );
    let counts = per_pair(&receiver.received());
    assert_eq!(counts.len(), 72);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    let distinct: BTreeSet<Option<String>> = holders().await.into_iter().collect();
    assert_eq!(
        distinct.len(),
        1,
        "all held by the remaining server: {distinct:?}"
    );
    assert_eq!(webhooks.len(), 6);
    two.terminate().await;
    db.cleanup().await;
}

/// Postgres: an event whose transaction commits after a later id was delivered... is
/// not skipped: the later one waits, and both arrive in id order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_that_commits_late_is_delivered_in_order() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    use sqlx::Connection;
    let a = TenantId::random();
    let receiver = Receiver::start().await;
    create_webhook(&db.url, Some(a), &["--url", &receiver.url()]);
    let server = delivering_server(&db.url, &[]).await;
    let ours = db.scoped(a);
    ours.register_model(model("first")).await.unwrap();
    assert!(receiver.wait_until(WAIT, |r| r.len() == 1).await);

    // Hold an event id open the way the catalog appends (transaction id first).
    let mut held = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut held).await.unwrap();
    sqlx::raw_sql("SELECT pg_current_xact_id()")
        .execute(&mut held)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO events (owner, event_time, kind, entity, row_key, model_id, version, state) \
         VALUES ($1, 0, 'model_registered', 'models', 'late::1', 'late', 1, NULL)",
    )
    .bind(a.to_string())
    .execute(&mut held)
    .await
    .unwrap();
    ours.register_model(model("after")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "the later id waits for the gap"
    );
    sqlx::raw_sql("COMMIT").execute(&mut held).await.unwrap();
    assert!(receiver.wait_until(WAIT, |r| r.len() >= 3).await);
    let names: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.json()["model_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["first", "late", "after"]);
    server.terminate().await;
    db.cleanup().await;
}

/// The README's receiver (examples/webhook_receiver.py): a real `jammi serve` delivers to
/// it, it checks the signature and deploys the new champion; a forged delivery is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_readme_receiver_deploys_a_new_champion() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let db = TestDb::sqlite().await;
    let a = TenantId::random();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/webhook_receiver.py"
    );
    // The secret comes from `jammi webhook create`, so the receiver starts second: give
    // the webhook the port of a listener the receiver then takes over.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/jammi");
    let (_, secret) = create_webhook(&db.url, Some(a), &["--url", &url, "--events", "alias_set"]);
    let mut receiver = tokio::process::Command::new("python3")
        .args([script, &port.to_string()])
        .env("JAMMI_WEBHOOK_SECRET", &secret)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs the receiver");
    let mut lines = BufReader::new(receiver.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.as_deref(),
        Some(format!("listening on {port}").as_str())
    );

    // A forged delivery is refused.
    let forged = reqwest::Client::new()
        .post(&url)
        .header("Jammi-Delivery-Id", "d")
        .header("Jammi-Timestamp", "1")
        .header("Jammi-Signature", "sha256=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);

    let server = delivering_server(&db.url, &[]).await;
    let ours = db.scoped(a);
    ours.register_model(model("acme/support-embed"))
        .await
        .unwrap();
    ours.register_model(model("acme/support-embed"))
        .await
        .unwrap();
    ours.set_model_alias("acme/support-embed", "staging", 2)
        .await
        .unwrap();
    ours.set_model_alias("acme/support-embed", "champion", 2)
        .await
        .unwrap();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(line.as_deref(), Some("deploy acme/support-embed version 2"));
    server.terminate().await;
}
