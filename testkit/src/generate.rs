//! Bulk catalogs for scale tests and benches: many models, and training jobs and eval runs
//! based on them, each written by one `INSERT INTO jammi.public.… SELECT …` per tenant, so
//! the rows, their keys and their validation are the catalog's own.

use datafusion::prelude::SessionContext;
use jammi_catalog::{Catalog, TenantId, register_catalog};

/// The `i`-th generated tenant (0-based): a fixed, valid, non-nil UUID.
pub fn tenant(i: u64) -> TenantId {
    format!("00000000-0000-4000-8000-{:012x}", i + 1)
        .parse()
        .expect("generated tenant ids are valid UUIDs")
}

/// The name of the `j`-th generated model of each tenant: `model-{j:07}`.
pub fn model_name(j: u64) -> String {
    format!("model-{j:07}")
}

/// `model_name(value)` in DataFusion SQL, for rows of `generate_series`.
const GENERATED_NAME: &str = "concat('model-', lpad(CAST(value AS VARCHAR), 7, '0'))";

/// Adds `rows` models spread evenly over `tenants` tenants ([`tenant`]`(0..tenants)`): with
/// `per = rows / tenants`, each tenant gets models [`model_name`]`(0..per)`, version 1, with
/// artifact path `/weights/{name}`. `rows` should be a multiple of `tenants`; meant for a
/// catalog holding none of these names. Written tenant by tenant.
///
/// # Panics
/// When a statement fails: these are fixtures.
pub async fn generate_models(catalog: &Catalog, rows: u64, tenants: u64) {
    let tenants = tenants.clamp(1, rows.max(1));
    let per = rows / tenants;
    if per == 0 {
        return;
    }
    for t in 0..tenants {
        let sql = format!(
            "INSERT INTO jammi.public.models \
               (model_id, version, model_type, task, backend, artifact_path) \
             SELECT {GENERATED_NAME}, 1, 'embedding', 'text_embedding', 'candle', \
               concat('/weights/', {GENERATED_NAME}) \
             FROM generate_series(0, {last})",
            last = per - 1
        );
        assert_eq!(run(&catalog.with_scope(Some(tenant(t))), &sql).await, per);
    }
}

/// Adds versions 1..=`versions` of `name` in `catalog`'s scope. Meant for a name with no
/// versions yet.
///
/// # Panics
/// When the statement fails.
pub async fn generate_versions(catalog: &Catalog, name: &str, versions: u64) {
    let sql = format!(
        "INSERT INTO jammi.public.models (model_id, version, model_type, task, backend) \
         SELECT '{name}', value, 'embedding', 'text_embedding', 'candle' \
         FROM generate_series(1, {versions})",
        name = name.replace('\'', "''")
    );
    assert_eq!(run(catalog, &sql).await, versions);
}

/// Adds one queued training job per model that `catalog`'s scope owns, based on that model:
/// job id `job-{name}-{version}`, output model `{name}-tuned`. Meant for a scope with no
/// training jobs yet. Returns the jobs written.
///
/// # Panics
/// When the statement fails.
pub async fn generate_training_jobs(catalog: &Catalog) -> u64 {
    run(
        catalog,
        "INSERT INTO jammi.public.training_jobs (job_id, base_model_id, base_model_version, \
           output_model_id, training_source, loss_type, hyperparams) \
         SELECT concat('job-', model_id, '-', CAST(version AS VARCHAR)), model_id, version, \
           concat(model_id, '-tuned'), 'generated', 'contrastive', '{}' \
         FROM jammi.public.models WHERE tenant_id IS NOT NULL",
    )
    .await
}

/// Adds one eval run per model that `catalog`'s scope owns, referencing that model: run id
/// `run-{name}-{version}`. Meant for a scope with no eval runs yet. Returns the runs
/// written.
///
/// # Panics
/// When the statement fails.
pub async fn generate_eval_runs(catalog: &Catalog) -> u64 {
    run(
        catalog,
        "INSERT INTO jammi.public.eval_runs (run_id, model_id, model_version, eval_type, metrics) \
         SELECT concat('run-', model_id, '-', CAST(version AS VARCHAR)), model_id, version, \
           'generated', '{}' \
         FROM jammi.public.models WHERE tenant_id IS NOT NULL",
    )
    .await
}

/// Runs the INSERT `sql` in a session of `catalog`'s scope; returns its count.
async fn run(catalog: &Catalog, sql: &str) -> u64 {
    let ctx = SessionContext::new();
    register_catalog(&ctx, catalog);
    let batches = ctx
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("planning {sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("running {sql}: {e}"));
    let count = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::UInt64Array>()
        .expect("an INSERT answers a UInt64 count");
    count.value(0)
}
