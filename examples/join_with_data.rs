//! Join the model catalog with your own evaluation scores.
//!
//! Registers a few models for one tenant (plus global base models), then joins
//! `jammi.public.models` with `examples/data/eval_scores.csv` in one DataFusion query and
//! prints a leaderboard of the models this tenant can see. Run with
//! `cargo run --release --example join_with_data`.

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::{CsvReadOptions, SessionContext};
use jammi_catalog::{Catalog, ModelTask, RegisterModel, TenantId, register_catalog};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("jammi-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let catalog = Catalog::open(&format!("sqlite://{}", dir.join("catalog.db").display())).await?;

    // Global base models, visible to every tenant.
    for version in [2, 3] {
        catalog
            .register_model(
                RegisterModel::new("base", "embedding", "candle", ModelTask::TextEmbedding)
                    .version(version)
                    .artifact_path(format!("/weights/base-{version}")),
            )
            .await?;
    }
    // Two versions fine-tuned by tenant A, and one model of tenant B that A must not see.
    let tenant_a: TenantId = "aaaaaaaa-0000-4000-8000-000000000001".parse()?;
    let tenant_b: TenantId = "bbbbbbbb-0000-4000-8000-000000000002".parse()?;
    let a = catalog.with_scope(Some(tenant_a));
    for _ in 0..2 {
        a.register_model(
            RegisterModel::new("a-embed", "embedding", "candle", ModelTask::TextEmbedding)
                .base_model("base"),
        )
        .await?;
    }
    catalog
        .with_scope(Some(tenant_b))
        .register_model(
            RegisterModel::new("b-embed", "embedding", "candle", ModelTask::TextEmbedding)
                .version(2),
        )
        .await?;

    // A session for tenant A: the catalog next to the user's own CSV.
    let ctx = SessionContext::new();
    register_catalog(&ctx, &a);
    let scores = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/eval_scores.csv");
    ctx.register_csv("scores", scores, CsvReadOptions::new())
        .await?;

    let leaderboard = ctx
        .sql(
            "SELECT m.model_id, m.version, m.tenant_id IS NULL AS global, s.benchmark, s.ndcg \
             FROM jammi.public.models m \
             JOIN scores s ON s.model_id = m.model_id AND s.version = m.version \
             ORDER BY s.ndcg DESC",
        )
        .await?
        .collect()
        .await?;
    let table = pretty_format_batches(&leaderboard)?.to_string();
    println!("{table}");

    let expected = "\
+----------+---------+--------+--------------+-------+
| model_id | version | global | benchmark    | ndcg  |
+----------+---------+--------+--------------+-------+
| a-embed  | 2       | false  | beir-scifact | 0.742 |
| a-embed  | 1       | false  | beir-scifact | 0.701 |
| base     | 3       | true   | beir-scifact | 0.688 |
| base     | 2       | true   | beir-scifact | 0.652 |
+----------+---------+--------+--------------+-------+";
    assert_eq!(table, expected, "tenant B's b-embed must not appear");
    catalog.store().close().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
