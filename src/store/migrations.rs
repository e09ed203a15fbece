//! Versioned schema migrations with a ledger (SPEC §5).
//!
//! Each migration runs in its own write transaction that first re-reads the ledger, so two
//! processes opening a new database at once apply it exactly once: on SQLite the
//! `BEGIN IMMEDIATE` lock serializes them, on Postgres a transaction-scoped advisory lock
//! does. The DDL is the same text on both backends (`TEXT`, `BIGINT`, standard
//! constraints), so the logical schema is identical.
//!
//! Storage notes: the owner column is `owner`, with `''` for global rows (the SQL views
//! show it as a NULL `tenant_id`); timestamps are `BIGINT` microseconds since the Unix
//! epoch, UTC.

use super::{Backend, Store, TxOptions, args};
use crate::error::{CatalogError, Result};

struct Migration {
    version: i64,
    name: &'static str,
    statements: &'static [&'static str],
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "catalog tables",
        statements: &[
            "CREATE TABLE models (
            model_key     TEXT PRIMARY KEY,
            owner         TEXT NOT NULL,
            model_id      TEXT NOT NULL,
            version       BIGINT NOT NULL CHECK (version >= 1),
            model_type    TEXT NOT NULL,
            task          TEXT NOT NULL,
            backend       TEXT NOT NULL,
            status        TEXT NOT NULL,
            base_model_id TEXT,
            artifact_path TEXT,
            config_json   TEXT,
            created_at    BIGINT NOT NULL,
            updated_at    BIGINT NOT NULL,
            UNIQUE (model_id, owner, version)
        )",
            // Visible-row listings: owner IN ($tenant, '') ordered by creation.
            "CREATE INDEX models_by_owner ON models (owner, created_at)",
            "CREATE TABLE training_jobs (
            owner              TEXT NOT NULL,
            job_id             TEXT NOT NULL,
            base_model_key     TEXT NOT NULL REFERENCES models (model_key),
            base_model_id      TEXT NOT NULL,
            base_model_version BIGINT NOT NULL,
            output_model_id    TEXT NOT NULL,
            output_version     BIGINT,
            training_source    TEXT NOT NULL,
            loss_type          TEXT NOT NULL,
            hyperparams        TEXT NOT NULL,
            status             TEXT NOT NULL,
            metrics            TEXT,
            error              TEXT,
            claimed_by         TEXT,
            lease_expires_at   BIGINT,
            attempts           BIGINT NOT NULL,
            created_at         BIGINT NOT NULL,
            updated_at         BIGINT NOT NULL,
            PRIMARY KEY (owner, job_id)
        )",
            // Claims: the oldest queued job of an owner; reclaims: its running jobs.
            "CREATE INDEX training_jobs_by_status ON training_jobs (owner, status, created_at)",
            "CREATE INDEX training_jobs_by_owner ON training_jobs (owner, created_at)",
            // The reference scans of delete_model.
            "CREATE INDEX training_jobs_by_base_model ON training_jobs (base_model_key)",
            "CREATE INDEX training_jobs_by_output_model ON training_jobs (output_model_id, owner)",
            "CREATE TABLE eval_runs (
            owner         TEXT NOT NULL,
            run_id        TEXT NOT NULL,
            model_key     TEXT REFERENCES models (model_key),
            model_id      TEXT,
            model_version BIGINT,
            eval_type     TEXT NOT NULL,
            metrics       TEXT NOT NULL,
            created_at    BIGINT NOT NULL,
            PRIMARY KEY (owner, run_id)
        )",
            "CREATE INDEX eval_runs_by_owner ON eval_runs (owner, created_at)",
            "CREATE INDEX eval_runs_by_model ON eval_runs (model_key)",
            "CREATE TABLE result_tables (
            owner        TEXT NOT NULL,
            table_name   TEXT NOT NULL,
            source_id    TEXT NOT NULL,
            model_id     TEXT NOT NULL,
            task         TEXT NOT NULL,
            parquet_path TEXT NOT NULL,
            row_count    BIGINT,
            status       TEXT NOT NULL,
            created_at   BIGINT NOT NULL,
            PRIMARY KEY (owner, table_name)
        )",
            "CREATE INDEX result_tables_by_owner ON result_tables (owner, created_at)",
            "CREATE INDEX result_tables_by_model ON result_tables (model_id, owner)",
        ],
    },
    Migration {
        version: 2,
        name: "api tokens",
        statements: &[
            // The server's tokens (tokens.rs): the secret's SHA-256 only. Not a catalog table:
            // no SQL view shows it. `owner` is the token's scope ('' for unscoped).
            "CREATE TABLE api_tokens (
            label       TEXT PRIMARY KEY,
            token_id    TEXT NOT NULL UNIQUE,
            secret_hash TEXT NOT NULL,
            owner       TEXT NOT NULL,
            created_at  BIGINT NOT NULL,
            revoked_at  BIGINT
        )",
        ],
    },
];

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS jammi_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// Serializes concurrent migrators on Postgres (released at commit).
const PG_LOCK: &str = "SELECT pg_advisory_xact_lock(7243081460511)";

/// The newest schema version this build knows.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

pub(super) async fn migrate(store: &Store) -> Result<()> {
    store
        .transaction(None, TxOptions::write(), |tx| {
            Box::pin(async move {
                if tx.backend() == Backend::Postgres {
                    tx.fetch_all(PG_LOCK, &[]).await?;
                }
                tx.execute_unscoped(CREATE_LEDGER, &[]).await?;
                let newest = tx
                    .fetch_one(
                        "SELECT COALESCE(MAX(version), 0) AS v FROM jammi_migrations",
                        &[],
                    )
                    .await?
                    .int("v")?;
                if newest > latest_version() {
                    return Err(CatalogError::Migration {
                        version: newest,
                        name: "unknown",
                        detail: format!(
                            "the database is at schema version {newest}, newer than this build \
                             of jammi-catalog knows ({}); upgrade jammi-catalog",
                            latest_version()
                        ),
                    });
                }
                Ok(())
            })
        })
        .await?;

    for migration in MIGRATIONS {
        apply(store, migration).await.map_err(|e| match e {
            e @ CatalogError::Migration { .. } => e,
            other => CatalogError::Migration {
                version: migration.version,
                name: migration.name,
                detail: other.to_string(),
            },
        })?;
    }
    Ok(())
}

async fn apply(store: &Store, migration: &'static Migration) -> Result<()> {
    store
        .transaction(None, TxOptions::write(), |tx| {
            Box::pin(async move {
                if tx.backend() == Backend::Postgres {
                    tx.fetch_all(PG_LOCK, &[]).await?;
                }
                let recorded = tx
                    .fetch_optional(
                        "SELECT name FROM jammi_migrations WHERE version = $1",
                        &args![migration.version],
                    )
                    .await?;
                if let Some(row) = recorded {
                    let name = row.text("name")?;
                    if name != migration.name {
                        return Err(CatalogError::Migration {
                            version: migration.version,
                            name: migration.name,
                            detail: format!("the ledger records this version as {name:?}"),
                        });
                    }
                    return Ok(());
                }
                for statement in migration.statements {
                    tx.execute_unscoped(statement, &[]).await?;
                }
                tx.execute_unscoped(
                    "INSERT INTO jammi_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    &args![
                        migration.version,
                        migration.name,
                        crate::clock::now_micros()
                    ],
                )
                .await?;
                Ok(())
            })
        })
        .await
}
