//! The catalog as DataFusion tables (SPEC §6), through `ctx.sql` only, on both backends.

mod access;
mod connections;
mod dynamic;
mod foreign;
mod history;
mod integers;
mod join;
mod oracle;
mod placement;
mod pushdown;
mod scale;
mod schema;
mod scope;
mod sessions;
mod visibility;
mod writes;

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::{SessionConfig, SessionContext};
use jammi_catalog::{Catalog, register_catalog};

/// A session with `information_schema` on and the catalog registered for `catalog`'s scope.
pub fn session(catalog: &Catalog) -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_information_schema(true));
    register_catalog(&ctx, catalog);
    ctx
}

/// Runs `sql` and returns the batches.
pub async fn run(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql)
        .await
        .unwrap_or_else(|e| panic!("planning {sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("running {sql}: {e}"))
}

/// Runs `sql` and returns every cell as text (`NULL` for nulls), row by row.
pub async fn rows(ctx: &SessionContext, sql: &str) -> Vec<Vec<String>> {
    jammi_testkit::cells(&run(ctx, sql).await)
}

/// The text of `EXPLAIN [ANALYZE] sql`.
pub async fn explain(ctx: &SessionContext, sql: &str) -> String {
    let batches = run(ctx, &format!("EXPLAIN {sql}")).await;
    datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string()
}

/// The `rows_fetched` metric of every catalog scan in `EXPLAIN ANALYZE sql`, summed.
pub async fn rows_fetched(ctx: &SessionContext, sql: &str) -> u64 {
    let text = explain(ctx, &format!("ANALYZE {sql}")).await;
    let fetched: Vec<u64> = text
        .lines()
        .filter(|l| l.contains("JammiScanExec"))
        .map(|l| {
            let at = l
                .find("rows_fetched=")
                .unwrap_or_else(|| panic!("no rows_fetched in {l}"));
            l[at + "rows_fetched=".len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect::<String>()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(!fetched.is_empty(), "no catalog scan in\n{text}");
    fetched.iter().sum()
}
