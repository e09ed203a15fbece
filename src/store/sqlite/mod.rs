//! SQLite, driven through its C API on the calling thread.
//!
//! sqlx runs each SQLite connection on a worker thread of its own and hands every
//! statement to it, and every row back, through channels: a thread wake-up each way per
//! statement (and per row), tens of microseconds on this project's machines, several
//! times what SQLite spends on a catalog operation (docs/performance.md). The store owns
//! its SQLite connections instead: each is used by one caller at a time, on that caller's
//! thread, and keeps its statements compiled for the next use. sqlx still parses the
//! database URL; Postgres goes through sqlx entirely.
//!
//! - `connection`: one connection, its settings and statement cache.
//! - `pool`: the bounded pool, and the process's writer turn.
//! - `transaction`: `BEGIN` … `COMMIT` on a pooled connection.
//! - `scan`: the DataFusion scan's read, row by row in place.
//! - `row`, `error`: rows and errors as the rest of the store reads them.

mod connection;
mod error;
mod pool;
mod row;
mod scan;
mod transaction;

pub(crate) use pool::SqlitePool;
pub use row::SqliteRow;
pub(crate) use scan::SqliteReader;
pub(crate) use transaction::SqliteTx;
