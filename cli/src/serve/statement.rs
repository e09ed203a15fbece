//! One call's SQL: a fresh session bound to the caller's scope, the statement planned
//! under the server's rules, its parameters bound, and its result as a stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::{DmlStatement, Expr, LogicalPlan, LogicalPlanBuilder, WriteOp};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use jammi_catalog::sql::limits::{StatementLimits, bound_functions};
use jammi_catalog::{Catalog, Grant, register_catalog};
use tonic::Status;

use super::error::status_of;

/// Per-query limits (SPEC §11, §14).
#[derive(Clone, Copy, Debug)]
pub struct QueryLimits {
    /// Bytes of memory one query's operators may reserve (DataFusion's memory pool), and
    /// the most one call of a scalar function may build.
    pub memory: usize,
    /// The longest a statement may run, planning and streaming included.
    pub timeout: Duration,
}

/// A session for one call: its own catalog list bound to `grant`'s scope and access level
/// (never shared with another call, so nothing can rebind it), `jammi.public` as the
/// default schema, so that `SELECT * FROM models` works, and `information_schema`. Its
/// memory pool is the query's limit, and it never spills to the server's disk: a query
/// needing more memory fails with `RESOURCE_EXHAUSTED`. The same limits hold inside a
/// batch (`sql::limits`).
pub fn session(
    catalog: &Catalog,
    grant: Grant,
    limits: QueryLimits,
) -> Result<SessionContext, Status> {
    let config = SessionConfig::new()
        .with_information_schema(true)
        .with_create_default_catalog_and_schema(false)
        .with_default_catalog_and_schema("jammi", "public");
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(limits.memory, 1.0)
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc()
        .map_err(|e| Status::internal(format!("cannot build the query runtime: {e}")))?;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    register_catalog(
        &ctx,
        &catalog.with_scope(grant.scope).narrowed(grant.access),
    );
    start_clock(&ctx, limits);
    Ok(ctx)
}

/// Starts the statement's clock in `ctx`: the limits inside a batch (`sql::limits`: every
/// function's value within the memory limit, and the deadline checked at every call,
/// planning and its constant folding included), with the deadline `limits.timeout` from
/// now. Called when the session is made, and again when the statement's turn to run
/// comes, so that waiting for a turn does not count against it.
pub fn start_clock(ctx: &SessionContext, limits: QueryLimits) {
    bound_functions(
        ctx,
        StatementLimits {
            max_value_bytes: limits.memory,
            deadline: Instant::now().checked_add(limits.timeout),
            timeout: limits.timeout,
        },
    );
}

/// Plans `sql` without running any of it, refusing what would touch the server's own
/// machine or session: DDL (`CREATE [EXTERNAL] TABLE`, views, `DROP`), `COPY`, `SET` and
/// other statements. Queries, `INSERT`, `DELETE`, `EXPLAIN` and the catalog's functions
/// remain.
pub async fn plan(ctx: &SessionContext, sql: &str) -> Result<LogicalPlan, Status> {
    let plan = ctx
        .state()
        .create_logical_plan(sql)
        .await
        .map_err(|e| status_of(&e))?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_statements(false)
        .with_allow_dml(true)
        .verify_plan(&plan)
        .map_err(|_| refused(&plan))?;
    let mut copies = false;
    plan.apply_with_subqueries(|node| {
        copies |= matches!(node, LogicalPlan::Copy(_));
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|e| status_of(&e))?;
    if copies {
        return Err(refused(&plan));
    }
    Ok(plan)
}

/// The refusal of `plan`, naming the node that is refused (e.g. the DDL under an EXPLAIN).
fn refused(plan: &LogicalPlan) -> Status {
    let mut what = None;
    let _ = plan.apply_with_subqueries(|node| {
        what = match node {
            LogicalPlan::Ddl(ddl) => Some(ddl.name().to_owned()),
            LogicalPlan::Statement(s) => Some(s.name().to_owned()),
            LogicalPlan::Copy(_) => Some("COPY".to_owned()),
            _ => None,
        };
        Ok(if what.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    Status::permission_denied(format!(
        "{} is not allowed on the server: it runs queries, INSERT, DELETE and the catalog's \
         functions; DDL, COPY, SET and file access are refused",
        what.unwrap_or_else(|| "this statement".to_owned())
    ))
}

/// The parameter types of `plan` as a schema of fields `$1`, `$2`, … (a type DataFusion
/// cannot infer is `Null`).
pub fn parameter_schema(plan: &LogicalPlan) -> Result<Schema, Status> {
    let types = plan.get_parameter_types().map_err(|e| status_of(&e))?;
    let mut names: Vec<_> = types.into_iter().collect();
    names.sort_by_key(|(name, _)| {
        name.trim_start_matches('$')
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    Ok(Schema::new(
        names
            .into_iter()
            .map(|(name, ty)| Field::new(name, ty.unwrap_or(DataType::Null), true))
            .collect::<Vec<_>>(),
    ))
}

/// The parameter rows of `batches`, each the values of one row in column order (ADBC
/// names the columns `0`, `1`, …; only their position counts).
pub fn parameter_rows(batches: &[RecordBatch]) -> Result<Vec<Vec<ScalarValue>>, Status> {
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|column| ScalarValue::try_from_array(column, row))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| Status::invalid_argument(format!("parameter row {row}: {e}")))?,
            );
        }
    }
    Ok(rows)
}

/// `plan` with `values` for `$1`, `$2`, …, each cast to the type the planner inferred for
/// its placeholder (clients send what their language has: Python's ints are Int64 where
/// `version` is Int32). A value the cast cannot represent is refused, not truncated.
pub fn bind(plan: LogicalPlan, values: Vec<ScalarValue>) -> Result<LogicalPlan, Status> {
    if values.is_empty() {
        return Ok(plan);
    }
    let types = plan.get_parameter_types().map_err(|e| status_of(&e))?;
    let values = values
        .into_iter()
        .enumerate()
        .map(|(i, value)| match types.get(&format!("${}", i + 1)) {
            Some(Some(expected)) if value.data_type() != *expected && !value.is_null() => {
                let cast = value.cast_to(expected).ok().filter(|cast| {
                    // Exact only: the value must come back unchanged.
                    cast.cast_to(&value.data_type()).ok().as_ref() == Some(&value)
                });
                cast.ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "parameter ${}: {value} is not a valid {expected}",
                        i + 1
                    ))
                })
            }
            _ => Ok(value),
        })
        .collect::<Result<Vec<_>, _>>()?;
    plan.with_param_values(values).map_err(|e| status_of(&e))
}

/// The most parameter rows one update binds (`executemany`).
pub const MAX_PARAMETER_ROWS: usize = 100_000;

/// The statements an update with parameter `rows` runs, in order.
///
/// An `INSERT … VALUES (…)` of one row whose placeholders are all in that row becomes one
/// `INSERT … VALUES` of all the rows, in their order: one statement, one transaction (all
/// rows or none), the shape the catalog's INSERT rules check. Any other statement runs
/// once per row, each its own statement.
pub fn for_rows(
    plan: LogicalPlan,
    rows: Vec<Vec<ScalarValue>>,
) -> Result<Vec<LogicalPlan>, Status> {
    if rows.len() > MAX_PARAMETER_ROWS {
        return Err(Status::invalid_argument(format!(
            "{} parameter rows in one call; the limit is {MAX_PARAMETER_ROWS}",
            rows.len()
        )));
    }
    if rows.len() <= 1 {
        return Ok(vec![bind(
            plan,
            rows.into_iter().next().unwrap_or_default(),
        )?]);
    }
    if !is_single_row_insert(&plan) {
        return rows
            .into_iter()
            .map(|row| bind(plan.clone(), row))
            .collect();
    }
    let mut values = Vec::with_capacity(rows.len());
    for row in rows {
        let bound = bind(plan.clone(), row)?;
        let mut rows_of_bound = Vec::new();
        bound
            .apply(|node| {
                if let LogicalPlan::Values(v) = node {
                    rows_of_bound.extend(v.values.iter().cloned());
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .map_err(|e| status_of(&e))?;
        values.extend(rows_of_bound);
    }
    let all = LogicalPlanBuilder::values(values)
        .and_then(|b| b.build())
        .map_err(|e| status_of(&e))?;
    let merged = plan
        .transform_up(|node| match node {
            LogicalPlan::Values(_) => Ok(Transformed::yes(all.clone())),
            other => other.recompute_schema().map(Transformed::yes),
        })
        .map_err(|e| status_of(&e))?
        .data;
    Ok(vec![merged])
}

/// An `INSERT` whose only `VALUES` has one row and holds every placeholder of the
/// statement (none in a subquery or elsewhere).
fn is_single_row_insert(plan: &LogicalPlan) -> bool {
    if !matches!(
        plan,
        LogicalPlan::Dml(DmlStatement {
            op: WriteOp::Insert(_),
            ..
        })
    ) {
        return false;
    }
    let (mut values, mut one_row, mut placeholders_elsewhere) = (0, false, false);
    let visited = plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::Values(v) => {
                values += 1;
                one_row = v.values.len() == 1;
            }
            other => {
                for expr in other.expressions() {
                    expr.apply(|e| {
                        placeholders_elsewhere |= matches!(e, Expr::Placeholder(_));
                        Ok(TreeNodeRecursion::Continue)
                    })?;
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    visited.is_ok() && values == 1 && one_row && !placeholders_elsewhere
}

/// The physical plan of `plan`: what the client is told about (its schema) and what runs.
pub async fn physical(
    ctx: &SessionContext,
    plan: LogicalPlan,
) -> Result<Arc<dyn ExecutionPlan>, Status> {
    ctx.state()
        .create_physical_plan(&plan)
        .await
        .map_err(|e| status_of(&e))
}

/// Starts `plan`.
pub fn execute(
    ctx: &SessionContext,
    plan: Arc<dyn ExecutionPlan>,
) -> Result<SendableRecordBatchStream, Status> {
    datafusion::physical_plan::execute_stream(plan, ctx.task_ctx()).map_err(|e| status_of(&e))
}

/// What an update reports: the `count` of a DML statement's result, or the rows of any
/// other statement (e.g. `SELECT register_model(…)`).
pub fn update_count(schema: &SchemaRef, batches: &[RecordBatch]) -> i64 {
    let is_count = schema.fields().len() == 1
        && schema.field(0).name() == "count"
        && schema.field(0).data_type() == &DataType::UInt64;
    let total: u64 = if is_count {
        batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<UInt64Type>().iter().flatten())
            .sum()
    } else {
        batches.iter().map(|b| b.num_rows() as u64).sum()
    };
    i64::try_from(total).unwrap_or(i64::MAX)
}
