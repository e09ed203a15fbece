//! Row-count estimates for the DataFusion scans' statistics (SPEC §15): how many rows of a
//! table one owner sees, counted now and then and kept per store.
//!
//! DataFusion asks a plan for statistics while it optimizes, synchronously, to choose a
//! join's build side (the smaller input). So the count is taken when the table is
//! scanned (`TableProvider::scan`, async) and the scan reports it. A count is taken the
//! first time an owner's table is scanned, up to [`COUNTED_UP_TO`] rows, then served from
//! here; once older than [`FRESH_FOR`] it is still served while one background task
//! counts again. Estimates
//! are only ever reported as inexact, so no answer depends on them: DataFusion cannot
//! answer `COUNT(*)` from them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::TryStreamExt;

use super::Store;
use super::value::Value;

/// How long a count is served without taking another.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(30);

/// Counting stops here, so that a count costs at most this many index entries (about a
/// millisecond) however long the history: enough to tell a handful of keys from a
/// history. Two tables past it estimate the same, and a join keeps the order written.
pub(crate) const COUNTED_UP_TO: u64 = 10_000;

/// Counts by (storage table, owner).
#[derive(Debug, Default)]
pub(crate) struct RowEstimates {
    counts: Mutex<HashMap<(&'static str, String), Estimate>>,
}

#[derive(Clone, Copy, Debug)]
struct Estimate {
    rows: u64,
    taken: Instant,
    /// A background count is under way.
    refreshing: bool,
}

impl Store {
    /// About how many rows of `table` (a storage table) `owner` sees (its own and the
    /// global ones); `None` when they could not be counted (the scan then has no
    /// statistics; the query itself reports any database error).
    pub(crate) async fn visible_rows_estimate(
        &self,
        table: &'static str,
        owner: &str,
    ) -> Option<u64> {
        let key = (table, owner.to_owned());
        let cached = {
            let mut counts = self.estimates.counts.lock().ok()?;
            let cached = counts.get(&key).copied();
            if let Some(e) = cached
                && e.taken.elapsed() > FRESH_FOR
                && !e.refreshing
                && let Ok(runtime) = tokio::runtime::Handle::try_current()
            {
                counts.insert(
                    key.clone(),
                    Estimate {
                        refreshing: true,
                        ..e
                    },
                );
                let store = self.clone();
                let key = key.clone();
                runtime.spawn(async move { store.count_into_cache(key).await });
            }
            cached
        };
        match cached {
            Some(e) => Some(e.rows),
            // sqlx needs tokio: a host that plans on another executor (datafusion-python
            // through FFI) gets no estimate rather than a panic.
            None if tokio::runtime::Handle::try_current().is_err() => None,
            None => self.count_into_cache(key).await,
        }
    }

    async fn count_into_cache(&self, key: (&'static str, String)) -> Option<u64> {
        let counted = self.count_visible(key.0, &key.1).await;
        let mut counts = self.estimates.counts.lock().ok()?;
        match counted {
            Some(rows) => {
                let taken = Instant::now();
                counts.insert(
                    key,
                    Estimate {
                        rows,
                        taken,
                        refreshing: false,
                    },
                );
            }
            // A refresh that failed (no scan slot free, say) keeps the last count; a first
            // count that failed is tried again next time.
            None => {
                if let Some(e) = counts.get_mut(&key) {
                    e.refreshing = false;
                }
            }
        }
        counted
    }

    /// Counts only when a scan's turn at the pool is free now: planning never waits
    /// behind running scans for an estimate (a one-connection pool would wait for the
    /// scan it plans beside).
    async fn count_visible(&self, table: &'static str, owner: &str) -> Option<u64> {
        let _slot = self.scans.try_take()?;
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE owner IN ($1, '') LIMIT {COUNTED_UP_TO}) AS visible"
        );
        let args = [Value::from(owner)];
        let row = self.stream(sql, &args).try_next().await.ok()??;
        row.int_at(0).ok()?.and_then(|n| u64::try_from(n).ok())
    }
}
