//! Every table, every scope: a session sees its own rows and global rows, whatever the
//! query says.

use crate::{rows, session};
use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;
use jammi_testkit::fixture::{TENANT_A, TENANT_B, populate, tenant_a, tenant_b};

const TABLES: [&str; 4] = ["models", "training_jobs", "eval_runs", "result_tables"];

/// (owner label, rows per table) visible to each scope.
async fn every_table_shows_own_and_global_rows_only(db: &TestDb) {
    populate(&db.catalog).await;
    let cases = [
        (db.scoped(tenant_a()), Some(TENANT_A), [9, 2, 2, 2]),
        (db.scoped(tenant_b()), Some(TENANT_B), [9, 2, 2, 2]),
        (db.global(), None, [6, 1, 1, 1]),
    ];
    for (catalog, own, expected) in cases {
        let ctx = session(&catalog);
        for (table, expected) in TABLES.iter().zip(expected) {
            let owners = rows(&ctx, &format!("SELECT tenant_id FROM jammi.public.{table}")).await;
            assert_eq!(owners.len(), expected, "{table} as {own:?}");
            for owner in owners {
                assert!(
                    owner[0] == "NULL" || Some(owner[0].as_str()) == own,
                    "{table} as {own:?} returned a row of {}",
                    owner[0]
                );
            }
        }
    }
}

/// Queries that try to see more than their scope allows.
const WIDENING: &[&str] = &[
    "SELECT tenant_id FROM jammi.public.models WHERE tenant_id IS NULL OR 1 = 1",
    "SELECT tenant_id FROM jammi.public.models WHERE tenant_id <> 'aaaaaaaa-0000-4000-8000-000000000001'",
    "SELECT tenant_id FROM jammi.public.models WHERE tenant_id = 'bbbbbbbb-0000-4000-8000-000000000002' OR tenant_id = 'aaaaaaaa-0000-4000-8000-000000000001'",
    "SELECT tenant_id FROM jammi.public.models WHERE upper(tenant_id) LIKE '%' OR tenant_id IS NULL",
    "SELECT tenant_id FROM jammi.public.models WHERE model_id IN (SELECT model_id FROM jammi.public.models)",
    "SELECT tenant_id FROM jammi.public.models m WHERE EXISTS (SELECT 1 FROM jammi.public.eval_runs e WHERE e.tenant_id <> m.tenant_id)",
    "SELECT tenant_id FROM jammi.public.models UNION ALL SELECT tenant_id FROM jammi.public.training_jobs",
    "SELECT tenant_id FROM jammi.public.eval_runs UNION SELECT tenant_id FROM jammi.public.result_tables",
    "SELECT b.tenant_id FROM jammi.public.models a JOIN jammi.public.models b ON a.model_id <> b.model_id",
    "SELECT b.tenant_id FROM jammi.public.models a FULL OUTER JOIN jammi.public.training_jobs b ON a.tenant_id = b.tenant_id",
    "SELECT tenant_id FROM (SELECT tenant_id, row_number() OVER (PARTITION BY tenant_id) AS n FROM jammi.public.models)",
    "SELECT tenant_id FROM jammi.public.models GROUP BY tenant_id HAVING count(*) > 0",
    "SELECT max(tenant_id) FROM jammi.public.result_tables",
    "SELECT min(tenant_id) FROM jammi.public.training_jobs WHERE tenant_id > ''",
    "SELECT tenant_id FROM jammi.public.models WHERE tenant_id IN ('aaaaaaaa-0000-4000-8000-000000000001', 'bbbbbbbb-0000-4000-8000-000000000002') LIMIT 100",
];

async fn widening_queries_still_return_only_visible_rows(db: &TestDb) {
    populate(&db.catalog).await;
    for (catalog, own) in [
        (db.scoped(tenant_a()), Some(TENANT_A)),
        (db.scoped(tenant_b()), Some(TENANT_B)),
        (db.global(), None),
    ] {
        let ctx = session(&catalog);
        for sql in WIDENING {
            for row in rows(&ctx, sql).await {
                assert!(
                    row[0] == "NULL" || Some(row[0].as_str()) == own,
                    "as {own:?}: {sql} returned {}",
                    row[0]
                );
            }
        }
    }
}

async fn aggregates_count_only_visible_rows(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    let counts = rows(
        &ctx,
        "SELECT (SELECT count(*) FROM jammi.public.models) AS models, \
                (SELECT count(*) FROM jammi.public.training_jobs) AS jobs, \
                (SELECT count(DISTINCT tenant_id) FROM jammi.public.models) AS tenants, \
                (SELECT sum(row_count) FROM jammi.public.result_tables) AS result_rows",
    )
    .await;
    assert_eq!(counts, vec![vec!["9", "2", "1", "200"]]);
    let ctx = session(&db.global());
    assert_eq!(
        rows(&ctx, "SELECT count(*) FROM jammi.public.models").await,
        vec![vec!["6"]]
    );
}

async fn information_schema_lists_tables_and_columns_without_rows(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    let tables = rows(
        &ctx,
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'jammi' AND table_schema = 'public' ORDER BY table_name",
    )
    .await;
    assert_eq!(
        tables,
        vec![
            vec!["eval_runs"],
            vec!["events"],
            vec!["model_aliases"],
            vec!["model_tags"],
            vec!["models"],
            vec!["result_tables"],
            vec!["training_jobs"],
            vec!["webhook_deliveries"],
            vec!["webhooks"]
        ]
    );
    let columns = rows(
        &ctx,
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns \
         WHERE table_catalog = 'jammi' AND table_name = 'models' ORDER BY ordinal_position",
    )
    .await;
    let names: Vec<&str> = columns.iter().map(|c| c[0].as_str()).collect();
    assert_eq!(
        names,
        [
            "model_id",
            "version",
            "model_type",
            "task",
            "backend",
            "status",
            "base_model_id",
            "artifact_path",
            "config_json",
            "tenant_id",
            "created_at",
            "updated_at"
        ]
    );
    let text = format!("{columns:?}");
    assert!(
        !text.contains(TENANT_B),
        "information_schema leaked data: {text}"
    );
}

async fn sessions_of_different_scopes_share_one_catalog(db: &TestDb) {
    populate(&db.catalog).await;
    let (a, b) = (
        session(&db.scoped(tenant_a())),
        session(&db.scoped(tenant_b())),
    );
    let q = "SELECT model_id FROM jammi.public.models WHERE tenant_id IS NOT NULL ORDER BY model_id, version";
    let (ra, rb) = tokio::join!(rows(&a, q), rows(&b, q));
    assert_eq!(ra, vec![vec!["a-embed"], vec!["a-embed"], vec!["a-ner"]]);
    assert_eq!(rb, vec![vec!["b-embed"], vec!["b-embed"], vec!["b-ner"]]);
}

backend_tests!(
    every_table_shows_own_and_global_rows_only,
    widening_queries_still_return_only_visible_rows,
    aggregates_count_only_visible_rows,
    information_schema_lists_tables_and_columns_without_rows,
    sessions_of_different_scopes_share_one_catalog,
);
