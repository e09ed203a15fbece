//! Evaluation runs: metrics recorded against a model version (SPEC §4).

use futures::FutureExt;

use super::Catalog;
use super::events::{self, Change, EventKind, Recorded};
use super::models::resolve_in;
use super::rows;
use crate::clock::now_micros;
use crate::error::{CatalogError, Result};
use crate::store::{DbRow, OwnedWrite, TxOptions, args};
use crate::tenant::Scope;
use crate::validate;

/// What [`Catalog::create_eval_run`] writes.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvalRun {
    /// The run's id; `None` lets the catalog pick a UUID.
    pub run_id: Option<String>,
    /// The evaluated model, resolved by the get rule; `None` for a run not tied to a model.
    pub model_id: Option<String>,
    /// The evaluated version; `None` means the latest visible one.
    pub model_version: Option<i32>,
    /// e.g. `retrieval`, `classification`.
    pub eval_type: String,
    /// The scores, JSON text.
    pub metrics: String,
}

impl NewEvalRun {
    /// A run of `eval_type` on the latest visible `model_id`.
    pub fn new(
        model_id: impl Into<String>,
        eval_type: impl Into<String>,
        metrics: impl Into<String>,
    ) -> Self {
        NewEvalRun {
            run_id: None,
            model_id: Some(model_id.into()),
            model_version: None,
            eval_type: eval_type.into(),
            metrics: metrics.into(),
        }
    }

    /// Checks every field against SPEC §9.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if let Some(id) = &self.run_id {
            validate::name("run_id", id)?;
        }
        match (&self.model_id, self.model_version) {
            (Some(model), version) => {
                validate::name("model_id", model)?;
                if let Some(v) = version {
                    validate::version("model_version", v)?;
                }
            }
            (None, Some(_)) => {
                return Err(CatalogError::invalid(
                    "model_version",
                    "given without a model_id",
                ));
            }
            (None, None) => {}
        }
        validate::non_empty("eval_type", &self.eval_type)?;
        validate::json("metrics", Some(&self.metrics))
    }
}

/// One evaluation run, as stored. Its serde form is its row in `jammi.public.eval_runs`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvalRun {
    /// The run's id (unique within its owner's scope).
    pub run_id: String,
    /// The evaluated model's name.
    pub model_id: Option<String>,
    /// The evaluated model's version.
    pub model_version: Option<i32>,
    /// The kind of evaluation.
    pub eval_type: String,
    /// The scores, JSON text.
    pub metrics: String,
    /// The owning tenant; `None` for a global run.
    pub tenant_id: Scope,
    /// Creation time (µs since the epoch, UTC).
    pub created_at: i64,
}

macro_rules! run_columns {
    () => {
        "owner, run_id, model_id, model_version, eval_type, metrics, created_at"
    };
}

const INSERT: OwnedWrite = OwnedWrite::new(concat!(
    "INSERT INTO eval_runs (owner, run_id, model_key, model_id, model_version, eval_type, \
       metrics, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT DO NOTHING RETURNING ",
    run_columns!()
));
const GET: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM eval_runs WHERE run_id = $1 AND owner IN ($2, '') ORDER BY owner = '' LIMIT 1"
);
const LIST: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM eval_runs WHERE owner IN ($1, '') ORDER BY created_at, run_id"
);
const DELETE: OwnedWrite = OwnedWrite::new(concat!(
    "DELETE FROM eval_runs WHERE owner = $1 AND run_id = $2 RETURNING ",
    run_columns!()
));

impl Recorded for EvalRun {
    fn row_key(&self) -> String {
        self.run_id.clone()
    }

    fn model_ref(&self) -> (Option<&str>, Option<i32>) {
        (self.model_id.as_deref(), self.model_version)
    }
}

pub(super) fn run_from_row(row: &DbRow) -> Result<EvalRun> {
    Ok(EvalRun {
        run_id: row.text("run_id")?,
        model_id: row.opt_text("model_id")?,
        model_version: row.opt_int32("model_version")?,
        eval_type: row.text("eval_type")?,
        metrics: row.text("metrics")?,
        tenant_id: rows::owner(row)?,
        created_at: row.int("created_at")?,
    })
}

/// Creates one eval run inside an open serializable transaction (shared with SQL `INSERT`).
pub(crate) async fn create_in(tx: &mut crate::store::Tx, run: &NewEvalRun) -> Result<EvalRun> {
    let run_id = run
        .run_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let (key, name, version) = match &run.model_id {
        Some(model) => {
            let (key, found) = resolve_in(tx, model, run.model_version).await?;
            (Some(key), Some(found.model_id), Some(found.version))
        }
        None => (None, None, None),
    };
    let args = args![
        run_id.as_str(),
        key,
        name,
        version,
        run.eval_type.as_str(),
        run.metrics.as_str(),
        now_micros(),
    ];
    let rows = tx.write_returning(&INSERT, &args).await?;
    match rows.first() {
        Some(row) => {
            let created = run_from_row(row)?;
            events::record(tx, &[Change::written(EventKind::EvalRunCreated, &created)?]).await?;
            Ok(created)
        }
        None => Err(CatalogError::AlreadyExists {
            kind: "eval run",
            id: run_id,
        }),
    }
}

impl Catalog {
    /// Records an eval run owned by the caller's scope; the model is resolved by the get
    /// rule and stored by key.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`], [`CatalogError::ModelNotFound`],
    /// [`CatalogError::AlreadyExists`] for a taken `run_id`.
    pub async fn create_eval_run(&self, run: NewEvalRun) -> Result<EvalRun> {
        run.validate()?;
        // Pick the id once, so a retried transaction does not change it.
        let run = NewEvalRun {
            run_id: Some(
                run.run_id
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            ),
            ..run
        };
        self.transaction(TxOptions::serializable(), |tx| {
            let run = run.clone();
            async move { create_in(tx, &run).await }.boxed()
        })
        .await
    }

    /// A visible eval run, the caller's own preferred over a global one.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`].
    pub async fn get_eval_run(&self, run_id: &str) -> Result<EvalRun> {
        self.get_visible(GET, "eval run", run_id, run_from_row)
            .await
    }

    /// Every visible eval run, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_eval_runs(&self) -> Result<Vec<EvalRun>> {
        self.list_visible(LIST, run_from_row).await
    }

    /// Deletes an eval run the caller owns.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`] when the caller owns no such run;
    /// [`CatalogError::InvalidInput`] for an id holding NUL.
    pub async fn delete_eval_run(&self, run_id: &str) -> Result<()> {
        self.delete_owned(
            &DELETE,
            "eval run",
            "run_id",
            run_id,
            run_from_row,
            EventKind::EvalRunDeleted,
        )
        .await
    }
}
