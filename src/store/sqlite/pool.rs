//! The store's SQLite connections: a bounded pool, and one writer's turn at a time.

use std::collections::HashMap;
use std::ffi::CString;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore, TryAcquireError};

use super::connection::Connection;
use super::error::SqliteError;
use crate::error::{CatalogError, Result};

/// Connections to one SQLite database, opened as needed up to a bound and kept open.
#[derive(Clone)]
pub(crate) struct SqlitePool {
    inner: Arc<Inner>,
}

struct Inner {
    path: CString,
    max_connections: u32,
    acquire_timeout: Duration,
    busy_timeout: Duration,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Connection>>,
    /// The process's turn to write to this file, shared by every pool of the process on
    /// it. SQLite lets one writer in at a time; were the process's writers to meet only at
    /// SQLite's lock, a writer waiting there would block its thread (SQLite's busy handler
    /// sleeps), possibly the very thread that must run the lock holder's next statement.
    /// Here they queue, asynchronously and in order, and only writers of other processes
    /// meet at SQLite's lock.
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl SqlitePool {
    /// Opens the pool's first connection to `path` (a file name, `:memory:` or a `file:`
    /// URI, for the database file `file`), checking that the database opens and switching
    /// it to WAL, and keeps it.
    pub(crate) fn open(
        path: CString,
        file: &Path,
        max_connections: u32,
        acquire_timeout: Duration,
        busy_timeout: Duration,
    ) -> Result<SqlitePool> {
        let first = Connection::open(&path, busy_timeout)?;
        Ok(SqlitePool {
            inner: Arc::new(Inner {
                writer: writer_of(file),
                path,
                max_connections,
                acquire_timeout,
                busy_timeout,
                permits: Arc::new(Semaphore::new(max_connections as usize)),
                idle: Mutex::new(vec![first]),
            }),
        })
    }

    pub(crate) fn max_connections(&self) -> u32 {
        self.inner.max_connections
    }

    pub(crate) fn acquire_timeout(&self) -> Duration {
        self.inner.acquire_timeout
    }

    /// A connection of the pool, waiting up to the acquire timeout for one to come free.
    ///
    /// # Errors
    /// [`CatalogError::Unavailable`] on timeout or once the pool is closed; SQLite's error
    /// when a new connection cannot be opened.
    pub(crate) async fn acquire(&self) -> Result<PooledConnection> {
        let permits = Arc::clone(&self.inner.permits);
        // A free connection is the common case: taken without arming a timer.
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => {
                return Err(CatalogError::Unavailable(sqlx::Error::PoolClosed));
            }
            Err(TryAcquireError::NoPermits) => {
                match tokio::time::timeout(self.inner.acquire_timeout, permits.acquire_owned())
                    .await
                {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_closed)) => {
                        return Err(CatalogError::Unavailable(sqlx::Error::PoolClosed));
                    }
                    Err(_elapsed) => {
                        return Err(CatalogError::Unavailable(sqlx::Error::PoolTimedOut));
                    }
                }
            }
        };
        let idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => Connection::open(&self.inner.path, self.inner.busy_timeout)?,
        };
        Ok(PooledConnection {
            conn: Some(conn),
            pool: Arc::clone(&self.inner),
            _permit: permit,
        })
    }

    /// The process's writer turn (see `Inner::writer`), waited for as long as SQLite
    /// waits for its lock.
    ///
    /// # Errors
    /// SQLite's busy error when the turn does not come within the busy timeout.
    pub(crate) async fn writer_turn(&self) -> Result<OwnedMutexGuard<()>> {
        let writer = Arc::clone(&self.inner.writer);
        tokio::time::timeout(self.inner.busy_timeout, writer.lock_owned())
            .await
            .map_err(|_| SqliteError::busy("waited the busy timeout for this process's writer"))
    }

    /// Refuses new acquires and closes the idle connections; a connection in use closes
    /// when it comes back.
    pub(crate) fn close(&self) {
        self.inner.permits.close();
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// The writer turn of the database file `file`, the same for every pool of this process
/// on that file (an in-memory database has a turn of its own).
fn writer_of(file: &Path) -> Arc<tokio::sync::Mutex<()>> {
    static TURNS: LazyLock<Mutex<HashMap<PathBuf, Weak<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Mutex::default);
    if file == Path::new(":memory:") {
        return Arc::default();
    }
    // The file exists: the pool's first connection opened (or created) it.
    let file = file.canonicalize().unwrap_or_else(|_| file.to_owned());
    let mut turns = TURNS.lock().unwrap_or_else(|e| e.into_inner());
    turns.retain(|_, turn| turn.strong_count() > 0);
    if let Some(turn) = turns.get(&file).and_then(Weak::upgrade) {
        return turn;
    }
    let turn = Arc::default();
    turns.insert(file, Arc::downgrade(&turn));
    turn
}

/// A connection taken from the pool; it goes back when dropped, with any transaction it
/// left open rolled back.
pub(crate) struct PooledConnection {
    conn: Option<Connection>,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl PooledConnection {
    /// Closes the connection instead of giving it back to the pool.
    pub(crate) fn discard(&mut self) {
        self.conn = None;
    }
}

impl Deref for PooledConnection {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("present until dropped")
    }
}

impl DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("present until dropped")
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        // A transaction abandoned mid-way (its future dropped, a failed commit).
        if conn.in_transaction() && conn.execute("ROLLBACK", &[]).is_err() {
            return; // closed rather than reused in an unknown state
        }
        if !self.pool.permits.is_closed() {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
    }
}
