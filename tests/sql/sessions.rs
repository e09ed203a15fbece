//! Sessions derived from one template (`sql::session`) and plans reused across statements
//! (`sql::plans`): each session keeps its own catalog list, binding and settings; a plan is
//! reused only for its grant, binds its values exactly, and never carries a moment (now(),
//! a time-travel instant, a deadline) into a later run.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Int32Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::execution::TaskContext;
use datafusion::execution::session_state::SessionState;
use datafusion::prelude::{SessionConfig, SessionContext};
use jammi_catalog::sql::limits::{StatementLimits, bound_state};
use jammi_catalog::sql::plans::{PlanCache, PreparedPlan};
use jammi_catalog::sql::session::SessionTemplate;
use jammi_catalog::{Access, Catalog, Grant};
use jammi_testkit::fixture::{populate, tenant_a, tenant_b};
use jammi_testkit::{TestDb, backend_tests, cells};

use super::rows;

const NAMES: &str = "SELECT DISTINCT model_id FROM jammi.public.models ORDER BY model_id";

fn host_template() -> SessionTemplate {
    SessionTemplate::new(SessionConfig::new().with_information_schema(true))
}

/// A session of `template` for `catalog`, as a context.
fn context(template: &SessionTemplate, catalog: &Catalog) -> SessionContext {
    template.context(catalog)
}

/// Two sessions of one template neither see nor change each other: tables, views and
/// catalogs registered in one, its settings, its functions and its binding stay its own,
/// and the `jammi` catalog they share refuses anything registered into it.
async fn sessions_of_one_template_are_isolated(db: &TestDb) {
    populate(&db.catalog).await;
    let template = host_template();
    let a = context(&template, &db.catalog.with_scope(Some(tenant_a())));
    let b = context(&template, &db.catalog.with_scope(Some(tenant_b())));
    let b_names = rows(&b, NAMES).await;
    assert!(b_names.iter().any(|r| r[0] == "b-embed"), "{b_names:?}");

    // Tables, views, catalogs and settings of `a`.
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)])),
        vec![Arc::new(Int32Array::from(vec![1]))],
    )
    .unwrap();
    a.register_table(
        "mine",
        Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap()),
    )
    .unwrap();
    rows(&a, "CREATE VIEW a_view AS SELECT 1 AS one").await;
    a.register_catalog(
        "extra",
        Arc::new(datafusion::catalog::MemoryCatalogProvider::new()),
    );
    rows(&a, "SET datafusion.execution.batch_size = 7").await;
    assert_eq!(
        rows(&a, "SELECT * FROM mine").await,
        vec![vec!["1".to_owned()]]
    );
    for missing in ["SELECT * FROM mine", "SELECT * FROM a_view"] {
        assert!(b.sql(missing).await.is_err(), "{missing} is visible in b");
    }
    assert!(b.catalog("extra").is_none());
    assert_eq!(
        b.state().config().options().execution.batch_size,
        SessionConfig::new().options().execution.batch_size
    );
    // `a` rebinds itself to tenant B's scope, then to unscoped: `b` is not moved, nor a
    // session made later.
    jammi_catalog::register_catalog(&a, &db.catalog.with_scope(None));
    assert_eq!(rows(&b, NAMES).await, b_names);
    let later = context(&template, &db.catalog.with_scope(Some(tenant_b())));
    assert_eq!(rows(&later, NAMES).await, b_names);
    assert!(later.sql("SELECT * FROM mine").await.is_err());
    // The shared `jammi` catalog takes nothing registered into it.
    let jammi = a.catalog("jammi").unwrap();
    assert!(
        jammi
            .register_schema("planted", Arc::new(MemorySchemaProvider::new()))
            .is_err()
    );
    let public = jammi.schema("public").unwrap();
    let planted = MemTable::try_new(
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)])),
        vec![vec![]],
    )
    .unwrap();
    assert!(
        public
            .register_table("planted".into(), Arc::new(planted))
            .is_err()
    );
    assert!(rows(&b, "SELECT * FROM jammi.public.models").await.len() > 1);
    assert!(b.sql("SELECT * FROM jammi.public.planted").await.is_err());
}

/// A grant's session (as the server makes them: the limits' rule on every statement).
fn server_state(template: &SessionTemplate, db: &TestDb, grant: Grant) -> SessionState {
    let mut state = template.state(&db.catalog.with_scope(grant.scope).narrowed(grant.access));
    bound_state(
        &mut state,
        StatementLimits {
            max_value_bytes: 64 << 20,
            deadline: std::time::Instant::now().checked_add(Duration::from_secs(30)),
            timeout: Duration::from_secs(30),
        },
    );
    state
}

fn server_template() -> SessionTemplate {
    let config = SessionConfig::new()
        .with_information_schema(true)
        .with_create_default_catalog_and_schema(false)
        .with_default_catalog_and_schema("jammi", "public");
    SessionTemplate::with(config, |state| {
        bound_state(state, StatementLimits::default())
    })
}

/// `sql` for `grant`: the cached plan or a new one (cached when reusable), bound to
/// `values`, run in `state`; its cells.
async fn run_cached(
    cache: &PlanCache,
    state: &SessionState,
    grant: Grant,
    sql: &str,
    values: Vec<ScalarValue>,
) -> datafusion::error::Result<Vec<Vec<String>>> {
    let prepared = match cache.get(grant, sql) {
        Some(found) => found,
        None => {
            let plan = state.create_logical_plan(sql).await?;
            cache.insert(grant, sql, PreparedPlan::new(state, plan)?)
        }
    };
    let bound = prepared.bind(Some(state), values)?;
    let physical = bound.physical(state).await?;
    let batches =
        datafusion::physical_plan::collect(physical, Arc::new(TaskContext::from(state))).await?;
    Ok(cells(&batches))
}

/// One statement text for two tenants and two access levels: each grant gets its own plan,
/// and its own rows from it; the read grant's DELETE stays refused after admin's plan of
/// the same text is cached; values are bound exactly.
async fn plans_are_reused_only_for_their_grant(db: &TestDb) {
    populate(&db.catalog).await;
    let template = server_template();
    let cache = PlanCache::new(16);
    let sql = "SELECT model_id, version FROM models WHERE model_id LIKE $1 ORDER BY 1, 2";
    let [a, b] = [tenant_a(), tenant_b()].map(|t| Grant {
        scope: Some(t),
        access: Access::Read,
    });
    let pattern = || vec![ScalarValue::from("%embed")];
    let mut answers = Vec::new();
    for round in 0..2 {
        for grant in [a, b] {
            let state = server_state(&template, db, grant);
            let answer = run_cached(&cache, &state, grant, sql, pattern())
                .await
                .unwrap();
            if round == 0 {
                answers.push(answer);
            } else {
                assert_eq!(answer, answers[usize::from(grant == b)]);
            }
        }
    }
    assert!(
        answers[0].iter().any(|r| r[0] == "a-embed")
            && !answers[0].iter().any(|r| r[0] == "b-embed")
    );
    assert!(
        answers[1].iter().any(|r| r[0] == "b-embed")
            && !answers[1].iter().any(|r| r[0] == "a-embed")
    );
    assert_eq!(cache.len(), 2, "one plan per grant");
    // A plan holds no scope: run in another grant's session it reads that session's rows.
    let a_plan = cache.get(a, sql).unwrap();
    let b_state = server_state(&template, db, b);
    let physical = a_plan
        .bind(Some(&b_state), pattern())
        .unwrap()
        .physical(&b_state)
        .await
        .unwrap();
    let batches =
        datafusion::physical_plan::collect(physical, Arc::new(TaskContext::from(&b_state)))
            .await
            .unwrap();
    assert_eq!(cells(&batches), answers[1]);

    // Access: admin's plan of a DELETE is cached; a read grant's is its own, refused.
    let delete = "DELETE FROM models WHERE model_id = 'nothing-here'";
    let admin = Grant {
        scope: Some(tenant_a()),
        access: Access::Admin,
    };
    let state = server_state(&template, db, admin);
    assert_eq!(
        run_cached(&cache, &state, admin, delete, vec![])
            .await
            .unwrap(),
        vec![vec!["0".to_owned()]]
    );
    assert!(cache.get(admin, delete).is_some());
    let state = server_state(&template, db, a);
    let refused = run_cached(&cache, &state, a, delete, vec![])
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("admin"), "{refused}");
    assert!(cache.get(a, delete).is_none(), "a refusal is not cached");

    // Values are bound exactly to the placeholder's type.
    let by_version = "SELECT model_id FROM models WHERE version = $1 AND model_id = 'a-embed'";
    let state = server_state(&template, db, a);
    assert_eq!(
        run_cached(
            &cache,
            &state,
            a,
            by_version,
            vec![ScalarValue::Int64(Some(2))]
        )
        .await
        .unwrap(),
        vec![vec!["a-embed".to_owned()]]
    );
    let too_big = run_cached(
        &cache,
        &state,
        a,
        by_version,
        vec![ScalarValue::Int64(Some(1 << 40))],
    )
    .await
    .unwrap_err();
    assert!(
        too_big.to_string().contains("is not a valid Int32"),
        "{too_big}"
    );
}

/// What a plan must not carry from one run to the next is settled per run: `now()` is
/// the run's; a time-travel instant, an `information_schema` table and an aggregate under
/// the limits (which holds its statement's deadline) are planned afresh each time.
async fn reused_plans_carry_no_moment(db: &TestDb) {
    populate(&db.catalog).await;
    let template = server_template();
    let cache = PlanCache::new(16);
    let grant = Grant {
        scope: Some(tenant_a()),
        access: Access::Read,
    };
    let now = "SELECT CAST(now() AS BIGINT) FROM models LIMIT 1";
    let first = run_cached(
        &cache,
        &server_state(&template, db, grant),
        grant,
        now,
        vec![],
    )
    .await
    .unwrap();
    assert!(
        cache.get(grant, now).is_some(),
        "a plan reading catalog tables is cached"
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = run_cached(
        &cache,
        &server_state(&template, db, grant),
        grant,
        now,
        vec![],
    )
    .await
    .unwrap();
    assert!(second[0][0].parse::<i64>().unwrap() > first[0][0].parse::<i64>().unwrap());

    for fresh in [
        "SELECT count(*) FROM models_as_of(now())",
        "SELECT count(*) FROM information_schema.tables",
        "SELECT string_agg(model_id, ',') FROM models",
        "EXPLAIN SELECT * FROM models",
    ] {
        run_cached(
            &cache,
            &server_state(&template, db, grant),
            grant,
            fresh,
            vec![],
        )
        .await
        .unwrap_or_else(|e| panic!("{fresh}: {e}"));
        assert!(cache.get(grant, fresh).is_none(), "{fresh} was cached");
    }
    // The limits' deadline is the run's: a plan made in a session whose deadline has
    // passed (which itself can no longer run it) runs in a later session.
    let call = "SELECT upper(model_id) FROM models ORDER BY 1 LIMIT 1";
    let mut old = template.state(&db.catalog.with_scope(grant.scope).narrowed(grant.access));
    bound_state(
        &mut old,
        StatementLimits {
            max_value_bytes: 64 << 20,
            deadline: std::time::Instant::now().checked_add(Duration::from_millis(50)),
            timeout: Duration::from_millis(50),
        },
    );
    let plan = old.create_logical_plan(call).await.unwrap();
    cache.insert(grant, call, PreparedPlan::new(&old, plan).unwrap());
    tokio::time::sleep(Duration::from_millis(60)).await;
    let late = run_cached(&cache, &old, grant, call, vec![])
        .await
        .unwrap_err();
    assert!(late.to_string().contains("longer than"), "{late}");
    assert_eq!(
        run_cached(
            &cache,
            &server_state(&template, db, grant),
            grant,
            call,
            vec![]
        )
        .await
        .unwrap(),
        vec![vec!["A-EMBED".to_owned()]]
    );
}

/// The cache holds at most its capacity, dropping the least recently used plan.
async fn the_plan_cache_is_bounded(db: &TestDb) {
    let template = server_template();
    let cache = PlanCache::new(2);
    let grant = Grant {
        scope: Some(tenant_a()),
        access: Access::Read,
    };
    let state = server_state(&template, db, grant);
    for i in 0..3 {
        run_cached(
            &cache,
            &state,
            grant,
            &format!("SELECT {i} FROM models LIMIT 1"),
            vec![],
        )
        .await
        .unwrap();
        assert!(cache.len() <= 2);
    }
    assert!(cache.get(grant, "SELECT 0 FROM models LIMIT 1").is_none());
    assert!(cache.get(grant, "SELECT 2 FROM models LIMIT 1").is_some());
}

/// A plan analyzed when it was prepared binds without a session (a server serves it from
/// its cache without deriving one), to the same rows; a plan whose placeholder's type was
/// unknown, analyzed at each run, is refused without one, with an error, not a panic.
async fn analyzed_plans_bind_without_a_session(db: &TestDb) {
    populate(&db.catalog).await;
    let template = server_template();
    let grant = Grant {
        scope: Some(tenant_a()),
        access: Access::Read,
    };
    let state = server_state(&template, db, grant);
    let typed = "SELECT model_id FROM models WHERE model_id = $1";
    let prepared =
        PreparedPlan::new(&state, state.create_logical_plan(typed).await.unwrap()).unwrap();
    assert!(prepared.binds_alone());
    let value = || vec![ScalarValue::from("a-embed")];
    let alone = prepared.bind(None, value()).unwrap();
    let physical = alone.physical(&state).await.unwrap();
    let batches = datafusion::physical_plan::collect(physical, Arc::new(TaskContext::from(&state)))
        .await
        .unwrap();
    assert!(!cells(&batches).is_empty());
    assert!(cells(&batches).iter().all(|r| r[0] == "a-embed"));

    let untyped = "SELECT $1 AS v";
    let prepared =
        PreparedPlan::new(&state, state.create_logical_plan(untyped).await.unwrap()).unwrap();
    assert!(!prepared.binds_alone());
    let refused = prepared
        .bind(None, vec![ScalarValue::from("x")])
        .unwrap_err();
    assert!(
        refused.to_string().contains("without a session"),
        "{refused}"
    );
    assert!(
        prepared
            .bind(Some(&state), vec![ScalarValue::from("x")])
            .is_ok()
    );
}

backend_tests!(
    sessions_of_one_template_are_isolated,
    plans_are_reused_only_for_their_grant,
    reused_plans_carry_no_moment,
    the_plan_cache_is_bounded,
    analyzed_plans_bind_without_a_session
);
