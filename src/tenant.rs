//! Tenants and scopes (SPEC §2).

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::error::{CatalogError, Result};

/// The id of a tenant: a UUID that is not nil, written lowercase-hyphenated.
///
/// The catalog never invents tenant ids; the host application passes them in.
///
/// Serde uses the same spelling (it is how events record a row's owner).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(Uuid);

/// The scope a catalog handle or SQL session is bound to: a tenant, or `None` (unscoped,
/// which reads and writes only global rows).
pub type Scope = Option<TenantId>;

impl TenantId {
    /// Wraps a UUID.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] for the nil UUID.
    pub fn new(id: Uuid) -> Result<Self> {
        if id.is_nil() {
            return Err(CatalogError::invalid(
                "tenant",
                "the nil UUID is not a tenant id",
            ));
        }
        Ok(TenantId(id))
    }

    /// A fresh random tenant id (for tests and examples; real ids come from the host).
    pub fn random() -> Self {
        TenantId(Uuid::new_v4())
    }

    /// The UUID inside.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Uuid's Display is the lowercase hyphenated form, the only spelling we store.
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for TenantId {
    type Err = CatalogError;

    fn from_str(s: &str) -> Result<Self> {
        let id = Uuid::parse_str(s.trim())
            .map_err(|e| CatalogError::invalid("tenant", format!("{s:?} is not a UUID ({e})")))?;
        TenantId::new(id)
    }
}

impl TryFrom<String> for TenantId {
    type Error = CatalogError;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<TenantId> for String {
    fn from(t: TenantId) -> String {
        t.to_string()
    }
}

/// The value stored in the `owner` column for a scope: the tenant id, or `""` for global.
///
/// Storage keeps global rows as the empty string rather than NULL so that one indexed
/// equality (`owner = $1`, `owner IN ($1, '')`) serves both kinds of scope on both
/// backends; every SQL view maps `''` back to a NULL `tenant_id`.
pub(crate) fn owner_of(scope: Scope) -> String {
    scope.map(|t| t.to_string()).unwrap_or_default()
}

/// The inverse of [`owner_of`], for rows read back from storage.
pub(crate) fn scope_of_owner(owner: &str) -> Result<Scope> {
    if owner.is_empty() {
        return Ok(None);
    }
    owner
        .parse::<TenantId>()
        .map(Some)
        .map_err(|e| CatalogError::TypeConversion {
            column: "owner".into(),
            detail: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nil_uuid_is_rejected() {
        let err = "00000000-0000-0000-0000-000000000000"
            .parse::<TenantId>()
            .unwrap_err();
        assert!(err.to_string().contains("tenant"), "{err}");
    }

    #[test]
    fn display_is_lowercase_hyphenated() {
        let t: TenantId = "A1B2C3D4-0000-4000-8000-00000000000F".parse().unwrap();
        assert_eq!(t.to_string(), "a1b2c3d4-0000-4000-8000-00000000000f");
    }

    #[test]
    fn owner_round_trips() {
        let t = TenantId::random();
        assert_eq!(scope_of_owner(&owner_of(Some(t))).unwrap(), Some(t));
        assert_eq!(scope_of_owner(&owner_of(None)).unwrap(), None);
    }
}
