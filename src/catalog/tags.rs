//! Tags (SPEC §13): key/value strings on a model version, owned by the version's owner.
//!
//! Only the owner of a version tags it (a tenant cannot tag a global model); every scope
//! that sees the version sees its tags. Deleting a version removes its tags, each with its
//! own event, in the delete's transaction.

use futures::FutureExt;

use super::Catalog;
use super::events::{self, Change, EventKind, Recorded};
use super::models::FIND_OWNED_VERSION;
use super::rows;
use crate::clock::now_micros;
use crate::error::{CatalogError, Result};
use crate::store::{DbRow, OwnedWrite, Tx, TxOptions, args};
use crate::tenant::Scope;
use crate::validate;

/// One tag, as stored. Its serde form is its row in `jammi.public.model_tags`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelTag {
    /// The model's name.
    pub model_id: String,
    /// The tagged version.
    pub version: i32,
    /// The tag's key.
    pub key: String,
    /// Its value.
    pub value: String,
    /// The owner of the version (and so of the tag); `None` for a global one.
    pub tenant_id: Scope,
    /// When the tag was first set (µs since the epoch, UTC).
    pub created_at: i64,
    /// When its value last changed (µs since the epoch, UTC).
    pub updated_at: i64,
}

impl Recorded for ModelTag {
    fn row_key(&self) -> String {
        format!("{}::{}::{}", self.model_id, self.version, self.key)
    }

    fn model_ref(&self) -> (Option<&str>, Option<i32>) {
        (Some(&self.model_id), Some(self.version))
    }
}

macro_rules! tag_columns {
    () => {
        "owner, model_id, version, key, value, created_at, updated_at"
    };
}

/// Creates the tag or gives it a new value; the same value again is left alone (no row
/// returned, no event).
const SET: OwnedWrite = OwnedWrite::new(concat!(
    "INSERT INTO model_tags (owner, model_key, model_id, version, key, value, created_at, \
       updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
     ON CONFLICT (model_key, key) DO UPDATE SET value = excluded.value, \
       updated_at = excluded.updated_at \
     WHERE model_tags.owner = excluded.owner AND model_tags.value <> excluded.value \
     RETURNING ",
    tag_columns!()
));

const REMOVE: OwnedWrite = OwnedWrite::new(concat!(
    "DELETE FROM model_tags WHERE owner = $1 AND model_id = $2 AND version = $3 AND key = $4 \
     RETURNING ",
    tag_columns!()
));

const REMOVE_OF_MODEL: OwnedWrite = OwnedWrite::new(concat!(
    "DELETE FROM model_tags WHERE owner = $1 AND model_key = $2 RETURNING ",
    tag_columns!()
));

const LIST: &str = concat!(
    "SELECT ",
    tag_columns!(),
    " FROM model_tags WHERE owner IN ($1, '') ORDER BY created_at, model_id, version, key"
);

pub(super) fn tag_from_row(row: &DbRow) -> Result<ModelTag> {
    Ok(ModelTag {
        model_id: row.text("model_id")?,
        version: row.int32("version")?,
        key: row.text("key")?,
        value: row.text("value")?,
        tenant_id: rows::owner(row)?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
    })
}

/// Checks a tag write against SPEC §9 / §13 (the value: any text without NUL).
pub(crate) fn validate_tag(model_id: &str, version: i32, key: &str, value: &str) -> Result<()> {
    validate::name("model_id", model_id)?;
    validate::version("version", version)?;
    validate::label("key", key)?;
    validate::text("value", value)
}

/// Sets a tag on a version the caller owns, inside an open transaction: `true` when the
/// tag was created or its value changed. The inputs must be validated.
pub(crate) async fn set_in(
    tx: &mut Tx,
    model_id: &str,
    version: i32,
    key: &str,
    value: &str,
) -> Result<bool> {
    let owner = tx.owner();
    let Some(model) = tx
        .fetch_optional(FIND_OWNED_VERSION, &args![model_id, owner, version])
        .await?
    else {
        return Err(CatalogError::ModelNotFound {
            model: model_id.to_owned(),
            version: Some(version),
        });
    };
    let rows = tx
        .write_returning(
            &SET,
            &args![
                model.text("model_key")?,
                model_id,
                version,
                key,
                value,
                now_micros()
            ],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(false);
    };
    let tag = tag_from_row(row)?;
    events::record(tx, &[Change::written(EventKind::TagSet, &tag)?]).await?;
    Ok(true)
}

/// Removes a tag the caller owns inside an open transaction: `true` when there was one.
pub(crate) async fn remove_in(
    tx: &mut Tx,
    model_id: &str,
    version: i32,
    key: &str,
) -> Result<bool> {
    let rows = tx
        .write_returning(&REMOVE, &args![model_id, version, key])
        .await?;
    let Some(row) = rows.first() else {
        return Ok(false);
    };
    let tag = tag_from_row(row)?;
    events::record(tx, &[Change::removed(EventKind::TagRemoved, &tag)]).await?;
    Ok(true)
}

/// Removes every tag of the caller's model row `model_key` (which is being deleted) and
/// returns their events, for the delete to append with its own.
pub(super) async fn delete_of_model_in(tx: &mut Tx, model_key: &str) -> Result<Vec<Change>> {
    let rows = tx
        .write_returning(&REMOVE_OF_MODEL, &args![model_key])
        .await?;
    Change::removed_rows(EventKind::TagRemoved, &rows, tag_from_row)
}

impl Catalog {
    /// Sets tag `key` of a model version the caller owns to `value` (an upsert). Returns
    /// `true` when the tag was created or its value changed.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] (key: 1–128 characters, no control characters;
    /// value: no NUL), [`CatalogError::ModelNotFound`] when the caller owns no such
    /// version (a global version is tagged from an unscoped handle).
    pub async fn set_model_tag(
        &self,
        model_id: &str,
        version: i32,
        key: &str,
        value: &str,
    ) -> Result<bool> {
        validate_tag(model_id, version, key, value)?;
        // Serializable, as every write that points at a model row: a concurrent delete of
        // the version conflicts with it (and is retried) rather than failing its foreign key.
        self.transaction(TxOptions::serializable(), |tx| {
            let (model_id, key, value) = (model_id.to_owned(), key.to_owned(), value.to_owned());
            async move { set_in(tx, &model_id, version, &key, &value).await }.boxed()
        })
        .await
    }

    /// Removes tag `key` of a model version the caller owns: `true` when it existed.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`].
    pub async fn remove_model_tag(&self, model_id: &str, version: i32, key: &str) -> Result<bool> {
        validate::name("model_id", model_id)?;
        validate::version("version", version)?;
        validate::label("key", key)?;
        self.transaction(TxOptions::write(), |tx| {
            let (model_id, key) = (model_id.to_owned(), key.to_owned());
            async move { remove_in(tx, &model_id, version, &key).await }.boxed()
        })
        .await
    }

    /// Every visible tag (on the caller's own versions and on global ones), oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_model_tags(&self) -> Result<Vec<ModelTag>> {
        self.list_visible(LIST, tag_from_row).await
    }
}
