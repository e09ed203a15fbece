//! `INSERT INTO jammi.public.<table>`: every row through the catalog's own register /
//! create rules, the whole statement in one transaction, streamed: each batch of the
//! input is validated and written as it arrives, so memory stays bounded by the batch
//! size however long the input (a retried transaction aside, see [`REPLAY_ROWS`]).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::sink::DataSink;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::async_func::AsyncFuncExec;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use futures::{FutureExt, StreamExt};
use tokio::sync::Mutex;

use crate::catalog::dml::{
    create_eval_run_in, create_result_table_in, create_training_job_in, register_many_in,
    set_alias_in, set_tag_in, validate_alias, validate_tag,
};
use crate::catalog::{
    Catalog, NewEvalRun, NewResultTable, NewTrainingJob, RegisterModel, ResultTableStatus,
};
use crate::error::{CatalogError, Result as CatalogResult};
use crate::sql::columns::{int, opt_int, opt_str, opt_version, req_str, text};
use crate::sql::scan::CatalogScanExec;
use crate::sql::tables::{TableDef, TableKind};
use crate::store::{Tx, TxOptions};

/// Writes an `INSERT`'s rows into one catalog table.
#[derive(Debug)]
pub(crate) struct CatalogSink {
    table: &'static TableDef,
    catalog: Catalog,
    schema: SchemaRef,
    /// Read the whole input before the transaction starts, rather than stream it.
    read_first: bool,
}

impl CatalogSink {
    /// A sink for `table` fed by `input`. An input that itself calls an async function
    /// (e.g. `register_model`, which writes in a transaction of its own: on SQLite it would
    /// wait for this statement's write lock) or scans a catalog table (on a one-connection
    /// pool it would wait for this statement's connection) is read in full before the
    /// transaction starts; any other input streams.
    pub fn new(table: &'static TableDef, catalog: Catalog, input: &dyn ExecutionPlan) -> Self {
        CatalogSink {
            table,
            catalog,
            schema: table.schema(),
            read_first: contains(input, &|p| {
                p.is::<AsyncFuncExec>() || p.is::<CatalogScanExec>()
            }),
        }
    }
}

impl CatalogSink {
    /// What the sink carries to another process (`sql::wire`): the table, the handle it
    /// writes with, and whether it reads its input first.
    pub fn parts(&self) -> (&'static TableDef, &Catalog, bool) {
        (self.table, &self.catalog, self.read_first)
    }

    /// The sink [`parts`](Self::parts) described.
    pub fn from_parts(table: &'static TableDef, catalog: Catalog, read_first: bool) -> Self {
        CatalogSink {
            table,
            catalog,
            schema: table.schema(),
            read_first,
        }
    }
}

fn contains(plan: &dyn ExecutionPlan, found: &dyn Fn(&dyn ExecutionPlan) -> bool) -> bool {
    found(plan)
        || plan
            .children()
            .into_iter()
            .any(|c| contains(c.as_ref(), found))
}

impl DisplayAs for CatalogSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JammiInsert: table={}", self.table.name)
    }
}

#[async_trait]
impl DataSink for CatalogSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let mut input = Input {
            stream: data,
            rows_read: 0,
            read: Some(Vec::new()),
            read_rows: 0,
            attempts: 0,
            input_error: None,
        };
        // What fits is read before the transaction starts: a short statement holds no
        // connection while its input runs, and a retry writes it again invisibly.
        let limit = if self.read_first {
            usize::MAX
        } else {
            REPLAY_ROWS
        };
        if let Err(e) = input.read_ahead(self.table, limit).await {
            return Err(input
                .input_error
                .take()
                .unwrap_or_else(|| e.into_datafusion()));
        }
        let input = Arc::new(Mutex::new(input));
        let table = self.table;
        let options = match table.kind {
            // Allocating versions may collide with a concurrent writer: retried.
            TableKind::Models => TxOptions {
                retry_on_unique_violation: true,
                ..TxOptions::write()
            },
            // Rows that add references must conflict with concurrent deletes (see
            // `catalog::models`).
            _ => TxOptions::serializable(),
        };
        let written = self
            .catalog
            .transaction(options, |tx| {
                let input = Arc::clone(&input);
                async move { input.lock().await.write_into(tx, table).await }.boxed()
            })
            .await;
        // An error of the statement's own input (e.g. a bad file) is DataFusion's to report.
        if let Some(e) = input.lock().await.input_error.take() {
            return Err(e);
        }
        written.map_err(CatalogError::into_datafusion)
    }
}

/// Wraps a row's error with its position and what it is about.
fn at_row(row: usize, what: impl Into<String>) -> impl FnOnce(CatalogError) -> CatalogError {
    move |e| CatalogError::AtRow {
        row,
        what: what.into(),
        source: Box::new(e),
    }
}

/// The most rows an INSERT reads before its transaction starts, and keeps to write again
/// if the transaction is retried (a Postgres serialization failure or version
/// collision). A longer input is streamed through the open transaction: memory stays
/// bounded by this and the batch size, and a conflict that would need a retry after that
/// point fails the statement instead (nothing is written; run it again).
const REPLAY_ROWS: usize = 32_768;

/// An INSERT's input, read once, and what a retried transaction needs to write again.
struct Input {
    stream: SendableRecordBatchStream,
    /// Rows read so far: the next batch's first row is `rows_read + 1`.
    rows_read: usize,
    /// Every batch read so far, as validated rows with its first row number, while they
    /// fit in [`REPLAY_ROWS`] (or all of them, read ahead); `None` once they did not.
    read: Option<Vec<(usize, Rows)>>,
    read_rows: usize,
    attempts: u32,
    /// An error of the input stream itself, returned to DataFusion as it is.
    input_error: Option<datafusion::error::DataFusionError>,
}

impl Input {
    /// The next batch of the input as validated rows with its first row number, or `None`
    /// at the end.
    async fn next_rows(&mut self, table: &TableDef) -> CatalogResult<Option<(usize, Rows)>> {
        let batch = match self.stream.next().await {
            None => return Ok(None),
            Some(Ok(batch)) => batch,
            Some(Err(e)) => {
                self.input_error = Some(e);
                return Err(CatalogError::Unsupported(
                    "the INSERT's input failed".into(),
                ));
            }
        };
        let first_row = self.rows_read + 1;
        self.rows_read += batch.num_rows();
        Ok(Some((
            first_row,
            Rows::from_batch(table, &batch, first_row)?,
        )))
    }

    /// Reads and validates the input before the transaction, until more than `limit`
    /// rows are held or it ends.
    async fn read_ahead(&mut self, table: &TableDef, limit: usize) -> CatalogResult<()> {
        while self.read_rows <= limit {
            let Some((first_row, rows)) = self.next_rows(table).await? else {
                break;
            };
            self.read_rows += rows.len();
            if let Some(read) = &mut self.read {
                read.push((first_row, rows));
            }
        }
        Ok(())
    }

    /// One attempt of the statement's transaction: what was read so far is written (again),
    /// then the rest of the input is read, validated and written batch by batch.
    async fn write_into(&mut self, tx: &mut Tx, table: &'static TableDef) -> CatalogResult<u64> {
        self.attempts += 1;
        let Some(read) = &self.read else {
            return Err(CatalogError::RetryExhausted {
                attempts: self.attempts - 1,
                last: format!(
                    "the INSERT conflicted with a concurrent write after more than \
                     {REPLAY_ROWS} rows, which are not kept to be written again; nothing \
                     was written, run the statement again"
                ),
            });
        };
        for (first_row, rows) in read {
            rows.write(tx, *first_row).await?;
        }
        while let Some((first_row, rows)) = self.next_rows(table).await? {
            rows.write(tx, first_row).await?;
            self.read_rows += rows.len();
            match &mut self.read {
                Some(read) if self.read_rows <= REPLAY_ROWS => read.push((first_row, rows)),
                _ => self.read = None,
            }
        }
        Ok(self.rows_read as u64)
    }
}

/// One batch of an INSERT, validated (§9) and ready to write.
enum Rows {
    Models(Vec<RegisterModel>),
    TrainingJobs(Vec<NewTrainingJob>),
    EvalRuns(Vec<NewEvalRun>),
    ResultTables(Vec<NewResultTable>),
    Aliases(Vec<AliasRow>),
    Tags(Vec<TagRow>),
}

/// A row of `INSERT INTO model_aliases`: set (create or move) that alias.
struct AliasRow {
    model_id: String,
    alias: String,
    version: i32,
}

/// A row of `INSERT INTO model_tags`: set that tag.
struct TagRow {
    model_id: String,
    version: i32,
    key: String,
    value: String,
}

impl Rows {
    /// The rows of `batch`, numbered from `first_row` in errors.
    fn from_batch(table: &TableDef, batch: &RecordBatch, first_row: usize) -> CatalogResult<Rows> {
        refuse_catalog_set_values(table, batch, first_row)?;
        Ok(match table.kind {
            TableKind::Models => Rows::Models(model_rows(batch, first_row)?),
            TableKind::TrainingJobs => Rows::TrainingJobs(job_rows(batch, first_row)?),
            TableKind::EvalRuns => Rows::EvalRuns(eval_rows(batch, first_row)?),
            TableKind::ResultTables => Rows::ResultTables(result_table_rows(batch, first_row)?),
            TableKind::ModelAliases => Rows::Aliases(alias_rows(batch, first_row)?),
            TableKind::ModelTags => Rows::Tags(tag_rows(batch, first_row)?),
            TableKind::Events | TableKind::Webhooks | TableKind::WebhookDeliveries => {
                return Err(CatalogError::Unsupported(format!(
                    "jammi.public.{} is read-only",
                    table.name
                )));
            }
        })
    }

    fn len(&self) -> usize {
        match self {
            Rows::Models(r) => r.len(),
            Rows::TrainingJobs(r) => r.len(),
            Rows::EvalRuns(r) => r.len(),
            Rows::ResultTables(r) => r.len(),
            Rows::Aliases(r) => r.len(),
            Rows::Tags(r) => r.len(),
        }
    }

    /// Writes the rows in `tx` by the catalog's register / create rules.
    async fn write(&self, tx: &mut Tx, first_row: usize) -> CatalogResult<()> {
        let row = |i: usize| first_row + i;
        match self {
            Rows::Models(rows) => {
                register_many_in(tx, rows, |i, e| {
                    at_row(row(i), format!("model {:?}", rows[i].model_id))(e)
                })
                .await?;
            }
            Rows::TrainingJobs(rows) => {
                for (i, job) in rows.iter().enumerate() {
                    create_training_job_in(tx, job).await.map_err(at_row(
                        row(i),
                        format!("job {:?}", job.job_id.as_deref().unwrap_or_default()),
                    ))?;
                }
            }
            Rows::EvalRuns(rows) => {
                for (i, run) in rows.iter().enumerate() {
                    create_eval_run_in(tx, run).await.map_err(at_row(
                        row(i),
                        format!("run {:?}", run.run_id.as_deref().unwrap_or_default()),
                    ))?;
                }
            }
            Rows::ResultTables(rows) => {
                for (i, table) in rows.iter().enumerate() {
                    create_result_table_in(tx, table)
                        .await
                        .map_err(at_row(row(i), format!("table {:?}", table.table_name)))?;
                }
            }
            Rows::Aliases(rows) => {
                for (i, a) in rows.iter().enumerate() {
                    set_alias_in(tx, &a.model_id, &a.alias, a.version)
                        .await
                        .map_err(at_row(row(i), format!("alias {:?}", a.alias)))?;
                }
            }
            Rows::Tags(rows) => {
                for (i, t) in rows.iter().enumerate() {
                    set_tag_in(tx, &t.model_id, t.version, &t.key, &t.value)
                        .await
                        .map_err(at_row(row(i), format!("tag {:?}", t.key)))?;
                }
            }
        }
        Ok(())
    }
}

/// `tenant_id`, `status`, timestamps… are the catalog's: only NULL is accepted.
fn refuse_catalog_set_values(
    table: &TableDef,
    batch: &RecordBatch,
    first_row: usize,
) -> CatalogResult<()> {
    for &column in table.catalog_set {
        let Some(array) = batch.column_by_name(column) else {
            continue;
        };
        // Logical nulls: an untyped NULL column (`NullArray`) has no null buffer.
        let nulls = array.logical_nulls();
        if let Some(i) = (0..array.len()).find(|&i| nulls.as_ref().is_none_or(|n| n.is_valid(i))) {
            return Err(CatalogError::AtRow {
                row: first_row + i,
                what: format!("column {column}"),
                source: Box::new(CatalogError::invalid(
                    column,
                    "is set by the catalog; leave it out or give NULL",
                )),
            });
        }
    }
    Ok(())
}

fn column<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> CatalogResult<&'a datafusion::arrow::array::ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| CatalogError::Unsupported(format!("INSERT input has no column {name}")))
}

/// Rows of an `INSERT INTO models`, validated (§9) before any is written.
fn model_rows(batch: &RecordBatch, first_row: usize) -> CatalogResult<Vec<RegisterModel>> {
    let mut out = Vec::with_capacity(batch.num_rows());
    let model_id = text(column(batch, "model_id")?, "model_id")?;
    let version = int(column(batch, "version")?, "version")?;
    let model_type = text(column(batch, "model_type")?, "model_type")?;
    let backend = text(column(batch, "backend")?, "backend")?;
    let task = text(column(batch, "task")?, "task")?;
    let base = text(column(batch, "base_model_id")?, "base_model_id")?;
    let path = text(column(batch, "artifact_path")?, "artifact_path")?;
    let config = text(column(batch, "config_json")?, "config_json")?;
    for r in 0..batch.num_rows() {
        let row = first_row + r;
        let what = format!("model {:?}", opt_str(&model_id, r).unwrap_or("NULL"));
        let params = (|| {
            let p = RegisterModel {
                model_id: req_str(&model_id, r, "model_id")?.to_owned(),
                version: opt_version(&version, r, "version")?,
                model_type: req_str(&model_type, r, "model_type")?.to_owned(),
                backend: req_str(&backend, r, "backend")?.to_owned(),
                task: req_str(&task, r, "task")?.parse()?,
                base_model_id: opt_str(&base, r).map(str::to_owned),
                artifact_path: opt_str(&path, r).map(str::to_owned),
                config_json: opt_str(&config, r).map(str::to_owned),
            };
            p.validate()?;
            Ok(p)
        })()
        .map_err(at_row(row, what))?;
        out.push(params);
    }
    Ok(out)
}

/// Rows of an `INSERT INTO training_jobs`.
fn job_rows(batch: &RecordBatch, first_row: usize) -> CatalogResult<Vec<NewTrainingJob>> {
    let mut out = Vec::with_capacity(batch.num_rows());
    let job_id = text(column(batch, "job_id")?, "job_id")?;
    let base = text(column(batch, "base_model_id")?, "base_model_id")?;
    let base_version = int(column(batch, "base_model_version")?, "base_model_version")?;
    let output = text(column(batch, "output_model_id")?, "output_model_id")?;
    let output_version = int(column(batch, "output_version")?, "output_version")?;
    let source = text(column(batch, "training_source")?, "training_source")?;
    let loss = text(column(batch, "loss_type")?, "loss_type")?;
    let hyperparams = text(column(batch, "hyperparams")?, "hyperparams")?;
    for r in 0..batch.num_rows() {
        let row = first_row + r;
        let what = format!("job {:?}", opt_str(&job_id, r).unwrap_or("(new)"));
        let job = (|| {
            let j = NewTrainingJob {
                // A fixed id, so that a retried transaction writes the same row.
                job_id: Some(
                    opt_str(&job_id, r)
                        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned),
                ),
                base_model_id: req_str(&base, r, "base_model_id")?.to_owned(),
                base_model_version: opt_version(&base_version, r, "base_model_version")?,
                output_model_id: req_str(&output, r, "output_model_id")?.to_owned(),
                output_version: opt_version(&output_version, r, "output_version")?,
                training_source: req_str(&source, r, "training_source")?.to_owned(),
                loss_type: req_str(&loss, r, "loss_type")?.to_owned(),
                hyperparams: opt_str(&hyperparams, r).unwrap_or("{}").to_owned(),
            };
            j.validate()?;
            Ok(j)
        })()
        .map_err(at_row(row, what))?;
        out.push(job);
    }
    Ok(out)
}

/// Rows of an `INSERT INTO eval_runs`.
fn eval_rows(batch: &RecordBatch, first_row: usize) -> CatalogResult<Vec<NewEvalRun>> {
    let mut out = Vec::with_capacity(batch.num_rows());
    let run_id = text(column(batch, "run_id")?, "run_id")?;
    let model_id = text(column(batch, "model_id")?, "model_id")?;
    let model_version = int(column(batch, "model_version")?, "model_version")?;
    let eval_type = text(column(batch, "eval_type")?, "eval_type")?;
    let metrics = text(column(batch, "metrics")?, "metrics")?;
    for r in 0..batch.num_rows() {
        let row = first_row + r;
        let what = format!("run {:?}", opt_str(&run_id, r).unwrap_or("(new)"));
        let run = (|| {
            let e = NewEvalRun {
                run_id: Some(
                    opt_str(&run_id, r)
                        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned),
                ),
                model_id: opt_str(&model_id, r).map(str::to_owned),
                model_version: opt_version(&model_version, r, "model_version")?,
                eval_type: req_str(&eval_type, r, "eval_type")?.to_owned(),
                metrics: req_str(&metrics, r, "metrics")?.to_owned(),
            };
            e.validate()?;
            Ok(e)
        })()
        .map_err(at_row(row, what))?;
        out.push(run);
    }
    Ok(out)
}

/// Rows of an `INSERT INTO result_tables`; `status` defaults to `building`.
fn result_table_rows(batch: &RecordBatch, first_row: usize) -> CatalogResult<Vec<NewResultTable>> {
    let mut out = Vec::with_capacity(batch.num_rows());
    let table_name = text(column(batch, "table_name")?, "table_name")?;
    let source_id = text(column(batch, "source_id")?, "source_id")?;
    let model_id = text(column(batch, "model_id")?, "model_id")?;
    let task = text(column(batch, "task")?, "task")?;
    let parquet_path = text(column(batch, "parquet_path")?, "parquet_path")?;
    let row_count = int(column(batch, "row_count")?, "row_count")?;
    let status = text(column(batch, "status")?, "status")?;
    for r in 0..batch.num_rows() {
        let row = first_row + r;
        let what = format!("table {:?}", opt_str(&table_name, r).unwrap_or("NULL"));
        let table = (|| {
            let t = NewResultTable {
                table_name: req_str(&table_name, r, "table_name")?.to_owned(),
                source_id: req_str(&source_id, r, "source_id")?.to_owned(),
                model_id: req_str(&model_id, r, "model_id")?.to_owned(),
                task: req_str(&task, r, "task")?.parse()?,
                parquet_path: req_str(&parquet_path, r, "parquet_path")?.to_owned(),
                row_count: opt_int(&row_count, r, "row_count")?,
                status: match opt_str(&status, r) {
                    Some(s) => s.parse()?,
                    None => ResultTableStatus::Building,
                },
            };
            t.validate()?;
            Ok(t)
        })()
        .map_err(at_row(row, what))?;
        out.push(table);
    }
    Ok(out)
}

/// Rows of an `INSERT INTO model_aliases`; the version is required.
fn alias_rows(batch: &RecordBatch, first_row: usize) -> CatalogResult<Vec<AliasRow>> {
    let model_id = text(column(batch, "model_id")?, "model_id")?;
    let alias = text(column(batch, "alias")?, "alias")?;
    let version = int(column(batch, "version")?, "version")?;
    (0..batch.num_rows())
        .map(|r| {
            let what = format!("alias {:?}", opt_str(&alias, r).unwrap_or("NULL"));
            (|| {
                let row = AliasRow {
                    model_id: req_str(&model_id, r, "model_id")?.to_owned(),
                    alias: req_str(&alias, r, "alias")?.to_owned(),
                    version: opt_version(&version, r, "version")?
                        .ok_or_else(|| CatalogError::invalid("version", "must not be NULL"))?,
                };
                validate_alias(&row.model_id, &row.alias, row.version)?;
                Ok(row)
            })()
            .map_err(at_row(first_row + r, what))
        })
        .collect()
}

/// Rows of an `INSERT INTO model_tags`; every column but the catalog's is required.
fn tag_rows(batch: &RecordBatch, first_row: usize) -> CatalogResult<Vec<TagRow>> {
    let model_id = text(column(batch, "model_id")?, "model_id")?;
    let version = int(column(batch, "version")?, "version")?;
    let key = text(column(batch, "key")?, "key")?;
    let value = text(column(batch, "value")?, "value")?;
    (0..batch.num_rows())
        .map(|r| {
            let what = format!("tag {:?}", opt_str(&key, r).unwrap_or("NULL"));
            (|| {
                let row = TagRow {
                    model_id: req_str(&model_id, r, "model_id")?.to_owned(),
                    version: opt_version(&version, r, "version")?
                        .ok_or_else(|| CatalogError::invalid("version", "must not be NULL"))?,
                    key: req_str(&key, r, "key")?.to_owned(),
                    value: req_str(&value, r, "value")?.to_owned(),
                };
                validate_tag(&row.model_id, row.version, &row.key, &row.value)?;
                Ok(row)
            })()
            .map_err(at_row(first_row + r, what))
        })
        .collect()
}
