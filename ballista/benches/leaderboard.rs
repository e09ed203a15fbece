//! The quickstart's leaderboard (eval runs joined with models), joined with a tenant's
//! 10 M requests from a Parquet file: Ballista standalone (a scheduler and an executor in
//! this process, as many task slots as the machine has cores) against one DataFusion
//! process with as many partitions, on one SQLite catalog (SPEC §17).
//!
//! `cargo bench --bench leaderboard`; the machine's core count is printed and recorded in
//! `target/criterion/ballista_leaderboard/machine.json` for the results table.

use std::path::Path;
use std::sync::Arc;

use ballista::prelude::SessionConfigExt;
use ballista_core::config::BALLISTA_STANDALONE_PARALLELISM;
use criterion::{Criterion, criterion_group, criterion_main};
use datafusion::arrow::array::{Float64Array, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use jammi_catalog::{Catalog, ModelTask, NewEvalRun, RegisterModel, TenantId, register_catalog};

/// Rows of the requests file.
const REQUESTS: usize = 10_000_000;
/// Models of the tenant, two versions each.
const MODELS: usize = 50;

const LEADERBOARD: &str = r#"
SELECT m.model_id, m.version,
       CAST(regexp_match(e.metrics, '"ndcg":\s*([0-9.]+)')[1] AS DOUBLE) AS ndcg,
       count(*) AS requests, avg(r.latency_ms) AS latency_ms
FROM jammi.public.eval_runs e
JOIN jammi.public.models m ON m.model_id = e.model_id AND m.version = e.model_version
JOIN requests r ON r.model_id = m.model_id AND r.version = m.version
GROUP BY m.model_id, m.version, e.metrics
ORDER BY ndcg DESC, m.model_id, m.version"#;

/// The tenant's models (two versions each) and one eval run per version.
async fn populate(catalog: &Catalog) {
    for i in 0..MODELS {
        let name = format!("model-{i:02}");
        for version in 1..=2 {
            catalog
                .register_model(
                    RegisterModel::new(&name, "embedding", "candle", ModelTask::TextEmbedding)
                        .version(version),
                )
                .await
                .unwrap();
            let ndcg = 0.5 + (i as f64 * 7.0 + f64::from(version)) % 40.0 / 100.0;
            let mut run = NewEvalRun::new(&name, "retrieval", format!(r#"{{"ndcg": {ndcg:.3}}}"#));
            run.model_version = Some(version);
            catalog.create_eval_run(run).await.unwrap();
        }
    }
}

/// 10 M requests (model, version, latency) as one Parquet file.
fn write_requests(path: &Path) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("model_id", DataType::Utf8, false),
        Field::new("version", DataType::Int32, false),
        Field::new("latency_ms", DataType::Float64, false),
    ]));
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), None).unwrap();
    let names: Vec<String> = (0..MODELS).map(|i| format!("model-{i:02}")).collect();
    const BATCH: usize = 1_000_000;
    for start in (0..REQUESTS).step_by(BATCH) {
        let rows = start..(start + BATCH).min(REQUESTS);
        let model = StringArray::from_iter_values(rows.clone().map(|i| &names[i * 31 % MODELS]));
        let version = Int32Array::from_iter_values(rows.clone().map(|i| (i % 3).min(1) as i32 + 1));
        let latency = Float64Array::from_iter_values(rows.map(|i| (i * 17 % 1000) as f64 / 10.0));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(model), Arc::new(version), Arc::new(latency)],
        )
        .unwrap();
        writer.write(&batch).unwrap();
    }
    writer.close().unwrap();
}

async fn collect(ctx: &SessionContext) -> usize {
    let batches = ctx.sql(LEADERBOARD).await.unwrap().collect().await.unwrap();
    batches.iter().map(RecordBatch::num_rows).sum()
}

fn leaderboard(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("machine: {cores} cores; {REQUESTS} requests, {MODELS} models x 2 versions");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let requests = dir.path().join("requests.parquet");
    write_requests(&requests);
    let requests = requests.to_str().unwrap().to_owned();
    let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
    let tenant = TenantId::random();
    let (local, distributed) = runtime.block_on(async {
        let catalog = Catalog::open(&url).await.unwrap().with_scope(Some(tenant));
        populate(&catalog).await;

        let local =
            SessionContext::new_with_config(SessionConfig::new().with_target_partitions(cores));
        register_catalog(&local, &catalog);
        let config = SessionConfig::new_with_ballista()
            .with_target_partitions(cores)
            .set_usize(BALLISTA_STANDALONE_PARALLELISM, cores);
        let distributed = jammi_ballista::standalone_with(&catalog, config)
            .await
            .unwrap();
        for ctx in [&local, &distributed] {
            ctx.register_parquet("requests", &requests, ParquetReadOptions::default())
                .await
                .unwrap();
        }
        // Both answer the same leaderboard: one row per model version.
        assert_eq!(collect(&local).await, MODELS * 2);
        assert_eq!(collect(&distributed).await, MODELS * 2);
        (local, distributed)
    });

    let mut group = c.benchmark_group("ballista_leaderboard");
    group.sample_size(10);
    group.bench_function("datafusion_one_process", |b| {
        b.to_async(&runtime).iter(|| collect(&local));
    });
    group.bench_function("ballista_standalone", |b| {
        b.to_async(&runtime).iter(|| collect(&distributed));
    });
    group.finish();

    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion/ballista_leaderboard");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("machine.json"),
        format!(
            r#"{{"cores": {cores}, "requests": {REQUESTS}, "model_versions": {}}}"#,
            MODELS * 2
        ),
    )
    .unwrap();
}

criterion_group!(benches, leaderboard);
criterion_main!(benches);
