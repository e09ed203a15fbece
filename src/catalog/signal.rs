//! Waking a follower of the event log when events commit (SPEC §16).
//!
//! On Postgres the catalog's migration 8 has every statement that appends events notify
//! the channel `jammi_events` (sent at commit, never for a rollback); an [`EventSignal`]
//! listens on one connection of the pool and wakes its waiters. SQLite has no way to hear
//! another process commit, so there a waiter wakes only when its wait is over: it polls.
//! Either way a follower must also poll: a notification can be lost while the listening
//! connection is re-established, and on Postgres an id the feed waits on settles without
//! any commit (its transaction rolled back).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::watch;

use super::Catalog;
use crate::error::Result;
use crate::store::Pool;

/// The channel the events trigger notifies (migration 8).
const CHANNEL: &str = "jammi_events";

/// How long a wait lasts on SQLite: how often a follower looks for new events there.
pub const SQLITE_POLL: Duration = Duration::from_millis(100);
/// How long a wait lasts at most on Postgres, without a notification: for an id the feed
/// waits on that settles without a commit (its transaction rolled back).
pub const POSTGRES_POLL: Duration = Duration::from_millis(500);

/// How long the listener waits before listening again after its connection failed.
const RELISTEN: Duration = Duration::from_secs(1);

/// A wake-up for followers of the log: [`EventSignal::wait`] returns when events may have
/// committed since the caller's last wait, or when the wait is over. Clones share the
/// listener, each keeps its own place; dropping the last stops listening.
#[derive(Clone, Debug)]
pub struct EventSignal {
    commits: watch::Receiver<u64>,
    listener: Option<Arc<Listening>>,
}

/// The task that listens, stopped when the last signal is dropped.
#[derive(Debug)]
struct Listening(tokio::task::JoinHandle<()>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl EventSignal {
    /// Waits until events may have committed since this signal's last wait returned
    /// (Postgres; at most [`POSTGRES_POLL`]), or for [`SQLITE_POLL`] (SQLite).
    pub async fn wait(&mut self) {
        if self.listener.is_none() {
            tokio::time::sleep(SQLITE_POLL).await;
            return;
        }
        // `changed` is cancel-safe: a commit heard while nobody waits is not lost.
        let waited = tokio::time::timeout(POSTGRES_POLL, self.commits.changed()).await;
        if let Ok(Err(_)) = waited {
            // The listener has stopped (its pool closed): poll.
            tokio::time::sleep(POSTGRES_POLL).await;
        }
    }
}

impl Catalog {
    /// A wake-up for following this catalog's event log (see [`EventSignal`]). On Postgres
    /// it holds one connection of the pool while it lives.
    ///
    /// # Errors
    /// Database errors (Postgres: taking the connection, `LISTEN`).
    pub async fn event_signal(&self) -> Result<EventSignal> {
        let (notify, commits) = watch::channel(0u64);
        let listener = match &self.store().pool {
            Pool::Sqlite(_) => None,
            Pool::Postgres(pool) => {
                let mut listener = PgListener::connect_with(pool).await?;
                listener.listen(CHANNEL).await?;
                Some(Arc::new(Listening(tokio::spawn(listen(listener, notify)))))
            }
        };
        Ok(EventSignal { commits, listener })
    }
}

/// Wakes the waiters at each notification, until the pool closes.
async fn listen(mut listener: PgListener, notify: watch::Sender<u64>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(_)) => {}
            // The connection was lost and is being re-established: notifications sent
            // meanwhile are lost, so wake the waiters to look.
            Ok(None) => {}
            Err(sqlx::Error::PoolClosed) => return,
            Err(_) => tokio::time::sleep(RELISTEN).await,
        }
        notify.send_modify(|n| *n = n.wrapping_add(1));
    }
}
