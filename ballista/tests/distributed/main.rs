//! The catalog's plans carried between processes (SPEC §17): through the codecs alone
//! (`round_trip`), on a Ballista cluster in the test process (`standalone`), and on one
//! of the `jammi-scheduler` and `jammi-executor` commands (`remote`), on both backends.

mod remote;
mod round_trip;
mod standalone;

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::{SessionConfig, SessionContext};
use jammi_catalog::{Catalog, register_catalog};

/// A DataFusion session of the catalog's own, in one process, bound to `catalog`.
pub fn local_session(catalog: &Catalog) -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    register_catalog(&ctx, catalog);
    ctx
}

/// A session whose plans leave the process, as a Ballista client's do
/// (`jammi_ballista::register`), bound to `catalog`, without a cluster.
pub fn shipping_session(catalog: &Catalog) -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    jammi_ballista::register(&ctx, catalog).unwrap();
    ctx
}

/// Whether `message` is the catalog's refusal for lack of access.
pub fn permission_denied(message: &str) -> bool {
    message.contains("permission denied:") && message.contains("this credential has read access")
}

/// Runs `sql` in `ctx`; every cell as text, row by row.
pub async fn rows(ctx: &SessionContext, sql: &str) -> Vec<Vec<String>> {
    jammi_testkit::cells(&run(ctx, sql).await)
}

/// Runs `sql` in `ctx`.
pub async fn run(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql)
        .await
        .unwrap_or_else(|e| panic!("planning {sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("running {sql}: {e}"))
}

/// The error `sql` fails with in `ctx`, planning or running.
pub async fn error(ctx: &SessionContext, sql: &str) -> String {
    match ctx.sql(sql).await {
        Err(e) => e.to_string(),
        Ok(df) => match df.collect().await {
            Err(e) => e.to_string(),
            Ok(batches) => panic!(
                "{sql} should fail, returned {:?}",
                jammi_testkit::cells(&batches)
            ),
        },
    }
}

/// The rows a tenant's model query returns, as `model_id/version`.
pub fn model_keys(rows: &[Vec<String>]) -> Vec<String> {
    rows.iter().map(|r| format!("{}/{}", r[0], r[1])).collect()
}
