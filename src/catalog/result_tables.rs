//! Result tables: Parquet outputs produced by a model (SPEC §4).

use futures::FutureExt;

use super::Catalog;
use super::events::{self, Change, EventKind, Recorded};
use super::models::guard_name_reference;
use super::rows::{self, status_enum};
use crate::clock::now_micros;
use crate::error::{CatalogError, Result};
use crate::store::{DbRow, OwnedWrite, TxOptions, args};
use crate::task::ModelTask;
use crate::tenant::Scope;
use crate::validate;

status_enum! {
    /// Whether a result table can be read.
    ResultTableStatus {
        /// Being written.
        Building => "building",
        /// Complete.
        Ready => "ready",
        /// Abandoned.
        Failed => "failed",
    }
}

/// What [`Catalog::create_result_table`] writes.
#[derive(Clone, Debug, PartialEq)]
pub struct NewResultTable {
    /// The table's name (unique within its owner's scope).
    pub table_name: String,
    /// The input the table was computed from.
    pub source_id: String,
    /// The producing model's name (a name, not a key).
    pub model_id: String,
    /// The producing model's task.
    pub task: ModelTask,
    /// Where the Parquet data lives.
    pub parquet_path: String,
    /// Rows in the table, when known.
    pub row_count: Option<i64>,
    /// Whether it can be read.
    pub status: ResultTableStatus,
}

impl NewResultTable {
    /// Checks every field against SPEC §9.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        validate::name("table_name", &self.table_name)?;
        validate::non_empty("source_id", &self.source_id)?;
        validate::name("model_id", &self.model_id)?;
        validate::non_empty("parquet_path", &self.parquet_path)?;
        if let Some(n) = self.row_count
            && n < 0
        {
            return Err(CatalogError::invalid(
                "row_count",
                format!("must not be negative, got {n}"),
            ));
        }
        Ok(())
    }
}

/// One result table, as stored. Its serde form is its row in `jammi.public.result_tables`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResultTable {
    /// The table's name.
    pub table_name: String,
    /// The input it was computed from.
    pub source_id: String,
    /// The producing model's name.
    pub model_id: String,
    /// The producing model's task.
    pub task: ModelTask,
    /// Where the Parquet data lives.
    pub parquet_path: String,
    /// Rows in the table, when known.
    pub row_count: Option<i64>,
    /// Whether it can be read.
    pub status: ResultTableStatus,
    /// The owning tenant; `None` for a global table.
    pub tenant_id: Scope,
    /// Creation time (µs since the epoch, UTC).
    pub created_at: i64,
}

macro_rules! table_columns {
    () => {
        "owner, table_name, source_id, model_id, task, parquet_path, row_count, status, created_at"
    };
}

const INSERT: OwnedWrite = OwnedWrite::new(concat!(
    "INSERT INTO result_tables (owner, table_name, source_id, model_id, task, parquet_path, \
       row_count, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT DO NOTHING RETURNING ",
    table_columns!()
));
const GET: &str = concat!(
    "SELECT ",
    table_columns!(),
    " FROM result_tables WHERE table_name = $1 AND owner IN ($2, '') ORDER BY owner = '' LIMIT 1"
);
const LIST: &str = concat!(
    "SELECT ",
    table_columns!(),
    " FROM result_tables WHERE owner IN ($1, '') ORDER BY created_at, table_name"
);
const SET_STATUS: OwnedWrite = OwnedWrite::new(concat!(
    "UPDATE result_tables SET status = $3, row_count = COALESCE($4, row_count) \
     WHERE owner = $1 AND table_name = $2 RETURNING ",
    table_columns!()
));
const DELETE: OwnedWrite = OwnedWrite::new(concat!(
    "DELETE FROM result_tables WHERE owner = $1 AND table_name = $2 RETURNING ",
    table_columns!()
));

impl Recorded for ResultTable {
    fn row_key(&self) -> String {
        self.table_name.clone()
    }

    fn model_ref(&self) -> (Option<&str>, Option<i32>) {
        (Some(&self.model_id), None)
    }
}

pub(super) fn table_from_row(row: &DbRow) -> Result<ResultTable> {
    Ok(ResultTable {
        table_name: row.text("table_name")?,
        source_id: row.text("source_id")?,
        model_id: row.text("model_id")?,
        task: rows::parsed(row, "task")?,
        parquet_path: row.text("parquet_path")?,
        row_count: row.opt_int("row_count")?,
        status: rows::parsed(row, "status")?,
        tenant_id: rows::owner(row)?,
        created_at: row.int("created_at")?,
    })
}

/// Creates one result table inside an open serializable transaction (shared with SQL
/// `INSERT`).
pub(crate) async fn create_in(
    tx: &mut crate::store::Tx,
    table: &NewResultTable,
) -> Result<ResultTable> {
    guard_name_reference(tx, &table.model_id).await?;
    let args = args![
        table.table_name.as_str(),
        table.source_id.as_str(),
        table.model_id.as_str(),
        table.task.as_str(),
        table.parquet_path.as_str(),
        table.row_count,
        table.status.as_str(),
        now_micros(),
    ];
    let rows = tx.write_returning(&INSERT, &args).await?;
    match rows.first() {
        Some(row) => {
            let created = table_from_row(row)?;
            events::record(
                tx,
                &[Change::written(EventKind::ResultTableCreated, &created)?],
            )
            .await?;
            Ok(created)
        }
        None => Err(CatalogError::AlreadyExists {
            kind: "result table",
            id: table.table_name.clone(),
        }),
    }
}

impl Catalog {
    /// Records a result table owned by the caller's scope.
    ///
    /// # Errors
    /// [`CatalogError::InvalidInput`], [`CatalogError::AlreadyExists`] for a taken name.
    pub async fn create_result_table(&self, table: NewResultTable) -> Result<ResultTable> {
        table.validate()?;
        self.transaction(TxOptions::serializable(), |tx| {
            let table = table.clone();
            async move { create_in(tx, &table).await }.boxed()
        })
        .await
    }

    /// A visible result table, the caller's own preferred over a global one.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`].
    pub async fn get_result_table(&self, table_name: &str) -> Result<ResultTable> {
        self.get_visible(GET, "result table", table_name, table_from_row)
            .await
    }

    /// Every visible result table, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_result_tables(&self) -> Result<Vec<ResultTable>> {
        self.list_visible(LIST, table_from_row).await
    }

    /// Sets the status (and, when given, the row count) of a result table the caller owns.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`] when the caller owns no such table;
    /// [`CatalogError::InvalidInput`] for a bad row count or a name holding NUL.
    pub async fn set_result_table_status(
        &self,
        table_name: &str,
        status: ResultTableStatus,
        row_count: Option<i64>,
    ) -> Result<()> {
        validate::text("table_name", table_name)?;
        if let Some(n) = row_count
            && n < 0
        {
            return Err(CatalogError::invalid(
                "row_count",
                format!("must not be negative, got {n}"),
            ));
        }
        let updated = self
            .transaction(TxOptions::write(), |tx| {
                let args = args![table_name, status.as_str(), row_count];
                async move {
                    let rows = tx.write_returning(&SET_STATUS, &args).await?;
                    let changes = rows
                        .iter()
                        .map(|row| {
                            Change::written(EventKind::ResultTableStatusSet, &table_from_row(row)?)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    events::record(tx, &changes).await?;
                    Ok(rows.len())
                }
                .boxed()
            })
            .await?;
        if updated == 0 {
            return Err(super::not_found("result table", table_name));
        }
        Ok(())
    }

    /// Deletes a result table the caller owns.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`] when the caller owns no such table;
    /// [`CatalogError::InvalidInput`] for a name holding NUL.
    pub async fn delete_result_table(&self, table_name: &str) -> Result<()> {
        self.delete_owned(
            &DELETE,
            "result table",
            "table_name",
            table_name,
            table_from_row,
            EventKind::ResultTableDeleted,
        )
        .await
    }
}
