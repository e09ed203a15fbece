//! No query waits on itself for a pooled connection: joins of large catalog tables complete
//! however many run at once, and on the single connection of `sqlite::memory:`; so do
//! functions that write, called over catalog scans.
//!
//! The join catalog: tenants 0 and 1 own 50 000 models each (`model-0000000`…
//! `model-0049999`, version 1), and one training job and one eval run per model, named after
//! it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::physical_plan::collect;
use datafusion::prelude::{SessionConfig, SessionContext};
use jammi_catalog::{Catalog, register_catalog};
use jammi_testkit::cells;
use jammi_testkit::generate::{
    generate_eval_runs, generate_models, generate_training_jobs, tenant,
};
use tokio::sync::Barrier;

use crate::rows;
use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;

/// Models per tenant; each also has one training job and one eval run.
const PER_TENANT: u64 = 50_000;
/// The sum of the models' numbers, 0 + 1 + … + 49 999.
const NUMBER_SUM: &str = "1249975000";
/// Queries at once: four times a SQLite file's pool (8), twice a Postgres pool (16).
const QUERIES: usize = 32;
/// Far beyond an honest run; only there to turn a deadlock into a failure.
const DEADLINE: Duration = Duration::from_secs(300);

/// Models with their training jobs. Per tenant: one row per model; the job pairs with
/// its own model; only the session's tenant is seen.
const MODELS_JOBS: &str = "SELECT count(*), sum(CAST(substr(m.model_id, 7) AS BIGINT)), \
      sum(CASE WHEN j.job_id = concat('job-', m.model_id, '-1') THEN 1 ELSE 0 END), \
      min(m.tenant_id), max(j.tenant_id) \
    FROM jammi.public.models m \
    JOIN jammi.public.training_jobs j \
      ON j.base_model_id = m.model_id AND j.base_model_version = m.version";

/// Models with their training jobs and eval runs, checked the same way.
const MODELS_JOBS_RUNS: &str = "SELECT count(*), sum(CAST(substr(e.model_id, 7) AS BIGINT)), \
      sum(CASE WHEN j.job_id = concat('job-', m.model_id, '-1') \
                AND e.run_id = concat('run-', m.model_id, '-1') THEN 1 ELSE 0 END), \
      min(e.tenant_id), max(j.tenant_id) \
    FROM jammi.public.models m \
    JOIN jammi.public.training_jobs j \
      ON j.base_model_id = m.model_id AND j.base_model_version = m.version \
    JOIN jammi.public.eval_runs e \
      ON e.model_id = j.base_model_id AND e.model_version = j.base_model_version";

/// The same three tables joined the other way round: models with (training jobs joined
/// with eval runs). The models are the first join's build side, and both other tables wait
/// for them.
const MODELS_JOBS_RUNS_NESTED: &str = "SELECT count(*), sum(CAST(substr(m.model_id, 7) AS BIGINT)), \
      sum(CASE WHEN je.job_id = concat('job-', m.model_id, '-1') \
                AND je.run_id = concat('run-', m.model_id, '-1') THEN 1 ELSE 0 END), \
      min(m.tenant_id), max(je.tenant_id) \
    FROM jammi.public.models m \
    JOIN (SELECT j.job_id, j.base_model_id, j.base_model_version, e.run_id, e.tenant_id \
          FROM jammi.public.training_jobs j \
          JOIN jammi.public.eval_runs e \
            ON e.model_id = j.base_model_id AND e.model_version = j.base_model_version) je \
      ON je.base_model_id = m.model_id AND je.base_model_version = m.version";

/// Models joined with themselves.
const SELF_JOIN: &str = "SELECT count(*), sum(CAST(substr(b.model_id, 7) AS BIGINT)), \
      sum(CASE WHEN a.artifact_path = b.artifact_path THEN 1 ELSE 0 END), \
      min(a.tenant_id), max(b.tenant_id) \
    FROM jammi.public.models a \
    JOIN jammi.public.models b ON a.model_id = b.model_id AND a.version = b.version";

/// What each of the queries above answers in a session of tenant `t`.
fn expected(t: u64) -> Vec<Vec<String>> {
    let count = PER_TENANT.to_string();
    let tenant = tenant(t).to_string();
    vec![vec![
        count.clone(),
        NUMBER_SUM.into(),
        count,
        tenant.clone(),
        tenant,
    ]]
}

/// Writes the catalog described at the top for `tenants` tenants.
async fn populate(catalog: &Catalog, tenants: u64) {
    generate_models(catalog, PER_TENANT * tenants, tenants).await;
    for t in 0..tenants {
        let scoped = catalog.with_scope(Some(tenant(t)));
        assert_eq!(generate_training_jobs(&scoped).await, PER_TENANT);
        assert_eq!(generate_eval_runs(&scoped).await, PER_TENANT);
    }
}

/// A session for `catalog` planning with `partitions` target partitions: 1 gives joins that
/// collect their build side in one partition, more give hash-partitioned joins with
/// repartitioned inputs.
fn session(catalog: &Catalog, partitions: usize) -> SessionContext {
    session_with(
        catalog,
        SessionConfig::new().with_target_partitions(partitions),
    )
}

/// A session for `catalog` with `config`.
fn session_with(catalog: &Catalog, config: SessionConfig) -> SessionContext {
    let ctx = SessionContext::new_with_config(config);
    register_catalog(&ctx, catalog);
    ctx
}

/// Runs `queries` (tenant, session, SQL) at once, each in its own task, and returns each
/// tenant, SQL and answer, in order. Every query is planned first, then all start executing
/// together, as when a server receives many at once: their scans ask for connections
/// interleaved, not query by query.
async fn run_at_once(
    queries: Vec<(u64, SessionContext, &'static str)>,
) -> Vec<(u64, &'static str, Vec<Vec<String>>)> {
    let count = queries.len();
    let start = Arc::new(Barrier::new(count));
    let tasks: Vec<_> = queries
        .into_iter()
        .map(|(t, ctx, sql)| {
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                let planned = match ctx.sql(sql).await {
                    Ok(df) => df.create_physical_plan().await,
                    Err(e) => Err(e),
                };
                let plan = planned.unwrap_or_else(|e| panic!("planning {sql}: {e}"));
                start.wait().await;
                let batches = collect(plan, ctx.task_ctx())
                    .await
                    .unwrap_or_else(|e| panic!("running {sql}: {e}"));
                (t, sql, cells(&batches))
            })
        })
        .collect();
    let started = Instant::now();
    let answers = tokio::time::timeout(DEADLINE, futures::future::join_all(tasks))
        .await
        .unwrap_or_else(|_| panic!("{count} concurrent queries still running after {DEADLINE:?}"));
    eprintln!("{count} concurrent queries took {:?}", started.elapsed());
    answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())))
        .collect()
}

/// Runs join `queries` at once and checks every answer against [`expected`].
async fn joins_at_once(queries: Vec<(u64, SessionContext, &'static str)>) {
    for (t, sql, got) in run_at_once(queries).await {
        assert_eq!(got, expected(t), "tenant {t}: {sql}");
    }
}

/// More joins at once than the pool has connections, each joining two or three tables of
/// 100 000 rows (50 000 visible), in sessions of both tenants and of 1 to 4 partitions.
async fn concurrent_joins_of_large_tables_all_complete(db: &TestDb) {
    populate(&db.catalog, 2).await;
    let queries = (0..QUERIES)
        .map(|i| {
            let t = (i % 2) as u64;
            let sql = [MODELS_JOBS, MODELS_JOBS_RUNS, MODELS_JOBS_RUNS_NESTED][i % 3];
            (t, session(&db.scoped(tenant(t)), 1 + i % 4), sql)
        })
        .collect();
    joins_at_once(queries).await;
}

/// Registers a copy of every visible model, one transaction per row, while the scan that
/// feeds the function holds a connection. (The call stands alone in the SELECT list, the
/// only place the catalog runs it: see tests/sql/placement.rs.)
const COPY_EVERY_MODEL: &str = "SELECT register_model(concat(model_id, '-copy'), NULL, \
      'embedding', 'candle', 'text_embedding') FROM jammi.public.models";

/// More queries at once than the pool has connections, each calling a function that writes
/// over a scan: the scans hold connections while they wait for the function, and the
/// function needs a connection for every row. Batches of 5 rows keep each scan waiting
/// with most of its 100 rows unread.
async fn writing_functions_over_scans_all_complete(db: &TestDb) {
    const TENANTS: u64 = 20;
    const MODELS: u64 = 100;
    generate_models(&db.catalog, TENANTS * MODELS, TENANTS).await;
    let queries = (0..TENANTS)
        .map(|t| {
            let config = SessionConfig::new()
                .with_batch_size(5)
                .with_target_partitions(1 + t as usize % 2);
            (
                t,
                session_with(&db.scoped(tenant(t)), config),
                COPY_EVERY_MODEL,
            )
        })
        .collect();
    // Every copy is a new name: version 1, once per model.
    let models = MODELS.to_string();
    for (t, sql, got) in run_at_once(queries).await {
        assert_eq!(
            got,
            vec![vec!["1".to_owned()]; MODELS as usize],
            "tenant {t}: {sql}"
        );
    }
    for t in 0..TENANTS {
        let ctx = session(&db.scoped(tenant(t)), 1);
        assert_eq!(
            rows(
                &ctx,
                "SELECT count(*), sum(CASE WHEN model_id LIKE '%-copy' THEN 1 ELSE 0 END) \
                 FROM jammi.public.models"
            )
            .await,
            vec![vec![(2 * MODELS).to_string(), models.clone()]],
            "tenant {t}"
        );
    }
}

backend_tests!(
    concurrent_joins_of_large_tables_all_complete,
    writing_functions_over_scans_all_complete
);

/// `sqlite::memory:` lives on one connection: a self-join and a three-table join, several
/// at once, take turns on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn joins_on_the_one_in_memory_connection_complete() {
    let catalog = Catalog::open("sqlite::memory:").await.unwrap();
    populate(&catalog, 1).await;
    let scoped = catalog.with_scope(Some(tenant(0)));
    let queries = [SELF_JOIN, MODELS_JOBS_RUNS, SELF_JOIN, MODELS_JOBS]
        .into_iter()
        .enumerate()
        .map(|(i, sql)| (0, session(&scoped, 1 + i % 2), sql))
        .collect();
    joins_at_once(queries).await;
}
