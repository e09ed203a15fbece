//! Binding a plan to its session's grant before it leaves the process (SPEC §17).
//!
//! The catalog's tables and functions act for the session that executes them
//! (`sql::binding`). A plan that an engine sends to other processes (Ballista) is executed
//! in sessions that are not the client's; so a client session of such an engine adds
//! [`BindForShipping`], which, while the statement is optimized, replaces every table and
//! function that acts for its session with one bound to the session's handle *now*: the
//! same handle its analyzer (the guard) and `INSERT` planning checked. The codecs then
//! carry that grant (`sql::wire`), and no codec or decoding process chooses it.

use std::sync::Arc;

use datafusion::catalog::default_table_source::{provider_as_source, source_as_provider};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Expr, LogicalPlan, TableSource};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use super::binding::bound_catalog;
use super::functions::bound;
use super::table::{CatalogTable, TableBinding};
use crate::catalog::Catalog;

/// The optimizer rule that binds a statement's catalog tables and functions to the
/// session's handle (see the module docs). A session with no catalog bound is left as it
/// is: its statements fail where they use the catalog, as they would anyway.
#[derive(Debug)]
pub struct BindForShipping;

impl OptimizerRule for BindForShipping {
    fn name(&self) -> &str {
        "jammi_bind_for_shipping"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let Ok(catalog) = bound_catalog(&config.options()) else {
            return Ok(Transformed::no(plan));
        };
        plan.transform_up_with_subqueries(|node| {
            let node = bind_sources(node, &catalog)?;
            node.transform_data(|node| {
                node.map_expressions(|e| e.transform_up(|e| Ok(bind_function(e, &catalog))))
            })
        })
    }
}

/// The node with its scanned or written catalog table bound to `catalog`.
fn bind_sources(node: LogicalPlan, catalog: &Catalog) -> Result<Transformed<LogicalPlan>> {
    Ok(match node {
        LogicalPlan::TableScan(mut scan) => match bound_source(&scan.source, catalog) {
            Some(source) => {
                scan.source = source;
                Transformed::yes(LogicalPlan::TableScan(scan))
            }
            None => Transformed::no(LogicalPlan::TableScan(scan)),
        },
        LogicalPlan::Dml(mut dml) => match bound_source(&dml.target, catalog) {
            Some(target) => {
                dml.target = target;
                Transformed::yes(LogicalPlan::Dml(dml))
            }
            None => Transformed::no(LogicalPlan::Dml(dml)),
        },
        other => Transformed::no(other),
    })
}

/// `source` bound to `catalog`, if it is a catalog table acting for its session.
fn bound_source(source: &Arc<dyn TableSource>, catalog: &Catalog) -> Option<Arc<dyn TableSource>> {
    let provider = source_as_provider(source).ok()?;
    let table = provider.downcast_ref::<CatalogTable>()?;
    if !table.takes_session_scope() {
        return None;
    }
    let bound = CatalogTable::new(table.def(), TableBinding::Shipped(catalog.clone()));
    Some(provider_as_source(Arc::new(bound)))
}

/// `expr` with a catalog function that acts for its session bound to `catalog`.
fn bind_function(expr: Expr, catalog: &Catalog) -> Transformed<Expr> {
    match expr {
        Expr::ScalarFunction(call) if bound::is_session_function(&call.func) => {
            match bound::bind(call.func.name(), catalog) {
                Some(udf) => Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
                    Arc::new(udf),
                    call.args,
                ))),
                None => Transformed::no(Expr::ScalarFunction(call)),
            }
        }
        other => Transformed::no(other),
    }
}
