//! The `||` operator under the limits.
//!
//! `a || b` on strings is DataFusion's own kernel, not a function, so the wrapping of
//! `limits` does not reach it, and `s || s` nested doubles a value at every level. The
//! analyzer rule of the bounded sessions (`rule`) rewrites it into the [`StrictConcat`] function,
//! which computes the same thing with the same kernel (NULL when either side is NULL),
//! keeps the column names `a || b` would have, and runs under the limits like every other
//! function: its output, the sum of its inputs, is checked before it is built.

use std::sync::Arc;

use datafusion::arrow::compute::kernels::concat_elements::concat_elements_dyn;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// `a || b` as a function: the name shown in plans, `||(a, b)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct StrictConcat {
    signature: Signature,
}

impl StrictConcat {
    pub(super) fn new() -> Self {
        StrictConcat {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for StrictConcat {
    fn name(&self) -> &str {
        "||"
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        Ok(format!(
            "{} || {}",
            args[0].schema_name(),
            args[1].schema_name()
        ))
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }

    /// As `a || b`'s: NULL only where a side may be.
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        Ok(Arc::new(Field::new(
            self.name(),
            args.arg_fields[0].data_type().clone(),
            nullable,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let joined = concat_elements_dyn(arrays[0].as_ref(), arrays[1].as_ref())?;
        Ok(if all_scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&joined, 0)?)
        } else {
            ColumnarValue::Array(joined)
        })
    }
}
