//! Joins of catalog tables sent to the database as one statement (SPEC §15).
//!
//! DataFusion joins two catalog scans by reading both: even with the build side's keys
//! pushed into the probe side's scan (`sql::dynamic`), that is two statements, a hash join,
//! and the Arrow conversion of both inputs. The database does the same join with its
//! indexes in one statement. [`JoinPushdown`], a logical optimizer rule that runs after
//! DataFusion's own, replaces each largest subtree of joins whose leaves are all catalog
//! tables with one scan of a [`JoinedTable`], whose SQL is the whole join
//! ([`Relation`]), under a projection that gives the columns back their names.
//!
//! What is sent is only what has the same meaning in the database as in DataFusion:
//!
//! - leaves: scans of the session's catalog tables (not a table lent to a foreign session,
//!   not a time-travel function), with the filters pushed into them (those are exact,
//!   `sql::filter`) and no row limit;
//! - between them: table aliases, and projections that only pick or rename columns;
//! - joins: inner, left, right, full, and left or right semi and anti joins, on equal keys
//!   of the same type family (text with text: both databases compare text bytewise for
//!   equality; integers with integers, widened or not; timestamps with timestamps), with
//!   SQL's rule that a NULL key matches nothing. A join with any other condition, with
//!   `NULL = NULL` matching, or a null-aware anti join (`NOT IN`) stays in DataFusion.
//!
//! A top N over such a join (a sort with a limit, on columns the join reads) is sent with
//! it as `ORDER BY … LIMIT n`; DataFusion's sort stays above and picks from those n rows.
//!
//! Anything else in the subtree (a filter DataFusion keeps, a computed column, a user's
//! table) leaves that join to DataFusion, whose scans then take the dynamic filters; a
//! smaller join below it may still be sent. `SET jammi.join_pushdown = false` turns the
//! rule off for a session.

mod relation;
mod table;

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchemaRef, NullEquality};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::error::Result;
use datafusion::logical_expr::{
    Expr, Join, JoinType, LogicalPlan, LogicalPlanBuilder, Sort, TableScan, expr::Cast,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use relation::{JoinKind, MAX_COLUMNS, Side};
pub(crate) use relation::{Relation, SortKey};
pub(crate) use table::JoinedTable;

use super::binding::join_pushdown;
use super::filter::translate;
use super::table::CatalogTable;
use super::tables::{ColumnKind, projected};

/// The name of the rewritten plan's scan (its columns are `jammi_join.c0`, …; the
/// projection above names them as the join did).
const JOINED: &str = "jammi_join";

/// The optimizer rule (see the module docs).
#[derive(Debug)]
pub(crate) struct JoinPushdown;

impl OptimizerRule for JoinPushdown {
    fn name(&self) -> &str {
        "jammi_join_pushdown"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        if !join_pushdown(&config.options()) {
            return Ok(Transformed::no(plan));
        }
        // From the top, so that the largest subtree is sent; its children are not visited.
        plan.transform_down_with_subqueries(|node| {
            let sent = match &node {
                LogicalPlan::Sort(sort) => sorted_join(sort)?,
                LogicalPlan::Join(_) => send_join(&node, Vec::new(), None)?,
                _ => None,
            };
            Ok(match sent {
                Some(plan) => Transformed::new(plan, true, TreeNodeRecursion::Jump),
                None => Transformed::no(node),
            })
        })
    }
}

/// The plan reading `join` as one statement, its first `fetch` rows in `order`, if it can
/// be sent.
fn send_join(
    join: &LogicalPlan,
    order: Vec<SortKey>,
    fetch: Option<usize>,
) -> Result<Option<LogicalPlan>> {
    match Fragment::of(join) {
        Some(fragment) => fragment.into_plan(join.schema(), order, fetch),
        None => Ok(None),
    }
}

/// A sort with a limit (a top N) over a join that can be sent, with the join sent together
/// with its `ORDER BY … LIMIT n`: the sort stays, and picks from the n rows.
///
/// Sent only when every key is a column the join reads (see `Relation::render_order` for
/// why the database then orders as DataFusion does). Rows equal on every key may come out
/// as different ones of them, as in DataFusion itself.
fn sorted_join(sort: &Sort) -> Result<Option<LogicalPlan>> {
    let Some(fetch) = sort.fetch else {
        return Ok(None);
    };
    let Some(fragment) = Fragment::of(&sort.input) else {
        return Ok(None);
    };
    if !matches!(fragment.relation, Relation::Join { .. }) {
        return Ok(None);
    }
    let schema = sort.input.schema();
    let order: Option<Vec<SortKey>> = sort
        .expr
        .iter()
        .map(|key| {
            let i = schema.index_of_column(picked_column(&key.expr)?).ok()?;
            Some(SortKey {
                column: fragment.columns[i],
                descending: !key.asc,
                nulls_first: key.nulls_first,
            })
        })
        .collect();
    let Some(order) = order else {
        return Ok(None);
    };
    // Between the sort and its join there are only aliases and projections (the fragment
    // says so): the first join from the top is the one whose columns the keys name.
    let mut order = Some(order);
    let input = Arc::unwrap_or_clone(Arc::clone(&sort.input)).transform_down(|node| {
        let LogicalPlan::Join(_) = &node else {
            return Ok(Transformed::no(node));
        };
        // The limit goes only with the order: a limit alone would keep any n rows.
        let Some(order) = order.take() else {
            return Ok(Transformed::new(node, false, TreeNodeRecursion::Jump));
        };
        let sent = send_join(&node, order, Some(fetch))?;
        Ok(match sent {
            Some(plan) => Transformed::new(plan, true, TreeNodeRecursion::Jump),
            None => Transformed::new(node, false, TreeNodeRecursion::Jump),
        })
    })?;
    if !input.transformed {
        return Ok(None);
    }
    Ok(Some(LogicalPlan::Sort(Sort {
        expr: sort.expr.clone(),
        input: Arc::new(input.data),
        fetch: sort.fetch,
    })))
}

/// A subtree of a plan as a relation: the plan's i-th column is column `c{columns[i]}` of
/// `relation`.
struct Fragment {
    relation: Relation,
    columns: Vec<usize>,
}

impl Fragment {
    /// `plan` as a relation, if all of it can be sent (see the module docs).
    fn of(plan: &LogicalPlan) -> Option<Fragment> {
        match plan {
            LogicalPlan::TableScan(scan) => Fragment::table(scan),
            LogicalPlan::SubqueryAlias(alias) => Fragment::of(&alias.input),
            LogicalPlan::Projection(projection) => {
                let input = Fragment::of(&projection.input)?;
                let schema = projection.input.schema();
                let columns = projection
                    .expr
                    .iter()
                    .map(|e| {
                        let i = schema.index_of_column(picked_column(e)?).ok()?;
                        Some(input.columns[i])
                    })
                    .collect::<Option<_>>()?;
                Some(Fragment {
                    relation: input.relation,
                    columns,
                })
            }
            LogicalPlan::Join(join) => Fragment::join(join),
            _ => None,
        }
    }

    fn table(scan: &TableScan) -> Option<Fragment> {
        let provider = source_as_provider(&scan.source).ok()?;
        let table = provider.downcast_ref::<CatalogTable>()?;
        if !table.takes_session_scope() || scan.fetch.is_some() {
            return None;
        }
        let def = table.def();
        let indices = projected(scan.projection.as_ref(), def.columns.len());
        // Filters in a scan were answered `Exact`, so each translates.
        let predicates = scan
            .filters
            .iter()
            .map(|f| translate(f, def))
            .collect::<Option<_>>()?;
        Some(Fragment {
            columns: (0..indices.len()).collect(),
            relation: Relation::Table {
                table: def,
                columns: indices.iter().map(|&i| &def.columns[i]).collect(),
                predicates,
            },
        })
    }

    fn join(join: &Join) -> Option<Fragment> {
        if join.null_aware
            || join.filter.is_some()
            || join.null_equality != NullEquality::NullEqualsNothing
        {
            return None;
        }
        let kind = match join.join_type {
            JoinType::Inner => JoinKind::Inner,
            JoinType::Left => JoinKind::Left,
            JoinType::Right => JoinKind::Right,
            JoinType::Full => JoinKind::Full,
            JoinType::LeftSemi => JoinKind::Semi(Side::Left),
            JoinType::RightSemi => JoinKind::Semi(Side::Right),
            JoinType::LeftAnti => JoinKind::Anti(Side::Left),
            JoinType::RightAnti => JoinKind::Anti(Side::Right),
            JoinType::LeftMark | JoinType::RightMark => return None,
        };
        let (keeps_left, keeps_right) = match kind {
            JoinKind::Semi(side) | JoinKind::Anti(side) => {
                (side == Side::Left, side == Side::Right)
            }
            _ => (true, true),
        };
        let left = Fragment::of(&join.left)?;
        let right = Fragment::of(&join.right)?;
        let on = join
            .on
            .iter()
            .map(|(l, r)| {
                let l = left.key(l, join.left.schema())?;
                let r = right.key(r, join.right.schema())?;
                let (a, b) = (left.relation.kind(l), right.relation.kind(r));
                (a == b || a.is_integer() && b.is_integer()).then_some((l, r))
            })
            .collect::<Option<Vec<_>>>()?;
        // Postgres runs a full join only on keys it can merge or hash.
        if kind == JoinKind::Full && on.is_empty() {
            return None;
        }
        let mut select = Vec::new();
        if keeps_left {
            select.extend(left.columns.iter().map(|&i| (Side::Left, i)));
        }
        if keeps_right {
            select.extend(right.columns.iter().map(|&i| (Side::Right, i)));
        }
        if select.len() != join.schema.fields().len() || select.len() > MAX_COLUMNS {
            return None;
        }
        Some(Fragment {
            columns: (0..select.len()).collect(),
            relation: Relation::Join {
                left: Box::new(left.relation),
                right: Box::new(right.relation),
                kind,
                on,
                select,
            },
        })
    }

    /// The relation's column that a join key `expr` over `schema` reads: a column, or an
    /// integer column widened to 64 bits (the database compares integers of any width).
    fn key(&self, expr: &Expr, schema: &DFSchemaRef) -> Option<usize> {
        let (column, widened) = match expr {
            Expr::Column(c) => (c, false),
            Expr::Cast(Cast { expr, field, .. }) => match expr.as_ref() {
                Expr::Column(c) if field.data_type() == &ColumnKind::Int64.data_type() => (c, true),
                _ => return None,
            },
            _ => return None,
        };
        let i = self.columns[schema.index_of_column(column).ok()?];
        (!widened || self.relation.kind(i).is_integer()).then_some(i)
    }

    /// The plan that reads the fragment as one scan, with the columns of `schema` (the
    /// subtree's), or `None` if the fragment does not show its relation's columns in order
    /// (a join's does) or a column's type is not the one the database gives.
    fn into_plan(
        self,
        schema: &DFSchemaRef,
        order: Vec<SortKey>,
        fetch: Option<usize>,
    ) -> Result<Option<LogicalPlan>> {
        let in_order = self.columns.iter().copied().eq(0..self.relation.width());
        let same_types = schema.fields().len() == self.columns.len()
            && schema
                .fields()
                .iter()
                .enumerate()
                .all(|(i, field)| field.data_type() == &self.relation.kind(i).data_type());
        if !in_order || !same_types {
            return Ok(None);
        }
        // The same nullability as the subtree's, so that the nodes above it, which keep
        // the schemas they computed, still match their input.
        let nullable = schema.fields().iter().map(|f| f.is_nullable()).collect();
        let table = JoinedTable::new(self.relation, nullable, order, fetch);
        // The scan's `fetch` shows the limit in the logical plan (the order is the table's).
        let scan = LogicalPlanBuilder::scan_with_filters_fetch(
            JOINED,
            provider_as_source(Arc::new(table)),
            None,
            Vec::new(),
            fetch,
        )?;
        let names = schema.iter().enumerate().map(|(i, (qualifier, field))| {
            Expr::Column(Column::new(Some(JOINED), format!("c{i}")))
                .alias_qualified(qualifier.cloned(), field.name())
        });
        Ok(Some(scan.project(names)?.build()?))
    }
}

/// The column a projection's expression only picks (or renames).
fn picked_column(expr: &Expr) -> Option<&Column> {
    match expr {
        Expr::Column(c) => Some(c),
        Expr::Alias(alias) => picked_column(&alias.expr),
        _ => None,
    }
}
