//! The baselines of the registry operations (SPEC §10): the same transaction without the
//! catalog. On SQLite, the catalog's own statements through the C API; on Postgres, raw
//! sqlx running the fewest statements a hand-written version would.

use super::c_api::{CApi, P, row_values};
use super::statements::*;

/// A baseline connection of either backend.
pub enum Baseline {
    Sqlite(CApi),
    Postgres(sqlx::PgPool),
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// The event state of a model row, as the catalog records it: the row as a JSON object.
fn state_of(columns: &[&str], values: &[Option<String>]) -> String {
    let object: serde_json::Map<String, serde_json::Value> = columns
        .iter()
        .zip(values)
        .map(|(c, v)| (c.to_string(), serde_json::json!(v)))
        .collect();
    serde_json::Value::Object(object).to_string()
}

const MODEL_COLUMNS: [&str; 13] = [
    "model_key",
    "model_id",
    "version",
    "model_type",
    "task",
    "backend",
    "status",
    "base_model_id",
    "artifact_path",
    "config_json",
    "owner",
    "created_at",
    "updated_at",
];

impl Baseline {
    pub async fn open(url: &str) -> Baseline {
        if url.starts_with("postgres") {
            Baseline::Postgres(sqlx::PgPool::connect(url).await.unwrap())
        } else {
            Baseline::Sqlite(CApi::open(url))
        }
    }

    /// Registers the next version of `name` for `owner`; returns it.
    pub async fn register(&mut self, owner: &str, name: &str) -> i64 {
        let now = now_micros();
        match self {
            Baseline::Sqlite(c) => {
                c.run("BEGIN IMMEDIATE", &[], |_| {});
                let version = c.int(NEXT_VERSION, &[P::T(name), P::T(owner)], 0);
                let key = format!("{owner}::{name}::{version}");
                let mut row = Vec::new();
                c.run(
                    INSERT_NEW_VERSION,
                    &[
                        P::T(owner),
                        P::T(&key),
                        P::T(name),
                        P::I(version),
                        P::T("embedding"),
                        P::T("ner"),
                        P::T("candle"),
                        P::Null,
                        P::Null,
                        P::Null,
                        P::I(now),
                    ],
                    |stmt| row = row_values(stmt),
                );
                c_append(c, owner, now, "model_registered", name, version, &row);
                c.run("COMMIT", &[], |_| {});
                version
            }
            Baseline::Postgres(pool) => {
                use sqlx::Row;
                let mut tx = pool.begin().await.unwrap();
                let row = sqlx::query(PG_ALLOCATE_AND_INSERT)
                    .bind(owner)
                    .bind(name)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                let version: i64 = row.get("version");
                let values = pg_values(&row);
                pg_append(
                    &mut tx,
                    owner,
                    now,
                    "model_registered",
                    name,
                    version,
                    &values,
                )
                .await;
                tx.commit().await.unwrap();
                version
            }
        }
    }

    /// Deletes version `version` of `name`, which nothing references, with the
    /// reference check.
    pub async fn delete(&mut self, owner: &str, name: &str, version: i64) {
        let now = now_micros();
        match self {
            Baseline::Sqlite(c) => {
                c.run("BEGIN IMMEDIATE", &[], |_| {});
                let mut key = String::new();
                c.run(
                    FIND_OWNED_VERSION,
                    &[P::T(name), P::T(owner), P::I(version)],
                    |stmt| key = row_values(stmt)[0].clone().unwrap(),
                );
                let mut referenced = false;
                c.run(
                    REFERENCES_OWNED,
                    &[P::T(name), P::T(owner), P::T(&key)],
                    |stmt| referenced = row_values(stmt).iter().any(|v| v.as_deref() == Some("1")),
                );
                assert!(!referenced);
                c.run(REMOVE_TAGS_OF_MODEL, &[P::T(owner), P::T(&key)], |_| {});
                let mut row = Vec::new();
                c.run(DELETE_BY_KEY, &[P::T(owner), P::T(&key)], |stmt| {
                    row = row_values(stmt)
                });
                c_append(c, owner, now, "model_deleted", name, version, &row);
                c.run("COMMIT", &[], |_| {});
            }
            Baseline::Postgres(pool) => {
                let mut tx = pool
                    .begin_with("BEGIN ISOLATION LEVEL SERIALIZABLE")
                    .await
                    .unwrap();
                let row = sqlx::query(PG_CHECK_AND_DELETE)
                    .bind(owner)
                    .bind(name)
                    .bind(version)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                let values = pg_values(&row);
                pg_append(&mut tx, owner, now, "model_deleted", name, version, &values).await;
                tx.commit().await.unwrap();
            }
        }
    }

    /// The latest version of `name` visible to `owner`, as `get_model` reads it.
    pub async fn get_latest(&mut self, owner: &str, name: &str) -> usize {
        match self {
            Baseline::Sqlite(c) => {
                let mut rows = Vec::new();
                c.run(GET_LATEST, &[P::T(name), P::T(owner)], |stmt| {
                    rows.push(row_values(stmt))
                });
                rows.len()
            }
            Baseline::Postgres(pool) => sqlx::query(GET_LATEST)
                .bind(name)
                .bind(owner)
                .fetch_all(&*pool)
                .await
                .unwrap()
                .len(),
        }
    }
}

/// Appends the event of a model row through the C API, as `events::record` does.
fn c_append(
    c: &mut CApi,
    owner: &str,
    now: i64,
    kind: &str,
    name: &str,
    version: i64,
    row: &[Option<String>],
) {
    let row_key = format!("{name}::{version}");
    let state = state_of(&MODEL_COLUMNS, row);
    c.run(
        APPEND_EVENT,
        &[
            P::T(owner),
            P::I(now),
            P::T(kind),
            P::T("models"),
            P::T(&row_key),
            P::T(name),
            P::I(version),
            P::T(&state),
        ],
        |_| {},
    );
}

fn pg_values(row: &sqlx::postgres::PgRow) -> Vec<Option<String>> {
    use sqlx::Row;
    MODEL_COLUMNS
        .iter()
        .map(|c| {
            row.try_get::<Option<String>, _>(*c)
                .or_else(|_| {
                    row.try_get::<Option<i64>, _>(*c)
                        .map(|v| v.map(|v| v.to_string()))
                })
                .unwrap()
        })
        .collect()
}

async fn pg_append(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    owner: &str,
    now: i64,
    kind: &str,
    name: &str,
    version: i64,
    values: &[Option<String>],
) {
    sqlx::query(APPEND_EVENT)
        .bind(owner)
        .bind(now)
        .bind(kind)
        .bind("models")
        .bind(format!("{name}::{version}"))
        .bind(name)
        .bind(version)
        .bind(state_of(&MODEL_COLUMNS, values))
        .execute(&mut **tx)
        .await
        .unwrap();
}
