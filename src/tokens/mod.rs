//! API tokens: how a server maps a caller to a scope and an access level (SPEC §11, §14).
//!
//! A token is `jammi_<id>_<secret>`: a 64-bit public id (hex), by which its row is found,
//! and a 256-bit secret (hex) from the operating system's generator. The database keeps the
//! id, the SHA-256 of the secret, the scope, the access level and the expiry; the secret
//! itself is shown once, by [`Tokens::create`], and never stored or logged. Checking a token
//! compares digests in constant time.
//!
//! A token's row is read when it is first presented, and then at most once a
//! [`VERIFIED_TTL`] while it is used: in between, what the row said (digest, grant, expiry)
//! is remembered ([`VERIFIED_TOKENS`] tokens at most), so a call costs no database round
//! trip. Expiry holds exactly (it is checked against the clock on every call); a revocation
//! holds from the next call when it was made through the same [`Tokens`] (or a clone), and
//! within [`VERIFIED_TTL`] when another process made it (`jammi token revoke`, another
//! server).
//!
//! An id that names no token is remembered for a while ([`UNKNOWN_ID_TTL`], at most
//! [`UNKNOWN_IDS`] of them): presented again, it is refused without a database round trip.
//! Ids are random, so no token created later has an id presented before, but for a
//! restored database. A token's last use is written at most once a
//! [`LAST_USE_RESOLUTION`], by a task of its own that the call does not wait for.
//!
//! Administration is the operator's: [`Tokens`] is built only from an unscoped catalog
//! handle with admin access. The table (`api_tokens`) is not one of the SQL tables of
//! `jammi.public`.

mod recent;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::access::{Access, Grant};
use crate::catalog::Catalog;
use crate::clock::now_micros;
use crate::error::{CatalogError, Result};
use crate::store::{Store, TxOptions, args};
use crate::tenant::{Scope, owner_of, scope_of_owner};
use recent::{Recent, RecentIds};

/// How long what a token's row said is trusted before it is read again: the most time a
/// revocation made by another process takes to hold.
pub const VERIFIED_TTL: Duration = Duration::from_secs(1);
/// How many verified tokens are remembered at most.
pub const VERIFIED_TOKENS: usize = 16_384;
/// How many unknown token ids are remembered at most.
pub const UNKNOWN_IDS: usize = 16_384;
/// How long an unknown token id is remembered.
pub const UNKNOWN_ID_TTL: Duration = Duration::from_secs(600);
/// A token's recorded last use is at most this old while it is being used.
pub const LAST_USE_RESOLUTION: Duration = Duration::from_secs(60);

/// What a token's row says, without its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// The operator's name for the token, unique among live tokens.
    pub label: String,
    /// The scope every call with this token runs in (`None`: unscoped, global rows only).
    pub tenant: Scope,
    /// What calls with this token may do.
    pub access: Access,
    /// When it was created, microseconds since the Unix epoch (UTC).
    pub created_at: i64,
    /// When it stops being accepted, if ever.
    pub expires_at: Option<i64>,
    /// When it was last used (written at most once a [`LAST_USE_RESOLUTION`]), if ever.
    pub last_used_at: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// Whether a token is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenStatus {
    /// Accepted.
    Live,
    /// Revoked by the operator.
    Revoked,
    /// Past its expiry.
    Expired,
}

impl TokenStatus {
    /// `live`, `revoked` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Live => "live",
            TokenStatus::Revoked => "revoked",
            TokenStatus::Expired => "expired",
        }
    }
}

impl TokenInfo {
    /// The token's status at `now` (µs since the epoch).
    pub fn status(&self, now: i64) -> TokenStatus {
        if self.revoked_at.is_some() {
            TokenStatus::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            TokenStatus::Expired
        } else {
            TokenStatus::Live
        }
    }
}

/// A token just created: the only time its full text exists outside the caller's hands.
/// Its `Debug` form leaves the token out, so that logging the value cannot leak it.
pub struct CreatedToken {
    /// Its row.
    pub info: TokenInfo,
    /// The token to hand to the client, `jammi_<id>_<secret>`.
    pub token: String,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("info", &self.info)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Token administration and checking on one catalog database.
///
/// Clones share the memory of unknown ids and of recorded uses.
#[derive(Clone, Debug)]
pub struct Tokens {
    store: Store,
    memory: Arc<Mutex<Memory>>,
}

/// What a [`Tokens`] remembers between calls.
#[derive(Debug)]
struct Memory {
    /// Tokens whose row was read recently and was live, by id.
    verified: Recent<Verified>,
    /// Revocations this process made: a row read before one is not remembered after it.
    revocations: u64,
    /// Ids that named no token when last looked up.
    unknown: RecentIds,
    /// Ids whose last use this process wrote within the resolution.
    used: RecentIds,
}

/// What a live token's row said when it was read.
#[derive(Clone, Debug)]
struct Verified {
    secret_hash: String,
    grant: Grant,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
}

const PREFIX: &str = "jammi_";
/// Bytes of the public id and of the secret.
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

const INSERT: &str = "INSERT INTO api_tokens (label, token_id, secret_hash, owner, access, \
    created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)";
const DELETE_REVOKED: &str = "DELETE FROM api_tokens WHERE label = $1 AND revoked_at IS NOT NULL";
const LIVE: &str = "SELECT 1 AS live FROM api_tokens WHERE label = $1";
const LIST: &str = "SELECT label, owner, access, created_at, expires_at, last_used_at, \
    revoked_at FROM api_tokens ORDER BY label";
const REVOKE: &str =
    "UPDATE api_tokens SET revoked_at = $2 WHERE label = $1 AND revoked_at IS NULL";
const BY_ID: &str = "SELECT secret_hash, owner, access, expires_at, last_used_at, revoked_at \
    FROM api_tokens WHERE token_id = $1";
const RECORD_USE: &str = "UPDATE api_tokens SET last_used_at = $2 \
    WHERE token_id = $1 AND (last_used_at IS NULL OR last_used_at < $2)";

impl Tokens {
    /// Token administration for `catalog`'s database.
    ///
    /// # Errors
    /// [`CatalogError::Unsupported`] when `catalog` is scoped to a tenant: tokens are the
    /// operator's, who works unscoped; [`CatalogError::PermissionDenied`] when its access
    /// level is below admin.
    pub fn new(catalog: &Catalog) -> Result<Tokens> {
        if catalog.scope().is_some() {
            return Err(CatalogError::Unsupported(
                "tokens are administered from an unscoped catalog (the operator's role)".into(),
            ));
        }
        catalog
            .access()
            .require(Access::Admin, "administering tokens")?;
        Ok(Tokens {
            store: catalog.store().clone(),
            memory: Arc::new(Mutex::new(Memory {
                verified: Recent::new(VERIFIED_TOKENS, VERIFIED_TTL),
                revocations: 0,
                unknown: RecentIds::new(UNKNOWN_IDS, UNKNOWN_ID_TTL),
                used: RecentIds::new(UNKNOWN_IDS, LAST_USE_RESOLUTION),
            })),
        })
    }

    /// Creates a token labelled `label` that gives `grant` (its scope: a tenant, or `None`
    /// for unscoped; its access level) until `expires_at` (µs since the epoch; `None`:
    /// until revoked). A label that only a revoked token has is taken over.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] for an empty label or one with control characters,
    /// or an expiry that is not in the future; [`CatalogError::AlreadyExists`] when a live
    /// or expired token has the label (revoke it first); database errors.
    pub async fn create(
        &self,
        label: &str,
        grant: Grant,
        expires_at: Option<i64>,
    ) -> Result<CreatedToken> {
        crate::validate::name("label", label)?;
        let created_at = now_micros();
        if let Some(at) = expires_at
            && at <= created_at
        {
            return Err(CatalogError::invalid(
                "expires_at",
                "the expiry must be in the future",
            ));
        }
        let id = hex(&random::<ID_BYTES>()?);
        let secret = hex(&random::<SECRET_BYTES>()?);
        let info = TokenInfo {
            label: label.to_owned(),
            tenant: grant.scope,
            access: grant.access,
            created_at,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        let row = args![
            info.label.clone(),
            id.clone(),
            digest(&secret),
            owner_of(grant.scope),
            grant.access.as_str(),
            info.created_at,
            info.expires_at
        ];
        let written = self
            .store
            .transaction(Grant::full(None), TxOptions::write(), |tx| {
                let row = row.clone();
                async move {
                    tx.write_tokens(DELETE_REVOKED, &row[..1]).await?;
                    if tx.fetch_optional(LIVE, &row[..1]).await?.is_some() {
                        return Ok(false);
                    }
                    tx.write_tokens(INSERT, &row).await?;
                    Ok(true)
                }
                .boxed()
            })
            .await
            .map_err(|e| match e {
                // A create of the same label that committed between our check and insert.
                CatalogError::Database(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    CatalogError::AlreadyExists {
                        kind: "token",
                        id: label.to_owned(),
                    }
                }
                other => other,
            })?;
        if !written {
            return Err(CatalogError::AlreadyExists {
                kind: "token",
                id: label.to_owned(),
            });
        }
        // Not unknown any more, whatever a guess of this id left behind.
        self.memory().unknown.remove(&id);
        Ok(CreatedToken {
            info,
            token: format!("{PREFIX}{id}_{secret}"),
        })
    }

    /// Every token, live, expired and revoked, by label.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list(&self) -> Result<Vec<TokenInfo>> {
        self.store
            .fetch_all(LIST, &[])
            .await?
            .iter()
            .map(|row| {
                Ok(TokenInfo {
                    label: row.text("label")?,
                    tenant: scope_of_owner(&row.text("owner")?)?,
                    access: access_of(&row.text("access")?)?,
                    created_at: row.int("created_at")?,
                    expires_at: row.opt_int("expires_at")?,
                    last_used_at: row.opt_int("last_used_at")?,
                    revoked_at: row.opt_int("revoked_at")?,
                })
            })
            .collect()
    }

    /// Revokes the live (or expired) token labelled `label`; `false` when there is none.
    ///
    /// # Errors
    /// Database errors.
    pub async fn revoke(&self, label: &str) -> Result<bool> {
        crate::validate::text("label", label)?;
        let row = args![label.to_owned(), now_micros()];
        let revoked = self
            .store
            .transaction(Grant::full(None), TxOptions::write(), |tx| {
                let row = row.clone();
                async move { tx.write_tokens(REVOKE, &row).await }.boxed()
            })
            .await?;
        // Exact for this process: no call after this one is served from memory.
        let mut memory = self.memory();
        memory.verified.clear();
        memory.revocations += 1;
        drop(memory);
        Ok(revoked > 0)
    }

    /// The scope and access level of a live token, or `None` for anything else
    /// (malformed, unknown, revoked, expired), without saying which.
    ///
    /// # Errors
    /// Database errors only.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Grant>> {
        let Some((id, secret)) = parse(token) else {
            return Ok(None);
        };
        let remembered = {
            let memory = self.memory();
            let instant = Instant::now();
            if memory.unknown.contains(id, instant) {
                return Ok(None);
            }
            memory.verified.get(id, instant).cloned()
        };
        let verified = match remembered {
            Some(verified) => verified,
            None => match self.read(id).await? {
                Some(verified) => verified,
                None => return Ok(None),
            },
        };
        let presented = digest(secret);
        let matches: bool = presented
            .as_bytes()
            .ct_eq(verified.secret_hash.as_bytes())
            .into();
        let now = now_micros();
        if !matches || verified.expires_at.is_some_and(|at| at <= now) {
            return Ok(None);
        }
        self.record_use(id, verified.last_used_at, now);
        Ok(Some(verified.grant))
    }

    /// Reads token `id`'s row: what it says when the token is live (remembered for the
    /// next calls), `None` when there is no such token (remembered too) or it is revoked.
    async fn read(&self, id: &str) -> Result<Option<Verified>> {
        let revocations = self.memory().revocations;
        let row = self
            .store
            .fetch_optional(BY_ID, &args![id.to_owned()])
            .await?;
        let Some(row) = row else {
            self.memory().unknown.insert(id, Instant::now(), ());
            return Ok(None);
        };
        if row.opt_int("revoked_at")?.is_some() {
            return Ok(None);
        }
        let verified = Verified {
            secret_hash: row.text("secret_hash")?,
            grant: Grant {
                scope: scope_of_owner(&row.text("owner")?)?,
                access: access_of(&row.text("access")?)?,
            },
            expires_at: row.opt_int("expires_at")?,
            last_used_at: row.opt_int("last_used_at")?,
        };
        let mut memory = self.memory();
        if memory.revocations == revocations {
            memory.verified.insert(id, Instant::now(), verified.clone());
        }
        Ok(Some(verified))
    }

    /// Writes `now` as the last use of token `id` when what is recorded (`last_used`) is
    /// older than the resolution and this process has not just written it. The write runs
    /// on its own task: the call that used the token does not wait for it, and a failure
    /// (a read-only database, say) only leaves the last use older.
    fn record_use(&self, id: &str, last_used: Option<i64>, now: i64) {
        let resolution = i64::try_from(LAST_USE_RESOLUTION.as_micros()).unwrap_or(i64::MAX);
        if last_used.is_some_and(|at| now.saturating_sub(at) < resolution) {
            return;
        }
        {
            let mut memory = self.memory();
            let instant = Instant::now();
            if memory.used.contains(id, instant) {
                return;
            }
            memory.used.insert(id, instant, ());
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, row) = (self.store.clone(), args![id.to_owned(), now]);
        runtime.spawn(async move {
            let _ = store
                .transaction(Grant::full(None), TxOptions::write(), |tx| {
                    let row = row.clone();
                    async move { tx.write_tokens(RECORD_USE, &row).await }.boxed()
                })
                .await;
        });
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        // The memory holds no invariant a panic elsewhere could break.
        self.memory
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn access_of(stored: &str) -> Result<Access> {
    stored
        .parse()
        .map_err(|e: CatalogError| CatalogError::TypeConversion {
            column: "access".into(),
            detail: e.to_string(),
        })
}

/// `jammi_<id>_<secret>` into its id and secret, if it has that shape.
fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.strip_prefix(PREFIX)?.split_once('_')?;
    let is_hex =
        |s: &str, bytes: usize| s.len() == 2 * bytes && s.bytes().all(|b| b.is_ascii_hexdigit());
    (is_hex(id, ID_BYTES) && is_hex(secret, SECRET_BYTES)).then_some((id, secret))
}

/// The stored form of a secret: its SHA-256, in hex.
fn digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

pub(crate) fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| {
        CatalogError::Unsupported(format!("no random numbers from the operating system: {e}"))
    })?;
    Ok(bytes)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_tokens_parse() {
        let token = format!("jammi_{}_{}", "a".repeat(16), "0".repeat(64));
        assert_eq!(
            parse(&token),
            Some(("aaaaaaaaaaaaaaaa", "0".repeat(64).as_str()))
        );
        for bad in [
            "",
            "jammi_",
            "Bearer x",
            &format!("jammi_{}_{}", "a".repeat(15), "0".repeat(64)),
            &format!("jammi_{}_{}", "a".repeat(16), "0".repeat(63)),
            &format!("jammi_{}_{}", "g".repeat(16), "0".repeat(64)),
            &format!("jammi_{}_{}_", "a".repeat(16), "0".repeat(64)),
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn digests_are_hex_sha256() {
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
