//! What reaches the database: projection, filters, limit (SPEC §6), checked through
//! EXPLAIN and through the number of rows the scan fetched.

use crate::{explain, rows, rows_fetched, session};
use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;
use jammi_testkit::fixture::{populate, tenant_a};

async fn explain_shows_the_pushed_sql(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    let plan = explain(
        &ctx,
        "SELECT version FROM jammi.public.models WHERE model_id = 'bge' AND version > 1 LIMIT 5",
    )
    .await;
    assert!(
        plan.contains(
            "sql=SELECT version FROM models WHERE owner IN ($1, '') AND (model_id = $2) AND (version > $3) LIMIT $4"
        ) || plan.contains(
            "sql=SELECT version FROM models WHERE owner IN ($1, '') AND ((model_id = $2) AND (version > $3)) LIMIT $4"
        ),
        "{plan}"
    );
    assert!(plan.contains("'bge'"), "{plan}");
    assert!(
        !plan.contains("FilterExec"),
        "an exact filter stays in DataFusion:\n{plan}"
    );
}

async fn untranslatable_filters_stay_in_datafusion_and_block_the_limit(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    let plan = explain(
        &ctx,
        "SELECT model_id FROM jammi.public.models WHERE upper(model_id) = 'BGE' LIMIT 5",
    )
    .await;
    assert!(plan.contains("FilterExec"), "{plan}");
    assert!(
        plan.contains("sql=SELECT model_id FROM models WHERE owner IN ($1, '')"),
        "{plan}"
    );
    assert!(
        !plan.contains("LIMIT $"),
        "limit pushed below a DataFusion filter:\n{plan}"
    );
}

async fn the_tenant_predicate_is_always_pushed(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    for sql in [
        "SELECT * FROM jammi.public.eval_runs",
        "SELECT count(*) FROM jammi.public.training_jobs",
        "SELECT tenant_id FROM jammi.public.result_tables WHERE tenant_id IS NULL OR tenant_id IS NOT NULL",
    ] {
        let plan = explain(&ctx, sql).await;
        assert!(plan.contains("WHERE owner IN ($1, '')"), "{sql}:\n{plan}");
        assert!(
            plan.contains(&format!("params=['{}'", tenant_a())),
            "{sql}:\n{plan}"
        );
    }
    let plan = explain(&session(&db.global()), "SELECT * FROM jammi.public.models").await;
    assert!(plan.contains("params=['']"), "{plan}");
}

async fn only_matching_rows_are_fetched(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    let cases = [
        ("SELECT * FROM jammi.public.models", 9),
        (
            "SELECT * FROM jammi.public.models WHERE model_id = 'a-embed'",
            2,
        ),
        (
            "SELECT model_id FROM jammi.public.models WHERE model_id = 'base' AND version >= 2",
            2,
        ),
        (
            "SELECT model_id FROM jammi.public.models WHERE task IN ('ner', 'regression')",
            2,
        ),
        (
            "SELECT model_id FROM jammi.public.models WHERE model_id LIKE 'a-%'",
            3,
        ),
        (
            "SELECT model_id FROM jammi.public.models WHERE tenant_id IS NULL",
            6,
        ),
        (
            "SELECT model_id FROM jammi.public.models WHERE NOT (version = 1) OR model_id = 'g-ner'",
            5,
        ),
        ("SELECT model_id FROM jammi.public.models LIMIT 4", 4),
        (
            "SELECT count(*) FROM jammi.public.models WHERE version BETWEEN 2 AND 3",
            4,
        ),
        // Not translatable: everything visible is fetched, DataFusion filters.
        (
            "SELECT model_id FROM jammi.public.models WHERE upper(model_id) = 'A-EMBED'",
            9,
        ),
    ];
    for (sql, expected) in cases {
        assert_eq!(rows_fetched(&ctx, sql).await, expected, "{sql}");
    }
}

async fn count_star_projects_no_column(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    let plan = explain(&ctx, "SELECT count(*) FROM jammi.public.models").await;
    assert!(plan.contains("sql=SELECT 1 FROM models"), "{plan}");
    assert_eq!(
        rows(&ctx, "SELECT count(*) FROM jammi.public.models").await,
        vec![vec!["9"]]
    );
}

/// Pushed filters must mean what DataFusion means: every query gives the same rows on the
/// catalog table as on an in-memory copy of its visible rows.
async fn pushed_filters_agree_with_datafusion(db: &TestDb) {
    populate(&db.catalog).await;
    let catalog = db.scoped(tenant_a());
    catalog
        .register_model(
            jammi_catalog::RegisterModel::new(
                "A-Embed",
                "MiXeD",
                "c\\d",
                jammi_catalog::ModelTask::Regression,
            )
            .artifact_path("50%_off"),
        )
        .await
        .unwrap();
    catalog
        .register_model(
            jammi_catalog::RegisterModel::new(
                "a_x",
                "it's",
                "q",
                jammi_catalog::ModelTask::Regression,
            )
            .artifact_path("50x off"),
        )
        .await
        .unwrap();
    catalog
        .register_model(jammi_catalog::RegisterModel::new(
            "trail",
            "t",
            "ends\\",
            jammi_catalog::ModelTask::Ner,
        ))
        .await
        .unwrap();
    let ctx = session(&catalog);
    rows(
        &ctx,
        "CREATE TABLE copy AS SELECT * FROM jammi.public.models",
    )
    .await;
    let predicates = [
        "model_id = 'a-embed'",
        "model_id <> 'a-embed'",
        "model_id LIKE 'a-%'",
        "model_id LIKE 'A%'",
        "model_id LIKE 'a\\_%'",
        "model_id LIKE 'a_%'",
        "artifact_path LIKE '50\\%%'",
        "artifact_path NOT LIKE '%off'",
        "backend LIKE 'c\\\\d'",
        "backend LIKE '%\\'",
        "backend NOT LIKE 'ends\\'",
        "model_type = 'it''s'",
        "version > 1",
        "version >= 2 AND version < 3",
        "version BETWEEN 1 AND 2",
        "version NOT BETWEEN 1 AND 2",
        "version IN (1, 3)",
        "version NOT IN (1, 3)",
        "task IN ('ner', 'regression')",
        "base_model_id IS NULL",
        "base_model_id IS NOT NULL",
        "base_model_id <> 'base'",
        "NOT (base_model_id = 'base')",
        "artifact_path = '/weights/base-1' OR version = 2",
        "tenant_id IS NULL",
        "tenant_id = 'aaaaaaaa-0000-4000-8000-000000000001'",
        "tenant_id <> 'aaaaaaaa-0000-4000-8000-000000000001'",
        "created_at <= updated_at",
        "created_at > TIMESTAMP '2020-01-01T00:00:00Z'",
        "updated_at < now()",
        "CAST(version AS BIGINT) = 2",
        "version = 2 AND model_id > 'b'",
    ];
    for p in predicates {
        let q = |t: &str| {
            format!(
                "SELECT model_id, version, tenant_id FROM {t} WHERE {p} ORDER BY model_id, version, tenant_id"
            )
        };
        let expected = rows(&ctx, &q("copy")).await;
        let actual = rows(&ctx, &q("jammi.public.models")).await;
        assert_eq!(actual, expected, "WHERE {p}");
    }
}

/// Postgres cannot bind text holding NUL (SQLite can): such a filter is left to DataFusion,
/// which answers it the same way over both backends.
async fn a_text_literal_holding_nul_is_not_pushed_and_matches_nothing(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    let count = |filter: &str| {
        let sql = format!("SELECT count(*) FROM jammi.public.models WHERE {filter}");
        let ctx = ctx.clone();
        async move { rows(&ctx, &sql).await[0][0].clone() }
    };
    assert_eq!(count("model_id = 'a-embed' || chr(0)").await, "0");
    assert_eq!(
        count("model_id = 'a-embed' || chr(0) AND version = 1").await,
        "0"
    );
    assert_eq!(count("model_id LIKE 'a%' || chr(0)").await, "0");
    assert_eq!(count("tenant_id = chr(0)").await, "0");
    assert_eq!(count("model_id IN ('a-embed', chr(0))").await, "2");
    // Every visible row differs from a text holding NUL.
    assert_eq!(count("model_id <> 'a-embed' || chr(0)").await, "9");
    for table in ["training_jobs", "eval_runs", "result_tables"] {
        let got = rows(
            &ctx,
            &format!("SELECT * FROM jammi.public.{table} WHERE tenant_id = 'x' || chr(0)"),
        )
        .await;
        assert!(got.is_empty(), "{table}: {got:?}");
    }

    let plan = explain(
        &ctx,
        "SELECT version FROM jammi.public.models WHERE model_id = 'a-embed' || chr(0) AND version = 1",
    )
    .await;
    assert!(plan.contains("FilterExec"), "{plan}");
    assert!(
        plan.contains(
            "sql=SELECT version, model_id FROM models WHERE owner IN ($1, '') AND (version = $2)"
        ) || plan.contains(
            "sql=SELECT model_id, version FROM models WHERE owner IN ($1, '') AND (version = $2)"
        ),
        "only the version filter is pushed:\n{plan}"
    );
}

backend_tests!(
    a_text_literal_holding_nul_is_not_pushed_and_matches_nothing,
    explain_shows_the_pushed_sql,
    untranslatable_filters_stay_in_datafusion_and_block_the_limit,
    the_tenant_predicate_is_always_pushed,
    only_matching_rows_are_fetched,
    count_star_projects_no_column,
    pushed_filters_agree_with_datafusion,
);
