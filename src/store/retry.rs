//! Which errors are worth running a transaction again for, and how long to wait.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use super::TxOptions;
use crate::error::CatalogError;

/// How often, and how patiently, a conflicting transaction is re-run.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// The first backoff; it doubles each attempt, with jitter.
    pub base_delay: Duration,
    /// The longest backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 12,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(200),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: exponential, capped, with full jitter so that
    /// colliding transactions do not collide again in lockstep.
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let jitter = RandomState::new().hash_one(attempt) % 1_000;
        exp.mul_f64((500 + jitter / 2) as f64 / 1_000.0)
    }
}

/// Postgres: serialization failure, deadlock, and (when the operation allocates a
/// version) unique violation. SQLite: busy or locked, which the busy timeout should absorb
/// but a snapshot upgrade can still report.
pub(super) fn is_retryable(error: &CatalogError, options: TxOptions) -> bool {
    let Some(code) = error.database_code() else {
        return false;
    };
    match code.as_str() {
        "40001" | "40P01" => true,
        "23505" => options.retry_on_unique_violation,
        // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_BUSY_SNAPSHOT
        "5" | "6" | "517" => true,
        // SQLITE_CONSTRAINT_PRIMARYKEY / _UNIQUE
        "1555" | "2067" => options.retry_on_unique_violation,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy::default();
        for attempt in 1..40 {
            let d = policy.backoff(attempt);
            assert!(d <= policy.max_delay, "{d:?} at attempt {attempt}");
            assert!(d >= policy.base_delay / 2, "{d:?} at attempt {attempt}");
        }
    }
}
