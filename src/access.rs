//! Access levels: what a handle may do in its scope (SPEC §14).
//!
//! A [`Grant`] is what every catalog handle, SQL session and store transaction acts with:
//! a scope (whose rows) and an [`Access`] level (what it may do to them). The rule that
//! compares them is [`Access::require`], and the table of which work needs which level is
//! this module's [`Access::to_delete_from`] and the levels the store's statements and the
//! SQL layer's functions declare:
//!
//! | work | level |
//! |---|---|
//! | queries, metadata, `EXPLAIN` of a query, time travel | `read` |
//! | register / upsert models, `INSERT` into any table, set or remove aliases and tags | `write` |
//! | training-job and eval-run writes, result-table status | `write` |
//! | delete models and versions, delete eval runs, result tables or training jobs | `admin` |
//!
//! Where it is enforced: the store checks a transaction's declared level against its grant
//! before the transaction begins (so a refused operation reads nothing), and checks every
//! write statement's own level against the grant before it runs (so an operation that
//! declared too little still cannot write). Every write of the catalog goes through a store
//! transaction: the Rust API, the SQL functions, `INSERT` and `DELETE`, and therefore
//! Python's `execute` and every Flight SQL path. The SQL layer also refuses a statement
//! while planning, with the statement's own words, before any scan runs.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use crate::error::{CatalogError, Result};
use crate::tenant::Scope;

/// What a credential may do, from least to most: each level allows everything the one
/// below it allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// Queries, metadata and time travel; no write of any kind.
    Read,
    /// `Read`, plus registering models, `INSERT`, aliases and tags (set and remove),
    /// training-job, eval-run and result-table writes.
    Write,
    /// `Write`, plus deleting models, eval runs, result tables and training jobs.
    Admin,
}

impl Access {
    /// Every level, weakest first.
    pub const ALL: [Access; 3] = [Access::Read, Access::Write, Access::Admin];

    /// The level's name: `read`, `write` or `admin` (also what [`FromStr`] reads).
    pub const fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Admin => "admin",
        }
    }

    /// Whether work that needs `needed` is allowed at this level.
    pub fn allows(self, needed: Access) -> bool {
        self >= needed
    }

    /// The one check of the rule: `Ok` when this level allows `needed`, else
    /// [`CatalogError::PermissionDenied`] naming `action` and the level it needs.
    ///
    /// # Errors
    /// [`CatalogError::PermissionDenied`].
    pub fn require(self, needed: Access, action: impl Into<Cow<'static, str>>) -> Result<()> {
        if self.allows(needed) {
            return Ok(());
        }
        Err(CatalogError::PermissionDenied {
            action: action.into(),
            needed,
            granted: self,
        })
    }

    /// The level a `DELETE` of rows of the storage table `table` needs: removing an alias
    /// or a tag is a write like setting one; removing any other row is an admin's.
    pub const fn to_delete_from(table: &str) -> Access {
        Access::to_delete_from_bytes(table.as_bytes())
    }

    /// [`Access::to_delete_from`] for a table name as bytes (the store's statement check
    /// runs at compile time, where a `&str` cannot be sliced).
    pub(crate) const fn to_delete_from_bytes(t: &[u8]) -> Access {
        if eq_ignore_case(t, b"model_aliases") || eq_ignore_case(t, b"model_tags") {
            Access::Write
        } else {
            Access::Admin
        }
    }

    /// What work at exactly this level is, for messages about the store's own checks.
    pub(crate) const fn work(self) -> &'static str {
        match self {
            Access::Read => "reading the catalog",
            Access::Write => "writing to the catalog",
            Access::Admin => "deleting models, eval runs, result tables or training jobs",
        }
    }
}

const fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if !a[i].eq_ignore_ascii_case(&b[i]) {
            return false;
        }
        i += 1;
    }
    true
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Access {
    type Err = CatalogError;

    fn from_str(s: &str) -> Result<Self> {
        Access::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                CatalogError::invalid(
                    "access",
                    format!("{s:?} is not an access level; use read, write or admin"),
                )
            })
    }
}

/// What a handle acts with: its scope (whose rows) and its access level (what it may do).
///
/// Handles narrow it ([`Grant::narrowed`]) and never widen it; only the host application,
/// which decides who its caller is, builds one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Grant {
    /// Whose rows: a tenant, or `None` (global rows only).
    pub scope: Scope,
    /// What it may do to them.
    pub access: Access,
}

impl Grant {
    /// Full access in `scope`: what the host application holds for itself.
    pub fn full(scope: Scope) -> Grant {
        Grant {
            scope,
            access: Access::Admin,
        }
    }

    /// The same scope with at most `access`: the lower of the two levels, so narrowing
    /// never widens.
    pub fn narrowed(self, access: Access) -> Grant {
        Grant {
            scope: self.scope,
            access: self.access.min(access),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_parse_as_they_print() {
        assert!(Access::Read < Access::Write && Access::Write < Access::Admin);
        for level in Access::ALL {
            assert_eq!(level.as_str().parse::<Access>().unwrap(), level);
            assert_eq!(
                level.to_string().to_uppercase().parse::<Access>().unwrap(),
                level
            );
        }
        let err = "owner".parse::<Access>().unwrap_err().to_string();
        assert!(err.contains("read, write or admin"), "{err}");
    }

    #[test]
    fn narrowing_never_widens() {
        for granted in Access::ALL {
            for asked in Access::ALL {
                let narrowed = Grant {
                    scope: None,
                    access: granted,
                }
                .narrowed(asked);
                assert_eq!(narrowed.access, granted.min(asked));
            }
        }
    }

    #[test]
    fn require_names_the_action_and_both_levels() {
        assert!(Access::Admin.require(Access::Admin, "x").is_ok());
        let err = Access::Write
            .require(Access::Admin, "delete_model")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "permission denied: delete_model needs admin access; this credential has write \
             access"
        );
    }

    #[test]
    fn removing_aliases_and_tags_is_a_write_and_other_deletes_are_an_admins() {
        assert_eq!(Access::to_delete_from("model_aliases"), Access::Write);
        assert_eq!(Access::to_delete_from("MODEL_TAGS"), Access::Write);
        for table in [
            "models",
            "eval_runs",
            "result_tables",
            "training_jobs",
            "events",
        ] {
            assert_eq!(Access::to_delete_from(table), Access::Admin, "{table}");
        }
    }
}
