//! `delete_model(model_id [, version [, if_exists]]) → BOOLEAN`

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, BooleanBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::async_udf::AsyncScalarUDFImpl;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};

use super::row_arrays;
use crate::error::CatalogError;
use crate::sql::binding::bound_catalog;
use crate::sql::columns::{boolean, int, opt_str, opt_version, req_str, text};

/// The function's SQL name.
pub const DELETE_MODEL: &str = "delete_model";

catalog_udf!(
    /// Deletes one owned model version per row (§4 delete): `true` when a row was deleted,
    /// `false` for an absent row with `if_exists`. NULL version means the latest; NULL
    /// `if_exists` means false.
    /// It holds no scope: each call acts for the session that executes it
    /// (`sql::binding`).
    DeleteModelUdf,
    DELETE_MODEL,
    1..=3,
    "delete_model(model_id [, version [, if_exists]])" -> DataType::Boolean
);

#[async_trait]
impl AsyncScalarUDFImpl for DeleteModelUdf {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let catalog = bound_catalog(&args.config_options)?;
        let rows = args.number_rows;
        let arrays = row_arrays(&args)?;
        let model_id = text(&arrays[0], "model_id")?;
        let version = arrays.get(1).map(|a| int(a, "version")).transpose()?;
        let if_exists = arrays.get(2).map(|a| boolean(a, "if_exists")).transpose()?;

        let mut out = BooleanBuilder::with_capacity(rows);
        for row in 0..rows {
            let at_row = |e: CatalogError| CatalogError::AtRow {
                row: row + 1,
                what: format!("model {:?}", opt_str(&model_id, row).unwrap_or_default()),
                source: Box::new(e),
            };
            let (name, v) = (|| -> crate::error::Result<(&str, Option<i32>)> {
                let name = req_str(&model_id, row, "model_id")?;
                let v = match &version {
                    Some(a) => opt_version(a, row, "version")?,
                    None => None,
                };
                Ok((name, v))
            })()
            .map_err(at_row)?;
            let tolerate = if_exists
                .as_ref()
                .is_some_and(|a| a.is_valid(row) && a.value(row));
            let deleted = catalog
                .delete_model(name, v, tolerate)
                .await
                .map_err(at_row)?;
            out.append_value(deleted);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
