//! The SQL of the catalog's registry operations, spelled out for the baselines that run it
//! without the catalog (in every write `$1` is the caller's owner). Kept in step with
//! `src/catalog/{models,events,tags}.rs`; `tests` in the bench itself would not catch a
//! drift, so each statement names the constant it copies.

/// The columns every model statement returns (`model_columns!`).
macro_rules! model_columns {
    () => {
        "model_key, model_id, version, model_type, task, backend, status, base_model_id, \
         artifact_path, config_json, owner, created_at, updated_at"
    };
}

/// `models::GET_LATEST`: `$1` the name, `$2` the caller's owner (`''` unscoped).
pub const GET_LATEST: &str = concat!(
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

/// `models::NEXT_VERSION`.
pub const NEXT_VERSION: &str = "SELECT COALESCE((SELECT version FROM models \
       WHERE model_id = $1 AND owner = $2 ORDER BY version DESC LIMIT 1), 0) + 1 AS next";

/// `models::INSERT_NEW_VERSION`: `$2` key, `$3` name, `$4` version, `$5` type, `$6` task,
/// `$7` backend, `$8`–`$10` base model, path, config, `$11` time.
pub const INSERT_NEW_VERSION: &str = concat!(
    "INSERT INTO models (owner, model_key, model_id, version, model_type, task, backend, \
       status, base_model_id, artifact_path, config_json, created_at, updated_at) VALUES \
     ($1, $2, $3, $4, $5, $6, $7, 'registered', $8, $9, $10, $11, $11) \
     ON CONFLICT DO NOTHING RETURNING ",
    model_columns!()
);

/// `events::APPEND_ONE`: `$2` time, `$3` kind, `$4` entity, `$5` row key, `$6` name,
/// `$7` version, `$8` state.
pub const APPEND_EVENT: &str = "INSERT INTO events (owner, event_time, kind, entity, row_key, \
       model_id, version, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// `models::FIND_OWNED_VERSION`.
pub const FIND_OWNED_VERSION: &str = "SELECT model_key, version FROM models \
     WHERE model_id = $1 AND owner = $2 AND version = $3";

/// `models::REFERENCES_OWNED`: `$1` name, `$2` owner, `$3` key.
pub const REFERENCES_OWNED: &str = "SELECT \
       EXISTS (SELECT 1 FROM result_tables WHERE model_id = $1 AND owner = $2) AS result_tables, \
       EXISTS (SELECT 1 FROM training_jobs WHERE output_model_id = $1 AND owner = $2) AS outputs, \
       EXISTS (SELECT 1 FROM training_jobs WHERE base_model_key = $3) AS bases, \
       EXISTS (SELECT 1 FROM eval_runs WHERE model_key = $3) AS evals, \
       EXISTS (SELECT 1 FROM model_aliases WHERE model_key = $3) AS aliases";

/// `tags::REMOVE_OF_MODEL`.
pub const REMOVE_TAGS_OF_MODEL: &str = "DELETE FROM model_tags WHERE owner = $1 AND model_key = $2 \
     RETURNING owner, model_id, version, key, value, created_at, updated_at";

/// `models::DELETE_BY_KEY`.
pub const DELETE_BY_KEY: &str = concat!(
    "DELETE FROM models WHERE owner = $1 AND model_key = $2 RETURNING ",
    model_columns!()
);

/// The fewest statements a hand-written register with an allocated version needs on
/// Postgres: allocation and insert in one (`$2` name, `$3` time), then the event.
pub const PG_ALLOCATE_AND_INSERT: &str = concat!(
    "INSERT INTO models (owner, model_key, model_id, version, model_type, task, backend, \
       status, created_at, updated_at) \
     SELECT $1, $1 || '::' || $2 || '::' || next, $2, next, 'embedding', 'ner', 'candle', \
       'registered', $3, $3 \
     FROM (SELECT COALESCE((SELECT version FROM models \
       WHERE model_id = $2 AND owner = $1 ORDER BY version DESC LIMIT 1), 0) + 1 AS next) \
       AS allocated \
     ON CONFLICT DO NOTHING RETURNING ",
    model_columns!()
);

/// The fewest statements a hand-written delete needs on Postgres: the reference check,
/// the tags and the row in one statement (`$2` name, `$3` version), then the event.
pub const PG_CHECK_AND_DELETE: &str = concat!(
    "WITH target AS (SELECT model_key FROM models m \
       WHERE model_id = $2 AND owner = $1 AND version = $3 \
       AND NOT EXISTS (SELECT 1 FROM result_tables WHERE model_id = $2 AND owner = $1) \
       AND NOT EXISTS (SELECT 1 FROM training_jobs WHERE output_model_id = $2 AND owner = $1) \
       AND NOT EXISTS (SELECT 1 FROM training_jobs WHERE base_model_key = m.model_key) \
       AND NOT EXISTS (SELECT 1 FROM eval_runs WHERE model_key = m.model_key) \
       AND NOT EXISTS (SELECT 1 FROM model_aliases WHERE model_key = m.model_key)), \
     tags AS (DELETE FROM model_tags WHERE model_key IN (SELECT model_key FROM target)) \
     DELETE FROM models WHERE owner = $1 AND model_key IN (SELECT model_key FROM target) \
     RETURNING ",
    model_columns!()
);

/// The statement of the listing scan of `SELECT * FROM jammi.public.models` (`$1` the
/// caller's owner).
pub const LISTING: &str = "SELECT model_key, owner, model_id, version, model_type, task, \
     backend, status, base_model_id, artifact_path, config_json, created_at, updated_at \
     FROM models WHERE owner IN ($1, '')";
