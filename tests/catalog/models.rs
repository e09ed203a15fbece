use std::collections::BTreeSet;

use jammi_catalog::{
    CatalogError, ModelStatus, ModelTask, NewEvalRun, NewResultTable, NewTrainingJob,
    RegisterModel, ResultTableStatus, TenantId,
};

use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;

fn embedding(name: &str) -> RegisterModel {
    RegisterModel::new(name, "embedding", "candle", ModelTask::TextEmbedding)
}

async fn two_tenants_see_disjoint_rows_and_both_see_global(db: &TestDb) {
    let (a, b) = (TenantId::random(), TenantId::random());
    db.global().register_model(embedding("base")).await.unwrap();
    db.scoped(a)
        .register_model(embedding("a-model"))
        .await
        .unwrap();
    db.scoped(b)
        .register_model(embedding("b-model"))
        .await
        .unwrap();

    let names = |models: Vec<jammi_catalog::ModelRecord>| -> BTreeSet<String> {
        models.into_iter().map(|m| m.model_id).collect()
    };
    let seen_a = names(db.scoped(a).list_models().await.unwrap());
    let seen_b = names(db.scoped(b).list_models().await.unwrap());
    let seen_global = names(db.global().list_models().await.unwrap());
    assert_eq!(seen_a, BTreeSet::from(["base".into(), "a-model".into()]));
    assert_eq!(seen_b, BTreeSet::from(["base".into(), "b-model".into()]));
    assert_eq!(seen_global, BTreeSet::from(["base".into()]));

    let err = db.scoped(a).get_model("b-model").await.unwrap_err();
    assert!(matches!(err, CatalogError::ModelNotFound { .. }), "{err}");
    let err = db.global().get_model("a-model").await.unwrap_err();
    assert!(matches!(err, CatalogError::ModelNotFound { .. }), "{err}");
    assert_eq!(
        db.scoped(b).get_model("base").await.unwrap().tenant_id,
        None
    );
    assert_eq!(
        db.scoped(a).get_model("a-model").await.unwrap().tenant_id,
        Some(a)
    );
}

async fn list_is_ordered_by_creation_then_name_and_version(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    for name in ["zeta", "alpha", "zeta", "mid"] {
        t.register_model(embedding(name)).await.unwrap();
    }
    let order: Vec<(String, i32)> = t
        .list_models()
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.model_id, m.version))
        .collect();
    assert_eq!(
        order,
        vec![
            ("zeta".into(), 1),
            ("alpha".into(), 1),
            ("zeta".into(), 2),
            ("mid".into(), 1)
        ]
    );
}

async fn tenant_v1_shadows_global_v2(db: &TestDb) {
    let t = TenantId::random();
    db.global()
        .register_model(embedding("bge").version(2))
        .await
        .unwrap();
    db.scoped(t)
        .register_model(embedding("bge").version(1))
        .await
        .unwrap();

    let got = db.scoped(t).get_model("bge").await.unwrap();
    assert_eq!((got.version, got.tenant_id), (1, Some(t)));
    // An explicit version still finds the global row when the tenant has none.
    let v2 = db.scoped(t).get_model_version("bge", 2).await.unwrap();
    assert_eq!((v2.version, v2.tenant_id), (2, None));
    // The other tenant and the unscoped handle see the global latest.
    assert_eq!(
        db.scoped(TenantId::random())
            .get_model("bge")
            .await
            .unwrap()
            .version,
        2
    );
    assert_eq!(db.global().get_model("bge").await.unwrap().version, 2);
}

async fn get_model_version_prefers_own_row(db: &TestDb) {
    let t = TenantId::random();
    db.global()
        .register_model(embedding("m").version(3).artifact_path("/global"))
        .await
        .unwrap();
    db.scoped(t)
        .register_model(embedding("m").version(3).artifact_path("/own"))
        .await
        .unwrap();
    let got = db.scoped(t).get_model_version("m", 3).await.unwrap();
    assert_eq!(got.artifact_path.as_deref(), Some("/own"));
    let err = db.scoped(t).get_model_version("m", 4).await.unwrap_err();
    assert_eq!(err.to_string(), "model not found: m version 4");
}

async fn auto_versions_count_up_per_scope(db: &TestDb) {
    let (a, b) = (db.scoped(TenantId::random()), db.scoped(TenantId::random()));
    for expected in 1..=3 {
        assert_eq!(
            a.register_model(embedding("m")).await.unwrap().version,
            expected
        );
    }
    assert_eq!(b.register_model(embedding("m")).await.unwrap().version, 1);
    assert_eq!(
        db.global()
            .register_model(embedding("m"))
            .await
            .unwrap()
            .version,
        1
    );
    a.register_model(embedding("m").version(10)).await.unwrap();
    assert_eq!(a.register_model(embedding("m")).await.unwrap().version, 11);
}

async fn reregister_updates_fields_but_never_clears_the_path(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    let first = t
        .register_model(
            embedding("m")
                .version(1)
                .artifact_path("/weights/m1")
                .config_json(r#"{"dim":384}"#),
        )
        .await
        .unwrap();
    assert_eq!(first.status, ModelStatus::Registered);

    let second = t
        .register_model(
            RegisterModel::new("m", "lora", "vllm", ModelTask::Classification)
                .version(1)
                .base_model("base"),
        )
        .await
        .unwrap();
    assert_eq!(
        second.artifact_path.as_deref(),
        Some("/weights/m1"),
        "absent path kept"
    );
    assert_eq!(second.model_type, "lora");
    assert_eq!(second.backend, "vllm");
    assert_eq!(second.task, ModelTask::Classification);
    assert_eq!(second.base_model_id.as_deref(), Some("base"));
    assert_eq!(second.config_json, None, "config is replaced, as specified");
    assert_eq!(second.created_at, first.created_at);
    assert!(second.updated_at >= first.updated_at);

    let third = t
        .register_model(embedding("m").version(1).artifact_path("/weights/m1-new"))
        .await
        .unwrap();
    assert_eq!(
        third.artifact_path.as_deref(),
        Some("/weights/m1-new"),
        "given path written"
    );
    assert_eq!(t.list_models().await.unwrap().len(), 1);
}

async fn concurrent_auto_version_registers_get_exactly_one_to_two_hundred(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            for _ in 0..25 {
                versions.push(
                    t.register_model(embedding("hot"))
                        .await
                        .expect("no error surfaces")
                        .version,
                );
            }
            versions
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=200).collect::<Vec<_>>());
    assert_eq!(t.list_models().await.unwrap().len(), 200);
}

async fn delete_removes_the_latest_owned_version(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    for _ in 0..3 {
        t.register_model(embedding("m")).await.unwrap();
    }
    assert!(t.delete_model("m", None, false).await.unwrap());
    assert_eq!(t.get_model("m").await.unwrap().version, 2);
    assert!(t.delete_model("m", Some(1), false).await.unwrap());
    let left: Vec<i32> = t
        .list_models()
        .await
        .unwrap()
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(left, vec![2]);
}

async fn delete_of_absent_model_is_not_found_unless_if_exists(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    let err = t.delete_model("ghost", None, false).await.unwrap_err();
    assert!(matches!(err, CatalogError::ModelNotFound { .. }), "{err}");
    assert!(!t.delete_model("ghost", Some(3), true).await.unwrap());
}

async fn tenant_cannot_delete_global_or_other_tenants_model(db: &TestDb) {
    let (a, b) = (TenantId::random(), TenantId::random());
    db.global()
        .register_model(embedding("shared"))
        .await
        .unwrap();
    db.scoped(b)
        .register_model(embedding("b-only"))
        .await
        .unwrap();

    for (name, version) in [
        ("shared", None),
        ("shared", Some(1)),
        ("b-only", None),
        ("b-only", Some(1)),
    ] {
        let err = db
            .scoped(a)
            .delete_model(name, version, false)
            .await
            .unwrap_err();
        assert!(
            matches!(err, CatalogError::ModelNotFound { .. }),
            "{name}: expected not found, got {err}"
        );
        assert!(
            !db.scoped(a)
                .delete_model(name, version, true)
                .await
                .unwrap()
        );
    }
    assert_eq!(db.global().list_models().await.unwrap().len(), 1);
    assert_eq!(db.scoped(b).list_models().await.unwrap().len(), 2);
}

async fn unscoped_deletes_only_global_rows(db: &TestDb) {
    let t = TenantId::random();
    db.scoped(t).register_model(embedding("m")).await.unwrap();
    let err = db
        .global()
        .delete_model("m", None, false)
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::ModelNotFound { .. }), "{err}");
    assert_eq!(db.scoped(t).list_models().await.unwrap().len(), 1);
}

fn result_table(name: &str, model: &str) -> NewResultTable {
    NewResultTable {
        table_name: name.into(),
        source_id: "docs".into(),
        model_id: model.into(),
        task: ModelTask::TextEmbedding,
        parquet_path: format!("/data/{name}.parquet"),
        row_count: Some(10),
        status: ResultTableStatus::Ready,
    }
}

async fn each_edge_blocks_delete_with_a_typed_error_naming_it(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    for name in ["by-result", "by-output", "by-base", "by-eval"] {
        t.register_model(embedding(name)).await.unwrap();
    }
    t.create_result_table(result_table("emb", "by-result"))
        .await
        .unwrap();
    t.create_training_job(NewTrainingJob::new(
        "by-base",
        "by-output",
        "s3://data",
        "mse",
        "{}",
    ))
    .await
    .unwrap();
    t.create_eval_run(NewEvalRun::new("by-eval", "retrieval", r#"{"ndcg":0.5}"#))
        .await
        .unwrap();

    let expect = [
        ("by-result", "result_tables.model_id"),
        ("by-output", "training_jobs.output_model_id"),
        ("by-base", "training_jobs.base_model_key"),
        ("by-eval", "eval_runs.model_key"),
    ];
    for (name, edge) in expect {
        let err = t.delete_model(name, None, false).await.unwrap_err();
        match &err {
            CatalogError::ModelReferenced {
                model,
                version,
                edges,
            } => {
                assert_eq!((model.as_str(), *version), (name, 1));
                assert_eq!(edges, &vec![edge]);
            }
            other => panic!("{name}: expected referenced, got {other}"),
        }
        assert!(err.to_string().contains(edge), "{err}");
        t.get_model(name).await.expect("still there");
    }
}

async fn global_model_referenced_by_a_tenant_cannot_be_deleted(db: &TestDb) {
    let t = TenantId::random();
    db.global().register_model(embedding("base")).await.unwrap();
    db.scoped(t)
        .create_eval_run(NewEvalRun::new("base", "retrieval", "{}"))
        .await
        .unwrap();
    let err = db
        .global()
        .delete_model("base", None, false)
        .await
        .unwrap_err();
    match err {
        CatalogError::ModelReferenced { edges, .. } => {
            assert_eq!(edges, vec!["eval_runs.model_key"])
        }
        other => panic!("expected referenced, got {other}"),
    }
    // The message names the edge only: nothing of the tenant's run.
    db.global().get_model("base").await.unwrap();

    // A global model referenced by name from a tenant's result table is refused too.
    db.global()
        .register_model(embedding("named"))
        .await
        .unwrap();
    db.scoped(t)
        .create_result_table(result_table("out", "named"))
        .await
        .unwrap();
    let err = db
        .global()
        .delete_model("named", None, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("result_tables.model_id"), "{err}");
}

async fn tenant_references_do_not_block_another_tenants_model(db: &TestDb) {
    let (a, b) = (db.scoped(TenantId::random()), db.scoped(TenantId::random()));
    a.register_model(embedding("same-name")).await.unwrap();
    b.register_model(embedding("same-name")).await.unwrap();
    b.create_result_table(result_table("b-table", "same-name"))
        .await
        .unwrap();
    assert!(a.delete_model("same-name", None, false).await.unwrap());
    assert!(b.delete_model("same-name", None, false).await.is_err());
}

async fn delete_succeeds_once_references_are_gone(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    t.register_model(embedding("m")).await.unwrap();
    let run = t
        .create_eval_run(NewEvalRun::new("m", "retrieval", "{}"))
        .await
        .unwrap();
    assert!(t.delete_model("m", None, false).await.is_err());
    t.delete_eval_run(&run.run_id).await.unwrap();
    assert!(t.delete_model("m", None, false).await.unwrap());
}

/// SQL `INSERT` (the bulk fixtures' path) writes the same keys as `register_model` (an
/// upsert of an inserted version must update it, not collide on the unique index).
async fn generated_versions_use_the_catalogs_keys(db: &TestDb) {
    for scope in [Some(TenantId::random()), None] {
        let c = db.catalog.with_scope(scope);
        jammi_testkit::generate::generate_versions(&c, "gen", 5).await;
        let updated = c
            .register_model(embedding("gen").version(3).artifact_path("/p3"))
            .await
            .unwrap();
        assert_eq!(updated.artifact_path.as_deref(), Some("/p3"));
        assert_eq!(c.register_model(embedding("gen")).await.unwrap().version, 6);
        assert!(c.delete_model("gen", Some(3), false).await.unwrap());
        assert_eq!(
            c.list_models()
                .await
                .unwrap()
                .iter()
                .filter(|m| m.model_id == "gen")
                .count(),
            5
        );
    }
}

backend_tests!(
    generated_versions_use_the_catalogs_keys,
    two_tenants_see_disjoint_rows_and_both_see_global,
    list_is_ordered_by_creation_then_name_and_version,
    tenant_v1_shadows_global_v2,
    get_model_version_prefers_own_row,
    auto_versions_count_up_per_scope,
    reregister_updates_fields_but_never_clears_the_path,
    concurrent_auto_version_registers_get_exactly_one_to_two_hundred,
    delete_removes_the_latest_owned_version,
    delete_of_absent_model_is_not_found_unless_if_exists,
    tenant_cannot_delete_global_or_other_tenants_model,
    unscoped_deletes_only_global_rows,
    each_edge_blocks_delete_with_a_typed_error_naming_it,
    global_model_referenced_by_a_tenant_cannot_be_deleted,
    tenant_references_do_not_block_another_tenants_model,
    delete_succeeds_once_references_are_gone,
);
