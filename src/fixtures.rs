//! Bulk data for benchmarks and scale tests: a deterministic catalog of many models, and
//! training jobs and eval runs based on them, each table written by one set-based statement
//! (building a million rows through the per-row API would measure the API, not the query
//! under test).

use futures::FutureExt;

use crate::catalog::Catalog;
use crate::clock::now_micros;
use crate::error::Result;
use crate::store::{TxOptions, args};
use crate::tenant::TenantId;

/// The `i`-th generated tenant (0-based): a fixed, valid, non-nil UUID.
pub fn tenant(i: u64) -> TenantId {
    format!("00000000-0000-4000-8000-{:012x}", i + 1)
        .parse()
        .expect("generated tenant ids are valid UUIDs")
}

/// The name of the `j`-th generated model of each tenant.
pub fn model_name(j: u64) -> String {
    format!("model-{j:07}")
}

const SQLITE: &str = "WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < $1) \
    INSERT INTO models (model_key, owner, model_id, version, model_type, task, backend, status, \
      base_model_id, artifact_path, config_json, created_at, updated_at) \
    SELECT t || '::' || n || '::1', t, n, 1, 'embedding', 'text_embedding', 'candle', 'registered', \
      NULL, '/weights/' || n, NULL, $3 + i, $3 + i \
    FROM (SELECT i, printf('00000000-0000-4000-8000-%012x', (i / ($1 / $2)) + 1) AS t, \
                 printf('model-%07d', i % ($1 / $2)) AS n FROM seq)";

const POSTGRES: &str = "INSERT INTO models (model_key, owner, model_id, version, model_type, task, backend, \
      status, base_model_id, artifact_path, config_json, created_at, updated_at) \
    SELECT t || '::' || n || '::1', t, n, 1, 'embedding', 'text_embedding', 'candle', 'registered', \
      NULL, '/weights/' || n, NULL, $3 + i, $3 + i \
    FROM (SELECT i, '00000000-0000-4000-8000-' || lpad(to_hex((i / ($1 / $2)) + 1), 12, '0') AS t, \
                 'model-' || lpad((i % ($1 / $2))::text, 7, '0') AS n \
          FROM generate_series(0::bigint, $1 - 1) AS s(i)) AS g";

/// Adds `rows` models spread evenly over `tenants` tenants ([`tenant`]`(0..tenants)`): with
/// `per = rows / tenants`, row `i` belongs to tenant `i / per` and is named
/// [`model_name`]`(i % per)`, version 1. Each tenant thus has `per` distinct names, and each
/// name exists once per tenant. `rows` should be a multiple of `tenants`; meant for an empty
/// catalog. Rows are written tenant by tenant so that most indexes fill in key order.
///
/// # Errors
/// Database errors.
pub async fn generate_models(catalog: &Catalog, rows: u64, tenants: u64) -> Result<()> {
    let tenants = tenants.clamp(1, rows.max(1)) as i64;
    let rows = rows as i64;
    catalog
        .store()
        .transaction(None, TxOptions::write(), |tx| {
            async move {
                if tx.backend() == crate::store::Backend::Sqlite {
                    // The interleaved rows land all over the indexes: give this connection
                    // a page cache that holds them (256 MiB) instead of the 2 MiB default.
                    tx.bulk_load("PRAGMA cache_size = -262144", &[]).await?;
                }
                let sql = tx.dialect(SQLITE, POSTGRES);
                tx.bulk_load(sql, &args![rows, tenants, now_micros()])
                    .await?;
                Ok(())
            }
            .boxed()
        })
        .await
}

/// The statement behind [`Catalog::get_model`] (`$1` the name, `$2` the caller's owner,
/// `''` when unscoped), for baselines that run the same SQL through raw sqlx.
pub const GET_MODEL_SQL: &str = crate::catalog::sql_text::GET_LATEST;

const VERSIONS_SQLITE: &str = "WITH RECURSIVE seq(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM seq WHERE v < $1) \
    INSERT INTO models (model_key, owner, model_id, version, model_type, task, backend, status, \
      base_model_id, artifact_path, config_json, created_at, updated_at) \
    SELECT CASE WHEN $2 = '' THEN '' ELSE $2 || '::' END || $3 || '::' || v, $2, $3, v, 'embedding', \
      'text_embedding', 'candle', 'registered', NULL, NULL, NULL, $4 + v, $4 + v FROM seq";

const VERSIONS_POSTGRES: &str = "INSERT INTO models (model_key, owner, model_id, version, model_type, task, \
      backend, status, base_model_id, artifact_path, config_json, created_at, updated_at) \
    SELECT CASE WHEN $2 = '' THEN '' ELSE $2 || '::' END || $3 || '::' || v, $2, $3, v, 'embedding', \
      'text_embedding', 'candle', 'registered', NULL, NULL, NULL, $4 + v, $4 + v \
    FROM generate_series(1::bigint, $1) AS s(v)";

/// Adds versions 1..=`versions` of `name` in `catalog`'s scope. Meant for a name with no
/// versions yet. The keys are those [`Catalog::register_model`] would write.
///
/// # Errors
/// Database errors.
pub async fn generate_versions(catalog: &Catalog, name: &str, versions: u64) -> Result<()> {
    crate::validate::name("model_id", name)?;
    let owner = crate::tenant::owner_of(catalog.scope());
    let (name, versions) = (name.to_owned(), versions as i64);
    catalog
        .store()
        .transaction(catalog.scope(), TxOptions::write(), |tx| {
            let (owner, name) = (owner.clone(), name.clone());
            async move {
                let sql = tx.dialect(VERSIONS_SQLITE, VERSIONS_POSTGRES);
                tx.bulk_load(sql, &args![versions, owner, name, now_micros()])
                    .await?;
                Ok(())
            }
            .boxed()
        })
        .await
}

const TRAINING_JOBS: &str = "INSERT INTO training_jobs (owner, job_id, base_model_key, base_model_id, \
      base_model_version, output_model_id, output_version, training_source, loss_type, hyperparams, \
      status, attempts, created_at, updated_at) \
    SELECT owner, 'job-' || model_id || '-' || version, model_key, model_id, version, \
      model_id || '-tuned', NULL, 'generated', 'contrastive', '{}', 'queued', 0, created_at, created_at \
    FROM models WHERE owner = $1";

/// Adds one queued training job per model that `catalog`'s scope owns, based on that
/// model (its key read from the row): job id `job-{name}-{version}`, output model
/// `{name}-tuned`. Meant for a scope with no training jobs yet. Returns the jobs written.
///
/// # Errors
/// Database errors.
pub async fn generate_training_jobs(catalog: &Catalog) -> Result<u64> {
    generate_from_models(catalog, TRAINING_JOBS).await
}

const EVAL_RUNS: &str = "INSERT INTO eval_runs (owner, run_id, model_key, model_id, model_version, \
      eval_type, metrics, created_at) \
    SELECT owner, 'run-' || model_id || '-' || version, model_key, model_id, version, 'generated', \
      '{}', created_at \
    FROM models WHERE owner = $1";

/// Adds one eval run per model that `catalog`'s scope owns, referencing that model (its
/// key read from the row): run id `run-{name}-{version}`. Meant for a scope with no eval
/// runs yet. Returns the runs written.
///
/// # Errors
/// Database errors.
pub async fn generate_eval_runs(catalog: &Catalog) -> Result<u64> {
    generate_from_models(catalog, EVAL_RUNS).await
}

/// Runs `sql`, an `INSERT … SELECT … FROM models WHERE owner = $1`, for `catalog`'s scope.
async fn generate_from_models(catalog: &Catalog, sql: &'static str) -> Result<u64> {
    let owner = crate::tenant::owner_of(catalog.scope());
    catalog
        .store()
        .transaction(catalog.scope(), TxOptions::write(), |tx| {
            let owner = owner.clone();
            async move { tx.bulk_load(sql, &args![owner]).await }.boxed()
        })
        .await
}
