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

use super::{Backend, Store, Tx, TxOptions, args};
use crate::access::Grant;
use crate::error::{CatalogError, Result};

struct Migration {
    version: i64,
    name: &'static str,
    statements: &'static [Ddl],
    /// Rebuilds a table other tables refer to: runs without foreign-key enforcement on
    /// SQLite and checks every reference before it commits (`Store::rebuild_transaction`).
    rebuilds_tables: bool,
}

/// One DDL statement: the same text on both backends, or one text for each where the
/// dialects differ (an auto-incrementing key).
enum Ddl {
    Both(&'static str),
    /// A step only SQLite needs.
    Sqlite(&'static str),
    /// A step only Postgres has.
    Postgres(&'static str),
    Dialect {
        sqlite: &'static str,
        postgres: &'static str,
    },
}

use Ddl::Both;

/// The columns of the models table, in its order.
macro_rules! model_table_columns {
    () => {
        "model_key, owner, model_id, version, model_type, task, backend, status, \
         base_model_id, artifact_path, config_json, created_at, updated_at"
    };
}

/// The event log's table; only its id column differs between the dialects.
macro_rules! events_table {
    ($id:literal) => {
        concat!(
            "CREATE TABLE events (
            event_id   ",
            $id,
            ",
            owner      TEXT NOT NULL,
            event_time BIGINT NOT NULL,
            kind       TEXT NOT NULL,
            entity     TEXT NOT NULL,
            row_key    TEXT NOT NULL,
            model_id   TEXT,
            version    BIGINT,
            state      TEXT
        )"
        )
    };
}

/// The statement that gives each existing row of a table its first event (migration 3):
/// its state as a JSON object of its SQL columns, built by the backend's JSON function.
macro_rules! backfill {
    ($object:ident, models) => {
        concat!(
            backfill!(@head),
            "owner, updated_at, 'model_registered', 'models', model_id || '::' || version, \
               model_id, version, ",
            stringify!($object),
            "('model_id', model_id, 'version', version, 'model_type', model_type, \
               'task', task, 'backend', backend, 'status', status, \
               'base_model_id', base_model_id, 'artifact_path', artifact_path, \
               'config_json', config_json, 'tenant_id', NULLIF(owner, ''), \
               'created_at', created_at, 'updated_at', updated_at)",
            backfill!(@text $object),
            " FROM models ORDER BY updated_at, model_key"
        )
    };
    ($object:ident, training_jobs) => {
        concat!(
            backfill!(@head),
            "owner, updated_at, 'training_job_created', 'training_jobs', job_id, \
               output_model_id, output_version, ",
            stringify!($object),
            "('job_id', job_id, 'base_model_id', base_model_id, \
               'base_model_version', base_model_version, 'output_model_id', output_model_id, \
               'output_version', output_version, 'training_source', training_source, \
               'loss_type', loss_type, 'hyperparams', hyperparams, 'status', status, \
               'metrics', metrics, 'error', error, 'claimed_by', claimed_by, \
               'lease_expires_at', lease_expires_at, 'attempts', attempts, \
               'tenant_id', NULLIF(owner, ''), 'created_at', created_at, \
               'updated_at', updated_at)",
            backfill!(@text $object),
            " FROM training_jobs ORDER BY updated_at, owner, job_id"
        )
    };
    ($object:ident, eval_runs) => {
        concat!(
            backfill!(@head),
            "owner, created_at, 'eval_run_created', 'eval_runs', run_id, model_id, \
               model_version, ",
            stringify!($object),
            "('run_id', run_id, 'model_id', model_id, 'model_version', model_version, \
               'eval_type', eval_type, 'metrics', metrics, 'tenant_id', NULLIF(owner, ''), \
               'created_at', created_at)",
            backfill!(@text $object),
            " FROM eval_runs ORDER BY created_at, owner, run_id"
        )
    };
    ($object:ident, result_tables) => {
        concat!(
            backfill!(@head),
            "owner, created_at, 'result_table_created', 'result_tables', table_name, \
               model_id, NULL, ",
            stringify!($object),
            "('table_name', table_name, 'source_id', source_id, 'model_id', model_id, \
               'task', task, 'parquet_path', parquet_path, 'row_count', row_count, \
               'status', status, 'tenant_id', NULLIF(owner, ''), 'created_at', created_at)",
            backfill!(@text $object),
            " FROM result_tables ORDER BY created_at, owner, table_name"
        )
    };
    (@head) => {
        "INSERT INTO events (owner, event_time, kind, entity, row_key, model_id, version, state) \
         SELECT "
    };
    (@text json_object) => {
        ""
    };
    (@text json_build_object) => {
        "::text"
    };
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "catalog tables",
        statements: &[
            Both(
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
            ),
            // Visible-row listings: owner IN ($tenant, '') ordered by creation.
            Both("CREATE INDEX models_by_owner ON models (owner, created_at)"),
            Both(
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
            ),
            // Claims: the oldest queued job of an owner; reclaims: its running jobs.
            Both(
                "CREATE INDEX training_jobs_by_status ON training_jobs (owner, status, created_at)",
            ),
            Both("CREATE INDEX training_jobs_by_owner ON training_jobs (owner, created_at)"),
            // The reference scans of delete_model.
            Both("CREATE INDEX training_jobs_by_base_model ON training_jobs (base_model_key)"),
            Both(
                "CREATE INDEX training_jobs_by_output_model ON training_jobs (output_model_id, owner)",
            ),
            Both(
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
            ),
            Both("CREATE INDEX eval_runs_by_owner ON eval_runs (owner, created_at)"),
            Both("CREATE INDEX eval_runs_by_model ON eval_runs (model_key)"),
            Both(
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
            ),
            Both("CREATE INDEX result_tables_by_owner ON result_tables (owner, created_at)"),
            Both("CREATE INDEX result_tables_by_model ON result_tables (model_id, owner)"),
        ],
        rebuilds_tables: false,
    },
    Migration {
        version: 2,
        name: "api tokens",
        statements: &[
            // The server's tokens (tokens.rs): the secret's SHA-256 only. Not a catalog table:
            // no SQL view shows it. `owner` is the token's scope ('' for unscoped).
            Both(
                "CREATE TABLE api_tokens (
            label       TEXT PRIMARY KEY,
            token_id    TEXT NOT NULL UNIQUE,
            secret_hash TEXT NOT NULL,
            owner       TEXT NOT NULL,
            created_at  BIGINT NOT NULL,
            revoked_at  BIGINT
        )",
            ),
        ],
        rebuilds_tables: false,
    },
    Migration {
        version: 3,
        name: "aliases, tags and the event log",
        statements: &[
            // A named pointer from a model name to one version (SPEC §13), owned by a scope.
            // `model_key` is the row it resolved to (the owner's own or a global one): the
            // fifth edge delete_model checks.
            Both(
                "CREATE TABLE model_aliases (
            owner      TEXT NOT NULL,
            model_id   TEXT NOT NULL,
            alias      TEXT NOT NULL,
            version    BIGINT NOT NULL,
            model_key  TEXT NOT NULL REFERENCES models (model_key),
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (owner, model_id, alias)
        )",
            ),
            Both("CREATE INDEX model_aliases_by_model ON model_aliases (model_key)"),
            Both("CREATE INDEX model_aliases_by_owner ON model_aliases (owner, created_at)"),
            // Key/value strings on a version, owned by the version's owner.
            Both(
                "CREATE TABLE model_tags (
            owner      TEXT NOT NULL,
            model_key  TEXT NOT NULL REFERENCES models (model_key),
            model_id   TEXT NOT NULL,
            version    BIGINT NOT NULL,
            key        TEXT NOT NULL,
            value      TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (model_key, key)
        )",
            ),
            Both("CREATE INDEX model_tags_by_owner ON model_tags (owner, created_at)"),
            // Append-only: one row per change, written in the change's transaction.
            // `row_key` names the changed row within its table and owner; `state` is the
            // row's full new state as JSON (NULL once it is removed).
            Ddl::Dialect {
                sqlite: events_table!("INTEGER PRIMARY KEY AUTOINCREMENT"),
                postgres: events_table!("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
            },
            // A scope's events of one table, in order: what time travel replays.
            Both("CREATE INDEX events_by_owner ON events (owner, entity, event_id)"),
            Both("CREATE INDEX events_by_model ON events (model_id, owner, event_id)"),
            // Rows written before the log began get one event each, with their current
            // state, so that the log replays to the live tables from the start.
            Ddl::Dialect {
                sqlite: backfill!(json_object, models),
                postgres: backfill!(json_build_object, models),
            },
            Ddl::Dialect {
                sqlite: backfill!(json_object, training_jobs),
                postgres: backfill!(json_build_object, training_jobs),
            },
            Ddl::Dialect {
                sqlite: backfill!(json_object, eval_runs),
                postgres: backfill!(json_build_object, eval_runs),
            },
            Ddl::Dialect {
                sqlite: backfill!(json_object, result_tables),
                postgres: backfill!(json_build_object, result_tables),
            },
        ],
        rebuilds_tables: false,
    },
    Migration {
        version: 4,
        name: "token access levels, expiry and last use",
        statements: &[
            // SPEC §14. Tokens made before access levels could do everything: they keep it.
            Both(
                "ALTER TABLE api_tokens ADD COLUMN access TEXT NOT NULL DEFAULT 'admin' \
                 CHECK (access IN ('read', 'write', 'admin'))",
            ),
            Both("ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT"),
            Both("ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT"),
        ],
        rebuilds_tables: false,
    },
    Migration {
        version: 5,
        name: "indexes for joins of catalog tables",
        statements: &[
            // SPEC §15: the keys a join pushes into a scan (`sql::dynamic`) arrive as
            // `owner IN (…) AND <key> IN (<list>)`; these let the database seek each key.
            // Eval runs by model name and version (champions × their runs).
            Both(
                "CREATE INDEX eval_runs_by_model_name ON eval_runs (owner, model_id, model_version)",
            ),
            // Aliases by name (`alias = 'champion'`); by model name the primary key serves.
            Both("CREATE INDEX model_aliases_by_alias ON model_aliases (owner, alias)"),
            // Tags by model name and version.
            Both("CREATE INDEX model_tags_by_model_name ON model_tags (owner, model_id, version)"),
            // Jobs by output model and models by name have theirs since migration 1
            // (`training_jobs_by_output_model`, the models' unique key).
        ],
        rebuilds_tables: false,
    },
    Migration {
        version: 6,
        name: "events by model, owner first",
        statements: &[
            // Every read of the log names its owners, so the owner can lead. Led by the
            // model name, a bulk register's events landed beside every other tenant's of the
            // same names: each one dirtied another page, and a bulk INSERT slowed as the
            // catalog grew (docs/performance.md). Owner first, a tenant's events are appended
            // where its own are.
            Both("DROP INDEX events_by_model"),
            Both("CREATE INDEX events_by_model_name ON events (owner, model_id, event_id)"),
        ],
        rebuilds_tables: false,
    },
    Migration {
        version: 7,
        name: "models unique by owner first",
        statements: &[
            // The same constraint, its index led by the owner, for the reason of migration
            // 6: led by the model name, a tenant's bulk register dirtied a page of the index
            // per row among every other tenant's models of the same names. Every lookup
            // names its owners, so none loses its index. SQLite changes a table's
            // constraints by rebuilding it (create, copy, drop, rename).
            Ddl::Dialect {
                sqlite: "CREATE TABLE models_rebuilt (
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
            UNIQUE (owner, model_id, version)
        )",
                postgres: "ALTER TABLE models DROP CONSTRAINT models_model_id_owner_version_key",
            },
            Ddl::Dialect {
                sqlite: concat!(
                    "INSERT INTO models_rebuilt (",
                    model_table_columns!(),
                    ") SELECT ",
                    model_table_columns!(),
                    " FROM models"
                ),
                postgres: "ALTER TABLE models ADD CONSTRAINT models_owner_model_id_version_key \
                     UNIQUE (owner, model_id, version)",
            },
            Ddl::Sqlite("DROP TABLE models"),
            Ddl::Sqlite("ALTER TABLE models_rebuilt RENAME TO models"),
            Ddl::Sqlite("CREATE INDEX models_by_owner ON models (owner, created_at)"),
        ],
        rebuilds_tables: true,
    },
    Migration {
        version: 8,
        name: "webhooks and their deliveries",
        statements: &[
            // SPEC §16. A webhook is owned by a scope and sees that scope's events.
            // `last_event_id` is its durable cursor: every event up to it was acknowledged
            // (or did not match). `failures` counts the failed attempts at the event after
            // it; only the server holding the lease (`claimed_by`) delivers. The secret is
            // kept to sign with; no SQL table shows it.
            Both(
                "CREATE TABLE webhooks (
            owner            TEXT NOT NULL,
            webhook_id       TEXT NOT NULL,
            url              TEXT NOT NULL,
            event_kinds      TEXT,
            model_pattern    TEXT,
            secret           TEXT NOT NULL,
            state            TEXT NOT NULL CHECK (state IN ('active', 'paused')),
            paused_reason    TEXT,
            last_event_id    BIGINT NOT NULL,
            failures         BIGINT NOT NULL,
            claimed_by       TEXT,
            lease_expires_at BIGINT,
            created_at       BIGINT NOT NULL,
            updated_at       BIGINT NOT NULL,
            PRIMARY KEY (owner, webhook_id)
        )",
            ),
            Both("CREATE INDEX webhooks_by_owner ON webhooks (owner, created_at)"),
            // One row per attempt, pruned by age by the server delivering.
            Both(
                "CREATE TABLE webhook_deliveries (
            owner        TEXT NOT NULL,
            delivery_id  TEXT NOT NULL,
            webhook_id   TEXT NOT NULL,
            event_id     BIGINT NOT NULL,
            attempt      BIGINT NOT NULL,
            status_code  BIGINT,
            error        TEXT,
            duration_us  BIGINT NOT NULL,
            attempted_at BIGINT NOT NULL,
            PRIMARY KEY (owner, delivery_id)
        )",
            ),
            Both(
                "CREATE INDEX webhook_deliveries_by_webhook \
                 ON webhook_deliveries (owner, webhook_id, attempted_at)",
            ),
            Both(
                "CREATE INDEX webhook_deliveries_by_owner ON webhook_deliveries (owner, attempted_at)",
            ),
            // Postgres wakes a waiting delivery loop when events commit (LISTEN jammi_events):
            // one notification per appending statement, sent at commit, none on rollback.
            Ddl::Postgres(
                "CREATE FUNCTION jammi_notify_events() RETURNS trigger LANGUAGE plpgsql AS \
                 'BEGIN PERFORM pg_notify(''jammi_events'', ''''); RETURN NULL; END'",
            ),
            Ddl::Postgres(
                "CREATE TRIGGER events_notify AFTER INSERT ON events \
                 FOR EACH STATEMENT EXECUTE FUNCTION jammi_notify_events()",
            ),
        ],
        rebuilds_tables: false,
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
        .transaction(Grant::full(None), TxOptions::write(), |tx| {
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
    if migration.rebuilds_tables {
        store
            .rebuild_transaction(|tx| Box::pin(apply_in(tx, migration)))
            .await
    } else {
        store
            .transaction(Grant::full(None), TxOptions::write(), |tx| {
                Box::pin(apply_in(tx, migration))
            })
            .await
    }
}

/// Applies `migration` in `tx` unless the ledger records it.
async fn apply_in(tx: &mut Tx, migration: &'static Migration) -> Result<()> {
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
    let sqlite = tx.backend() == Backend::Sqlite;
    for statement in migration.statements {
        let text = match statement {
            Ddl::Both(text) => text,
            Ddl::Dialect { sqlite, postgres } => tx.dialect(sqlite, postgres),
            Ddl::Sqlite(text) if sqlite => text,
            Ddl::Sqlite(_) => continue,
            Ddl::Postgres(text) if !sqlite => text,
            Ddl::Postgres(_) => continue,
        };
        tx.execute_unscoped(text, &[]).await?;
    }
    if migration.rebuilds_tables && sqlite {
        // Foreign keys were not enforced: every reference must still find its row.
        let broken = tx.fetch_all("PRAGMA foreign_key_check", &[]).await?;
        if let Some(row) = broken.first() {
            return Err(CatalogError::Migration {
                version: migration.version,
                name: migration.name,
                detail: format!(
                    "the database holds {} rows whose reference finds no row (the first in \
                     table {}, see PRAGMA foreign_key_check); they were written with foreign \
                     keys off, before this migration: repair them, then open it again",
                    broken.len(),
                    row.text("table")?
                ),
            });
        }
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
}
