//! The catalog's SQL functions (SPEC §7, §13): asynchronous, volatile scalar UDFs that act for
//! the scope of the session executing them (`sql::binding`). DataFusion 55 evaluates
//! async UDFs only at execution (never while planning, constant folding or for
//! `EXPLAIN`), and evaluates them over the *whole* input of the plan node that holds
//! them, before any CASE, COALESCE, AND/OR or the rest of a filter; so the catalog accepts
//! them only where that is exactly what the statement says (`sql::placement`).
//!
//! Each row is its own call: one row's error fails the statement, but rows already
//! registered stay registered. Use `INSERT INTO jammi.public.models` for all-or-nothing.

/// Declares a catalog function's UDF type: a volatile signature that takes any arguments,
/// an argument count checked while planning (where the function's usage makes a better
/// message than DataFusion's signature dump), its return type, and no synchronous body
/// (the work is in its `AsyncScalarUDFImpl`).
macro_rules! catalog_udf {
    ($(#[$doc:meta])* $udf:ident, $name:expr, $arity:expr, $usage:literal -> $returns:expr) => {
        $(#[$doc])*
        #[derive(Debug, PartialEq, Eq, Hash)]
        pub(crate) struct $udf {
            signature: datafusion::logical_expr::Signature,
        }

        impl $udf {
            pub fn new() -> Self {
                $udf {
                    signature: datafusion::logical_expr::Signature::variadic_any(
                        datafusion::logical_expr::Volatility::Volatile,
                    ),
                }
            }
        }

        impl datafusion::logical_expr::ScalarUDFImpl for $udf {
            fn name(&self) -> &str {
                $name
            }

            fn signature(&self) -> &datafusion::logical_expr::Signature {
                &self.signature
            }

            fn return_type(
                &self,
                arg_types: &[datafusion::arrow::datatypes::DataType],
            ) -> datafusion::error::Result<datafusion::arrow::datatypes::DataType> {
                super::check_arity($usage, $arity, arg_types.len())?;
                Ok($returns)
            }

            fn invoke_with_args(
                &self,
                _args: datafusion::logical_expr::ScalarFunctionArgs,
            ) -> datafusion::error::Result<datafusion::logical_expr::ColumnarValue> {
                datafusion::common::exec_err!("{} runs only asynchronously", $name)
            }
        }
    };
}

pub(crate) mod bound;
mod delete_model;
mod register_model;
mod set_model_alias;
mod set_model_tag;

use std::ops::RangeInclusive;
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::async_udf::AsyncScalarUDF;
use datafusion::logical_expr::{ScalarFunctionArgs, ScalarUDF};

use crate::access::Access;

pub use delete_model::DELETE_MODEL;
pub use register_model::REGISTER_MODEL;
pub use set_model_alias::SET_MODEL_ALIAS;
pub use set_model_tag::SET_MODEL_TAG;

/// The names of every function that writes to the catalog.
pub(crate) const CATALOG_FUNCTIONS: [&str; 4] =
    [REGISTER_MODEL, DELETE_MODEL, SET_MODEL_ALIAS, SET_MODEL_TAG];

/// The access level a call of the catalog function `name` needs (SPEC §14): deleting a
/// model is an admin's; registering and setting aliases and tags are writes.
pub(crate) fn access_to_call(name: &str) -> Access {
    match name {
        DELETE_MODEL => Access::Admin,
        _ => Access::Write,
    }
}

/// The functions, ready to register in a session.
pub(crate) fn all() -> Vec<ScalarUDF> {
    vec![
        AsyncScalarUDF::new(Arc::new(register_model::RegisterModelUdf::new())).into_scalar_udf(),
        AsyncScalarUDF::new(Arc::new(delete_model::DeleteModelUdf::new())).into_scalar_udf(),
        AsyncScalarUDF::new(Arc::new(set_model_alias::SetModelAliasUdf::new())).into_scalar_udf(),
        AsyncScalarUDF::new(Arc::new(set_model_tag::SetModelTagUdf::new())).into_scalar_udf(),
    ]
}

/// Refuses a call with a number of arguments outside `arity`, with the function's usage.
fn check_arity(usage: &str, arity: RangeInclusive<usize>, given: usize) -> Result<()> {
    if arity.contains(&given) {
        return Ok(());
    }
    let (low, high) = arity.into_inner();
    if low == high {
        plan_err!("{usage} takes {low} arguments, got {given}")
    } else {
        plan_err!("{usage} takes {low} to {high} arguments, got {given}")
    }
}

/// Every argument as one value per row: constant arguments arrive as scalars.
fn row_arrays(args: &ScalarFunctionArgs) -> Result<Vec<ArrayRef>> {
    args.args
        .iter()
        .map(|a| a.to_array(args.number_rows))
        .collect()
}
