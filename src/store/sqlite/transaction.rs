//! A SQLite transaction on a pooled connection.

use std::ops::{Deref, DerefMut};

use tokio::sync::OwnedMutexGuard;

use super::connection::Connection;
use super::pool::{PooledConnection, SqlitePool};
use crate::error::Result;

/// An open transaction. Dropped without [`SqliteTx::commit`], it rolls back.
pub(crate) struct SqliteTx {
    /// Declared first, so dropped first: rolled back before the writer turn passes on.
    conn: PooledConnection,
    _writer: Option<OwnedMutexGuard<()>>,
}

impl SqliteTx {
    /// Begins a transaction. A writer takes the process's writer turn, then SQLite's write
    /// lock up front (`BEGIN IMMEDIATE`): a deferred transaction that later writes can fail
    /// with SQLITE_BUSY at once, without waiting on the busy timeout. A reader begins
    /// deferred and takes no turn.
    pub(crate) async fn begin(pool: &SqlitePool, read_only: bool) -> Result<SqliteTx> {
        let writer = if read_only {
            None
        } else {
            Some(pool.writer_turn().await?)
        };
        let mut conn = pool.acquire().await?;
        conn.execute(
            if read_only {
                "BEGIN DEFERRED"
            } else {
                "BEGIN IMMEDIATE"
            },
            &[],
        )?;
        Ok(SqliteTx {
            conn,
            _writer: writer,
        })
    }

    /// Commits; on failure the transaction rolls back as it is dropped.
    pub(crate) fn commit(mut self) -> Result<()> {
        self.conn.execute("COMMIT", &[])?;
        Ok(())
    }

    /// Rolls back.
    pub(crate) fn rollback(mut self) -> Result<()> {
        self.conn.execute("ROLLBACK", &[])?;
        Ok(())
    }
}

impl Deref for SqliteTx {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}
