//! The `jammi-scheduler` and `jammi-executor` commands as a user runs them (two processes
//! on loopback, serving the test's database), and clients of two tenants joining the
//! catalog with Parquet through them at once: the codecs and the pools work across
//! processes, and one scheduler and executor serve both tenants without mixing them.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{ArrayRef, Int32Array, StringArray};
use datafusion::prelude::ParquetReadOptions;
use jammi_testkit::fixture::{populate, tenant_a, tenant_b};
use jammi_testkit::{TestDb, backend_tests};

use super::{model_keys, rows};

/// A process that is killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(program: &str, args: &[String]) -> Process {
    Process(
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e}")),
    )
}

async fn a_cluster_of_processes_serves_two_tenants(db: &TestDb) {
    populate(&db.catalog).await;
    let work = tempfile::tempdir().unwrap();
    let scheduler_port = free_port();
    let _scheduler = start(
        env!("CARGO_BIN_EXE_jammi-scheduler"),
        &[
            "--bind-host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            scheduler_port.to_string(),
            "--catalog-url".into(),
            db.url.clone(),
        ],
    );
    let _executor = start(
        env!("CARGO_BIN_EXE_jammi-executor"),
        &[
            "--scheduler-host".into(),
            "localhost".into(),
            "--scheduler-port".into(),
            scheduler_port.to_string(),
            "--bind-host".into(),
            "127.0.0.1".into(),
            "--external-host".into(),
            "localhost".into(),
            "--port".into(),
            free_port().to_string(),
            "--grpc-port".into(),
            free_port().to_string(),
            "--concurrent-tasks".into(),
            "2".into(),
            "--work-dir".into(),
            work.path().display().to_string(),
            "--catalog-url".into(),
            db.url.clone(),
        ],
    );
    let path = work.path().join("versions.parquet");
    super::standalone::write_parquet(
        &path,
        vec![
            (
                "model_id",
                Arc::new(StringArray::from(vec!["a-embed", "b-embed", "base"])) as ArrayRef,
            ),
            (
                "version",
                Arc::new(Int32Array::from(vec![2, 2, 1])) as ArrayRef,
            ),
        ],
    );
    let url = format!("df://localhost:{scheduler_port}");
    // The scheduler takes a moment to listen, and the executor to register: a query
    // answers once both have.
    let ctx = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(ctx) = jammi_ballista::remote(&url, &db.scoped(tenant_a())).await
                && let Ok(df) = ctx.sql("SELECT 1").await
                && df.collect().await.is_ok()
            {
                return ctx;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the scheduler answers within 60 s");
    ctx.register_parquet(
        "versions",
        path.to_str().unwrap(),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    let join = "SELECT m.model_id, m.version FROM jammi.public.models m \
                JOIN versions v ON v.model_id = m.model_id AND v.version = m.version \
                ORDER BY m.model_id";
    let b = jammi_ballista::remote(&url, &db.scoped(tenant_b()))
        .await
        .unwrap();
    b.register_parquet(
        "versions",
        path.to_str().unwrap(),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    let (joined, joined_b) = tokio::time::timeout(Duration::from_secs(120), async {
        tokio::join!(rows(&ctx, join), rows(&b, join))
    })
    .await
    .expect("the cluster answers within 120 s");
    assert_eq!(model_keys(&joined), ["a-embed/2", "base/1"]);
    assert_eq!(model_keys(&joined_b), ["b-embed/2", "base/1"]);
    let inserted = tokio::time::timeout(
        Duration::from_secs(120),
        rows(
            &ctx,
            "INSERT INTO jammi.public.eval_runs (run_id, model_id, eval_type, metrics) \
             VALUES ('remote-1', 'a-embed', 'retrieval', '{}')",
        ),
    )
    .await
    .expect("the cluster answers within 120 s");
    assert_eq!(inserted, vec![vec!["1"]]);
    let local = super::local_session(&db.scoped(tenant_a()));
    assert_eq!(
        rows(
            &local,
            "SELECT model_version FROM jammi.public.eval_runs WHERE run_id = 'remote-1'"
        )
        .await,
        vec![vec!["2"]]
    );
}

backend_tests!(a_cluster_of_processes_serves_two_tenants);
