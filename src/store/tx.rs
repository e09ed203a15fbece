//! The transaction handed to catalog operations.
//!
//! A [`Tx`] only exists inside [`Store::transaction`](super::Store::transaction)'s closure:
//! it cannot escape, and the store commits or rolls it back. It carries the session's
//! scope, and every write states the owner of the row it touches so the transaction can
//! refuse a write outside its scope (SPEC §2, defence in depth).

use sqlx::{Postgres, SqlSafeStr, Sqlite};

use super::Backend;
use super::value::{DbRow, Value, bind_postgres, bind_sqlite};
use crate::error::{CatalogError, Result};
use crate::tenant::{Scope, owner_of};

pub(super) enum TxConn {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// An open database transaction bound to a scope.
pub struct Tx {
    pub(super) conn: TxConn,
    pub(super) scope: Scope,
    pub(super) read_only: bool,
}

impl Tx {
    /// The scope the transaction acts for.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The `owner` column value of rows this transaction may write.
    pub(crate) fn owner(&self) -> String {
        owner_of(self.scope)
    }

    /// Which database this transaction runs on.
    pub fn backend(&self) -> Backend {
        match self.conn {
            TxConn::Sqlite(_) => Backend::Sqlite,
            TxConn::Postgres(_) => Backend::Postgres,
        }
    }

    /// Picks the statement written for this backend, where the dialects differ.
    pub(crate) fn dialect(&self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match self.backend() {
            Backend::Sqlite => sqlite,
            Backend::Postgres => postgres,
        }
    }

    /// Runs a read and returns every row.
    pub(crate) async fn fetch_all(
        &mut self,
        sql: impl SqlSafeStr,
        args: &[Value],
    ) -> Result<Vec<DbRow>> {
        Ok(match &mut self.conn {
            TxConn::Sqlite(tx) => bind_sqlite(sqlx::query(sql), args)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(DbRow::Sqlite)
                .collect(),
            TxConn::Postgres(tx) => bind_postgres(sqlx::query(sql), args)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(DbRow::Postgres)
                .collect(),
        })
    }

    /// Runs a read that matches at most one row; several rows are an error, not "take one".
    pub(crate) async fn fetch_optional(
        &mut self,
        sql: impl SqlSafeStr,
        args: &[Value],
    ) -> Result<Option<DbRow>> {
        at_most_one(self.fetch_all(sql, args).await?)
    }

    /// Runs a read that matches exactly one row.
    pub(crate) async fn fetch_one(
        &mut self,
        sql: impl SqlSafeStr,
        args: &[Value],
    ) -> Result<DbRow> {
        self.fetch_optional(sql, args)
            .await?
            .ok_or_else(|| CatalogError::Database(sqlx::Error::RowNotFound))
    }

    /// Runs a write (INSERT, UPDATE, DELETE) scoped to the transaction's owner: the
    /// statement must bind the owner value (`owner = $n`, or the owner of a new row), which
    /// is checked before it runs. Returns the number of rows affected.
    pub(crate) async fn write(&mut self, sql: impl SqlSafeStr, args: &[Value]) -> Result<u64> {
        self.assert_may_write(args)?;
        self.execute_unchecked(sql, args).await
    }

    /// Like [`Tx::write`], for a statement with `RETURNING` that includes the `owner`
    /// column: every returned row is checked to belong to the transaction's owner, and a
    /// row of another owner fails the transaction (it rolls back).
    pub(crate) async fn write_returning(
        &mut self,
        sql: impl SqlSafeStr,
        args: &[Value],
    ) -> Result<Vec<DbRow>> {
        self.assert_may_write(args)?;
        let rows = self.fetch_all(sql, args).await?;
        let owner = self.owner();
        for row in &rows {
            if row.text("owner")? != owner {
                return Err(CatalogError::TenantMismatch { scope: self.scope });
            }
        }
        Ok(rows)
    }

    async fn execute_unchecked(&mut self, sql: impl SqlSafeStr, args: &[Value]) -> Result<u64> {
        Ok(match &mut self.conn {
            TxConn::Sqlite(tx) => bind_sqlite(sqlx::query(sql), args)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            TxConn::Postgres(tx) => bind_postgres(sqlx::query(sql), args)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        })
    }

    /// Runs a set-based load that writes rows of many owners at once (fixtures only).
    pub(crate) async fn bulk_load(&mut self, sql: &'static str, args: &[Value]) -> Result<u64> {
        self.execute_unchecked(sql, args).await
    }

    /// Runs DDL or bookkeeping that belongs to no tenant (migrations only).
    pub(super) async fn execute_unscoped(
        &mut self,
        sql: &'static str,
        args: &[Value],
    ) -> Result<u64> {
        self.execute_unchecked(sql, args).await
    }

    fn assert_may_write(&self, args: &[Value]) -> Result<()> {
        if self.read_only {
            return Err(CatalogError::Unsupported(
                "write attempted in a read-only transaction".into(),
            ));
        }
        let owner = Value::Text(Some(self.owner()));
        if !args.contains(&owner) {
            return Err(CatalogError::TenantMismatch { scope: self.scope });
        }
        Ok(())
    }
}

pub(super) fn at_most_one(mut rows: Vec<DbRow>) -> Result<Option<DbRow>> {
    match rows.len() {
        0 => Ok(None),
        1 => Ok(rows.pop()),
        n => Err(CatalogError::Database(sqlx::Error::Protocol(format!(
            "expected at most one row, the query matched {n}"
        )))),
    }
}
