//! API tokens: how a server maps a caller to a scope (SPEC §11).
//!
//! A token is `jammi_<id>_<secret>`: a 64-bit public id (hex), by which its row is found,
//! and a 256-bit secret (hex) from the operating system's generator. The database keeps the
//! id, the SHA-256 of the secret and the scope; the secret itself is shown once, by
//! [`Tokens::create`], and never stored or logged. Checking a token compares digests in
//! constant time, and reads the row on every call, so a revocation holds from the next call.
//!
//! Administration is the operator's: [`Tokens`] is built only from an unscoped catalog. The
//! table (`api_tokens`) is not one of the SQL tables of `jammi.public`.

use futures::FutureExt;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::catalog::Catalog;
use crate::clock::now_micros;
use crate::error::{CatalogError, Result};
use crate::store::{Store, TxOptions, args};
use crate::tenant::{Scope, owner_of, scope_of_owner};

/// What a token's row says, without its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// The operator's name for the token, unique among live tokens.
    pub label: String,
    /// The scope every call with this token runs in (`None`: unscoped, global rows only).
    pub tenant: Scope,
    /// When it was created, microseconds since the Unix epoch (UTC).
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
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
#[derive(Clone, Debug)]
pub struct Tokens {
    store: Store,
}

const PREFIX: &str = "jammi_";
/// Bytes of the public id and of the secret.
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

const INSERT: &str = "INSERT INTO api_tokens (label, token_id, secret_hash, owner, created_at, \
    revoked_at) VALUES ($1, $2, $3, $4, $5, NULL)";
const DELETE_REVOKED: &str = "DELETE FROM api_tokens WHERE label = $1 AND revoked_at IS NOT NULL";
const LIVE: &str = "SELECT 1 AS live FROM api_tokens WHERE label = $1";
const LIST: &str = "SELECT label, owner, created_at, revoked_at FROM api_tokens ORDER BY label";
const REVOKE: &str =
    "UPDATE api_tokens SET revoked_at = $2 WHERE label = $1 AND revoked_at IS NULL";
const BY_ID: &str = "SELECT secret_hash, owner, revoked_at FROM api_tokens WHERE token_id = $1";

impl Tokens {
    /// Token administration for `catalog`'s database.
    ///
    /// # Errors
    /// [`CatalogError::Unsupported`] when `catalog` is scoped to a tenant: tokens are the
    /// operator's, who works unscoped.
    pub fn new(catalog: &Catalog) -> Result<Tokens> {
        if catalog.scope().is_some() {
            return Err(CatalogError::Unsupported(
                "tokens are administered from an unscoped catalog (the operator's role)".into(),
            ));
        }
        Ok(Tokens {
            store: catalog.store().clone(),
        })
    }

    /// Creates a token labelled `label` for `tenant` (`None`: unscoped). A label that only
    /// a revoked token has is taken over.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] for an empty label or one with control characters,
    /// [`CatalogError::AlreadyExists`] when a live token has the label, database errors.
    pub async fn create(&self, label: &str, tenant: Scope) -> Result<CreatedToken> {
        crate::validate::name("label", label)?;
        let id = hex(&random::<ID_BYTES>()?);
        let secret = hex(&random::<SECRET_BYTES>()?);
        let info = TokenInfo {
            label: label.to_owned(),
            tenant,
            created_at: now_micros(),
            revoked_at: None,
        };
        let row = args![
            info.label.clone(),
            id.clone(),
            digest(&secret),
            owner_of(tenant),
            info.created_at
        ];
        let written = self
            .store
            .transaction(None, TxOptions::write(), |tx| {
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
        Ok(CreatedToken {
            info,
            token: format!("{PREFIX}{id}_{secret}"),
        })
    }

    /// Every token, live and revoked, by label.
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
                    created_at: row.int("created_at")?,
                    revoked_at: row.opt_int("revoked_at")?,
                })
            })
            .collect()
    }

    /// Revokes the live token labelled `label`; `false` when there is none.
    ///
    /// # Errors
    /// Database errors.
    pub async fn revoke(&self, label: &str) -> Result<bool> {
        crate::validate::text("label", label)?;
        let row = args![label.to_owned(), now_micros()];
        let revoked = self
            .store
            .transaction(None, TxOptions::write(), |tx| {
                let row = row.clone();
                async move { tx.write_tokens(REVOKE, &row).await }.boxed()
            })
            .await?;
        Ok(revoked > 0)
    }

    /// The scope of a live token, or `None` for anything else (malformed, unknown,
    /// revoked), without saying which.
    ///
    /// # Errors
    /// Database errors only.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Scope>> {
        let Some((id, secret)) = parse(token) else {
            return Ok(None);
        };
        let row = self
            .store
            .fetch_optional(BY_ID, &args![id.to_owned()])
            .await?;
        let presented = digest(secret);
        let Some(row) = row else {
            return Ok(None);
        };
        let stored = row.text("secret_hash")?;
        let matches: bool = presented.as_bytes().ct_eq(stored.as_bytes()).into();
        if !matches || row.opt_int("revoked_at")?.is_some() {
            return Ok(None);
        }
        Ok(Some(scope_of_owner(&row.text("owner")?)?))
    }
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

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| {
        CatalogError::Unsupported(format!("no random numbers from the operating system: {e}"))
    })?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
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
