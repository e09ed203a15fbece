//! Aliases, tags, the event log and time travel from SQL (SPEC §13).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datafusion::prelude::SessionContext;
use jammi_catalog::{ModelTask, RegisterModel};

use crate::{explain, rows, session};
use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;
use jammi_testkit::fixture::{populate, tenant_a, tenant_b};

async fn error(ctx: &SessionContext, sql: &str) -> String {
    let result = match ctx.sql(sql).await {
        Ok(df) => df.collect().await.map(|_| ()),
        Err(e) => Err(e),
    };
    result.expect_err(&format!("{sql} should fail")).to_string()
}

async fn count(ctx: &SessionContext, table: &str) -> String {
    rows(ctx, &format!("SELECT count(*) FROM jammi.public.{table}")).await[0][0].clone()
}

async fn register(ctx: &SessionContext, name: &str, versions: usize) {
    for _ in 0..versions {
        rows(
            ctx,
            &format!("SELECT register_model('{name}', NULL, 'embedding', 'candle', 'ner')"),
        )
        .await;
    }
}

async fn aliases_and_tags_are_set_moved_and_removed_from_sql(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    register(&ctx, "m", 3).await;
    let set = rows(
        &ctx,
        "SELECT version, set_model_alias(model_id, 'champion', version) AS moved \
         FROM jammi.public.models WHERE model_id = 'm' AND version = 2",
    )
    .await;
    assert_eq!(set, vec![vec!["2", "true"]]);
    rows(
        &ctx,
        "INSERT INTO jammi.public.model_aliases (model_id, alias, version) \
         VALUES ('m', 'champion', 3), ('m', 'challenger', 1)",
    )
    .await;
    rows(
        &ctx,
        "INSERT INTO jammi.public.model_tags (model_id, version, key, value) \
         VALUES ('m', 3, 'stage', 'prod'), ('m', 1, 'stage', 'retired')",
    )
    .await;
    assert_eq!(
        rows(&ctx, "SELECT set_model_tag('m', 3, 'owner', 'ml')").await,
        vec![vec!["true"]]
    );
    assert_eq!(
        rows(
            &ctx,
            "SELECT alias, version FROM jammi.public.model_aliases ORDER BY alias"
        )
        .await,
        vec![vec!["challenger", "1"], vec!["champion", "3"]]
    );
    assert_eq!(
        rows(
            &ctx,
            "SELECT m.version, t.key, t.value FROM jammi.public.model_aliases a \
             JOIN jammi.public.models m ON m.model_id = a.model_id AND m.version = a.version \
             JOIN jammi.public.model_tags t ON t.model_id = m.model_id AND t.version = m.version \
             WHERE a.alias = 'champion' ORDER BY t.key"
        )
        .await,
        vec![vec!["3", "owner", "ml"], vec!["3", "stage", "prod"]]
    );

    // The aliased version is referenced; the error names the edge.
    let refused = error(
        &ctx,
        "DELETE FROM jammi.public.models WHERE model_id = 'm' AND version = 3",
    )
    .await;
    assert!(refused.contains("model_aliases"), "{refused}");

    // DELETE on aliases and tags: the session's own rows, each with its event.
    assert_eq!(
        rows(
            &ctx,
            "DELETE FROM jammi.public.model_aliases WHERE alias = 'champion'"
        )
        .await,
        vec![vec!["1"]]
    );
    assert_eq!(
        rows(
            &ctx,
            "DELETE FROM jammi.public.model_tags WHERE key = 'stage' AND version = 1"
        )
        .await,
        vec![vec!["1"]]
    );
    assert_eq!(
        rows(
            &ctx,
            "DELETE FROM jammi.public.models WHERE model_id = 'm' AND version = 3"
        )
        .await,
        vec![vec!["1"]]
    );
    let removals = rows(
        &ctx,
        "SELECT kind, row_key FROM jammi.public.events \
         WHERE kind IN ('alias_removed', 'tag_removed', 'model_deleted') ORDER BY event_id",
    )
    .await;
    let kinds: Vec<&str> = removals.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "alias_removed",
            "tag_removed",
            "tag_removed",
            "tag_removed",
            "model_deleted"
        ]
    );
    let mut keys: Vec<&str> = removals.iter().map(|r| r[1].as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "m::1::stage",
            "m::3",
            "m::3::owner",
            "m::3::stage",
            "m::champion"
        ]
    );
}

async fn a_bad_row_writes_no_alias_and_no_event(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    register(&ctx, "m", 1).await;
    let events = count(&ctx, "events").await;
    for statement in [
        "INSERT INTO jammi.public.model_aliases (model_id, alias, version) \
         VALUES ('m', 'champion', 1), ('m', '', 1)",
        "INSERT INTO jammi.public.model_aliases (model_id, alias, version) \
         VALUES ('m', 'champion', 1), ('m', 'x', 9)",
        "INSERT INTO jammi.public.model_aliases (model_id, alias, version) \
         VALUES ('m', 'champion', 1), ('m', 'x', NULL)",
        "INSERT INTO jammi.public.model_tags (model_id, version, key, value) \
         VALUES ('m', 1, 'k', 'v'), ('m', 1, 'k2', NULL)",
        "INSERT INTO jammi.public.model_aliases (model_id, alias, version, tenant_id) \
         VALUES ('m', 'champion', 1, 'someone')",
        "SELECT set_model_alias('m', 'champion', 2)",
        "SELECT set_model_alias('m', 'champion')",
        "SELECT set_model_tag('m', 1, 'k\u{7}', 'v')",
    ] {
        error(&ctx, statement).await;
    }
    assert_eq!(count(&ctx, "model_aliases").await, "0");
    assert_eq!(count(&ctx, "model_tags").await, "0");
    assert_eq!(count(&ctx, "events").await, events);
    // A wrong argument count is refused while planning, with the function's usage.
    let usage = error(&ctx, "SELECT set_model_tag('m', 1, 'k')").await;
    assert!(
        usage.contains("set_model_tag(model_id, version, key, value) takes 4 arguments, got 3"),
        "{usage}"
    );
}

async fn guarded_calls_of_the_new_functions_are_refused_not_run(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    register(&ctx, "m", 2).await;
    let events = count(&ctx, "events").await;
    for statement in [
        "SELECT CASE WHEN version = 99 THEN set_model_alias(model_id, 'c', version) END \
         FROM jammi.public.models",
        "SELECT * FROM jammi.public.models WHERE version = 99 \
         AND set_model_tag(model_id, version, 'k', 'v')",
        "SELECT COALESCE(NULL, set_model_alias(model_id, 'c', version)) FROM jammi.public.models",
    ] {
        error(&ctx, statement).await;
    }
    assert_eq!(count(&ctx, "model_aliases").await, "0");
    assert_eq!(count(&ctx, "model_tags").await, "0");
    assert_eq!(count(&ctx, "events").await, events);
}

async fn events_are_read_only_scoped_and_pushed_down(db: &TestDb) {
    let a = session(&db.scoped(tenant_a()));
    let b = session(&db.scoped(tenant_b()));
    register(&a, "mine", 2).await;
    register(&b, "theirs", 1).await;
    let before = count(&a, "events").await;
    assert_eq!(before, "2");
    for statement in [
        "INSERT INTO jammi.public.events (kind, entity, row_key) VALUES ('x', 'models', 'x')",
        "DELETE FROM jammi.public.events WHERE event_id > 0",
        "DELETE FROM jammi.public.events WHERE kind = 'model_registered'",
        "UPDATE jammi.public.events SET kind = 'x'",
        "TRUNCATE jammi.public.events",
    ] {
        error(&a, statement).await;
    }
    assert_eq!(count(&a, "events").await, before);
    assert_eq!(count(&b, "events").await, "1");

    let a_id = tenant_a().to_string();
    let seen = rows(
        &a,
        "SELECT kind, entity, row_key, model_id, version, tenant_id FROM jammi.public.events \
         WHERE kind = 'model_registered' AND model_id = 'mine' AND event_id > 0 \
         AND event_time > TIMESTAMP '2020-01-01T00:00:00Z' ORDER BY event_id",
    )
    .await;
    assert_eq!(
        seen,
        vec![
            vec![
                "model_registered",
                "models",
                "mine::1",
                "mine",
                "1",
                a_id.as_str()
            ],
            vec![
                "model_registered",
                "models",
                "mine::2",
                "mine",
                "2",
                a_id.as_str()
            ],
        ]
    );
    let plan = explain(
        &a,
        "SELECT state FROM jammi.public.events WHERE kind = 'alias_set' AND model_id = 'mine' \
         AND event_id > 3 AND event_time > TIMESTAMP '2020-01-01T00:00:00Z'",
    )
    .await;
    for pushed in ["kind = ", "model_id = ", "event_id > ", "event_time > "] {
        assert!(
            plan.lines()
                .any(|l| l.contains("JammiScanExec") && l.contains(pushed)),
            "{pushed} not pushed:\n{plan}"
        );
    }
    // The state is the row's full new state, as JSON.
    let state = rows(
        &a,
        "SELECT state FROM jammi.public.events WHERE row_key = 'mine::2'",
    )
    .await;
    let state: serde_json::Value = serde_json::from_str(&state[0][0]).unwrap();
    assert_eq!(state["model_id"], "mine");
    assert_eq!(state["version"], 2);
    assert_eq!(state["tenant_id"], a_id.as_str());
    assert_eq!(state["status"], "registered");
}

fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

async fn time_travel_answers_what_was_champion_at_an_instant(db: &TestDb) {
    let a = session(&db.scoped(tenant_a()));
    register(&a, "m", 2).await;
    rows(&a, "SELECT set_model_alias('m', 'champion', 1)").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let then = micros_now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    rows(&a, "SELECT set_model_alias('m', 'champion', 2)").await;
    rows(
        &a,
        "SELECT register_model('m', NULL, 'embedding', 'candle', 'ner')",
    )
    .await;

    let at = |t: i64| format!("to_timestamp_micros({t})");
    assert_eq!(
        rows(
            &a,
            &format!(
                "SELECT version FROM model_aliases_as_of({}) WHERE alias = 'champion'",
                at(then)
            )
        )
        .await,
        vec![vec!["1"]]
    );
    assert_eq!(
        rows(
            &a,
            "SELECT version FROM model_aliases_as_of(now()) WHERE alias = 'champion'"
        )
        .await,
        vec![vec!["2"]]
    );
    assert_eq!(
        rows(
            &a,
            &format!(
                "SELECT model_id, version, tenant_id IS NOT NULL FROM models_as_of({}) \
                 ORDER BY version",
                at(then)
            )
        )
        .await,
        vec![vec!["m", "1", "true"], vec!["m", "2", "true"]]
    );
    // Now, it is the live table; before anything, it is empty.
    let live = rows(&a, "SELECT * FROM jammi.public.models ORDER BY version").await;
    assert_eq!(
        rows(&a, "SELECT * FROM models_as_of(now()) ORDER BY version").await,
        live
    );
    assert_eq!(
        rows(
            &a,
            "SELECT count(*) FROM models_as_of(TIMESTAMP '2000-01-01T00:00:00Z')"
        )
        .await,
        vec![vec!["0"]]
    );
    // Another tenant sees none of it.
    let b = session(&db.scoped(tenant_b()));
    assert_eq!(
        rows(&b, "SELECT count(*) FROM models_as_of(now())").await,
        vec![vec!["0"]]
    );
    assert_eq!(
        rows(&b, "SELECT count(*) FROM model_aliases_as_of(now())").await,
        vec![vec!["0"]]
    );
    for bad in [
        "SELECT * FROM models_as_of()",
        "SELECT * FROM models_as_of('not a time')",
        "SELECT * FROM models_as_of(NULL)",
        "SELECT * FROM models_as_of(now(), now())",
    ] {
        let e = error(&a, bad).await;
        assert!(e.contains("models_as_of"), "{bad}: {e}");
    }
}

/// `DELETE FROM` the other tables records one event per removed row.
async fn sql_deletes_record_their_events(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    for (table, column, id) in [
        ("training_jobs", "job_id", "a-job"),
        ("eval_runs", "run_id", "a-run"),
        ("result_tables", "table_name", "a-vectors"),
    ] {
        assert_eq!(
            rows(
                &ctx,
                &format!("DELETE FROM jammi.public.{table} WHERE {column} = '{id}'")
            )
            .await,
            vec![vec!["1"]],
            "{table}"
        );
    }
    let removed = rows(
        &ctx,
        "SELECT kind, entity, row_key, state IS NULL FROM jammi.public.events \
         WHERE kind LIKE '%_deleted' ORDER BY event_id",
    )
    .await;
    assert_eq!(
        removed,
        vec![
            vec!["training_job_deleted", "training_jobs", "a-job", "true"],
            vec!["eval_run_deleted", "eval_runs", "a-run", "true"],
            vec!["result_table_deleted", "result_tables", "a-vectors", "true"],
        ]
    );
}

/// A model registered through the Rust API shows up in the SQL log too.
async fn rust_and_sql_writes_share_one_log(db: &TestDb) {
    let catalog = db.scoped(tenant_a());
    catalog
        .register_model(RegisterModel::new(
            "r",
            "embedding",
            "candle",
            ModelTask::Ner,
        ))
        .await
        .unwrap();
    catalog.set_model_alias("r", "prod", 1).await.unwrap();
    let ctx = session(&catalog);
    assert_eq!(
        rows(
            &ctx,
            "SELECT kind FROM jammi.public.events ORDER BY event_id"
        )
        .await,
        vec![vec!["model_registered"], vec!["alias_set"]]
    );
}

backend_tests!(
    aliases_and_tags_are_set_moved_and_removed_from_sql,
    a_bad_row_writes_no_alias_and_no_event,
    guarded_calls_of_the_new_functions_are_refused_not_run,
    events_are_read_only_scoped_and_pushed_down,
    time_travel_answers_what_was_champion_at_an_instant,
    rust_and_sql_writes_share_one_log,
    sql_deletes_record_their_events,
);
