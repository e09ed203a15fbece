//! `INSERT INTO jammi.public.<table>`: every row through the catalog's own register /
//! create rules, the whole statement in one transaction.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::sink::DataSink;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::{FutureExt, TryStreamExt};

use crate::catalog::dml::{
    create_eval_run_in, create_result_table_in, create_training_job_in, register_many_in,
};
use crate::catalog::{
    Catalog, NewEvalRun, NewResultTable, NewTrainingJob, RegisterModel, ResultTableStatus,
};
use crate::error::{CatalogError, Result as CatalogResult};
use crate::sql::columns::{int, opt_int, opt_str, opt_version, req_str, text};
use crate::sql::tables::{TableDef, TableKind};
use crate::store::TxOptions;

/// Writes an `INSERT`'s rows into one catalog table.
#[derive(Debug)]
pub(crate) struct CatalogSink {
    table: &'static TableDef,
    catalog: Catalog,
    schema: SchemaRef,
}

impl CatalogSink {
    pub fn new(table: &'static TableDef, catalog: Catalog) -> Self {
        CatalogSink {
            table,
            catalog,
            schema: table.schema(),
        }
    }
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
        let batches: Vec<RecordBatch> = data.try_collect().await?;
        self.insert(&batches)
            .await
            .map_err(CatalogError::into_datafusion)
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

impl CatalogSink {
    async fn insert(&self, batches: &[RecordBatch]) -> CatalogResult<u64> {
        let mut first_row = 1;
        for batch in batches {
            self.refuse_catalog_set_values(batch, first_row)?;
            first_row += batch.num_rows();
        }
        match self.table.kind {
            TableKind::Models => {
                let rows = Arc::new(model_rows(batches)?);
                // Allocating versions may collide with a concurrent writer: retried.
                let options = TxOptions {
                    retry_on_unique_violation: true,
                    ..TxOptions::write()
                };
                self.catalog
                    .store()
                    .transaction(self.catalog.scope(), options, |tx| {
                        let rows = Arc::clone(&rows);
                        async move {
                            register_many_in(tx, &rows, |i, e| {
                                at_row(i + 1, format!("model {:?}", rows[i].model_id))(e)
                            })
                            .await?;
                            Ok(rows.len() as u64)
                        }
                        .boxed()
                    })
                    .await
            }
            TableKind::TrainingJobs => {
                let rows = Arc::new(job_rows(batches)?);
                let count = rows.len();
                self.in_serializable_tx(
                    move |tx, i| {
                        let job = rows[i].clone();
                        async move {
                            create_training_job_in(tx, &job)
                                .await
                                .map(|_| ())
                                .map_err(at_row(
                                    i + 1,
                                    format!("job {:?}", job.job_id.unwrap_or_default()),
                                ))
                        }
                        .boxed()
                    },
                    count,
                )
                .await
            }
            TableKind::EvalRuns => {
                let rows = Arc::new(eval_rows(batches)?);
                let count = rows.len();
                self.in_serializable_tx(
                    move |tx, i| {
                        let run = rows[i].clone();
                        async move {
                            create_eval_run_in(tx, &run)
                                .await
                                .map(|_| ())
                                .map_err(at_row(
                                    i + 1,
                                    format!("run {:?}", run.run_id.unwrap_or_default()),
                                ))
                        }
                        .boxed()
                    },
                    count,
                )
                .await
            }
            TableKind::ResultTables => {
                let rows = Arc::new(result_table_rows(batches)?);
                let count = rows.len();
                self.in_serializable_tx(
                    move |tx, i| {
                        let table = rows[i].clone();
                        async move {
                            create_result_table_in(tx, &table)
                                .await
                                .map(|_| ())
                                .map_err(at_row(i + 1, format!("table {:?}", table.table_name)))
                        }
                        .boxed()
                    },
                    count,
                )
                .await
            }
        }
    }

    /// Runs `write(tx, i)` for rows `0..count` in one serializable transaction (rows that
    /// add references must conflict with concurrent deletes, see `catalog::models`).
    async fn in_serializable_tx<F>(&self, write: F, count: usize) -> CatalogResult<u64>
    where
        F: for<'t> Fn(
                &'t mut crate::store::Tx,
                usize,
            ) -> futures::future::BoxFuture<'t, CatalogResult<()>>
            + Send
            + Sync
            + 'static,
    {
        let write = Arc::new(write);
        self.catalog
            .store()
            .transaction(self.catalog.scope(), TxOptions::serializable(), move |tx| {
                let write = Arc::clone(&write);
                async move {
                    for i in 0..count {
                        write(tx, i).await?;
                    }
                    Ok(count as u64)
                }
                .boxed()
            })
            .await
    }

    /// `tenant_id`, `status`, timestamps… are the catalog's: only NULL is accepted.
    fn refuse_catalog_set_values(
        &self,
        batch: &RecordBatch,
        first_row: usize,
    ) -> CatalogResult<()> {
        for &column in self.table.catalog_set {
            let Some(array) = batch.column_by_name(column) else {
                continue;
            };
            if let Some(i) = (0..array.len()).find(|&i| array.is_valid(i)) {
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
fn model_rows(batches: &[RecordBatch]) -> CatalogResult<Vec<RegisterModel>> {
    let mut out = Vec::new();
    for batch in batches {
        let model_id = text(column(batch, "model_id")?, "model_id")?;
        let version = int(column(batch, "version")?, "version")?;
        let model_type = text(column(batch, "model_type")?, "model_type")?;
        let backend = text(column(batch, "backend")?, "backend")?;
        let task = text(column(batch, "task")?, "task")?;
        let base = text(column(batch, "base_model_id")?, "base_model_id")?;
        let path = text(column(batch, "artifact_path")?, "artifact_path")?;
        let config = text(column(batch, "config_json")?, "config_json")?;
        for r in 0..batch.num_rows() {
            let row = out.len() + 1;
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
    }
    Ok(out)
}

/// Rows of an `INSERT INTO training_jobs`.
fn job_rows(batches: &[RecordBatch]) -> CatalogResult<Vec<NewTrainingJob>> {
    let mut out = Vec::new();
    for batch in batches {
        let job_id = text(column(batch, "job_id")?, "job_id")?;
        let base = text(column(batch, "base_model_id")?, "base_model_id")?;
        let base_version = int(column(batch, "base_model_version")?, "base_model_version")?;
        let output = text(column(batch, "output_model_id")?, "output_model_id")?;
        let output_version = int(column(batch, "output_version")?, "output_version")?;
        let source = text(column(batch, "training_source")?, "training_source")?;
        let loss = text(column(batch, "loss_type")?, "loss_type")?;
        let hyperparams = text(column(batch, "hyperparams")?, "hyperparams")?;
        for r in 0..batch.num_rows() {
            let row = out.len() + 1;
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
    }
    Ok(out)
}

/// Rows of an `INSERT INTO eval_runs`.
fn eval_rows(batches: &[RecordBatch]) -> CatalogResult<Vec<NewEvalRun>> {
    let mut out = Vec::new();
    for batch in batches {
        let run_id = text(column(batch, "run_id")?, "run_id")?;
        let model_id = text(column(batch, "model_id")?, "model_id")?;
        let model_version = int(column(batch, "model_version")?, "model_version")?;
        let eval_type = text(column(batch, "eval_type")?, "eval_type")?;
        let metrics = text(column(batch, "metrics")?, "metrics")?;
        for r in 0..batch.num_rows() {
            let row = out.len() + 1;
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
    }
    Ok(out)
}

/// Rows of an `INSERT INTO result_tables`; `status` defaults to `building`.
fn result_table_rows(batches: &[RecordBatch]) -> CatalogResult<Vec<NewResultTable>> {
    let mut out = Vec::new();
    for batch in batches {
        let table_name = text(column(batch, "table_name")?, "table_name")?;
        let source_id = text(column(batch, "source_id")?, "source_id")?;
        let model_id = text(column(batch, "model_id")?, "model_id")?;
        let task = text(column(batch, "task")?, "task")?;
        let parquet_path = text(column(batch, "parquet_path")?, "parquet_path")?;
        let row_count = int(column(batch, "row_count")?, "row_count")?;
        let status = text(column(batch, "status")?, "status")?;
        for r in 0..batch.num_rows() {
            let row = out.len() + 1;
            let what = format!("table {:?}", opt_str(&table_name, r).unwrap_or("NULL"));
            let table = (|| {
                let t = NewResultTable {
                    table_name: req_str(&table_name, r, "table_name")?.to_owned(),
                    source_id: req_str(&source_id, r, "source_id")?.to_owned(),
                    model_id: req_str(&model_id, r, "model_id")?.to_owned(),
                    task: req_str(&task, r, "task")?.parse()?,
                    parquet_path: req_str(&parquet_path, r, "parquet_path")?.to_owned(),
                    row_count: opt_int(&row_count, r),
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
    }
    Ok(out)
}
