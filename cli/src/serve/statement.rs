//! One call's SQL: a session of its own bound to the caller's grant, the statement planned
//! under the server's rules, its parameters bound, and its result as a stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef, UInt64Type};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::execution::context::SQLOptions;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionState;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{DmlStatement, Expr, LogicalPlan, LogicalPlanBuilder, WriteOp};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use jammi_catalog::sql::limits::{StatementLimits, bound_state};
use jammi_catalog::sql::plans::bind;
use jammi_catalog::sql::session::SessionTemplate;
use jammi_catalog::{Catalog, Grant};
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

/// The template of the server's sessions: `jammi.public` as the default schema, so that
/// `SELECT * FROM models` works, `information_schema`, and the limits inside a batch
/// (`sql::limits`) on every statement.
pub fn template() -> SessionTemplate {
    let config = SessionConfig::new()
        .with_information_schema(true)
        .with_create_default_catalog_and_schema(false)
        .with_default_catalog_and_schema("jammi", "public");
    SessionTemplate::with(config, |state| {
        bound_state(state, StatementLimits::default())
    })
}

/// What every call's runtime shares, built once per server: a disk manager that never
/// spills to the server's disk (a query needing more memory than its limit fails with
/// `RESOURCE_EXHAUSTED`), the object store registry and DataFusion's file caches (unused:
/// the server reads no files). Each call adds its own memory pool ([`CallSession`]).
pub fn shared_runtime() -> Result<Arc<RuntimeEnv>, String> {
    RuntimeEnvBuilder::new()
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc()
        .map_err(|e| format!("cannot build the query runtime: {e}"))
}

/// One call's session: its own state, derived from the server's template, bound to the
/// caller's grant (scope and access level) with its own catalog list (never shared with
/// another call, so nothing can rebind it), and, for a call that runs a statement, a
/// runtime whose memory pool is the query's limit. The same limits hold inside a batch
/// (`sql::limits`).
pub struct CallSession {
    pub state: SessionState,
    shared: Arc<RuntimeEnv>,
    limits: QueryLimits,
}

impl CallSession {
    pub fn new(
        template: &SessionTemplate,
        shared: &Arc<RuntimeEnv>,
        catalog: &Catalog,
        grant: Grant,
        limits: QueryLimits,
    ) -> CallSession {
        let state = template.state(&catalog.with_scope(grant.scope).narrowed(grant.access));
        let mut session = CallSession {
            state,
            shared: Arc::clone(shared),
            limits,
        };
        session.start_clock();
        session
    }

    /// Starts the statement's clock: the limits inside a batch (`sql::limits`: every
    /// function's value within the memory limit, and the deadline checked at every call,
    /// planning and its constant folding included), with the deadline the timeout from
    /// now, and `now()` as of now. Called when the session is made, and again when the
    /// statement's turn to run comes, so that waiting for a turn does not count against it.
    pub fn start_clock(&mut self) {
        bound_state(
            &mut self.state,
            StatementLimits {
                max_value_bytes: self.limits.memory,
                deadline: Instant::now().checked_add(self.limits.timeout),
                timeout: self.limits.timeout,
            },
        );
    }

    /// Starts `plan` in a runtime of its own: the server's shared parts and a memory pool
    /// of the query's limit (built here, so that calls that only plan pay nothing for it).
    pub fn execute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
    ) -> Result<SendableRecordBatchStream, Status> {
        let runtime = RuntimeEnvBuilder::from_runtime_env(&self.shared)
            .with_memory_limit(self.limits.memory, 1.0)
            .build_arc()
            .map_err(|e| Status::internal(format!("cannot build the query runtime: {e}")))?;
        let task = TaskContext::from(&self.state).with_runtime(runtime);
        datafusion::physical_plan::execute_stream(plan, Arc::new(task)).map_err(|e| status_of(&e))
    }
}

/// Plans `sql` without running any of it, refusing what would touch the server's own
/// machine or session: DDL (`CREATE [EXTERNAL] TABLE`, views, `DROP`), `COPY`, `SET` and
/// other statements. Queries, `INSERT`, `DELETE`, `EXPLAIN` and the catalog's functions
/// remain.
pub async fn plan(state: &SessionState, sql: &str) -> Result<LogicalPlan, Status> {
    let plan = state
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
        return Ok(vec![
            bind(plan, rows.into_iter().next().unwrap_or_default()).map_err(|e| status_of(&e))?,
        ]);
    }
    if !is_single_row_insert(&plan) {
        return rows
            .into_iter()
            .map(|row| bind(plan.clone(), row).map_err(|e| status_of(&e)))
            .collect();
    }
    let mut values = Vec::with_capacity(rows.len());
    for row in rows {
        let bound = bind(plan.clone(), row).map_err(|e| status_of(&e))?;
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

/// The physical plan of `plan` (as SQL planning made it, with its values bound).
pub async fn physical(
    state: &SessionState,
    plan: LogicalPlan,
) -> Result<Arc<dyn ExecutionPlan>, Status> {
    state
        .create_physical_plan(&plan)
        .await
        .map_err(|e| status_of(&e))
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
