//! The transaction handed to catalog operations.
//!
//! A [`Tx`] only exists inside [`Store::transaction`](super::Store::transaction)'s closure:
//! it cannot escape, and the store commits or rolls it back. It carries the session's
//! scope, and binds that scope's owner into every write itself: a write statement's owner
//! column or owner predicate is a placeholder no caller fills (see [`super::owned`]), so a
//! write outside the scope cannot be expressed (SPEC §2, defence in depth).

use sqlx::{Postgres, SqlSafeStr};

use super::Backend;
use super::owned::{self, OwnedWrite, OwnerParam};
use super::sqlite::SqliteTx;
use super::value::{Bind, DbRow, Value, bind_postgres};
use crate::access::{Access, Grant};
use crate::error::{CatalogError, Result};
use crate::tenant::Scope;

pub(super) enum TxConn {
    Sqlite(SqliteTx),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// An open database transaction bound to a scope and an access level.
pub struct Tx {
    pub(super) conn: TxConn,
    /// Whose rows it may write, and which writes it may make (SPEC §2, §14).
    pub(super) grant: Grant,
    pub(super) read_only: bool,
    /// The `owner` value of [`Tx::scope`], bound into every write.
    pub(super) owner: String,
}

impl Tx {
    /// The scope the transaction acts for.
    pub fn scope(&self) -> Scope {
        self.grant.scope
    }

    /// The `owner` column value of rows this transaction may write.
    pub(crate) fn owner(&self) -> String {
        self.owner.clone()
    }

    /// Which database this transaction runs on.
    pub fn backend(&self) -> Backend {
        match self.conn {
            TxConn::Sqlite(_) => Backend::Sqlite,
            TxConn::Postgres(_) => Backend::Postgres,
        }
    }

    /// Picks the statement written for this backend, where the dialects differ.
    pub(crate) fn dialect<T>(&self, sqlite: T, postgres: T) -> T {
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
            TxConn::Sqlite(tx) => {
                let params: Vec<&Value> = args.iter().collect();
                tx.fetch_all(sql.into_sql_str().as_str(), &params)?
                    .into_iter()
                    .map(DbRow::Sqlite)
                    .collect()
            }
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

    /// Runs a write (INSERT, UPDATE, DELETE) on rows of the transaction's owner: `$1` is
    /// the row's owner, bound here (the statement's shape puts it in the owner column or
    /// the owner predicate, see [`OwnedWrite`]); `args` are `$2`, `$3`, … Returns the
    /// number of rows affected.
    pub(crate) async fn write(&mut self, stmt: &OwnedWrite, args: &[Value]) -> Result<u64> {
        self.assert_writable(stmt.access())?;
        self.execute_owned(stmt.sql(), Layout::Numbered, args).await
    }

    /// Like [`Tx::write`], for a statement with `RETURNING` that includes the `owner`
    /// column: every returned row is checked to belong to the transaction's owner, and a
    /// row of another owner fails the transaction (it rolls back).
    pub(crate) async fn write_returning(
        &mut self,
        stmt: &OwnedWrite,
        args: &[Value],
    ) -> Result<Vec<DbRow>> {
        self.assert_writable(stmt.access())?;
        self.fetch_owned(stmt.sql(), Layout::Numbered, args).await
    }

    /// [`Tx::write_built`] for a statement with `RETURNING` that includes the `owner`
    /// column, checked as [`Tx::write_returning`] checks it.
    pub(crate) async fn write_built_returning(
        &mut self,
        sql: String,
        owner: OwnerParam,
        args: &[Value],
    ) -> Result<Vec<DbRow>> {
        let layout = self.built_layout(&sql, owner, args)?;
        // Audited: `check` accepted the text, whose values all travel as binds.
        self.fetch_owned(sqlx::AssertSqlSafe(sql), layout, args)
            .await
    }

    async fn fetch_owned(
        &mut self,
        sql: impl SqlSafeStr,
        layout: Layout,
        args: &[Value],
    ) -> Result<Vec<DbRow>> {
        let Tx { conn, owner, .. } = self;
        let rows: Vec<DbRow> = match conn {
            TxConn::Sqlite(tx) => {
                let owner = Value::from(owner.as_str());
                let params = owned_params(&owner, layout, args);
                tx.fetch_all(sql.into_sql_str().as_str(), &params)?
                    .into_iter()
                    .map(DbRow::Sqlite)
                    .collect()
            }
            TxConn::Postgres(tx) => bind_owned(sqlx::query(sql), owner, layout, args)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(DbRow::Postgres)
                .collect(),
        };
        for row in &rows {
            if row.text("owner")? != self.owner {
                return Err(CatalogError::TenantMismatch {
                    scope: self.scope(),
                });
            }
        }
        Ok(rows)
    }

    /// Runs a write statement built at run time (a multi-row upsert, a SQL `DELETE`),
    /// whose owner is bound at `owner`. The statement is checked as [`OwnedWrite`]
    /// constants are when the crate compiles; one that fails answers
    /// [`CatalogError::TenantMismatch`] and does not run. Returns the rows affected.
    pub(crate) async fn write_built(
        &mut self,
        sql: String,
        owner: OwnerParam,
        args: &[Value],
    ) -> Result<u64> {
        let layout = self.built_layout(&sql, owner, args)?;
        // Audited: `check` accepted the text, whose values all travel as binds.
        self.execute_owned(sqlx::AssertSqlSafe(sql), layout, args)
            .await
    }

    /// Checks a statement built at run time (see [`Tx::write_built`]) and where its owner
    /// goes among the binds; refuses it when the transaction may not write, or its grant
    /// does not allow what the statement does.
    fn built_layout(&self, sql: &str, owner: OwnerParam, args: &[Value]) -> Result<Layout> {
        let mismatch = CatalogError::TenantMismatch {
            scope: self.scope(),
        };
        let Ok(shape) = owned::check(sql, owner) else {
            return Err(mismatch);
        };
        self.assert_writable(shape.access)?;
        Ok(match owner {
            OwnerParam::Numbered => Layout::Numbered,
            OwnerParam::RowHead => {
                // The caller's values fill every row but its owner, row after row.
                let per_row = shape.width - 1;
                if args.len() != shape.rows * per_row {
                    return Err(mismatch);
                }
                Layout::RowHead {
                    rows: shape.rows,
                    per_row,
                }
            }
        })
    }

    async fn execute_owned(
        &mut self,
        sql: impl SqlSafeStr,
        layout: Layout,
        args: &[Value],
    ) -> Result<u64> {
        let Tx { conn, owner, .. } = self;
        Ok(match conn {
            TxConn::Sqlite(tx) => {
                let owner = Value::from(owner.as_str());
                let params = owned_params(&owner, layout, args);
                tx.execute(sql.into_sql_str().as_str(), &params)?
            }
            TxConn::Postgres(tx) => bind_owned(sqlx::query(sql), owner, layout, args)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        })
    }

    async fn execute_unchecked(&mut self, sql: impl SqlSafeStr, args: &[Value]) -> Result<u64> {
        Ok(match &mut self.conn {
            TxConn::Sqlite(tx) => {
                let params: Vec<&Value> = args.iter().collect();
                tx.execute(sql.into_sql_str().as_str(), &params)?
            }
            TxConn::Postgres(tx) => bind_postgres(sqlx::query(sql), args)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        })
    }

    /// Runs a write to the operator's API tokens (`tokens.rs`), which belong to no tenant.
    ///
    /// # Errors
    /// [`CatalogError::Unsupported`] for a statement on any other table, database errors.
    pub(crate) async fn write_tokens(&mut self, sql: &'static str, args: &[Value]) -> Result<u64> {
        let target = sql
            .split_whitespace()
            .skip_while(|w| !["INTO", "UPDATE", "FROM"].contains(w))
            .nth(1);
        if target != Some("api_tokens") {
            return Err(CatalogError::Unsupported(format!(
                "write_tokens only writes api_tokens, not: {sql}"
            )));
        }
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

    /// Refuses a write in a read-only transaction, and a write the grant does not allow
    /// (`needed`: the statement's own level, see `owned`).
    fn assert_writable(&self, needed: Access) -> Result<()> {
        if self.read_only {
            return Err(CatalogError::Unsupported(
                "write attempted in a read-only transaction".into(),
            ));
        }
        self.grant.access.require(needed, needed.work())
    }
}

/// Where a write's owner goes among its bind values.
#[derive(Clone, Copy)]
enum Layout {
    /// First (`$1`), once.
    Numbered,
    /// At the head of each of `rows` rows of positional values, `per_row` more each.
    RowHead { rows: usize, per_row: usize },
}

/// Binds the transaction's `owner` where `layout` says, and the caller's `args` around it.
fn bind_owned<Q: Bind>(mut query: Q, owner: &str, layout: Layout, args: &[Value]) -> Q {
    match layout {
        Layout::Numbered => {
            query = query.bind_owner(owner);
            for arg in args {
                query = query.bind_value(arg);
            }
        }
        Layout::RowHead { rows, per_row } => {
            for row in 0..rows {
                query = query.bind_owner(owner);
                for arg in &args[row * per_row..(row + 1) * per_row] {
                    query = query.bind_value(arg);
                }
            }
        }
    }
    query
}

/// The bind values of a write in order, the owner placed where `layout` says (SQLite,
/// whose statements take a list of values rather than a query builder).
fn owned_params<'a>(owner: &'a Value, layout: Layout, args: &'a [Value]) -> Vec<&'a Value> {
    match layout {
        Layout::Numbered => std::iter::once(owner).chain(args).collect(),
        Layout::RowHead { rows, per_row } => (0..rows)
            .flat_map(|row| std::iter::once(owner).chain(&args[row * per_row..(row + 1) * per_row]))
            .collect(),
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

#[cfg(test)]
mod tests {
    //! The owner check through the store API itself, on SQLite and (with
    //! `JAMMI_TEST_PG_URL`) on Postgres: a transaction cannot write a row of another owner,
    //! whatever statement and arguments it is handed.

    use futures::FutureExt;
    use sqlx::Connection;

    use super::*;
    use crate::catalog::{Catalog, RegisterModel};
    use crate::store::{Store, TxOptions, args};
    use crate::task::ModelTask;
    use crate::tenant::{TenantId, owner_of};

    /// A well-formed write: `$1` is the owner, so a key of another owner matches nothing.
    const SET_PATH_BY_KEY: OwnedWrite =
        OwnedWrite::new("UPDATE models SET artifact_path = $2 WHERE owner = $1 AND model_key = $3");
    /// A well-formed upsert: on a key of another owner it updates nothing.
    const UPSERT_BY_KEY: OwnedWrite = OwnedWrite::new(
        "INSERT INTO models (owner, model_key, model_id, version, model_type, task, backend, \
           status, created_at, updated_at) \
         VALUES ($1, $2, 'm', 1, 'hijacked', 'ner', 'hijacked', 'registered', 0, 0) \
         ON CONFLICT (model_key) DO UPDATE SET backend = excluded.backend, \
           artifact_path = '/hijacked' \
         WHERE models.owner = excluded.owner RETURNING owner",
    );
    /// Passes the shape check but claims another owner in RETURNING: the returned-row check
    /// still fails the write.
    const RETURNS_ANOTHER_OWNER: OwnedWrite = OwnedWrite::new(
        "UPDATE models SET artifact_path = $2 WHERE owner = $1 AND model_key = $3 \
         RETURNING 'someone-else' AS owner",
    );

    /// Every model row, as text, to show that nothing was written.
    async fn models(store: &Store) -> Vec<String> {
        store
            .fetch_all(
                "SELECT model_key, owner, backend, artifact_path, updated_at FROM models \
                 ORDER BY model_key",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} {:?} {}",
                    r.text("model_key").unwrap(),
                    r.text("owner").unwrap(),
                    r.text("backend").unwrap(),
                    r.opt_text("artifact_path").unwrap(),
                    r.int("updated_at").unwrap()
                )
            })
            .collect()
    }

    async fn key_of(store: &Store, owner: &str) -> String {
        let rows = store
            .fetch_all("SELECT model_key, owner FROM models", &[])
            .await
            .unwrap();
        rows.iter()
            .find(|r| r.text("owner").unwrap() == owner)
            .map(|r| r.text("model_key").unwrap())
            .unwrap()
    }

    /// Runs `sql` built at run time in a transaction of `scope`.
    async fn built(
        store: &Store,
        scope: Scope,
        sql: &str,
        owner: OwnerParam,
        values: Vec<Value>,
    ) -> Result<u64> {
        store
            .transaction(Grant::full(scope), TxOptions::write(), |tx| {
                let (sql, values) = (sql.to_owned(), values.clone());
                async move { tx.write_built(sql, owner, &values).await }.boxed()
            })
            .await
    }

    async fn writes_cannot_reach_a_row_of_another_owner(store: &Store) {
        let (a, b) = (TenantId::random(), TenantId::random());
        for (scope, name) in [(Some(a), "own"), (Some(b), "m"), (None, "global")] {
            Catalog::new(store.clone(), scope)
                .register_model(
                    RegisterModel::new(name, "embedding", "candle", ModelTask::Ner)
                        .version(1)
                        .artifact_path("/weights"),
                )
                .await
                .unwrap();
        }
        let b_owner = owner_of(Some(b));
        let b_key = key_of(store, &b_owner).await;
        let before = models(store).await;

        // Scoped to A, and unscoped: the unscoped owner is '', which the old check (some
        // argument equals the owner) accepted whenever any argument was empty.
        for (scope, other_key) in [(Some(a), b_key.clone()), (None, b_key.clone())] {
            let own_key = key_of(store, &owner_of(scope)).await;
            let refused: [(&str, Vec<Value>); 6] = [
                (
                    "UPDATE models SET artifact_path = $2 WHERE model_key = $3",
                    vec![Value::from(""), Value::from(&other_key)],
                ),
                (
                    "DELETE FROM models WHERE owner = $2 AND model_key = $3",
                    vec![Value::from(&b_owner), Value::from(&other_key)],
                ),
                (
                    "DELETE FROM models WHERE owner = $1 OR model_key = $2",
                    vec![Value::from(&other_key)],
                ),
                (
                    "UPDATE models SET owner = $2 WHERE owner = $1 AND model_key = $3",
                    vec![Value::from(&b_owner), Value::from(&own_key)],
                ),
                (
                    "INSERT INTO models (model_key, owner, model_id, version, model_type, task, \
                       backend, status, created_at, updated_at) \
                     VALUES ($2, $3, 'x', 9, 't', 'ner', 'b', 'registered', 0, 0)",
                    vec![Value::from("x::9"), Value::from(&b_owner)],
                ),
                (
                    "INSERT INTO models (owner, model_key, model_id, version, model_type, task, \
                       backend, status, created_at, updated_at) \
                     VALUES ($1, $2, 'm', 1, 't', 'ner', 'b', 'registered', 0, 0) \
                     ON CONFLICT (model_key) DO UPDATE SET backend = 'hijacked'",
                    vec![Value::from(&other_key)],
                ),
            ];
            for (sql, values) in refused {
                let outcome = built(store, scope, sql, OwnerParam::Numbered, values).await;
                assert!(
                    matches!(outcome, Err(CatalogError::TenantMismatch { scope: s }) if s == scope),
                    "{scope:?} {sql}: {outcome:?}"
                );
            }

            // Well-formed statements aimed at the other owner's key touch nothing…
            let (updated, upserted) = store
                .transaction(Grant::full(scope), TxOptions::write(), |tx| {
                    let other_key = other_key.clone();
                    async move {
                        let updated = tx
                            .write(&SET_PATH_BY_KEY, &args!["/hijacked", other_key.as_str()])
                            .await?;
                        let upserted = tx
                            .write_returning(&UPSERT_BY_KEY, &args![other_key])
                            .await?;
                        Ok((updated, upserted.len()))
                    }
                    .boxed()
                })
                .await
                .unwrap();
            assert_eq!((updated, upserted), (0, 0), "{scope:?}");
            let deleted = built(
                store,
                scope,
                "DELETE FROM models WHERE owner = $1 AND (model_key = $2)",
                OwnerParam::Numbered,
                vec![Value::from(&other_key)],
            )
            .await
            .unwrap();
            assert_eq!(deleted, 0, "{scope:?}");

            // …while the same statement on the transaction's own row does write it (rolled
            // back here), so the zeros above are the owner predicate at work.
            let own = store
                .transaction(Grant::full(scope), TxOptions::write(), |tx| {
                    let own_key = own_key.clone();
                    async move {
                        let n = tx
                            .write(&SET_PATH_BY_KEY, &args!["/mine", own_key.as_str()])
                            .await?;
                        Err::<(), _>(CatalogError::Unsupported(format!("rolled back after {n}")))
                    }
                    .boxed()
                })
                .await;
            assert_eq!(own.unwrap_err().to_string(), "rolled back after 1");

            // A returned row of another owner fails the write, which rolls back.
            let returned = store
                .transaction(Grant::full(scope), TxOptions::write(), |tx| {
                    let own_key = own_key.clone();
                    async move {
                        let rows = tx
                            .write_returning(&RETURNS_ANOTHER_OWNER, &args!["/x", own_key])
                            .await?;
                        Ok(rows.len())
                    }
                    .boxed()
                })
                .await;
            assert!(
                matches!(returned, Err(CatalogError::TenantMismatch { .. })),
                "{returned:?}"
            );
        }
        assert_eq!(models(store).await, before, "a refused write changed a row");
    }

    /// A transaction whose future is dropped after a write (a cancelled statement, a
    /// timeout): the write is rolled back, and the next writer gets in at once (on SQLite
    /// the abandoned connection gives the file's lock and the process's writer turn back).
    async fn an_abandoned_transaction_rolls_back_and_lets_the_next_writer_in(store: &Store) {
        let tenant = Some(TenantId::random());
        let catalog = Catalog::new(store.clone(), tenant);
        let kept = catalog
            .register_model(
                RegisterModel::new("kept", "embedding", "candle", ModelTask::Ner).version(1),
            )
            .await
            .unwrap();
        let key = key_of(store, &owner_of(tenant)).await;
        let abandoned = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            store.transaction(Grant::full(tenant), TxOptions::write(), |tx| {
                let key = key.clone();
                async move {
                    tx.write(&SET_PATH_BY_KEY, &args!["/abandoned", key])
                        .await?;
                    futures::future::pending::<()>().await;
                    Ok(())
                }
                .boxed()
            }),
        )
        .await;
        assert!(abandoned.is_err(), "the transaction was meant to hang");
        let next = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            catalog.register_model(RegisterModel::new(
                "next",
                "embedding",
                "candle",
                ModelTask::Ner,
            )),
        )
        .await
        .expect("the next writer got in")
        .unwrap();
        assert_eq!(next.version, 1);
        let after = catalog.get_model("kept").await.unwrap();
        assert_eq!(
            after.artifact_path, kept.artifact_path,
            "the abandoned write stayed"
        );
    }

    /// A transaction that declares less than it does (here: `write`, then a delete of a
    /// model) still writes only what its grant allows: the statement is refused by its own
    /// level, and the transaction rolls back (SPEC §14).
    async fn a_statement_beyond_the_grant_is_refused_when_it_runs(store: &Store) {
        let tenant = Some(TenantId::random());
        let catalog = Catalog::new(store.clone(), tenant);
        catalog
            .register_model(RegisterModel::new(
                "m",
                "embedding",
                "candle",
                ModelTask::Ner,
            ))
            .await
            .unwrap();
        let key = key_of(store, &owner_of(tenant)).await;
        let before = models(store).await;
        let writer = crate::access::Grant {
            scope: tenant,
            access: Access::Write,
        };
        let outcome = store
            .transaction(writer, TxOptions::write(), |tx| {
                let key = key.clone();
                async move {
                    tx.write(&SET_PATH_BY_KEY, &args!["/written-first", key.clone()])
                        .await?;
                    tx.write_built(
                        "DELETE FROM models WHERE owner = $1 AND model_key = $2".into(),
                        OwnerParam::Numbered,
                        &args![key],
                    )
                    .await
                }
                .boxed()
            })
            .await;
        match outcome {
            Err(CatalogError::PermissionDenied {
                needed: Access::Admin,
                granted: Access::Write,
                ..
            }) => {}
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(models(store).await, before, "the refused transaction wrote");
        // A grant above the store's ceiling is lowered to it.
        let ceiling = store.narrowed(Access::Read);
        let outcome = ceiling
            .transaction(Grant::full(tenant), TxOptions::write(), |_tx| {
                async { Ok(()) }.boxed()
            })
            .await;
        assert!(
            matches!(outcome, Err(CatalogError::PermissionDenied { .. })),
            "{outcome:?}"
        );
    }

    /// Runs `body` on a fresh SQLite file, then (with `JAMMI_TEST_PG_URL`) on a fresh
    /// Postgres schema.
    async fn on_each_backend(body: impl AsyncFn(&Store)) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
        let store = Store::connect(&url).await.unwrap();
        body(&store).await;
        store.close().await;

        let Ok(base) = std::env::var("JAMMI_TEST_PG_URL") else {
            eprintln!("note: JAMMI_TEST_PG_URL is not set; skipping the Postgres lane");
            return;
        };
        let schema = format!("jammi_tx_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let store = Store::connect(&format!("{base}{sep}options=-c%20search_path%3D{schema}"))
            .await
            .unwrap();
        body(&store).await;
        store.close().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut admin)
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_cannot_reach_a_row_of_another_owner_on_either_backend() {
        on_each_backend(writes_cannot_reach_a_row_of_another_owner).await;
    }

    #[tokio::test]
    async fn a_statement_beyond_the_grant_is_refused_on_either_backend() {
        on_each_backend(a_statement_beyond_the_grant_is_refused_when_it_runs).await;
    }

    #[tokio::test]
    async fn an_abandoned_transaction_rolls_back_on_either_backend() {
        on_each_backend(an_abandoned_transaction_rolls_back_and_lets_the_next_writer_in).await;
    }
}
