//! Joining the catalog with the user's own data.

use crate::{rows, session};
use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;
use jammi_testkit::fixture::{populate, tenant_a};

const SCORES_CSV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/eval_scores.csv");

async fn catalog_joins_a_csv_file(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    ctx.register_csv("scores", SCORES_CSV, Default::default())
        .await
        .unwrap();
    let got = rows(
        &ctx,
        "SELECT m.model_id, m.version, s.ndcg FROM jammi.public.models m \
         JOIN scores s ON s.model_id = m.model_id AND s.version = m.version \
         ORDER BY s.ndcg DESC, m.model_id",
    )
    .await;
    // The CSV also scores b-embed (tenant B's model), which tenant A must not see.
    let names: Vec<&str> = got.iter().map(|r| r[0].as_str()).collect();
    assert!(!names.contains(&"b-embed"), "{got:?}");
    assert_eq!(
        got.first().map(|r| r[0].as_str()),
        Some("a-embed"),
        "{got:?}"
    );
    assert!(names.contains(&"base"), "{got:?}");
}

async fn catalog_joins_a_parquet_file(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scores.parquet");
    ctx.register_csv("scores_csv", SCORES_CSV, Default::default())
        .await
        .unwrap();
    ctx.sql("SELECT * FROM scores_csv")
        .await
        .unwrap()
        .write_parquet(path.to_str().unwrap(), Default::default(), None)
        .await
        .unwrap();
    ctx.register_parquet("scores", path.to_str().unwrap(), Default::default())
        .await
        .unwrap();
    let got = rows(
        &ctx,
        "SELECT count(*) FROM jammi.public.models m JOIN scores s ON s.model_id = m.model_id AND s.version = m.version",
    )
    .await;
    let csv_count = rows(
        &ctx,
        "SELECT count(*) FROM jammi.public.models m JOIN scores_csv s ON s.model_id = m.model_id AND s.version = m.version",
    )
    .await;
    assert_eq!(got, csv_count);
    assert_ne!(got, vec![vec!["0"]]);
}

backend_tests!(catalog_joins_a_csv_file, catalog_joins_a_parquet_file);
