//! Webhook delivery in `jammi serve` (SPEC §16): at least once, in event-id order per
//! webhook, from the durable cursor in the catalog.
//!
//! A keeper runs a round every quarter of a lease (at most every second): it renews the
//! leases a third gone, claims half of the active webhooks no live lease holds (at least
//! one; servers started together split them), and gives each held webhook a task
//! (`WebhookDispatch::claim`). The task reads its scope's events after its cursor, POSTs
//! each that matches its filters (`request`), and moves the cursor only after a 2xx. A
//! failure is recorded and retried after a backoff that doubles up to [`MAX_BACKOFF`];
//! the `max_failures`-th in a row pauses the webhook. Before each attempt the task checks
//! that its lease outlasts the attempt (the lease is at least three timeouts, renewed long
//! before it runs out), so a server never sends while another may hold the webhook. A
//! task whose write is refused (its lease is gone, the webhook paused or deleted) ends; so
//! does one hit by a database error, which the keeper starts again from the stored cursor
//! when it claims the webhook again.
//!
//! A follower wakes when events commit (Postgres: `LISTEN`) or polls (SQLite); see
//! `EventSignal`.

mod request;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use jammi_catalog::{
    AfterFailure, Catalog, Event, EventSignal, HeldWebhook, Scope, WebhookDispatch,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The longest wait between two attempts at one event.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// The shortest lease accepted.
pub const MIN_LEASE: Duration = Duration::from_secs(1);
/// The longest wait between two rounds of the keeper (claims, renewals).
const MAX_ROUND: Duration = Duration::from_secs(1);
/// What a lease must have left beyond the timeout for an attempt to start.
const LEASE_MARGIN: Duration = Duration::from_millis(200);
/// How often each held webhook's old attempts are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How often a cursor moved only past events that did not match is written, at most.
const SKIP_WRITE_EVERY: Duration = Duration::from_secs(1);

/// How `jammi serve` delivers.
#[derive(Clone, Debug)]
pub struct DeliveryOptions {
    /// A server's hold on a webhook; another takes it over this long after it died.
    pub lease: Duration,
    /// The longest an attempt may take, connecting included.
    pub timeout: Duration,
    /// The wait before the first retry of an event; doubled at each further failure.
    pub backoff: Duration,
    /// Failed attempts in a row at one event that pause the webhook.
    pub max_failures: i64,
    /// How long the record of an attempt is kept.
    pub retention: Duration,
}

/// The delivery of a running server; [`Delivery::stop`] ends it.
pub struct Delivery {
    stop: watch::Sender<bool>,
    keeper: JoinHandle<()>,
}

impl Delivery {
    /// Starts delivering the active webhooks of `catalog`'s database (an unscoped admin
    /// handle) as `worker`.
    pub async fn start(
        catalog: &Catalog,
        worker: &str,
        options: DeliveryOptions,
    ) -> Result<Delivery, String> {
        if options.lease < MIN_LEASE || options.lease < options.timeout * 3 {
            return Err(format!(
                "--webhook-lease must be at least {} s and three times --webhook-timeout \
                 ({} s), so that a server never sends after its lease may have run out",
                MIN_LEASE.as_secs(),
                options.timeout.as_secs_f64()
            ));
        }
        let dispatch = WebhookDispatch::new(catalog, worker).map_err(|e| e.to_string())?;
        let signal = catalog
            .event_signal()
            .await
            .map_err(|e| format!("cannot listen for events: {e}"))?;
        let client = request::client(options.timeout)?;
        let (stop, stopped) = watch::channel(false);
        let keeper = Keeper {
            dispatch,
            options,
            signal,
            client,
            running: HashMap::new(),
        };
        Ok(Delivery {
            stop,
            keeper: tokio::spawn(keeper.run(stopped)),
        })
    }

    /// Stops delivering and gives up every lease, so another server takes the webhooks
    /// over at its next round. An attempt in flight is abandoned (its event is delivered
    /// again).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.keeper.await;
    }
}

/// A held webhook's task, and when its lease runs out (µs since the epoch), which the
/// keeper moves on at each renewal and the task reads before each attempt.
struct Running {
    held: HeldWebhook,
    lease_until: Arc<AtomicI64>,
    task: JoinHandle<()>,
}

struct Keeper {
    dispatch: WebhookDispatch,
    options: DeliveryOptions,
    signal: EventSignal,
    client: reqwest::Client,
    running: HashMap<(Scope, String), Running>,
}

impl Keeper {
    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        let round = (self.options.lease / 4).min(MAX_ROUND);
        let mut pruned_at: Option<Instant> = None;
        loop {
            self.claim().await;
            if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                // In a task of its own: a slow prune must not delay the renewals.
                let held: Vec<HeldWebhook> =
                    self.running.values().map(|r| r.held.clone()).collect();
                tokio::spawn(prune(self.dispatch.clone(), held, self.options.retention));
                pruned_at = Some(Instant::now());
            }
            tokio::select! {
                _ = tokio::time::sleep(round) => {}
                _ = stopped.changed() => break,
            }
        }
        for (_, running) in self.running.drain() {
            running.task.abort();
            let _ = running.task.await;
            if let Err(e) = self.dispatch.release(&running.held).await {
                tracing::warn!(
                    "webhook {}: cannot give up its lease ({e}); another server takes it \
                     over when the lease runs out",
                    running.held.webhook.webhook_id
                );
            }
        }
    }

    /// One round: renews the leases due, claims some free webhooks, starts a task for each
    /// new one, and stops the tasks of webhooks lost or whose task has ended.
    async fn claim(&mut self) {
        let claimed = match self.dispatch.claim(self.options.lease).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!("webhooks: cannot claim or renew leases: {e}");
                return;
            }
        };
        for e in &claimed.errors {
            tracing::warn!("webhooks: cannot claim or renew a lease: {e}");
        }
        for key in claimed.lost {
            if let Some(lost) = self.running.remove(&key) {
                lost.task.abort();
                tracing::info!("webhook {}: no longer delivered by this server", key.1);
            }
        }
        // A task that ended (lost its lease, paused the webhook, met a database error)
        // is started again from the stored cursor if the webhook is claimed again.
        self.running.retain(|_, r| !r.task.is_finished());
        for held in claimed.held {
            let key = (held.webhook.tenant_id, held.webhook.webhook_id.clone());
            let until = held.webhook.lease_expires_at.unwrap_or(0);
            if let Some(running) = self.running.get(&key) {
                running.lease_until.store(until, Ordering::SeqCst);
                continue;
            }
            tracing::info!(
                "webhook {}: delivering from event {}",
                held.webhook.webhook_id,
                held.webhook.last_event_id + 1
            );
            let lease_until = Arc::new(AtomicI64::new(until));
            let follower = Follower {
                dispatch: self.dispatch.clone(),
                options: self.options.clone(),
                signal: self.signal.clone(),
                client: self.client.clone(),
                lease_until: Arc::clone(&lease_until),
            };
            let task = tokio::spawn(follower.run(held.clone()));
            self.running.insert(
                key,
                Running {
                    held,
                    lease_until,
                    task,
                },
            );
        }
    }
}

/// Prunes the old attempts of `held`.
async fn prune(dispatch: WebhookDispatch, held: Vec<HeldWebhook>, retention: Duration) {
    let Some(before) = micros_ago(retention) else {
        return;
    };
    for webhook in &held {
        if let Err(e) = dispatch.prune(webhook, before).await {
            tracing::warn!(
                "webhook {}: cannot prune old deliveries: {e}",
                webhook.webhook.webhook_id
            );
        }
    }
}

/// Microseconds since the epoch, `ago` before now.
fn micros_ago(ago: Duration) -> Option<i64> {
    let at = std::time::SystemTime::now().checked_sub(ago)?;
    let since = at.duration_since(std::time::SystemTime::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_micros()).ok()
}

/// The task of one held webhook.
struct Follower {
    dispatch: WebhookDispatch,
    options: DeliveryOptions,
    signal: EventSignal,
    client: reqwest::Client,
    lease_until: Arc<AtomicI64>,
}

/// Why a follower stopped.
enum Stop {
    /// Another server holds the webhook, or it was paused or deleted.
    Lost,
    /// Paused after its last failure allowed.
    Paused,
    /// A database error: the keeper starts it again from the stored cursor.
    Failed(String),
}

impl Follower {
    async fn run(mut self, mut held: HeldWebhook) {
        let id = held.webhook.webhook_id.clone();
        match self.follow(&mut held).await {
            Stop::Lost => tracing::info!("webhook {id}: no longer delivered by this server"),
            Stop::Paused => {}
            Stop::Failed(e) => tracing::warn!("webhook {id}: delivery interrupted: {e}"),
        }
    }

    async fn follow(&mut self, held: &mut HeldWebhook) -> Stop {
        let mut feed = self.dispatch.feed(held);
        let mut skip_written = Instant::now();
        loop {
            let events = match feed.next_events().await {
                Ok(events) => events,
                Err(e) => return Stop::Failed(e.to_string()),
            };
            for event in &events {
                if !held.webhook.matches(event) {
                    continue;
                }
                if let Some(stop) = self.deliver(held, event).await {
                    return stop;
                }
            }
            // Past what did not match: written with the next acknowledgement, or at most
            // once a second on its own (a restart reads those events again, and skips them).
            let behind = feed.cursor() > held.webhook.last_event_id;
            if behind && (!events.is_empty() || skip_written.elapsed() >= SKIP_WRITE_EVERY) {
                match self.dispatch.skipped_to(held, feed.cursor()).await {
                    Ok(true) => skip_written = Instant::now(),
                    Ok(false) => return Stop::Lost,
                    Err(e) => return Stop::Failed(e.to_string()),
                }
            }
            if events.is_empty() {
                self.signal.wait().await;
            }
        }
    }

    /// Delivers one event, retrying until it is acknowledged; `Some` when the follower
    /// must stop.
    async fn deliver(&mut self, held: &mut HeldWebhook, event: &Event) -> Option<Stop> {
        loop {
            if !self.lease_outlasts_an_attempt().await {
                return Some(Stop::Lost);
            }
            let attempt = request::attempt(&self.client, held, event).await;
            if attempt.error.is_none() {
                return match self.dispatch.delivered(held, &attempt).await {
                    Ok(true) => None,
                    Ok(false) => Some(Stop::Lost),
                    Err(e) => Some(Stop::Failed(e.to_string())),
                };
            }
            let failed = self
                .dispatch
                .failed(held, &attempt, self.options.max_failures)
                .await;
            match failed {
                Ok(AfterFailure::Retry { failures }) => {
                    tracing::warn!(
                        "webhook {}: event {} not delivered (attempt {failures}): {}",
                        held.webhook.webhook_id,
                        event.event_id,
                        attempt.error.as_deref().unwrap_or_default()
                    );
                    tokio::time::sleep(backoff(self.options.backoff, failures)).await;
                }
                Ok(AfterFailure::Paused) => {
                    tracing::warn!(
                        "webhook {}: paused after {} failed deliveries in a row of event {}; \
                         the last: {}",
                        held.webhook.webhook_id,
                        self.options.max_failures,
                        event.event_id,
                        attempt.error.as_deref().unwrap_or_default()
                    );
                    return Some(Stop::Paused);
                }
                Ok(AfterFailure::Lost) => return Some(Stop::Lost),
                Err(e) => return Some(Stop::Failed(e.to_string())),
            }
        }
    }
}

impl Follower {
    /// Whether the lease outlasts an attempt that starts now, waiting a little for a
    /// renewal that is late: a server sends only while no other can hold the webhook.
    async fn lease_outlasts_an_attempt(&self) -> bool {
        let needed = micros(self.options.timeout + LEASE_MARGIN);
        let deadline = Instant::now() + self.options.lease;
        while Instant::now() < deadline {
            let left = self.lease_until.load(Ordering::SeqCst) - now_micros();
            if left > needed {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

/// Microseconds of `d`.
fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Now, in microseconds since the epoch.
fn now_micros() -> i64 {
    micros_ago(Duration::ZERO).unwrap_or(0)
}

/// The wait after the `failures`-th failure in a row: `first`, doubled each time, at most
/// [`MAX_BACKOFF`].
fn backoff(first: Duration, failures: i64) -> Duration {
    let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    first.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_bound() {
        let first = Duration::from_secs(1);
        assert_eq!(backoff(first, 1), Duration::from_secs(1));
        assert_eq!(backoff(first, 2), Duration::from_secs(2));
        assert_eq!(backoff(first, 5), Duration::from_secs(16));
        assert_eq!(backoff(first, 9), MAX_BACKOFF.min(Duration::from_secs(256)));
        assert_eq!(backoff(first, 1_000), MAX_BACKOFF);
    }
}
