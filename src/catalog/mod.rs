//! Catalog operations (SPEC §4): the Rust API that the SQL layer maps onto.
//!
//! A [`Catalog`] is a store plus a scope. Clones and [`Catalog::with_scope`] share one
//! pool, so a host can hand every request its own scoped handle cheaply.

mod eval_runs;
mod key;
mod models;
mod result_tables;
mod rows;
mod training_jobs;

pub use eval_runs::{EvalRun, NewEvalRun};
pub use models::{ModelRecord, ModelStatus, RegisterModel};
pub use result_tables::{NewResultTable, ResultTable, ResultTableStatus};
pub use training_jobs::{JobStatus, NewTrainingJob, TrainingJob};

pub(crate) mod dml {
    //! The in-transaction operations that SQL `INSERT` / `DELETE` run for many rows.
    pub(crate) use super::eval_runs::create_in as create_eval_run_in;
    pub(crate) use super::models::{delete_in as delete_model_in, register_in};
    pub(crate) use super::result_tables::create_in as create_result_table_in;
    pub(crate) use super::training_jobs::create_in as create_training_job_in;
}

use crate::error::Result;
use crate::store::Store;
use crate::tenant::Scope;

/// A handle on the catalog, bound to one scope.
#[derive(Clone, Debug)]
pub struct Catalog {
    store: Store,
    scope: Scope,
}

impl Catalog {
    /// Opens (creating and migrating if needed) the catalog at `url`, unscoped.
    ///
    /// See [`Store::connect`] for the accepted URLs.
    ///
    /// # Errors
    /// As [`Store::connect`].
    pub async fn open(url: &str) -> Result<Self> {
        Ok(Catalog::new(Store::connect(url).await?, None))
    }

    /// A handle on an already-open store.
    pub fn new(store: Store, scope: Scope) -> Self {
        Catalog { store, scope }
    }

    /// The same catalog (same pool) bound to another scope.
    pub fn with_scope(&self, scope: Scope) -> Self {
        Catalog {
            store: self.store.clone(),
            scope,
        }
    }

    /// The scope this handle reads and writes for.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}
