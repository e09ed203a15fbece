//! The DataFusion scan's read on SQLite: a cursor the scan's stream steps a batch at a
//! time, on the thread that polls it.
//!
//! Each poll of the scan steps the statement for up to one batch of rows and converts them
//! in place (no copy of a value before it reaches Arrow), as DataFusion's own operators do
//! their work for a batch inside `poll_next`. Stepping on a thread of its own instead cost
//! a task spawn and two thread hand-offs per execution, most of a point query's time
//! (docs/performance.md).

use super::connection::Statement;
use super::pool::{PooledConnection, SqlitePool};
use super::row::SqliteRowRef;
use crate::error::Result;
use crate::store::value::Value;
use crate::store::{ScanSlot, ScanSlots};

/// Opens scans on a SQLite store's pool.
#[derive(Clone)]
pub(crate) struct SqliteReader {
    pub(in crate::store) pool: SqlitePool,
    pub(in crate::store) scans: ScanSlots,
}

/// A scan's running statement, on a pooled connection taken with the scan's turn at the
/// pool. Both go back (the statement kept compiled) when the rows end or the cursor is
/// dropped.
pub(crate) struct SqliteCursor {
    running: Option<Running>,
}

struct Running {
    statement: Option<Statement>,
    conn: PooledConnection,
    /// Dropped after the connection: it is back in the pool before the next scan may
    /// take one.
    _slot: ScanSlot,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(statement) = self.statement.take() {
            self.conn.give_back(statement);
        }
    }
}

impl SqliteReader {
    /// Takes a scan slot, then a pooled connection (asynchronously, so that a scan dropped
    /// while it waits stops waiting), and starts `sql` with `args` on it. `sql` numbers
    /// its parameters `$1`, `$2`, … like every catalog statement, and must be built as
    /// [`crate::store::Store::stream`] requires.
    pub(crate) async fn open(&self, sql: &str, args: &[Value]) -> Result<SqliteCursor> {
        let slot = self.scans.take().await?;
        let mut conn = self.pool.acquire().await?;
        let params: Vec<&Value> = args.iter().collect();
        let statement = conn.prepare(sql, &params)?;
        Ok(SqliteCursor {
            running: Some(Running {
                statement: Some(statement),
                conn,
                _slot: slot,
            }),
        })
    }
}

impl SqliteCursor {
    /// Calls `on_row` for each next row until it returns `Ok(false)` (the next call goes
    /// on from the following row) or the rows end. Returns whether they ended; the
    /// connection is then back in the pool already.
    pub(crate) fn next_rows(
        &mut self,
        on_row: impl FnMut(&SqliteRowRef<'_>) -> Result<bool>,
    ) -> Result<bool> {
        let Some(running) = self.running.as_mut() else {
            return Ok(true);
        };
        let statement = running.statement.as_mut().expect("present while running");
        let ended = statement.step(on_row);
        if !matches!(ended, Ok(false)) {
            self.running = None;
        }
        ended
    }
}
