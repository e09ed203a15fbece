//! The scan node: one SELECT against the catalog database, run when the plan executes,
//! streamed as record batches of the session's batch size.

use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::Statistics;
use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_expr_common::physical_expr::snapshot_physical_expr;
use datafusion::physical_plan::execution_plan::apply_expression_roots;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType, SchedulingType};
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterPushdownPhase, FilterPushdownPropagation, PushedDown,
};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::stream::{RecordBatchReceiverStream, RecordBatchStreamAdapter};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};

use super::batch::BatchBuilder;
use super::dynamic::implied_predicate;
use super::filter::{SqlPredicate, render_conjunction};
use super::joined::{Relation, SortKey};
use super::tables::{ColumnDef, TableDef};
use crate::store::{Backend, RowValues, Store, Value};
use crate::tenant::{Scope, owner_of};

/// The SQL and parameters a scan's last run sent, once it has run.
type SentStatement = Arc<Mutex<Option<(String, Vec<Value>)>>>;

/// What a scan reads: one catalog table, or a join of catalog tables sent to the database
/// whole (`sql::joined`).
#[derive(Clone, Debug)]
pub(crate) enum ScanSource {
    Table(&'static TableDef),
    /// The join's rows, in `order` (when a sort with a limit above it was sent too).
    Join {
        relation: Arc<Relation>,
        order: Arc<[SortKey]>,
    },
    /// One catalog table, by a statement planned in another process and shipped here
    /// (`sql::wire`): the SQL with its parameters, tenant predicate, filters and limit in
    /// it, run as it came.
    Shipped {
        table: &'static TableDef,
        sql: Arc<str>,
        args: Arc<[Value]>,
    },
}

impl ScanSource {
    /// The catalog tables read, as EXPLAIN names them.
    fn names(&self) -> String {
        match self {
            ScanSource::Table(table) | ScanSource::Shipped { table, .. } => table.name.to_owned(),
            ScanSource::Join { relation, .. } => relation.table_names().join("+"),
        }
    }
}

/// A one-table scan as it travels between processes (`sql::wire`).
#[derive(Debug)]
pub(crate) struct ShippedScan {
    pub table: &'static TableDef,
    /// The table's columns it reads, by position, in the scan's order.
    pub columns: Vec<usize>,
    pub sql: String,
    pub args: Vec<Value>,
    pub scope: Scope,
    pub visible_rows: Option<u64>,
}

/// Reads the visible rows of one catalog table, or of a join of catalog tables.
#[derive(Debug)]
pub(crate) struct CatalogScanExec {
    source: ScanSource,
    store: Store,
    scope: Scope,
    columns: Vec<&'static ColumnDef>,
    schema: SchemaRef,
    /// The filters pushed at planning (exact), and the row limit.
    predicates: Vec<SqlPredicate>,
    limit: Option<usize>,
    /// About how many rows the scope sees in the table, before filters (statistics).
    visible_rows: Option<u64>,
    /// Filters offered while the plan runs (a join's build keys, a TopK's bound; see
    /// `sql::dynamic`), translated when the scan starts.
    dynamic: Vec<Arc<dyn PhysicalExpr>>,
    /// The statement the last run sent, with the dynamic filters in it (for EXPLAIN
    /// ANALYZE).
    ran: SentStatement,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl CatalogScanExec {
    /// A scan of `columns` of `source` (the projection, in order) under `scope`, with the
    /// translated `predicates` and an optional row limit pushed into the SQL.
    pub fn new(
        source: ScanSource,
        store: Store,
        scope: Scope,
        columns: Vec<&'static ColumnDef>,
        schema: SchemaRef,
        predicates: Vec<SqlPredicate>,
        limit: Option<usize>,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        )
        // Batches arrive through a tokio channel, whose receiver takes part in tokio's
        // cooperative budget, so DataFusion need not wrap the scan to make it yield.
        .with_scheduling_type(SchedulingType::Cooperative);
        CatalogScanExec {
            source,
            store,
            scope,
            columns,
            schema,
            predicates,
            limit,
            visible_rows: None,
            dynamic: Vec::new(),
            ran: Arc::default(),
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The scan reporting about `visible_rows` rows (its statistics; `None`: unknown).
    pub fn with_visible_rows(mut self, visible_rows: Option<u64>) -> Self {
        self.visible_rows = visible_rows;
        self
    }

    /// The same scan holding `dynamic` filters, with fresh metrics and no run yet.
    fn with_dynamic(&self, dynamic: Vec<Arc<dyn PhysicalExpr>>) -> CatalogScanExec {
        CatalogScanExec {
            source: self.source.clone(),
            store: self.store.clone(),
            scope: self.scope,
            columns: self.columns.clone(),
            schema: Arc::clone(&self.schema),
            predicates: self.predicates.clone(),
            limit: self.limit,
            visible_rows: self.visible_rows,
            dynamic,
            ran: Arc::default(),
            properties: Arc::clone(&self.properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The scan as it travels to another process (`sql::wire`): one table's statement with
    /// the planned filters and limit (the dynamic filters stay behind; the operators that
    /// offer them apply them themselves), or `None` for a join sent whole.
    pub(crate) fn to_shipped(&self) -> Option<ShippedScan> {
        let table = match self.source {
            ScanSource::Table(table) | ScanSource::Shipped { table, .. } => table,
            ScanSource::Join { .. } => return None,
        };
        let (sql, args) = self.planned_statement();
        let columns = self
            .columns
            .iter()
            .map(|c| table.columns.iter().position(|d| std::ptr::eq(d, *c)))
            .collect::<Option<Vec<usize>>>()?;
        Some(ShippedScan {
            table,
            columns,
            sql,
            args,
            scope: self.scope,
            visible_rows: self.visible_rows,
        })
    }

    /// The store it reads.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The scan [`to_shipped`](Self::to_shipped) described, reading from `store`.
    pub(crate) fn from_shipped(shipped: ShippedScan, store: Store) -> Result<Self> {
        let ShippedScan {
            table,
            columns: indices,
            sql,
            args,
            scope,
            visible_rows,
        } = shipped;
        let schema = Arc::new(table.schema().project(&indices)?);
        let columns = indices.iter().map(|&i| &table.columns[i]).collect();
        let source = ScanSource::Shipped {
            table,
            sql: sql.into(),
            args: args.into(),
        };
        Ok(
            CatalogScanExec::new(source, store, scope, columns, schema, Vec::new(), None)
                .with_visible_rows(visible_rows),
        )
    }

    /// The statement with the planned filters only, as EXPLAIN shows it before a run.
    fn planned_statement(&self) -> (String, Vec<Value>) {
        select_statement(
            &self.source,
            self.scope,
            &self.columns,
            &self.predicates,
            self.limit,
            self.store.backend(),
        )
    }
}

/// `SELECT <projection> FROM <table> WHERE owner IN ($1, '') [AND (<pushed>)…] [LIMIT $n]`,
/// or, for a join, `SELECT <projection> FROM (<the join>) AS joined [WHERE (<pushed>) AND …]
/// [ORDER BY …] [LIMIT $n]`.
///
/// The tenant predicate comes from the scope, never from the query, and is always first
/// in each table's own SELECT (in a join, each table's derived table has its own).
/// Global rows have `owner = ''`, so an unscoped session (`$1 = ''`) sees only those.
fn select_statement(
    source: &ScanSource,
    scope: Scope,
    columns: &[&ColumnDef],
    predicates: &[SqlPredicate],
    limit: Option<usize>,
    backend: Backend,
) -> (String, Vec<Value>) {
    if let ScanSource::Shipped { sql, args, .. } = source {
        // Planned where it came from, tenant predicate and all; nothing is added here.
        return (sql.to_string(), args.to_vec());
    }
    let mut sql = String::from("SELECT ");
    if columns.is_empty() {
        sql.push('1');
    }
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(c.storage);
    }
    let owner = owner_of(scope);
    let mut args = Vec::new();
    match source {
        ScanSource::Table(table) => {
            sql.push_str(" FROM ");
            sql.push_str(table.storage);
            sql.push_str(" WHERE owner IN ($1, '')");
            args.push(Value::from(owner));
            render_conjunction(predicates, backend, &mut sql, &mut args);
        }
        // Returned as it came, above.
        ScanSource::Shipped { .. } => {}
        ScanSource::Join { relation, order } => {
            sql.push_str(" FROM (");
            relation.render(&owner, backend, &mut sql, &mut args);
            sql.push_str(") AS joined");
            for (i, p) in predicates.iter().enumerate() {
                sql.push_str(if i == 0 { " WHERE (" } else { " AND (" });
                p.render(backend, &mut sql, &mut args);
                sql.push(')');
            }
            relation.render_order(order, backend, &mut sql);
        }
    }
    if let Some(limit) = limit {
        args.push(Value::Int(Some(i64::try_from(limit).unwrap_or(i64::MAX))));
        sql.push_str(&format!(" LIMIT ${}", args.len()));
    }
    (sql, args)
}

/// A parameter as EXPLAIN shows it: a list by its length, a long text (a list of key
/// rows) by its start.
fn display_param(v: &Value) -> String {
    const SHOWN: usize = 60;
    match v {
        Value::Text(Some(s)) if s.chars().count() > SHOWN => {
            let start: String = s.chars().take(SHOWN).collect();
            format!("'{}…' ({} bytes)", start.replace('\'', "''"), s.len())
        }
        Value::Text(Some(s)) => format!("'{}'", s.replace('\'', "''")),
        Value::Int(Some(i)) => i.to_string(),
        Value::Text(None) | Value::Int(None) => "NULL".into(),
        Value::TextList(l) => format!("<{} texts>", l.len()),
        Value::IntList(l) => format!("<{} integers>", l.len()),
    }
}

impl DisplayAs for CatalogScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // After a run (EXPLAIN ANALYZE), the statement sent, with what the dynamic filters
        // added; before, the planned statement and the filters offered (empty until run).
        let ran = self.ran.lock().map(|r| r.clone()).unwrap_or(None);
        let dynamic: Vec<String> = match ran {
            Some(_) => Vec::new(),
            None => self.dynamic.iter().map(|e| e.to_string()).collect(),
        };
        let (sql, args) = ran.unwrap_or_else(|| self.planned_statement());
        let params: Vec<String> = args.iter().map(display_param).collect();
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(
                    f,
                    "JammiScanExec: table={}, sql={}, params=[{}]",
                    self.source.names(),
                    sql,
                    params.join(", ")
                )?;
                if !dynamic.is_empty() {
                    write!(f, ", dynamic_filter=[{}]", dynamic.join(", "))?;
                }
                Ok(())
            }
            DisplayFormatType::TreeRender => {
                writeln!(f, "table={}", self.source.names())?;
                write!(f, "sql={sql}")
            }
        }
    }
}

impl ExecutionPlan for CatalogScanExec {
    fn name(&self) -> &str {
        "JammiScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    /// The dynamic filters it holds: a hash join creates its filter only when its probe
    /// side reports it here.
    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        apply_expression_roots(&self.dynamic, f)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    /// Keeps the filters offered after optimization (dynamic ones) to translate when the
    /// scan starts, and answers that it did not take them: its SQL may be weaker than a
    /// filter (`sql::dynamic`), so the offering operator still applies it.
    fn handle_child_pushdown_result(
        &self,
        phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        let offered: Vec<Arc<dyn PhysicalExpr>> = child_pushdown_result
            .parent_filters
            .into_iter()
            .map(|f| f.filter)
            .collect();
        let answer = FilterPushdownPropagation::with_parent_pushdown_result(vec![
            PushedDown::No;
            offered.len()
        ]);
        // Filters known at planning were pushed through the table provider, exactly.
        if phase != FilterPushdownPhase::Post || offered.is_empty() {
            return Ok(answer);
        }
        let mut dynamic = self.dynamic.clone();
        dynamic.extend(offered);
        Ok(answer.with_updated_node(Arc::new(self.with_dynamic(dynamic))))
    }

    /// Before the plan runs again: the joins and sorts above drop the filters they made
    /// (their next run makes none), so the scan drops them too rather than send the keys of
    /// the last run.
    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(self.with_dynamic(Vec::new())))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    /// An inexact row count (the scope's rows in the table, at most the limit), so that
    /// DataFusion builds a join's hash table on the smaller input. Never exact: an exact
    /// count would let DataFusion answer `COUNT(*)` without the scan, and it counts no
    /// pushed filter.
    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let mut statistics = Statistics::new_unknown(&self.schema);
        if let Some(rows) = self.visible_rows.and_then(|r| usize::try_from(r).ok()) {
            let rows = self.limit.map_or(rows, |limit| rows.min(limit));
            statistics.num_rows = Precision::Inexact(rows);
        }
        Ok(Arc::new(statistics))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let batch_size = context.session_config().batch_size().max(1);
        let read = ScanRead {
            store: self.store.clone(),
            schema: Arc::clone(&self.schema),
            statement: Statement {
                source: self.source.clone(),
                scope: self.scope,
                columns: self.columns.clone(),
                predicates: self.predicates.clone(),
                limit: self.limit,
                dynamic: self.dynamic.clone(),
                ran: Arc::clone(&self.ran),
            },
            // The metrics exist from here, so that EXPLAIN ANALYZE shows them (as zero) on
            // a scan that is never polled, e.g. the probe side of a join with nothing to
            // build.
            batches: ScanBatches {
                builder: BatchBuilder::new(Arc::clone(&self.schema), &self.columns, batch_size),
                batch_size,
                baseline: BaselineMetrics::new(&self.metrics, partition),
                rows_fetched: MetricBuilder::new(&self.metrics).counter("rows_fetched", partition),
            },
        };
        // Nothing runs, and no connection is taken, until the stream is first polled
        // (see `ScanRead`).
        let stream = futures::stream::once(async move { read.start() }).flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }
}

/// The database read of one scan, started when its stream is first polled.
///
/// Why not in `execute()`: DataFusion executes a whole plan before it polls any of it. A
/// hash join executes its probe input before it has collected its build input, and
/// `RepartitionExec` executes its input when the plan starts. A read started there takes a
/// pooled connection at once and keeps it, blocked on its full channel, until the join
/// gets round to probing: a self-join on the one connection of `sqlite::memory:` waited
/// on itself, and concurrent joins filled a file's pool with idle probe scans while their
/// build scans waited for a connection (until the acquire timeout: *unavailable*).
///
/// Started at the first poll, a scan holds a connection only while its consumer reads it,
/// and DataFusion's operators finish with an input they have started before they depend on
/// another: hash, nested-loop and cross joins collect the build side before they poll the
/// probe side, and merge-based operators read through a sort (the scan has no order), which
/// drains its input. So the consumer of a running scan never waits for another scan of the
/// same query. A consumer that needs a connection itself (a function that writes, called
/// per row) is served by the connection that scans leave free (`store::ScanSlots`).
struct ScanRead {
    store: Store,
    schema: SchemaRef,
    statement: Statement,
    batches: ScanBatches,
}

/// What the scan's statement is made of, put together when the scan starts.
struct Statement {
    source: ScanSource,
    scope: Scope,
    columns: Vec<&'static ColumnDef>,
    predicates: Vec<SqlPredicate>,
    limit: Option<usize>,
    dynamic: Vec<Arc<dyn PhysicalExpr>>,
    ran: SentStatement,
}

impl Statement {
    /// The SQL and its parameters (`$1` is always the scope's owner), with what the
    /// dynamic filters say now: called at the first poll, when a join has collected its
    /// build side. A filter not yet complete reads as no condition; nothing waits for it.
    fn build(self, backend: Backend) -> (String, Vec<Value>) {
        let mut predicates = self.predicates;
        for filter in self.dynamic {
            let now = snapshot_physical_expr(filter).ok();
            if let Some(p) = now.and_then(|e| implied_predicate(&e, &self.columns)) {
                predicates.push(p);
            }
        }
        let statement = select_statement(
            &self.source,
            self.scope,
            &self.columns,
            &predicates,
            self.limit,
            backend,
        );
        if let Ok(mut ran) = self.ran.lock() {
            *ran = Some(statement.clone());
        }
        statement
    }
}

impl ScanRead {
    /// Starts the read. On SQLite, a cursor that each poll steps for one batch; on
    /// Postgres, a task feeding a small channel, so that at most two batches wait for a slow
    /// consumer. When the consumer is gone (e.g. a LIMIT was reached) the read stops and
    /// the connection goes back to the pool.
    fn start(self) -> SendableRecordBatchStream {
        let ScanRead {
            store,
            schema,
            statement,
            mut batches,
        } = self;
        let (sql, args) = statement.build(store.backend());
        if let Some(reader) = store.sqlite_reader() {
            // SQLite: each poll steps the statement for one batch (see store::sqlite::scan).
            // The cursor goes when the stream goes (e.g. a LIMIT was reached), and with it
            // the connection.
            let opened = async move {
                let cursor = reader.open(&sql, &args).await?;
                Ok::<_, crate::error::CatalogError>(futures::stream::try_unfold(
                    (Some(cursor), batches),
                    |(cursor, mut batches)| async move {
                        let Some(mut cursor) = cursor else {
                            return Ok(None);
                        };
                        let mut full = None;
                        let ended = cursor.next_rows(|row| {
                            full = batches.push(row)?;
                            Ok(full.is_none())
                        })?;
                        let batch = if ended { batches.finish()? } else { full };
                        let next = (Some(cursor).filter(|_| !ended), batches);
                        Ok::<_, crate::error::CatalogError>(batch.map(|b| (b, next)))
                    },
                ))
            };
            let stream = futures::stream::once(opened)
                .try_flatten()
                .map_err(DataFusionError::from);
            return Box::pin(RecordBatchStreamAdapter::new(schema, stream));
        }
        // Postgres: a task reads the rows as sqlx streams them.
        let mut builder = RecordBatchReceiverStream::builder(schema, 2);
        let sender = builder.tx();
        builder.spawn(async move {
            // Declared before `rows`, so dropped after it: the connection goes back to the
            // pool before the next scan may take one.
            let _slot = store.scan_slot().await?;
            let mut rows = store.stream(sql, &args);
            while let Some(row) = rows.try_next().await? {
                if let Some(full) = batches.push(&row)?
                    && sender.send(Ok(full)).await.is_err()
                {
                    return Ok(());
                }
            }
            if let Some(last) = batches.finish()? {
                let _ = sender.send(Ok(last)).await;
            }
            Ok(())
        });
        builder.build()
    }
}

/// Rows into batches of the session's size, with the scan's metrics: `rows_fetched`, and
/// `elapsed_compute` for the Arrow conversion alone (not the wait for rows).
struct ScanBatches {
    builder: BatchBuilder,
    batch_size: usize,
    baseline: BaselineMetrics,
    rows_fetched: Count,
}

impl ScanBatches {
    /// Appends a row; returns a batch when one is full.
    fn push(&mut self, row: &impl RowValues) -> crate::error::Result<Option<RecordBatch>> {
        let _converting = self.baseline.elapsed_compute().timer();
        self.builder.append(row)?;
        self.rows_fetched.add(1);
        if self.builder.len() < self.batch_size {
            return Ok(None);
        }
        let full = self.builder.finish()?;
        self.baseline.record_output(full.num_rows());
        Ok(Some(full))
    }

    /// The last, partly filled batch, if any; the scan is done.
    fn finish(&mut self) -> crate::error::Result<Option<RecordBatch>> {
        let last = {
            let _converting = self.baseline.elapsed_compute().timer();
            (self.builder.len() > 0)
                .then(|| self.builder.finish())
                .transpose()?
        };
        if let Some(last) = &last {
            self.baseline.record_output(last.num_rows());
        }
        self.baseline.done();
        Ok(last)
    }
}
