//! The catalog's SQL functions (SPEC §7, §13): asynchronous, volatile scalar UDFs that act for
//! the scope of the session executing them (`sql::binding`). DataFusion 55 evaluates
//! async UDFs only at execution (never while planning, constant folding or for
//! `EXPLAIN`), and evaluates them over the *whole* input of the plan node that holds
//! them, before any CASE, COALESCE, AND/OR or the rest of a filter; so the catalog accepts
//! them only where that is exactly what the statement says (`sql::placement`).
//!
//! Each row is its own call: one row's error fails the statement, but rows already
//! registered stay registered. Use `INSERT INTO jammi.public.models` for all-or-nothing.

mod delete_model;
mod register_model;
mod set_model_alias;
mod set_model_tag;

use std::sync::Arc;

use datafusion::logical_expr::ScalarUDF;
use datafusion::logical_expr::async_udf::AsyncScalarUDF;

pub use delete_model::DELETE_MODEL;
pub use register_model::REGISTER_MODEL;
pub use set_model_alias::SET_MODEL_ALIAS;
pub use set_model_tag::SET_MODEL_TAG;

/// The names of every function that writes to the catalog.
pub(crate) const CATALOG_FUNCTIONS: [&str; 4] =
    [REGISTER_MODEL, DELETE_MODEL, SET_MODEL_ALIAS, SET_MODEL_TAG];

/// The functions, ready to register in a session.
pub(crate) fn all() -> Vec<ScalarUDF> {
    vec![
        AsyncScalarUDF::new(Arc::new(register_model::RegisterModelUdf::new())).into_scalar_udf(),
        AsyncScalarUDF::new(Arc::new(delete_model::DeleteModelUdf::new())).into_scalar_udf(),
        AsyncScalarUDF::new(Arc::new(set_model_alias::SetModelAliasUdf::new())).into_scalar_udf(),
        AsyncScalarUDF::new(Arc::new(set_model_tag::SetModelTagUdf::new())).into_scalar_udf(),
    ]
}
