//! The catalog against its baselines, each pair measured in the same run (SPEC §10).
//!
//! `cargo bench` runs everything on SQLite, and the Postgres variants too when
//! `JAMMI_TEST_PG_URL` is set. `python3 benches/report.py` turns criterion's output into
//! `docs/benchmarks.md`. Groups:
//!
//! - `get_latest/{versions}`: `Catalog::get_model` vs raw sqlx running the same SQL, and on
//!   SQLite vs the same SQL through SQLite's C API.
//! - `point_query/{rows}`: `SELECT … WHERE model_id = …` through `ctx.sql` on catalogs of
//!   1 000 and 1 000 000 rows across 1 000 tenants, planning and execution apart, vs the
//!   same query on a `MemTable` of the tenant's rows.
//! - `listing_scan`: a tenant's 100 000 rows into Arrow vs a `MemTable` of them, vs sqlx
//!   fetching the same rows, and vs the floor (SQLite: stepping the statement through the
//!   C API; Postgres: a binary `COPY` of the rows); the scan's own conversion time beside it.
//! - `registry`: register with an allocated version (of one model with 1 000+ versions,
//!   and of new models) and delete with its reference scan, through the catalog and
//!   through the baselines of `support/registry.rs`.
//! - `register`: `INSERT INTO … SELECT` of 100 000 rows vs raw sqlx multi-row upserts in
//!   one transaction.
//! - `delete`: deleting a version (with its reference scan) alone and under 8 concurrent
//!   registers of the same model (each with an eval run referencing it), with retries.
//! - `session_limits`: a session built (and a point query run in it) with the catalog
//!   only, and with every call under the server's limits (SPEC §14).
//! - `statement_stages`: where a server's statement spends its fixed cost (issue 24), one
//!   stage at a time on a parameterized point query: the session derived from the
//!   template, SQL to a logical plan, analysis, binding a cached plan, optimizing, physical
//!   planning, and running.
//! - `joins/{scale}`: three questions joining catalog tables (issue 25, SPEC §15) through
//!   `ctx.sql`, vs the same question written by hand against the database (SQLite's C
//!   API; raw sqlx on Postgres), at 200 000 eval runs per tenant and at 10× that history
//!   (`support/joins.rs`).

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use datafusion::datasource::MemTable;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::TryStreamExt;
use jammi_catalog::sql::limits::{StatementLimits, bound_functions, bound_state};
use jammi_catalog::sql::plans::PreparedPlan;
use jammi_catalog::sql::session::SessionTemplate;
use jammi_catalog::{Catalog, ModelTask, NewEvalRun, RegisterModel, TenantId, register_catalog};
use jammi_testkit::generate::{generate_models, generate_versions, model_name, tenant};
use tokio::runtime::Runtime;

#[path = "support/c_api.rs"]
mod c_api;
#[path = "support/joins.rs"]
mod joins;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/statements.rs"]
mod statements;

use registry::Baseline;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A fresh catalog database per benchmark: a temp SQLite file, or a new Postgres schema
/// (dropped when the benchmark is done).
struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<(String, String)>,
}

impl Drop for Db {
    fn drop(&mut self) {
        let Some((base, schema)) = self.pg_schema.take() else {
            return;
        };
        // Drop runs outside any runtime's async context: a small runtime of its own.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(pg_admin(&base, &format!("DROP SCHEMA {schema} CASCADE")));
        })
        .join()
        .unwrap();
    }
}

async fn pg_admin(base: &str, statement: &str) {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(base).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut admin)
        .await
        .unwrap();
}

/// The backends of this run: SQLite, and Postgres when `JAMMI_TEST_PG_URL` is set.
fn backends() -> Vec<&'static str> {
    let postgres = std::env::var("JAMMI_TEST_PG_URL").is_ok();
    ["sqlite"]
        .into_iter()
        .chain(postgres.then_some("postgres"))
        .collect()
}

/// A new, empty database of `backend`.
fn new_db(rt: &Runtime, backend: &str) -> Db {
    if backend == "sqlite" {
        let dir = tempfile::tempdir().unwrap();
        return Db {
            url: format!("sqlite://{}", dir.path().join("bench.db").display()),
            _dir: Some(dir),
            pg_schema: None,
        };
    }
    let base = std::env::var("JAMMI_TEST_PG_URL").unwrap();
    let schema = format!("jammi_bench_{}", uuid::Uuid::new_v4().simple());
    rt.block_on(pg_admin(&base, &format!("CREATE SCHEMA {schema}")));
    let sep = if base.contains('?') { '&' } else { '?' };
    Db {
        url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
        _dir: None,
        pg_schema: Some((base, schema)),
    }
}

/// A new database of each backend of this run.
fn databases(rt: &Runtime) -> Vec<(&'static str, Db)> {
    backends()
        .into_iter()
        .map(|backend| (backend, new_db(rt, backend)))
        .collect()
}

fn get_latest(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("get_latest");
    for (backend, db) in databases(&rt) {
        let catalog = rt.block_on(Catalog::open(&db.url)).unwrap();
        let t = TenantId::random();
        let scoped = catalog.with_scope(Some(t));
        for versions in [1u64, 1_000, 100_000] {
            let name = format!("m{versions}");
            rt.block_on(generate_versions(&scoped, &name, versions));
            let owner = t.to_string();
            // The baseline: one raw sqlx query with the same SQL, on its own pool.
            let raw = RawPool::open(&rt, &db.url);
            group.bench_function(
                BenchmarkId::new(format!("{backend}/catalog"), versions),
                |b| {
                    b.to_async(&rt)
                        .iter(|| async { scoped.get_model(&name).await.unwrap() })
                },
            );
            group.bench_function(
                BenchmarkId::new(format!("{backend}/raw_sqlx"), versions),
                |b| b.to_async(&rt).iter(|| raw.get_latest(&name, &owner)),
            );
            if backend == "sqlite" {
                let mut c = rt.block_on(Baseline::open(&db.url));
                group.bench_function(BenchmarkId::new("sqlite/c_api", versions), |b| {
                    b.iter(|| rt.block_on(c.get_latest(&owner, &name)))
                });
            }
        }
    }
    group.finish();
}

/// A raw sqlx pool for the baselines.
enum RawPool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl RawPool {
    fn open(rt: &Runtime, url: &str) -> RawPool {
        rt.block_on(async {
            if url.starts_with("postgres") {
                RawPool::Postgres(sqlx::PgPool::connect(url).await.unwrap())
            } else {
                RawPool::Sqlite(sqlx::SqlitePool::connect(url).await.unwrap())
            }
        })
    }

    async fn get_latest(&self, name: &str, owner: &str) -> usize {
        match self {
            RawPool::Sqlite(p) => sqlx::query(statements::GET_LATEST)
                .bind(name)
                .bind(owner)
                .fetch_all(p)
                .await
                .unwrap()
                .len(),
            RawPool::Postgres(p) => sqlx::query(statements::GET_LATEST)
                .bind(name)
                .bind(owner)
                .fetch_all(p)
                .await
                .unwrap()
                .len(),
        }
    }

    /// Streams every model row `owner` can see, as the listing scan reads them.
    async fn count_visible(&self, owner: &str) -> usize {
        const SQL: &str = statements::LISTING;
        match self {
            RawPool::Sqlite(p) => {
                sqlx::query(SQL)
                    .bind(owner)
                    .fetch(p)
                    .try_fold(0, |n, _| async move { Ok(n + 1) })
                    .await
            }
            RawPool::Postgres(p) => {
                sqlx::query(SQL)
                    .bind(owner)
                    .fetch(p)
                    .try_fold(0, |n, _| async move { Ok(n + 1) })
                    .await
            }
        }
        .unwrap()
    }
}

/// The physical plan of `sql` in `ctx`: what the planning benchmarks time, and what the
/// execution benchmarks run again and again.
async fn physical_plan(ctx: &SessionContext, sql: &str) -> Arc<dyn ExecutionPlan> {
    ctx.sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap()
}

/// A session for `tenant` over `catalog`, plus a `MemTable` named `mem` holding the rows
/// that tenant can see.
fn sessions(rt: &Runtime, catalog: &Catalog, tenant: TenantId) -> (SessionContext, SessionContext) {
    let ctx = SessionContext::new();
    register_catalog(&ctx, &catalog.with_scope(Some(tenant)));
    let mem_ctx = SessionContext::new();
    rt.block_on(async {
        let df = ctx.sql("SELECT * FROM jammi.public.models").await.unwrap();
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.unwrap();
        let table = MemTable::try_new(schema, vec![batches]).unwrap();
        mem_ctx.register_table("mem", Arc::new(table)).unwrap();
    });
    (ctx, mem_ctx)
}

fn point_query(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("point_query");
    for (backend, rows) in backends()
        .into_iter()
        .flat_map(|backend| [(backend, 1_000u64), (backend, 1_000_000)])
    {
        let db = new_db(&rt, backend);
        let catalog = rt.block_on(Catalog::open(&db.url)).unwrap();
        rt.block_on(generate_models(&catalog, rows, 1_000));
        let t = tenant(417);
        let (ctx, mem) = sessions(&rt, &catalog, t);
        let name = model_name(0);
        for (label, ctx, table) in [
            ("catalog", &ctx, "jammi.public.models"),
            ("memtable", &mem, "mem"),
        ] {
            let sql = format!(
                "SELECT model_id, version, artifact_path FROM {table} WHERE model_id = '{name}'"
            );
            group.bench_function(
                BenchmarkId::new(format!("{backend}/{label}/plan"), rows),
                |b| b.to_async(&rt).iter(|| physical_plan(ctx, &sql)),
            );
            let plan = rt.block_on(physical_plan(ctx, &sql));
            let task = ctx.task_ctx();
            group.bench_function(
                BenchmarkId::new(format!("{backend}/{label}/execute"), rows),
                |b| {
                    b.to_async(&rt).iter(|| async {
                        let batches = collect(Arc::clone(&plan), Arc::clone(&task)).await.unwrap();
                        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
                    })
                },
            );
        }
        // The scan's fixed cost per execution: a statement that finds no row, so what is
        // left is taking a connection, starting the scan's tasks and running the statement.
        let plan = rt.block_on(physical_plan(
            &ctx,
            "SELECT model_id FROM jammi.public.models WHERE model_id = 'no-such-model'",
        ));
        let task = ctx.task_ctx();
        group.bench_function(
            BenchmarkId::new(format!("{backend}/no_rows/execute"), rows),
            |b| {
                b.to_async(&rt).iter(|| async {
                    let batches = collect(Arc::clone(&plan), Arc::clone(&task)).await.unwrap();
                    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
                })
            },
        );
    }
    group.finish();
}

fn listing_scan(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("listing_scan");
    let rows = 100_000u64;
    group.throughput(Throughput::Elements(rows));
    group.sample_size(10);
    let mut conversions = serde_json::Map::new();
    for (backend, db) in databases(&rt) {
        let catalog = rt.block_on(Catalog::open(&db.url)).unwrap();
        // Two tenants: the scan must skip the other one's rows.
        rt.block_on(generate_models(&catalog, rows * 2, 2));
        let (ctx, mem) = sessions(&rt, &catalog, tenant(0));
        for (label, ctx, table) in [
            ("catalog", &ctx, "jammi.public.models"),
            ("memtable", &mem, "mem"),
        ] {
            let sql = format!("SELECT * FROM {table}");
            let plan = rt.block_on(physical_plan(ctx, &sql));
            let task = ctx.task_ctx();
            group.bench_function(format!("{backend}/{label}"), |b| {
                b.to_async(&rt).iter(|| async {
                    let batches = collect(Arc::clone(&plan), Arc::clone(&task)).await.unwrap();
                    assert_eq!(
                        batches.iter().map(|b| b.num_rows()).sum::<usize>(),
                        rows as usize
                    );
                })
            });
            if let Some((converted, seconds)) = conversion(&plan).filter(|(rows, _)| *rows > 0) {
                conversions.insert(
                    backend.to_owned(),
                    serde_json::json!({ "rows": converted, "seconds": seconds }),
                );
            }
        }
        // sqlx fetching the same rows, none converted.
        let raw = RawPool::open(&rt, &db.url);
        let owner = tenant(0).to_string();
        group.bench_function(format!("{backend}/raw_sqlx_fetch"), |b| {
            b.to_async(&rt).iter(|| async {
                assert_eq!(raw.count_visible(&owner).await, rows as usize);
            })
        });
        // The floor: the fastest read of the same rows this machine has, no Arrow.
        match &raw {
            RawPool::Sqlite(_) => {
                let mut c = c_api::CApi::open(&db.url);
                group.bench_function("sqlite/floor", |b| {
                    b.iter(|| assert_eq!(c_api_listing(&mut c, &owner), rows as usize))
                });
            }
            RawPool::Postgres(pool) => {
                use sqlx::postgres::PgPoolCopyExt;
                // COPY takes no parameters: the owner is a UUID the bench made.
                let copy = format!(
                    "COPY ({}) TO STDOUT (FORMAT binary)",
                    statements::LISTING.replace("$1", &format!("'{owner}'"))
                );
                group.bench_function("postgres/floor", |b| {
                    b.to_async(&rt).iter(|| async {
                        let bytes: usize = pool
                            .copy_out_raw(&copy)
                            .await
                            .unwrap()
                            .try_fold(0, |n, chunk| async move { Ok(n + chunk.len()) })
                            .await
                            .unwrap();
                        assert!(bytes > rows as usize * 100);
                    })
                });
            }
        }
    }
    group.finish();
    write_beside_criterion("listing_scan", "conversion.json", conversions);
}

/// The listing's statement stepped through SQLite's C API, each value read in place (text
/// as `&str`, checked UTF-8, as the scan reads it); returns the rows.
fn c_api_listing(c: &mut c_api::CApi, owner: &str) -> usize {
    let mut bytes = 0usize;
    let rows = c.run(statements::LISTING, &[c_api::P::T(owner)], |stmt| {
        for i in 0..13 {
            // SAFETY: on a row of the statement, which has 13 columns.
            unsafe {
                match libsqlite3_sys::sqlite3_column_type(stmt, i) {
                    libsqlite3_sys::SQLITE_INTEGER => {
                        bytes += libsqlite3_sys::sqlite3_column_int64(stmt, i) as usize & 1
                    }
                    libsqlite3_sys::SQLITE_TEXT => bytes += c_api::column_str(stmt, i).len(),
                    _ => {}
                }
            }
        }
    });
    std::hint::black_box(bytes);
    rows
}

/// The Arrow conversion inside the catalog's scan over all runs of `plan`: rows converted
/// and seconds spent converting them (the scan's `elapsed_compute`, which leaves out the
/// wait for the database's rows).
fn conversion(plan: &Arc<dyn ExecutionPlan>) -> Option<(usize, f64)> {
    if plan.name() == "JammiScanExec" {
        let metrics = plan.metrics()?;
        return Some((
            metrics.output_rows()?,
            metrics.elapsed_compute()? as f64 / 1e9,
        ));
    }
    plan.children().into_iter().find_map(conversion)
}

/// Writes figures that criterion does not measure next to its output, for the report;
/// a run that filtered the group out (nothing measured) leaves the last figures alone.
fn write_beside_criterion(
    group: &str,
    file: &str,
    figures: serde_json::Map<String, serde_json::Value>,
) {
    if figures.is_empty() {
        return;
    }
    let dir = std::path::Path::new("target/criterion").join(group);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(file),
        serde_json::Value::Object(figures).to_string(),
    )
    .unwrap();
}

fn register(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("register");
    // Bulk: 100 000 rows per iteration.
    let rows = 100_000u64;
    group.throughput(Throughput::Elements(rows));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (backend, db) in databases(&rt) {
        let catalog = rt.block_on(Catalog::open(&db.url)).unwrap();
        group.bench_function(format!("{backend}/insert_select"), |b| {
            b.iter(|| {
                // A new tenant each round, so every row is new.
                let ctx = SessionContext::new();
                register_catalog(&ctx, &catalog.with_scope(Some(TenantId::random())));
                rt.block_on(async {
                    let sql = format!(
                        "INSERT INTO jammi.public.models (model_id, version, model_type, backend, task) \
                         SELECT 'bulk-' || CAST(value AS VARCHAR), 1, 'embedding', 'candle', 'text_embedding' \
                         FROM generate_series(1, {rows})"
                    );
                    ctx.sql(&sql).await.unwrap().collect().await.unwrap()
                })
            })
        });
        let raw = RawPool::open(&rt, &db.url);
        group.bench_function(format!("{backend}/raw_sqlx_upsert"), |b| {
            b.iter(|| {
                let owner = TenantId::random().to_string();
                rt.block_on(raw_bulk_upsert(&raw, &owner, rows))
            })
        });
    }
    group.finish();
}

/// The baseline of bulk registration: multi-row upserts of 500 rows, one transaction.
///
/// SQLite gets positional `?` placeholders: sqlx looks a `$n` parameter up by name, which
/// SQLite does by a linear search, quadratic over a statement's 3 000 parameters.
async fn raw_bulk_upsert(pool: &RawPool, owner: &str, rows: u64) {
    const CHUNK: u64 = 500;
    let mut n = 0;
    let mut placeholder = || match pool {
        RawPool::Sqlite(_) => "?".to_owned(),
        RawPool::Postgres(_) => {
            n += 1;
            format!("${n}")
        }
    };
    let values: Vec<String> = (0..CHUNK)
        .map(|_| {
            let p: Vec<String> = (0..6).map(|_| placeholder()).collect();
            format!(
                "({}, {}, {}, {}, 'embedding', 'text_embedding', 'candle', 'registered', {}, {})",
                p[0], p[1], p[2], p[3], p[4], p[5]
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO models (model_key, owner, model_id, version, model_type, task, backend, status, created_at, updated_at) \
         VALUES {} ON CONFLICT (model_key) DO UPDATE SET updated_at = excluded.updated_at",
        values.join(", ")
    );
    // The same binds on either backend's query builder.
    macro_rules! upsert_all {
        ($tx:expr) => {
            for start in (0..rows).step_by(CHUNK as usize) {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for i in start..start + CHUNK {
                    let name = format!("raw-{i}");
                    q = q
                        .bind(format!("{owner}::{name}::1"))
                        .bind(owner.to_owned())
                        .bind(name)
                        .bind(1i32)
                        .bind(i as i64)
                        .bind(i as i64);
                }
                q.execute(&mut *$tx).await.unwrap();
            }
        };
    }
    match pool {
        RawPool::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
            upsert_all!(tx);
            tx.commit().await.unwrap();
        }
        RawPool::Postgres(pool) => {
            let mut tx = pool.begin().await.unwrap();
            upsert_all!(tx);
            tx.commit().await.unwrap();
        }
    }
}

/// Deleting a model version (with its reference scan) alone, and while 8 tasks keep
/// registering versions of the same model, each with an eval run referencing it, through
/// another pool. On Postgres the eval runs' reference checks and the deletes' reference
/// scans are serializable and conflict; the catalog retries them. The retries of both
/// pools are written beside criterion's output for the report.
fn delete_under_registers(c: &mut Criterion) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let rt = runtime();
    let mut group = c.benchmark_group("delete");
    let mut retries = serde_json::Map::new();
    for (backend, db) in databases(&rt) {
        let t = TenantId::random();
        let deleter = rt
            .block_on(Catalog::open(&db.url))
            .unwrap()
            .with_scope(Some(t));
        let writers = rt
            .block_on(Catalog::open(&db.url))
            .unwrap()
            .with_scope(Some(t));
        let hot = || RegisterModel::new("hot", "embedding", "candle", ModelTask::Ner);
        let mut deletes = 0u64;
        let mut measure = |iters: u64| {
            rt.block_on(async {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let v = deleter.register_model(hot()).await.unwrap().version;
                    let start = std::time::Instant::now();
                    assert!(deleter.delete_model("hot", Some(v), false).await.unwrap());
                    spent += start.elapsed();
                }
                spent
            })
        };
        group.bench_function(format!("{backend}/idle"), |b| b.iter_custom(&mut measure));

        let (deleter_before, writers_before) = (
            deleter.store().stats().retries(),
            writers.store().stats().retries(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let registered = Arc::new(AtomicU64::new(0));
        let registers: Vec<_> = (0..8)
            .map(|_| {
                let (writers, stop) = (writers.clone(), Arc::clone(&stop));
                let registered = Arc::clone(&registered);
                rt.spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let v = writers.register_model(hot()).await.unwrap().version;
                        let mut run = NewEvalRun::new("hot", "retrieval", r#"{"ndcg": 0.5}"#);
                        run.model_version = Some(v);
                        writers.create_eval_run(run).await.unwrap();
                        registered.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        group.bench_function(format!("{backend}/under_8_registers"), |b| {
            b.iter_custom(|iters| {
                deletes += iters;
                measure(iters)
            })
        });
        stop.store(true, Ordering::Relaxed);
        for r in registers {
            rt.block_on(r).unwrap();
        }
        if deletes == 0 {
            continue; // filtered out
        }
        retries.insert(
            backend.to_owned(),
            serde_json::json!({
                "deletes": deletes,
                "retries": deleter.store().stats().retries() - deleter_before,
                "registers": registered.load(Ordering::Relaxed),
                "register_retries": writers.store().stats().retries() - writers_before,
            }),
        );
    }
    group.finish();
    write_beside_criterion("delete", "retries.json", retries);
}

/// Registry operations one at a time (SPEC §10): the catalog and its baseline, each as
/// its own tenant of the same database.
fn registry(c: &mut Criterion) {
    use std::time::Instant;
    let rt = runtime();
    let mut group = c.benchmark_group("registry");
    for (backend, db) in databases(&rt) {
        let t = TenantId::random();
        let catalog = rt
            .block_on(Catalog::open(&db.url))
            .unwrap()
            .with_scope(Some(t));
        let mut baseline = rt.block_on(Baseline::open(&db.url));
        let base_owner = TenantId::random().to_string();
        let model = |name: &str| RegisterModel::new(name, "embedding", "candle", ModelTask::Ner);

        // One model that already has 1 000 versions; every iteration adds one more.
        rt.block_on(generate_versions(&catalog, "one", 1_000));
        for _ in 0..1_000 {
            rt.block_on(baseline.register(&base_owner, "one"));
        }
        group.bench_function(format!("{backend}/register_one_model/catalog"), |b| {
            b.to_async(&rt)
                .iter(|| async { catalog.register_model(model("one")).await.unwrap() })
        });
        group.bench_function(format!("{backend}/register_one_model/baseline"), |b| {
            b.iter(|| rt.block_on(baseline.register(&base_owner, "one")))
        });

        // A new model each iteration.
        let mut n = 0u64;
        group.bench_function(format!("{backend}/register_distinct/catalog"), |b| {
            b.iter(|| {
                n += 1;
                rt.block_on(catalog.register_model(model(&format!("distinct-{n}"))))
                    .unwrap()
            })
        });
        group.bench_function(format!("{backend}/register_distinct/baseline"), |b| {
            b.iter(|| {
                n += 1;
                rt.block_on(baseline.register(&base_owner, &format!("distinct-{n}")))
            })
        });

        // Delete of an unreferenced version with its reference scan; each iteration first
        // registers the version it deletes (not timed).
        group.bench_function(format!("{backend}/delete/catalog"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        let v = catalog.register_model(model("gone")).await.unwrap().version;
                        let start = Instant::now();
                        assert!(catalog.delete_model("gone", Some(v), false).await.unwrap());
                        spent += start.elapsed();
                    }
                    spent
                })
            })
        });
        group.bench_function(format!("{backend}/delete/baseline"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        let v = baseline.register(&base_owner, "gone").await;
                        let start = Instant::now();
                        baseline.delete(&base_owner, "gone", v).await;
                        spent += start.elapsed();
                    }
                    spent
                })
            })
        });
    }
    group.finish();
}

/// A SQLite catalog of 1 000 models over 10 tenants, and a handle scoped to one of them
/// (its models are `model_name(0..100)`, version 1). The database lives as long as `Db`.
fn small_tenant_catalog(rt: &Runtime) -> (Db, Catalog) {
    let db = new_db(rt, "sqlite");
    let catalog = rt.block_on(Catalog::open(&db.url)).unwrap();
    rt.block_on(generate_models(&catalog, 1_000, 10));
    (db, catalog.with_scope(Some(tenant(3))))
}

/// A template of sessions under the server's limits inside a batch, as `jammi serve`
/// builds one.
fn bounded_template() -> SessionTemplate {
    SessionTemplate::with(SessionConfig::new(), |state| {
        bound_state(state, StatementLimits::default())
    })
}

/// What the server's limits inside a batch cost a statement (SPEC §14): building a
/// session and running a point query in it, with the catalog only, and with every call
/// under the limits (`sql::limits::bound_functions`), as `jammi serve` did per call; and
/// the bounded session derived from a template, as it does now (issue 24).
fn session_limits(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("session_limits");
    let (_db, scoped) = small_tenant_catalog(&rt);
    let sql = format!(
        "SELECT model_id, version, lower(backend) || '/' || upper(task) AS route \
         FROM jammi.public.models WHERE model_id = '{}'",
        model_name(0)
    );
    let build = |bounded: bool| {
        let ctx = SessionContext::new();
        register_catalog(&ctx, &scoped);
        if bounded {
            let limits = StatementLimits {
                max_value_bytes: 1 << 30,
                deadline: Some(std::time::Instant::now() + Duration::from_secs(300)),
                timeout: Duration::from_secs(300),
            };
            bound_functions(&ctx, limits);
        }
        ctx
    };
    for (label, bounded) in [("catalog_only", false), ("bounded", true)] {
        group.bench_function(format!("sqlite/{label}/session"), |b| {
            b.iter(|| build(bounded))
        });
        group.bench_function(format!("sqlite/{label}/session_and_query"), |b| {
            b.to_async(&rt).iter(|| async {
                let ctx = build(bounded);
                let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
                assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
            })
        });
    }
    // The bounded session as the server derives it now (issue 24): from a template built
    // once, with its own catalog list, binding and limits.
    let template = bounded_template();
    let derive = || {
        let mut state = template.state(&scoped);
        bound_state(
            &mut state,
            StatementLimits {
                max_value_bytes: 1 << 30,
                deadline: Some(std::time::Instant::now() + Duration::from_secs(300)),
                timeout: Duration::from_secs(300),
            },
        );
        state
    };
    group.bench_function("sqlite/template/session", |b| b.iter(derive));
    group.bench_function("sqlite/template/session_and_query", |b| {
        b.to_async(&rt).iter(|| async {
            let state = derive();
            let plan = state.create_logical_plan(&sql).await.unwrap();
            let physical = state.create_physical_plan(&plan).await.unwrap();
            let task = Arc::new(datafusion::execution::TaskContext::from(&state));
            let batches = collect(physical, task).await.unwrap();
            assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
        })
    });
    group.finish();
}

/// The stages of one parameterized point query as the server runs it, each measured with
/// the stages before it done once outside the loop.
fn statement_stages(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("statement_stages");
    let (_db, scoped) = small_tenant_catalog(&rt);
    let sql = "SELECT model_id, version FROM jammi.public.models \
               WHERE model_id = $1 AND version = $2";
    let values = || {
        vec![
            datafusion::common::ScalarValue::from(model_name(0).as_str()),
            datafusion::common::ScalarValue::Int64(Some(1)),
        ]
    };
    let template = bounded_template();
    let state = template.state(&scoped);
    group.bench_function("sqlite/derive_session", |b| {
        b.iter(|| template.state(&scoped))
    });
    group.bench_function("sqlite/sql_to_logical", |b| {
        b.to_async(&rt)
            .iter(|| async { state.create_logical_plan(sql).await.unwrap() })
    });
    let logical = rt.block_on(state.create_logical_plan(sql)).unwrap();
    group.bench_function("sqlite/analyze", |b| {
        b.iter(|| PreparedPlan::new(&state, logical.clone()).unwrap())
    });
    let prepared = PreparedPlan::new(&state, logical).unwrap();
    group.bench_function("sqlite/bind", |b| {
        b.iter(|| prepared.bind(Some(&state), values()).unwrap())
    });
    let bound = prepared.bind(Some(&state), values()).unwrap();
    group.bench_function("sqlite/optimize", |b| {
        b.iter(|| {
            state
                .optimizer()
                .optimize(bound.plan().clone(), &state, |_, _| {})
                .unwrap()
        })
    });
    let optimized = state
        .optimizer()
        .optimize(bound.plan().clone(), &state, |_, _| {})
        .unwrap();
    group.bench_function("sqlite/physical_plan", |b| {
        b.to_async(&rt).iter(|| async {
            state
                .query_planner()
                .create_physical_plan(&optimized, &state)
                .await
                .unwrap()
        })
    });
    let physical = rt
        .block_on(
            state
                .query_planner()
                .create_physical_plan(&optimized, &state),
        )
        .unwrap();
    group.bench_function("sqlite/run", |b| {
        b.to_async(&rt).iter(|| async {
            let task = Arc::new(datafusion::execution::TaskContext::from(&state));
            let batches = collect(Arc::clone(&physical), task).await.unwrap();
            assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
        })
    });
    group.bench_function("sqlite/all_from_cached_plan", |b| {
        b.to_async(&rt).iter(|| async {
            let state = template.state(&scoped);
            let bound = prepared.bind(Some(&state), values()).unwrap();
            let physical = bound.physical(&state).await.unwrap();
            let task = Arc::new(datafusion::execution::TaskContext::from(&state));
            let batches = collect(physical, task).await.unwrap();
            assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
        })
    });
    group.finish();
}

/// The catalog of `support/joins.rs` in a new database of `backend`, at 1× or 10× the
/// eval-run history.
fn joins_catalog(rt: &Runtime, backend: &str, tenfold: bool) -> (Db, Catalog) {
    let db = new_db(rt, backend);
    let catalog = rt.block_on(Catalog::open(&db.url)).unwrap();
    rt.block_on(generate_models(&catalog, 2 * joins::MODELS, 2));
    let raw = RawPool::open(rt, &db.url);
    rt.block_on(async {
        for statement in [
            joins::eval_runs_statement(tenfold),
            joins::ALIASES.into(),
            "ANALYZE".into(),
        ] {
            let statement = sqlx::AssertSqlSafe(statement);
            match &raw {
                RawPool::Sqlite(p) => sqlx::raw_sql(statement).execute(p).await.map(|_| ()),
                RawPool::Postgres(p) => sqlx::raw_sql(statement).execute(p).await.map(|_| ()),
            }
            .unwrap();
        }
    });
    (db, catalog)
}

fn join_questions(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("joins");
    group.sample_size(10);
    for backend in backends() {
        for (scale, tenfold) in [("1x", false), ("10x", true)] {
            let (db, catalog) = joins_catalog(&rt, backend, tenfold);
            let t = tenant(0);
            let owner = t.to_string();
            let ctx = SessionContext::new();
            register_catalog(&ctx, &catalog.with_scope(Some(t)));
            // The baseline: the same session with joins left to DataFusion (dynamic filters).
            let in_datafusion = SessionContext::new();
            register_catalog(&in_datafusion, &catalog.with_scope(Some(t)));
            rt.block_on(in_datafusion.sql("SET jammi.join_pushdown = false"))
                .unwrap();
            let raw = RawPool::open(&rt, &db.url);
            let mut c_api = (backend == "sqlite").then(|| c_api::CApi::open(&db.url));
            for q in &joins::QUESTIONS {
                let id = |label: &str| format!("{backend}/{scale}/{}/{label}", q.name);
                for (label, ctx) in [("catalog", &ctx), ("in_datafusion", &in_datafusion)] {
                    group.bench_function(id(label), |b| {
                        b.to_async(&rt).iter(|| async {
                            let batches =
                                ctx.sql(q.catalog).await.unwrap().collect().await.unwrap();
                            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                            assert_eq!(rows, q.rows);
                        })
                    });
                }
                match (&raw, c_api.as_mut()) {
                    (_, Some(c_api)) => group.bench_function(id("by_hand"), |b| {
                        b.iter(|| {
                            let rows = c_api.run(q.by_hand, &[c_api::P::T(&owner)], |stmt| {
                                std::hint::black_box(c_api::row_values(stmt));
                            });
                            assert_eq!(rows, q.rows);
                        })
                    }),
                    (RawPool::Postgres(pool), None) => group.bench_function(id("by_hand"), |b| {
                        b.to_async(&rt).iter(|| async {
                            let rows = sqlx::query(q.by_hand)
                                .bind(&owner)
                                .fetch_all(pool)
                                .await
                                .unwrap();
                            assert_eq!(rows.len(), q.rows);
                        })
                    }),
                    (RawPool::Sqlite(_), None) => {
                        unreachable!("SQLite is measured through its C API")
                    }
                };
            }
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    session_limits,
    statement_stages,
    get_latest,
    registry,
    point_query,
    listing_scan,
    register,
    delete_under_registers,
    join_questions
);
criterion_main!(benches);
