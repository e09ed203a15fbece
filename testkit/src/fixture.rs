//! A small catalog with rows of two tenants and global rows in every table.

use jammi_catalog::{
    Catalog, ModelTask, NewEvalRun, NewResultTable, NewTrainingJob, RegisterModel,
    ResultTableStatus, TenantId,
};

/// Tenant A of the fixture.
pub const TENANT_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
/// Tenant B of the fixture.
pub const TENANT_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

pub fn tenant_a() -> TenantId {
    TENANT_A.parse().unwrap()
}

pub fn tenant_b() -> TenantId {
    TENANT_B.parse().unwrap()
}

/// Fills `catalog` (any scope) with, per owner (A, B, global): models `<o>-embed` v1 and
/// v2, `<o>-ner` v1, the global `base` v1..v3; one training job, one eval run and one
/// result table each.
pub async fn populate(catalog: &Catalog) {
    let global = catalog.with_scope(None);
    for v in 1..=3 {
        global
            .register_model(
                RegisterModel::new("base", "embedding", "candle", ModelTask::TextEmbedding)
                    .version(v)
                    .artifact_path(format!("/weights/base-{v}")),
            )
            .await
            .unwrap();
    }
    for (prefix, scope) in [
        ("a", Some(tenant_a())),
        ("b", Some(tenant_b())),
        ("g", None),
    ] {
        let c = catalog.with_scope(scope);
        for v in 1..=2 {
            c.register_model(
                RegisterModel::new(
                    format!("{prefix}-embed"),
                    "embedding",
                    "candle",
                    ModelTask::TextEmbedding,
                )
                .version(v)
                .base_model("base")
                .config_json(r#"{"dim": 384}"#),
            )
            .await
            .unwrap();
        }
        c.register_model(RegisterModel::new(
            format!("{prefix}-ner"),
            "encoder",
            "http",
            ModelTask::Ner,
        ))
        .await
        .unwrap();
        c.create_training_job(NewTrainingJob {
            job_id: Some(format!("{prefix}-job")),
            ..NewTrainingJob::new(
                "base",
                format!("{prefix}-tuned"),
                "s3://data",
                "contrastive",
                "{}",
            )
        })
        .await
        .unwrap();
        c.create_eval_run(NewEvalRun {
            run_id: Some(format!("{prefix}-run")),
            ..NewEvalRun::new(format!("{prefix}-embed"), "retrieval", r#"{"ndcg": 0.5}"#)
        })
        .await
        .unwrap();
        c.create_result_table(NewResultTable {
            table_name: format!("{prefix}-vectors"),
            source_id: "docs".into(),
            model_id: format!("{prefix}-embed"),
            task: ModelTask::TextEmbedding,
            parquet_path: format!("/out/{prefix}.parquet"),
            row_count: Some(100),
            status: ResultTableStatus::Ready,
        })
        .await
        .unwrap();
    }
}
