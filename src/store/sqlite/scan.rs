//! The DataFusion scan's read on SQLite.
//!
//! The scan takes a pooled connection and steps its statement on a blocking thread,
//! handing each row to the caller in place: no copy of a value before it reaches Arrow.

use super::connection::Connection;
use super::pool::{PooledConnection, SqlitePool};
use super::row::SqliteRowRef;
use crate::error::Result;
use crate::store::value::Value;
use crate::store::{ScanSlot, ScanSlots};

/// Reads from a SQLite store's pool for DataFusion scans.
#[derive(Clone)]
pub(crate) struct SqliteReader {
    pub(in crate::store) pool: SqlitePool,
    pub(in crate::store) scans: ScanSlots,
}

/// A pooled connection taken for a scan, with the scan's turn at the pool.
pub(crate) struct ScanConnection {
    /// Declared first, so dropped first: the connection is back in the pool before the
    /// next scan may take one.
    conn: PooledConnection,
    _slot: ScanSlot,
}

impl SqliteReader {
    /// A scan slot, then a pooled connection, for [`SqliteReader::for_each_row`]. Acquired
    /// asynchronously, so that a scan dropped while it waits stops waiting.
    pub(crate) async fn acquire(&self) -> Result<ScanConnection> {
        let slot = self.scans.take().await?;
        Ok(ScanConnection {
            conn: self.pool.acquire().await?,
            _slot: slot,
        })
    }

    /// Runs the read `sql` with `args` on `conn` and calls `on_row` for each row, on the
    /// calling thread, until the rows end or `on_row` returns `Ok(false)`. Blocks: call it
    /// from a blocking task. `sql` numbers its parameters `$1`, `$2`, … like every catalog
    /// statement, and must be built as [`crate::store::Store::stream`] requires.
    pub(crate) fn for_each_row(
        conn: &mut ScanConnection,
        sql: &str,
        args: &[Value],
        on_row: impl FnMut(&SqliteRowRef<'_>) -> Result<bool>,
    ) -> Result<()> {
        let params: Vec<&Value> = args.iter().collect();
        let conn: &mut Connection = &mut conn.conn;
        conn.run(sql, &params, on_row).map(|_| ())
    }
}
