//! A randomized tenant-isolation oracle (SPEC §10): generated queries over many tenants,
//! each checked to return only rows its session may see, and generated writes checked to
//! stay in their scope. Fixed seed in CI; set `JAMMI_ORACLE_SEED` / `JAMMI_ORACLE_QUERIES`
//! for larger runs.

use jammi_catalog::{
    Catalog, ModelTask, NewEvalRun, NewResultTable, NewTrainingJob, RegisterModel,
    ResultTableStatus, TenantId,
};

use crate::{rows, session};
use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;
use jammi_testkit::rng::Rng;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const TABLES: [&str; 4] = ["models", "training_jobs", "eval_runs", "result_tables"];

async fn populate(catalog: &Catalog, tenants: &[TenantId]) {
    let scopes: Vec<Option<TenantId>> = std::iter::once(None)
        .chain(tenants.iter().copied().map(Some))
        .collect();
    for (i, scope) in scopes.iter().enumerate() {
        let c = catalog.with_scope(*scope);
        for name in ["shared", &format!("own-{i}")] {
            c.register_model(RegisterModel::new(
                name,
                "embedding",
                "candle",
                ModelTask::TextEmbedding,
            ))
            .await
            .unwrap();
        }
        c.create_training_job(NewTrainingJob::new("shared", "tuned", "s", "l", "{}"))
            .await
            .unwrap();
        c.create_eval_run(NewEvalRun::new("shared", "r", "{}"))
            .await
            .unwrap();
        c.create_result_table(NewResultTable {
            table_name: "shared-table".into(),
            source_id: "s".into(),
            model_id: "shared".into(),
            task: ModelTask::Ner,
            parquet_path: "/p".into(),
            row_count: Some(i as i64),
            status: ResultTableStatus::Ready,
        })
        .await
        .unwrap();
    }
}

/// A predicate on `alias` that may try to reach other tenants.
fn predicate(rng: &mut Rng, alias: &str, tenants: &[TenantId]) -> String {
    let other = rng.pick(tenants).to_string();
    let atoms = [
        format!("{alias}.tenant_id = '{other}'"),
        format!("{alias}.tenant_id <> '{other}'"),
        format!("{alias}.tenant_id IS NULL"),
        format!("{alias}.tenant_id IS NOT NULL"),
        format!("{alias}.tenant_id IN ('{other}', '{}')", rng.pick(tenants)),
        format!("{alias}.tenant_id LIKE '%'"),
        format!("upper({alias}.tenant_id) <> ''"),
        "1 = 1".to_owned(),
        format!("coalesce({alias}.tenant_id, '') >= ''"),
    ];
    let a = rng.pick(&atoms).clone();
    let b = rng.pick(&atoms).clone();
    match rng.next_u64() % 4 {
        0 => a,
        1 => format!("({a}) OR ({b})"),
        2 => format!("NOT ({a}) OR ({b})"),
        _ => format!("({a}) AND NOT ({b})"),
    }
}

/// A query whose first output column is a `tenant_id` of some catalog row.
fn query(rng: &mut Rng, tenants: &[TenantId]) -> String {
    let t1 = *rng.pick(&TABLES);
    let t2 = *rng.pick(&TABLES);
    let p1 = predicate(rng, "a", tenants);
    let p2 = predicate(rng, "b", tenants);
    match rng.next_u64() % 8 {
        0 => format!("SELECT a.tenant_id FROM jammi.public.{t1} a WHERE {p1}"),
        1 => format!(
            "SELECT b.tenant_id FROM jammi.public.{t1} a JOIN jammi.public.{t2} b ON (a.tenant_id IS NOT DISTINCT FROM b.tenant_id) OR ({p2})"
        ),
        2 => format!(
            "SELECT a.tenant_id FROM jammi.public.{t1} a WHERE {p1} UNION ALL SELECT b.tenant_id FROM jammi.public.{t2} b WHERE {p2}"
        ),
        3 => format!(
            "SELECT a.tenant_id FROM jammi.public.{t1} a WHERE a.tenant_id IN (SELECT b.tenant_id FROM jammi.public.{t2} b WHERE {p2}) OR {p1}"
        ),
        4 => format!(
            "SELECT a.tenant_id, count(*) FROM jammi.public.{t1} a WHERE {p1} GROUP BY a.tenant_id"
        ),
        5 => format!(
            "SELECT a.tenant_id FROM (SELECT tenant_id, row_number() OVER (PARTITION BY tenant_id ORDER BY created_at) AS n FROM jammi.public.{t1}) a WHERE n >= 1 AND ({p1})"
        ),
        6 => format!(
            "SELECT a.tenant_id FROM jammi.public.{t1} a WHERE EXISTS (SELECT 1 FROM jammi.public.{t2} b WHERE {p2}) LIMIT 50"
        ),
        _ => format!(
            "SELECT max(a.tenant_id) FROM jammi.public.{t1} a FULL OUTER JOIN jammi.public.{t2} b ON a.created_at = b.created_at WHERE {p1}"
        ),
    }
}

async fn random_queries_never_return_another_tenants_row(db: &TestDb) {
    let tenants: Vec<TenantId> = (0..6).map(|_| TenantId::random()).collect();
    populate(&db.catalog, &tenants).await;
    let seed = env_number("JAMMI_ORACLE_SEED", 20261128);
    let count = env_number("JAMMI_ORACLE_QUERIES", 120);
    let mut rng = Rng(seed);
    let sessions: Vec<(Option<TenantId>, _)> = std::iter::once(None)
        .chain(tenants.iter().copied().map(Some))
        .map(|scope| (scope, session(&db.catalog.with_scope(scope))))
        .collect();
    for i in 0..count {
        let (scope, ctx) = rng.pick(&sessions);
        let sql = query(&mut rng, &tenants);
        let own = scope.map(|t| t.to_string());
        for row in rows(ctx, &sql).await {
            assert!(
                row[0] == "NULL" || Some(&row[0]) == own.as_ref(),
                "seed {seed}, query {i}, as {own:?}: {sql}\nreturned a row of {}",
                row[0]
            );
        }
    }
}

async fn random_writes_stay_in_their_scope(db: &TestDb) {
    let tenants: Vec<TenantId> = (0..4).map(|_| TenantId::random()).collect();
    populate(&db.catalog, &tenants).await;
    let mut rng = Rng(env_number("JAMMI_ORACLE_SEED", 20261128));
    let scopes: Vec<Option<TenantId>> = std::iter::once(None)
        .chain(tenants.iter().copied().map(Some))
        .collect();
    let snapshot = |scope: Option<TenantId>| {
        let ctx = session(&db.catalog.with_scope(scope));
        async move {
            rows(&ctx, "SELECT model_id, version, tenant_id FROM jammi.public.models WHERE tenant_id IS NOT NULL ORDER BY 1, 2").await
        }
    };
    for i in 0..40 {
        let scope = *rng.pick(&scopes);
        let before: Vec<_> =
            futures::future::join_all(scopes.iter().filter(|s| **s != scope).map(|s| snapshot(*s)))
                .await;
        let ctx = session(&db.catalog.with_scope(scope));
        let name = rng.pick(&["shared", "own-1", "fresh"]);
        let statement = match rng.next_u64() % 4 {
            0 => format!("SELECT register_model('{name}', NULL, 'e', 'c', 'ner')"),
            1 => format!(
                "INSERT INTO jammi.public.models (model_id, model_type, backend, task) VALUES ('{name}', 'e', 'c', 'ner')"
            ),
            2 => format!("SELECT delete_model('{name}', NULL, true)"),
            _ => format!(
                "DELETE FROM jammi.public.models WHERE model_id = '{name}' OR tenant_id IS NULL OR tenant_id IS NOT NULL"
            ),
        };
        // Refusals (a referenced model) are fine; what matters is where writes land.
        if let Ok(df) = ctx.sql(&statement).await {
            let _ = df.collect().await;
        }
        let after: Vec<_> =
            futures::future::join_all(scopes.iter().filter(|s| **s != scope).map(|s| snapshot(*s)))
                .await;
        assert_eq!(
            before, after,
            "write {i} as {scope:?} changed another scope: {statement}"
        );
    }
}

/// Random arguments to the SQL functions: a value, a typed error, never a panic.
async fn random_function_arguments_never_panic(db: &TestDb) {
    let ctx = session(&db.catalog.with_scope(Some(TenantId::random())));
    let mut rng = Rng(env_number("JAMMI_ORACLE_SEED", 20261128));
    let arg = |rng: &mut Rng| -> String {
        match rng.next_u64() % 6 {
            0 => "NULL".to_owned(),
            1 => format!("{}", rng.next_u64() as i64 % 100),
            2 => format!("{}.5", rng.next_u64() % 10),
            3 => "true".to_owned(),
            4 => format!(
                "'{}'",
                *rng.pick(&["text_embedding", "ner", "m", "e", "c", "{}"])
            ),
            _ => format!("'{}'", rng.sql_string(10).replace('\'', "''")),
        }
    };
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..150 {
        let sql = if rng.next_u64().is_multiple_of(3) {
            let n = 1 + rng.next_u64() % 3;
            let args: Vec<String> = (0..n).map(|_| arg(&mut rng)).collect();
            format!("SELECT delete_model({}) AS r", args.join(", "))
        } else {
            let n = 4 + rng.next_u64() % 6;
            let args: Vec<String> = (0..n).map(|_| arg(&mut rng)).collect();
            format!(
                "SELECT register_model({}) AS r FROM generate_series(1, 2)",
                args.join(", ")
            )
        };
        let result = match ctx.sql(&sql).await {
            Ok(df) => df.collect().await.map(|_| ()),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => ok += 1,
            Err(e) => {
                let text = e.to_string();
                assert!(
                    !text.contains("panick") && !text.contains("Internal error"),
                    "{sql}: {text}"
                );
                refused += 1;
            }
        }
    }
    assert!(ok > 0 && refused > 0, "ok {ok}, refused {refused}");
}

backend_tests!(
    random_queries_never_return_another_tenants_row,
    random_writes_stay_in_their_scope,
    random_function_arguments_never_panic,
);
