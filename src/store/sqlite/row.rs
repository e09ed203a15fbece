//! Rows of a SQLite statement: the current row in place (scans), or copied out (reads and
//! `RETURNING` of the catalog's operations).

use std::ffi::c_int;
use std::ptr::NonNull;
use std::sync::Arc;

use libsqlite3_sys as ffi;

use super::error::SqliteError;
use crate::error::{CatalogError, Result};
use crate::store::value::RowValues;

/// The current row of a running statement; valid only inside the `on_row` call that
/// receives it, before the next step.
pub(crate) struct SqliteRowRef<'s> {
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
    columns: &'s Arc<[Box<str>]>,
}

impl<'s> SqliteRowRef<'s> {
    pub(super) fn new(
        db: NonNull<ffi::sqlite3>,
        stmt: NonNull<ffi::sqlite3_stmt>,
        columns: &'s Arc<[Box<str>]>,
    ) -> Self {
        SqliteRowRef { db, stmt, columns }
    }

    /// The storage class of column `i`, which must exist.
    fn column_type(&self, i: usize) -> Result<c_int> {
        if i >= self.columns.len() {
            return Err(CatalogError::TypeConversion {
                column: format!("#{i}"),
                detail: format!("the row has {} columns", self.columns.len()),
            });
        }
        // SAFETY: the statement is on a row and `i` is one of its columns.
        Ok(unsafe { ffi::sqlite3_column_type(self.stmt.as_ptr(), i as c_int) })
    }

    /// The raw bytes of a TEXT or BLOB column `i`.
    fn bytes(&self, i: usize) -> Result<&[u8]> {
        let stmt = self.stmt.as_ptr();
        // SAFETY: text first, then its length in bytes, as SQLite documents. The bytes
        // stay valid until the next step; the borrow is tied to this row, which exists
        // only during one `on_row` call, before that step.
        unsafe {
            let text = ffi::sqlite3_column_text(stmt, i as c_int);
            if text.is_null() {
                // A value without bytes: empty, or SQLite ran out of memory.
                return match ffi::sqlite3_errcode(self.db.as_ptr()) {
                    ffi::SQLITE_NOMEM => Err(SqliteError::of(self.db).into_catalog()),
                    _ => Ok(&[]),
                };
            }
            let len = ffi::sqlite3_column_bytes(stmt, i as c_int);
            Ok(std::slice::from_raw_parts(
                text,
                usize::try_from(len).unwrap_or(0),
            ))
        }
    }

    /// Copies the row out, to outlive the statement's next step.
    pub(crate) fn to_owned(&self) -> Result<SqliteRow> {
        let values = (0..self.columns.len())
            .map(|i| {
                Ok(match self.column_type(i)? {
                    ffi::SQLITE_NULL => Owned::Null,
                    ffi::SQLITE_INTEGER => Owned::Int(self.int_at(i)?.unwrap_or_default()),
                    ffi::SQLITE_TEXT => Owned::Text(self.str_at(i)?.unwrap_or_default().into()),
                    // The catalog stores no reals or blobs: only the kind is kept, to name it
                    // in an error.
                    other => Owned::Other(storage_class(other)),
                })
            })
            .collect::<Result<_>>()?;
        Ok(SqliteRow {
            columns: Arc::clone(self.columns),
            values,
        })
    }
}

fn mismatch(column: String, wanted: &str, found: &str) -> CatalogError {
    CatalogError::TypeConversion {
        column,
        detail: format!("expected {wanted}, found {found}"),
    }
}

fn storage_class(code: c_int) -> &'static str {
    match code {
        ffi::SQLITE_NULL => "NULL",
        ffi::SQLITE_INTEGER => "an integer",
        ffi::SQLITE_FLOAT => "a real",
        ffi::SQLITE_TEXT => "text",
        _ => "a blob",
    }
}

impl RowValues for SqliteRowRef<'_> {
    fn str_at(&self, i: usize) -> Result<Option<&str>> {
        match self.column_type(i)? {
            ffi::SQLITE_NULL => Ok(None),
            ffi::SQLITE_TEXT => std::str::from_utf8(self.bytes(i)?).map(Some).map_err(|e| {
                CatalogError::TypeConversion {
                    column: format!("#{i}"),
                    detail: e.to_string(),
                }
            }),
            other => Err(mismatch(format!("#{i}"), "text", storage_class(other))),
        }
    }

    fn int_at(&self, i: usize) -> Result<Option<i64>> {
        match self.column_type(i)? {
            ffi::SQLITE_NULL => Ok(None),
            // SAFETY: the statement is on a row and `i` is one of its columns.
            ffi::SQLITE_INTEGER => Ok(Some(unsafe {
                ffi::sqlite3_column_int64(self.stmt.as_ptr(), i as c_int)
            })),
            other => Err(mismatch(
                format!("#{i}"),
                "an integer",
                storage_class(other),
            )),
        }
    }
}

/// One value copied out of a row.
#[derive(Clone, Debug)]
enum Owned {
    Null,
    Int(i64),
    Text(Box<str>),
    /// A real or a blob, by its storage class.
    Other(&'static str),
}

impl Owned {
    fn class(&self) -> &'static str {
        match self {
            Owned::Null => "NULL",
            Owned::Int(_) => "an integer",
            Owned::Text(_) => "text",
            Owned::Other(class) => class,
        }
    }
}

/// A row copied out of a SQLite statement, read by column name or position.
#[derive(Clone, Debug)]
pub struct SqliteRow {
    columns: Arc<[Box<str>]>,
    values: Vec<Owned>,
}

impl SqliteRow {
    fn value(&self, column: &str) -> Result<&Owned> {
        self.columns
            .iter()
            .position(|c| &**c == column)
            .map(|i| &self.values[i])
            .ok_or_else(|| CatalogError::TypeConversion {
                column: column.to_owned(),
                detail: "no such column in the row".into(),
            })
    }

    fn at(&self, i: usize) -> Result<&Owned> {
        self.values
            .get(i)
            .ok_or_else(|| CatalogError::TypeConversion {
                column: format!("#{i}"),
                detail: format!("the row has {} columns", self.values.len()),
            })
    }

    /// A nullable text column.
    pub(crate) fn opt_text(&self, column: &str) -> Result<Option<&str>> {
        text_of(self.value(column)?, || column.to_owned())
    }

    /// A nullable integer column.
    pub(crate) fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        int_of(self.value(column)?, || column.to_owned())
    }

    /// The text at position `i`.
    pub(crate) fn str_at(&self, i: usize) -> Result<Option<&str>> {
        text_of(self.at(i)?, || format!("#{i}"))
    }

    /// The integer at position `i`.
    pub(crate) fn int_at(&self, i: usize) -> Result<Option<i64>> {
        int_of(self.at(i)?, || format!("#{i}"))
    }
}

fn text_of(value: &Owned, column: impl FnOnce() -> String) -> Result<Option<&str>> {
    match value {
        Owned::Null => Ok(None),
        Owned::Text(t) => Ok(Some(t)),
        other => Err(mismatch(column(), "text", other.class())),
    }
}

fn int_of(value: &Owned, column: impl FnOnce() -> String) -> Result<Option<i64>> {
    match value {
        Owned::Null => Ok(None),
        Owned::Int(v) => Ok(Some(*v)),
        other => Err(mismatch(column(), "an integer", other.class())),
    }
}
