//! Faults: a database that goes away, read-only and corrupt SQLite files.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jammi_catalog::{Catalog, CatalogError, ModelTask, RegisterModel};
use tokio::io::copy_bidirectional;
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinHandle};

fn model(name: &str) -> RegisterModel {
    RegisterModel::new(name, "embedding", "candle", ModelTask::TextEmbedding)
}

#[tokio::test]
async fn a_corrupt_sqlite_file_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.db");
    std::fs::write(
        &path,
        b"this is not a database, just sixty-four bytes of text padding..",
    )
    .unwrap();
    let err = Catalog::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("not a database"), "{text}");
}

#[tokio::test]
async fn a_read_only_sqlite_catalog_refuses_writes_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let url = format!("sqlite://{}", path.display());
    let writable = Catalog::open(&url).await.unwrap();
    writable.register_model(model("kept")).await.unwrap();
    writable.store().close().await;

    let read_only = Catalog::open(&format!("{url}?mode=ro"))
        .await
        .expect("a migrated file opens read-only");
    assert_eq!(read_only.list_models().await.unwrap().len(), 1);
    let err = read_only.register_model(model("new")).await.unwrap_err();
    assert!(err.to_string().contains("readonly database"), "{err}");
    assert_eq!(read_only.list_models().await.unwrap().len(), 1);
}

/// A TCP proxy to the Postgres server that the test can cut and restore.
struct Proxy {
    port: u16,
    accept: JoinHandle<()>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(port: u16, upstream: String) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let tracked = Arc::clone(&connections);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let forward = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tracked.lock().unwrap().push(forward.abort_handle());
            }
        });
        Proxy {
            port,
            accept,
            connections,
        }
    }

    /// Closes the listener and every forwarded connection, as if the server went away.
    fn cut(self) -> u16 {
        self.accept.abort();
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
        self.port
    }
}

#[tokio::test]
async fn postgres_going_away_is_unavailable_and_the_catalog_recovers() {
    let Some(db) = jammi_testkit::TestDb::postgres().await else {
        return;
    };
    // Route the same schema through the proxy: postgres://user@127.0.0.1:PORT/db?...
    let url = db.url.clone();
    let (scheme_user, rest) = url.split_once('@').unwrap();
    let (host_port, path) = rest.split_once('/').unwrap();
    let proxy = Proxy::start(0, host_port.to_owned()).await;
    let proxied = format!("{scheme_user}@127.0.0.1:{}/{path}", proxy.port);
    let catalog = Catalog::open(&proxied).await.unwrap();
    catalog.register_model(model("before")).await.unwrap();

    let port = proxy.cut();
    // Existing pooled connections still point at the dead proxy; new ones are refused.
    let mut saw_unavailable = false;
    for _ in 0..20 {
        match tokio::time::timeout(Duration::from_secs(15), catalog.list_models()).await {
            Ok(Err(CatalogError::Unavailable(_))) => {
                saw_unavailable = true;
                break;
            }
            Ok(Err(other)) => panic!("expected unavailable, got {other}"),
            Ok(Ok(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(_) => panic!("a call hung instead of failing"),
        }
    }
    assert!(
        saw_unavailable,
        "the catalog never noticed the database was gone"
    );

    let proxy = Proxy::start(port, host_port.to_owned()).await;
    let mut recovered = false;
    for _ in 0..50 {
        if catalog.register_model(model("after")).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "the catalog did not recover when the database came back"
    );
    let names: Vec<String> = catalog
        .list_models()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.model_id)
        .collect();
    assert!(names.contains(&"before".to_owned()) && names.contains(&"after".to_owned()));
    proxy.cut();
    catalog.store().close().await;
    db.cleanup().await;
}

/// A reference committed by another client between `delete_model`'s reference scan and its
/// delete: Postgres reports a conflict, the store retries, and the retry sees the
/// reference. With no retries allowed the caller gets *retry exhausted*, typed.
#[tokio::test]
async fn a_reference_committed_during_a_delete_is_retried_into_referenced() {
    use sqlx::Connection;
    let Some(db) = jammi_testkit::TestDb::postgres().await else {
        return;
    };
    for max_attempts in [12, 1] {
        let tenant = jammi_catalog::TenantId::random();
        let store = jammi_catalog::Store::connect(&db.url)
            .await
            .unwrap()
            .with_retry_policy(jammi_catalog::RetryPolicy {
                max_attempts,
                ..Default::default()
            });
        let catalog = Catalog::new(store, Some(tenant));
        catalog.register_model(model("m").version(1)).await.unwrap();

        // Another client: reads the model and inserts an eval run referencing it, and
        // keeps its transaction open.
        let mut other = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql("BEGIN ISOLATION LEVEL SERIALIZABLE")
            .execute(&mut other)
            .await
            .unwrap();
        sqlx::query("SELECT count(*) FROM models WHERE model_id = 'm'")
            .execute(&mut other)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO eval_runs (owner, run_id, model_key, model_id, model_version, eval_type, metrics, created_at) \
             VALUES ($1, 'racing-run', $2, 'm', 1, 'r', '{}', 0)",
        )
        .bind(tenant.to_string())
        .bind(format!("{tenant}::m::1"))
        .execute(&mut other)
        .await
        .unwrap();

        let deleting = {
            let catalog = catalog.clone();
            tokio::spawn(async move { catalog.delete_model("m", None, false).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();

        let outcome = deleting.await.unwrap();
        match (max_attempts, outcome) {
            (12, Err(CatalogError::ModelReferenced { edges, .. })) => {
                assert_eq!(edges, vec!["eval_runs.model_key"]);
                assert!(catalog.store().stats().retries() >= 1);
            }
            (1, Err(CatalogError::RetryExhausted { attempts: 1, .. })) => {}
            (n, other) => panic!("max_attempts {n}: unexpected {other:?}"),
        }
        assert_eq!(
            catalog.list_models().await.unwrap().len(),
            1,
            "the model must survive"
        );
        catalog.delete_eval_run("racing-run").await.unwrap();
        catalog.delete_model("m", None, false).await.unwrap();
        catalog.store().close().await;
    }
    db.cleanup().await;
}
