//! The catalog on a Ballista cluster in the test process (a scheduler and an executor on
//! loopback, two partitions), joined with Parquet files, written to, and used by two
//! tenants at once, on both backends.

use std::path::Path;
use std::sync::Arc;

use ballista_core::config::BALLISTA_STANDALONE_PARALLELISM;
use datafusion::arrow::array::{ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use jammi_catalog::Catalog;
use jammi_testkit::fixture::{populate, tenant_a, tenant_b};
use jammi_testkit::{TestDb, backend_tests};

use super::{error, local_session, model_keys, permission_denied, rows};

/// A session on a new standalone cluster of two partitions, acting for `catalog`.
async fn cluster_session(catalog: &Catalog) -> SessionContext {
    use ballista::prelude::SessionConfigExt;
    let config = SessionConfig::new_with_ballista()
        .with_target_partitions(2)
        .set_usize(BALLISTA_STANDALONE_PARALLELISM, 2);
    jammi_ballista::standalone_with(catalog, config)
        .await
        .unwrap()
}

/// Writes `columns` as a Parquet file at `path`.
pub fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn texts(values: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

/// Predictions scored per model version, for every fixture model of both tenants.
fn predictions(dir: &Path) -> String {
    let path = dir.join("predictions.parquet");
    let models = [
        "a-embed", "a-embed", "b-embed", "b-embed", "g-embed", "base",
    ];
    let versions = [1, 2, 1, 2, 1, 3];
    let scores = [0.61, 0.72, 0.55, 0.58, 0.40, 0.90];
    write_parquet(
        &path,
        vec![
            ("model_id", texts(&models)),
            ("version", Arc::new(Int32Array::from(versions.to_vec()))),
            ("score", Arc::new(Float64Array::from(scores.to_vec()))),
        ],
    );
    path.display().to_string()
}

async fn joins_with_parquet_see_one_tenant(db: &TestDb) {
    populate(&db.catalog).await;
    let dir = tempfile::tempdir().unwrap();
    let path = predictions(dir.path());
    let join = "SELECT m.model_id, m.version, p.score FROM jammi.public.models m \
                JOIN predictions p ON p.model_id = m.model_id AND p.version = m.version \
                ORDER BY m.model_id, m.version";
    let a = cluster_session(&db.scoped(tenant_a())).await;
    let b = cluster_session(&db.scoped(tenant_b())).await;
    for ctx in [&a, &b] {
        ctx.register_parquet("predictions", &path, ParquetReadOptions::default())
            .await
            .unwrap();
    }
    // Both tenants' queries at once, each on its own cluster.
    let (from_a, from_b) = tokio::join!(rows(&a, join), rows(&b, join));
    assert_eq!(
        model_keys(&from_a),
        ["a-embed/1", "a-embed/2", "base/3", "g-embed/1"]
    );
    assert_eq!(
        model_keys(&from_b),
        ["b-embed/1", "b-embed/2", "base/3", "g-embed/1"]
    );
    assert_eq!(from_a[0][2], "0.61");
    // The same rows as one DataFusion process gives.
    let local = local_session(&db.scoped(tenant_a()));
    local
        .register_parquet("predictions", &path, ParquetReadOptions::default())
        .await
        .unwrap();
    assert_eq!(rows(&local, join).await, from_a);
    // An aggregate over a catalog table.
    let per_type = "SELECT eval_type, count(*) AS runs FROM jammi.public.eval_runs \
                    GROUP BY eval_type ORDER BY eval_type";
    assert_eq!(rows(&a, per_type).await, rows(&local, per_type).await);
}

async fn writes_from_parquet_land_in_the_tenant(db: &TestDb) {
    populate(&db.catalog).await;
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs.parquet");
    write_parquet(
        &runs,
        vec![
            ("run_id", texts(&["ballista-1", "ballista-2", "ballista-3"])),
            ("model_id", texts(&["a-embed", "a-embed", "a-ner"])),
            ("eval_type", texts(&["retrieval", "retrieval", "ner"])),
            (
                "metrics",
                texts(&["{\"ndcg\": 0.7}", "{\"ndcg\": 0.8}", "{\"f1\": 0.6}"]),
            ),
        ],
    );
    let staging = dir.path().join("staging.parquet");
    write_parquet(&staging, vec![("name", texts(&["dist-one", "dist-two"]))]);
    let a = cluster_session(&db.scoped(tenant_a())).await;
    a.register_parquet(
        "runs",
        runs.to_str().unwrap(),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    a.register_parquet(
        "staging",
        staging.to_str().unwrap(),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();

    let inserted = rows(
        &a,
        "INSERT INTO jammi.public.eval_runs (run_id, model_id, eval_type, metrics) \
         SELECT run_id, model_id, eval_type, metrics FROM runs",
    )
    .await;
    assert_eq!(inserted, vec![vec!["3"]]);
    let registered = rows(
        &a,
        "SELECT name, register_model(name, NULL, 'embedding', 'candle', 'text_embedding') AS v \
         FROM staging ORDER BY name",
    )
    .await;
    assert_eq!(
        registered,
        vec![vec!["dist-one", "1"], vec!["dist-two", "1"]]
    );

    // Written in tenant A's scope only.
    let local_a = local_session(&db.scoped(tenant_a()));
    let local_b = local_session(&db.scoped(tenant_b()));
    let written = "SELECT run_id FROM jammi.public.eval_runs WHERE run_id LIKE 'ballista-%' \
                   UNION ALL SELECT model_id FROM jammi.public.models WHERE model_id LIKE 'dist-%' \
                   ORDER BY 1";
    assert_eq!(
        rows(&local_a, written).await,
        vec![
            vec!["ballista-1"],
            vec!["ballista-2"],
            vec!["ballista-3"],
            vec!["dist-one"],
            vec!["dist-two"]
        ]
    );
    assert!(rows(&local_b, written).await.is_empty());
    assert!(rows(&local_session(&db.global()), written).await.is_empty());
}

async fn refusals_hold_on_the_cluster(db: &TestDb) {
    populate(&db.catalog).await;
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging.parquet");
    write_parquet(&staging, vec![("name", texts(&["r1", "r2"]))]);
    let a = cluster_session(&db.scoped(tenant_a())).await;
    a.register_parquet(
        "staging",
        staging.to_str().unwrap(),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    // A call the statement would not make on every row it runs on (SPEC §7).
    let err = error(
        &a,
        "SELECT CASE WHEN name = 'r1' THEN register_model(name, NULL, 'embedding', 'candle', \
         'text_embedding') END FROM staging",
    )
    .await;
    assert!(err.contains("register_model() cannot be called"), "{err}");
    // DELETE stays in one process.
    let err = error(
        &a,
        "DELETE FROM jammi.public.eval_runs WHERE model_id = 'a-embed'",
    )
    .await;
    assert!(err.contains("distributed engine"), "{err}");
    // A read-only handle writes nothing through the cluster either.
    let reader =
        cluster_session(&db.scoped(tenant_a()).narrowed(jammi_catalog::Access::Read)).await;
    let err = error(
        &reader,
        "INSERT INTO jammi.public.eval_runs (run_id, model_id, eval_type, metrics) \
         VALUES ('refused', 'a-embed', 'retrieval', '{}')",
    )
    .await;
    assert!(permission_denied(&err), "{err}");
    let local = local_session(&db.scoped(tenant_a()));
    assert!(
        rows(
            &local,
            "SELECT model_id FROM jammi.public.models WHERE model_id IN ('r1', 'r2') \
             UNION ALL SELECT run_id FROM jammi.public.eval_runs WHERE run_id = 'refused'"
        )
        .await
        .is_empty()
    );
    assert_eq!(
        rows(
            &local,
            "SELECT count(*) FROM jammi.public.eval_runs WHERE model_id = 'a-embed'"
        )
        .await,
        vec![vec!["1"]]
    );
}

backend_tests!(
    joins_with_parquet_see_one_tenant,
    writes_from_parquet_land_in_the_tenant,
    refusals_hold_on_the_cluster,
);
