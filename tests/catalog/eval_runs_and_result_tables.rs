use jammi_catalog::{
    CatalogError, ModelTask, NewEvalRun, NewResultTable, RegisterModel, ResultTableStatus, TenantId,
};

use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;

fn table(name: &str) -> NewResultTable {
    NewResultTable {
        table_name: name.into(),
        source_id: "corpus".into(),
        model_id: "m".into(),
        task: ModelTask::TextEmbedding,
        parquet_path: format!("/out/{name}.parquet"),
        row_count: None,
        status: ResultTableStatus::Building,
    }
}

async fn eval_runs_resolve_their_model_and_are_tenant_scoped(db: &TestDb) {
    let (a, b) = (TenantId::random(), TenantId::random());
    db.global()
        .register_model(
            RegisterModel::new("m", "embedding", "candle", ModelTask::TextEmbedding).version(2),
        )
        .await
        .unwrap();
    let run = db
        .scoped(a)
        .create_eval_run(NewEvalRun {
            run_id: Some("r1".into()),
            ..NewEvalRun::new("m", "retrieval", r#"{"ndcg@10":0.71}"#)
        })
        .await
        .unwrap();
    assert_eq!(
        (run.model_id.as_deref(), run.model_version),
        (Some("m"), Some(2))
    );
    assert_eq!(run.tenant_id, Some(a));
    assert_eq!(db.scoped(a).get_eval_run("r1").await.unwrap(), run);
    assert!(matches!(
        db.scoped(b).get_eval_run("r1").await.unwrap_err(),
        CatalogError::NotFound { .. }
    ));
    assert!(db.global().list_eval_runs().await.unwrap().is_empty());
    assert_eq!(db.scoped(a).list_eval_runs().await.unwrap(), vec![run]);

    let unbound = db
        .scoped(a)
        .create_eval_run(NewEvalRun {
            model_id: None,
            ..NewEvalRun::new("x", "smoke", "{}")
        })
        .await
        .unwrap();
    assert_eq!(unbound.model_id, None);

    let err = db
        .scoped(a)
        .create_eval_run(NewEvalRun::new("nope", "retrieval", "{}"))
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::ModelNotFound { .. }), "{err}");
    assert!(matches!(
        db.scoped(b).delete_eval_run("r1").await.unwrap_err(),
        CatalogError::NotFound { .. }
    ));
    db.scoped(a).delete_eval_run("r1").await.unwrap();
    assert_eq!(db.scoped(a).list_eval_runs().await.unwrap().len(), 1);
}

async fn result_tables_are_created_updated_listed_and_deleted_by_owner(db: &TestDb) {
    let (a, b) = (db.scoped(TenantId::random()), db.scoped(TenantId::random()));
    let created = a.create_result_table(table("emb")).await.unwrap();
    assert_eq!(created.status, ResultTableStatus::Building);
    assert!(matches!(
        a.create_result_table(table("emb")).await.unwrap_err(),
        CatalogError::AlreadyExists { .. }
    ));
    b.create_result_table(table("emb")).await.unwrap();

    a.set_result_table_status("emb", ResultTableStatus::Ready, Some(1_000))
        .await
        .unwrap();
    let ready = a.get_result_table("emb").await.unwrap();
    assert_eq!(
        (ready.status, ready.row_count),
        (ResultTableStatus::Ready, Some(1_000))
    );
    assert_eq!(
        b.get_result_table("emb").await.unwrap().status,
        ResultTableStatus::Building
    );

    assert!(db.global().get_result_table("emb").await.is_err());
    assert!(db.global().delete_result_table("emb").await.is_err());
    a.delete_result_table("emb").await.unwrap();
    assert!(a.list_result_tables().await.unwrap().is_empty());
    assert_eq!(b.list_result_tables().await.unwrap().len(), 1);
}

backend_tests!(
    eval_runs_resolve_their_model_and_are_tenant_scoped,
    result_tables_are_created_updated_listed_and_deleted_by_owner,
);
