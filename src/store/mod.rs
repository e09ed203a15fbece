//! The storage layer: one abstraction over sqlx for SQLite and PostgreSQL (SPEC §5).
//!
//! - [`Store`] owns the connection pool and runs closure transactions with the isolation,
//!   read-only flag and retry policy of [`TxOptions`].
//! - [`Tx`] is the transaction a closure receives; it carries the scope and binds that
//!   scope's owner into every write.
//! - `owned` checks that a write statement's owner column or predicate is the placeholder
//!   the transaction binds.
//! - `migrations` brings a database to the current schema when it is opened.

mod connect;
mod estimates;
mod migrations;
mod owned;
mod retry;
mod sqlite;
mod tx;
mod value;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use sqlx::{PgPool, SqlSafeStr};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub(crate) use owned::{OwnedWrite, OwnerParam};
pub use retry::RetryPolicy;
pub(crate) use sqlite::SqliteReader;
pub use sqlite::SqliteRow;
pub use tx::Tx;
pub(crate) use value::RowValues;
pub(crate) use value::args;
pub use value::{DbRow, Value};

use crate::access::{Access, Grant};
use crate::error::{CatalogError, Result};
use crate::tenant::owner_of;

/// Which database a store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Transaction isolation. SQLite transactions are always serializable; the level matters
/// on Postgres.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Isolation {
    /// `READ COMMITTED` (the default).
    #[default]
    ReadCommitted,
    /// `REPEATABLE READ`.
    RepeatableRead,
    /// `SERIALIZABLE`.
    Serializable,
}

/// How a transaction runs.
#[derive(Clone, Copy, Debug)]
pub struct TxOptions {
    /// Isolation level (Postgres).
    pub isolation: Isolation,
    /// A read-only transaction: `READ ONLY` on Postgres, a deferred `BEGIN` on SQLite,
    /// and every write through [`Tx`] refused.
    pub read_only: bool,
    /// Also retry on a unique violation: set by operations that allocate a version, where a
    /// concurrent allocator taking the same number is a conflict, not a user error.
    pub retry_on_unique_violation: bool,
    /// The access level the transaction's work needs, checked against the caller's
    /// [`Grant`] before the transaction begins (SPEC §14). Each write statement is checked
    /// again against the grant when it runs, whatever was declared here.
    pub access: Access,
}

impl Default for TxOptions {
    fn default() -> Self {
        TxOptions {
            isolation: Isolation::default(),
            read_only: false,
            retry_on_unique_violation: false,
            access: Access::Write,
        }
    }
}

impl TxOptions {
    /// A read-committed read-write transaction.
    pub fn write() -> Self {
        TxOptions::default()
    }

    /// A serializable read-write transaction.
    pub fn serializable() -> Self {
        TxOptions {
            isolation: Isolation::Serializable,
            ..TxOptions::default()
        }
    }

    /// A read-only transaction.
    pub fn read_only() -> Self {
        TxOptions {
            read_only: true,
            access: Access::Read,
            ..TxOptions::default()
        }
    }

    /// The same options for work that needs `access` (e.g. [`Access::Admin`] for a delete).
    pub fn needing(self, access: Access) -> Self {
        TxOptions { access, ..self }
    }
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(sqlite::SqlitePool),
    Postgres(PgPool),
}

/// The turns DataFusion scans take at the pool: one fewer than the pool's connections.
///
/// Why: a scan keeps its connection while it waits for its consumer, and the consumer may
/// itself need a connection: `SELECT delete_model(model_id, version) FROM
/// jammi.public.models …` calls a function that runs a transaction per row. Were scans
/// allowed every connection, as many such queries as the pool has connections would hold
/// them all and wait for one another until the acquire timeout. With one connection kept
/// from scans, transactions (which never wait for a scan) always get one in turn, so the
/// scans' consumers move on. A one-connection pool (`sqlite::memory:`) has none to keep
/// back: there, the scan takes it, and a function over a scan longer than one batch
/// waits for that scan's own connection (docs/design.md).
#[derive(Clone, Debug)]
pub(crate) struct ScanSlots {
    slots: Arc<Semaphore>,
    /// The pool's acquire timeout, also the longest wait for a slot.
    timeout: Duration,
}

/// A scan's turn at the pool; the next scan may take a connection once this is dropped.
#[derive(Debug)]
pub(crate) struct ScanSlot {
    _permit: OwnedSemaphorePermit,
}

impl ScanSlots {
    fn for_pool(pool: &Pool) -> ScanSlots {
        let (connections, timeout) = match pool {
            Pool::Sqlite(p) => (p.max_connections(), p.acquire_timeout()),
            Pool::Postgres(p) => (
                p.options().get_max_connections(),
                p.options().get_acquire_timeout(),
            ),
        };
        let slots = usize::try_from(connections.saturating_sub(1).max(1)).unwrap_or(1);
        ScanSlots {
            slots: Arc::new(Semaphore::new(slots)),
            timeout,
        }
    }

    /// A slot if one is free now, without waiting.
    pub(crate) fn try_take(&self) -> Option<ScanSlot> {
        Arc::clone(&self.slots)
            .try_acquire_owned()
            .ok()
            .map(|permit| ScanSlot { _permit: permit })
    }

    /// Waits for a slot, as long as the pool would wait for a connection.
    ///
    /// # Errors
    /// [`CatalogError::Unavailable`] when none comes free in time or the store is closed.
    pub(crate) async fn take(&self) -> Result<ScanSlot> {
        match tokio::time::timeout(self.timeout, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(ScanSlot { _permit: permit }),
            Ok(Err(_closed)) => Err(CatalogError::Unavailable(sqlx::Error::PoolClosed)),
            Err(_elapsed) => Err(CatalogError::Unavailable(sqlx::Error::PoolTimedOut)),
        }
    }
}

/// Counters of what the store did, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct StoreStats {
    retries: AtomicU64,
}

impl StoreStats {
    /// Transactions re-run after a retryable conflict (each re-run counts once).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

/// `url` with its password (in the authority, or a `password=` query parameter) replaced
/// by `***`: what messages and logs may show of a database URL.
pub fn redacted_url(url: &str) -> String {
    connect::redacted(url)
}

/// A connection pool to the catalog database, migrated to the current schema.
///
/// Cheap to clone: clones share the pool. A store opened by [`Store::connect`] allows every
/// write; one taken from a narrowed catalog handle carries that handle's level as a
/// ceiling ([`Store::narrowed`]), which every transaction's grant is lowered to, so no
/// handle built on it can do more.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    /// The URL it was opened with, as given (credentials included: never printed; see
    /// [`Store::redacted_url`]). Plans shipped to other processes carry it (`sql::wire`).
    url: Arc<str>,
    scans: ScanSlots,
    retry: RetryPolicy,
    stats: Arc<StoreStats>,
    estimates: Arc<estimates::RowEstimates>,
    ceiling: Access,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish()
    }
}

impl Store {
    /// Connects to `url` and migrates the database.
    ///
    /// Accepted forms: `sqlite://PATH` (created when missing), `sqlite::memory:`, a bare
    /// file path, or `postgres://…` / `postgresql://…`.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] for an unusable URL, [`CatalogError::Unavailable`]
    /// when the database cannot be reached, [`CatalogError::Migration`] when the schema
    /// cannot be brought up to date.
    pub async fn connect(url: &str) -> Result<Self> {
        // Processes creating the same new SQLite file at once can see "database is locked"
        // while one of them switches it to WAL and migrates it, on paths that SQLite's busy
        // handler does not cover; opening is retried for that case only.
        let mut attempt = 0;
        loop {
            match Store::connect_once(url).await {
                Err(e) if attempt < 50 && is_sqlite_lock(&e) => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20 * attempt.min(10)))
                        .await;
                }
                outcome => return outcome,
            }
        }
    }

    async fn connect_once(url: &str) -> Result<Self> {
        let pool = connect::connect(url).await?;
        let store = Store {
            url: Arc::from(url.trim()),
            scans: ScanSlots::for_pool(&pool),
            pool,
            retry: RetryPolicy::default(),
            stats: Arc::new(StoreStats::default()),
            estimates: Arc::default(),
            ceiling: Access::Admin,
        };
        if let Err(e) = migrations::migrate(&store).await {
            store.close().await;
            return Err(e);
        }
        Ok(store)
    }

    /// Replaces the retry policy (Postgres conflicts, SQLite busy).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The same store (same pool) allowing at most `access`: the lower of its ceiling and
    /// `access`.
    pub fn narrowed(&self, access: Access) -> Store {
        Store {
            ceiling: self.ceiling.min(access),
            ..self.clone()
        }
    }

    /// The most any transaction on this store may do.
    pub fn ceiling(&self) -> Access {
        self.ceiling
    }

    /// The URL the store was opened with, credentials included (for `sql::wire` only).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The URL the store was opened with, its password (if any) replaced by `***`: what
    /// messages and logs may show.
    pub fn redacted_url(&self) -> String {
        redacted_url(&self.url)
    }

    /// Whether the database lives in this process's memory (`sqlite::memory:`), where no
    /// other process or pool can reach it.
    pub fn in_memory(&self) -> bool {
        connect::is_in_memory(&self.url)
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// What the store has done so far.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// Closes the pool; later calls fail with [`CatalogError::Unavailable`].
    pub async fn close(&self) {
        self.scans.slots.close();
        match &self.pool {
            Pool::Sqlite(p) => p.close(),
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// Runs `f` in one transaction for `grant`: commit on `Ok`, rollback on `Err`.
    ///
    /// The transaction writes only rows of `grant.scope`, and only what `grant.access`
    /// (lowered to the store's ceiling) allows: `options.access` is checked against it
    /// before the transaction begins, and every write statement's own level when it runs
    /// ([`CatalogError::PermissionDenied`]).
    ///
    /// On a retryable conflict (Postgres 40001/40P01, a unique violation when
    /// `options.retry_on_unique_violation`, SQLite busy) the whole closure runs again after
    /// a backoff, up to the policy's bound; callers never see those conflicts unless the
    /// budget runs out ([`CatalogError::RetryExhausted`]). `f` must therefore be safe to run
    /// more than once: everything it writes is rolled back between attempts.
    ///
    /// # Errors
    /// Whatever `f` returns, or the database's error on begin/commit.
    pub async fn transaction<T, F>(&self, grant: Grant, options: TxOptions, f: F) -> Result<T>
    where
        T: Send,
        F: for<'t> FnMut(&'t mut Tx) -> BoxFuture<'t, Result<T>> + Send,
    {
        self.transaction_on(grant, options, false, f).await
    }

    /// A migration's transaction that rebuilds tables: on SQLite, foreign keys are not
    /// enforced in it (see `SqliteTx::begin_without_foreign_keys`), and `f` must check
    /// every reference before it returns (`PRAGMA foreign_key_check`). On Postgres, a
    /// write transaction like any other.
    pub(crate) async fn rebuild_transaction<T, F>(&self, f: F) -> Result<T>
    where
        T: Send,
        F: for<'t> FnMut(&'t mut Tx) -> BoxFuture<'t, Result<T>> + Send,
    {
        self.transaction_on(Grant::full(None), TxOptions::write(), true, f)
            .await
    }

    async fn transaction_on<T, F>(
        &self,
        grant: Grant,
        options: TxOptions,
        foreign_keys_off: bool,
        mut f: F,
    ) -> Result<T>
    where
        T: Send,
        F: for<'t> FnMut(&'t mut Tx) -> BoxFuture<'t, Result<T>> + Send,
    {
        // Refused before anything is read (SPEC §14).
        let grant = grant.narrowed(self.ceiling);
        grant
            .access
            .require(options.access, options.access.work())?;
        let mut attempt = 1;
        loop {
            match self
                .run_once(grant, options, foreign_keys_off, &mut f)
                .await
            {
                Err(error) if retry::is_retryable(&error, options) => {
                    if attempt >= self.retry.max_attempts {
                        return Err(CatalogError::RetryExhausted {
                            attempts: attempt,
                            last: error.to_string(),
                        });
                    }
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    async fn run_once<T, F>(
        &self,
        grant: Grant,
        options: TxOptions,
        foreign_keys_off: bool,
        f: &mut F,
    ) -> Result<T>
    where
        F: for<'t> FnMut(&'t mut Tx) -> BoxFuture<'t, Result<T>>,
    {
        let mut tx = self.begin(grant, options, foreign_keys_off).await?;
        match f(&mut tx).await {
            Ok(value) => {
                match tx.conn {
                    tx::TxConn::Sqlite(t) => t.commit()?,
                    tx::TxConn::Postgres(t) => t.commit().await?,
                }
                Ok(value)
            }
            Err(error) => {
                // The closure's error is what the caller needs; a failed rollback only means
                // the connection is gone, and sqlx discards it.
                let _ = match tx.conn {
                    tx::TxConn::Sqlite(t) => t.rollback(),
                    tx::TxConn::Postgres(t) => t.rollback().await.map_err(CatalogError::from),
                };
                Err(error)
            }
        }
    }

    async fn begin(&self, grant: Grant, options: TxOptions, foreign_keys_off: bool) -> Result<Tx> {
        let conn = match &self.pool {
            Pool::Sqlite(pool) if foreign_keys_off => {
                tx::TxConn::Sqlite(sqlite::SqliteTx::begin_without_foreign_keys(pool).await?)
            }
            Pool::Sqlite(pool) => {
                tx::TxConn::Sqlite(sqlite::SqliteTx::begin(pool, options.read_only).await?)
            }
            Pool::Postgres(pool) => {
                use Isolation::*;
                let begin = match (options.isolation, options.read_only) {
                    (ReadCommitted, false) => "BEGIN ISOLATION LEVEL READ COMMITTED",
                    (ReadCommitted, true) => "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY",
                    (RepeatableRead, false) => "BEGIN ISOLATION LEVEL REPEATABLE READ",
                    (RepeatableRead, true) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                    (Serializable, false) => "BEGIN ISOLATION LEVEL SERIALIZABLE",
                    (Serializable, true) => "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY",
                };
                tx::TxConn::Postgres(pool.begin_with(begin).await?)
            }
        };
        Ok(Tx {
            conn,
            grant,
            read_only: options.read_only,
            owner: owner_of(grant.scope),
        })
    }

    /// Runs one read statement outside an explicit transaction (a single statement is
    /// atomic on its own; this saves the BEGIN/COMMIT round trips on hot reads).
    pub(crate) async fn fetch_all(&self, sql: &'static str, args: &[Value]) -> Result<Vec<DbRow>> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => {
                let params: Vec<&Value> = args.iter().collect();
                pool.acquire()
                    .await?
                    .fetch_all(sql, &params)?
                    .into_iter()
                    .map(DbRow::Sqlite)
                    .collect()
            }
            Pool::Postgres(pool) => value::bind_postgres(sqlx::query(sql), args)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(DbRow::Postgres)
                .collect(),
        })
    }

    /// Streams the rows of a generated read (the DataFusion scan on Postgres; SQLite scans
    /// go through [`Store::sqlite_reader`]). The caller
    /// holds a [`Store::scan_slot`] for as long as the stream lives.
    ///
    /// `sql` must be built only from the catalog's own identifiers and `$n` placeholders
    /// (see `sql::scan`); every value travels in `args`.
    pub(crate) fn stream<'a>(
        &'a self,
        sql: String,
        args: &'a [Value],
    ) -> BoxStream<'a, Result<DbRow>> {
        // Audited: the text holds no user value, only allow-listed identifiers.
        let sql = sqlx::AssertSqlSafe(sql);
        match &self.pool {
            Pool::Sqlite(pool) => {
                let pool = pool.clone();
                let sql = sql.into_sql_str();
                futures::stream::once(async move {
                    let params: Vec<&Value> = args.iter().collect();
                    let rows = pool.acquire().await?.fetch_all(sql.as_str(), &params)?;
                    Ok::<_, CatalogError>(futures::stream::iter(
                        rows.into_iter().map(|r| Ok(DbRow::Sqlite(r))),
                    ))
                })
                .try_flatten()
                .boxed()
            }
            Pool::Postgres(pool) => value::bind_postgres(sqlx::query(sql), args)
                .fetch(pool)
                .map_ok(DbRow::Postgres)
                .map_err(CatalogError::from)
                .boxed(),
        }
    }

    /// The reader that runs the DataFusion scan's statement on SQLite through its C API;
    /// `None` on Postgres, whose scan streams through [`Store::stream`].
    pub(crate) fn sqlite_reader(&self) -> Option<SqliteReader> {
        match &self.pool {
            Pool::Sqlite(pool) => Some(SqliteReader {
                pool: pool.clone(),
                scans: self.scans.clone(),
            }),
            Pool::Postgres(_) => None,
        }
    }

    /// A scan's turn at the pool, to hold while it holds a connection (see [`ScanSlots`]).
    ///
    /// # Errors
    /// [`CatalogError::Unavailable`] when no slot comes free within the acquire timeout,
    /// or the store is closed.
    pub(crate) async fn scan_slot(&self) -> Result<ScanSlot> {
        self.scans.take().await
    }

    /// Like [`Store::fetch_all`] for a statement matching at most one row.
    pub(crate) async fn fetch_optional(
        &self,
        sql: &'static str,
        args: &[Value],
    ) -> Result<Option<DbRow>> {
        tx::at_most_one(self.fetch_all(sql, args).await?)
    }
}

/// SQLite's "busy" / "locked" results, however wrapped.
fn is_sqlite_lock(error: &CatalogError) -> bool {
    matches!(error.database_code().as_deref(), Some("5" | "6" | "517"))
        || error.to_string().contains("database is locked")
}
