//! # jammi-catalog
//!
//! A multi-tenant catalog of machine-learning models — models and their versions and
//! lineage, training jobs, evaluation runs, result tables — stored in SQLite or PostgreSQL
//! through `sqlx`.
//!
//! ```no_run
//! use jammi_catalog::{Catalog, ModelTask, RegisterModel, TenantId};
//!
//! # async fn demo() -> jammi_catalog::Result<()> {
//! let catalog = Catalog::open("sqlite://jammi.db").await?;
//! let tenant: TenantId = "6f1c2a0e-3b9d-4c1e-9a7f-0d2b4e6f8a10".parse()?;
//! let acme = catalog.with_scope(Some(tenant));
//! let v = acme
//!     .register_model(RegisterModel::new("acme/bge-ft", "embedding", "candle", ModelTask::TextEmbedding))
//!     .await?;
//! assert_eq!(v.version, 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! - **Scope.** Every [`Catalog`] handle is bound to a scope: a [`TenantId`] or `None`
//!   (unscoped). Reads see the scope's own rows plus global rows (an unscoped handle sees
//!   only global rows); writes stamp the scope; deletes and mutations touch only rows whose
//!   owner is exactly the scope, and answer *not found* otherwise. The store's transaction
//!   carries the scope and refuses any write to a row of another owner.
//! - **Access.** A handle also carries an access level ([`Access`]: read, write, admin).
//!   [`Catalog::open`] gives full access; [`Catalog::narrowed`] lowers it (for the handle
//!   and its store) and nothing raises it. Every write of the catalog runs in a store transaction, and
//!   the store refuses one the level does not allow before it begins, and every write
//!   statement the level does not allow before it runs.
//! - **Storage.** Global rows store `owner = ''` rather than NULL, so one indexed equality
//!   (`owner IN ($tenant, '')`) serves every scope on both backends. A model row's key is
//!   `{tenant}::{name}::{version}` (or `{name}::{version}`), built in one function.
//!   Timestamps are microseconds since the Unix epoch, UTC.
//! - **Transactions.** [`Store::transaction`] runs a closure in one transaction, commits on
//!   `Ok`, rolls back on `Err`, and re-runs it on retryable conflicts (Postgres
//!   serialization failures and deadlocks, SQLite busy). SQLite writers begin
//!   `IMMEDIATE`, so concurrent writers queue on the busy timeout instead of failing.
//! - **Versions.** `register_model` without a version allocates `max + 1` in the caller's
//!   scope. SQLite's write lock serializes allocators; on Postgres an allocator that loses
//!   the race to a concurrent one inserts nothing (`ON CONFLICT DO NOTHING`) and allocates
//!   again in the same read-committed transaction, so no caller ever sees the collision.
//! - **Deletes.** `delete_model` scans the five referencing edges and deletes in one
//!   serializable transaction; writers that add a reference run serializable and read the
//!   model they reference, so Postgres' SSI aborts one side of any race.
//!
//! - **History.** Every change appends one event (the row's new state as JSON) in the
//!   change's own transaction; `models_as_of` / `model_aliases_as_of` replay the log.
//!
//! # Layout
//!
//! - [`error`] — the one error enum.
//! - [`tenant`] — tenant ids and scopes.
//! - [`access`] — access levels (read, write, admin) and the one check that enforces them.
//! - [`task`] — model tasks.
//! - [`validate`] — input validation.
//! - [`store`] — the backend abstraction: pools, closure transactions, retries, migrations.
//! - [`catalog`] — the operations: models, aliases, tags, training jobs, eval runs, result
//!   tables, the event log, following it, and webhooks.
//! - [`sql`] — the DataFusion catalog: providers, pushdown, scans.

#![deny(missing_docs)]
#![warn(clippy::clone_on_ref_ptr)]

pub mod access;
pub mod catalog;
mod clock;
pub mod error;
pub mod sql;
pub mod store;
pub mod task;
pub mod tenant;
pub mod tokens;
pub mod validate;

pub use access::{Access, Grant};
pub use catalog::{
    AfterFailure, Attempt, Catalog, CreatedWebhook, EvalRun, Event, EventFeed, EventKind,
    EventSignal, HeldWebhook, JobStatus, ModelAlias, ModelRecord, ModelStatus, ModelTag,
    NewEvalRun, NewResultTable, NewTrainingJob, NewWebhook, RegisterModel, ResultTable,
    ResultTableStatus, TrainingJob, Webhook, WebhookDispatch, WebhookState,
};
pub use error::{CatalogError, Result};
pub use sql::register_catalog;
pub use store::{Backend, Isolation, RetryPolicy, Store, TxOptions};
pub use task::ModelTask;
pub use tenant::{Scope, TenantId};
pub use tokens::{CreatedToken, TokenInfo, TokenStatus, Tokens};
