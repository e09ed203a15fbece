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

/// A model's events are found through the index that leads with the owner (migration 6);
/// the one led by the model name is gone. SQLite's plan (no statistics: the index that
/// matches the most columns) shows it; Postgres's choice depends on its statistics, so
/// there the index's definition is checked.
async fn a_models_events_are_read_by_owner_then_name(db: &TestDb) {
    let found: Vec<String> = match db.catalog.store().backend() {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            let rows = sqlx::query(
                "EXPLAIN QUERY PLAN SELECT event_id FROM events \
                 WHERE owner IN ('t', '') AND model_id = 'm' ORDER BY event_id",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            rows.iter().map(|r| sqlx::Row::get(r, "detail")).collect()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar(
                "SELECT indexname || ' ' || indexdef FROM pg_indexes \
                 WHERE schemaname = current_schema() AND tablename = 'events' \
                 AND indexname LIKE 'events_by_model%'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap()
        }
    };
    let found = found.join("\n");
    assert!(found.contains("events_by_model_name"), "{found}");
    if db.catalog.store().backend() == Backend::Postgres {
        assert_eq!(found.lines().count(), 1, "{found}");
        assert!(found.ends_with("(owner, model_id, event_id)"), "{found}");
    }
}

/// Migrations 6 and 7 on a catalog with rows: the events' index and the models' unique
/// key (a table rebuild on SQLite) under rows that refer to them. Every row and reference
/// survives, references are enforced again, and both lead with the owner.
async fn the_models_rebuild_keeps_every_row_and_reference(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    let m = RegisterModel::new("m", "embedding", "candle", ModelTask::Ner);
    for v in [1, 2] {
        t.register_model(m.clone().version(v)).await.unwrap();
    }
    db.global().register_model(m.clone()).await.unwrap();
    t.set_model_alias("m", "champion", 2).await.unwrap();
    t.set_model_tag("m", 1, "stage", "prod").await.unwrap();
    t.create_training_job(NewTrainingJob::new("m", "out", "s3://d", "ce", "{}"))
        .await
        .unwrap();
    t.create_eval_run(NewEvalRun::new("m", "mteb", "{\"ndcg\": 0.5}"))
        .await
        .unwrap();
    let before = (
        t.list_models().await.unwrap(),
        t.list_model_aliases().await.unwrap(),
        t.list_model_tags().await.unwrap(),
        t.list_training_jobs().await.unwrap(),
        t.list_eval_runs().await.unwrap(),
    );
    // Back to schema 5: the events' index led by the name, and on Postgres the models'
    // constraint too; SQLite rebuilds the table from whatever it is.
    let backend = db.catalog.store().backend();
    let downgrade = match backend {
        Backend::Sqlite => {
            "DROP INDEX events_by_model_name; \
             CREATE INDEX events_by_model ON events (model_id, owner, event_id); \
             DELETE FROM jammi_migrations WHERE version IN (6, 7)"
        }
        Backend::Postgres => {
            "DROP INDEX events_by_model_name; \
             CREATE INDEX events_by_model ON events (model_id, owner, event_id); \
             ALTER TABLE models DROP CONSTRAINT models_owner_model_id_version_key; \
             ALTER TABLE models ADD CONSTRAINT models_model_id_owner_version_key \
             UNIQUE (model_id, owner, version); \
             DELETE FROM jammi_migrations WHERE version IN (6, 7)"
        }
    };
    // A reference to no model, which the database must refuse.
    let dangling = "INSERT INTO model_tags \
         (owner, model_key, model_id, version, key, value, created_at, updated_at) \
         VALUES ('', 'nothing::1', 'nothing', 1, 'k', 'v', 0, 0)";
    // The columns of the models' unique key, in index order.
    let unique_key = match backend {
        Backend::Sqlite => {
            "SELECT group_concat(name, ',') FROM (SELECT i.name FROM pragma_index_list('models') l \
             JOIN pragma_index_info(l.name) i WHERE l.origin = 'u' ORDER BY i.seqno)"
        }
        Backend::Postgres => {
            "SELECT string_agg(indexdef, '; ') FROM pg_indexes WHERE schemaname = current_schema() \
             AND tablename = 'models' \
             AND indexname LIKE '%version_key'"
        }
    };
    let key_after = match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql(downgrade).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
            Catalog::open(&db.url).await.expect("migrates to schema 7");
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            assert!(sqlx::raw_sql(dangling).execute(&mut conn).await.is_err());
            // The rebuilt table keeps the index of migration 1 and its CHECK.
            let by_owner: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pragma_index_list('models') WHERE name = 'models_by_owner'",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            assert_eq!(by_owner, 1);
            let version_zero = "INSERT INTO models (model_key, owner, model_id, version, \
                 model_type, task, backend, status, created_at, updated_at) \
                 VALUES ('::z::0', '', 'z', 0, 't', 'ner', 'b', 'registered', 0, 0)";
            assert!(
                sqlx::raw_sql(version_zero)
                    .execute(&mut conn)
                    .await
                    .is_err()
            );
            sqlx::query_scalar::<_, String>(unique_key)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql(downgrade).execute(&mut conn).await.unwrap();
            Catalog::open(&db.url).await.expect("migrates to schema 7");
            assert!(sqlx::raw_sql(dangling).execute(&mut conn).await.is_err());
            sqlx::query_scalar::<_, String>(unique_key)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        }
    };
    // Exactly one unique key besides the primary key, led by the owner.
    assert!(
        key_after == "owner,model_id,version"
            || key_after.ends_with("USING btree (owner, model_id, version)")
                && !key_after.contains(';'),
        "{key_after}"
    );
    let reopened = Catalog::open(&db.url).await.unwrap();
    let t = reopened.with_scope(t.scope());
    let after = (
        t.list_models().await.unwrap(),
        t.list_model_aliases().await.unwrap(),
        t.list_model_tags().await.unwrap(),
        t.list_training_jobs().await.unwrap(),
        t.list_eval_runs().await.unwrap(),
    );
    assert_eq!(before, after);
    assert_eq!(after.0.len(), 3, "two own versions and the global one");
    reopened.store().close().await;
    a_models_events_are_read_by_owner_then_name(db).await;
}

backend_tests!(
    migrations_are_idempotent_across_reopen,
    the_models_rebuild_keeps_every_row_and_reference,
    a_models_events_are_read_by_owner_then_name,
    concurrent_opens_of_a_new_database_all_succeed,
    an_upgraded_database_logs_its_existing_rows
);
