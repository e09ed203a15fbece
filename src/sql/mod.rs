//! The catalog as SQL tables inside DataFusion (SPEC §6).
//!
//! [`register_catalog`] adds a `CatalogProvider` named `jammi` (schema `public`, tables
//! `models`, `training_jobs`, `eval_runs`, `result_tables`, `model_aliases`,
//! `model_tags`, `events`) to any `SessionContext`,
//! and binds the session to the scope of the [`Catalog`] handle it is given. It takes
//! nothing else from the context, so engines can register it next to their own catalogs,
//! and several differently-scoped contexts can share one catalog (one pool).
//!
//! - `binding` — the session's catalog and scope, read by every table, function and DML
//!   plan when a statement executes.//!
//! - `tables` — the table definitions: columns, Arrow types, storage expressions.
//! - `provider` — the catalog and schema providers (no I/O: planning is synchronous).
//! - `table` — the `TableProvider`: which filters push down, and the scan plan.
//! - `filter` — DataFusion expressions → SQL with bind parameters.
//! - `scan` — the execution plan that queries the database and streams batches.
//! - `batch` — rows → Arrow; `columns` — Arrow → typed values for functions and DML.
//! - [`functions`] — `register_model`, `delete_model`, `set_model_alias`, `set_model_tag`.
//! - `as_of` — the time-travel table functions `models_as_of`, `model_aliases_as_of`.
//! - `joined` — the optimizer rule that sends a join of catalog tables to the database as
//!   one statement; `dynamic` — a join's keys pushed into a catalog scan while it runs.
//! - `dml` — `INSERT INTO` and `DELETE FROM`; `guard` — the analyzer rule that refuses
//!   the DELETE forms DataFusion 55 would get wrong, and, through `placement`, every
//!   call of a catalog function that would not act on exactly the rows the statement
//!   selects; it also keeps INSERT's integers exact (no truncating cast).
//! - [`foreign`] — the catalog lent to another library's session over DataFusion's FFI
//!   (datafusion-python), and the catalog's own session for what cannot cross.
//! - [`script`] — splitting a SQL script into statements (used by the `jammi` command).
//! - [`plans`] — a statement's analyzed plan, bound and run many times, and a cache of
//!   them by grant and text (the server's).
//! - [`session`] — sessions derived cheaply from a template built once (one per call of
//!   the server, per `execute` of the Python package, the CLI's).
//! - [`wire`] — the catalog's plan nodes as bytes and back, for engines that run a plan in
//!   other processes (Ballista, SPEC §17; the codecs are in `jammi-ballista`);
//!   [`shipping`] — the rule that binds such a plan to its session's grant first.
//! - [`limits`] — what one call of a scalar function may build, and a statement's
//!   deadline inside a batch (for sessions that run other people's SQL: the server's).

/// The `ExecutionPlan` methods of a leaf node (no children, no physical expressions) with
/// a `properties: Arc<PlanProperties>` field: the catalog's scan and delete plans.
macro_rules! leaf_plan_methods {
    () => {
        fn properties(&self) -> &std::sync::Arc<datafusion::physical_plan::PlanProperties> {
            &self.properties
        }

        fn children(&self) -> Vec<&std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
            vec![]
        }

        fn apply_expressions(
            &self,
            _f: &mut dyn FnMut(
                &std::sync::Arc<dyn datafusion::physical_expr::PhysicalExpr>,
            ) -> datafusion::error::Result<
                datafusion::common::tree_node::TreeNodeRecursion,
            >,
        ) -> datafusion::error::Result<datafusion::common::tree_node::TreeNodeRecursion> {
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        }

        fn with_new_children(
            self: std::sync::Arc<Self>,
            _children: Vec<std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>>,
        ) -> datafusion::error::Result<std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>>
        {
            Ok(self)
        }
    };
}

mod as_of;
mod batch;
mod binding;
mod columns;
mod dml;
mod dynamic;
mod filter;
pub mod foreign;
pub mod functions;
mod guard;
mod joined;
pub mod limits;
mod placement;
pub mod plans;
mod provider;
mod scan;
pub mod script;
pub mod session;
pub mod shipping;
mod table;
mod tables;
pub mod wire;

use std::sync::Arc;

use datafusion::catalog::CatalogProvider;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::session_state::SessionState;
use datafusion::optimizer::{AnalyzerRule, OptimizerRule};
use datafusion::prelude::SessionContext;

use crate::catalog::Catalog;

/// The name of the catalog in SQL: `jammi.public.models`.
pub const CATALOG_NAME: &str = "jammi";
/// The name of its one schema.
pub const SCHEMA_NAME: &str = "public";

/// Registers the catalog into `ctx` as `jammi`, with the functions `register_model`,
/// `delete_model`, `set_model_alias` and `set_model_tag` and the table functions
/// `models_as_of` and `model_aliases_as_of`, and binds the session to `catalog`'s database and scope.
///
/// The binding belongs to the session, not to the tables: every statement the session
/// executes, including views and prepared statements created earlier, acts for the scope
/// bound when it executes, and SQL cannot change it. Registering again rebinds the
/// session. Sessions cloned from one `SessionState` share their catalog list but not
/// their binding, so each clone must be registered for its own scope; a clone that was
/// not answers every use of `jammi` with an error rather than with another scope's rows.
///
/// Returns the catalog previously registered under that name, if any.
pub fn register_catalog(
    ctx: &SessionContext,
    catalog: &Catalog,
) -> Option<Arc<dyn CatalogProvider>> {
    {
        let state = ctx.state_ref();
        let mut state = state.write();
        prepare_state(&mut state);
        bind_state(&mut state, catalog);
    }
    // DataFusion adds an optimizer rule only through the context (or a builder).
    if !ctx
        .state_ref()
        .read()
        .optimizers()
        .iter()
        .any(|r| r.name() == joined::JoinPushdown.name())
    {
        ctx.add_optimizer_rule(Arc::new(joined::JoinPushdown));
    }
    ctx.register_catalog(
        CATALOG_NAME,
        Arc::new(provider::JammiCatalogProvider::new(None)),
    )
}

/// Puts the catalog's functions, table functions and analyzer rule into `state` (once:
/// a rule already there is not added again).
fn prepare_state(state: &mut SessionState) {
    // Affects only DELETEs on catalog tables and calls of the catalog's functions.
    if !state
        .analyzer()
        .rules
        .iter()
        .any(|r| r.name() == guard::CatalogGuard.name())
    {
        state.add_analyzer_rule(Arc::new(guard::CatalogGuard));
    }
    for function in functions::all() {
        // Registering a function replaces one of the same name; it cannot fail.
        let _ = state.register_udf(Arc::new(function));
    }
    for (name, function) in as_of::all() {
        state.register_udtf(name, function);
    }
    // A hash join offers its build keys to the probe side's scan as a list up to this many
    // distinct keys, as a hash-table lookup (which no database can read) beyond it. The
    // catalog's scans bind the list as one parameter (`sql::dynamic`), so longer lists pay:
    // a host's own setting is kept, DataFusion's default (150) is raised (docs/performance.md).
    let optimizer = &mut state.config_mut().options_mut().optimizer;
    let defaults = datafusion::config::OptimizerOptions::default();
    if optimizer.hash_join_inlist_pushdown_max_distinct_values
        == defaults.hash_join_inlist_pushdown_max_distinct_values
    {
        optimizer.hash_join_inlist_pushdown_max_distinct_values = JOIN_KEYS_PUSHED;
    }
}

/// The most distinct join keys a hash join offers a catalog scan as a list (see
/// `prepare_state`).
pub const JOIN_KEYS_PUSHED: usize = 1_000;

/// Binds `state`'s statements to `catalog`'s database, scope and access level.
fn bind_state(state: &mut SessionState, catalog: &Catalog) {
    state
        .config_mut()
        .options_mut()
        .extensions
        .insert(binding::SessionBinding::new(catalog.clone()));
}
