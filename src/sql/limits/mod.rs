//! Limits that hold inside one batch (SPEC §14): what one call of a scalar function may
//! build, and the statement's deadline, for sessions that run other people's SQL (the
//! `jammi serve` sessions).
//!
//! DataFusion bounds the memory of its operators (sorts, joins, aggregates: the memory
//! pool) and a server bounds a statement's time between batches. Neither sees the work a
//! scalar function does inside one call: `repeat('x', 1500000000)` allocates 1.5 GB in one
//! step (even while the statement is planned, where constant arguments are folded), and no
//! timeout can stop a step that never yields. [`bound_functions`] adds an analyzer rule
//! (`rule`) to a session that wraps every call of a scalar function in its statements
//! (`scalar`), so that each call
//!
//! - first checks the statement's deadline ([`StatementLimits::deadline`]), so a statement
//!   made of many calls stops on time, even while it is being planned;
//! - for the functions whose output can be far larger than their input (a count or a
//!   product of two inputs decides its size, or any number of arguments are joined:
//!   `estimate`), refuses before it allocates when the output would exceed
//!   [`StatementLimits::max_value_bytes`];
//! - for every other function (whose output is at most a small multiple of its input),
//!   refuses an output over the limit after it is built.
//!
//! A value computed once for a whole batch (every argument a constant) counts once per
//! row: a projection copies it into each. The `||` operator is not a function in
//! DataFusion; the rule rewrites it into one under the same limits (`concat`).
//!
//! Aggregates keep their state in the query's memory pool, charged after every batch;
//! `string_agg`, which writes its delimiter once per value, is wrapped as well
//! (`aggregate`). Async functions (the catalog's own) are left as they are: they build one
//! small value per row.

mod aggregate;
mod concat;
mod estimate;
mod rule;
mod scalar;

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::common::config_err;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Expr, LogicalPlan, WindowFunctionDefinition};
use datafusion::prelude::SessionContext;

use crate::error::CatalogError;

/// What one statement of a session may do inside a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatementLimits {
    /// The most bytes one call of a scalar function may build (over all the rows of one
    /// batch): a server passes its per-query memory limit.
    pub max_value_bytes: usize,
    /// When the statement must stop; checked at every call of a scalar function.
    pub deadline: Option<Instant>,
    /// The statement's time limit, for the message of a missed deadline.
    pub timeout: Duration,
}

impl ConfigExtension for StatementLimits {
    const PREFIX: &'static str = "jammi_limits";
}

impl Default for StatementLimits {
    fn default() -> Self {
        StatementLimits {
            max_value_bytes: usize::MAX,
            deadline: None,
            timeout: Duration::MAX,
        }
    }
}

impl ExtensionOptions for StatementLimits {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(*self)
    }

    /// The host sets the limits; SQL cannot (`SET jammi_limits.…` is refused).
    fn set(&mut self, key: &str, _value: &str) -> Result<()> {
        config_err!("jammi_limits.{key} cannot be set from SQL: the server sets its limits")
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        vec![]
    }
}

/// Puts `limits` on every statement `ctx` plans from now on (see the module doc): stores
/// them in the session's configuration, where each call reads them, and adds the rule
/// that puts every call under them. Called again, it replaces the limits (a server starts
/// a statement's clock again when the statement's turn to run comes).
pub fn bound_functions(ctx: &SessionContext, limits: StatementLimits) {
    bound_state(&mut ctx.state_ref().write(), limits);
}

/// [`bound_functions`] for a `SessionState` (e.g. one derived from a
/// [`SessionTemplate`](crate::sql::session::SessionTemplate)).
/// The statement starts now: its physical plans read these limits, and `now()`, as of
/// this call (DataFusion captures the configuration when a state marks its start).
pub fn bound_state(state: &mut SessionState, limits: StatementLimits) {
    state.config_mut().options_mut().extensions.insert(limits);
    if !state
        .analyzer()
        .rules
        .iter()
        .any(|r| r.name() == rule::NAME)
    {
        state.add_analyzer_rule(Arc::new(rule::BoundStatements::new()));
    }
    state.mark_start_execution();
}

/// Whether `plan` (analyzed) holds the limits of the statement it was analyzed for: an
/// aggregate under the limits keeps them in the plan (its accumulators cannot read the
/// session), so such a plan must not run as another statement.
pub fn holds_deadline(plan: &LogicalPlan) -> bool {
    let mut holds = false;
    let _ = plan.apply_with_subqueries(|node| {
        for expr in node.expressions() {
            expr.apply(|e| {
                holds |= match e {
                    Expr::AggregateFunction(AggregateFunction { func, .. }) => {
                        aggregate::is_bounded(func)
                    }
                    Expr::WindowFunction(window) => matches!(
                        &window.fun,
                        WindowFunctionDefinition::AggregateUDF(func) if aggregate::is_bounded(func)
                    ),
                    _ => false,
                };
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(TreeNodeRecursion::Continue)
    });
    holds
}

/// Fails when the deadline of `limits` has passed.
fn deadline_passed(limits: &StatementLimits) -> Result<()> {
    match limits.deadline {
        Some(deadline) if Instant::now() >= deadline => Err(CatalogError::DeadlineExceeded {
            timeout: limits.timeout,
        }
        .into_datafusion()),
        _ => Ok(()),
    }
}

/// The refusal of a value of `bytes` built (or about to be, `before`) by `function`.
fn too_large(function: &str, bytes: u128, limits: &StatementLimits, before: bool) -> CatalogError {
    CatalogError::LimitExceeded(format!(
        "{function}() {} {} in one call, more than the {} a value may take on this server \
         (its per-query memory limit)",
        if before { "would build" } else { "built" },
        human_bytes(bytes),
        human_bytes(limits.max_value_bytes as u128),
    ))
}

/// `bytes` for a person: `1.5 GB`, `64.0 MiB`.
fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
