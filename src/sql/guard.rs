//! An analyzer rule that refuses, with a message a person can act on, the statements
//! DataFusion 55 would get wrong with the catalog:
//!
//! - **DELETE forms whose filters would be extracted wrongly.**
//!
//! DataFusion gives `TableProvider::delete_from` only the filters it extracts from the
//! statement's plan: it collects them from *every* scan of the target table (a subquery
//! on the same table included), ignores joins, and drops `LIMIT`. `DELETE FROM models
//! WHERE version IN (SELECT version FROM models WHERE model_id = 'a')` would thus reach the
//! catalog as `model_id = 'a'`. This analyzer rule sees the statement before that
//! happens and refuses any DELETE on a catalog table whose input is more than a filtered
//! scan of the table itself.

use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::common::config::ConfigOptions;
use datafusion::common::plan_err;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::logical_expr::{DmlStatement, Expr, LogicalPlan, WriteOp};

use super::functions::{DELETE_MODEL, REGISTER_MODEL};
use datafusion::optimizer::AnalyzerRule;

use crate::sql::table::CatalogTable;

/// The analyzer rule registered with the catalog.
#[derive(Debug, Default)]
pub(crate) struct CatalogGuard;

impl AnalyzerRule for CatalogGuard {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        let mut refusal = None;
        plan.apply_with_subqueries(|node| {
            let checked = match node {
                LogicalPlan::Dml(dml) => check_delete(dml),
                other => check_function_placement(other),
            };
            if let Err(e) = checked {
                refusal = Some(e);
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        match refusal {
            Some(e) => Err(e),
            None => Ok(plan),
        }
    }

    fn name(&self) -> &str {
        "jammi_guard"
    }
}

/// Refuses `register_model` / `delete_model` where DataFusion cannot evaluate them.
fn check_function_placement(node: &LogicalPlan) -> Result<()> {
    let (clause, exprs): (&str, Vec<&Expr>) = match node {
        LogicalPlan::Sort(sort) => ("ORDER BY", sort.expr.iter().map(|s| &s.expr).collect()),
        LogicalPlan::Aggregate(agg) => ("GROUP BY", agg.group_expr.iter().collect()),
        LogicalPlan::Window(window) => ("a window function", window.window_expr.iter().collect()),
        LogicalPlan::Join(join) => (
            "a join condition",
            join.on
                .iter()
                .flat_map(|(l, r)| [l, r])
                .chain(join.filter.as_ref())
                .collect(),
        ),
        _ => return Ok(()),
    };
    for expr in exprs {
        if let Some(name) = catalog_function_in(expr) {
            return plan_err!(
                "{name}() cannot be used in {clause}: DataFusion runs it only in the SELECT list, \
                 WHERE and aggregate arguments; compute it in a subquery, e.g. \
                 SELECT * FROM (SELECT {name}(…) AS result FROM …) ORDER BY result"
            );
        }
    }
    Ok(())
}

fn catalog_function_in(expr: &Expr) -> Option<&'static str> {
    let mut found = None;
    let _ = expr.apply(|e| {
        if let Expr::ScalarFunction(f) = e {
            found = [REGISTER_MODEL, DELETE_MODEL]
                .into_iter()
                .find(|n| *n == f.name());
            if found.is_some() {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

fn check_delete(dml: &DmlStatement) -> Result<()> {
    if !matches!(dml.op, WriteOp::Delete | WriteOp::Update) {
        return Ok(());
    }
    let Ok(provider) = source_as_provider(&dml.target) else {
        return Ok(());
    };
    if provider.downcast_ref::<CatalogTable>().is_none() {
        return Ok(());
    }
    let target = &dml.table_name;
    let mut refusal = None;
    dml.input.apply(|node| {
        let problem = match node {
            LogicalPlan::TableScan(_)
            | LogicalPlan::Projection(_)
            | LogicalPlan::SubqueryAlias(_) => None,
            LogicalPlan::Filter(filter) if has_subquery(&filter.predicate) => Some(
                "a subquery in the WHERE clause (list the values instead, e.g. IN ('a', 'b'))"
                    .to_owned(),
            ),
            LogicalPlan::Filter(_) => None,
            LogicalPlan::Limit(_) => {
                Some("LIMIT (name the rows in the WHERE clause instead)".to_owned())
            }
            other => Some(format!("{} in the statement", other.display())),
        };
        if let Some(problem) = problem {
            refusal = Some(problem);
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    match refusal {
        Some(problem) => plan_err!(
            "DELETE FROM {target} supports only a WHERE clause on the table's own columns; \
             it does not support {problem}"
        ),
        None => Ok(()),
    }
}

pub(crate) fn has_subquery(expr: &Expr) -> bool {
    let mut found = false;
    let _ = expr.apply(|e| {
        if matches!(
            e,
            Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_)
        ) {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}
