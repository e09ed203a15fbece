//! Flight SQL throughput (SPEC §11): queries/s and registers/s with 1, 8 and 32 concurrent
//! clients of a `jammi serve` process, against the same statements run in-process (one
//! DataFusion session per task, as an embedding engine would) by as many tasks.
//!
//! Both sides send each statement as a client does: Flight SQL's query path
//! (`GetFlightInfo`, then `DoGet` of the ticket: what ADBC's `cursor.execute` does), and
//! `ctx.sql(…).collect()` in-process. A SQLite file always; Postgres with
//! `JAMMI_TEST_PG_URL`. `benches/report.py` turns the figures into docs/benchmarks.md.
//!
//! `server_time` (issue 24): the server's own time for the calls ADBC makes for one
//! parameterized point query, from its log, beside the same query in-process.
//!
//! `auth_flood` (SPEC §14): a good client's query latency, idle and while another client
//! sends made-up tokens.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_flight::sql::client::FlightSqlServiceClient;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use jammi_catalog::{Catalog, register_catalog};
use jammi_testkit::TestDb;
use jammi_testkit::fixture::{TENANT_A, populate, tenant_a};
use tokio::runtime::Runtime;
use tonic::transport::Channel;

/// Statements each client runs per measured round.
const PER_CLIENT: usize = 20;
const CLIENTS: [usize; 3] = [1, 8, 32];

const QUERY: &str =
    "SELECT model_id, version FROM jammi.public.models WHERE model_id = 'a-embed' AND version = 2";

fn register(client: usize) -> String {
    format!(
        "SELECT register_model('bench-{client}', NULL, 'embedding', 'candle', 'text_embedding')"
    )
}

/// A `jammi serve` on a free port, killed when dropped.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(db: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_jammi"))
            .args(["serve", "--db", db, "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start jammi serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.rsplit("grpc://").next().unwrap().trim().to_owned();
        Server { child, address }
    }
}

impl Server {
    /// A server whose log is followed.
    fn start_logged(db: &str) -> (Server, CallLog) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_jammi"))
            .args(["serve", "--db", db, "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start jammi serve");
        let log = CallLog::default();
        log.follow(child.stderr.take().unwrap());
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.rsplit("grpc://").next().unwrap().trim().to_owned();
        (Server { child, address }, log)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token of tenant A labelled `name` with `access`.
fn token(db: &str, name: &str, access: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_jammi"))
        .args([
            "token", "create", "--db", db, "--tenant", TENANT_A, "--name", name, "--access", access,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A Flight SQL client of `address` presenting `token`.
async fn client(address: &str, token: &str) -> FlightSqlServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = FlightSqlServiceClient::new(channel);
    client.set_token(token.to_owned());
    client
}

/// One Flight SQL round trip of `sql` (query path); returns the rows.
async fn flight(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> usize {
    let info = client.execute(sql.to_owned(), None).await.unwrap();
    let mut rows = 0;
    for endpoint in info.endpoint {
        let stream = client.do_get(endpoint.ticket.unwrap()).await.unwrap();
        let batches: Vec<_> = stream.try_collect().await.unwrap();
        rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
    }
    rows
}

async fn in_process(ctx: &SessionContext, sql: &str) -> usize {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    batches.iter().map(|b| b.num_rows()).sum()
}

/// Runs `PER_CLIENT` statements on each of `clients` at once; the elapsed time.
async fn flight_round(
    clients: &[FlightSqlServiceClient<Channel>],
    register_rounds: bool,
) -> Duration {
    let started = Instant::now();
    let tasks = clients.iter().cloned().enumerate().map(|(i, mut client)| {
        tokio::spawn(async move {
            for _ in 0..PER_CLIENT {
                let sql = if register_rounds {
                    register(i)
                } else {
                    QUERY.to_owned()
                };
                assert_eq!(flight(&mut client, &sql).await, 1);
            }
        })
    });
    for task in futures::future::join_all(tasks).await {
        task.unwrap();
    }
    started.elapsed()
}

async fn in_process_round(sessions: &[SessionContext], register_rounds: bool) -> Duration {
    let started = Instant::now();
    let tasks = sessions.iter().cloned().enumerate().map(|(i, ctx)| {
        tokio::spawn(async move {
            for _ in 0..PER_CLIENT {
                let sql = if register_rounds {
                    register(i)
                } else {
                    QUERY.to_owned()
                };
                assert_eq!(in_process(&ctx, &sql).await, 1);
            }
        })
    });
    for task in futures::future::join_all(tasks).await {
        task.unwrap();
    }
    started.elapsed()
}

fn flight_sql(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("flight_sql");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for (backend, db) in databases(&rt) {
        rt.block_on(populate(&db.catalog));
        let token = token(&db.url, "bench", "write");
        let server = Server::start(&db.url);
        let catalog = rt.block_on(Catalog::open(&db.url)).unwrap();
        for clients in CLIENTS {
            let flight_clients: Vec<_> = rt.block_on(async {
                let mut all = Vec::new();
                for _ in 0..clients {
                    all.push(client(&server.address, &token).await);
                }
                all
            });
            let sessions: Vec<_> = (0..clients)
                .map(|_| {
                    let ctx = SessionContext::new();
                    register_catalog(&ctx, &catalog.with_scope(Some(tenant_a())));
                    ctx
                })
                .collect();
            group.throughput(Throughput::Elements((clients * PER_CLIENT) as u64));
            for (what, registers) in [("query", false), ("register", true)] {
                group.bench_with_input(
                    BenchmarkId::new(format!("{backend}/{what}/flight"), clients),
                    &clients,
                    |b, _| {
                        b.iter_custom(|rounds| {
                            rt.block_on(async {
                                let mut total = Duration::ZERO;
                                for _ in 0..rounds {
                                    total += flight_round(&flight_clients, registers).await;
                                }
                                total
                            })
                        })
                    },
                );
                group.bench_with_input(
                    BenchmarkId::new(format!("{backend}/{what}/in_process"), clients),
                    &clients,
                    |b, _| {
                        b.iter_custom(|rounds| {
                            rt.block_on(async {
                                let mut total = Duration::ZERO;
                                for _ in 0..rounds {
                                    total += in_process_round(&sessions, registers).await;
                                }
                                total
                            })
                        })
                    },
                );
            }
        }
        drop(server);
        rt.block_on(db.cleanup());
    }
    group.finish();
}

/// Bad tokens one client sends, each once per pass, at most this many in flight.
const BAD_TOKENS: usize = 10_000;
const FLOOD_IN_FLIGHT: usize = 64;

/// A client with a good read token queries while another client floods the server with
/// made-up tokens (SPEC §14): the good client's latency, idle and during the flood. Every
/// call comes from 127.0.0.1, so the good client shares the guesser's address.
fn auth_flood(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("auth_flood");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    let db = rt.block_on(TestDb::sqlite());
    rt.block_on(populate(&db.catalog));
    let reader = token(&db.url, "dashboard", "read");
    let server = Server::start(&db.url);
    let mut good = rt.block_on(client(&server.address, &reader));
    let mut measure = |name: &str| {
        group.bench_function(name, |b| {
            b.iter_custom(|rounds| {
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..rounds {
                        assert_eq!(flight(&mut good, QUERY).await, 1);
                    }
                    started.elapsed()
                })
            })
        });
    };
    measure("sqlite/good_query/idle");
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let flood = rt.spawn({
        let (address, answered) = (server.address.clone(), std::sync::Arc::clone(&answered));
        async move {
            use futures::StreamExt;
            let guesser = client(&address, "none").await;
            loop {
                futures::stream::iter(0..BAD_TOKENS)
                    .for_each_concurrent(FLOOD_IN_FLIGHT, |i| {
                        let (mut guesser, answered) = (guesser.clone(), &answered);
                        async move {
                            guesser.set_token(format!("jammi_{i:016x}_{:064x}", i));
                            assert!(guesser.execute(QUERY.to_owned(), None).await.is_err());
                            answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    })
                    .await;
            }
        }
    });
    // Let the flood reach its pace before measuring.
    std::thread::sleep(Duration::from_secs(2));
    let (before, started) = (
        answered.load(std::sync::atomic::Ordering::Relaxed),
        Instant::now(),
    );
    measure("sqlite/good_query/flood");
    let refused = answered.load(std::sync::atomic::Ordering::Relaxed) - before;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("auth_flood: {refused} bad-token calls refused in {seconds:.1} s while measuring");
    flood.abort();
    // Beside criterion's output, for the report (the workspace's target directory).
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        std::path::PathBuf::from,
    );
    let dir = target.join("criterion").join("auth_flood");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("flood.json"),
        format!("{{\"refused\": {refused}, \"seconds\": {seconds}}}"),
    )
    .unwrap();
    group.finish();
    drop(server);
    rt.block_on(db.cleanup());
}

/// The calls ADBC's `cursor.execute(sql, parameters)` makes, in order.
const ADBC_CALLS: [&str; 4] = ["CreatePreparedStatement", "DoPut", "GetFlightInfo", "DoGet"];

/// The parameterized point query, as a notebook sends it through ADBC.
const PREPARED_QUERY: &str =
    "SELECT model_id, version FROM jammi.public.models WHERE model_id = $1 AND version = $2";

/// The server's own time per statement (issue 24): the durations its log gives for the
/// calls ADBC makes for one parameterized point query, summed. Criterion's time here is
/// that sum (not the client's wall time), beside the in-process point query.
fn server_time(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("server_time");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    for (backend, db) in databases(&rt) {
        rt.block_on(populate(&db.catalog));
        let token = token(&db.url, "bench", "read");
        let (server, log) = Server::start_logged(&db.url);
        let mut client = rt.block_on(client(&server.address, &token));
        let parameters = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("0", DataType::Utf8, false),
                Field::new("1", DataType::Int64, false),
            ])),
            vec![
                Arc::new(StringArray::from(vec!["a-embed"])),
                Arc::new(Int64Array::from(vec![2])),
            ],
        )
        .unwrap();
        group.bench_function(format!("{backend}/prepared_point_query"), |b| {
            b.iter_custom(|rounds| {
                rt.block_on(async {
                    let before = log.total(0);
                    for _ in 0..rounds {
                        let mut prepared = client
                            .prepare(PREPARED_QUERY.to_owned(), None)
                            .await
                            .unwrap();
                        prepared.set_parameters(parameters.clone()).unwrap();
                        let info = prepared.execute().await.unwrap();
                        let ticket = info.endpoint[0].ticket.clone().unwrap();
                        let batches: Vec<_> = client
                            .do_get(ticket)
                            .await
                            .unwrap()
                            .try_collect()
                            .await
                            .unwrap();
                        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
                    }
                    log.total(before.calls + ADBC_CALLS.len() * rounds as usize)
                        .time
                        - before.time
                })
            })
        });
        let ctx = SessionContext::new();
        register_catalog(
            &ctx,
            &rt.block_on(Catalog::open(&db.url))
                .unwrap()
                .with_scope(Some(tenant_a())),
        );
        group.bench_function(format!("{backend}/point_query/in_process"), |b| {
            b.iter(|| rt.block_on(in_process(&ctx, QUERY)))
        });
        drop(server);
        rt.block_on(db.cleanup());
    }
    group.finish();
}

/// What the server's log says of the calls ADBC makes: how many, and their time.
#[derive(Clone, Copy, Default)]
struct Logged {
    calls: usize,
    time: Duration,
}

/// The log of a server, read as it is written.
#[derive(Clone, Default)]
struct CallLog(Arc<(std::sync::Mutex<Logged>, std::sync::Condvar)>);

impl CallLog {
    /// Reads `stderr` line by line, counting the lines of `ADBC_CALLS`.
    fn follow(&self, stderr: std::process::ChildStderr) {
        let log = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let Some(ms) = field(&line, "duration_ms=") else {
                    continue;
                };
                let call = field(&line, "call=").unwrap_or_default();
                if !ADBC_CALLS.contains(&call.trim_matches('"')) {
                    continue;
                }
                let (lock, changed) = &*log.0;
                let mut logged = lock.lock().unwrap();
                logged.calls += 1;
                logged.time += Duration::from_secs_f64(ms.parse::<f64>().unwrap() / 1000.0);
                changed.notify_all();
            }
        });
    }

    /// The totals once at least `calls` calls are logged (a call's line can come just
    /// after its client saw the answer).
    fn total(&self, calls: usize) -> Logged {
        let (lock, changed) = &*self.0;
        let logged = changed
            .wait_timeout_while(lock.lock().unwrap(), Duration::from_secs(30), |l| {
                l.calls < calls
            })
            .unwrap()
            .0;
        assert!(
            logged.calls >= calls,
            "{} of {calls} calls logged",
            logged.calls
        );
        *logged
    }
}

/// The value of `name` (e.g. `duration_ms=`) in a log line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(name)? + name.len();
    line[start..].split_whitespace().next()
}

/// A SQLite file always; a Postgres schema when `JAMMI_TEST_PG_URL` is set.
fn databases(rt: &Runtime) -> Vec<(&'static str, TestDb)> {
    let mut all = vec![("sqlite", rt.block_on(TestDb::sqlite()))];
    if let Some(pg) = rt.block_on(TestDb::postgres()) {
        all.push(("postgres", pg));
    }
    all
}

criterion_group!(benches, flight_sql, server_time, auth_flood);
criterion_main!(benches);
