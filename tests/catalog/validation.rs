//! Every invalid input of SPEC §9 is refused with its field named, and changes nothing.

use std::time::Duration;

use jammi_catalog::{
    Catalog, CatalogError, ModelTask, NewEvalRun, NewResultTable, NewTrainingJob, RegisterModel,
    ResultTableStatus, TenantId,
};

use crate::backend_tests;
use crate::common::TestDb;

/// Everything the catalog holds, as seen by one scope.
async fn snapshot(c: &Catalog) -> String {
    format!(
        "{:?}{:?}{:?}{:?}",
        c.list_models().await.unwrap(),
        c.list_training_jobs().await.unwrap(),
        c.list_eval_runs().await.unwrap(),
        c.list_result_tables().await.unwrap()
    )
}

fn assert_invalid<T: std::fmt::Debug>(result: jammi_catalog::Result<T>, field: &str) {
    match result {
        Err(CatalogError::InvalidInput { field: f, reason }) => {
            assert_eq!(f, field, "wrong field named ({reason})");
            assert!(!reason.is_empty());
        }
        other => panic!("expected invalid {field}, got {other:?}"),
    }
}

fn model(name: &str) -> RegisterModel {
    RegisterModel::new(name, "embedding", "candle", ModelTask::TextEmbedding)
}

async fn every_invalid_input_is_rejected_and_changes_nothing(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    t.register_model(model("base").version(1).artifact_path("/keep"))
        .await
        .unwrap();
    t.create_training_job(NewTrainingJob {
        job_id: Some("j".into()),
        ..NewTrainingJob::new("base", "out", "src", "mse", "{}")
    })
    .await
    .unwrap();
    let before = snapshot(&t).await;

    assert_invalid(t.register_model(model("")).await, "model_id");
    assert_invalid(t.register_model(model(&"n".repeat(257))).await, "model_id");
    assert_invalid(t.register_model(model("bad\u{7}name")).await, "model_id");
    assert_invalid(t.register_model(model("a::b")).await, "model_id");
    assert_invalid(t.register_model(model("base").version(0)).await, "version");
    assert_invalid(t.register_model(model("base").version(-1)).await, "version");
    assert_invalid(
        t.register_model(model("base").version(1).config_json("{not json"))
            .await,
        "config_json",
    );
    assert_invalid(
        t.register_model(model("base").base_model("x::y")).await,
        "base_model_id",
    );
    assert_invalid(
        t.register_model(RegisterModel::new("m", "", "candle", ModelTask::Ner))
            .await,
        "model_type",
    );
    assert_invalid(
        t.register_model(RegisterModel::new("m", "llm", " ", ModelTask::Ner))
            .await,
        "backend",
    );
    assert_invalid("embeddings".parse::<ModelTask>(), "task");
    assert_invalid(
        "00000000-0000-0000-0000-000000000000".parse::<TenantId>(),
        "tenant",
    );
    assert_invalid("not-a-uuid".parse::<TenantId>(), "tenant");

    let job = NewTrainingJob::new("base", "out", "src", "mse", "{}");
    assert_invalid(
        t.create_training_job(NewTrainingJob {
            hyperparams: "[1,".into(),
            ..job.clone()
        })
        .await,
        "hyperparams",
    );
    assert_invalid(
        t.create_training_job(NewTrainingJob {
            base_model_version: Some(0),
            ..job.clone()
        })
        .await,
        "base_model_version",
    );
    assert_invalid(
        t.create_training_job(NewTrainingJob {
            output_model_id: "".into(),
            ..job.clone()
        })
        .await,
        "output_model_id",
    );
    assert_invalid(
        t.create_training_job(NewTrainingJob {
            job_id: Some("a::b".into()),
            ..job
        })
        .await,
        "job_id",
    );
    assert_invalid(
        t.claim_next_training_job("w", Duration::ZERO).await,
        "lease",
    );
    assert_invalid(
        t.claim_next_training_job("", Duration::from_secs(1)).await,
        "worker",
    );
    assert_invalid(
        t.heartbeat_training_job("j", "w", Duration::ZERO).await,
        "lease",
    );
    assert_invalid(
        t.heartbeat_training_job("j", "", Duration::from_secs(1))
            .await,
        "worker",
    );
    assert_invalid(t.fail_training_job("j", "", "e").await, "worker");
    assert_invalid(
        t.finalize_training_job("j", "", "out", 1, "/p", None).await,
        "worker",
    );
    assert_invalid(
        t.finalize_training_job("j", "w", "out", 0, "/p", None)
            .await,
        "output_version",
    );
    assert_invalid(
        t.finalize_training_job("j", "w", "out", 1, "/p", Some("{"))
            .await,
        "metrics",
    );
    assert_invalid(t.reclaim_expired_training_jobs(0).await, "max_attempts");

    assert_invalid(
        t.create_eval_run(NewEvalRun::new("base", "retrieval", "nan"))
            .await,
        "metrics",
    );
    assert_invalid(
        t.create_eval_run(NewEvalRun::new("base", "", "{}")).await,
        "eval_type",
    );
    assert_invalid(
        t.create_eval_run(NewEvalRun {
            model_version: Some(-2),
            ..NewEvalRun::new("base", "r", "{}")
        })
        .await,
        "model_version",
    );

    let table = NewResultTable {
        table_name: "t".into(),
        source_id: "s".into(),
        model_id: "base".into(),
        task: ModelTask::TextEmbedding,
        parquet_path: "/p".into(),
        row_count: Some(-1),
        status: ResultTableStatus::Ready,
    };
    assert_invalid(t.create_result_table(table.clone()).await, "row_count");
    assert_invalid(
        t.create_result_table(NewResultTable {
            row_count: None,
            table_name: "".into(),
            ..table
        })
        .await,
        "table_name",
    );

    assert_eq!(
        snapshot(&t).await,
        before,
        "a rejected input changed the catalog"
    );
    assert_eq!(
        t.get_model("base").await.unwrap().artifact_path.as_deref(),
        Some("/keep")
    );
}

backend_tests!(every_invalid_input_is_rejected_and_changes_nothing);
