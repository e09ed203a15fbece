//! Turning a URL into a pool configured the way SPEC §5 asks.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::Pool;
use crate::error::{CatalogError, Result};

/// How long a SQLite writer waits for the file lock before giving up. Writers hold the lock
/// for one short transaction, so this only runs out when something is badly stuck.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a caller waits for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn connect(url: &str) -> Result<Pool> {
    let url = url.trim();
    if url.is_empty() {
        return Err(CatalogError::invalid("database url", "must not be empty"));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| CatalogError::invalid("database url", e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        return Ok(Pool::Postgres(pool));
    }
    sqlite(url).await
}

async fn sqlite(url: &str) -> Result<Pool> {
    let in_memory = url == "sqlite::memory:" || url == ":memory:";
    let options = if in_memory {
        SqliteConnectOptions::from_str("sqlite::memory:")
    } else if url.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(url)
    } else if url.contains("://") {
        return Err(CatalogError::invalid(
            "database url",
            format!("{url:?}: expected sqlite://PATH, a file path, or postgres://…"),
        ));
    } else {
        Ok(SqliteConnectOptions::new().filename(url))
    }
    .map_err(|e| CatalogError::invalid("database url", e.to_string()))?;

    let options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        // LIKE pushed down from DataFusion must be case-sensitive, as it is there and on
        // Postgres.
        .pragma("case_sensitive_like", "ON")
        // A 32 MiB page cache per connection (the default is 2 MiB), filled only as pages
        // are read: large INSERTs and scans otherwise re-read b-tree pages from the OS.
        .pragma("cache_size", "-32768")
        // Statement journals (multi-row upserts) in memory rather than temp files.
        .pragma("temp_store", "MEMORY");
    // Every connection to `:memory:` is its own database, so an in-memory catalog lives on
    // exactly one connection.
    let max_connections = if in_memory { 1 } else { 8 };
    let pool = SqlitePoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    Ok(Pool::Sqlite(pool))
}
