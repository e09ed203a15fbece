//! One SQLite connection, owned by the store and driven through SQLite's C API on the
//! calling thread, with its prepared statements kept for reuse.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_int};
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::time::Duration;

use libsqlite3_sys as ffi;

use super::error::SqliteError;
use super::row::{SqliteRow, SqliteRowRef};
use crate::error::{CatalogError, Result};
use crate::store::value::Value;

/// Statements longer than this are kept apart, only the last few: the multi-row writes of
/// a bulk `INSERT` (tens of kB, compiled to large programs) would fill the cache.
const CACHED_SQL_MAX_LEN: usize = 4_096;

/// Long statements kept per connection, the most recently used last. A bulk `INSERT`
/// repeats two texts (its models' full-chunk upsert and its events' append), which would
/// otherwise be compiled again for every chunk: a tenth of the statement's time.
const LONG_CACHE_CAPACITY: usize = 4;

/// Statements kept per connection; the catalog's own statements are far fewer, the rest
/// are generated scans. When full, the cache is emptied and refills.
const CACHE_CAPACITY: usize = 128;

/// Settings every connection gets when it opens (SPEC §5, docs/design.md).
const PRAGMAS: &str = "PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; \
     PRAGMA case_sensitive_like = ON; \
     PRAGMA cache_size = -32768; \
     PRAGMA temp_store = MEMORY;";

/// An open SQLite connection and its statement cache. Used by one thread at a time (the
/// pool hands it out whole); SQLite is opened without its own per-connection mutex.
pub(crate) struct Connection {
    db: NonNull<ffi::sqlite3>,
    statements: HashMap<Box<str>, Prepared>,
    /// Statements longer than [`CACHED_SQL_MAX_LEN`], at most [`LONG_CACHE_CAPACITY`].
    long_statements: Vec<(Box<str>, Prepared)>,
}

// SAFETY: SQLite in multi-thread mode allows a connection to move between threads as
// long as one thread uses it at a time, which `&mut self` on every use guarantees.
unsafe impl Send for Connection {}

/// A compiled statement and its column names (shared with the rows it returns).
struct Prepared {
    raw: NonNull<ffi::sqlite3_stmt>,
    columns: Arc<[Box<str>]>,
}

impl Connection {
    /// Opens (creating when missing) the database file at `path`, or a private in-memory
    /// database for `:memory:`, with the catalog's settings. `path` may be a `file:` URI
    /// (SQLite reads its options: `mode=ro`, …).
    pub(crate) fn open(path: &CStr, busy_timeout: Duration) -> Result<Connection> {
        let flags = ffi::SQLITE_OPEN_READWRITE
            | ffi::SQLITE_OPEN_CREATE
            | ffi::SQLITE_OPEN_NOMUTEX
            | ffi::SQLITE_OPEN_URI;
        let mut raw = ptr::null_mut();
        // SAFETY: `path` is NUL-terminated; SQLite allocates a handle even on failure,
        // which is closed below.
        let rc = unsafe { ffi::sqlite3_open_v2(path.as_ptr(), &mut raw, flags, ptr::null()) };
        let Some(db) = NonNull::new(raw) else {
            return Err(CatalogError::Unavailable(sqlx::Error::Protocol(
                "SQLite could not allocate a connection".into(),
            )));
        };
        let conn = Connection {
            db,
            statements: HashMap::new(),
            long_statements: Vec::new(),
        };
        if rc != ffi::SQLITE_OK {
            return Err(SqliteError::of(db).into_catalog());
        }
        let ms = c_int::try_from(busy_timeout.as_millis()).unwrap_or(c_int::MAX);
        // SAFETY: the connection is open and used by this thread alone.
        unsafe {
            ffi::sqlite3_extended_result_codes(db.as_ptr(), 1);
            ffi::sqlite3_busy_timeout(db.as_ptr(), ms);
        }
        conn.exec_script(PRAGMAS)?;
        Ok(conn)
    }

    /// Runs statements that take no parameters and return nothing of interest (settings).
    fn exec_script(&self, sql: &str) -> Result<()> {
        let sql = CString::new(sql)
            .map_err(|_| CatalogError::Unsupported("statement text holds NUL".into()))?;
        // SAFETY: the connection is open; no callback, no error buffer (read from the
        // connection instead).
        let rc = unsafe {
            ffi::sqlite3_exec(
                self.db.as_ptr(),
                sql.as_ptr(),
                None,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(SqliteError::of(self.db).into_catalog());
        }
        Ok(())
    }

    /// True while a transaction is open on this connection.
    pub(crate) fn in_transaction(&self) -> bool {
        // SAFETY: the connection is open.
        unsafe { ffi::sqlite3_get_autocommit(self.db.as_ptr()) == 0 }
    }

    /// Compiles `sql` (or takes it compiled from the cache) and binds `params` to it:
    /// `$n` to `params[n - 1]`, `?` in order. `sql` holds one statement. Give it back
    /// with [`Connection::give_back`] once its rows are read.
    pub(crate) fn prepare(&mut self, sql: &str, params: &[&Value]) -> Result<Statement> {
        let cached = if sql.len() <= CACHED_SQL_MAX_LEN {
            self.statements.remove_entry(sql)
        } else {
            self.long_statements
                .iter()
                .position(|(text, _)| **text == *sql)
                .map(|i| self.long_statements.remove(i))
        };
        let (key, prepared) = match cached {
            Some((key, prepared)) => (key, prepared),
            None => (sql.into(), Prepared::new(self.db, sql)?),
        };
        let statement = Statement {
            db: self.db,
            prepared: Some(prepared),
            key: Some(key),
        };
        if let Err(e) = statement.bind(params) {
            self.give_back(statement);
            return Err(e);
        }
        Ok(statement)
    }

    /// Ends a statement's run and keeps it compiled for the next.
    pub(crate) fn give_back(&mut self, mut statement: Statement) {
        let (Some(prepared), Some(key)) = (statement.prepared.take(), statement.key.take()) else {
            return;
        };
        // SAFETY: the statement is live; reset ends its run (releasing its read of the
        // database) and keeps the compiled program.
        unsafe {
            ffi::sqlite3_reset(prepared.raw.as_ptr());
            ffi::sqlite3_clear_bindings(prepared.raw.as_ptr());
        }
        if key.len() > CACHED_SQL_MAX_LEN {
            if self.long_statements.len() >= LONG_CACHE_CAPACITY {
                self.long_statements.remove(0).1.finalize();
            }
            self.long_statements.push((key, prepared));
            return;
        }
        if self.statements.len() >= CACHE_CAPACITY {
            self.statements.drain().for_each(|(_, p)| p.finalize());
        }
        if let Some(replaced) = self.statements.insert(key, prepared) {
            replaced.finalize();
        }
    }

    /// Runs `sql` with `params` bound (see [`Connection::prepare`]) and calls `on_row`
    /// for each row until the rows end or it returns `Ok(false)`. Returns the rows an
    /// `INSERT`, `UPDATE` or `DELETE` changed (for another statement, SQLite's count of the
    /// last such statement: not meaningful).
    pub(crate) fn run(
        &mut self,
        sql: &str,
        params: &[&Value],
        on_row: impl FnMut(&SqliteRowRef<'_>) -> Result<bool>,
    ) -> Result<u64> {
        let mut statement = self.prepare(sql, params)?;
        let stepped = statement.step(on_row);
        self.give_back(statement);
        stepped?;
        // SAFETY: the connection is open.
        Ok(u64::try_from(unsafe { ffi::sqlite3_changes64(self.db.as_ptr()) }).unwrap_or(0))
    }

    /// Runs `sql` and returns every row, owned.
    pub(crate) fn fetch_all(&mut self, sql: &str, params: &[&Value]) -> Result<Vec<SqliteRow>> {
        let mut rows = Vec::new();
        self.run(sql, params, |row| {
            rows.push(row.to_owned()?);
            Ok(true)
        })?;
        Ok(rows)
    }

    /// Runs a statement that returns no rows (or whose rows are not needed); returns the
    /// rows it changed.
    pub(crate) fn execute(&mut self, sql: &str, params: &[&Value]) -> Result<u64> {
        self.run(sql, params, |_| Ok(true))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for (_, prepared) in self
            .statements
            .drain()
            .chain(self.long_statements.drain(..))
        {
            prepared.finalize();
        }
        // SAFETY: every statement of the connection is finalized above (one taken out of
        // the cache is given back or dropped, which finalizes it), so the close succeeds.
        unsafe { ffi::sqlite3_close(self.db.as_ptr()) };
    }
}

impl Prepared {
    fn new(db: NonNull<ffi::sqlite3>, sql: &str) -> Result<Prepared> {
        let len = c_int::try_from(sql.len())
            .map_err(|_| CatalogError::Unsupported("statement text is too long".into()))?;
        let mut raw = ptr::null_mut();
        let mut tail = ptr::null();
        // SAFETY: `db` is open and used by this thread alone; `sql` is valid for `len`
        // bytes (no NUL terminator is needed when the length is given).
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut raw,
                &mut tail,
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(SqliteError::of(db).into_catalog());
        }
        let Some(raw) = NonNull::new(raw) else {
            return Err(CatalogError::Unsupported(format!("no statement in: {sql}")));
        };
        let prepared = Prepared {
            raw,
            columns: column_names(raw),
        };
        // One statement per text: a second one would silently not run. `tail` points
        // into `sql`, just past the compiled statement.
        let consumed = (tail as usize).saturating_sub(sql.as_ptr() as usize);
        let rest = sql.get(consumed..).unwrap_or("");
        if !rest.trim().trim_matches(';').trim().is_empty() {
            prepared.finalize();
            return Err(CatalogError::Unsupported(format!(
                "more than one statement in: {sql}"
            )));
        }
        Ok(prepared)
    }

    fn finalize(self) {
        // SAFETY: finalized exactly once (`self` is consumed).
        unsafe { ffi::sqlite3_finalize(self.raw.as_ptr()) };
    }
}

fn column_names(raw: NonNull<ffi::sqlite3_stmt>) -> Arc<[Box<str>]> {
    // SAFETY: the statement is live; names are NUL-terminated and copied at once.
    unsafe {
        let count = ffi::sqlite3_column_count(raw.as_ptr());
        (0..count)
            .map(|i| {
                let name = ffi::sqlite3_column_name(raw.as_ptr(), i);
                if name.is_null() {
                    Box::from("")
                } else {
                    Box::from(CStr::from_ptr(name).to_string_lossy().as_ref())
                }
            })
            .collect()
    }
}

/// A compiled, bound statement taken out of its connection to be stepped, possibly over
/// several calls (a scan). Given back to the connection ([`Connection::give_back`]) it is
/// kept for the next run; dropped, it is finalized. Either must happen while its
/// connection is open.
pub(crate) struct Statement {
    db: NonNull<ffi::sqlite3>,
    prepared: Option<Prepared>,
    /// Its text, the cache key; taken when it is given back.
    key: Option<Box<str>>,
}

// SAFETY: like its connection, used by one thread at a time (`&mut self` to step).
unsafe impl Send for Statement {}

impl Statement {
    /// Steps the statement, calling `on_row` for each row until it returns `Ok(false)`
    /// (the statement stays on that row, to go on from) or the rows end. Returns whether
    /// they ended.
    pub(crate) fn step(
        &mut self,
        mut on_row: impl FnMut(&SqliteRowRef<'_>) -> Result<bool>,
    ) -> Result<bool> {
        loop {
            // SAFETY: the statement is live, bound, and used by this thread alone.
            match unsafe { ffi::sqlite3_step(self.raw()) } {
                ffi::SQLITE_ROW => {
                    if !on_row(&self.row())? {
                        return Ok(false);
                    }
                }
                ffi::SQLITE_DONE => return Ok(true),
                _ => return Err(SqliteError::of(self.db).into_catalog()),
            }
        }
    }

    fn prepared(&self) -> &Prepared {
        self.prepared.as_ref().expect("present until given back")
    }

    fn raw(&self) -> *mut ffi::sqlite3_stmt {
        self.prepared().raw.as_ptr()
    }

    fn row(&self) -> SqliteRowRef<'_> {
        let prepared = self.prepared();
        SqliteRowRef::new(self.db, prepared.raw, &prepared.columns)
    }

    /// Binds `$n` to `params[n - 1]` and each `?` to the next value in order.
    fn bind(&self, params: &[&Value]) -> Result<()> {
        let stmt = self.raw();
        // SAFETY: the statement is live and reset; names SQLite returns are NUL-terminated
        // and live as long as the statement; SQLITE_TRANSIENT makes SQLite copy the text.
        unsafe {
            let count = ffi::sqlite3_bind_parameter_count(stmt);
            for i in 1..=count {
                let name = ffi::sqlite3_bind_parameter_name(stmt, i);
                let index = if name.is_null() {
                    Some(i as usize)
                } else {
                    CStr::from_ptr(name)
                        .to_str()
                        .ok()
                        .and_then(|n| n.strip_prefix('$'))
                        .and_then(|n| n.parse::<usize>().ok())
                };
                let Some(value) = index
                    .and_then(|n| n.checked_sub(1))
                    .and_then(|n| params.get(n))
                else {
                    return Err(CatalogError::Unsupported(format!(
                        "statement parameter {i} has no value among {} given",
                        params.len()
                    )));
                };
                let list = value.json_list();
                let rc = match value {
                    Value::Text(Some(text)) => bind_text(stmt, i, text)?,
                    Value::TextList(_) | Value::IntList(_) => {
                        bind_text(stmt, i, list.as_deref().unwrap_or("[]"))?
                    }
                    Value::Int(Some(v)) => ffi::sqlite3_bind_int64(stmt, i, *v),
                    Value::Text(None) | Value::Int(None) => ffi::sqlite3_bind_null(stmt, i),
                };
                if rc != ffi::SQLITE_OK {
                    return Err(SqliteError::of(self.db).into_catalog());
                }
            }
        }
        Ok(())
    }
}

/// Binds `text` to parameter `i` of `stmt` (SQLite copies it).
///
/// # Safety
/// `stmt` must be a live statement.
unsafe fn bind_text(stmt: *mut ffi::sqlite3_stmt, i: c_int, text: &str) -> Result<c_int> {
    let len = c_int::try_from(text.len())
        .map_err(|_| CatalogError::invalid("value", "text too long for SQLite"))?;
    // SAFETY: per the contract; SQLITE_TRANSIENT makes SQLite copy the text.
    Ok(unsafe {
        ffi::sqlite3_bind_text(stmt, i, text.as_ptr().cast(), len, ffi::SQLITE_TRANSIENT())
    })
}

impl Drop for Statement {
    fn drop(&mut self) {
        if let Some(prepared) = self.prepared.take() {
            prepared.finalize();
        }
    }
}
