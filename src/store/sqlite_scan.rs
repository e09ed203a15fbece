//! The DataFusion scan's read on SQLite, straight through SQLite's C API.
//!
//! sqlx runs each SQLite connection on a worker thread and hands every row to the async
//! caller through a channel: a thread wake-up, a lock round and a copy of every value per
//! row. On a listing scan that hand-off cost several times what SQLite itself spends
//! (docs/performance.md). Here the scan takes a pooled connection, locks its handle out of
//! the worker (sqlx's `lock_handle`, made for direct FFI calls) and steps the statement
//! on the calling blocking thread, handing each row to the caller in place.

use std::borrow::Cow;
use std::ffi::{CStr, c_int};
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqlitePool};

use super::value::{RowValues, Value};
use super::{ScanSlot, ScanSlots};
use crate::error::{CatalogError, Result};

/// Reads from a SQLite store's pool through SQLite's C API.
#[derive(Clone, Debug)]
pub(crate) struct SqliteReader {
    pub(super) pool: SqlitePool,
    pub(super) scans: ScanSlots,
}

/// A pooled connection taken for a scan, with the scan's turn at the pool.
pub(crate) struct ScanConnection {
    /// Declared first, so dropped first: the connection is back in the pool before the
    /// next scan may take one.
    conn: PoolConnection<Sqlite>,
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
    /// from a blocking task of a Tokio runtime. `sql` numbers its parameters `$1`, `$2`, …
    /// like every catalog statement, and must be built as [`super::Store::stream`]
    /// requires.
    pub(crate) fn for_each_row(
        conn: &mut ScanConnection,
        sql: &str,
        args: &[Value],
        mut on_row: impl FnMut(&SqliteRowRef<'_>) -> Result<bool>,
    ) -> Result<()> {
        // Locking needs only sqlx's worker thread to answer, no driver of the runtime.
        let mut handle = tokio::runtime::Handle::current().block_on(conn.conn.lock_handle())?;
        let db = handle.as_raw_handle();
        // Declared after `handle`: finalized before the lock is released.
        let stmt = Statement::prepare(db, sql)?;
        stmt.bind(args)?;
        loop {
            // SAFETY: the statement is live and its connection locked out of sqlx's
            // worker for as long as `handle` lives.
            match unsafe { ffi::sqlite3_step(stmt.raw.as_ptr()) } {
                ffi::SQLITE_ROW => {
                    if !on_row(&SqliteRowRef { stmt: &stmt })? {
                        return Ok(());
                    }
                }
                ffi::SQLITE_DONE => return Ok(()),
                _ => return Err(stmt.error()),
            }
        }
    }
}

/// A prepared statement, finalized when dropped (before its connection goes back to the
/// pool, since it is declared after the locked handle).
struct Statement {
    db: NonNull<ffi::sqlite3>,
    raw: NonNull<ffi::sqlite3_stmt>,
    columns: usize,
}

impl Statement {
    fn prepare(db: NonNull<ffi::sqlite3>, sql: &str) -> Result<Statement> {
        let len = c_int::try_from(sql.len())
            .map_err(|_| CatalogError::Unsupported("generated scan SQL is too long".into()))?;
        let mut raw = ptr::null_mut();
        // SAFETY: `db` is a live connection locked for this thread; `sql` is valid for
        // `len` bytes (SQLite does not need a NUL terminator when the length is given).
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                &mut raw,
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(SqliteError::of(db).into_catalog());
        }
        let Some(raw) = NonNull::new(raw) else {
            return Err(CatalogError::Unsupported(
                "the scan SQL holds no statement".into(),
            ));
        };
        // SAFETY: `raw` is the statement just prepared.
        let columns = unsafe { ffi::sqlite3_column_count(raw.as_ptr()) };
        Ok(Statement {
            db,
            raw,
            columns: usize::try_from(columns).unwrap_or(0),
        })
    }

    /// Binds `$n` to `args[n - 1]`, the way sqlx numbers them.
    fn bind(&self, args: &[Value]) -> Result<()> {
        let stmt = self.raw.as_ptr();
        // SAFETY: the statement is live; names SQLite returns are NUL-terminated and live
        // as long as the statement; SQLITE_TRANSIENT makes SQLite copy the text.
        unsafe {
            for i in 1..=ffi::sqlite3_bind_parameter_count(stmt) {
                let name = ffi::sqlite3_bind_parameter_name(stmt, i);
                let index = (!name.is_null())
                    .then(|| CStr::from_ptr(name).to_str().ok())
                    .flatten()
                    .and_then(|n| n.strip_prefix('$'))
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| (1..=args.len()).contains(n));
                let Some(index) = index else {
                    return Err(CatalogError::Unsupported(format!(
                        "scan parameter {i} is not one of $1..${}",
                        args.len()
                    )));
                };
                let rc = match &args[index - 1] {
                    Value::Text(Some(text)) => {
                        let len = c_int::try_from(text.len()).map_err(|_| {
                            CatalogError::invalid("filter value", "text too long for SQLite")
                        })?;
                        ffi::sqlite3_bind_text(
                            stmt,
                            i,
                            text.as_ptr().cast(),
                            len,
                            ffi::SQLITE_TRANSIENT(),
                        )
                    }
                    Value::Int(Some(v)) => ffi::sqlite3_bind_int64(stmt, i, *v),
                    Value::Text(None) | Value::Int(None) => ffi::sqlite3_bind_null(stmt, i),
                };
                if rc != ffi::SQLITE_OK {
                    return Err(self.error());
                }
            }
        }
        Ok(())
    }

    fn error(&self) -> CatalogError {
        SqliteError::of(self.db).into_catalog()
    }
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: finalized exactly once, while its connection is still locked.
        unsafe { ffi::sqlite3_finalize(self.raw.as_ptr()) };
    }
}

/// The current row of a running scan; valid only inside the `on_row` call.
pub(crate) struct SqliteRowRef<'s> {
    stmt: &'s Statement,
}

impl SqliteRowRef<'_> {
    /// The storage class of column `i`, which must exist.
    fn column_type(&self, i: usize) -> Result<c_int> {
        if i >= self.stmt.columns {
            return Err(CatalogError::TypeConversion {
                column: format!("#{i}"),
                detail: format!("the row has {} columns", self.stmt.columns),
            });
        }
        // SAFETY: the statement is on a row and `i` is one of its columns.
        Ok(unsafe { ffi::sqlite3_column_type(self.stmt.raw.as_ptr(), i as c_int) })
    }
}

fn mismatch(i: usize, wanted: &str, found: c_int) -> CatalogError {
    CatalogError::TypeConversion {
        column: format!("#{i}"),
        detail: format!("expected {wanted}, found SQLite storage class {found}"),
    }
}

impl RowValues for SqliteRowRef<'_> {
    fn str_at(&self, i: usize) -> Result<Option<&str>> {
        match self.column_type(i)? {
            ffi::SQLITE_NULL => Ok(None),
            ffi::SQLITE_TEXT => {
                let stmt = self.stmt.raw.as_ptr();
                // SAFETY: text first, then its length in bytes, as SQLite documents. The
                // bytes stay valid until the next step; the returned borrow is tied to
                // this row, which exists only during one `on_row` call, before that step.
                let bytes = unsafe {
                    let text = ffi::sqlite3_column_text(stmt, i as c_int);
                    if text.is_null() {
                        // A TEXT value without text: SQLite ran out of memory.
                        return Err(self.stmt.error());
                    }
                    let len = ffi::sqlite3_column_bytes(stmt, i as c_int);
                    std::slice::from_raw_parts(text, usize::try_from(len).unwrap_or(0))
                };
                std::str::from_utf8(bytes)
                    .map(Some)
                    .map_err(|e| CatalogError::TypeConversion {
                        column: format!("#{i}"),
                        detail: e.to_string(),
                    })
            }
            other => Err(mismatch(i, "text", other)),
        }
    }

    fn int_at(&self, i: usize) -> Result<Option<i64>> {
        match self.column_type(i)? {
            ffi::SQLITE_NULL => Ok(None),
            // SAFETY: the statement is on a row and `i` is one of its columns.
            ffi::SQLITE_INTEGER => Ok(Some(unsafe {
                ffi::sqlite3_column_int64(self.stmt.raw.as_ptr(), i as c_int)
            })),
            other => Err(mismatch(i, "an integer", other)),
        }
    }
}

/// An error SQLite reported, as a sqlx database error so that it reads and classifies
/// like every other SQLite error of the catalog (extended result code as its code).
#[derive(Debug)]
struct SqliteError {
    code: String,
    message: String,
}

impl SqliteError {
    fn of(db: NonNull<ffi::sqlite3>) -> SqliteError {
        // SAFETY: `db` is a live connection; errmsg is NUL-terminated and copied at once.
        unsafe {
            let code = ffi::sqlite3_extended_errcode(db.as_ptr());
            let message = CStr::from_ptr(ffi::sqlite3_errmsg(db.as_ptr()))
                .to_string_lossy()
                .into_owned();
            SqliteError {
                code: code.to_string(),
                message,
            }
        }
    }

    fn into_catalog(self) -> CatalogError {
        CatalogError::Database(sqlx::Error::Database(Box::new(self)))
    }
}

impl std::fmt::Display for SqliteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for SqliteError {}

impl DatabaseError for SqliteError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.code))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}
