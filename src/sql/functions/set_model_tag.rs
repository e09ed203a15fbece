//! `set_model_tag(model_id, version, key, value) → BOOLEAN`

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
pub const SET_MODEL_TAG: &str = "set_model_tag";

catalog_udf!(
    /// Sets a tag on a model version the session owns, per row (SPEC §13): `true` when the
    /// tag was created or its value changed. Every argument is required. It holds no scope:
    /// each call acts for the session that executes it (`sql::binding`).
    SetModelTagUdf,
    SET_MODEL_TAG,
    4..=4,
    "set_model_tag(model_id, version, key, value)" -> DataType::Boolean
);

#[async_trait]
impl AsyncScalarUDFImpl for SetModelTagUdf {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let catalog = bound_catalog(&args.config_options)?;
        let rows = args.number_rows;
        let arrays = row_arrays(&args)?;
        let model_id = text(&arrays[0], "model_id")?;
        let version = int(&arrays[1], "version")?;
        let key = text(&arrays[2], "key")?;
        let value = text(&arrays[3], "value")?;

        let mut out = BooleanBuilder::with_capacity(rows);
        for row in 0..rows {
            let at_row = |e: CatalogError| CatalogError::AtRow {
                row: row + 1,
                what: format!("tag {:?}", opt_str(&key, row).unwrap_or_default()),
                source: Box::new(e),
            };
            let set = async {
                let name = req_str(&model_id, row, "model_id")?;
                let v = opt_version(&version, row, "version")?
                    .ok_or_else(|| CatalogError::invalid("version", "must not be NULL"))?;
                let key = req_str(&key, row, "key")?;
                let value = req_str(&value, row, "value")?;
                catalog.set_model_tag(name, v, key, value).await
            };
            out.append_value(set.await.map_err(at_row)?);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
