//! Where the catalog's functions may be called (SPEC §7).
//!
//! DataFusion 55 lifts every async function out of its expression and evaluates it over
//! the whole input of the plan node that holds it, before CASE, COALESCE, NULLIF, AND/OR
//! or the rest of a filter take effect; its optimizer may also prune a column nobody
//! reads, or push a filter or a limit past the node that computes it. For a function that
//! writes, each of those would act on rows the statement does not name, or skip rows it
//! does. So a call is accepted in exactly one place, where "called once for every row the
//! statement selects" is both what the SQL says and what DataFusion does:
//!
//! - as a whole item of the statement's outermost SELECT list (optionally renamed with
//!   `AS` or wrapped in a `CAST`), with its arguments free of other catalog calls;
//! - where nothing above that SELECT list drops, filters, limits or prunes its rows: the
//!   plan's root, or under `ORDER BY` without a limit, `INSERT INTO …`, a subquery alias,
//!   CTE or view name, or an outer SELECT list that passes the call's column on.
//!
//! Everywhere else — inside CASE/COALESCE/NULLIF/AND/OR/IN or another function, in WHERE,
//! HAVING, JOIN, ORDER BY, GROUP BY, window or aggregate arguments, under LIMIT/OFFSET,
//! DISTINCT, UNION, an aggregate or an outer WHERE, in a subquery that is not the
//! statement's outermost SELECT, or nested in another catalog call — the
//! statement is refused while planning, before anything is written, with the safe form.

use std::collections::HashSet;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan, Projection, WriteOp};

use super::functions::CATALOG_FUNCTIONS;

/// Refuses `plan` when it calls a catalog function anywhere but where it is exact.
pub(crate) fn check(plan: &LogicalPlan) -> Result<()> {
    let outermost = outermost_calling_select(plan);
    let mut refusal = Ok(());
    plan.apply_with_subqueries(|node| {
        let checked = match (node, &outermost) {
            (LogicalPlan::Projection(p), Ok(allowed)) if std::ptr::eq(p, *allowed) => {
                check_select_items(p)
            }
            _ => check_elsewhere(node, outermost.as_ref().err().copied()),
        };
        if checked.is_err() {
            refusal = checked;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    refusal
}

/// The name of the first catalog function called in `expr`, if any.
pub(crate) fn catalog_call_in(expr: &Expr) -> Option<&'static str> {
    let mut found = None;
    let _ = expr.apply(|e| {
        if let Expr::ScalarFunction(f) = e {
            found = CATALOG_FUNCTIONS.into_iter().find(|n| *n == f.name());
            if found.is_some() {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// The statement's outermost SELECT list, when it calls a catalog function and every row
/// it produces reaches the statement's result; otherwise what stands above it.
fn outermost_calling_select(plan: &LogicalPlan) -> std::result::Result<&Projection, &'static str> {
    let mut wrappers = Vec::new();
    let mut node = plan;
    let select = loop {
        match node {
            LogicalPlan::Projection(p) if p.expr.iter().any(|e| catalog_call_in(e).is_some()) => {
                break p;
            }
            LogicalPlan::Dml(dml)
                if wrappers.is_empty() && matches!(dml.op, WriteOp::Insert(_)) =>
            {
                wrappers.push(node);
                node = &dml.input;
            }
            LogicalPlan::Sort(sort) if sort.fetch.is_none() => {
                wrappers.push(node);
                node = &sort.input;
            }
            LogicalPlan::SubqueryAlias(alias) => {
                wrappers.push(node);
                node = &alias.input;
            }
            // EXPLAIN ANALYZE runs the statement to its end.
            LogicalPlan::Analyze(analyze) if wrappers.is_empty() => {
                wrappers.push(node);
                node = &analyze.input;
            }
            // E.g. the projection DataFusion puts under an INSERT: the source's columns,
            // and NULL for the table's columns the statement leaves out.
            LogicalPlan::Projection(p)
                if p.expr
                    .iter()
                    .all(|e| column_of(e).is_some() || is_constant(e)) =>
            {
                wrappers.push(node);
                node = &p.input;
            }
            other => return Err(what_stands_above(other)),
        }
    };
    // The columns that carry the calls' results (by position) must reach the top: a
    // projection above that leaves one out lets the optimizer drop the call altogether.
    let mut carried: HashSet<usize> = select
        .expr
        .iter()
        .enumerate()
        .filter(|(_, e)| catalog_call_in(e).is_some())
        .map(|(i, _)| i)
        .collect();
    for wrapper in wrappers.iter().rev() {
        let LogicalPlan::Projection(p) = wrapper else {
            continue; // The other wrappers pass every row and column on.
        };
        let input = p.input.schema();
        let sources: Vec<Option<usize>> = p
            .expr
            .iter()
            .map(|e| column_of(e).and_then(|c| input.index_of_column(c).ok()))
            .collect();
        if carried.iter().any(|i| !sources.contains(&Some(*i))) {
            return Err("an outer SELECT list that leaves out the function's result");
        }
        carried = (0..sources.len())
            .filter(|&o| sources[o].is_some_and(|i| carried.contains(&i)))
            .collect();
    }
    Ok(select)
}

/// The column an expression passes on unchanged (possibly renamed or cast), if it does.
pub(crate) fn column_of(expr: &Expr) -> Option<&Column> {
    match expr {
        Expr::Column(c) => Some(c),
        Expr::Alias(a) => column_of(&a.expr),
        Expr::Cast(c) => column_of(&c.expr),
        Expr::TryCast(c) => column_of(&c.expr),
        _ => None,
    }
}

/// A literal (possibly renamed or cast).
fn is_constant(expr: &Expr) -> bool {
    match expr {
        Expr::Literal(..) => true,
        Expr::Alias(a) => is_constant(&a.expr),
        Expr::Cast(c) => is_constant(&c.expr),
        Expr::TryCast(c) => is_constant(&c.expr),
        _ => false,
    }
}

/// The call an expression returns unchanged (possibly renamed or cast), if it does.
fn direct_call(expr: &Expr) -> Option<&Expr> {
    match expr {
        Expr::ScalarFunction(f) if CATALOG_FUNCTIONS.contains(&f.name()) => Some(expr),
        Expr::Alias(a) => direct_call(&a.expr),
        Expr::Cast(c) => direct_call(&c.expr),
        Expr::TryCast(c) => direct_call(&c.expr),
        _ => None,
    }
}

/// The items of the accepted SELECT list: each call stands alone.
fn check_select_items(select: &Projection) -> Result<()> {
    for expr in &select.expr {
        let Some(name) = catalog_call_in(expr) else {
            continue;
        };
        match direct_call(expr) {
            Some(Expr::ScalarFunction(call)) => {
                if let Some(inner) = call.args.iter().find_map(catalog_call_in) {
                    return refuse(inner, "in the arguments of another catalog function");
                }
            }
            _ => {
                return refuse(
                    name,
                    "inside another expression (CASE, COALESCE, NULLIF, AND/OR, IN, arithmetic \
                     or another function), which DataFusion would evaluate for every row first",
                );
            }
        }
    }
    Ok(())
}

/// Any node but the accepted SELECT list: a call here is refused, saying where it is.
fn check_elsewhere(node: &LogicalPlan, above_outermost: Option<&'static str>) -> Result<()> {
    let mut found = None;
    node.apply_expressions(|e| {
        found = catalog_call_in(e);
        Ok(if found.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    let Some(name) = found else {
        return Ok(());
    };
    let place = match node {
        LogicalPlan::Filter(f) if matches!(*f.input, LogicalPlan::Aggregate(_)) => {
            "in HAVING".to_owned()
        }
        LogicalPlan::Filter(_) => {
            "in WHERE (DataFusion evaluates it for every row before the rest of the condition)"
                .to_owned()
        }
        LogicalPlan::Aggregate(_) => "in GROUP BY or an aggregate's arguments".to_owned(),
        LogicalPlan::Sort(_) => "in ORDER BY".to_owned(),
        LogicalPlan::Window(_) => "in a window function".to_owned(),
        LogicalPlan::Join(_) => "in a JOIN condition".to_owned(),
        LogicalPlan::Projection(_) => format!(
            "in a SELECT list that is not the statement's outermost one, or whose rows do not \
             all reach the result (here: {})",
            above_outermost.unwrap_or("a subquery")
        ),
        other => format!("in {}", other.display()),
    };
    refuse(name, &place)
}

fn what_stands_above(node: &LogicalPlan) -> &'static str {
    match node {
        LogicalPlan::Limit(_) | LogicalPlan::Sort(_) => "LIMIT or OFFSET",
        LogicalPlan::Distinct(_) | LogicalPlan::Aggregate(_) => {
            "DISTINCT, GROUP BY or an aggregate"
        }
        LogicalPlan::Union(_) => "UNION",
        LogicalPlan::Filter(_) => "a filter on the result",
        LogicalPlan::Join(_) => "a join",
        LogicalPlan::Window(_) => "a window function",
        LogicalPlan::Dml(_) => "UPDATE or DELETE",
        LogicalPlan::Ddl(_) | LogicalPlan::Copy(_) => "CREATE … AS or COPY",
        _ => "another operation",
    }
}

fn refuse(name: &str, place: &str) -> Result<()> {
    plan_err!(
        "{name}() cannot be called {place}; nothing was run. Call it as a whole item of the \
         statement's outermost SELECT list and choose the rows with WHERE, e.g. \
         SELECT {name}(…) FROM jammi.public.models WHERE <condition>"
    )
}
