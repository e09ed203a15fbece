//! One pool per catalog URL per process: what decoded plan nodes read and write through.
//!
//! A scheduler and an executor decode many plans for the same database; each URL is
//! connected (and migrated) once, the first time a plan names it. The pools live on this
//! module's own runtime, which lasts as long as the process: sqlx binds a pool's
//! connections to the runtime that opened them, and Ballista runs tasks on runtimes of its
//! own, which may come and go.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, mpsc};

use jammi_catalog::sql::wire::Stores;
use jammi_catalog::{CatalogError, Store};

/// The process's pools, by URL.
#[derive(Debug, Default)]
pub struct ProcessStores;

/// The runtime the pools are opened on: one thread, alive for the whole process.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("jammi-stores")
        .enable_all()
        .build()
        .expect("the jammi-stores runtime starts (a thread and an I/O driver)")
});

/// Every store opened so far, by URL.
static OPENED: LazyLock<Mutex<HashMap<String, Store>>> = LazyLock::new(Mutex::default);

impl Stores for ProcessStores {
    fn store(&self, url: &str) -> jammi_catalog::Result<Store> {
        let url = url.trim();
        // Held while connecting, so that one URL is opened once.
        let mut opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = opened.get(url) {
            return Ok(store.clone());
        }
        let (sender, receiver) = mpsc::channel();
        let owned = url.to_owned();
        RUNTIME.spawn(async move {
            let _ = sender.send(Store::connect(&owned).await);
        });
        // Decoding is synchronous: wait here (for a connect, once per URL per process).
        let store = receiver
            .recv()
            .map_err(|_| CatalogError::Unsupported("the jammi-stores runtime stopped".into()))?
            .map_err(|e| redact(e, url))?;
        opened.insert(url.to_owned(), store.clone());
        Ok(store)
    }
}

/// `error` with any appearance of `url` replaced by its redacted form.
fn redact(error: CatalogError, url: &str) -> CatalogError {
    let message = error.to_string();
    if !message.contains(url) {
        return error;
    }
    CatalogError::invalid(
        "database url",
        message.replace(url, &jammi_catalog::store::redacted_url(url)),
    )
}
