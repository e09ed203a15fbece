//! The catalog against its baselines, each pair measured in the same run (SPEC §10).
//!
//! `cargo bench` runs everything on SQLite, and the Postgres variants too when
//! `JAMMI_TEST_PG_URL` is set. `python3 benches/report.py` turns criterion's output into
//! `docs/benchmarks.md`. Groups:
//!
//! - `get_latest/{versions}`: `Catalog::get_model` vs raw sqlx running the same SQL.
//! - `point_query/{rows}`: `SELECT … WHERE model_id = …` through `ctx.sql` on catalogs of
//!   1 000 and 1 000 000 rows across 1 000 tenants, planning and execution apart, vs the
//!   same query on a `MemTable` of the tenant's rows.
//! - `listing_scan`: a tenant's 100 000 rows into Arrow vs a `MemTable` of them.
//! - `register`: single registers; `INSERT INTO … SELECT` of 100 000 rows vs raw sqlx
//!   multi-row upserts in one transaction.

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use datafusion::datasource::MemTable;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::SessionContext;
use jammi_catalog::fixtures::{
    GET_MODEL_SQL, generate_models, generate_versions, model_name, tenant,
};
use jammi_catalog::{Catalog, ModelTask, RegisterModel, TenantId, register_catalog};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A fresh catalog database per benchmark: a temp SQLite file, or a new Postgres schema.
struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

fn databases(rt: &Runtime) -> Vec<(&'static str, Db)> {
    let dir = tempfile::tempdir().unwrap();
    let mut out = vec![(
        "sqlite",
        Db {
            url: format!("sqlite://{}", dir.path().join("bench.db").display()),
            _dir: Some(dir),
        },
    )];
    if let Ok(base) = std::env::var("JAMMI_TEST_PG_URL") {
        let schema = format!("jammi_bench_{}", uuid::Uuid::new_v4().simple());
        rt.block_on(async {
            use sqlx::Connection;
            let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut admin)
                .await
                .unwrap();
        });
        let sep = if base.contains('?') { '&' } else { '?' };
        out.push((
            "postgres",
            Db {
                url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
                _dir: None,
            },
        ));
    }
    out
}

fn get_latest(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("get_latest");
    for (backend, db) in databases(&rt) {
        let catalog = rt.block_on(Catalog::open(&db.url)).unwrap();
        let t = TenantId::random();
        let scoped = catalog.with_scope(Some(t));
        let mut generated = 0;
        for versions in [1u64, 1_000, 100_000] {
            let name = format!("m{versions}");
            rt.block_on(generate_versions(&scoped, &name, versions))
                .unwrap();
            generated += versions;
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
        }
        assert!(generated > 0);
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
            RawPool::Sqlite(p) => sqlx::query(GET_MODEL_SQL)
                .bind(name)
                .bind(owner)
                .fetch_all(p)
                .await
                .unwrap()
                .len(),
            RawPool::Postgres(p) => sqlx::query(GET_MODEL_SQL)
                .bind(name)
                .bind(owner)
                .fetch_all(p)
                .await
                .unwrap()
                .len(),
        }
    }
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
    for rows in [1_000u64, 1_000_000] {
        let dir = tempfile::tempdir().unwrap();
        let catalog = rt
            .block_on(Catalog::open(&format!(
                "sqlite://{}",
                dir.path().join("c.db").display()
            )))
            .unwrap();
        rt.block_on(generate_models(&catalog, rows, 1_000)).unwrap();
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
            group.bench_function(BenchmarkId::new(format!("{label}/plan"), rows), |b| {
                b.to_async(&rt).iter(|| async {
                    ctx.sql(&sql)
                        .await
                        .unwrap()
                        .create_physical_plan()
                        .await
                        .unwrap()
                })
            });
            let plan: Arc<dyn ExecutionPlan> = rt.block_on(async {
                ctx.sql(&sql)
                    .await
                    .unwrap()
                    .create_physical_plan()
                    .await
                    .unwrap()
            });
            let task = ctx.task_ctx();
            group.bench_function(BenchmarkId::new(format!("{label}/execute"), rows), |b| {
                b.to_async(&rt).iter(|| async {
                    let batches = collect(Arc::clone(&plan), Arc::clone(&task)).await.unwrap();
                    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
                })
            });
        }
    }
    group.finish();
}

fn listing_scan(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("listing_scan");
    let rows = 100_000u64;
    let dir = tempfile::tempdir().unwrap();
    let catalog = rt
        .block_on(Catalog::open(&format!(
            "sqlite://{}",
            dir.path().join("c.db").display()
        )))
        .unwrap();
    // Two tenants: the scan must skip the other one's rows.
    rt.block_on(generate_models(&catalog, rows * 2, 2)).unwrap();
    let (ctx, mem) = sessions(&rt, &catalog, tenant(0));
    group.throughput(Throughput::Elements(rows));
    group.sample_size(20);
    for (label, ctx, table) in [
        ("catalog", &ctx, "jammi.public.models"),
        ("memtable", &mem, "mem"),
    ] {
        let sql = format!("SELECT * FROM {table}");
        let plan: Arc<dyn ExecutionPlan> = rt.block_on(async {
            ctx.sql(&sql)
                .await
                .unwrap()
                .create_physical_plan()
                .await
                .unwrap()
        });
        let task = ctx.task_ctx();
        group.bench_function(label, |b| {
            b.to_async(&rt).iter(|| async {
                let batches = collect(Arc::clone(&plan), Arc::clone(&task)).await.unwrap();
                assert_eq!(
                    batches.iter().map(|b| b.num_rows()).sum::<usize>(),
                    rows as usize
                );
            })
        });
    }
    group.finish();
}

fn register(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("register");
    for (backend, db) in databases(&rt) {
        let catalog = rt
            .block_on(Catalog::open(&db.url))
            .unwrap()
            .with_scope(Some(TenantId::random()));
        group.bench_function(format!("{backend}/single"), |b| {
            b.to_async(&rt).iter(|| async {
                catalog
                    .register_model(RegisterModel::new(
                        "single",
                        "embedding",
                        "candle",
                        ModelTask::Ner,
                    ))
                    .await
                    .unwrap()
            })
        });
    }
    // Bulk: 100 000 rows per iteration, SQLite.
    let rows = 100_000u64;
    group.throughput(Throughput::Elements(rows));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bulk.db").display());
    let catalog = rt.block_on(Catalog::open(&url)).unwrap();
    group.bench_function("sqlite/insert_select", |b| {
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
    let raw = RawPool::open(&rt, &url);
    group.bench_function("sqlite/raw_sqlx_upsert", |b| {
        b.iter(|| {
            let owner = TenantId::random().to_string();
            rt.block_on(raw_bulk_upsert(&raw, &owner, rows))
        })
    });
    group.finish();
}

/// The baseline of bulk registration: multi-row upserts of 500 rows, one transaction.
async fn raw_bulk_upsert(pool: &RawPool, owner: &str, rows: u64) {
    let RawPool::Sqlite(pool) = pool else {
        unreachable!("SQLite only")
    };
    let chunk = 500u64;
    let mut values = String::new();
    for i in 0..chunk {
        let p = i * 5;
        values.push_str(&format!(
            "{}(${}, ${}, ${}, ${}, 'embedding', 'text_embedding', 'candle', 'registered', ${}, ${})",
            if i == 0 { "" } else { ", " },
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5,
            p + 5
        ));
    }
    let sql = format!(
        "INSERT INTO models (model_key, owner, model_id, version, model_type, task, backend, status, created_at, updated_at) \
         VALUES {values} ON CONFLICT (model_key) DO UPDATE SET updated_at = excluded.updated_at"
    );
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
    for start in (0..rows).step_by(chunk as usize) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
        for i in start..start + chunk {
            let name = format!("raw-{i}");
            q = q
                .bind(format!("{owner}::{name}::1"))
                .bind(owner.to_owned())
                .bind(name)
                .bind(1i64)
                .bind(i as i64);
        }
        q.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

criterion_group!(benches, get_latest, point_query, listing_scan, register);
criterion_main!(benches);
