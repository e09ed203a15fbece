use jammi_catalog::{
    Backend, Catalog, EventKind, ModelTask, NewEvalRun, NewResultTable, NewTrainingJob,
    RegisterModel, ResultTableStatus, TenantId,
};
use sqlx::Connection;

use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;

async fn migrations_are_idempotent_across_reopen(db: &TestDb) {
    let t = TenantId::random();
    db.scoped(t)
        .register_model(RegisterModel::new(
            "m",
            "embedding",
            "candle",
            ModelTask::TextEmbedding,
        ))
        .await
        .unwrap();
    for _ in 0..2 {
        let reopened = Catalog::open(&db.url)
            .await
            .expect("reopen migrates nothing twice");
        let models = reopened.with_scope(Some(t)).list_models().await.unwrap();
        assert_eq!(models.len(), 1);
        reopened.store().close().await;
    }
}

async fn concurrent_opens_of_a_new_database_all_succeed(db: &TestDb) {
    // Opening runs the migrations again; several at once must agree on the ledger.
    let opens = (0..4).map(|_| Catalog::open(&db.url));
    for catalog in futures::future::join_all(opens).await {
        let catalog = catalog.expect("open");
        assert!(catalog.list_models().await.unwrap().is_empty());
        catalog.store().close().await;
    }
}

/// A database written before the event log (schema 2) gets one event per existing row
/// when it is migrated, so the log replays to the live tables from the start.
async fn an_upgraded_database_logs_its_existing_rows(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    let m = RegisterModel::new("m", "embedding", "candle", ModelTask::Ner);
    t.register_model(m.clone().config_json("{\"a\": [1, 2]}"))
        .await
        .unwrap();
    db.global().register_model(m.clone()).await.unwrap();
    t.create_training_job(NewTrainingJob::new("m", "out", "s3://d", "ce", "{}"))
        .await
        .unwrap();
    t.create_eval_run(NewEvalRun::new("m", "mteb", "{\"ndcg\": 0.5}"))
        .await
        .unwrap();
    t.create_result_table(NewResultTable {
        table_name: "r".into(),
        source_id: "s".into(),
        model_id: "m".into(),
        task: ModelTask::Ner,
        parquet_path: "/p".into(),
        row_count: Some(3),
        status: ResultTableStatus::Ready,
    })
    .await
    .unwrap();
    // Back to schema 2: no log, no aliases, no tags.
    let downgrade = "DROP TABLE model_tags; DROP TABLE model_aliases; DROP TABLE events; \
                     DELETE FROM jammi_migrations WHERE version = 3";
    match db.catalog.store().backend() {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql(downgrade).execute(&mut conn).await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql(downgrade).execute(&mut conn).await.unwrap();
        }
    }
    let reopened = Catalog::open(&db.url).await.expect("migrates to schema 3");
    let t = reopened.with_scope(t.scope());
    let events = t.list_events().await.unwrap();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    use EventKind::*;
    assert_eq!(kinds.len(), 5, "{events:?}");
    for kind in [
        ModelRegistered,
        TrainingJobCreated,
        EvalRunCreated,
        ResultTableCreated,
    ] {
        assert!(kinds.contains(&kind), "{kind}: {events:?}");
    }
    // Each state is the live row, exactly.
    let now = i64::MAX;
    assert_eq!(
        t.models_as_of(now).await.unwrap(),
        t.list_models().await.unwrap()
    );
    let state = |entity: &str| {
        events
            .iter()
            .find(|e| e.entity == entity)
            .and_then(|e| e.state.clone())
            .unwrap()
    };
    assert_eq!(
        serde_json::from_str::<jammi_catalog::TrainingJob>(&state("training_jobs")).unwrap(),
        t.list_training_jobs().await.unwrap()[0]
    );
    assert_eq!(
        serde_json::from_str::<jammi_catalog::EvalRun>(&state("eval_runs")).unwrap(),
        t.list_eval_runs().await.unwrap()[0]
    );
    assert_eq!(
        serde_json::from_str::<jammi_catalog::ResultTable>(&state("result_tables")).unwrap(),
        t.list_result_tables().await.unwrap()[0]
    );
    reopened.store().close().await;
}

backend_tests!(
    migrations_are_idempotent_across_reopen,
    concurrent_opens_of_a_new_database_all_succeed,
    an_upgraded_database_logs_its_existing_rows
);
