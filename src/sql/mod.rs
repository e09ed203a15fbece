//! The catalog as SQL tables inside DataFusion (SPEC §6).
//!
//! [`register_catalog`] adds a `CatalogProvider` named `jammi` (schema `public`, tables
//! `models`, `training_jobs`, `eval_runs`, `result_tables`) to any `SessionContext`,
//! bound to the scope of the [`Catalog`] handle it is given. It takes nothing else from
//! the context, so engines can register it next to their own catalogs, and several
//! differently-scoped contexts can share one catalog (one pool).
//!
//! - `tables` — the table definitions: columns, Arrow types, storage expressions.
//! - `provider` — the catalog and schema providers (no I/O: planning is synchronous).
//! - `table` — the `TableProvider`: which filters push down, and the scan plan.
//! - `filter` — DataFusion expressions → SQL with bind parameters.
//! - `scan` — the execution plan that queries the database and streams batches.
//! - `batch` — rows → Arrow; `columns` — Arrow → typed values for functions and DML.
//! - [`functions`] — `register_model`, `delete_model`.
//! - `dml` — `INSERT INTO` and `DELETE FROM`; `guard` — refuses the DELETE forms and
//!   function placements DataFusion 55 would get wrong.
//! - [`script`] — splitting a SQL script into statements (used by the `jammi` command).

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

mod batch;
mod columns;
mod dml;
mod filter;
pub mod functions;
mod guard;
mod provider;
mod scan;
pub mod script;
mod table;
mod tables;

use std::sync::Arc;

use datafusion::catalog::CatalogProvider;
use datafusion::prelude::SessionContext;

use crate::catalog::Catalog;

/// The name of the catalog in SQL: `jammi.public.models`.
pub const CATALOG_NAME: &str = "jammi";
/// The name of its one schema.
pub const SCHEMA_NAME: &str = "public";

/// Registers the catalog, bound to `catalog`'s scope, into `ctx` as `jammi`, together
/// with the functions `register_model` and `delete_model` bound to the same scope.
///
/// Returns the catalog previously registered under that name, if any (registering again
/// replaces it, e.g. to rebind a context to another scope).
pub fn register_catalog(
    ctx: &SessionContext,
    catalog: &Catalog,
) -> Option<Arc<dyn CatalogProvider>> {
    for function in functions::all(catalog) {
        ctx.register_udf(function);
    }
    // Affects only DELETEs on catalog tables and calls of the catalog's functions;
    // registering twice adds a second, identical check.
    ctx.add_analyzer_rule(Arc::new(guard::CatalogGuard));
    ctx.register_catalog(
        CATALOG_NAME,
        Arc::new(provider::JammiCatalogProvider::new(catalog.clone())),
    )
}
