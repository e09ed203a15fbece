//! Registry writes from SQL (SPEC §7): the functions, INSERT and DELETE.

use datafusion::prelude::SessionContext;
use jammi_catalog::{ModelTask, RegisterModel};

use crate::{explain, rows, session};
use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;
use jammi_testkit::fixture::{populate, tenant_a, tenant_b};

/// Runs `sql` expecting an error, and returns its message.
async fn error(ctx: &SessionContext, sql: &str) -> String {
    let result = match ctx.sql(sql).await {
        Ok(df) => df.collect().await.map(|_| ()),
        Err(e) => Err(e),
    };
    result.expect_err(&format!("{sql} should fail")).to_string()
}

async fn models(ctx: &SessionContext) -> Vec<Vec<String>> {
    rows(
        ctx,
        "SELECT model_id, version, artifact_path, tenant_id FROM jammi.public.models ORDER BY model_id, version, tenant_id",
    )
    .await
}

async fn register_model_runs_per_row_over_a_csv_table(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("staging.csv");
    std::fs::write(
        &csv,
        "name,task\nalpha,text_embedding\nbeta,ner\nalpha,text_embedding\n",
    )
    .unwrap();
    ctx.register_csv("staging", csv.to_str().unwrap(), Default::default())
        .await
        .unwrap();
    let versions = rows(
        &ctx,
        "SELECT name, register_model(name, NULL, 'embedding', 'candle', task) AS v FROM staging ORDER BY v, name",
    )
    .await;
    assert_eq!(
        versions,
        vec![vec!["alpha", "1"], vec!["beta", "1"], vec!["alpha", "2"]]
    );
    let stored = rows(&ctx, "SELECT model_id, version, task, tenant_id FROM jammi.public.models ORDER BY model_id, version").await;
    let a = tenant_a().to_string();
    assert_eq!(
        stored,
        vec![
            vec!["alpha", "1", "text_embedding", a.as_str()],
            vec!["alpha", "2", "text_embedding", a.as_str()],
            vec!["beta", "1", "ner", a.as_str()],
        ]
    );
}

async fn null_versions_count_up_and_explicit_ones_upsert(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    for expected in ["1", "2", "3"] {
        let v = rows(&ctx, "SELECT register_model('m', NULL, 'embedding', 'candle', 'text_embedding', NULL, NULL, NULL)").await;
        assert_eq!(v, vec![vec![expected]]);
    }
    let v = rows(&ctx, "SELECT register_model('m', 2, 'embedding', 'candle', 'ner', 'base', '/w/m2', '{\"a\": 1}')").await;
    assert_eq!(v, vec![vec!["2"]]);
    // Re-register v2 without a path: the committed path stays.
    rows(&ctx, "SELECT register_model('m', 2, 'lora', 'vllm', 'ner')").await;
    let got = rows(&ctx, "SELECT model_type, backend, artifact_path, config_json FROM jammi.public.models WHERE version = 2").await;
    assert_eq!(got, vec![vec!["lora", "vllm", "/w/m2", "NULL"]]);
    // INSERT with a NULL path keeps it too.
    rows(
        &ctx,
        "INSERT INTO jammi.public.models (model_id, version, model_type, backend, task, artifact_path) \
         VALUES ('m', 2, 'lora', 'vllm', 'ner', NULL)",
    )
    .await;
    let got = rows(
        &ctx,
        "SELECT artifact_path FROM jammi.public.models WHERE version = 2",
    )
    .await;
    assert_eq!(got, vec![vec!["/w/m2"]]);
}

async fn insert_registers_every_row_and_returns_the_count(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    let count = rows(
        &ctx,
        "INSERT INTO jammi.public.models (model_id, model_type, backend, task, artifact_path) VALUES \
         ('x', 'embedding', 'candle', 'text_embedding', '/w/x1'), \
         ('x', 'embedding', 'candle', 'text_embedding', '/w/x2'), \
         ('y', 'llm', 'vllm', 'classification', NULL)",
    )
    .await;
    assert_eq!(count, vec![vec!["3"]]);
    let a = tenant_a().to_string();
    assert_eq!(
        models(&ctx).await,
        vec![
            vec!["x", "1", "/w/x1", a.as_str()],
            vec!["x", "2", "/w/x2", a.as_str()],
            vec!["y", "1", "NULL", a.as_str()],
        ]
    );
    // INSERT … SELECT from another table.
    rows(
        &ctx,
        "CREATE TABLE src AS VALUES ('z', 'ner'), ('z', 'ner')",
    )
    .await;
    let count = rows(
        &ctx,
        "INSERT INTO jammi.public.models (model_id, model_type, backend, task) SELECT column1, 'encoder', 'http', column2 FROM src",
    )
    .await;
    assert_eq!(count, vec![vec!["2"]]);
    assert_eq!(
        rows(
            &ctx,
            "SELECT max(version) FROM jammi.public.models WHERE model_id = 'z'"
        )
        .await,
        vec![vec!["2"]]
    );
}

/// A large INSERT is written in multi-row chunks; the outcome must be the one of
/// registering its rows one by one, in order: repeated keys (within and across chunks),
/// NULL paths that keep the previous path, versionless rows allocated between them.
async fn a_large_insert_matches_registering_row_by_row(db: &TestDb) {
    const SOURCE: &str = "SELECT 'm' || CAST(value % 150 AS VARCHAR) AS name, \
           CASE WHEN value % 7 = 0 THEN NULL ELSE CAST(1 + (value / 150) % 3 AS INT) END AS version, \
           CASE WHEN value % 5 = 0 THEN NULL ELSE '/w/' || CAST(value AS VARCHAR) END AS path \
         FROM generate_series(1, 1100)";
    let ctx = session(&db.scoped(tenant_a()));
    let count = rows(
        &ctx,
        &format!(
            "INSERT INTO jammi.public.models (model_id, version, model_type, backend, task, artifact_path) \
             SELECT name, version, 'embedding', 'candle', 'ner', path FROM ({SOURCE})"
        ),
    )
    .await;
    assert_eq!(count, vec![vec!["1100"]]);

    let one_by_one = db.scoped(tenant_b());
    for row in rows(&ctx, SOURCE).await {
        let mut model = RegisterModel::new(&row[0], "embedding", "candle", ModelTask::Ner);
        if row[1] != "NULL" {
            model = model.version(row[1].parse().unwrap());
        }
        if row[2] != "NULL" {
            model = model.artifact_path(&row[2]);
        }
        one_by_one.register_model(model).await.unwrap();
    }
    let listing = "SELECT model_id, version, artifact_path FROM jammi.public.models \
                   ORDER BY model_id, version";
    let inserted = rows(&ctx, listing).await;
    // 150 names × versions 1..3 named in turn, plus the versions allocated between them.
    assert_eq!(inserted.len(), 543);
    assert_eq!(inserted, rows(&session(&one_by_one), listing).await);
}

async fn one_invalid_row_leaves_the_table_unchanged(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    let before = models(&ctx).await;
    let cases = [
        (
            "('ok', NULL, 'e', 'c', 'ner'), ('bad', NULL, 'e', 'c', 'embeddingz')",
            "row 2 (model \"bad\"): invalid task",
        ),
        (
            "('ok', NULL, 'e', 'c', 'ner'), ('a::b', NULL, 'e', 'c', 'ner')",
            "invalid model_id",
        ),
        (
            "('ok', NULL, 'e', 'c', 'ner'), ('v', 0, 'e', 'c', 'ner')",
            "invalid version",
        ),
        (
            "('ok', NULL, 'e', 'c', 'ner'), (NULL, NULL, 'e', 'c', 'ner')",
            "invalid model_id: must not be NULL",
        ),
    ];
    for (values, message) in cases {
        let sql = format!(
            "INSERT INTO jammi.public.models (model_id, version, model_type, backend, task) VALUES {values}"
        );
        let err = error(&ctx, &sql).await;
        assert!(err.contains(message), "{sql}: {err}");
        assert_eq!(models(&ctx).await, before, "{sql} wrote something");
    }
    let err = error(
        &ctx,
        "INSERT INTO jammi.public.models (model_id, model_type, backend, task, config_json) \
         SELECT 'j' || CAST(n AS VARCHAR), 'e', 'c', 'ner', CASE WHEN n = 7 THEN '{oops' ELSE '{}' END FROM unnest(range(10)) AS t(n)",
    )
    .await;
    assert!(err.contains("invalid config_json"), "{err}");
    assert_eq!(models(&ctx).await, before);
}

async fn catalog_set_columns_accept_only_null(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    for (column, value) in [
        ("tenant_id", "'bbbbbbbb-0000-4000-8000-000000000002'"),
        ("status", "'loaded'"),
        ("created_at", "now()"),
        ("updated_at", "now()"),
    ] {
        let err = error(
            &ctx,
            &format!(
                "INSERT INTO jammi.public.models (model_id, model_type, backend, task, {column}) VALUES ('m', 'e', 'c', 'ner', {value})"
            ),
        )
        .await;
        assert!(
            err.contains(&format!("invalid {column}: is set by the catalog")),
            "{err}"
        );
    }
    rows(
        &ctx,
        "INSERT INTO jammi.public.models (model_id, model_type, backend, task, tenant_id, status) VALUES ('m', 'e', 'c', 'ner', NULL, NULL)",
    )
    .await;
    assert_eq!(models(&ctx).await.len(), 1);
}

async fn references_insert_resolve_by_name_and_version(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    rows(
        &ctx,
        "INSERT INTO jammi.public.training_jobs (job_id, base_model_id, base_model_version, output_model_id, training_source, loss_type, hyperparams) \
         VALUES ('sql-job', 'base', 2, 'tuned', 's3://x', 'mse', '{\"lr\": 0.1}')",
    )
    .await;
    rows(
        &ctx,
        "INSERT INTO jammi.public.eval_runs (run_id, model_id, eval_type, metrics) VALUES ('sql-run', 'a-embed', 'retrieval', '{\"ndcg\": 0.7}')",
    )
    .await;
    rows(
        &ctx,
        "INSERT INTO jammi.public.result_tables (table_name, source_id, model_id, task, parquet_path, row_count) \
         VALUES ('sql-table', 'docs', 'a-ner', 'ner', '/out/t.parquet', 5)",
    )
    .await;
    assert_eq!(
        rows(&ctx, "SELECT base_model_id, base_model_version, status FROM jammi.public.training_jobs WHERE job_id = 'sql-job'").await,
        vec![vec!["base", "2", "queued"]]
    );
    assert_eq!(
        rows(
            &ctx,
            "SELECT model_id, model_version FROM jammi.public.eval_runs WHERE run_id = 'sql-run'"
        )
        .await,
        vec![vec!["a-embed", "2"]]
    );
    assert_eq!(
        rows(&ctx, "SELECT status, row_count FROM jammi.public.result_tables WHERE table_name = 'sql-table'").await,
        vec![vec!["building", "5"]]
    );
    let err = error(
        &ctx,
        "INSERT INTO jammi.public.eval_runs (model_id, model_version, eval_type, metrics) VALUES ('b-embed', NULL, 'r', '{}')",
    )
    .await;
    assert!(
        err.contains("model not found: b-embed"),
        "tenant B's model must not resolve: {err}"
    );
    let err = error(
        &ctx,
        "INSERT INTO jammi.public.training_jobs (base_model_id, base_model_version, output_model_id, training_source, loss_type, hyperparams) \
         VALUES ('base', 9, 'o', 's', 'l', '{}')",
    )
    .await;
    assert!(err.contains("model not found: base version 9"), "{err}");
}

async fn delete_model_refusals_name_each_edge(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    let before = models(&ctx).await;
    // The fixture: a-embed v2 is evaluated by a-run (by key) and named by a-vectors.
    let err = error(&ctx, "SELECT delete_model('a-embed')").await;
    assert!(
        err.contains("eval_runs.model_key") && err.contains("result_tables.model_id"),
        "{err}"
    );
    let err = error(
        &ctx,
        "DELETE FROM jammi.public.models WHERE model_id = 'a-embed'",
    )
    .await;
    assert!(
        err.contains("a-embed") && err.contains("result_tables.model_id"),
        "{err}"
    );
    // base is the base of a-job (by key) — a global model, refused for its owner too.
    let err = error(&session(&db.global()), "SELECT delete_model('base', 3)").await;
    assert!(err.contains("training_jobs.base_model_key"), "{err}");
    // a-tuned is the output of a-job (by name).
    rows(&ctx, "SELECT register_model('a-tuned', 1, 'e', 'c', 'ner')").await;
    let err = error(&ctx, "SELECT delete_model('a-tuned', 1)").await;
    assert!(err.contains("training_jobs.output_model_id"), "{err}");
    // DELETE is all-or-nothing: a-ner is free, a-embed is not.
    let err = error(
        &ctx,
        "DELETE FROM jammi.public.models WHERE model_id IN ('a-ner', 'a-embed')",
    )
    .await;
    assert!(err.contains("still referenced"), "{err}");
    // if_exists tolerates an absent row, not a referenced one.
    let err = error(&ctx, "SELECT delete_model('a-tuned', 1, true)").await;
    assert!(err.contains("still referenced"), "{err}");
    let mut after = models(&ctx).await;
    after.retain(|r| r[0] != "a-tuned");
    assert_eq!(after, before);
}

async fn delete_model_and_if_exists(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    rows(&ctx, "SELECT register_model('m', NULL, 'e', 'c', 'ner') AS a, register_model('m', NULL, 'e', 'c', 'ner') AS b").await;
    assert_eq!(
        rows(&ctx, "SELECT delete_model('m')").await,
        vec![vec!["true"]]
    );
    assert_eq!(
        rows(&ctx, "SELECT delete_model('m', 1, false)").await,
        vec![vec!["true"]]
    );
    assert_eq!(
        rows(&ctx, "SELECT delete_model('m', NULL, true)").await,
        vec![vec!["false"]]
    );
    let err = error(&ctx, "SELECT delete_model('m')").await;
    assert!(err.contains("model not found: m"), "{err}");
}

async fn a_tenant_cannot_delete_a_global_model(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    let before = models(&ctx).await;
    let err = error(&ctx, "SELECT delete_model('g-ner')").await;
    assert!(err.contains("model not found: g-ner"), "{err}");
    assert_eq!(
        rows(
            &ctx,
            "DELETE FROM jammi.public.models WHERE model_id = 'g-ner'"
        )
        .await,
        vec![vec!["0"]]
    );
    assert_eq!(
        rows(
            &ctx,
            "DELETE FROM jammi.public.models WHERE tenant_id IS NULL"
        )
        .await,
        vec![vec!["0"]]
    );
    assert_eq!(models(&ctx).await, before);
    // Tenant B's rows are out of reach too.
    assert_eq!(
        rows(
            &session(&db.scoped(tenant_b())),
            "SELECT count(*) FROM jammi.public.models WHERE model_id = 'b-ner'"
        )
        .await,
        vec![vec!["1"]]
    );
    assert_eq!(
        rows(
            &ctx,
            "DELETE FROM jammi.public.models WHERE model_id = 'b-ner'"
        )
        .await,
        vec![vec!["0"]]
    );
    assert_eq!(
        rows(
            &ctx,
            "DELETE FROM jammi.public.models WHERE model_id = 'a-ner'"
        )
        .await,
        vec![vec!["1"]]
    );
}

async fn delete_hazards_delete_nothing(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    let before = models(&ctx).await;
    for sql in [
        "DELETE FROM jammi.public.models",
        "DELETE FROM jammi.public.models WHERE 1 = 0",
        "DELETE FROM jammi.public.models WHERE true",
        "DELETE FROM jammi.public.models WHERE model_id IN (SELECT model_id FROM jammi.public.models WHERE model_id = 'a-ner')",
        "DELETE FROM jammi.public.models WHERE version IN (SELECT version FROM jammi.public.models WHERE model_id = 'a-ner')",
        "DELETE FROM jammi.public.models WHERE model_id = (SELECT max(model_id) FROM jammi.public.models)",
        "DELETE FROM jammi.public.models WHERE model_id = 'a-ner' LIMIT 1",
        "DELETE FROM jammi.public.models WHERE EXISTS (SELECT 1 FROM jammi.public.eval_runs)",
        "DELETE FROM jammi.public.models WHERE upper(model_id) = 'A-NER'",
        "DELETE FROM jammi.public.eval_runs",
        "DELETE FROM jammi.public.result_tables WHERE 1 = 0",
    ] {
        let err = error(&ctx, sql).await;
        assert!(
            err.contains("DELETE FROM jammi.public.") || err.contains("DELETE FROM models"),
            "{sql}: {err}"
        );
        assert_eq!(models(&ctx).await, before, "{sql}");
    }
    // EXPLAIN DELETE plans the delete but does not run it.
    let plan = explain(
        &ctx,
        "DELETE FROM jammi.public.models WHERE model_id = 'a-ner'",
    )
    .await;
    assert!(plan.contains("JammiDeleteExec"), "{plan}");
    assert_eq!(models(&ctx).await, before);
    assert_eq!(
        rows(&ctx, "SELECT count(*) FROM jammi.public.eval_runs").await,
        vec![vec!["2"]]
    );
}

async fn explain_of_register_model_writes_nothing(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    let plan = explain(
        &ctx,
        "SELECT register_model('ghost', NULL, 'e', 'c', 'ner')",
    )
    .await;
    assert!(plan.contains("AsyncFuncExec"), "{plan}");
    explain(&ctx, "INSERT INTO jammi.public.models (model_id, model_type, backend, task) VALUES ('ghost', 'e', 'c', 'ner')").await;
    // Planning without executing does not write either.
    ctx.sql("SELECT register_model('ghost', NULL, 'e', 'c', 'ner')")
        .await
        .unwrap();
    assert!(models(&ctx).await.is_empty());
}

async fn names_with_quotes_and_sql_are_stored_verbatim(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    let evil = [
        "o'brien",
        "x'); DELETE FROM models; --",
        "semi;colon",
        "\" OR 1=1 --",
        "$1",
        "naïve/模型",
    ];
    for name in evil {
        let quoted = name.replace('\'', "''");
        rows(
            &ctx,
            &format!("SELECT register_model('{quoted}', NULL, 'e', 'c', 'ner')"),
        )
        .await;
        let got = rows(
            &ctx,
            &format!("SELECT model_id FROM jammi.public.models WHERE model_id = '{quoted}'"),
        )
        .await;
        assert_eq!(got, vec![vec![name.to_owned()]]);
    }
    assert_eq!(
        rows(&ctx, "SELECT count(*) FROM jammi.public.models").await,
        vec![vec![evil.len().to_string()]]
    );
    rows(
        &ctx,
        "DELETE FROM jammi.public.models WHERE model_id = 'x''); DELETE FROM models; --'",
    )
    .await;
    assert_eq!(
        rows(&ctx, "SELECT count(*) FROM jammi.public.models").await,
        vec![vec![(evil.len() - 1).to_string()]]
    );
}

async fn delete_from_other_tables_is_strict_about_ownership(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    assert_eq!(
        rows(
            &ctx,
            "DELETE FROM jammi.public.eval_runs WHERE run_id = 'g-run'"
        )
        .await,
        vec![vec!["0"]]
    );
    assert_eq!(
        rows(
            &ctx,
            "DELETE FROM jammi.public.eval_runs WHERE run_id LIKE '%-run'"
        )
        .await,
        vec![vec!["1"]]
    );
    assert_eq!(
        rows(
            &ctx,
            "DELETE FROM jammi.public.result_tables WHERE tenant_id IS NOT NULL"
        )
        .await,
        vec![vec!["1"]]
    );
    assert_eq!(
        rows(
            &ctx,
            "DELETE FROM jammi.public.training_jobs WHERE status = 'queued'"
        )
        .await,
        vec![vec!["1"]]
    );
    let left = rows(
        &ctx,
        "SELECT (SELECT count(*) FROM jammi.public.eval_runs) AS e, (SELECT count(*) FROM jammi.public.result_tables) AS r, \
                (SELECT count(*) FROM jammi.public.training_jobs) AS j",
    )
    .await;
    assert_eq!(left, vec![vec!["1", "1", "1"]], "the global rows stay");
    // Now nothing references a-embed: it can go.
    assert_eq!(
        rows(
            &ctx,
            "DELETE FROM jammi.public.models WHERE model_id = 'a-embed'"
        )
        .await,
        vec![vec!["2"]]
    );
    // Tenant B still has everything.
    let b = rows(
        &session(&db.scoped(tenant_b())),
        "SELECT count(*) FROM jammi.public.eval_runs WHERE tenant_id IS NOT NULL",
    )
    .await;
    assert_eq!(b, vec![vec!["1"]]);
}

async fn constant_arguments_still_run_once_per_row(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    let got = rows(
        &ctx,
        "SELECT register_model('k', NULL, 'e', 'c', 'ner') AS v FROM generate_series(1, 3)",
    )
    .await;
    let mut got: Vec<i32> = got.iter().map(|r| r[0].parse().unwrap()).collect();
    got.sort();
    assert_eq!(got, vec![1, 2, 3]);
    // Sorted here, not by ORDER BY: DataFusion 55 treats a call with constant arguments as
    // a constant and drops the sort (see docs/design.md).
    let mut got = rows(
        &ctx,
        "SELECT delete_model('k', NULL, true) AS d FROM generate_series(1, 4)",
    )
    .await;
    got.sort();
    assert_eq!(
        got,
        vec![vec!["false"], vec!["true"], vec!["true"], vec!["true"]]
    );
}

async fn fractional_versions_are_refused_not_truncated(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    rows(&ctx, "SELECT register_model('f', 1, 'e', 'c', 'ner')").await;
    for sql in [
        "SELECT delete_model('f', 1.9)",
        "SELECT register_model('f', 2.5, 'e', 'c', 'ner')",
        "SELECT register_model('f', 'two', 'e', 'c', 'ner')",
    ] {
        let err = error(&ctx, sql).await;
        assert!(err.contains("invalid version"), "{sql}: {err}");
    }
    assert_eq!(models(&ctx).await.len(), 1);
}

async fn functions_where_datafusion_cannot_run_them_get_a_clear_error(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    rows(&ctx, "CREATE TABLE names AS VALUES ('p'), ('q')").await;
    for (sql, clause) in [
        (
            "SELECT column1 FROM names ORDER BY register_model(column1, NULL, 'e', 'c', 'ner')",
            "ORDER BY",
        ),
        (
            "SELECT count(*) FROM names GROUP BY register_model(column1, NULL, 'e', 'c', 'ner')",
            "GROUP BY",
        ),
        (
            "SELECT column1 FROM names ORDER BY delete_model(column1, NULL, true)",
            "ORDER BY",
        ),
    ] {
        let err = error(&ctx, sql).await;
        assert!(
            err.contains(&format!("cannot be called in {clause}")),
            "{sql}: {err}"
        );
        assert!(!err.contains("Internal error"), "{err}");
    }
    assert!(models(&ctx).await.is_empty());
    // The suggested form works.
    let got = rows(
        &ctx,
        "SELECT name, v FROM (SELECT column1 AS name, register_model(column1, NULL, 'e', 'c', 'ner') AS v FROM names) ORDER BY name DESC",
    )
    .await;
    assert_eq!(got, vec![vec!["q", "1"], vec!["p", "1"]]);
}

/// Every catalog row tenant A can see, all four tables.
async fn everything(ctx: &SessionContext) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    for sql in [
        "SELECT * FROM jammi.public.models ORDER BY model_id, version, tenant_id",
        "SELECT * FROM jammi.public.training_jobs ORDER BY job_id, tenant_id",
        "SELECT * FROM jammi.public.eval_runs ORDER BY run_id, tenant_id",
        "SELECT * FROM jammi.public.result_tables ORDER BY table_name, tenant_id",
    ] {
        all.extend(rows(ctx, sql).await);
    }
    all
}

/// NUL in any text argument of `register_model(...)` or column of `INSERT INTO` is refused
/// with the field named, nothing written, on both backends; so is a `DELETE` or
/// `delete_model` naming a row by text holding NUL.
async fn nul_in_sql_writes_is_refused_naming_the_field(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    let before = everything(&ctx).await;
    let nul = "'x' || chr(0)";

    // (SQL with one NUL argument, the field the error must name)
    let mut cases: Vec<(String, &str)> = Vec::new();
    let args = ["'m'", "1", "'e'", "'c'", "'ner'", "'base'", "'/p'", "'{}'"];
    let fields = [
        "model_id",
        "version",
        "model_type",
        "backend",
        "task",
        "base_model_id",
        "artifact_path",
        "config_json",
    ];
    for (i, field) in fields.iter().enumerate().filter(|(i, _)| *i != 1) {
        let mut with_nul = args;
        with_nul[i] = nul;
        let values = with_nul.join(", ");
        cases.push((format!("SELECT register_model({values})"), field));
        cases.push((
            format!(
                "INSERT INTO jammi.public.models ({}) VALUES ('ok', NULL, 'e', 'c', 'ner', NULL, NULL, NULL), ({values})",
                fields.join(", ")
            ),
            field,
        ));
    }
    let tables: [(&str, &[(&str, &str)]); 3] = [
        (
            "training_jobs",
            &[
                ("job_id", "'j'"),
                ("base_model_id", "'base'"),
                ("output_model_id", "'o'"),
                ("training_source", "'s'"),
                ("loss_type", "'l'"),
                ("hyperparams", "'{}'"),
            ],
        ),
        (
            "eval_runs",
            &[
                ("run_id", "'r'"),
                ("model_id", "'a-embed'"),
                ("eval_type", "'e'"),
                ("metrics", "'{}'"),
            ],
        ),
        (
            "result_tables",
            &[
                ("table_name", "'t'"),
                ("source_id", "'s'"),
                ("model_id", "'a-embed'"),
                ("task", "'ner'"),
                ("parquet_path", "'/p'"),
            ],
        ),
    ];
    for (table, columns) in tables {
        let names: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
        for (i, (field, _)) in columns.iter().enumerate() {
            let values: Vec<&str> = columns
                .iter()
                .enumerate()
                .map(|(k, (_, v))| if k == i { nul } else { *v })
                .collect();
            cases.push((
                format!(
                    "INSERT INTO jammi.public.{table} ({}) VALUES ({})",
                    names.join(", "),
                    values.join(", ")
                ),
                field,
            ));
        }
    }
    for (sql, field) in &cases {
        let err = error(&ctx, sql).await;
        assert!(err.contains(&format!("invalid {field}")), "{sql}: {err}");
        assert!(
            err.contains("NUL") || err.contains("control characters") || *field == "task",
            "{sql}: {err}"
        );
        assert!(!err.contains('\0'), "the message holds a raw NUL: {err:?}");
    }
    let err = error(&ctx, "SELECT delete_model('a-ner' || chr(0))").await;
    assert!(err.contains("invalid model_id"), "{err}");
    for table in ["models", "training_jobs"] {
        let column = if table == "models" {
            "model_id"
        } else {
            "job_id"
        };
        let err = error(
            &ctx,
            &format!("DELETE FROM jammi.public.{table} WHERE {column} = 'a-ner' || chr(0)"),
        )
        .await;
        assert!(err.contains("NUL"), "{table}: {err}");
    }
    assert_eq!(
        everything(&ctx).await,
        before,
        "a refused write changed the catalog"
    );
}

backend_tests!(
    nul_in_sql_writes_is_refused_naming_the_field,
    constant_arguments_still_run_once_per_row,
    fractional_versions_are_refused_not_truncated,
    functions_where_datafusion_cannot_run_them_get_a_clear_error,
    register_model_runs_per_row_over_a_csv_table,
    null_versions_count_up_and_explicit_ones_upsert,
    insert_registers_every_row_and_returns_the_count,
    a_large_insert_matches_registering_row_by_row,
    one_invalid_row_leaves_the_table_unchanged,
    catalog_set_columns_accept_only_null,
    references_insert_resolve_by_name_and_version,
    delete_model_refusals_name_each_edge,
    delete_model_and_if_exists,
    a_tenant_cannot_delete_a_global_model,
    delete_hazards_delete_nothing,
    explain_of_register_model_writes_nothing,
    names_with_quotes_and_sql_are_stored_verbatim,
    delete_from_other_tables_is_strict_about_ownership,
);

/// An INSERT whose input scans the catalog itself, longer than what an INSERT reads
/// before its transaction starts, on a one-connection pool: the input is read in full
/// first, so the scan does not wait for the INSERT's own connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_insert_from_the_catalog_itself_completes_on_a_memory_catalog() {
    let catalog = jammi_catalog::Catalog::open("sqlite::memory:")
        .await
        .unwrap();
    let ctx = session(&catalog.with_scope(Some(tenant_a())));
    let n = 40_000;
    let inserted = rows(
        &ctx,
        &format!(
            "INSERT INTO jammi.public.models (model_id, version, model_type, backend, task) \
             SELECT 'm-' || value, 1, 'e', 'c', 'ner' FROM generate_series(1, {n})"
        ),
    )
    .await;
    assert_eq!(inserted, vec![vec![n.to_string()]]);
    let copied = rows(
        &ctx,
        "INSERT INTO jammi.public.models (model_id, version, model_type, backend, task) \
         SELECT model_id || '-copy', version, model_type, backend, task FROM jammi.public.models",
    )
    .await;
    assert_eq!(copied, vec![vec![n.to_string()]]);
    assert_eq!(
        rows(
            &ctx,
            "SELECT count(*) FROM jammi.public.models WHERE model_id LIKE '%-copy'"
        )
        .await,
        vec![vec![n.to_string()]]
    );
}
