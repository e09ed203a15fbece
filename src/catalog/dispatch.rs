//! The delivering side of webhooks (SPEC §16): which server delivers which webhook, and
//! what each attempt did to its cursor.
//!
//! A server claims an active webhook with a lease, as workers claim training jobs: the
//! claim succeeds only when no live lease holds it, so among servers on one database each
//! webhook has one deliverer, and a dead server's webhooks are taken over once its lease
//! runs out. A round claims half of the free webhooks (at least one), so servers started
//! together split them; one started later takes webhooks over as they are released or
//! their leases run out. Leases are timed by each server's clock: servers sharing a
//! database must keep their clocks in step, far closer than a lease.
//!
//! Every write about a held webhook is a compare-and-set on the lease, the active state
//! *and* the cursor the holder last wrote: a server whose lease ran out, whose webhook was
//! paused, or whose view of the cursor is stale, writes nothing and learns that it lost
//! the webhook. So the cursor never moves backwards and never past an event that was not
//! acknowledged, and a duplicate delivery needs a server to stop between the receiver's
//! answer and the acknowledgement's commit.
//!
//! Every attempt is recorded (`webhook_deliveries`), whether or not the lease still holds
//! (it happened), unless the webhook was deleted meanwhile. Reading and writing a
//! webhook's rows runs in its owner's scope, so the store's owner check holds here as
//! everywhere; only finding the candidates reads every owner's webhooks, which is why a
//! [`WebhookDispatch`] is built only from an unscoped admin handle (the server's own).

use std::time::Duration;

use futures::FutureExt;

use super::Catalog;
use super::feed::EventFeed;
use super::webhooks::{Webhook, WebhookState, webhook_columns, webhook_from_row};
use crate::access::Access;
use crate::clock::{micros, now_micros};
use crate::error::{CatalogError, Result};
use crate::store::{OwnedWrite, TxOptions, args};
use crate::tenant::{owner_of, scope_of_owner};
use crate::validate;

/// The webhooks a claim looks at per round, at most.
const CLAIM_ROUND: i64 = 1_000;

/// Active webhooks of every owner that no live lease holds, and this worker's own whose
/// lease is due for renewal (it runs out before `$3`).
const CANDIDATES: &str = "SELECT owner, webhook_id, claimed_by FROM webhooks \
     WHERE state = 'active' AND (claimed_by IS NULL OR lease_expires_at <= $1 \
       OR (claimed_by = $2 AND lease_expires_at <= $3)) \
     ORDER BY created_at, owner, webhook_id LIMIT $4";

const CLAIM: OwnedWrite = OwnedWrite::new(concat!(
    "UPDATE webhooks SET claimed_by = $3, lease_expires_at = $4 \
     WHERE owner = $1 AND webhook_id = $2 AND state = 'active' \
       AND (claimed_by IS NULL OR lease_expires_at <= $5 OR claimed_by = $3) \
     RETURNING secret, ",
    webhook_columns!()
));

/// Extends a lease that has not run out, of a webhook still active.
const RENEW: OwnedWrite = OwnedWrite::new(
    "UPDATE webhooks SET lease_expires_at = $4 \
     WHERE owner = $1 AND webhook_id = $2 AND claimed_by = $3 AND lease_expires_at > $5 \
       AND state = 'active' RETURNING owner",
);

/// Whether a webhook still exists (an attempt of a deleted one is not recorded).
const EXISTS: &str = "SELECT 1 AS found FROM webhooks WHERE owner = $1 AND webhook_id = $2";

const RELEASE: OwnedWrite = OwnedWrite::new(
    "UPDATE webhooks SET claimed_by = NULL, lease_expires_at = NULL \
     WHERE owner = $1 AND webhook_id = $2 AND claimed_by = $3 RETURNING owner",
);

/// Moves the cursor of a webhook held by `$3` from `$4` (what the holder last wrote) to
/// `$5`, clearing the failures: an acknowledgement, or events that did not match.
const ADVANCE: OwnedWrite = OwnedWrite::new(
    "UPDATE webhooks SET last_event_id = $5, failures = 0, updated_at = $6 \
     WHERE owner = $1 AND webhook_id = $2 AND claimed_by = $3 AND last_event_id = $4 \
       AND lease_expires_at > $6 AND state = 'active' RETURNING owner",
);

/// Counts a failed attempt at the event after the cursor `$4`; the `$5`-th in a row
/// pauses the webhook with the reason `$6` and gives up the lease.
const FAIL: OwnedWrite = OwnedWrite::new(
    "UPDATE webhooks SET failures = failures + 1, \
       state = CASE WHEN failures + 1 >= $5 THEN 'paused' ELSE state END, \
       paused_reason = CASE WHEN failures + 1 >= $5 THEN $6 ELSE paused_reason END, \
       claimed_by = CASE WHEN failures + 1 >= $5 THEN NULL ELSE claimed_by END, \
       lease_expires_at = CASE WHEN failures + 1 >= $5 THEN NULL ELSE lease_expires_at END, \
       updated_at = $7 \
     WHERE owner = $1 AND webhook_id = $2 AND claimed_by = $3 AND last_event_id = $4 \
       AND lease_expires_at > $7 AND state = 'active' RETURNING owner, state, failures",
);

const RECORD_ATTEMPT: OwnedWrite = OwnedWrite::new(
    "INSERT INTO webhook_deliveries (owner, delivery_id, webhook_id, event_id, attempt, \
       status_code, error, duration_us, attempted_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
);

const PRUNE: OwnedWrite = OwnedWrite::new(
    "DELETE FROM webhook_deliveries WHERE owner = $1 AND webhook_id = $2 AND attempted_at < $3",
);

/// A webhook whose lease a [`WebhookDispatch`] holds, with its secret to sign with. Its
/// `webhook` is what this holder last wrote (its cursor and failures move with each
/// write). Its `Debug` form leaves the secret out.
#[derive(Clone)]
pub struct HeldWebhook {
    /// The webhook as its holder knows it.
    pub webhook: Webhook,
    secret: String,
}

impl HeldWebhook {
    /// The key of its signatures.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl std::fmt::Debug for HeldWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldWebhook")
            .field("webhook", &self.webhook)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// One attempt to deliver an event, as recorded in `webhook_deliveries`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The id sent (and signed) with the attempt; unique per attempt.
    pub delivery_id: String,
    /// The event delivered.
    pub event_id: i64,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<u16>,
    /// What went wrong (a status outside 2xx, a timeout, a refused connection).
    pub error: Option<String>,
    /// From sending the request to the end of the answer (or the failure).
    pub duration: Duration,
}

/// What one round of [`WebhookDispatch::claim`] did.
#[derive(Debug, Default)]
pub struct Claimed {
    /// The webhooks claimed or renewed, as stored now.
    pub held: Vec<HeldWebhook>,
    /// This worker's webhooks it could not renew (another server took them over, they
    /// were paused or deleted, or the renewal failed): stop delivering them.
    pub lost: Vec<(crate::tenant::Scope, String)>,
    /// Errors claiming single webhooks (the round went on).
    pub errors: Vec<CatalogError>,
}

/// What became of a webhook after a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// Still held: try again after a backoff. `failures` in a row so far.
    Retry {
        /// Failed attempts in a row at this event.
        failures: i64,
    },
    /// That was the last failure allowed: the webhook is paused and released.
    Paused,
    /// The lease ran out, or the webhook was paused, changed or deleted meanwhile.
    Lost,
}

/// Webhook delivery on one catalog database, as one worker (a server).
#[derive(Clone, Debug)]
pub struct WebhookDispatch {
    catalog: Catalog,
    worker: String,
}

impl WebhookDispatch {
    /// Delivery for `catalog`'s database as `worker` (unique per running server).
    ///
    /// # Errors
    /// [`CatalogError::Unsupported`] when `catalog` is scoped to a tenant: delivery serves
    /// every scope's webhooks, the operator's role; [`CatalogError::PermissionDenied`]
    /// below admin access; [`CatalogError::InvalidInput`] for an empty worker.
    pub fn new(catalog: &Catalog, worker: &str) -> Result<WebhookDispatch> {
        if catalog.scope().is_some() {
            return Err(CatalogError::Unsupported(
                "webhooks are delivered from an unscoped catalog (the operator's role)".into(),
            ));
        }
        catalog
            .access()
            .require(Access::Admin, "delivering webhooks")?;
        validate::worker(worker)?;
        Ok(WebhookDispatch {
            catalog: catalog.clone(),
            worker: worker.to_owned(),
        })
    }

    /// This worker's id, as `claimed_by` records it.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// One round of claiming, for `lease`: this worker's webhooks whose lease is a third
    /// gone are renewed, and of the active webhooks no live lease holds it claims half
    /// (at least one), so that servers started together split them between them.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] for a zero lease; database errors reading the
    /// candidates (an error claiming one webhook is in [`Claimed::errors`]).
    pub async fn claim(&self, lease: Duration) -> Result<Claimed> {
        validate::lease(lease)?;
        let now = now_micros();
        let renew_before = now.saturating_add(micros(lease) / 3 * 2);
        let candidates = self
            .catalog
            .store()
            .fetch_all(
                CANDIDATES,
                &args![now, self.worker.as_str(), renew_before, CLAIM_ROUND],
            )
            .await?;
        let mut mine = Vec::new();
        let mut free = Vec::new();
        for row in &candidates {
            let key = (
                scope_of_owner(&row.text("owner")?)?,
                row.text("webhook_id")?,
            );
            match row.opt_text("claimed_by")? {
                Some(holder) if holder == self.worker => mine.push(key),
                _ => free.push(key),
            }
        }
        free.truncate(free.len().div_ceil(2));
        let mut claimed = Claimed::default();
        for (is_mine, (scope, webhook_id)) in mine
            .into_iter()
            .map(|k| (true, k))
            .chain(free.into_iter().map(|k| (false, k)))
        {
            match self.claim_one(scope, &webhook_id, lease).await {
                Ok(Some(held)) => claimed.held.push(held),
                Ok(None) if is_mine => claimed.lost.push((scope, webhook_id)),
                Ok(None) => {}
                Err(e) => {
                    if is_mine {
                        claimed.lost.push((scope, webhook_id));
                    }
                    claimed.errors.push(e);
                }
            }
        }
        Ok(claimed)
    }

    /// Claims (or renews) one webhook for `lease`, unless a live lease of another worker
    /// holds it or it is not active.
    async fn claim_one(
        &self,
        scope: crate::tenant::Scope,
        webhook_id: &str,
        lease: Duration,
    ) -> Result<Option<HeldWebhook>> {
        self.catalog
            .with_scope(scope)
            .transaction(TxOptions::write(), |tx| {
                let (id, worker) = (webhook_id.to_owned(), self.worker.clone());
                async move {
                    let now = now_micros();
                    let until = now.saturating_add(micros(lease));
                    let rows = tx
                        .write_returning(&CLAIM, &args![id, worker, until, now])
                        .await?;
                    rows.first()
                        .map(|row| {
                            Ok(HeldWebhook {
                                webhook: webhook_from_row(row)?,
                                secret: row.text("secret")?,
                            })
                        })
                        .transpose()
                }
                .boxed()
            })
            .await
    }

    /// Extends the lease of a webhook this worker holds. `false` when it no longer holds
    /// it: the lease ran out, or the webhook was paused or deleted.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] for a zero lease; database errors.
    pub async fn renew(&self, held: &HeldWebhook, lease: Duration) -> Result<bool> {
        validate::lease(lease)?;
        self.write(held, |now| {
            let until = now.saturating_add(micros(lease));
            (&RENEW, args![self.worker.as_str(), until, now].to_vec())
        })
        .await
        .map(|rows| rows > 0)
    }

    /// Gives up the lease of a webhook this worker holds, so another server takes it over
    /// at once (a shutdown).
    ///
    /// # Errors
    /// Database errors.
    pub async fn release(&self, held: &HeldWebhook) -> Result<()> {
        self.write(held, |_| (&RELEASE, args![self.worker.as_str()].to_vec()))
            .await
            .map(|_| ())
    }

    /// Records an attempt the receiver acknowledged (2xx) and moves the cursor to its
    /// event, in one transaction. `false` (the attempt recorded, the cursor not moved)
    /// when this worker no longer holds the webhook.
    ///
    /// # Errors
    /// Database errors.
    pub async fn delivered(&self, held: &mut HeldWebhook, attempt: &Attempt) -> Result<bool> {
        self.advance_with(held, attempt.event_id, Some(attempt))
            .await
    }

    /// Moves the cursor past events that did not match the webhook's filters. `false` when
    /// this worker no longer holds the webhook.
    ///
    /// # Errors
    /// Database errors.
    pub async fn skipped_to(&self, held: &mut HeldWebhook, event_id: i64) -> Result<bool> {
        if event_id <= held.webhook.last_event_id {
            return Ok(true);
        }
        self.advance_with(held, event_id, None).await
    }

    /// Records a failed attempt and counts it; after `max_failures` in a row the webhook
    /// is paused with the reason.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] for `max_failures < 1`; database errors.
    pub async fn failed(
        &self,
        held: &mut HeldWebhook,
        attempt: &Attempt,
        max_failures: i64,
    ) -> Result<AfterFailure> {
        if max_failures < 1 {
            return Err(CatalogError::invalid("max_failures", "must be at least 1"));
        }
        let reason = format!(
            "{max_failures} failed deliveries in a row of event {}; the last: {}",
            attempt.event_id,
            attempt.error.as_deref().unwrap_or("no answer")
        );
        let cursor = held.webhook.last_event_id;
        let attempt_args = self.attempt_args(held, attempt);
        let owner = owner_of(held.webhook.tenant_id);
        let outcome = self
            .scoped(held)
            .transaction(TxOptions::write(), |tx| {
                let (id, worker, reason) = (
                    held.webhook.webhook_id.clone(),
                    self.worker.clone(),
                    reason.clone(),
                );
                let attempt_args = attempt_args.clone();
                let owner = owner.clone();
                async move {
                    let args = args![
                        id.as_str(),
                        worker,
                        cursor,
                        max_failures,
                        reason,
                        now_micros()
                    ];
                    let rows = tx.write_returning(&FAIL, &args).await?;
                    record_attempt(tx, !rows.is_empty(), &owner, &id, &attempt_args).await?;
                    match rows.first() {
                        None => Ok(AfterFailure::Lost),
                        Some(row) if row.text("state")? == WebhookState::Paused.as_str() => {
                            Ok(AfterFailure::Paused)
                        }
                        Some(row) => Ok(AfterFailure::Retry {
                            failures: row.int("failures")?,
                        }),
                    }
                }
                .boxed()
            })
            .await?;
        if let AfterFailure::Retry { failures } = outcome {
            held.webhook.failures = failures;
        }
        Ok(outcome)
    }

    /// Deletes the records of a held webhook's attempts made before `before` (µs since the
    /// epoch); returns how many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn prune(&self, held: &HeldWebhook, before: i64) -> Result<u64> {
        self.scoped(held)
            .transaction(TxOptions::write().needing(Access::Admin), |tx| {
                let id = held.webhook.webhook_id.clone();
                async move { tx.write(&PRUNE, &args![id, before]).await }.boxed()
            })
            .await
    }

    /// A feed of the events the held webhook's scope sees, after its cursor.
    pub fn feed(&self, held: &HeldWebhook) -> EventFeed {
        self.catalog
            .with_scope(held.webhook.tenant_id)
            .follow_events(held.webhook.last_event_id)
    }

    /// The handle of the held webhook's owner: its writes are that owner's.
    fn scoped(&self, held: &HeldWebhook) -> Catalog {
        self.catalog.with_scope(held.webhook.tenant_id)
    }

    /// The values of an attempt's row (all but the owner).
    fn attempt_args(&self, held: &HeldWebhook, attempt: &Attempt) -> Vec<crate::store::Value> {
        let duration = i64::try_from(attempt.duration.as_micros()).unwrap_or(i64::MAX);
        args![
            attempt.delivery_id.as_str(),
            held.webhook.webhook_id.as_str(),
            attempt.event_id,
            held.webhook.failures.saturating_add(1),
            attempt.status_code.map(i64::from),
            attempt.error.as_deref(),
            duration,
            now_micros(),
        ]
        .to_vec()
    }

    /// Moves the held webhook's cursor to `event_id` (recording `attempt` first, if any).
    async fn advance_with(
        &self,
        held: &mut HeldWebhook,
        event_id: i64,
        attempt: Option<&Attempt>,
    ) -> Result<bool> {
        let cursor = held.webhook.last_event_id;
        let attempt_args = attempt.map(|a| self.attempt_args(held, a));
        let owner = owner_of(held.webhook.tenant_id);
        let moved = self
            .scoped(held)
            .transaction(TxOptions::write(), |tx| {
                let (id, worker) = (held.webhook.webhook_id.clone(), self.worker.clone());
                let (attempt_args, owner) = (attempt_args.clone(), owner.clone());
                async move {
                    let args = args![id.as_str(), worker, cursor, event_id, now_micros()];
                    let moved = !tx.write_returning(&ADVANCE, &args).await?.is_empty();
                    if let Some(attempt_args) = &attempt_args {
                        record_attempt(tx, moved, &owner, &id, attempt_args).await?;
                    }
                    Ok(moved)
                }
                .boxed()
            })
            .await?;
        if moved {
            held.webhook.last_event_id = event_id;
            held.webhook.failures = 0;
        }
        Ok(moved)
    }

    /// Runs one of the lease statements on the held webhook (`$1` its owner, `$2` its id,
    /// then what `args` gives for the current time); returns the rows it changed.
    async fn write(
        &self,
        held: &HeldWebhook,
        args: impl Fn(i64) -> (&'static OwnedWrite, Vec<crate::store::Value>) + Send + Sync,
    ) -> Result<usize> {
        self.scoped(held)
            .transaction(TxOptions::write(), |tx| {
                let (sql, rest) = args(now_micros());
                let mut values = args![held.webhook.webhook_id.as_str()].to_vec();
                values.extend(rest);
                async move { Ok(tx.write_returning(sql, &values).await?.len()) }.boxed()
            })
            .await
    }
}

/// Records an attempt of the webhook `id` (whose write just `held`, or did not), unless the
/// webhook was deleted meanwhile: its record went with it, and nothing would prune a new
/// one. An attempt of a webhook that was paused or taken over is recorded: it happened.
async fn record_attempt(
    tx: &mut crate::store::Tx,
    held: bool,
    owner: &str,
    id: &str,
    attempt_args: &[crate::store::Value],
) -> Result<()> {
    if held
        || tx
            .fetch_optional(EXISTS, &args![owner, id])
            .await?
            .is_some()
    {
        tx.write(&RECORD_ATTEMPT, attempt_args).await?;
    }
    Ok(())
}
