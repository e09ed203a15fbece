//! Webhooks (SPEC §16): where a scope's events are delivered, as rows of the catalog.
//!
//! A webhook is owned by a scope like every row, and sees what its scope sees: its owner's
//! events and global ones. Its `last_event_id` is a durable cursor: every visible event up
//! to it was acknowledged by the receiver or did not match the webhook's filters. The
//! secret is made here, returned once by [`Catalog::create_webhook`], and kept in the
//! database only to sign with (the delivering server reads it; no listing or SQL table
//! shows it).
//!
//! Administering webhooks needs admin access: a webhook sends the catalog's contents to an
//! address outside it. Webhooks are the catalog's delivery settings, not registry rows:
//! their changes append no event (a delivery would otherwise produce events to deliver).

use futures::FutureExt;

use super::Catalog;
use super::events::{Event, EventKind};
use super::rows::{self, status_enum};
use crate::access::Access;
use crate::clock::now_micros;
use crate::error::{CatalogError, Result};
use crate::store::{DbRow, OwnedWrite, TxOptions, args};
use crate::tenant::Scope;
use crate::tokens::{hex, random};
use crate::validate;

status_enum! {
    /// Whether a webhook is delivered.
    WebhookState {
        /// Delivered by a running server.
        Active => "active",
        /// Not delivered until resumed: by the operator, or after a run of failures.
        Paused => "paused",
    }
}

/// What [`Catalog::create_webhook`] writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewWebhook {
    /// Where events are POSTed: an `http` or `https` URL with a host.
    pub url: String,
    /// Only events of these kinds; empty: every kind.
    pub event_kinds: Vec<EventKind>,
    /// Only events about a model whose name matches this pattern (`*` any run of
    /// characters, `?` one character); `None`: every event.
    pub model_pattern: Option<String>,
    /// Deliver the events after this id; `None`: only events appended from now on.
    pub since: Option<i64>,
}

impl NewWebhook {
    /// A webhook of every kind of event appended from now on, to `url`.
    pub fn new(url: impl Into<String>) -> Self {
        NewWebhook {
            url: url.into(),
            event_kinds: Vec::new(),
            model_pattern: None,
            since: None,
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        validate_url(&self.url)?;
        if let Some(pattern) = &self.model_pattern {
            validate::name("model_pattern", pattern)?;
        }
        if self.since.is_some_and(|id| id < 0) {
            return Err(CatalogError::invalid("since", "must be 0 or more"));
        }
        Ok(())
    }
}

/// The longest webhook URL accepted.
const MAX_URL_CHARS: usize = 2_048;

/// An absolute `http` or `https` URL with a host and no credentials: the only addresses a
/// delivery goes to.
fn validate_url(text: &str) -> Result<()> {
    validate::text("url", text)?;
    if text.chars().count() > MAX_URL_CHARS {
        return Err(CatalogError::invalid(
            "url",
            format!("must be at most {MAX_URL_CHARS} characters"),
        ));
    }
    let url = url::Url::parse(text)
        .map_err(|e| CatalogError::invalid("url", format!("{text:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CatalogError::invalid(
            "url",
            format!("the scheme must be http or https, not {:?}", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(CatalogError::invalid("url", "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // They would be sent with every delivery and shown in every listing.
        return Err(CatalogError::invalid(
            "url",
            "must not hold a user name or password; the receiver checks the signature",
        ));
    }
    Ok(())
}

/// One webhook, as stored, without its secret. Its fields are the columns of
/// `jammi.public.webhooks`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    /// The webhook's id (a UUID the catalog picks).
    pub webhook_id: String,
    /// Where its events are POSTed.
    pub url: String,
    /// The kinds it receives; empty: every kind.
    pub event_kinds: Vec<EventKind>,
    /// The model names it receives, as a pattern; `None`: every event.
    pub model_pattern: Option<String>,
    /// Whether it is delivered.
    pub state: WebhookState,
    /// Why it is paused.
    pub paused_reason: Option<String>,
    /// Its cursor: every visible event up to this id was acknowledged or did not match.
    pub last_event_id: i64,
    /// Failed attempts in a row at the event after the cursor.
    pub failures: i64,
    /// The server delivering it (or that last did).
    pub claimed_by: Option<String>,
    /// When that server's lease runs out (µs since the epoch, UTC).
    pub lease_expires_at: Option<i64>,
    /// The owning tenant; `None` for a global webhook.
    pub tenant_id: Scope,
    /// Creation time (µs since the epoch, UTC).
    pub created_at: i64,
    /// Last change of its settings, state or cursor (µs since the epoch, UTC).
    pub updated_at: i64,
}

impl Webhook {
    /// Whether `event` passes the webhook's filters (its kinds and model pattern). An event
    /// about no model passes no pattern.
    pub fn matches(&self, event: &Event) -> bool {
        let kind = self.event_kinds.is_empty() || self.event_kinds.contains(&event.kind);
        let model = match (&self.model_pattern, &event.model_id) {
            (None, _) => true,
            (Some(pattern), Some(name)) => wildcard_match(pattern, name),
            (Some(_), None) => false,
        };
        kind && model
    }
}

/// A webhook just created, with its secret: the only time the secret leaves the catalog
/// but to sign. Its `Debug` form leaves the secret out.
pub struct CreatedWebhook {
    /// Its row.
    pub webhook: Webhook,
    /// The key of its signatures (HMAC-SHA256), `whsec_` and 64 hex digits.
    pub secret: String,
}

impl std::fmt::Debug for CreatedWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedWebhook")
            .field("webhook", &self.webhook)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters (none
/// included) and `?` for one character.
pub(crate) fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut i, mut j) = (0, 0);
    // Where the last `*` was, and where in the name its run ends so far.
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        match p.get(i) {
            Some('*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(&c) if c == '?' || c == n[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                // Let the last `*` take one more character, and try again after it.
                Some((s, run)) => {
                    star = Some((s, run + 1));
                    i = s + 1;
                    j = run + 1;
                }
                None => return false,
            },
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

macro_rules! webhook_columns {
    () => {
        "owner, webhook_id, url, event_kinds, model_pattern, state, paused_reason, \
         last_event_id, failures, claimed_by, lease_expires_at, created_at, updated_at"
    };
}
pub(super) use webhook_columns;

const INSERT: OwnedWrite = OwnedWrite::new(concat!(
    "INSERT INTO webhooks (owner, webhook_id, url, event_kinds, model_pattern, secret, state, \
       last_event_id, failures, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, 0, $8, $8) RETURNING ",
    webhook_columns!()
));

/// The newest event id, where a webhook created without `since` starts.
const NEWEST_EVENT: &str = "SELECT COALESCE(MAX(event_id), 0) AS event_id FROM events";

const GET: &str = concat!(
    "SELECT ",
    webhook_columns!(),
    " FROM webhooks WHERE webhook_id = $1 AND owner IN ($2, '') ORDER BY owner = '' LIMIT 1"
);

const LIST: &str = concat!(
    "SELECT ",
    webhook_columns!(),
    " FROM webhooks WHERE owner IN ($1, '') ORDER BY created_at, webhook_id"
);

const DELETE: OwnedWrite = OwnedWrite::new(concat!(
    "DELETE FROM webhooks WHERE owner = $1 AND webhook_id = $2 RETURNING ",
    webhook_columns!()
));
const DELETE_DELIVERIES: OwnedWrite =
    OwnedWrite::new("DELETE FROM webhook_deliveries WHERE owner = $1 AND webhook_id = $2");

const PAUSE: OwnedWrite = OwnedWrite::new(concat!(
    "UPDATE webhooks SET state = 'paused', paused_reason = $3, updated_at = $4 \
     WHERE owner = $1 AND webhook_id = $2 RETURNING ",
    webhook_columns!()
));

/// Resuming starts the count of failures afresh; the cursor stays where it is, so the
/// event that failed is the next one tried.
const RESUME: OwnedWrite = OwnedWrite::new(concat!(
    "UPDATE webhooks SET state = 'active', paused_reason = NULL, failures = 0, updated_at = $3 \
     WHERE owner = $1 AND webhook_id = $2 RETURNING ",
    webhook_columns!()
));

pub(super) fn webhook_from_row(row: &DbRow) -> Result<Webhook> {
    Ok(Webhook {
        webhook_id: row.text("webhook_id")?,
        url: row.text("url")?,
        event_kinds: match row.opt_text("event_kinds")? {
            Some(kinds) => kinds
                .split(',')
                .map(str::parse)
                .collect::<Result<Vec<EventKind>>>()?,
            None => Vec::new(),
        },
        model_pattern: row.opt_text("model_pattern")?,
        state: rows::parsed(row, "state")?,
        paused_reason: row.opt_text("paused_reason")?,
        last_event_id: row.int("last_event_id")?,
        failures: row.int("failures")?,
        claimed_by: row.opt_text("claimed_by")?,
        lease_expires_at: row.opt_int("lease_expires_at")?,
        tenant_id: rows::owner(row)?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
    })
}

/// Bytes of a webhook secret.
const SECRET_BYTES: usize = 32;

impl Catalog {
    /// Creates a webhook owned by the caller's scope, active, and returns it with its
    /// secret (shown only now).
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] naming the bad field;
    /// [`CatalogError::PermissionDenied`] below admin access.
    pub async fn create_webhook(&self, webhook: NewWebhook) -> Result<CreatedWebhook> {
        self.require_webhook_admin()?;
        webhook.validate()?;
        let webhook_id = uuid::Uuid::new_v4().to_string();
        let secret = format!("whsec_{}", hex(&random::<SECRET_BYTES>()?));
        let kinds = (!webhook.event_kinds.is_empty()).then(|| {
            let kinds: Vec<&str> = webhook.event_kinds.iter().map(|k| k.as_str()).collect();
            kinds.join(",")
        });
        let created = self
            .transaction(TxOptions::write().needing(Access::Admin), |tx| {
                let (webhook_id, secret, kinds) =
                    (webhook_id.clone(), secret.clone(), kinds.clone());
                let (url, pattern) = (webhook.url.clone(), webhook.model_pattern.clone());
                let since = webhook.since;
                async move {
                    let newest = tx.fetch_one(NEWEST_EVENT, &[]).await?.int("event_id")?;
                    let since = match since {
                        Some(id) if id > newest => {
                            return Err(CatalogError::invalid(
                                "since",
                                format!("{id} is after the newest event ({newest})"),
                            ));
                        }
                        Some(id) => id,
                        None => newest,
                    };
                    let args = args![webhook_id, url, kinds, pattern, secret, since, now_micros()];
                    let rows = tx.write_returning(&INSERT, &args).await?;
                    rows.first().map(webhook_from_row).transpose()
                }
                .boxed()
            })
            .await?;
        let webhook = created.ok_or_else(|| CatalogError::AlreadyExists {
            kind: "webhook",
            id: webhook_id,
        })?;
        Ok(CreatedWebhook { webhook, secret })
    }

    /// A visible webhook, the caller's own preferred over a global one.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`].
    pub async fn get_webhook(&self, webhook_id: &str) -> Result<Webhook> {
        self.get_visible(GET, "webhook", webhook_id, webhook_from_row)
            .await
    }

    /// Every visible webhook (the caller's own and global ones), oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>> {
        self.list_visible(LIST, webhook_from_row).await
    }

    /// Deletes a webhook the caller owns, and the record of its deliveries.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`] when the caller owns no such webhook;
    /// [`CatalogError::PermissionDenied`] below admin access.
    pub async fn delete_webhook(&self, webhook_id: &str) -> Result<()> {
        self.require_webhook_admin()?;
        validate::text("webhook_id", webhook_id)?;
        let deleted = self
            .transaction(TxOptions::write().needing(Access::Admin), |tx| {
                let id = webhook_id.to_owned();
                async move {
                    let rows = tx.write_returning(&DELETE, &args![id.as_str()]).await?;
                    if !rows.is_empty() {
                        tx.write(&DELETE_DELIVERIES, &args![id]).await?;
                    }
                    Ok(rows.len())
                }
                .boxed()
            })
            .await?;
        if deleted == 0 {
            return Err(super::not_found("webhook", webhook_id));
        }
        Ok(())
    }

    /// Pauses a webhook the caller owns, recording `reason`: no server delivers it until it
    /// is resumed (an attempt in flight finishes, and is recorded).
    ///
    /// # Errors
    /// As [`Catalog::delete_webhook`].
    pub async fn pause_webhook(&self, webhook_id: &str, reason: &str) -> Result<Webhook> {
        validate::text("reason", reason)?;
        self.set_webhook_state(&PAUSE, webhook_id, Some(reason))
            .await
    }

    /// Resumes a webhook the caller owns: delivered again from its cursor, its count of
    /// failures started afresh.
    ///
    /// # Errors
    /// As [`Catalog::delete_webhook`].
    pub async fn resume_webhook(&self, webhook_id: &str) -> Result<Webhook> {
        self.set_webhook_state(&RESUME, webhook_id, None).await
    }

    /// Refuses a handle below admin access, naming what it tried.
    fn require_webhook_admin(&self) -> Result<()> {
        self.access()
            .require(Access::Admin, "administering webhooks")
    }

    async fn set_webhook_state(
        &self,
        sql: &'static OwnedWrite,
        webhook_id: &str,
        reason: Option<&str>,
    ) -> Result<Webhook> {
        self.require_webhook_admin()?;
        validate::text("webhook_id", webhook_id)?;
        let changed = self
            .transaction(TxOptions::write().needing(Access::Admin), |tx| {
                let (id, reason) = (webhook_id.to_owned(), reason.map(str::to_owned));
                async move {
                    let rows = match reason {
                        Some(reason) => {
                            tx.write_returning(sql, &args![id, reason, now_micros()])
                                .await?
                        }
                        None => tx.write_returning(sql, &args![id, now_micros()]).await?,
                    };
                    rows.first().map(webhook_from_row).transpose()
                }
                .boxed()
            })
            .await?;
        changed.ok_or_else(|| super::not_found("webhook", webhook_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_runs_and_single_characters() {
        assert!(wildcard_match("fraud-*", "fraud-v2"));
        assert!(wildcard_match("fraud-*", "fraud-"));
        assert!(!wildcard_match("fraud-*", "acme/fraud-v2"));
        assert!(wildcard_match("*/fraud-*", "acme/fraud-v2"));
        assert!(wildcard_match("bge-?", "bge-s"));
        assert!(!wildcard_match("bge-?", "bge-small"));
        assert!(wildcard_match("a*b*c", "aXXbYYbZc"));
        assert!(!wildcard_match("a*b*c", "aXXbYYbZ"));
        assert!(wildcard_match("exact", "exact"));
        assert!(!wildcard_match("exact", "exactly"));
        assert!(wildcard_match("*", ""));
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_are_accepted() {
        assert!(validate_url("https://hooks.example.com/jammi").is_ok());
        assert!(validate_url("http://127.0.0.1:8080/x?y=1").is_ok());
        for bad in [
            "file:///etc/passwd",
            "ftp://example.com/",
            "gopher://x",
            "not a url",
            "/relative/path",
            "https://user:pw@example.com/",
            "unix:/var/run/sock",
        ] {
            let err = validate_url(bad).unwrap_err().to_string();
            assert!(err.contains("url"), "{bad}: {err}");
        }
    }
}
