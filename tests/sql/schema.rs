//! Columns and Arrow types as SPEC §3/§6 give them.

use datafusion::arrow::datatypes::{DataType, TimeUnit};

use crate::{rows, session};
use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;
use jammi_testkit::fixture::{populate, tenant_a};

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

async fn column_types_are_as_specified(db: &TestDb) {
    use DataType::{Int32, Int64, Utf8};
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    let expected: [(&str, Vec<(&str, DataType)>); 4] = [
        (
            "models",
            vec![
                ("model_id", Utf8),
                ("version", Int32),
                ("model_type", Utf8),
                ("task", Utf8),
                ("backend", Utf8),
                ("status", Utf8),
                ("base_model_id", Utf8),
                ("artifact_path", Utf8),
                ("config_json", Utf8),
                ("tenant_id", Utf8),
                ("created_at", ts()),
                ("updated_at", ts()),
            ],
        ),
        (
            "training_jobs",
            vec![
                ("job_id", Utf8),
                ("base_model_id", Utf8),
                ("base_model_version", Int32),
                ("output_model_id", Utf8),
                ("output_version", Int32),
                ("training_source", Utf8),
                ("loss_type", Utf8),
                ("hyperparams", Utf8),
                ("status", Utf8),
                ("metrics", Utf8),
                ("error", Utf8),
                ("claimed_by", Utf8),
                ("lease_expires_at", ts()),
                ("attempts", Int64),
                ("tenant_id", Utf8),
                ("created_at", ts()),
                ("updated_at", ts()),
            ],
        ),
        (
            "eval_runs",
            vec![
                ("run_id", Utf8),
                ("model_id", Utf8),
                ("model_version", Int32),
                ("eval_type", Utf8),
                ("metrics", Utf8),
                ("tenant_id", Utf8),
                ("created_at", ts()),
            ],
        ),
        (
            "result_tables",
            vec![
                ("table_name", Utf8),
                ("source_id", Utf8),
                ("model_id", Utf8),
                ("task", Utf8),
                ("parquet_path", Utf8),
                ("row_count", Int64),
                ("status", Utf8),
                ("tenant_id", Utf8),
                ("created_at", ts()),
            ],
        ),
    ];
    for (table, columns) in expected {
        let df = ctx
            .sql(&format!("SELECT * FROM jammi.public.{table}"))
            .await
            .unwrap();
        let actual: Vec<(String, DataType)> = df
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        let expected: Vec<(String, DataType)> = columns
            .into_iter()
            .map(|(n, t)| (n.to_owned(), t))
            .collect();
        assert_eq!(actual, expected, "{table}");
        // The batches carry the same types (a scan that built other arrays would fail here).
        let batches = df.collect().await.unwrap();
        assert!(
            batches
                .iter()
                .all(|b| b.schema().fields().len() == expected.len())
        );
        assert!(
            batches.iter().map(|b| b.num_rows()).sum::<usize>() > 0,
            "{table} is empty"
        );
    }
}

async fn values_round_trip_into_arrow(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = session(&db.scoped(tenant_a()));
    let got = rows(
        &ctx,
        "SELECT model_id, version, task, status, base_model_id, artifact_path, config_json, tenant_id, \
                created_at <= now() AND created_at > TIMESTAMP '2020-01-01T00:00:00Z' \
         FROM jammi.public.models WHERE model_id = 'a-embed' ORDER BY version",
    )
    .await;
    assert_eq!(
        got,
        vec![
            vec![
                "a-embed",
                "1",
                "text_embedding",
                "registered",
                "base",
                "NULL",
                r#"{"dim": 384}"#,
                jammi_testkit::fixture::TENANT_A,
                "true"
            ],
            vec![
                "a-embed",
                "2",
                "text_embedding",
                "registered",
                "base",
                "NULL",
                r#"{"dim": 384}"#,
                jammi_testkit::fixture::TENANT_A,
                "true"
            ],
        ]
    );
    let jobs = rows(
        &ctx,
        "SELECT job_id, base_model_id, base_model_version, status, attempts, lease_expires_at \
         FROM jammi.public.training_jobs WHERE tenant_id IS NOT NULL",
    )
    .await;
    assert_eq!(
        jobs,
        vec![vec!["a-job", "base", "3", "queued", "0", "NULL"]]
    );
}

backend_tests!(column_types_are_as_specified, values_round_trip_into_arrow);
