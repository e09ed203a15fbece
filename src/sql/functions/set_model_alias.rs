//! `set_model_alias(model_id, alias, version) → BOOLEAN`

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::BooleanBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::async_udf::AsyncScalarUDFImpl;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};

use super::row_arrays;
use crate::error::CatalogError;
use crate::sql::binding::bound_catalog;
use crate::sql::columns::{int, opt_str, opt_version, req_str, text};

/// The function's SQL name.
pub const SET_MODEL_ALIAS: &str = "set_model_alias";

catalog_udf!(
    /// Creates or moves the session's alias per row (SPEC §13): `true` when the alias was
    /// created or moved, `false` when it already pointed at that version. Every argument is
    /// required. It holds no scope: each call acts for the session that executes it
    /// (`sql::binding`).
    SetModelAliasUdf,
    SET_MODEL_ALIAS,
    3..=3,
    "set_model_alias(model_id, alias, version)" -> DataType::Boolean
);

#[async_trait]
impl AsyncScalarUDFImpl for SetModelAliasUdf {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let catalog = bound_catalog(&args.config_options)?;
        let rows = args.number_rows;
        let arrays = row_arrays(&args)?;
        let model_id = text(&arrays[0], "model_id")?;
        let alias = text(&arrays[1], "alias")?;
        let version = int(&arrays[2], "version")?;

        let mut out = BooleanBuilder::with_capacity(rows);
        for row in 0..rows {
            let at_row = |e: CatalogError| CatalogError::AtRow {
                row: row + 1,
                what: format!("alias {:?}", opt_str(&alias, row).unwrap_or_default()),
                source: Box::new(e),
            };
            let set = async {
                let name = req_str(&model_id, row, "model_id")?;
                let alias = req_str(&alias, row, "alias")?;
                let v = opt_version(&version, row, "version")?
                    .ok_or_else(|| CatalogError::invalid("version", "must not be NULL"))?;
                catalog.set_model_alias(name, alias, v).await
            };
            out.append_value(set.await.map_err(at_row)?);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
