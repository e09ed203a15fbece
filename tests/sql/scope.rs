//! A session's scope cannot leak: views, cloned session states, prepared statements and
//! concurrent sessions of different scopes on one catalog only ever see and touch their
//! own rows (and, for reads, global ones). SPEC §2, docs/design.md "The session binding".

use std::collections::BTreeSet;

use datafusion::prelude::{SessionConfig, SessionContext};
use jammi_catalog::register_catalog;

use crate::{rows, session};
use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;
use jammi_testkit::fixture::{TENANT_A, TENANT_B, populate, tenant_a, tenant_b};

/// The distinct `tenant_id`s a query over the models table returns (`NULL` for global).
async fn owners(ctx: &SessionContext, sql: &str) -> BTreeSet<String> {
    rows(ctx, sql)
        .await
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

async fn error(ctx: &SessionContext, sql: &str) -> String {
    let result = match ctx.sql(sql).await {
        Ok(df) => df.collect().await.map(|_| ()),
        Err(e) => Err(e),
    };
    result.expect_err(&format!("{sql} should fail")).to_string()
}

async fn a_view_reads_with_the_scope_of_the_session_that_runs_it(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    rows(
        &ctx,
        "CREATE VIEW owners AS SELECT tenant_id FROM jammi.public.models",
    )
    .await;
    let view = "SELECT DISTINCT COALESCE(tenant_id, 'NULL') FROM owners";
    assert_eq!(owners(&ctx, view).await, set(&[TENANT_A, "NULL"]));
    // Rebinding the same session to B: the view created under A now reads as B.
    register_catalog(&ctx, &db.scoped(tenant_b()));
    assert_eq!(owners(&ctx, view).await, set(&[TENANT_B, "NULL"]));
    // A view over delete_model deletes only the running session's own rows.
    rows(
        &ctx,
        "CREATE VIEW drop_ner AS SELECT delete_model(model_id, version, true) AS gone \
         FROM jammi.public.models WHERE model_id LIKE '%-ner'",
    )
    .await;
    register_catalog(&ctx, &db.scoped(tenant_a()));
    // A sees its own `a-ner` (deleted) and the global `g-ner` (not its own: left alone).
    let mut gone = rows(&ctx, "SELECT * FROM drop_ner").await;
    gone.sort();
    assert_eq!(gone, vec![vec!["false"], vec!["true"]]);
    let left = rows(
        &session(&db.global()),
        "SELECT model_id FROM jammi.public.models WHERE model_id LIKE '%-ner'",
    )
    .await;
    assert_eq!(left, vec![vec!["g-ner"]]);
    let b_ner = rows(
        &session(&db.scoped(tenant_b())),
        "SELECT model_id FROM jammi.public.models WHERE model_id = 'b-ner'",
    )
    .await;
    assert_eq!(b_ner.len(), 1, "B's model must survive A's view");
}

async fn cloned_session_states_keep_their_own_scope(db: &TestDb) {
    populate(&db.catalog).await;
    // A host's template state, cloned per request: the clones share one catalog list.
    let template = SessionContext::new_with_config(SessionConfig::new()).state();
    let for_a = SessionContext::new_with_state(template.clone());
    register_catalog(&for_a, &db.scoped(tenant_a()));
    let for_b = SessionContext::new_with_state(template.clone());
    register_catalog(&for_b, &db.scoped(tenant_b()));
    let all = "SELECT DISTINCT COALESCE(tenant_id, 'NULL') FROM jammi.public.models";
    assert_eq!(owners(&for_a, all).await, set(&[TENANT_A, "NULL"]));
    assert_eq!(owners(&for_b, all).await, set(&[TENANT_B, "NULL"]));
    // A clone that was never bound sees the shared `jammi` but reads nothing through it.
    let unbound = SessionContext::new_with_state(template.clone());
    assert!(unbound.catalog("jammi").is_some());
    let err = error(&unbound, all).await;
    assert!(err.contains("no jammi catalog bound"), "{err}");
    let err = error(&unbound, "SELECT delete_model('a-ner', 1)").await;
    assert!(err.contains("delete_model"), "{err}");
    // Writes through each clone act for its own scope only.
    let err = error(&for_b, "SELECT delete_model('a-ner', 1)").await;
    assert!(err.contains("not found"), "{err}");
    assert_eq!(
        rows(&for_a, "SELECT delete_model('a-ner', 1)").await,
        vec![vec!["true"]]
    );
    // Concurrent requests on clones of one template, alternating scopes.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let state = template.clone();
        let (scope, own) = if i % 2 == 0 {
            (db.scoped(tenant_a()), TENANT_A)
        } else {
            (db.scoped(tenant_b()), TENANT_B)
        };
        tasks.push(tokio::spawn(async move {
            let ctx = SessionContext::new_with_state(state);
            register_catalog(&ctx, &scope);
            for _ in 0..5 {
                let v = rows(
                    &ctx,
                    "SELECT register_model('mine', NULL, 'e', 'c', 'ner') AS v",
                )
                .await;
                assert!(!v.is_empty());
                let seen = owners(
                    &ctx,
                    "SELECT DISTINCT COALESCE(tenant_id, 'NULL') FROM jammi.public.models",
                )
                .await;
                assert_eq!(seen, set(&[own, "NULL"]));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for (tenant, scope) in [(TENANT_A, tenant_a()), (TENANT_B, tenant_b())] {
        let mine = rows(
            &session(&db.scoped(scope)),
            "SELECT tenant_id, count(*) FROM jammi.public.models WHERE model_id = 'mine' GROUP BY tenant_id",
        )
        .await;
        assert_eq!(mine, vec![vec![tenant.to_owned(), "40".to_owned()]]);
    }
}

async fn prepared_statements_run_with_the_executing_sessions_scope(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx_a = session(&db.scoped(tenant_a()));
    rows(
        &ctx_a,
        "PREPARE owners_of(VARCHAR) AS SELECT DISTINCT COALESCE(tenant_id, 'NULL') FROM jammi.public.models WHERE model_id LIKE $1",
    )
    .await;
    rows(
        &ctx_a,
        "PREPARE drop_model(VARCHAR) AS SELECT delete_model($1, 1)",
    )
    .await;
    assert_eq!(
        owners(&ctx_a, "EXECUTE owners_of('%')").await,
        set(&[TENANT_A, "NULL"])
    );
    // The prepared plans travel with a cloned state; bound to B, they act for B.
    let ctx_b = SessionContext::new_with_state(ctx_a.state());
    register_catalog(&ctx_b, &db.scoped(tenant_b()));
    assert_eq!(
        owners(&ctx_b, "EXECUTE owners_of('%')").await,
        set(&[TENANT_B, "NULL"])
    );
    let err = error(&ctx_b, "EXECUTE drop_model('a-ner')").await;
    assert!(err.contains("not found"), "{err}");
    assert_eq!(
        rows(&ctx_b, "EXECUTE drop_model('b-ner')").await,
        vec![vec!["true"]]
    );
    // A is untouched and still reads as A.
    assert_eq!(
        rows(
            &ctx_a,
            "SELECT count(*) FROM jammi.public.models WHERE model_id = 'a-ner'"
        )
        .await,
        vec![vec!["1"]]
    );
    assert_eq!(
        owners(&ctx_a, "EXECUTE owners_of('%')").await,
        set(&[TENANT_A, "NULL"])
    );
}

async fn sql_cannot_see_or_change_the_binding(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    for sql in [
        format!("SET jammi.tenant = '{TENANT_B}'"),
        "SET jammi.scope = ''".to_owned(),
    ] {
        let err = error(&ctx, &sql).await;
        assert!(err.contains("cannot be set from SQL"), "{sql}: {err}");
    }
    let err = error(&ctx, "RESET jammi.tenant").await;
    assert!(!err.is_empty());
    let settings = rows(&ctx, "SHOW ALL").await;
    // The one jammi setting is how joins are read (sql::joined), not the binding.
    let jammi: Vec<&str> = settings
        .iter()
        .map(|r| r[0].as_str())
        .filter(|name| name.starts_with("jammi"))
        .collect();
    assert_eq!(
        jammi,
        ["jammi.join_pushdown"],
        "the binding is not a setting"
    );
    assert!(
        settings
            .iter()
            .all(|r| r.iter().all(|c| !c.contains(TENANT_A))),
        "no setting shows the tenant"
    );
}

backend_tests!(
    a_view_reads_with_the_scope_of_the_session_that_runs_it,
    cloned_session_states_keep_their_own_scope,
    prepared_statements_run_with_the_executing_sessions_scope,
    sql_cannot_see_or_change_the_binding,
);
