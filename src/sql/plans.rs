//! Statements planned once and run many times: the analyzed plan of a statement text, its
//! parameters bound per run, and a bounded cache of such plans for a host that sees the same
//! statements again and again (the server: a prepared statement is planned when it is
//! created, then again for its `FlightInfo` and for its run, by every client).
//!
//! What a plan holds, and why reusing it is exact:
//!
//! - **No data, no scope.** A catalog table in a plan names only its definition; the
//!   scope and database are read from the session that runs it (`sql::binding`), and the
//!   rows when it runs. So a cached plan serves the same answer as a fresh one.
//! - **Only what planning decided from the statement and the grant.** The analyzer's
//!   decisions (types, the catalog's guard, which refuses by access level, the limits'
//!   wrapping of calls) depend on the statement, the grant and the fixed configuration:
//!   the cache's key is (grant, statement text). What depends on the moment (`now()`, the
//!   limits' deadline, the snapshot of a read) is settled later, per run: the optimizer
//!   folds `now()` with the run's start time, every call reads the run's limits, scans
//!   read at execution.
//! - **Nothing else.** A plan is cached only when every table it reads or writes is a
//!   catalog table of the session: a plan with a table function (`models_as_of(now() -
//!   …)` folds its instant while planning), an `information_schema` table (it holds the
//!   planning session's catalog list), an aggregate wrapped by the limits (it holds the
//!   planning statement's deadline), `EXPLAIN`, or a host's table is planned afresh each
//!   time.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{ScalarValue, internal_err};
use datafusion::error::Result;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{LogicalPlan, TableSource};
use datafusion::physical_plan::ExecutionPlan;
use hashlink::LruCache;

use super::limits;
use super::table::CatalogTable;
use crate::access::Grant;
use crate::error::CatalogError;

/// A statement's plan, ready to be bound and run any number of times.
#[derive(Debug)]
pub struct PreparedPlan {
    /// Analyzed when `analyzed`; as SQL planning left it otherwise.
    plan: LogicalPlan,
    analyzed: bool,
    /// Each placeholder's type as the planner inferred it (`None`: unknown).
    parameters: HashMap<String, Option<DataType>>,
    /// Whether a run of it may be served to another run (see the module docs).
    reusable: bool,
}

impl PreparedPlan {
    /// Prepares `plan` (as SQL planning made it) for runs in sessions like `state`: analyzed
    /// now when every placeholder's type is known, so that a run only binds, optimizes and
    /// plans physically; otherwise analyzed at each run, after its values are bound.
    ///
    /// # Errors
    /// What analysis refuses (types, the catalog's guard), or placeholders of conflicting
    /// types.
    pub fn new(state: &SessionState, plan: LogicalPlan) -> Result<Self> {
        let parameters = plan.get_parameter_types()?;
        let explains = matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_));
        let analyze_now = !explains && parameters.values().all(Option::is_some);
        let plan = if analyze_now {
            analyze(state, plan)?
        } else {
            plan
        };
        let reusable = !explains && reads_only_catalog_tables(&plan) && {
            // A wrapped aggregate holds the deadline of the statement it was analyzed for.
            !analyze_now || !limits::holds_deadline(&plan)
        };
        Ok(PreparedPlan {
            plan,
            analyzed: analyze_now,
            parameters,
            reusable,
        })
    }

    /// The placeholders as a schema of fields `$1`, `$2`, … in order (a type the planner
    /// could not infer is `Null`).
    pub fn parameter_schema(&self) -> Schema {
        let mut names: Vec<_> = self.parameters.iter().collect();
        names.sort_by_key(|(name, _)| {
            name.trim_start_matches('$')
                .parse::<usize>()
                .unwrap_or(usize::MAX)
        });
        Schema::new(
            names
                .into_iter()
                .map(|(name, ty)| Field::new(name, ty.clone().unwrap_or(DataType::Null), true))
                .collect::<Vec<_>>(),
        )
    }

    /// The statement with `values` for `$1`, `$2`, …, each cast to the type the planner
    /// inferred for its placeholder (clients send what their language has: Python's ints
    /// are Int64 where `version` is Int32), analyzed in `state` if it was not analyzed
    /// when prepared. A value the cast cannot represent is refused, not truncated.
    ///
    /// `state` may be `None` when [`binds_alone`](Self::binds_alone): a host that serves
    /// the statement from a cache need not derive a session only to bind it.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] for a value its placeholder's type cannot hold
    /// exactly; a missing value; what analysis refuses; no `state` where one is needed.
    pub fn bind(
        &self,
        state: Option<&SessionState>,
        values: Vec<ScalarValue>,
    ) -> Result<BoundPlan> {
        let plan = bind_typed(self.plan.clone(), &self.parameters, values)?;
        if self.binds_alone() {
            return Ok(BoundPlan {
                plan,
                analyzed: self.analyzed,
            });
        }
        let Some(state) = state else {
            return internal_err!("a statement analyzed at each run was bound without a session");
        };
        Ok(BoundPlan {
            plan: analyze(state, plan)?,
            analyzed: true,
        })
    }

    /// Whether [`bind`](Self::bind) needs no session: the plan was analyzed when it was
    /// prepared, or it is an `EXPLAIN` (analyzed as it is planned physically).
    pub fn binds_alone(&self) -> bool {
        self.analyzed || matches!(self.plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_))
    }

    /// The plan as prepared (analyzed, if it could be).
    pub fn plan(&self) -> &LogicalPlan {
        &self.plan
    }
}

/// `plan` with `values` for `$1`, `$2`, …, each cast to the type the planner inferred
/// for its placeholder (clients send what their language has: Python's ints are Int64
/// where `version` is Int32). A value the cast cannot represent is refused, not truncated.
///
/// # Errors
/// [`CatalogError::InvalidInput`] for a value its placeholder's type cannot hold exactly;
/// a missing value; placeholders of conflicting types.
pub fn bind(plan: LogicalPlan, values: Vec<ScalarValue>) -> Result<LogicalPlan> {
    if values.is_empty() {
        return Ok(plan);
    }
    let types = plan.get_parameter_types()?;
    bind_typed(plan, &types, values)
}

/// [`bind`] with the placeholders' types known.
fn bind_typed(
    plan: LogicalPlan,
    types: &HashMap<String, Option<DataType>>,
    values: Vec<ScalarValue>,
) -> Result<LogicalPlan> {
    if values.is_empty() {
        return Ok(plan);
    }
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
                    CatalogError::invalid(
                        "parameter",
                        format!("${}: {value} is not a valid {expected}", i + 1),
                    )
                    .into_datafusion()
                })
            }
            _ => Ok(value),
        })
        .collect::<Result<Vec<_>>>()?;
    plan.with_param_values(values)
}

/// A statement with its values bound, analyzed (unless it is an `EXPLAIN`, which is
/// analyzed as it is planned physically).
#[derive(Debug)]
pub struct BoundPlan {
    plan: LogicalPlan,
    analyzed: bool,
}

impl BoundPlan {
    /// The schema of its result: the schema its run streams.
    pub fn schema(&self) -> Schema {
        self.plan.schema().as_arrow().clone()
    }

    /// The logical plan.
    pub fn plan(&self) -> &LogicalPlan {
        &self.plan
    }

    /// The physical plan, optimized in `state` (whose start time `now()` is folded with).
    ///
    /// # Errors
    /// What the optimizer or the physical planner refuses.
    pub async fn physical(&self, state: &SessionState) -> Result<Arc<dyn ExecutionPlan>> {
        if !self.analyzed {
            return state.create_physical_plan(&self.plan).await;
        }
        let optimized = state
            .optimizer()
            .optimize(self.plan.clone(), state, |_, _| {})?;
        state
            .query_planner()
            .create_physical_plan(&optimized, state)
            .await
    }
}

/// `plan` through `state`'s analyzer (types, the catalog's guard, the limits' rule).
fn analyze(state: &SessionState, plan: LogicalPlan) -> Result<LogicalPlan> {
    state
        .analyzer()
        .execute_and_check(plan, state.config_options(), |_, _| {})
}

/// Whether every table `plan` reads or writes is a catalog table that takes its scope
/// from the session that runs it.
fn reads_only_catalog_tables(plan: &LogicalPlan) -> bool {
    let of_session = |source: &Arc<dyn TableSource>| {
        source_as_provider(source).is_ok_and(|provider| {
            provider
                .downcast_ref::<CatalogTable>()
                .is_some_and(CatalogTable::takes_session_scope)
        })
    };
    let mut only = true;
    let visited = plan.apply_with_subqueries(|node| {
        only &= match node {
            LogicalPlan::TableScan(scan) => of_session(&scan.source),
            LogicalPlan::Dml(dml) => of_session(&dml.target),
            LogicalPlan::Explain(_)
            | LogicalPlan::Analyze(_)
            | LogicalPlan::DescribeTable(_)
            | LogicalPlan::Extension(_)
            | LogicalPlan::Ddl(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::Copy(_) => false,
            _ => true,
        };
        Ok(if only {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    visited.is_ok() && only
}

/// The most statements a [`PlanCache`] holds by default.
pub const DEFAULT_CACHED_PLANS: usize = 1024;
/// Statements longer than this are planned each time (they are rarely repeated, and a
/// cache of them would hold much memory).
pub const MAX_CACHED_SQL_BYTES: usize = 16 * 1024;

/// The prepared plans of the statements a host ran most recently, by grant and text;
/// the least recently used go first.
#[derive(Debug)]
pub struct PlanCache {
    entries: Mutex<LruCache<(Grant, String), Arc<PreparedPlan>>>,
}

impl PlanCache {
    /// A cache of at most `capacity` plans (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).map_or(1, NonZeroUsize::get);
        PlanCache {
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// The cached plan of `sql` for `grant`, if there is one.
    pub fn get(&self, grant: Grant, sql: &str) -> Option<Arc<PreparedPlan>> {
        // The key is owned; a lookup allocates one string (cheap next to planning).
        self.entries().get(&(grant, sql.to_owned())).cloned()
    }

    /// Caches `prepared` as the plan of `sql` for `grant` (a session bound to `grant`
    /// prepared it), when it may be reused; returns it.
    pub fn insert(&self, grant: Grant, sql: &str, prepared: PreparedPlan) -> Arc<PreparedPlan> {
        let prepared = Arc::new(prepared);
        if prepared.reusable && sql.len() <= MAX_CACHED_SQL_BYTES {
            self.entries()
                .insert((grant, sql.to_owned()), Arc::clone(&prepared));
        }
        prepared
    }

    /// How many plans it holds.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether it holds no plan.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, LruCache<(Grant, String), Arc<PreparedPlan>>> {
        // The cache holds no invariant a panic elsewhere could break.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for PlanCache {
    fn default() -> Self {
        PlanCache::new(DEFAULT_CACHED_PLANS)
    }
}
