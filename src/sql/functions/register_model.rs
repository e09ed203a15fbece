//! `register_model(model_id, version, model_type, backend, task [, base_model_id
//! [, artifact_path [, config_json]]]) → INT`

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::Int32Builder;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::async_udf::AsyncScalarUDFImpl;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};

use super::row_arrays;
use crate::catalog::RegisterModel;
use crate::error::CatalogError;
use crate::sql::binding::bound_catalog;
use crate::sql::columns::{int, opt_str, opt_version, req_str, text};

/// The function's SQL name.
pub const REGISTER_MODEL: &str = "register_model";

catalog_udf!(
    /// Registers one model version per row (§4 register); returns the version written.
    /// It holds no scope: each call acts for the session that executes it
    /// (`sql::binding`).
    RegisterModelUdf,
    REGISTER_MODEL,
    5..=8,
    "register_model(model_id, version, model_type, backend, task [, base_model_id [, artifact_path [, config_json]]])" -> DataType::Int32
);

#[async_trait]
impl AsyncScalarUDFImpl for RegisterModelUdf {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let catalog = bound_catalog(&args.config_options)?;
        let rows = args.number_rows;
        let arrays = row_arrays(&args)?;
        let get = |i: usize| arrays.get(i);
        let model_id = text(&arrays[0], "model_id")?;
        let version = int(&arrays[1], "version")?;
        let model_type = text(&arrays[2], "model_type")?;
        let backend = text(&arrays[3], "backend")?;
        let task = text(&arrays[4], "task")?;
        let base = get(5).map(|a| text(a, "base_model_id")).transpose()?;
        let path = get(6).map(|a| text(a, "artifact_path")).transpose()?;
        let config = get(7).map(|a| text(a, "config_json")).transpose()?;

        let mut out = Int32Builder::with_capacity(rows);
        for row in 0..rows {
            let params = (|| -> crate::error::Result<RegisterModel> {
                Ok(RegisterModel {
                    model_id: req_str(&model_id, row, "model_id")?.to_owned(),
                    version: opt_version(&version, row, "version")?,
                    model_type: req_str(&model_type, row, "model_type")?.to_owned(),
                    backend: req_str(&backend, row, "backend")?.to_owned(),
                    task: req_str(&task, row, "task")?.parse()?,
                    base_model_id: base
                        .as_ref()
                        .and_then(|a| opt_str(a, row))
                        .map(str::to_owned),
                    artifact_path: path
                        .as_ref()
                        .and_then(|a| opt_str(a, row))
                        .map(str::to_owned),
                    config_json: config
                        .as_ref()
                        .and_then(|a| opt_str(a, row))
                        .map(str::to_owned),
                })
            })()
            .map_err(|e| at_row(row, &model_id, e))?;
            let record = catalog
                .register_model(params)
                .await
                .map_err(|e| at_row(row, &model_id, e))?;
            out.append_value(record.version);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

fn at_row(
    row: usize,
    model_id: &datafusion::arrow::array::StringArray,
    e: CatalogError,
) -> CatalogError {
    CatalogError::AtRow {
        row: row + 1,
        what: match opt_str(model_id, row) {
            Some(name) => format!("model {name:?}"),
            None => "model NULL".to_owned(),
        },
        source: Box::new(e),
    }
}
