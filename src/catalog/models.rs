//! Models and versions: register, get, list, delete (SPEC §4).

use futures::FutureExt;

use super::Catalog;
use super::events::{self, Change, EventKind, Recorded};
use super::key::model_key;
use super::rows::{self, status_enum};
use crate::access::Access;
use crate::clock::now_micros;
use crate::error::{CatalogError, Result};
use crate::store::{DbRow, OwnedWrite, OwnerParam, Tx, TxOptions, Value, args};
use crate::task::ModelTask;
use crate::tenant::{Scope, owner_of};
use crate::validate;

status_enum! {
    /// The lifecycle state of a model row.
    ModelStatus {
        /// Set on creation.
        Registered => "registered",
        /// Loaded by a serving backend.
        Loaded => "loaded",
        /// Failed to load.
        Failed => "failed",
    }
}

/// One model version, as stored. Its serde form is its row in `jammi.public.models`
/// (the state its events record).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelRecord {
    /// The model's name.
    pub model_id: String,
    /// The version, ≥ 1.
    pub version: i32,
    /// e.g. `embedding`, `llm`, `lora`.
    pub model_type: String,
    /// What the model does.
    pub task: ModelTask,
    /// The inference backend, e.g. `candle`.
    pub backend: String,
    /// Lifecycle state.
    pub status: ModelStatus,
    /// The model this one was derived from.
    pub base_model_id: Option<String>,
    /// Where the weights live.
    pub artifact_path: Option<String>,
    /// Backend-specific configuration, JSON text.
    pub config_json: Option<String>,
    /// The owning tenant; `None` for a global model.
    pub tenant_id: Scope,
    /// Creation time, microseconds since the Unix epoch (UTC).
    pub created_at: i64,
    /// Last update time, microseconds since the Unix epoch (UTC).
    pub updated_at: i64,
}

/// What [`Catalog::register_model`] writes.
#[derive(Clone, Debug, PartialEq)]
pub struct RegisterModel {
    /// The model's name (1–256 characters, no control characters, no `::`).
    pub model_id: String,
    /// The version to write; `None` allocates the next one in the caller's scope.
    pub version: Option<i32>,
    /// e.g. `embedding`.
    pub model_type: String,
    /// e.g. `candle`.
    pub backend: String,
    /// What the model does.
    pub task: ModelTask,
    /// Lineage: the model this one was derived from.
    pub base_model_id: Option<String>,
    /// Where the weights live; `None` never clears a path already committed.
    pub artifact_path: Option<String>,
    /// Backend-specific JSON.
    pub config_json: Option<String>,
}

impl RegisterModel {
    /// A registration of the next version of `model_id`, with no lineage, path or config.
    pub fn new(
        model_id: impl Into<String>,
        model_type: impl Into<String>,
        backend: impl Into<String>,
        task: ModelTask,
    ) -> Self {
        RegisterModel {
            model_id: model_id.into(),
            version: None,
            model_type: model_type.into(),
            backend: backend.into(),
            task,
            base_model_id: None,
            artifact_path: None,
            config_json: None,
        }
    }

    /// Writes this exact version (an upsert).
    pub fn version(mut self, version: i32) -> Self {
        self.version = Some(version);
        self
    }

    /// Records the base model (lineage).
    pub fn base_model(mut self, base_model_id: impl Into<String>) -> Self {
        self.base_model_id = Some(base_model_id.into());
        self
    }

    /// Records where the weights live.
    pub fn artifact_path(mut self, path: impl Into<String>) -> Self {
        self.artifact_path = Some(path.into());
        self
    }

    /// Records backend-specific JSON configuration.
    pub fn config_json(mut self, json: impl Into<String>) -> Self {
        self.config_json = Some(json.into());
        self
    }

    /// Checks every field against SPEC §9.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        validate::name("model_id", &self.model_id)?;
        if let Some(v) = self.version {
            validate::version("version", v)?;
        }
        validate::non_empty("model_type", &self.model_type)?;
        validate::non_empty("backend", &self.backend)?;
        if let Some(base) = &self.base_model_id {
            validate::name("base_model_id", base)?;
        }
        if let Some(path) = &self.artifact_path {
            validate::non_empty("artifact_path", path)?;
        }
        validate::json("config_json", self.config_json.as_deref())
    }
}

macro_rules! model_columns {
    () => {
        "model_key, model_id, version, model_type, task, backend, status, base_model_id, artifact_path, \
         config_json, owner, created_at, updated_at"
    };
}

/// Own latest and global latest, each one index seek; the own row wins before versions are
/// compared (a tenant's v1 shadows a global v2).
pub(crate) const GET_LATEST: &str = concat!(
    "SELECT * FROM (SELECT ",
    model_columns!(),
    ", 0 AS preference FROM models WHERE model_id = $1 AND owner = $2 \
       ORDER BY version DESC LIMIT 1) AS own \
     UNION ALL \
     SELECT * FROM (SELECT ",
    model_columns!(),
    ", 1 AS preference FROM models WHERE model_id = $1 AND owner = '' \
       ORDER BY version DESC LIMIT 1) AS global \
     ORDER BY preference LIMIT 1"
);

const GET_VERSION: &str = concat!(
    "SELECT ",
    model_columns!(),
    " FROM models WHERE model_id = $1 AND owner IN ($2, '') AND version = $3 \
      ORDER BY owner = '' LIMIT 1"
);

/// The version an alias points at: the caller's own alias preferred over a global one.
pub(super) const GET_BY_ALIAS: &str = concat!(
    "SELECT ",
    model_columns!(),
    " FROM models WHERE model_key = (SELECT model_key FROM model_aliases \
       WHERE model_id = $1 AND alias = $2 AND owner IN ($3, '') ORDER BY owner = '' LIMIT 1)"
);

const LIST_VISIBLE: &str = concat!(
    "SELECT ",
    model_columns!(),
    " FROM models WHERE owner IN ($1, '') ORDER BY created_at, model_id, version"
);

/// The column list of a new model row; values follow in this order. `owner` comes first:
/// the transaction binds it (`store::OwnedWrite`).
macro_rules! insert_model_head {
    () => {
        "INSERT INTO models (owner, model_key, model_id, version, model_type, task, backend, \
           status, base_model_id, artifact_path, config_json, created_at, updated_at) VALUES "
    };
}

/// What a register of an existing version changes, and only in the caller's own row.
macro_rules! upsert_model_conflict {
    () => {
        " ON CONFLICT (model_key) DO UPDATE SET \
           model_type = excluded.model_type, task = excluded.task, backend = excluded.backend, \
           base_model_id = excluded.base_model_id, config_json = excluded.config_json, \
           artifact_path = COALESCE(excluded.artifact_path, models.artifact_path), \
           updated_at = excluded.updated_at \
         WHERE models.owner = excluded.owner"
    };
}

const UPSERT: OwnedWrite = OwnedWrite::new(concat!(
    insert_model_head!(),
    "($1, $2, $3, $4, $5, $6, $7, 'registered', $8, $9, $10, $11, $11)",
    upsert_model_conflict!(),
    " RETURNING ",
    model_columns!()
));

/// The insert of an allocated version: on a collision with a concurrent allocator it
/// inserts nothing (after that transaction commits), and the caller allocates again.
const INSERT_NEW_VERSION: OwnedWrite = OwnedWrite::new(concat!(
    insert_model_head!(),
    "($1, $2, $3, $4, $5, $6, $7, 'registered', $8, $9, $10, $11, $11) \
     ON CONFLICT DO NOTHING \
     RETURNING ",
    model_columns!()
));

/// The latest version as one backward index seek. Spelled `ORDER BY … LIMIT 1`, not
/// `MAX(version)`: with statistics that predate a bulk insert, Postgres planned the
/// aggregate as a scan of every version of the model (a register cost grew with the
/// versions, 0.3 ms at 1 000), where this form is one index entry whatever the statistics.
const NEXT_VERSION: &str = "SELECT COALESCE((SELECT version FROM models \
       WHERE model_id = $1 AND owner = $2 ORDER BY version DESC LIMIT 1), 0) + 1 AS next";

/// How many times one transaction re-allocates after losing a version to a concurrent
/// writer before it gives up (each loss means another writer committed a version).
const MAX_ALLOCATION_ROUNDS: usize = 1_000;

pub(super) const FIND_OWNED_VERSION: &str = "SELECT model_key, version FROM models \
     WHERE model_id = $1 AND owner = $2 AND version = $3";

/// The version a delete removes, with what references it, in one read: the four edges of
/// SPEC §4 and the alias edge of §13 (named as `delete_in` reports them), and whether it
/// has tags to remove with it. A tenant's model counts that tenant's references (only it
/// can see, so reference, its rows by name); a global model counts every tenant's, since
/// any tenant may depend on it. `$1` name, `$2` the caller's owner.
macro_rules! delete_target {
    (owned, $which:literal) => {
        delete_target!(
            "EXISTS (SELECT 1 FROM result_tables WHERE model_id = $1 AND owner = $2) AS result_tables, \
             EXISTS (SELECT 1 FROM training_jobs WHERE output_model_id = $1 AND owner = $2) AS outputs, ",
            $which
        )
    };
    (global, $which:literal) => {
        delete_target!(
            "EXISTS (SELECT 1 FROM result_tables WHERE model_id = $1) AS result_tables, \
             EXISTS (SELECT 1 FROM training_jobs WHERE output_model_id = $1) AS outputs, ",
            $which
        )
    };
    ($by_name:literal, $which:literal) => {
        concat!(
            "SELECT model_key, version, ",
            $by_name,
            "EXISTS (SELECT 1 FROM training_jobs j WHERE j.base_model_key = m.model_key) AS bases, \
             EXISTS (SELECT 1 FROM eval_runs e WHERE e.model_key = m.model_key) AS evals, \
             EXISTS (SELECT 1 FROM model_aliases a WHERE a.model_key = m.model_key) AS aliases, \
             EXISTS (SELECT 1 FROM model_tags t WHERE t.model_key = m.model_key) AS tagged \
             FROM models m WHERE m.model_id = $1 AND m.owner = $2",
            $which
        )
    };
}

/// [`delete_target!`] for each kind of owner, of the latest version or of version `$3`.
const DELETE_TARGET: [[&str; 2]; 2] = [
    [
        delete_target!(owned, " ORDER BY m.version DESC LIMIT 1"),
        delete_target!(owned, " AND m.version = $3"),
    ],
    [
        delete_target!(global, " ORDER BY m.version DESC LIMIT 1"),
        delete_target!(global, " AND m.version = $3"),
    ],
];

const DELETE_BY_KEY: OwnedWrite = OwnedWrite::new(concat!(
    "DELETE FROM models WHERE owner = $1 AND model_key = $2 RETURNING ",
    model_columns!()
));

pub(super) fn model_from_row(row: &DbRow) -> Result<ModelRecord> {
    Ok(ModelRecord {
        model_id: row.text("model_id")?,
        version: row.int32("version")?,
        model_type: row.text("model_type")?,
        task: rows::parsed(row, "task")?,
        backend: row.text("backend")?,
        status: rows::parsed(row, "status")?,
        base_model_id: row.opt_text("base_model_id")?,
        artifact_path: row.opt_text("artifact_path")?,
        config_json: row.opt_text("config_json")?,
        tenant_id: rows::owner(row)?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
    })
}

/// The values of a new model row, in the order of `insert_model_head!` from `model_key` up
/// to `created_at` (the transaction binds `owner`; `status` is a literal in the
/// statements).
fn model_values(scope: Scope, params: &RegisterModel, version: i32, now: i64) -> [Value; 10] {
    args![
        model_key(scope, &params.model_id, version),
        params.model_id.as_str(),
        version,
        params.model_type.as_str(),
        params.task.as_str(),
        params.backend.as_str(),
        params.base_model_id.as_deref(),
        params.artifact_path.as_deref(),
        params.config_json.as_deref(),
        now,
    ]
}

/// Registers one model inside an open transaction (shared by the Rust API and SQL
/// `INSERT`, which registers many rows in one transaction). `params` must be validated.
pub(crate) async fn register_in(tx: &mut Tx, params: &RegisterModel) -> Result<ModelRecord> {
    let (scope, owner) = (tx.scope(), tx.owner());
    let now = now_micros();
    let write = |version: i32| model_values(scope, params, version, now);

    if let Some(version) = params.version {
        let rows = tx.write_returning(&UPSERT, &write(version)).await?;
        let model = model_from_row(rows.first().ok_or(sqlx::Error::RowNotFound)?)?;
        events::record(tx, &[registered(&model)?]).await?;
        return Ok(model);
    }

    for _ in 0..MAX_ALLOCATION_ROUNDS {
        // Read committed: each statement sees every version committed before it started,
        // so after losing a race the next round allocates past the winner.
        let next = tx
            .fetch_one(
                NEXT_VERSION,
                &args![params.model_id.as_str(), owner.as_str()],
            )
            .await?
            .int("next")?;
        let version = i32::try_from(next).map_err(|_| {
            CatalogError::invalid(
                "version",
                format!("{} has no free version", params.model_id),
            )
        })?;
        let rows = tx
            .write_returning(&INSERT_NEW_VERSION, &write(version))
            .await?;
        if let Some(row) = rows.first() {
            let model = model_from_row(row)?;
            events::record(tx, &[Change::written(EventKind::ModelRegistered, &model)?]).await?;
            return Ok(model);
        }
    }
    Err(CatalogError::RetryExhausted {
        attempts: MAX_ALLOCATION_ROUNDS as u32,
        last: format!("could not allocate a version of {}", params.model_id),
    })
}

/// Registers many models at once inside an open transaction, as [`register_in`] would one
/// after another (SQL `INSERT INTO models`).
///
/// Runs of rows that name their version are written as multi-row upserts: one statement
/// per [`UPSERT_CHUNK`] rows instead of one per row. A chunk never holds a model key
/// twice (Postgres refuses to upsert one row twice in a statement), and a row without a
/// version is allocated on its own, in order, so the outcome is the row-by-row one.
/// `on_error` names the row (0-based) a failure belongs to, or the first of its chunk.
pub(crate) async fn register_many_in(
    tx: &mut Tx,
    rows: &[RegisterModel],
    on_error: impl Fn(usize, CatalogError) -> CatalogError,
) -> Result<()> {
    let scope = tx.scope();
    let mut chunk_start = 0;
    let mut keys = std::collections::HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        let Some(version) = row.version else {
            upsert_chunk(tx, &rows[chunk_start..i])
                .await
                .map_err(|e| on_error(chunk_start, e))?;
            register_in(tx, row).await.map_err(|e| on_error(i, e))?;
            chunk_start = i + 1;
            keys.clear();
            continue;
        };
        let key = model_key(scope, &row.model_id, version);
        if i - chunk_start == UPSERT_CHUNK || keys.contains(&key) {
            upsert_chunk(tx, &rows[chunk_start..i])
                .await
                .map_err(|e| on_error(chunk_start, e))?;
            chunk_start = i;
            keys.clear();
        }
        keys.insert(key);
    }
    upsert_chunk(tx, &rows[chunk_start..])
        .await
        .map_err(|e| on_error(chunk_start, e))
}

/// Rows per multi-row upsert: 5 500 parameters (SQLite: 6 000), under both backends'
/// limits.
const UPSERT_CHUNK: usize = 500;

/// Upserts rows that all name their version and whose keys are distinct.
async fn upsert_chunk(tx: &mut Tx, rows: &[RegisterModel]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let scope = tx.scope();
    let mut args = Vec::with_capacity(rows.len() * 11);
    for row in rows {
        let version = row.version.expect("upsert_chunk takes rows with a version");
        // Per row, as registering one by one would stamp them (listings order by it).
        let now = now_micros();
        args.extend(model_values(scope, row, version, now));
        args.push(Value::from(now)); // updated_at: positional `?` cannot reuse created_at's
    }
    // The owner is the transaction's: on Postgres `$1`, shared by every row; SQLite gets
    // positional `?` (sqlx finds a `$n` by name, a linear search per parameter in SQLite)
    // and the transaction binds the owner at the head of each row.
    let (owner, row_values) = match tx.backend() {
        crate::store::Backend::Sqlite => (
            OwnerParam::RowHead,
            (0..rows.len())
                .map(|_| "(?, ?, ?, ?, ?, ?, ?, 'registered', ?, ?, ?, ?, ?)".to_owned())
                .collect::<Vec<_>>(),
        ),
        crate::store::Backend::Postgres => (
            OwnerParam::Numbered,
            (0..rows.len())
                .map(|r| {
                    let p: Vec<String> = (0..11).map(|k| format!("${}", 2 + r * 11 + k)).collect();
                    format!(
                        "($1, {}, {}, {}, {}, {}, {}, 'registered', {}, {}, {}, {}, {})",
                        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10]
                    )
                })
                .collect(),
        ),
    };
    // Built from the catalog's own text and placeholders only; values travel as binds.
    let sql = [
        insert_model_head!(),
        &row_values.join(", "),
        upsert_model_conflict!(),
        " RETURNING ",
        model_columns!(),
    ]
    .concat();
    let written = tx.write_built_returning(sql, owner, &args).await?;
    if written.len() != rows.len() {
        // The upsert's guard refused a row of another owner.
        return Err(CatalogError::TenantMismatch { scope });
    }
    let changes = written
        .iter()
        .map(|row| registered(&model_from_row(row)?))
        .collect::<Result<Vec<_>>>()?;
    events::record(tx, &changes).await
}

/// The event of a register: a new version, or an existing one written again (whose
/// creation time is that of an earlier transaction).
fn registered(model: &ModelRecord) -> Result<Change> {
    let kind = if model.created_at == model.updated_at {
        EventKind::ModelRegistered
    } else {
        EventKind::ModelUpdated
    };
    Change::written(kind, model)
}

impl Recorded for ModelRecord {
    fn row_key(&self) -> String {
        format!("{}::{}", self.model_id, self.version)
    }

    fn model_ref(&self) -> (Option<&str>, Option<i32>) {
        (Some(&self.model_id), Some(self.version))
    }
}

/// Resolves a model reference by the get rule inside an open transaction: that version
/// (own row preferred) or, without a version, the latest visible one. Returns the storage
/// key read back from the row together with the row.
pub(super) async fn resolve_in(
    tx: &mut Tx,
    model_id: &str,
    version: Option<i32>,
) -> Result<(String, ModelRecord)> {
    let owner = tx.owner();
    let row = match version {
        None => {
            tx.fetch_optional(GET_LATEST, &args![model_id, owner])
                .await?
        }
        Some(v) => {
            tx.fetch_optional(GET_VERSION, &args![model_id, owner, v])
                .await?
        }
    };
    let row = row.ok_or_else(|| CatalogError::ModelNotFound {
        model: model_id.to_owned(),
        version,
    })?;
    Ok((row.text("model_key")?, model_from_row(&row)?))
}

/// Reads the visible rows of a model name inside a serializable transaction that is about
/// to add a by-name reference to it. The read is what makes the reference conflict with a
/// concurrent `delete_model` of that name on Postgres (SSI sees the read/write cycle and
/// aborts one side, which the store retries), so a reference is never orphaned.
pub(super) async fn guard_name_reference(tx: &mut Tx, model_id: &str) -> Result<()> {
    let owner = tx.owner();
    tx.fetch_all(
        "SELECT model_key FROM models WHERE model_id = $1 AND owner IN ($2, '')",
        &args![model_id, owner],
    )
    .await?;
    Ok(())
}

impl Catalog {
    /// Registers a model version: an upsert of one (owner, name, version) row.
    ///
    /// A new row gets status `registered` and the caller's scope as owner. An existing row
    /// gets the new type, backend, task, base model and config; its status, owner, name
    /// and version never change, and its artifact path changes only when a path is given.
    /// Without a version the next free version of the name in the caller's own scope is
    /// allocated (1 if none); concurrent callers get distinct, gap-free versions.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] for a bad field (nothing is written); database errors.
    pub async fn register_model(&self, params: RegisterModel) -> Result<ModelRecord> {
        params.validate()?;
        let options = TxOptions {
            retry_on_unique_violation: params.version.is_none(),
            ..TxOptions::write()
        };
        self.transaction(options, |tx| {
            let params = params.clone();
            async move { register_in(tx, &params).await }.boxed()
        })
        .await
    }

    /// The latest visible version of `model_id`, preferring the caller's own rows over
    /// global ones *before* comparing versions: a tenant's v1 shadows a global v2.
    ///
    /// # Errors
    /// [`CatalogError::ModelNotFound`] when no visible row has that name.
    pub async fn get_model(&self, model_id: &str) -> Result<ModelRecord> {
        // A name holding NUL names no model (registers refuse it), and Postgres would
        // refuse it where SQLite answers "no row": not sent to the database.
        let row = if model_id.contains('\0') {
            None
        } else {
            self.store()
                .fetch_optional(GET_LATEST, &args![model_id, owner_of(self.scope())])
                .await?
        };
        match row {
            Some(row) => model_from_row(&row),
            None => Err(CatalogError::ModelNotFound {
                model: model_id.to_owned(),
                version: None,
            }),
        }
    }

    /// One version of `model_id`, the caller's own row preferred over a global one.
    ///
    /// # Errors
    /// [`CatalogError::ModelNotFound`] when no visible row matches.
    pub async fn get_model_version(&self, model_id: &str, version: i32) -> Result<ModelRecord> {
        let row = if model_id.contains('\0') {
            None
        } else {
            self.store()
                .fetch_optional(
                    GET_VERSION,
                    &args![model_id, owner_of(self.scope()), version],
                )
                .await?
        };
        match row {
            Some(row) => model_from_row(&row),
            None => Err(CatalogError::ModelNotFound {
                model: model_id.to_owned(),
                version: Some(version),
            }),
        }
    }

    /// Every visible model row, ordered by creation time, then name and version.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_models(&self) -> Result<Vec<ModelRecord>> {
        self.store()
            .fetch_all(LIST_VISIBLE, &args![owner_of(self.scope())])
            .await?
            .iter()
            .map(model_from_row)
            .collect()
    }

    /// The visible model rows as they were at `at` (µs since the epoch, UTC), replayed
    /// from the event log, ordered as [`Catalog::list_models`] orders them. At the current
    /// time it equals [`Catalog::list_models`].
    ///
    /// # Errors
    /// Database errors.
    pub async fn models_as_of(&self, at: i64) -> Result<Vec<ModelRecord>> {
        let mut models: Vec<ModelRecord> = self.replay_until("models", at).await?;
        models.sort_by(|a, b| {
            (a.created_at, &a.model_id, a.version).cmp(&(b.created_at, &b.model_id, b.version))
        });
        Ok(models)
    }

    /// Deletes one model version the caller owns: the latest when `version` is `None`.
    ///
    /// Refused while anything references the model (result tables or training-job outputs
    /// by name, training-job bases, eval runs or aliases by key); a global model counts every
    /// tenant's references. The scan and the delete run in one serializable transaction,
    /// so a reference added concurrently is never orphaned. A row the caller can see but
    /// does not own (a global row from a tenant) answers not-found, like a row it cannot
    /// see. Returns `true` when a row was deleted, `false` for an absent row with
    /// `if_exists`.
    ///
    /// # Errors
    /// [`CatalogError::ModelNotFound`], [`CatalogError::ModelReferenced`] (with the edges),
    /// [`CatalogError::InvalidInput`] for a name holding NUL.
    pub async fn delete_model(
        &self,
        model_id: &str,
        version: Option<i32>,
        if_exists: bool,
    ) -> Result<bool> {
        validate::text("model_id", model_id)?;
        self.transaction(TxOptions::serializable().needing(Access::Admin), |tx| {
            let model_id = model_id.to_owned();
            async move { delete_in(tx, &model_id, version, if_exists).await }.boxed()
        })
        .await
    }
}

/// Deletes one owned model version inside an open serializable transaction (shared with
/// SQL `DELETE FROM models`).
pub(crate) async fn delete_in(
    tx: &mut Tx,
    model_id: &str,
    version: Option<i32>,
    if_exists: bool,
) -> Result<bool> {
    let scope = tx.scope();
    let owner = tx.owner();
    let statements = DELETE_TARGET[usize::from(scope.is_none())];
    let target = match version {
        None => {
            tx.fetch_optional(statements[0], &args![model_id, owner.as_str()])
                .await?
        }
        Some(v) => {
            tx.fetch_optional(statements[1], &args![model_id, owner.as_str(), v])
                .await?
        }
    };
    let Some(target) = target else {
        return if if_exists {
            Ok(false)
        } else {
            Err(CatalogError::ModelNotFound {
                model: model_id.to_owned(),
                version,
            })
        };
    };
    let key = target.text("model_key")?;
    let found_version = target.int32("version")?;
    let edges: Vec<&'static str> = [
        ("result_tables", "result_tables.model_id"),
        ("outputs", "training_jobs.output_model_id"),
        ("bases", "training_jobs.base_model_key"),
        ("evals", "eval_runs.model_key"),
        ("aliases", "model_aliases.model_key"),
    ]
    .into_iter()
    .filter_map(|(column, edge)| match target.bool(column) {
        Ok(true) => Some(Ok(edge)),
        Ok(false) => None,
        Err(e) => Some(Err(e)),
    })
    .collect::<Result<_>>()?;
    if !edges.is_empty() {
        return Err(CatalogError::ModelReferenced {
            model: model_id.to_owned(),
            version: found_version,
            edges,
        });
    }
    // A version's tags go with it, each with its own event, before the row they point at.
    // The read above saw whether it has any (on Postgres a tag added since conflicts with
    // that read, and the transaction is retried).
    let mut changes = if target.bool("tagged")? {
        super::tags::delete_of_model_in(tx, &key).await?
    } else {
        Vec::new()
    };
    let deleted = tx.write_returning(&DELETE_BY_KEY, &args![key]).await?;
    for row in &deleted {
        changes.push(Change::removed(
            EventKind::ModelDeleted,
            &model_from_row(row)?,
        ));
    }
    events::record(tx, &changes).await?;
    Ok(true)
}
