//! Aliases (SPEC §13): a named pointer from a model name to one of its versions
//! (`champion`, `production`), owned by a scope.
//!
//! An alias stores the key of the row it resolved to when it was set (the caller's own
//! version, else a global one), so the version counts as referenced for delete: an alias
//! never dangles. Moving an alias is one upsert; resolution prefers the caller's own alias
//! over a global one of the same name, as model lookup prefers own rows.

use futures::FutureExt;

use super::Catalog;
use super::events::{self, Change, EventKind, Recorded};
use super::models::{GET_BY_ALIAS, ModelRecord, model_from_row, resolve_in};
use super::rows;
use crate::clock::now_micros;
use crate::error::{CatalogError, Result};
use crate::store::{DbRow, OwnedWrite, Tx, TxOptions, args};
use crate::tenant::{Scope, owner_of};
use crate::validate;

/// One alias, as stored. Its serde form is its row in `jammi.public.model_aliases`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelAlias {
    /// The model's name.
    pub model_id: String,
    /// The alias, e.g. `champion`.
    pub alias: String,
    /// The version it points at.
    pub version: i32,
    /// The owning tenant; `None` for a global alias.
    pub tenant_id: Scope,
    /// When the alias was first set (µs since the epoch, UTC).
    pub created_at: i64,
    /// When it was last moved (µs since the epoch, UTC).
    pub updated_at: i64,
}

impl Recorded for ModelAlias {
    fn row_key(&self) -> String {
        format!("{}::{}", self.model_id, self.alias)
    }

    fn model_ref(&self) -> (Option<&str>, Option<i32>) {
        (Some(&self.model_id), Some(self.version))
    }
}

macro_rules! alias_columns {
    () => {
        "owner, model_id, alias, version, created_at, updated_at"
    };
}

/// Creates or moves the caller's alias; an alias already on that row is left alone
/// (no row returned, no event).
const SET: OwnedWrite = OwnedWrite::new(concat!(
    "INSERT INTO model_aliases (owner, model_id, alias, version, model_key, created_at, \
       updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
     ON CONFLICT (owner, model_id, alias) DO UPDATE SET version = excluded.version, \
       model_key = excluded.model_key, updated_at = excluded.updated_at \
     WHERE model_aliases.owner = excluded.owner \
       AND model_aliases.model_key <> excluded.model_key \
     RETURNING ",
    alias_columns!()
));

const REMOVE: OwnedWrite = OwnedWrite::new(concat!(
    "DELETE FROM model_aliases WHERE owner = $1 AND model_id = $2 AND alias = $3 RETURNING ",
    alias_columns!()
));

const LIST: &str = concat!(
    "SELECT ",
    alias_columns!(),
    " FROM model_aliases WHERE owner IN ($1, '') ORDER BY created_at, model_id, alias"
);

pub(super) fn alias_from_row(row: &DbRow) -> Result<ModelAlias> {
    Ok(ModelAlias {
        model_id: row.text("model_id")?,
        alias: row.text("alias")?,
        version: row.int32("version")?,
        tenant_id: rows::owner(row)?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
    })
}

/// Checks an alias write against SPEC §9 / §13.
pub(crate) fn validate_alias(model_id: &str, alias: &str, version: i32) -> Result<()> {
    validate::name("model_id", model_id)?;
    alias_name(alias)?;
    validate::version("version", version)
}

/// An alias name: a label (1–128 characters, no control characters) that does not start
/// with `:`. A model name may end with `:`, so without that rule the aliases `:x` of `m`
/// and `x` of `m:` would share the row key `m:::x` in the event log.
fn alias_name(alias: &str) -> Result<()> {
    validate::label("alias", alias)?;
    if alias.starts_with(':') {
        return Err(CatalogError::invalid("alias", "must not start with ':'"));
    }
    Ok(())
}

/// Points the caller's `alias` of `model_id` at `version` (resolved by the get rule: own
/// row first) inside an open serializable transaction. `true` when the alias was created
/// or moved, `false` when it already pointed there. The inputs must be validated.
pub(crate) async fn set_in(tx: &mut Tx, model_id: &str, alias: &str, version: i32) -> Result<bool> {
    let (key, model) = resolve_in(tx, model_id, Some(version)).await?;
    let rows = tx
        .write_returning(
            &SET,
            &args![model_id, alias, model.version, key, now_micros()],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(false);
    };
    let set = alias_from_row(row)?;
    events::record(tx, &[Change::written(EventKind::AliasSet, &set)?]).await?;
    Ok(true)
}

/// Removes the caller's own alias inside an open transaction: `true` when there was one.
pub(crate) async fn remove_in(tx: &mut Tx, model_id: &str, alias: &str) -> Result<bool> {
    let rows = tx.write_returning(&REMOVE, &args![model_id, alias]).await?;
    let Some(row) = rows.first() else {
        return Ok(false);
    };
    let removed = alias_from_row(row)?;
    events::record(tx, &[Change::removed(EventKind::AliasRemoved, &removed)]).await?;
    Ok(true)
}

impl Catalog {
    /// Points the caller's alias `alias` of `model_id` at `version`, creating it or moving
    /// it in one atomic write. The version is resolved like
    /// [`Catalog::get_model_version`] (the caller's own row first, else a global one), and
    /// while the alias points at it that row cannot be deleted. Returns `true` when the
    /// alias was created or moved, `false` when it already pointed at that row.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] (alias: 1–128 characters, no control characters),
    /// [`CatalogError::ModelNotFound`] when no visible row has that version.
    pub async fn set_model_alias(&self, model_id: &str, alias: &str, version: i32) -> Result<bool> {
        validate_alias(model_id, alias, version)?;
        self.transaction(TxOptions::serializable(), |tx| {
            let (model_id, alias) = (model_id.to_owned(), alias.to_owned());
            async move { set_in(tx, &model_id, &alias, version).await }.boxed()
        })
        .await
    }

    /// Removes the caller's own alias `alias` of `model_id`: `true` when it existed. A
    /// global alias cannot be removed from a tenant's handle (it answers `false`, as for
    /// an alias that does not exist).
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`].
    pub async fn remove_model_alias(&self, model_id: &str, alias: &str) -> Result<bool> {
        validate::name("model_id", model_id)?;
        alias_name(alias)?;
        self.transaction(TxOptions::write(), |tx| {
            let (model_id, alias) = (model_id.to_owned(), alias.to_owned());
            async move { remove_in(tx, &model_id, &alias).await }.boxed()
        })
        .await
    }

    /// The model version `alias` points at: the caller's own alias preferred over a
    /// global one of the same name.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`] when no visible alias has that name.
    pub async fn resolve_model_alias(&self, model_id: &str, alias: &str) -> Result<ModelRecord> {
        let row = if model_id.contains('\0') || alias.contains('\0') {
            None
        } else {
            self.store()
                .fetch_optional(
                    GET_BY_ALIAS,
                    &args![model_id, alias, owner_of(self.scope())],
                )
                .await?
        };
        match row {
            Some(row) => model_from_row(&row),
            None => Err(CatalogError::NotFound {
                kind: "model alias",
                id: format!("{model_id}@{alias}"),
            }),
        }
    }

    /// Every visible alias (the caller's own and global ones), oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_model_aliases(&self) -> Result<Vec<ModelAlias>> {
        self.list_visible(LIST, alias_from_row).await
    }

    /// The visible aliases as they were at `at` (µs since the epoch, UTC), replayed from
    /// the event log, ordered as [`Catalog::list_model_aliases`] orders them.
    ///
    /// # Errors
    /// Database errors.
    pub async fn model_aliases_as_of(&self, at: i64) -> Result<Vec<ModelAlias>> {
        let mut aliases: Vec<ModelAlias> = self.replay_until("model_aliases", at).await?;
        aliases.sort_by(|a, b| {
            (a.created_at, &a.model_id, &a.alias).cmp(&(b.created_at, &b.model_id, &b.alias))
        });
        Ok(aliases)
    }
}
