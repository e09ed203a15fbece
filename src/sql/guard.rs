//! An analyzer rule that refuses, with a message a person can act on, the statements
//! DataFusion 55 would get wrong with the catalog, before anything runs:
//!
//! - **Catalog function calls that would not act on exactly the selected rows**
//!   (`sql::placement` says which placements are accepted, and why).
//! - **DELETE forms whose filters would be extracted wrongly** (below).
//! - **Writes the session's access level does not allow** (SPEC §14): refused here with
//!   the statement's own words, before any scan of it reads a row.
//!
//! It also keeps `INSERT`'s integers exact: DataFusion casts an INSERT's values to the
//! table's types, and its cast truncates (`2.5` becomes version 2) or fails without
//! naming the row. For a catalog table the rule removes those casts, so the values reach
//! the catalog's sink as given and are read by the same conversion as the functions'
//! arguments, which refuses a fraction or an out-of-range number and names the row and
//! the field.
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
use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    DmlStatement, Expr, LogicalPlan, LogicalPlanBuilder, Projection, WriteOp,
};

use datafusion::optimizer::AnalyzerRule;

use super::binding::bound_catalog;
use super::functions::{CATALOG_FUNCTIONS, access_to_call};
use super::placement;
use crate::access::Access;
use crate::sql::table::CatalogTable;
use crate::sql::tables::TableDef;

/// The analyzer rule registered with the catalog.
#[derive(Debug, Default)]
pub(crate) struct CatalogGuard;

impl AnalyzerRule for CatalogGuard {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> Result<LogicalPlan> {
        placement::check(&plan)?;
        check_access(&plan, config)?;
        let mut refusal = None;
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::Dml(dml) = node
                && let Err(e) = check_delete(dml)
            {
                refusal = Some(e);
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        if let Some(e) = refusal {
            return Err(e);
        }
        exact_insert_integers(plan)
    }

    fn name(&self) -> &str {
        "jammi_guard"
    }
}

/// Refuses a statement that writes to the catalog more than the session's access level
/// allows (SPEC §14), naming what in it needs which level, before any of it runs (so none
/// of its scans reads a row). A plain `EXPLAIN` of such a statement shows the refusal as
/// its plan's last step (DataFusion prints an analyzer's error there). The store refuses
/// the same writes again when they run (`access`); this refusal comes first.
fn check_access(plan: &LogicalPlan, config: &ConfigOptions) -> Result<()> {
    // A session without a binding is refused when it uses the catalog (`sql::binding`).
    let Ok(catalog) = bound_catalog(config) else {
        return Ok(());
    };
    if catalog.access() == Access::Admin {
        return Ok(());
    }
    let mut refusal = Ok(());
    plan.apply_with_subqueries(|node| {
        let mut needs: Vec<(Access, String)> = Vec::new();
        if let LogicalPlan::Dml(dml) = node
            && let Some(table) = catalog_table(dml)
        {
            needs.push(match &dml.op {
                WriteOp::Insert(_) => table.insert_needs(),
                WriteOp::Delete => table.delete_needs(),
                // Refused by the table itself in any case; an update is a write, and what
                // removes or replaces rows wholesale is the administrator's.
                WriteOp::Update => (Access::Write, format!("UPDATE jammi.public.{}", table.name)),
                op => (
                    Access::Admin,
                    format!("{} jammi.public.{}", op.name(), table.name),
                ),
            });
        }
        for expr in node.expressions() {
            expr.apply(|e| {
                if let Expr::ScalarFunction(f) = e
                    && CATALOG_FUNCTIONS.contains(&f.name())
                {
                    needs.push((access_to_call(f.name()), format!("{}(…)", f.name())));
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        for (needed, action) in needs {
            if let Err(e) = catalog.access().require(needed, action) {
                refusal = Err(e.into_datafusion());
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    refusal
}

fn check_delete(dml: &DmlStatement) -> Result<()> {
    if !matches!(dml.op, WriteOp::Delete | WriteOp::Update) {
        return Ok(());
    }
    if !targets_catalog_table(dml) {
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

/// `INSERT INTO` a catalog table: the values of integer columns reach the catalog's sink
/// as the statement gave them, without DataFusion's truncating cast (see the module doc).
fn exact_insert_integers(plan: LogicalPlan) -> Result<LogicalPlan> {
    let LogicalPlan::Dml(dml) = &plan else {
        return Ok(plan);
    };
    if !matches!(dml.op, WriteOp::Insert(_)) || !targets_catalog_table(dml) {
        return Ok(plan);
    }
    // DataFusion plans an INSERT as a projection that maps (and casts) the source's columns
    // onto the table's, over the source.
    let LogicalPlan::Projection(mapping) = dml.input.as_ref() else {
        return Ok(plan);
    };
    let table = dml.target.schema();
    let is_integer_target = |i: usize| {
        table
            .field_with_name(mapping.schema.field(i).name())
            .is_ok_and(|f| f.data_type().is_integer())
    };
    let mut source = mapping.input.as_ref().clone();
    if let LogicalPlan::Values(values) = &source {
        // `VALUES` is typed as the table's columns already, each value cast: rebuild it
        // with the integer columns' values uncast, their types inferred from the values.
        let integer_columns: Vec<&Column> = (0..mapping.expr.len())
            .filter(|&i| is_integer_target(i))
            .filter_map(|i| placement::column_of(&mapping.expr[i]))
            .collect();
        let uncast_at: Vec<bool> = values
            .schema
            .columns()
            .iter()
            .map(|c| integer_columns.contains(&c))
            .collect();
        let rows = values
            .values
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&uncast_at)
                    .map(|(v, &uncast)| if uncast { uncast_expr(v) } else { v.clone() })
                    .collect()
            })
            .collect();
        source = LogicalPlanBuilder::values(rows)?.build()?;
    }
    let exprs = mapping
        .expr
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if is_integer_target(i) {
                uncast_expr(e).alias(mapping.schema.field(i).name())
            } else {
                e.clone()
            }
        })
        .collect();
    let mapping = Projection::try_new(exprs, Arc::new(source))?;
    Ok(LogicalPlan::Dml(DmlStatement {
        input: Arc::new(LogicalPlan::Projection(mapping)),
        ..dml.clone()
    }))
}

fn targets_catalog_table(dml: &DmlStatement) -> bool {
    catalog_table(dml).is_some()
}

/// The definition of the catalog table `dml` writes to, if it is one.
fn catalog_table(dml: &DmlStatement) -> Option<&'static TableDef> {
    let provider = source_as_provider(&dml.target).ok()?;
    provider
        .downcast_ref::<CatalogTable>()
        .map(CatalogTable::def)
}

/// `e` without its name and outer casts.
fn uncast_expr(e: &Expr) -> Expr {
    match e {
        Expr::Alias(a) => uncast_expr(&a.expr),
        Expr::Cast(c) => uncast_expr(&c.expr),
        Expr::TryCast(c) => uncast_expr(&c.expr),
        other => other.clone(),
    }
}
