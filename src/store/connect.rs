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

/// Whether `url` names the in-memory SQLite database (one per connection, one per process).
pub(super) fn is_in_memory(url: &str) -> bool {
    let url = url.trim();
    url == "sqlite::memory:" || url == ":memory:"
}

/// `url` with its password (in the authority, or a `password=` query parameter) replaced
/// by `***`, for messages and logs. A URL that does not parse is shown by its scheme only,
/// in case the password is what does not parse.
pub(super) fn redacted(url: &str) -> String {
    let url = url.trim();
    if !url.contains("://") {
        return url.to_owned();
    }
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            if parsed.query_pairs().any(|(k, _)| k == "password") {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k == "password" { "***".into() } else { v };
                        (k.into_owned(), v.into_owned())
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Err(_) => format!("{}://…", url.split("://").next().unwrap_or_default()),
    }
}

async fn sqlite(url: &str) -> Result<Pool> {
    let in_memory = is_in_memory(url);
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
            format!(
                "{:?}: expected sqlite://PATH, a file path, or postgres://…",
                redacted(url)
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_hides_passwords_only() {
        assert_eq!(
            redacted("postgres://jammi:s3cret@db:5432/catalog?sslmode=require"),
            "postgres://jammi:***@db:5432/catalog?sslmode=require"
        );
        assert_eq!(
            redacted("postgres://db/catalog?user=jammi&password=s3cret"),
            "postgres://db/catalog?user=jammi&password=***"
        );
        assert_eq!(redacted("postgres://db/catalog"), "postgres://db/catalog");
        assert_eq!(redacted("sqlite:///tmp/c.db"), "sqlite:///tmp/c.db");
        assert_eq!(redacted("/tmp/c.db"), "/tmp/c.db");
        assert_eq!(redacted("postgres://u:p@[bad/x"), "postgres://…");
    }
}
