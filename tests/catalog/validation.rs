//! Every invalid input of SPEC §9 is refused with its field named, and changes nothing.

use std::time::Duration;

use jammi_catalog::{
    Catalog, CatalogError, ModelTask, NewEvalRun, NewResultTable, NewTrainingJob, RegisterModel,
    ResultTableStatus, TenantId,
};

use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;

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

/// NUL (U+0000) is refused in every text field of every write, on both backends (SQLite
/// would store it, Postgres refuses it with an untyped database error).
async fn nul_in_any_text_field_is_refused_naming_the_field(db: &TestDb) {
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
    t.claim_next_training_job("w", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    t.create_eval_run(NewEvalRun {
        run_id: Some("r".into()),
        ..NewEvalRun::new("base", "retrieval", "{}")
    })
    .await
    .unwrap();
    let table = NewResultTable {
        table_name: "t".into(),
        source_id: "s".into(),
        model_id: "base".into(),
        task: ModelTask::TextEmbedding,
        parquet_path: "/p".into(),
        row_count: None,
        status: ResultTableStatus::Building,
    };
    t.create_result_table(table.clone()).await.unwrap();
    let before = snapshot(&t).await;
    let nul = |s: &str| format!("{s}\0");

    let m = model("m").version(1);
    for (field, params) in [
        ("model_id", model(&nul("m"))),
        (
            "model_type",
            RegisterModel {
                model_type: nul("embedding"),
                ..m.clone()
            },
        ),
        (
            "backend",
            RegisterModel {
                backend: nul("candle"),
                ..m.clone()
            },
        ),
        ("base_model_id", m.clone().base_model(nul("base"))),
        ("artifact_path", m.clone().artifact_path(nul("/w"))),
        ("config_json", m.clone().config_json(nul("{}"))),
    ] {
        assert_nul_refused(t.register_model(params.clone()).await, field);
        // Without a version too (the allocating path).
        let params = RegisterModel {
            version: None,
            ..params
        };
        assert_nul_refused(t.register_model(params).await, field);
    }
    assert_invalid(nul("ner").parse::<ModelTask>(), "task");

    let job = NewTrainingJob::new("base", "out", "src", "mse", "{}");
    for (field, job) in [
        (
            "job_id",
            NewTrainingJob {
                job_id: Some(nul("j2")),
                ..job.clone()
            },
        ),
        (
            "base_model_id",
            NewTrainingJob {
                base_model_id: nul("base"),
                ..job.clone()
            },
        ),
        (
            "output_model_id",
            NewTrainingJob {
                output_model_id: nul("out"),
                ..job.clone()
            },
        ),
        (
            "training_source",
            NewTrainingJob {
                training_source: nul("src"),
                ..job.clone()
            },
        ),
        (
            "loss_type",
            NewTrainingJob {
                loss_type: nul("mse"),
                ..job.clone()
            },
        ),
        (
            "hyperparams",
            NewTrainingJob {
                hyperparams: nul("{}"),
                ..job.clone()
            },
        ),
    ] {
        assert_nul_refused(t.create_training_job(job).await, field);
    }
    let lease = Duration::from_secs(60);
    assert_nul_refused(t.claim_next_training_job(&nul("w"), lease).await, "worker");
    assert_nul_refused(
        t.heartbeat_training_job(&nul("j"), "w", lease).await,
        "job_id",
    );
    assert_nul_refused(
        t.heartbeat_training_job("j", &nul("w"), lease).await,
        "worker",
    );
    assert_nul_refused(t.fail_training_job(&nul("j"), "w", "e").await, "job_id");
    assert_nul_refused(t.fail_training_job("j", &nul("w"), "e").await, "worker");
    assert_nul_refused(t.fail_training_job("j", "w", &nul("oom")).await, "error");
    let finalize = |job: &str, worker: &str, out: &str, path: &str, metrics: Option<&str>| {
        let (job, worker, out, path) = (
            job.to_owned(),
            worker.to_owned(),
            out.to_owned(),
            path.to_owned(),
        );
        let metrics = metrics.map(str::to_owned);
        let t = t.clone();
        async move {
            t.finalize_training_job(&job, &worker, &out, 1, &path, metrics.as_deref())
                .await
        }
    };
    assert_nul_refused(finalize(&nul("j"), "w", "base", "/p", None).await, "job_id");
    assert_nul_refused(finalize("j", &nul("w"), "base", "/p", None).await, "worker");
    assert_nul_refused(
        finalize("j", "w", &nul("base"), "/p", None).await,
        "output_model_id",
    );
    assert_nul_refused(
        finalize("j", "w", "base", &nul("/p"), None).await,
        "artifact_path",
    );
    assert_nul_refused(
        finalize("j", "w", "base", "/p", Some(&nul("{}"))).await,
        "metrics",
    );

    let run = NewEvalRun::new("base", "retrieval", "{}");
    for (field, run) in [
        (
            "run_id",
            NewEvalRun {
                run_id: Some(nul("r2")),
                ..run.clone()
            },
        ),
        (
            "model_id",
            NewEvalRun {
                model_id: Some(nul("base")),
                ..run.clone()
            },
        ),
        (
            "eval_type",
            NewEvalRun {
                eval_type: nul("retrieval"),
                ..run.clone()
            },
        ),
        (
            "metrics",
            NewEvalRun {
                metrics: nul("{}"),
                ..run.clone()
            },
        ),
    ] {
        assert_nul_refused(t.create_eval_run(run).await, field);
    }

    let table = NewResultTable {
        table_name: "t2".into(),
        ..table
    };
    for (field, table) in [
        (
            "table_name",
            NewResultTable {
                table_name: nul("t2"),
                ..table.clone()
            },
        ),
        (
            "source_id",
            NewResultTable {
                source_id: nul("s"),
                ..table.clone()
            },
        ),
        (
            "model_id",
            NewResultTable {
                model_id: nul("base"),
                ..table.clone()
            },
        ),
        (
            "parquet_path",
            NewResultTable {
                parquet_path: nul("/p"),
                ..table.clone()
            },
        ),
    ] {
        assert_nul_refused(t.create_result_table(table).await, field);
    }
    assert_nul_refused(
        t.set_result_table_status(&nul("t"), ResultTableStatus::Ready, None)
            .await,
        "table_name",
    );

    assert_nul_refused(t.delete_model(&nul("base"), None, true).await, "model_id");
    assert_nul_refused(t.delete_training_job(&nul("j")).await, "job_id");
    assert_nul_refused(t.delete_eval_run(&nul("r")).await, "run_id");
    assert_nul_refused(t.delete_result_table(&nul("t")).await, "table_name");

    assert_eq!(
        snapshot(&t).await,
        before,
        "a refused input changed the catalog"
    );

    // Other control characters in free text and JSON are still accepted.
    let stored = t
        .register_model(
            RegisterModel::new("tabs", "emb\tedding", "can\ndle", ModelTask::Ner)
                .config_json("{\n\t\"dim\": 384\n}"),
        )
        .await
        .unwrap();
    assert_eq!(
        (stored.model_type.as_str(), stored.backend.as_str()),
        ("emb\tedding", "can\ndle")
    );
}

fn assert_nul_refused<T: std::fmt::Debug>(result: jammi_catalog::Result<T>, field: &str) {
    match result {
        Err(CatalogError::InvalidInput { field: f, reason }) => {
            assert_eq!(f, field, "wrong field named ({reason})");
            assert!(
                reason.contains("NUL") || reason.contains("control characters"),
                "{field}: {reason}"
            );
        }
        other => panic!("expected invalid {field}, got {other:?}"),
    }
}

/// A name holding NUL names no row: reads answer *not found* on both backends (Postgres
/// would otherwise fail with a database error).
async fn reads_of_a_name_holding_nul_answer_not_found(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    t.register_model(model("m").version(1)).await.unwrap();
    assert!(matches!(
        t.get_model("m\0").await,
        Err(CatalogError::ModelNotFound { .. })
    ));
    assert!(matches!(
        t.get_model_version("m\0", 1).await,
        Err(CatalogError::ModelNotFound { .. })
    ));
    for result in [
        t.get_training_job("j\0").await.map(|_| ()),
        t.get_eval_run("r\0").await.map(|_| ()),
        t.get_result_table("t\0").await.map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(CatalogError::NotFound { .. })),
            "{result:?}"
        );
    }
}

backend_tests!(
    every_invalid_input_is_rejected_and_changes_nothing,
    nul_in_any_text_field_is_refused_naming_the_field,
    reads_of_a_name_holding_nul_answer_not_found,
);
