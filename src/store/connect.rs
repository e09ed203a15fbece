//! Turning a URL into a pool configured the way SPEC §5 asks.

use std::ffi::CString;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;

use super::Pool;
use super::sqlite::SqlitePool;
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
    // What SQLite opens (a `file:` URI keeps the URL's options, `?mode=ro` and the like,
    // which SQLite reads itself), and the file it is.
    let (open, file) = if in_memory {
        // Every connection to `:memory:` is its own database, so an in-memory catalog
        // lives on exactly one connection.
        (":memory:".to_owned(), PathBuf::from(":memory:"))
    } else if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        // sqlx checks the URL and decodes its path; the store opens the file itself (see
        // `store::sqlite`).
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| CatalogError::invalid("database url", e.to_string()))?;
        (format!("file:{rest}"), options.get_filename().to_owned())
    } else if url.contains("://") {
        return Err(CatalogError::invalid(
            "database url",
            format!("{url:?}: expected sqlite://PATH, a file path, or postgres://…"),
        ));
    } else {
        (url.to_owned(), PathBuf::from(url))
    };
    let open = CString::new(open)
        .map_err(|_| CatalogError::invalid("database url", "the path holds NUL"))?;
    let max_connections = if in_memory { 1 } else { 8 };
    // Opening runs file I/O and may wait on the busy timeout: off the async threads.
    let pool = tokio::task::spawn_blocking(move || {
        SqlitePool::open(
            open,
            &file,
            max_connections,
            ACQUIRE_TIMEOUT,
            SQLITE_BUSY_TIMEOUT,
        )
    })
    .await
    .map_err(|e| CatalogError::Unavailable(sqlx::Error::Protocol(e.to_string())))??;
    Ok(Pool::Sqlite(pool))
}
