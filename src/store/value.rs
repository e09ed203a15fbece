//! Bind values and rows, the same for both backends.
//!
//! Every value reaches the database as a bind parameter (SPEC §5). A NULL keeps its type
//! (`Text(None)` binds a NULL text, `Int(None)` a NULL bigint), which Postgres needs.

use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row};

use super::sqlite::SqliteRow;

use crate::error::{CatalogError, Result};

/// One bind parameter. Serializable, for scans shipped to other processes (`sql::wire`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Value {
    /// A text value, or a NULL text.
    Text(Option<String>),
    /// A 64-bit integer, or a NULL bigint.
    Int(Option<i64>),
    /// A list of texts, bound as one parameter: a `text[]` on Postgres, a JSON array on
    /// SQLite (read there with `json_each`). Used for the keys a join pushes into a scan.
    TextList(Vec<String>),
    /// A list of integers, bound as one parameter like [`Value::TextList`].
    IntList(Vec<i64>),
}

impl Value {
    /// The value as SQLite binds it: lists as the text of a JSON array.
    pub(crate) fn json_list(&self) -> Option<String> {
        match self {
            Value::TextList(v) => serde_json::to_string(v).ok(),
            Value::IntList(v) => serde_json::to_string(v).ok(),
            Value::Text(_) | Value::Int(_) => None,
        }
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_owned()))
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(Some(v.clone()))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v))
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(str::to_owned))
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        Value::Text(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(Some(i64::from(v)))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}
impl From<Option<i32>> for Value {
    fn from(v: Option<i32>) -> Self {
        Value::Int(v.map(i64::from))
    }
}

/// Builds an array of [`Value`]s from anything convertible:
/// `args![name, version, None::<String>]`.
macro_rules! args {
    ($($v:expr),* $(,)?) => {
        [$($crate::store::Value::from($v)),*]
    };
}
pub(crate) use args;

/// A query that bind values can be added to, on either backend.
pub(crate) trait Bind: Sized {
    /// Binds one value.
    fn bind_value(self, value: &Value) -> Self;
    /// Binds a row owner (see `Tx`).
    fn bind_owner(self, owner: &str) -> Self;
}

macro_rules! impl_bind {
    ($db:ty, $args:ty) => {
        impl<'q> Bind for sqlx::query::Query<'q, $db, $args> {
            fn bind_value(self, value: &Value) -> Self {
                match value {
                    Value::Text(v) => self.bind(v.clone()),
                    Value::Int(v) => self.bind(*v),
                    Value::TextList(v) => self.bind(v.clone()),
                    Value::IntList(v) => self.bind(v.clone()),
                }
            }

            fn bind_owner(self, owner: &str) -> Self {
                self.bind(owner.to_owned())
            }
        }
    };
}
impl_bind!(Postgres, sqlx::postgres::PgArguments);

pub(crate) fn bind_postgres<'q>(
    mut query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    args: &[Value],
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    for arg in args {
        query = query.bind_value(arg);
    }
    query
}

/// Positional access to the values of a row being scanned, whichever way it was read.
pub(crate) trait RowValues {
    /// The text at position `i`, borrowed from the row.
    fn str_at(&self, i: usize) -> Result<Option<&str>>;
    /// The integer at position `i`.
    fn int_at(&self, i: usize) -> Result<Option<i64>>;
}

impl RowValues for DbRow {
    fn str_at(&self, i: usize) -> Result<Option<&str>> {
        DbRow::str_at(self, i)
    }

    fn int_at(&self, i: usize) -> Result<Option<i64>> {
        DbRow::int_at(self, i)
    }
}

/// A row read from either backend, with typed getters that name the column on failure.
pub enum DbRow {
    /// A SQLite row (read through SQLite's C API, see `store::sqlite`).
    Sqlite(SqliteRow),
    /// A Postgres row.
    Postgres(PgRow),
}

fn conversion(column: String, error: impl std::fmt::Display) -> CatalogError {
    CatalogError::TypeConversion {
        column,
        detail: error.to_string(),
    }
}

fn non_null<T>(column: &str, value: Option<T>) -> Result<T> {
    value.ok_or_else(|| conversion(column.to_owned(), "unexpected NULL"))
}

impl DbRow {
    /// A non-NULL text column.
    pub fn text(&self, col: &str) -> Result<String> {
        non_null(col, self.opt_text(col)?)
    }

    /// A nullable text column.
    pub fn opt_text(&self, col: &str) -> Result<Option<String>> {
        match self {
            DbRow::Sqlite(r) => Ok(r.opt_text(col)?.map(str::to_owned)),
            DbRow::Postgres(r) => r
                .try_get::<Option<String>, _>(col)
                .map_err(|e| conversion(col.to_owned(), e)),
        }
    }

    /// A non-NULL integer column.
    pub fn int(&self, col: &str) -> Result<i64> {
        non_null(col, self.opt_int(col)?)
    }

    /// A nullable integer column.
    pub fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        match self {
            DbRow::Sqlite(r) => r.opt_int(col),
            DbRow::Postgres(r) => r
                .try_get::<Option<i64>, _>(col)
                .map_err(|e| conversion(col.to_owned(), e)),
        }
    }

    /// A boolean (Postgres `boolean`, SQLite integer 0/1).
    pub fn bool(&self, col: &str) -> Result<bool> {
        match self {
            DbRow::Sqlite(r) => Ok(non_null(col, r.opt_int(col)?)? != 0),
            DbRow::Postgres(r) => r
                .try_get::<bool, _>(col)
                .map_err(|e| conversion(col.to_owned(), e)),
        }
    }

    /// The text at position `i`, borrowed from the row (no copy on the scan path).
    pub fn str_at(&self, i: usize) -> Result<Option<&str>> {
        match self {
            DbRow::Sqlite(r) => r.str_at(i),
            DbRow::Postgres(r) => r
                .try_get::<Option<&str>, _>(i)
                .map_err(|e| conversion(format!("#{i}"), e)),
        }
    }

    /// The integer at position `i`.
    pub fn int_at(&self, i: usize) -> Result<Option<i64>> {
        match self {
            DbRow::Sqlite(r) => r.int_at(i),
            DbRow::Postgres(r) => r
                .try_get::<Option<i64>, _>(i)
                .map_err(|e| conversion(format!("#{i}"), e)),
        }
    }

    /// An integer column that must fit an `i32` (versions).
    pub fn int32(&self, col: &str) -> Result<i32> {
        let v = self.int(col)?;
        i32::try_from(v).map_err(|_| CatalogError::TypeConversion {
            column: col.to_owned(),
            detail: format!("{v} does not fit a 32-bit integer"),
        })
    }

    /// A nullable integer column that must fit an `i32`.
    pub fn opt_int32(&self, col: &str) -> Result<Option<i32>> {
        match self.opt_int(col)? {
            None => Ok(None),
            Some(v) => i32::try_from(v)
                .map(Some)
                .map_err(|_| CatalogError::TypeConversion {
                    column: col.to_owned(),
                    detail: format!("{v} does not fit a 32-bit integer"),
                }),
        }
    }
}
