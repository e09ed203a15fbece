//! An integer column takes the same values through every path: `INSERT … VALUES`,
//! `INSERT … SELECT` and the functions' arguments all refuse a fraction or an out-of-range
//! number, naming the row and the field, and accept a whole number however it is typed.

use datafusion::prelude::SessionContext;

use crate::{rows, session};
use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;
use jammi_testkit::fixture::tenant_a;

async fn error(ctx: &SessionContext, sql: &str) -> String {
    let result = match ctx.sql(sql).await {
        Ok(df) => df.collect().await.map(|_| ()),
        Err(e) => Err(e),
    };
    result.expect_err(&format!("{sql} should fail")).to_string()
}

/// Every row of every catalog table the tenant can see, as text.
async fn everything(ctx: &SessionContext) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for table in ["models", "training_jobs", "eval_runs", "result_tables"] {
        out.extend(rows(ctx, &format!("SELECT * FROM jammi.public.{table}")).await);
    }
    out
}

const MODEL_COLUMNS: &str = "(model_id, version, model_type, backend, task)";

async fn fractions_and_out_of_range_numbers_are_refused_on_every_path(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    rows(&ctx, "SELECT register_model('base', 1, 'e', 'c', 'ner')").await;
    rows(
        &ctx,
        "CREATE TABLE staging AS SELECT * FROM (VALUES ('s-ok', 1.0, 3), ('s-frac', 2.5, 4)) AS t(name, v, rc)",
    )
    .await;
    let before = everything(&ctx).await;
    // (statement, the row and field the error must name, what it must say)
    let cases = [
        (
            format!("INSERT INTO jammi.public.models {MODEL_COLUMNS} VALUES ('frac', 2.5, 'e', 'c', 'ner')"),
            "row 1",
            "invalid version: must be a whole number, got 2.5",
        ),
        (
            format!("INSERT INTO jammi.public.models {MODEL_COLUMNS} VALUES ('ok', 1, 'e', 'c', 'ner'), ('frac', 2.5, 'e', 'c', 'ner')"),
            "row 2",
            "invalid version: must be a whole number, got 2.5",
        ),
        (
            format!("INSERT INTO jammi.public.models {MODEL_COLUMNS} VALUES ('big', 3000000000, 'e', 'c', 'ner')"),
            "row 1",
            "invalid version: 3000000000 is out of range",
        ),
        (
            format!("INSERT INTO jammi.public.models {MODEL_COLUMNS} VALUES ('neg', -1, 'e', 'c', 'ner')"),
            "row 1",
            "invalid version",
        ),
        (
            format!("INSERT INTO jammi.public.models {MODEL_COLUMNS} SELECT name, v, 'e', 'c', 'ner' FROM staging ORDER BY name"),
            "row 1",
            "invalid version: must be a whole number, got 2.5",
        ),
        (
            "INSERT INTO jammi.public.result_tables (table_name, source_id, model_id, task, parquet_path, row_count) \
             VALUES ('t', 'src', 'base', 'ner', '/p', 10.5)"
                .to_owned(),
            "row 1",
            "invalid row_count: must be a whole number, got 10.5",
        ),
        (
            "INSERT INTO jammi.public.result_tables (table_name, source_id, model_id, task, parquet_path, row_count) \
             VALUES ('t', 'src', 'base', 'ner', '/p', 1e300)"
                .to_owned(),
            "row 1",
            "invalid row_count",
        ),
        (
            "INSERT INTO jammi.public.eval_runs (run_id, model_id, model_version, eval_type, metrics) \
             VALUES ('r', 'base', 1.5, 'retrieval', '{}')"
                .to_owned(),
            "row 1",
            "invalid model_version: must be a whole number, got 1.5",
        ),
        (
            "INSERT INTO jammi.public.training_jobs (job_id, base_model_id, base_model_version, output_model_id, training_source, loss_type) \
             VALUES ('j', 'base', 1.25, 'out', 's3://d', 'mse')"
                .to_owned(),
            "row 1",
            "invalid base_model_version: must be a whole number, got 1.25",
        ),
        (
            "SELECT register_model('frac', 2.5, 'e', 'c', 'ner')".to_owned(),
            "row 1",
            "invalid version: must be a whole number, got 2.5",
        ),
        (
            "SELECT register_model(name, v, 'e', 'c', 'ner') FROM staging WHERE name = 's-frac'"
                .to_owned(),
            "row 1",
            "invalid version: must be a whole number, got 2.5",
        ),
        (
            "SELECT register_model('big', 3000000000, 'e', 'c', 'ner')".to_owned(),
            "row 1",
            "invalid version: 3000000000 is out of range",
        ),
        (
            "SELECT delete_model('base', 1.5)".to_owned(),
            "row 1",
            "invalid version: must be a whole number, got 1.5",
        ),
    ];
    for (sql, row, says) in cases {
        let err = error(&ctx, &sql).await;
        assert!(err.contains(row) && err.contains(says), "{sql}: {err}");
        assert_eq!(everything(&ctx).await, before, "{sql} wrote something");
    }
}

async fn whole_numbers_are_accepted_however_typed(db: &TestDb) {
    let ctx = session(&db.scoped(tenant_a()));
    for value in ["2.0", "'3'"] {
        rows(
            &ctx,
            &format!("INSERT INTO jammi.public.models {MODEL_COLUMNS} VALUES ('w', {value}, 'e', 'c', 'ner')"),
        )
        .await;
    }
    assert_eq!(
        rows(&ctx, "SELECT register_model('w', 4.0, 'e', 'c', 'ner')").await,
        vec![vec!["4"]]
    );
    assert_eq!(
        rows(
            &ctx,
            "SELECT register_model('w', CAST(5 AS TINYINT), 'e', 'c', 'ner')"
        )
        .await,
        vec![vec!["5"]]
    );
    assert_eq!(
        rows(
            &ctx,
            "SELECT version FROM jammi.public.models WHERE model_id = 'w' ORDER BY version"
        )
        .await,
        vec![vec!["2"], vec!["3"], vec!["4"], vec!["5"]]
    );
}

backend_tests!(
    fractions_and_out_of_range_numbers_are_refused_on_every_path,
    whole_numbers_are_accepted_however_typed,
);
