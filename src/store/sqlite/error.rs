//! SQLite's errors, in the shape of sqlx's database errors.

use std::borrow::Cow;
use std::ffi::CStr;
use std::ptr::NonNull;

use libsqlite3_sys as ffi;
use sqlx::error::{DatabaseError, ErrorKind};

use crate::error::CatalogError;

/// An error SQLite reported, as a sqlx database error so that it reads and classifies
/// like every other SQLite error of the catalog (extended result code as its code).
#[derive(Debug)]
pub(crate) struct SqliteError {
    code: String,
    message: String,
}

impl SqliteError {
    pub(crate) fn of(db: NonNull<ffi::sqlite3>) -> SqliteError {
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

    pub(crate) fn into_catalog(self) -> CatalogError {
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
        match self.code.as_str() {
            "1555" | "2067" => ErrorKind::UniqueViolation,
            "787" => ErrorKind::ForeignKeyViolation,
            "1299" => ErrorKind::NotNullViolation,
            "275" => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

impl SqliteError {
    /// SQLITE_BUSY for a wait that the store itself gave up on (the in-process writer
    /// turn), so that it reads and retries like SQLite's own busy result.
    pub(crate) fn busy(detail: &str) -> CatalogError {
        SqliteError {
            code: ffi::SQLITE_BUSY.to_string(),
            message: format!("database is locked ({detail})"),
        }
        .into_catalog()
    }
}
