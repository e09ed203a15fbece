//! Webhook delivery by `jammi serve` (SPEC §16), to a receiver on 127.0.0.1 (the tests'):
//!
//! - `latency`: from a register's commit returning in this process to its event reaching
//!   the receiver, one event at a time, at a random moment (so SQLite's poll is sampled
//!   at every phase). Beside it, the floor: the same POST sent by a bare reqwest client.
//!   Every sample is kept, and their p50 and p99 are written to
//!   `target/criterion/webhook_delivery/latency.json` for `benches/report.py`.
//! - `backlog`: 10 000 events already in the log, delivered to a new webhook (`--since`):
//!   from the first event's arrival to the last's. Beside it, the same 10 000 POSTs from a
//!   bare client, one at a time: what delivery adds is the cursor's write per event.
//!
//! A SQLite file always; Postgres with `JAMMI_TEST_PG_URL`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use jammi_catalog::{Catalog, ModelTask, NewWebhook, RegisterModel, TenantId};
use jammi_testkit::TestDb;
use jammi_testkit::generate::{generate_models, tenant};
use jammi_testkit::receiver::Receiver;
use jammi_testkit::rng::Rng;
use tokio::runtime::Runtime;

const BACKLOG: u64 = 10_000;

/// A `jammi serve` delivering webhooks, killed when dropped.
struct Server(Child);

impl Server {
    fn start(db: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_jammi"))
            .args([
                "serve",
                "--db",
                db,
                "--listen",
                "127.0.0.1:0",
                "--webhook-lease",
                "3s",
                "--webhook-timeout",
                "1s",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start jammi serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Server(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn model(name: &str) -> RegisterModel {
    RegisterModel::new(name, "embedding", "candle", ModelTask::TextEmbedding)
}

/// Waits until the receiver has `n` requests; when the last came.
async fn nth_arrival(receiver: &Receiver, n: usize) -> Instant {
    assert!(
        receiver
            .wait_until(Duration::from_secs(120), |r| r.len() >= n)
            .await,
        "{} of {n} deliveries arrived",
        receiver.received().len()
    );
    receiver.received()[n - 1].at
}

/// The `q`-quantile of `samples` (sorted here).
fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[i.min(samples.len() - 1)]
}

fn latency(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("webhook_delivery");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    let mut percentiles = serde_json::Map::new();
    for (backend, db) in databases(&rt) {
        let receiver = rt.block_on(Receiver::start());
        let t = TenantId::random();
        let catalog = db.catalog.with_scope(Some(t));
        rt.block_on(catalog.create_webhook(NewWebhook::new(receiver.url())))
            .unwrap();
        let _server = Server::start(&db.url);
        // The server claims the webhook at its start.
        rt.block_on(catalog.register_model(model("warm-up")))
            .unwrap();
        rt.block_on(nth_arrival(&receiver, 1));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let mut rng = Rng(7);
        let mut n = 0usize;
        group.bench_function(
            BenchmarkId::new(format!("{backend}/latency"), "catalog"),
            |b| {
                b.iter_custom(|rounds| {
                    rt.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..rounds {
                            let pause = Duration::from_micros(rng.next_u64() % 100_000);
                            tokio::time::sleep(pause).await;
                            n += 1;
                            catalog
                                .register_model(model(&format!("m{n}")))
                                .await
                                .unwrap();
                            let committed = Instant::now();
                            let arrived = nth_arrival(&receiver, n + 1).await;
                            let took = arrived.saturating_duration_since(committed);
                            samples.lock().unwrap().push(took);
                            total += took;
                        }
                        total
                    })
                })
            },
        );
        let client = reqwest::Client::new();
        let body = rt
            .block_on(catalog.list_events())
            .unwrap()
            .last()
            .unwrap()
            .to_json()
            .to_string();
        group.bench_function(
            BenchmarkId::new(format!("{backend}/latency"), "bare_post"),
            |b| {
                b.to_async(&rt).iter(|| async {
                    let sent = client.post(receiver.url()).body(body.clone()).send().await;
                    assert!(sent.unwrap().status().is_success());
                })
            },
        );
        let mut all = samples.lock().unwrap().clone();
        let (p50, p99) = (quantile(&mut all, 0.5), quantile(&mut all, 0.99));
        percentiles.insert(
            backend.to_owned(),
            serde_json::json!({
                "samples": all.len(),
                "p50_s": p50.as_secs_f64(),
                "p99_s": p99.as_secs_f64(),
            }),
        );
        rt.block_on(db.cleanup());
    }
    group.finish();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/criterion/webhook_delivery");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("latency.json"),
        serde_json::Value::Object(percentiles).to_string(),
    )
    .unwrap();
}

fn backlog(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("webhook_backlog");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BACKLOG));
    for (backend, db) in databases(&rt) {
        let owner = tenant(0);
        rt.block_on(generate_models(&db.catalog, BACKLOG, 1));
        let catalog: Catalog = db.catalog.with_scope(Some(owner));
        let _server = Server::start(&db.url);
        group.bench_function(
            BenchmarkId::new(format!("{backend}/backlog"), "catalog"),
            |b| {
                b.iter_custom(|rounds| {
                    rt.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..rounds {
                            // A new webhook replays the whole backlog.
                            let receiver = Receiver::start().await;
                            let webhook = catalog
                                .create_webhook(NewWebhook {
                                    since: Some(0),
                                    ..NewWebhook::new(receiver.url())
                                })
                                .await
                                .unwrap()
                                .webhook;
                            let first = nth_arrival(&receiver, 1).await;
                            let last = nth_arrival(&receiver, BACKLOG as usize).await;
                            total += last.duration_since(first);
                            catalog.delete_webhook(&webhook.webhook_id).await.unwrap();
                        }
                        total
                    })
                })
            },
        );
        let receiver = rt.block_on(Receiver::start());
        let client = reqwest::Client::new();
        let bodies: Vec<String> = rt
            .block_on(catalog.list_events())
            .unwrap()
            .iter()
            .map(|e| e.to_json().to_string())
            .collect();
        group.bench_function(
            BenchmarkId::new(format!("{backend}/backlog"), "bare_posts"),
            |b| {
                b.to_async(&rt).iter(|| async {
                    for body in &bodies {
                        let sent = client.post(receiver.url()).body(body.clone()).send().await;
                        assert!(sent.unwrap().status().is_success());
                    }
                })
            },
        );
        rt.block_on(db.cleanup());
    }
    group.finish();
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A SQLite file always; a Postgres schema when `JAMMI_TEST_PG_URL` is set.
fn databases(rt: &Runtime) -> Vec<(&'static str, TestDb)> {
    let mut all = vec![("sqlite", rt.block_on(TestDb::sqlite()))];
    if let Some(pg) = rt.block_on(TestDb::postgres()) {
        all.push(("postgres", pg));
    }
    all
}

criterion_group!(benches, latency, backlog);
criterion_main!(benches);
