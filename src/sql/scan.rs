//! The scan node: one SELECT against the catalog database, run when the plan executes,
//! streamed as record batches of the session's batch size.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType, SchedulingType};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::{RecordBatchReceiverStream, RecordBatchStreamAdapter};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};

use super::batch::BatchBuilder;
use super::filter::{SqlPredicate, render_conjunction};
use super::tables::{ColumnDef, TableDef};
use crate::store::{RowValues, Store, Value};
use crate::tenant::{Scope, owner_of};

/// Reads the visible rows of one catalog table.
#[derive(Debug)]
pub(crate) struct CatalogScanExec {
    table: &'static TableDef,
    store: Store,
    columns: Vec<&'static ColumnDef>,
    schema: SchemaRef,
    /// The generated statement and its parameters; `$1` is always the scope's owner.
    sql: String,
    args: Vec<Value>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl CatalogScanExec {
    /// A scan of `columns` (the projection, in order) under `scope`, with the translated
    /// `predicates` and an optional row limit pushed into the SQL.
    pub fn new(
        table: &'static TableDef,
        store: Store,
        scope: Scope,
        columns: Vec<&'static ColumnDef>,
        schema: SchemaRef,
        predicates: &[SqlPredicate],
        limit: Option<usize>,
    ) -> Self {
        let (sql, args) = select_statement(table, scope, &columns, predicates, limit);
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
            table,
            store,
            columns,
            schema,
            sql,
            args,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

/// `SELECT <projection> FROM <table> WHERE owner IN ($1, '') [AND (<pushed>)…] [LIMIT $n]`.
///
/// The tenant predicate comes from the scope, never from the query, and is always first.
/// Global rows have `owner = ''`, so an unscoped session (`$1 = ''`) sees only those.
fn select_statement(
    table: &TableDef,
    scope: Scope,
    columns: &[&ColumnDef],
    predicates: &[SqlPredicate],
    limit: Option<usize>,
) -> (String, Vec<Value>) {
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
    sql.push_str(" FROM ");
    sql.push_str(table.storage);
    sql.push_str(" WHERE owner IN ($1, '')");
    let mut args = vec![Value::from(owner_of(scope))];
    render_conjunction(predicates, &mut sql, &mut args);
    if let Some(limit) = limit {
        args.push(Value::Int(Some(i64::try_from(limit).unwrap_or(i64::MAX))));
        sql.push_str(&format!(" LIMIT ${}", args.len()));
    }
    (sql, args)
}

impl DisplayAs for CatalogScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params: Vec<String> = self
            .args
            .iter()
            .map(|v| match v {
                Value::Text(Some(s)) => format!("'{}'", s.replace('\'', "''")),
                Value::Int(Some(i)) => i.to_string(),
                Value::Text(None) | Value::Int(None) => "NULL".into(),
            })
            .collect();
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "JammiScanExec: table={}, sql={}, params=[{}]",
                self.table.name,
                self.sql,
                params.join(", ")
            ),
            DisplayFormatType::TreeRender => {
                writeln!(f, "table={}", self.table.name)?;
                write!(f, "sql={}", self.sql)
            }
        }
    }
}

impl ExecutionPlan for CatalogScanExec {
    fn name(&self) -> &str {
        "JammiScanExec"
    }

    leaf_plan_methods!();

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
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
            sql: self.sql.clone(),
            args: self.args.clone(),
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
    sql: String,
    /// Parameters of `sql`; `$1` is always the scope's owner.
    args: Vec<Value>,
    batches: ScanBatches,
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
            sql,
            args,
            mut batches,
        } = self;
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
