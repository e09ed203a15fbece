//! SQLite through its C API with nothing in between: the floor the catalog's SQLite
//! figures are measured against (SPEC §10). Statements are compiled once and reused, as a
//! C program would; the connection has the catalog's settings.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_int};
use std::ptr;

use libsqlite3_sys as ffi;

/// One bind value.
pub enum P<'a> {
    T(&'a str),
    I(i64),
    Null,
}

/// A connection and its compiled statements, keyed by their text.
pub struct CApi {
    db: *mut ffi::sqlite3,
    statements: HashMap<&'static str, *mut ffi::sqlite3_stmt>,
}

// SAFETY: used by one thread at a time (the benchmark's), opened without SQLite's mutex.
unsafe impl Send for CApi {}

impl CApi {
    /// Opens the database file behind a `sqlite://PATH` URL.
    pub fn open(url: &str) -> CApi {
        let path = CString::new(url.trim_start_matches("sqlite://")).unwrap();
        let mut db = ptr::null_mut();
        let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_NOMUTEX;
        // SAFETY: a NUL-terminated path; the handle is checked below.
        let rc = unsafe { ffi::sqlite3_open_v2(path.as_ptr(), &mut db, flags, ptr::null()) };
        assert_eq!(rc, ffi::SQLITE_OK, "open {url}");
        let mut conn = CApi {
            db,
            statements: HashMap::new(),
        };
        // SAFETY: the connection is open.
        unsafe { ffi::sqlite3_busy_timeout(db, 30_000) };
        for pragma in [
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA foreign_keys = ON",
            "PRAGMA case_sensitive_like = ON",
            "PRAGMA cache_size = -32768",
            "PRAGMA temp_store = MEMORY",
        ] {
            conn.run(pragma, &[], |_| {});
        }
        conn
    }

    /// Runs `sql` with `$n` bound to `params[n - 1]` (or `?` in order) and calls `on_row`
    /// with the statement on each row; returns the number of rows.
    pub fn run(
        &mut self,
        sql: &'static str,
        params: &[P<'_>],
        mut on_row: impl FnMut(*mut ffi::sqlite3_stmt),
    ) -> usize {
        let db = self.db;
        let stmt = *self.statements.entry(sql).or_insert_with(|| {
            let mut stmt = ptr::null_mut();
            // SAFETY: the connection is open; the text is valid for its length.
            let rc = unsafe {
                ffi::sqlite3_prepare_v3(
                    db,
                    sql.as_ptr().cast(),
                    sql.len() as c_int,
                    ffi::SQLITE_PREPARE_PERSISTENT,
                    &mut stmt,
                    ptr::null_mut(),
                )
            };
            assert_eq!(rc, ffi::SQLITE_OK, "{}: {sql}", errmsg(db));
            stmt
        });
        // SAFETY: the statement is live and used by this thread alone; names are
        // NUL-terminated; SQLITE_TRANSIENT copies the text.
        unsafe {
            for i in 1..=ffi::sqlite3_bind_parameter_count(stmt) {
                let name = ffi::sqlite3_bind_parameter_name(stmt, i);
                let n = if name.is_null() {
                    i as usize
                } else {
                    CStr::from_ptr(name).to_str().unwrap()[1..].parse().unwrap()
                };
                match &params[n - 1] {
                    P::T(t) => ffi::sqlite3_bind_text(
                        stmt,
                        i,
                        t.as_ptr().cast(),
                        t.len() as c_int,
                        ffi::SQLITE_TRANSIENT(),
                    ),
                    P::I(v) => ffi::sqlite3_bind_int64(stmt, i, *v),
                    P::Null => ffi::sqlite3_bind_null(stmt, i),
                };
            }
            let mut rows = 0;
            loop {
                match ffi::sqlite3_step(stmt) {
                    ffi::SQLITE_ROW => {
                        rows += 1;
                        on_row(stmt);
                    }
                    ffi::SQLITE_DONE => break,
                    _ => panic!("{}: {sql}", errmsg(db)),
                }
            }
            ffi::sqlite3_reset(stmt);
            ffi::sqlite3_clear_bindings(stmt);
            rows
        }
    }

    /// The integer in column `i` of the first row of `sql`.
    pub fn int(&mut self, sql: &'static str, params: &[P<'_>], i: c_int) -> i64 {
        let mut value = 0;
        // SAFETY: called on a row of the statement.
        self.run(sql, params, |stmt| {
            value = unsafe { ffi::sqlite3_column_int64(stmt, i) }
        });
        value
    }
}

impl Drop for CApi {
    fn drop(&mut self) {
        // SAFETY: each statement finalized once, then the connection closed.
        unsafe {
            for (_, stmt) in self.statements.drain() {
                ffi::sqlite3_finalize(stmt);
            }
            ffi::sqlite3_close(self.db);
        }
    }
}

/// Every column of the current row copied out, text as `String`, as a program that
/// hands the row on would.
pub fn row_values(stmt: *mut ffi::sqlite3_stmt) -> Vec<Option<String>> {
    // SAFETY: called on a row of a live statement.
    unsafe {
        (0..ffi::sqlite3_column_count(stmt))
            .map(|i| match ffi::sqlite3_column_type(stmt, i) {
                ffi::SQLITE_NULL => None,
                ffi::SQLITE_INTEGER => Some(ffi::sqlite3_column_int64(stmt, i).to_string()),
                _ => Some(column_str(stmt, i).to_owned()),
            })
            .collect()
    }
}

/// The text of column `i` of the current row, borrowed until the next step.
///
/// # Safety
/// `stmt` is on a row and `i` is one of its columns.
pub unsafe fn column_str<'a>(stmt: *mut ffi::sqlite3_stmt, i: c_int) -> &'a str {
    // SAFETY: as the caller promises; text first, then its length.
    unsafe {
        let text = ffi::sqlite3_column_text(stmt, i);
        if text.is_null() {
            return "";
        }
        let len = ffi::sqlite3_column_bytes(stmt, i) as usize;
        std::str::from_utf8(std::slice::from_raw_parts(text, len)).unwrap()
    }
}

fn errmsg(db: *mut ffi::sqlite3) -> String {
    // SAFETY: the connection is open; the message is copied at once.
    unsafe {
        CStr::from_ptr(ffi::sqlite3_errmsg(db))
            .to_string_lossy()
            .into_owned()
    }
}
