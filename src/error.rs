//! The crate's one error type (SPEC §9).
//!
//! Every fallible operation returns [`CatalogError`]. Messages are written for the person
//! who sent the request: they name the model, field or edge involved, and never another
//! tenant's data. At the DataFusion boundary the error is wrapped once (see
//! [`CatalogError::into_datafusion`]) so its message survives intact.

use datafusion::error::DataFusionError;

use crate::access::Access;
use crate::tenant::TenantId;

/// A `Result` whose error is [`CatalogError`].
pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// Everything that can go wrong in the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// No model visible to the caller has this name (and version, when one was given).
    #[error("model not found: {model}{}", version_suffix(*.version))]
    ModelNotFound {
        /// The model name that was looked up.
        model: String,
        /// The version that was asked for, if any.
        version: Option<i32>,
    },

    /// No training job, eval run or result table visible to the caller has this id.
    #[error("{kind} not found: {id}")]
    NotFound {
        /// What was looked up (`training job`, `eval run`, `result table`).
        kind: &'static str,
        /// The id or name that was looked up.
        id: String,
    },

    /// A row with this id already exists in the caller's own scope.
    #[error("{kind} already exists: {id}")]
    AlreadyExists {
        /// What was created (`training job`, `eval run`, `result table`).
        kind: &'static str,
        /// The id or name that is taken.
        id: String,
    },

    /// The model cannot be deleted while other rows reference it.
    #[error(
        "model {model} version {version} is still referenced by {}; delete those rows first",
        edges.join(", ")
    )]
    ModelReferenced {
        /// The model name.
        model: String,
        /// The version that was to be deleted.
        version: i32,
        /// The referencing edges, as `table.column` (never the referencing rows themselves).
        edges: Vec<&'static str>,
    },

    /// A write was about to touch a row whose owner is not the session's scope.
    ///
    /// This is the defence-in-depth check of SPEC §2; reaching it means a bug in the
    /// catalog, not a user mistake. The message names only the session's own scope.
    #[error("tenant mismatch: a write in scope {} targeted a row it does not own", scope_name(*.scope))]
    TenantMismatch {
        /// The scope of the transaction that attempted the write.
        scope: Option<TenantId>,
    },

    /// The handle's access level does not allow the work (SPEC §14); nothing was read or
    /// written for it.
    #[error(
        "permission denied: {action} needs {needed} access; this credential has {granted} access"
    )]
    PermissionDenied {
        /// What was refused, in the caller's words where the catalog has them (the SQL
        /// function or statement, or the kind of work).
        action: std::borrow::Cow<'static, str>,
        /// The level the work needs.
        needed: Access,
        /// The level the handle has.
        granted: Access,
    },

    /// An input was rejected before anything was written.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The offending field, as the caller named it (`model_id`, `version`, `task`, …).
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },

    /// The database could not be reached (connection refused, closed pool, I/O error).
    #[error("catalog database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),

    /// A transaction kept failing with a retryable conflict until the retry budget ran out.
    #[error("transaction gave up after {attempts} attempts; last error: {last}")]
    RetryExhausted {
        /// How many times the transaction was tried.
        attempts: u32,
        /// The last retryable error, as text.
        last: String,
    },

    /// A schema migration could not be applied, or the database's ledger is not one this
    /// version of the catalog understands.
    #[error("migration {version} ({name}) failed: {detail}")]
    Migration {
        /// The migration's version number.
        version: i64,
        /// The migration's name.
        name: &'static str,
        /// What went wrong.
        detail: String,
    },

    /// A value read from the database did not have the expected type or form.
    #[error("cannot convert column {column}: {detail}")]
    TypeConversion {
        /// The column being read.
        column: String,
        /// What was wrong with it.
        detail: String,
    },

    /// One row of a multi-row SQL statement (`INSERT INTO …`) failed; nothing of the
    /// statement was written.
    #[error("row {row} ({what}): {source}")]
    AtRow {
        /// The 1-based row of the statement's input.
        row: usize,
        /// What the row is about, e.g. `model "bge"`.
        what: String,
        /// What went wrong with it.
        #[source]
        source: Box<CatalogError>,
    },

    /// A statement would build a value larger than its session allows (SPEC §14, see
    /// `sql::limits`); nothing of it was built.
    #[error("resources exhausted: {0}")]
    LimitExceeded(String),

    /// A statement ran past its session's time limit and was stopped.
    #[error(
        "the statement ran longer than the limit of {} s and was stopped",
        timeout.as_secs_f64()
    )]
    DeadlineExceeded {
        /// The limit.
        timeout: std::time::Duration,
    },

    /// The operation is not something the catalog does (e.g. a SQL form it refuses).
    #[error("{0}")]
    Unsupported(String),

    /// Any other database error, with the driver's message.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

fn version_suffix(version: Option<i32>) -> String {
    version.map(|v| format!(" version {v}")).unwrap_or_default()
}

fn scope_name(scope: Option<TenantId>) -> String {
    scope.map_or_else(|| "global".to_owned(), |t| t.to_string())
}

impl From<sqlx::Error> for CatalogError {
    /// Connection-level failures become [`CatalogError::Unavailable`]; the rest keep the
    /// driver error (its SQLSTATE drives the retry policy of the store).
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => CatalogError::Unavailable(error),
            other => CatalogError::Database(other),
        }
    }
}

impl CatalogError {
    /// Shorthand for [`CatalogError::InvalidInput`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        CatalogError::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    /// The SQLSTATE (Postgres) or extended result code (SQLite) of a database error.
    pub fn database_code(&self) -> Option<String> {
        match self {
            CatalogError::Database(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
            CatalogError::AtRow { source, .. } => source.database_code(),
            _ => None,
        }
    }

    /// Wraps the error for DataFusion so that its message reaches the user unchanged.
    pub fn into_datafusion(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }
}

impl From<CatalogError> for DataFusionError {
    fn from(error: CatalogError) -> Self {
        error.into_datafusion()
    }
}
