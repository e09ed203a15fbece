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
    /// Foreign keys are not enforced on this connection until the transaction ends.
    foreign_keys_off: bool,
}

impl SqliteTx {
    /// Begins a transaction. A writer takes the process's writer turn, then SQLite's write
    /// lock up front (`BEGIN IMMEDIATE`): a deferred transaction that later writes can fail
    /// with SQLITE_BUSY at once, without waiting on the busy timeout. A reader begins
    /// deferred and takes no turn.
    pub(crate) async fn begin(pool: &SqlitePool, read_only: bool) -> Result<SqliteTx> {
        Self::begin_on(pool, read_only, false).await
    }

    /// Begins a write transaction in which foreign keys are not enforced: a migration that
    /// rebuilds a table other tables refer to (SQLite's way to change a table's
    /// constraints: create, copy, drop, rename) and checks every reference itself before
    /// it commits. SQLite reads the setting only outside a transaction, so it is set
    /// before `BEGIN` and set back when the transaction ends.
    pub(crate) async fn begin_without_foreign_keys(pool: &SqlitePool) -> Result<SqliteTx> {
        Self::begin_on(pool, false, true).await
    }

    async fn begin_on(
        pool: &SqlitePool,
        read_only: bool,
        foreign_keys_off: bool,
    ) -> Result<SqliteTx> {
        let writer = if read_only {
            None
        } else {
            Some(pool.writer_turn().await?)
        };
        let conn = pool.acquire().await?;
        let mut tx = SqliteTx {
            conn,
            _writer: writer,
            foreign_keys_off,
        };
        if foreign_keys_off {
            tx.conn.execute("PRAGMA foreign_keys = OFF", &[])?;
        }
        tx.conn.execute(
            if read_only {
                "BEGIN DEFERRED"
            } else {
                "BEGIN IMMEDIATE"
            },
            &[],
        )?;
        Ok(tx)
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

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if !self.foreign_keys_off {
            return;
        }
        // Ended (committed, rolled back) or abandoned: the connection goes back to the pool
        // enforcing foreign keys again, or not at all.
        let ended = !self.conn.in_transaction() || self.conn.execute("ROLLBACK", &[]).is_ok();
        if !ended || self.conn.execute("PRAGMA foreign_keys = ON", &[]).is_err() {
            self.conn.discard();
        }
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

#[cfg(test)]
mod tests {
    use std::ffi::CString;
    use std::time::Duration;

    use super::*;

    fn foreign_keys(conn: &mut Connection) -> i64 {
        let rows = conn.fetch_all("PRAGMA foreign_keys", &[]).unwrap();
        rows[0].opt_int("foreign_keys").unwrap().unwrap()
    }

    /// A transaction without foreign keys hands its connection back enforcing them,
    /// whether it committed, rolled back or was abandoned.
    #[tokio::test]
    async fn foreign_keys_are_enforced_again_after_a_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.db");
        let path = CString::new(file.to_str().unwrap()).unwrap();
        let second = Duration::from_secs(1);
        // One connection: every transaction below runs on the same one.
        let pool = SqlitePool::open(path, &file, 1, second, second).unwrap();
        for end in ["commit", "rollback", "drop"] {
            let mut tx = SqliteTx::begin_without_foreign_keys(&pool).await.unwrap();
            assert_eq!(foreign_keys(&mut tx), 0, "{end}");
            match end {
                "commit" => tx.commit().unwrap(),
                "rollback" => tx.rollback().unwrap(),
                _ => drop(tx),
            }
            let mut tx = SqliteTx::begin(&pool, true).await.unwrap();
            assert_eq!(foreign_keys(&mut tx), 1, "after {end}");
        }
    }
}
