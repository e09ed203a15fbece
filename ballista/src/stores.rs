//! One pool per catalog database per process: what decoded plan nodes read and write
//! through.
//!
//! A plan names its database by the redacted URL (`Store::redacted_url`): the password
//! never travels. A process serves only the databases it was given: the full URLs a
//! scheduler or an executor was started with ([`ProcessStores::serve`], `--catalog-url`),
//! and the stores a client in this process registered ([`ProcessStores::share`]). Each is
//! connected (and migrated) once, the first time a plan names it, on this module's own
//! runtime, which lasts as long as the process: the pool's first connection and its
//! maintenance tasks live there, not on a Ballista runtime that may end first.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, mpsc};

use jammi_catalog::sql::wire::Stores;
use jammi_catalog::{CatalogError, Store};

/// The process's pools, by database.
#[derive(Debug, Default)]
pub struct ProcessStores;

/// A database this process serves: its full URL until first used, then its pool.
enum Served {
    Url(String),
    Open(Store),
}

/// Every database this process serves, by redacted URL; each behind its own lock, so a
/// connect holds up only the plans that need that database.
static SERVED: LazyLock<Mutex<HashMap<String, Arc<Mutex<Served>>>>> = LazyLock::new(Mutex::default);

/// The runtime pools are opened on: one thread, alive for the whole process.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("jammi-stores")
        .enable_all()
        .build()
        .expect("the jammi-stores runtime starts (a thread and an I/O driver)")
});

fn add(database: String, served: Served) -> jammi_catalog::Result<()> {
    let mut all = SERVED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = all.get(&database) {
        let known = known.lock().unwrap_or_else(|e| e.into_inner());
        return match (&*known, &served) {
            (Served::Url(a), Served::Url(b)) if a != b => Err(CatalogError::invalid(
                "catalog url",
                format!("{database} is given twice, with different passwords"),
            )),
            _ => Ok(()),
        };
    }
    all.insert(database, Arc::new(Mutex::new(served)));
    Ok(())
}

impl ProcessStores {
    /// Serves the catalog database at `url` (connected when a plan first names it).
    ///
    /// # Errors
    /// When another URL that differs only in its password is already served.
    pub fn serve(url: &str) -> jammi_catalog::Result<()> {
        add(
            jammi_catalog::store::redacted_url(url),
            Served::Url(url.trim().to_owned()),
        )
    }

    /// Serves `store`'s database with `store` itself: plans decoded in this process (an
    /// in-process scheduler and executor) use the client's pool.
    pub fn share(store: &Store) {
        // A store's database is served once: an open pool replaces nothing.
        let _ = add(store.redacted_url(), Served::Open(store.clone()));
    }
}

impl Stores for ProcessStores {
    fn store(&self, database: &str) -> jammi_catalog::Result<Store> {
        let served = SERVED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(database)
            .cloned()
            .ok_or_else(|| {
                CatalogError::invalid(
                    "catalog url",
                    format!(
                        "a plan names the catalog database {database}, which this process does \
                         not serve (start it with --catalog-url for that database)"
                    ),
                )
            })?;
        let mut served = served.lock().unwrap_or_else(|e| e.into_inner());
        let url = match &*served {
            Served::Open(store) => return Ok(store.clone()),
            Served::Url(url) => url.clone(),
        };
        let (sender, receiver) = mpsc::channel();
        RUNTIME.spawn(async move {
            let _ = sender.send(Store::connect(&url).await);
        });
        // Decoding is synchronous: wait here (for a connect, once per database).
        let store = receiver
            .recv()
            .map_err(|_| CatalogError::Unsupported("the jammi-stores runtime stopped".into()))??;
        *served = Served::Open(store.clone());
        Ok(store)
    }
}
