//! Training jobs: a lease-based work queue whose finalize writes the output model's
//! artifact path (SPEC §4).

use std::time::Duration;

use futures::FutureExt;

use super::Catalog;
use super::events::{self, Change, EventKind, Recorded};
use super::models::{guard_name_reference, model_from_row, resolve_in};
use super::rows::{self, status_enum};
use crate::clock::{micros, now_micros};
use crate::error::{CatalogError, Result};
use crate::store::{DbRow, OwnedWrite, Tx, TxOptions, args};
use crate::tenant::Scope;
use crate::validate;

status_enum! {
    /// Where a training job is in its life.
    JobStatus {
        /// Waiting for a worker.
        Queued => "queued",
        /// Claimed by a worker holding a lease.
        Running => "running",
        /// Finalized by its lease holder.
        Completed => "completed",
        /// Failed by its lease holder, or out of attempts.
        Failed => "failed",
    }
}

/// What [`Catalog::create_training_job`] writes.
#[derive(Clone, Debug, PartialEq)]
pub struct NewTrainingJob {
    /// The job's id; `None` lets the catalog pick a UUID.
    pub job_id: Option<String>,
    /// The model to train from, resolved by the get rule.
    pub base_model_id: String,
    /// That model's version; `None` means the latest visible one.
    pub base_model_version: Option<i32>,
    /// The name of the model the job produces (a name, not a reference to an existing row).
    pub output_model_id: String,
    /// The version it will produce, when known.
    pub output_version: Option<i32>,
    /// Where the training data comes from.
    pub training_source: String,
    /// The loss, e.g. `contrastive`.
    pub loss_type: String,
    /// Hyperparameters, JSON text.
    pub hyperparams: String,
}

impl NewTrainingJob {
    /// A job training `output_model_id` from the latest `base_model_id`.
    pub fn new(
        base_model_id: impl Into<String>,
        output_model_id: impl Into<String>,
        training_source: impl Into<String>,
        loss_type: impl Into<String>,
        hyperparams: impl Into<String>,
    ) -> Self {
        NewTrainingJob {
            job_id: None,
            base_model_id: base_model_id.into(),
            base_model_version: None,
            output_model_id: output_model_id.into(),
            output_version: None,
            training_source: training_source.into(),
            loss_type: loss_type.into(),
            hyperparams: hyperparams.into(),
        }
    }

    /// Checks every field against SPEC §9.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if let Some(id) = &self.job_id {
            validate::name("job_id", id)?;
        }
        validate::name("base_model_id", &self.base_model_id)?;
        if let Some(v) = self.base_model_version {
            validate::version("base_model_version", v)?;
        }
        validate::name("output_model_id", &self.output_model_id)?;
        if let Some(v) = self.output_version {
            validate::version("output_version", v)?;
        }
        validate::non_empty("training_source", &self.training_source)?;
        validate::non_empty("loss_type", &self.loss_type)?;
        validate::json("hyperparams", Some(&self.hyperparams))
    }
}

/// One training job, as stored. Its serde form is its row in `jammi.public.training_jobs`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainingJob {
    /// The job's id (unique within its owner's scope).
    pub job_id: String,
    /// The base model's name.
    pub base_model_id: String,
    /// The base model's version.
    pub base_model_version: i32,
    /// The output model's name.
    pub output_model_id: String,
    /// The output model's version, when known.
    pub output_version: Option<i32>,
    /// Where the training data comes from.
    pub training_source: String,
    /// The loss.
    pub loss_type: String,
    /// Hyperparameters, JSON text.
    pub hyperparams: String,
    /// Where the job is in its life.
    pub status: JobStatus,
    /// Final metrics, JSON text.
    pub metrics: Option<String>,
    /// Why the job failed.
    pub error: Option<String>,
    /// The worker holding (or that last held) the lease.
    pub claimed_by: Option<String>,
    /// When the current lease runs out (µs since the epoch, UTC).
    pub lease_expires_at: Option<i64>,
    /// How many times the job has been claimed.
    pub attempts: i64,
    /// The owning tenant; `None` for a global job.
    pub tenant_id: Scope,
    /// Creation time (µs since the epoch, UTC).
    pub created_at: i64,
    /// Last update time (µs since the epoch, UTC).
    pub updated_at: i64,
}

macro_rules! job_columns {
    () => {
        "owner, job_id, base_model_id, base_model_version, output_model_id, output_version, \
         training_source, loss_type, hyperparams, status, metrics, error, claimed_by, \
         lease_expires_at, attempts, created_at, updated_at"
    };
}

const INSERT: OwnedWrite = OwnedWrite::new(concat!(
    "INSERT INTO training_jobs (owner, job_id, base_model_key, base_model_id, base_model_version, \
       output_model_id, output_version, training_source, loss_type, hyperparams, status, \
       attempts, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'queued', 0, $11, $11) \
     ON CONFLICT DO NOTHING RETURNING ",
    job_columns!()
));

const GET: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM training_jobs WHERE job_id = $1 AND owner IN ($2, '') ORDER BY owner = '' LIMIT 1"
);

const LIST: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM training_jobs WHERE owner IN ($1, '') ORDER BY created_at, job_id"
);

/// The oldest queued job of the caller's scope. On Postgres `SKIP LOCKED` lets concurrent
/// claimers pass over a row another claimer is taking, so each job has one winner; on
/// SQLite the `BEGIN IMMEDIATE` write lock already serializes claimers.
const CLAIM_POSTGRES: OwnedWrite = OwnedWrite::new(concat!(
    "UPDATE training_jobs SET status = 'running', claimed_by = $2, lease_expires_at = $3, \
       attempts = attempts + 1, updated_at = $4 \
     WHERE owner = $1 AND job_id = ( \
       SELECT job_id FROM training_jobs WHERE owner = $1 AND status = 'queued' \
       ORDER BY created_at, job_id LIMIT 1 FOR UPDATE SKIP LOCKED) \
     RETURNING ",
    job_columns!()
));
const CLAIM_SQLITE: OwnedWrite = OwnedWrite::new(concat!(
    "UPDATE training_jobs SET status = 'running', claimed_by = $2, lease_expires_at = $3, \
       attempts = attempts + 1, updated_at = $4 \
     WHERE owner = $1 AND job_id = ( \
       SELECT job_id FROM training_jobs WHERE owner = $1 AND status = 'queued' \
       ORDER BY created_at, job_id LIMIT 1) \
     RETURNING ",
    job_columns!()
));

/// Every lease-guarded write matches only a running job held by this worker whose lease
/// has not run out.
const HEARTBEAT: OwnedWrite = OwnedWrite::new(concat!(
    "UPDATE training_jobs SET lease_expires_at = $4, updated_at = $5 \
     WHERE owner = $1 AND job_id = $2 AND status = 'running' AND claimed_by = $3 \
       AND lease_expires_at > $5 RETURNING ",
    job_columns!()
));
const FAIL: OwnedWrite = OwnedWrite::new(concat!(
    "UPDATE training_jobs SET status = 'failed', error = $4, \
       lease_expires_at = NULL, updated_at = $5 \
     WHERE owner = $1 AND job_id = $2 AND status = 'running' AND claimed_by = $3 \
       AND lease_expires_at > $5 RETURNING ",
    job_columns!()
));
const FINALIZE: OwnedWrite = OwnedWrite::new(concat!(
    "UPDATE training_jobs SET status = 'completed', output_model_id = $4, \
       output_version = $5, metrics = $6, lease_expires_at = NULL, updated_at = $7 \
     WHERE owner = $1 AND job_id = $2 AND status = 'running' AND claimed_by = $3 \
       AND lease_expires_at > $7 RETURNING ",
    job_columns!()
));
/// The output row of the job's owner, that name and that version, and no other.
const WRITE_ARTIFACT: OwnedWrite = OwnedWrite::new(
    "UPDATE models SET artifact_path = $4, updated_at = $5 \
     WHERE owner = $1 AND model_id = $2 AND version = $3 \
     RETURNING model_key, model_id, version, model_type, task, backend, status, \
       base_model_id, artifact_path, config_json, owner, created_at, updated_at",
);
const RECLAIM: OwnedWrite = OwnedWrite::new(concat!(
    "UPDATE training_jobs SET \
       status = CASE WHEN attempts >= $2 THEN 'failed' ELSE 'queued' END, \
       error = CASE WHEN attempts >= $2 THEN 'lease expired; no attempts left' ELSE error END, \
       claimed_by = NULL, lease_expires_at = NULL, updated_at = $3 \
     WHERE owner = $1 AND status = 'running' AND lease_expires_at <= $3 RETURNING ",
    job_columns!()
));
const DELETE: OwnedWrite = OwnedWrite::new(concat!(
    "DELETE FROM training_jobs WHERE owner = $1 AND job_id = $2 RETURNING ",
    job_columns!()
));

impl Recorded for TrainingJob {
    fn row_key(&self) -> String {
        self.job_id.clone()
    }

    fn model_ref(&self) -> (Option<&str>, Option<i32>) {
        (Some(&self.output_model_id), self.output_version)
    }
}

/// The event of each job row a write returned.
fn job_changes(rows: &[DbRow], kind: impl Fn(&TrainingJob) -> EventKind) -> Result<Vec<Change>> {
    rows.iter()
        .map(|row| {
            let job = job_from_row(row)?;
            Change::written(kind(&job), &job)
        })
        .collect()
}

pub(super) fn job_from_row(row: &DbRow) -> Result<TrainingJob> {
    Ok(TrainingJob {
        job_id: row.text("job_id")?,
        base_model_id: row.text("base_model_id")?,
        base_model_version: row.int32("base_model_version")?,
        output_model_id: row.text("output_model_id")?,
        output_version: row.opt_int32("output_version")?,
        training_source: row.text("training_source")?,
        loss_type: row.text("loss_type")?,
        hyperparams: row.text("hyperparams")?,
        status: rows::parsed(row, "status")?,
        metrics: row.opt_text("metrics")?,
        error: row.opt_text("error")?,
        claimed_by: row.opt_text("claimed_by")?,
        lease_expires_at: row.opt_int("lease_expires_at")?,
        attempts: row.int("attempts")?,
        tenant_id: rows::owner(row)?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
    })
}

/// Queues one job inside an open serializable transaction (shared with SQL `INSERT`).
/// `job` must be validated.
pub(crate) async fn create_in(tx: &mut Tx, job: &NewTrainingJob) -> Result<TrainingJob> {
    let job_id = job
        .job_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let (base_key, base) = resolve_in(tx, &job.base_model_id, job.base_model_version).await?;
    guard_name_reference(tx, &job.output_model_id).await?;
    let args = args![
        job_id.as_str(),
        base_key,
        base.model_id,
        base.version,
        job.output_model_id.as_str(),
        job.output_version,
        job.training_source.as_str(),
        job.loss_type.as_str(),
        job.hyperparams.as_str(),
        now_micros(),
    ];
    let rows = tx.write_returning(&INSERT, &args).await?;
    match rows.first() {
        Some(row) => {
            let job = job_from_row(row)?;
            events::record(tx, &[Change::written(EventKind::TrainingJobCreated, &job)?]).await?;
            Ok(job)
        }
        None => Err(CatalogError::AlreadyExists {
            kind: "training job",
            id: job_id,
        }),
    }
}

impl Catalog {
    /// Queues a training job owned by the caller's scope. The base model is resolved by the
    /// get rule and stored by key.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`], [`CatalogError::ModelNotFound`] for the base model,
    /// [`CatalogError::AlreadyExists`] for a taken `job_id`.
    pub async fn create_training_job(&self, job: NewTrainingJob) -> Result<TrainingJob> {
        job.validate()?;
        // Pick the id once, so a retried transaction does not change it.
        let job = NewTrainingJob {
            job_id: Some(
                job.job_id
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            ),
            ..job
        };
        self.transaction(TxOptions::serializable(), |tx| {
            let job = job.clone();
            async move { create_in(tx, &job).await }.boxed()
        })
        .await
    }

    /// A visible training job, the caller's own preferred over a global one.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`].
    pub async fn get_training_job(&self, job_id: &str) -> Result<TrainingJob> {
        self.get_visible(GET, "training job", job_id, job_from_row)
            .await
    }

    /// Every visible training job, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_training_jobs(&self) -> Result<Vec<TrainingJob>> {
        self.list_visible(LIST, job_from_row).await
    }

    /// Claims the oldest queued job of the caller's scope for `worker`, for `lease`:
    /// status `running`, `attempts + 1`. Among concurrent claimers exactly one wins each
    /// job. `None` when nothing is queued.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] for an empty worker or a zero lease.
    pub async fn claim_next_training_job(
        &self,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<TrainingJob>> {
        validate::worker(worker)?;
        validate::lease(lease)?;
        self.transaction(TxOptions::write(), |tx| {
            let worker = worker.to_owned();
            async move {
                let now = now_micros();
                let sql = tx.dialect(&CLAIM_SQLITE, &CLAIM_POSTGRES);
                let args = args![worker, now.saturating_add(micros(lease)), now];
                let rows = tx.write_returning(sql, &args).await?;
                events::record(tx, &job_changes(&rows, |_| EventKind::TrainingJobClaimed)?).await?;
                rows.first().map(job_from_row).transpose()
            }
            .boxed()
        })
        .await
    }

    /// Extends the lease of a job `worker` holds. `false` when it no longer holds it.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`].
    pub async fn heartbeat_training_job(
        &self,
        job_id: &str,
        worker: &str,
        lease: Duration,
    ) -> Result<bool> {
        validate::text("job_id", job_id)?;
        validate::worker(worker)?;
        validate::lease(lease)?;
        self.lease_guarded_write(&HEARTBEAT, EventKind::TrainingJobHeartbeat, |now| {
            args![job_id, worker, now.saturating_add(micros(lease)), now]
        })
        .await
    }

    /// Marks a job `worker` holds as failed with `error`. `false` when it no longer holds it.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`].
    pub async fn fail_training_job(&self, job_id: &str, worker: &str, error: &str) -> Result<bool> {
        validate::text("job_id", job_id)?;
        validate::worker(worker)?;
        validate::text("error", error)?;
        self.lease_guarded_write(&FAIL, EventKind::TrainingJobFailed, |now| {
            args![job_id, worker, error, now]
        })
        .await
    }

    /// Runs a write guarded by the lease; `args` gets the current time, read inside the
    /// transaction (after any wait for the write lock), so an expired lease is never
    /// judged live by a stale clock.
    async fn lease_guarded_write<const N: usize>(
        &self,
        sql: &'static OwnedWrite,
        kind: EventKind,
        args: impl Fn(i64) -> [crate::store::Value; N] + Send + Sync,
    ) -> Result<bool> {
        self.transaction(TxOptions::write(), |tx| {
            let args = args(now_micros());
            async move {
                let rows = tx.write_returning(sql, &args).await?;
                events::record(tx, &job_changes(&rows, |_| kind)?).await?;
                Ok(rows.len() == 1)
            }
            .boxed()
        })
        .await
    }

    /// Returns the caller's running jobs whose lease ran out to the queue, or fails them
    /// once `max_attempts` claims are used up. Returns how many jobs were reclaimed.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] for `max_attempts < 1`.
    pub async fn reclaim_expired_training_jobs(&self, max_attempts: i64) -> Result<u64> {
        if max_attempts < 1 {
            return Err(CatalogError::invalid("max_attempts", "must be at least 1"));
        }
        self.transaction(TxOptions::write(), |tx| {
            async move {
                let args = args![max_attempts, now_micros()];
                let rows = tx.write_returning(&RECLAIM, &args).await?;
                let changes = job_changes(&rows, |job| match job.status {
                    JobStatus::Failed => EventKind::TrainingJobFailed,
                    _ => EventKind::TrainingJobRequeued,
                })?;
                events::record(tx, &changes).await?;
                Ok(rows.len() as u64)
            }
            .boxed()
        })
        .await
    }

    /// Completes a job: a compare-and-set that succeeds only for the current lease holder
    /// of a running job (returns `true`). Only then, in the same transaction, `artifact_path`
    /// is written to the output model row of the job's owner with that name and version —
    /// never another tenant's row. A worker that lost its lease writes nothing (`false`).
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`]; [`CatalogError::ModelNotFound`] when the job's owner
    /// has no such output model version (nothing is written; register it first).
    pub async fn finalize_training_job(
        &self,
        job_id: &str,
        worker: &str,
        output_model_id: &str,
        output_version: i32,
        artifact_path: &str,
        metrics: Option<&str>,
    ) -> Result<bool> {
        validate::text("job_id", job_id)?;
        validate::worker(worker)?;
        validate::name("output_model_id", output_model_id)?;
        validate::version("output_version", output_version)?;
        validate::non_empty("artifact_path", artifact_path)?;
        validate::json("metrics", metrics)?;
        let (job_id, worker, output_model_id, artifact_path, metrics) = (
            job_id.to_owned(),
            worker.to_owned(),
            output_model_id.to_owned(),
            artifact_path.to_owned(),
            metrics.map(str::to_owned),
        );
        self.transaction(TxOptions::write(), |tx| {
            let (job_id, worker, output_model_id, artifact_path, metrics) = (
                job_id.clone(),
                worker.clone(),
                output_model_id.clone(),
                artifact_path.clone(),
                metrics.clone(),
            );
            async move {
                let now = now_micros();
                let won = tx
                    .write_returning(
                        &FINALIZE,
                        &args![
                            job_id,
                            worker,
                            output_model_id.as_str(),
                            output_version,
                            metrics,
                            now
                        ],
                    )
                    .await?;
                if won.len() != 1 {
                    return Ok(false);
                }
                let written = tx
                    .write_returning(
                        &WRITE_ARTIFACT,
                        &args![output_model_id.as_str(), output_version, artifact_path, now],
                    )
                    .await?;
                let [model] = written.as_slice() else {
                    return Err(CatalogError::ModelNotFound {
                        model: output_model_id,
                        version: Some(output_version),
                    });
                };
                let mut changes = job_changes(&won, |_| EventKind::TrainingJobCompleted)?;
                changes.push(Change::written(
                    EventKind::ModelUpdated,
                    &model_from_row(model)?,
                )?);
                events::record(tx, &changes).await?;
                Ok(true)
            }
            .boxed()
        })
        .await
    }

    /// Deletes a training job the caller owns.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`] when the caller owns no such job;
    /// [`CatalogError::InvalidInput`] for an id holding NUL.
    pub async fn delete_training_job(&self, job_id: &str) -> Result<()> {
        self.delete_owned(
            &DELETE,
            "training job",
            "job_id",
            job_id,
            job_from_row,
            EventKind::TrainingJobDeleted,
        )
        .await
    }
}
