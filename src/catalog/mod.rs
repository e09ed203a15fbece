//! Catalog operations (SPEC §4): the Rust API that the SQL layer maps onto.
//!
//! A [`Catalog`] is a store plus a scope. Clones and [`Catalog::with_scope`] share one
//! pool, so a host can hand every request its own scoped handle cheaply.

mod aliases;
mod dispatch;
mod eval_runs;
mod events;
mod feed;
mod key;
mod models;
mod result_tables;
mod rows;
mod signal;
mod tags;
mod training_jobs;
mod webhooks;

pub use aliases::ModelAlias;
pub use dispatch::{AfterFailure, Attempt, HeldWebhook, WebhookDispatch};
pub use eval_runs::{EvalRun, NewEvalRun};
pub use events::{Event, EventKind};
pub use feed::EventFeed;
pub use models::{ModelRecord, ModelStatus, RegisterModel};
pub use result_tables::{NewResultTable, ResultTable, ResultTableStatus};
pub use signal::EventSignal;
pub use tags::ModelTag;
pub use training_jobs::{JobStatus, NewTrainingJob, TrainingJob};
pub use webhooks::{CreatedWebhook, NewWebhook, Webhook, WebhookState};

pub(crate) mod dml {
    //! The in-transaction operations that SQL `INSERT` / `DELETE` run for many rows.
    pub(crate) use super::aliases::{set_in as set_alias_in, validate_alias};
    pub(crate) use super::eval_runs::create_in as create_eval_run_in;
    pub(crate) use super::events::record as record_events;
    pub(crate) use super::models::{delete_in as delete_model_in, register_many_in};
    pub(crate) use super::result_tables::create_in as create_result_table_in;
    pub(crate) use super::tags::{set_in as set_tag_in, validate_tag};
    pub(crate) use super::training_jobs::create_in as create_training_job_in;

    use super::events::{Change, EventKind};
    use crate::error::Result;
    use crate::store::DbRow;

    /// The events of rows a SQL `DELETE FROM <table> … RETURNING *` removed, by the
    /// table's name in `jammi.public` (every table but `models`, which deletes row by row
    /// through `delete_model_in`, and `events`, which nothing deletes).
    pub(crate) fn removed(table: &str, rows: &[DbRow]) -> Result<Vec<Change>> {
        match table {
            "training_jobs" => Change::removed_rows(
                EventKind::TrainingJobDeleted,
                rows,
                super::training_jobs::job_from_row,
            ),
            "eval_runs" => Change::removed_rows(
                EventKind::EvalRunDeleted,
                rows,
                super::eval_runs::run_from_row,
            ),
            "result_tables" => Change::removed_rows(
                EventKind::ResultTableDeleted,
                rows,
                super::result_tables::table_from_row,
            ),
            "model_aliases" => Change::removed_rows(
                EventKind::AliasRemoved,
                rows,
                super::aliases::alias_from_row,
            ),
            "model_tags" => {
                Change::removed_rows(EventKind::TagRemoved, rows, super::tags::tag_from_row)
            }
            other => Err(crate::error::CatalogError::Unsupported(format!(
                "rows of {other} are not deleted this way"
            ))),
        }
    }
}

use futures::FutureExt;

use crate::access::{Access, Grant};
use crate::error::{CatalogError, Result};
use crate::store::{DbRow, OwnedWrite, Store, TxOptions, args};
use crate::tenant::{Scope, owner_of};
use crate::validate;
use events::{Change, Recorded};

/// A handle on the catalog, bound to one scope and one access level (SPEC §2, §14).
#[derive(Clone, Debug)]
pub struct Catalog {
    store: Store,
    grant: Grant,
}

impl Catalog {
    /// Opens (creating and migrating if needed) the catalog at `url`, unscoped, with full
    /// access.
    ///
    /// See [`Store::connect`] for the accepted URLs.
    ///
    /// # Errors
    /// As [`Store::connect`].
    pub async fn open(url: &str) -> Result<Self> {
        Ok(Catalog::new(Store::connect(url).await?, None))
    }

    /// A handle with full access in `scope` on an already-open store: the host
    /// application's own, which decides itself what its callers may do (and hands them
    /// [`Catalog::narrowed`] handles).
    ///
    /// The level is at most the store's ceiling: a store taken from a narrowed handle makes
    /// handles no stronger than that one.
    pub fn new(store: Store, scope: Scope) -> Self {
        let grant = Grant::full(scope).narrowed(store.ceiling());
        Catalog { store, grant }
    }

    /// The same catalog (same pool) bound to another scope, with this handle's access level.
    pub fn with_scope(&self, scope: Scope) -> Self {
        Catalog {
            store: self.store.clone(),
            grant: Grant {
                scope,
                access: self.grant.access,
            },
        }
    }

    /// The same handle with at most `access`: the lower of its level and `access`, so a
    /// handle can be narrowed and never widened. Every write of a narrowed handle (the Rust
    /// API, and the SQL functions, `INSERT` and `DELETE` of sessions it is registered in)
    /// that needs more is refused with [`CatalogError::PermissionDenied`] before anything is
    /// read or written.
    pub fn narrowed(&self, access: Access) -> Self {
        Catalog {
            store: self.store.narrowed(access),
            grant: self.grant.narrowed(access),
        }
    }

    /// The scope this handle reads and writes for.
    pub fn scope(&self) -> Scope {
        self.grant.scope
    }

    /// What this handle may do in its scope.
    pub fn access(&self) -> Access {
        self.grant.access
    }

    /// The underlying store (narrowed with the handle: see [`Store::narrowed`]).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs `f` in one store transaction with this handle's grant: the transaction writes
    /// only the handle's rows, and only what its access level allows.
    pub(crate) async fn transaction<T, F>(&self, options: TxOptions, f: F) -> Result<T>
    where
        T: Send,
        F: for<'t> FnMut(&'t mut crate::store::Tx) -> futures::future::BoxFuture<'t, Result<T>>
            + Send,
    {
        self.store.transaction(self.grant, options, f).await
    }
}

/// The read and delete shapes that training jobs, eval runs and result tables share.
impl Catalog {
    /// Every visible row of `sql`, whose one parameter is the caller's owner.
    async fn list_visible<T>(
        &self,
        sql: &'static str,
        from_row: fn(&DbRow) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.store()
            .fetch_all(sql, &args![owner_of(self.scope())])
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    /// The visible row `id` of `sql` (`$1` the id, `$2` the owner; own row first), or
    /// *not found* for `kind`. An id holding NUL names no row (writes refuse NUL), and is
    /// not sent to the database, which would refuse it on Postgres only.
    async fn get_visible<T>(
        &self,
        sql: &'static str,
        kind: &'static str,
        id: &str,
        from_row: fn(&DbRow) -> Result<T>,
    ) -> Result<T> {
        if id.contains('\0') {
            return Err(not_found(kind, id));
        }
        match self
            .store()
            .fetch_optional(sql, &args![id, owner_of(self.scope())])
            .await?
        {
            Some(row) => from_row(&row),
            None => Err(not_found(kind, id)),
        }
    }

    /// Deletes the caller's own row `id` with `sql` (`$1` the owner, `$2` the id,
    /// `RETURNING` the row) and appends its `event`; a row the caller does not own, or that
    /// does not exist, is *not found* for `kind`. An id holding NUL is refused as `field`
    /// (see `validate`).
    async fn delete_owned<T: Recorded + 'static>(
        &self,
        sql: &'static OwnedWrite,
        kind: &'static str,
        field: &'static str,
        id: &str,
        from_row: fn(&DbRow) -> Result<T>,
        event: EventKind,
    ) -> Result<()> {
        validate::text(field, id)?;
        let deleted = self
            .transaction(TxOptions::write().needing(Access::Admin), |tx| {
                let id = id.to_owned();
                async move {
                    let rows = tx.write_returning(sql, &args![id]).await?;
                    events::record(tx, &Change::removed_rows(event, &rows, from_row)?).await?;
                    Ok(rows.len())
                }
                .boxed()
            })
            .await?;
        if deleted == 0 {
            return Err(not_found(kind, id));
        }
        Ok(())
    }
}

fn not_found(kind: &'static str, id: &str) -> CatalogError {
    CatalogError::NotFound {
        kind,
        id: id.to_owned(),
    }
}
