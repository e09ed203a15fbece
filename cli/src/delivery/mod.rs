//! Webhook delivery in `jammi serve` (SPEC §16): at least once, in event-id order per
//! webhook, from the durable cursor in the catalog.
//!
//! A keeper claims every active webhook no other live server holds, and extends the leases
//! of those it holds, every third of a lease (`WebhookDispatch::claim`). Each held webhook
//! gets a task of its own that reads its scope's events after its cursor, POSTs each that
//! matches its filters (`request`), and moves the cursor only after a 2xx. A failure is
//! recorded and retried after a backoff that doubles up to [`MAX_BACKOFF`]; the
//! `max_failures`-th in a row pauses the webhook. A task whose lease is gone (its write is
//! refused) ends; so does one hit by a database error, which the keeper starts again from
//! the stored cursor at its next round.
//!
//! A follower wakes when events commit (Postgres: `LISTEN`) or polls (SQLite); see
//! `EventSignal`.

mod request;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jammi_catalog::{
    AfterFailure, Catalog, Event, EventSignal, HeldWebhook, Scope, WebhookDispatch,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The longest wait between two attempts at one event.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
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
    /// Starts delivering every active webhook of `catalog`'s database (an unscoped admin
    /// handle) as `worker`.
    pub async fn start(
        catalog: &Catalog,
        worker: &str,
        options: DeliveryOptions,
    ) -> Result<Delivery, String> {
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
    /// over at once. An attempt in flight is abandoned (its event is delivered again).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.keeper.await;
    }
}

/// A held webhook's task.
struct Running {
    held: HeldWebhook,
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
        let round = self.options.lease / 3;
        let mut pruned_at: Option<Instant> = None;
        loop {
            self.claim().await;
            if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                self.prune().await;
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

    /// Claims what is free, extends what is held, starts a task for each held webhook
    /// without a live one, and stops the tasks of webhooks no longer held.
    async fn claim(&mut self) {
        let held = match self.dispatch.claim(self.options.lease).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!("webhooks: cannot claim or renew leases: {e}");
                return;
            }
        };
        let mut still: HashMap<(Scope, String), Running> = HashMap::new();
        for webhook in held {
            let key = (webhook.webhook.tenant_id, webhook.webhook.webhook_id.clone());
            match self.running.remove(&key) {
                Some(running) if !running.task.is_finished() => {
                    still.insert(key, running);
                }
                _ => {
                    tracing::info!(
                        "webhook {}: delivering to {} from event {}",
                        webhook.webhook.webhook_id,
                        webhook.webhook.url,
                        webhook.webhook.last_event_id + 1
                    );
                    let follower = Follower {
                        dispatch: self.dispatch.clone(),
                        options: self.options.clone(),
                        signal: self.signal.clone(),
                        client: self.client.clone(),
                    };
                    let task = tokio::spawn(follower.run(webhook.clone()));
                    still.insert(key, Running { held: webhook, task });
                }
            }
        }
        // Lost: the lease ran out and another server took it, or it was paused or deleted.
        for (_, lost) in self.running.drain() {
            lost.task.abort();
        }
        self.running = still;
    }

    async fn prune(&self) {
        let Some(before) = micros_ago(self.options.retention) else {
            return;
        };
        for running in self.running.values() {
            if let Err(e) = self.dispatch.prune(&running.held, before).await {
                tracing::warn!(
                    "webhook {}: cannot prune old deliveries: {e}",
                    running.held.webhook.webhook_id
                );
            }
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
