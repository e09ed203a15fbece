//! Reading typed values out of Arrow arrays, for the SQL functions and DML: whatever
//! type DataFusion hands over is cast once to text or 64-bit integers.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, StringArray};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Int64Type};

use crate::error::{CatalogError, Result};

/// Casting that fails on a value it cannot convert, instead of turning it into NULL
/// (a version of `'x'` must be an error, not "allocate the next version").
const STRICT: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: datafusion::arrow::util::display::FormatOptions::new(),
};

/// `array` as text; `field` names it in errors.
pub(crate) fn text(array: &ArrayRef, field: &'static str) -> Result<StringArray> {
    let cast = cast_with_options(array, &DataType::Utf8, &STRICT)
        .map_err(|e| CatalogError::invalid(field, format!("cannot be read as text: {e}")))?;
    Ok(cast.as_string::<i32>().clone())
}

/// `array` as 64-bit integers; `field` names it in errors. Integers, NULL and integer
/// text are accepted; a float or decimal is refused rather than truncated (`2.5` is not
/// version 2).
pub(crate) fn int(array: &ArrayRef, field: &'static str) -> Result<Int64Array> {
    let t = array.data_type();
    if !(t.is_integer()
        || matches!(
            t,
            DataType::Null | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ))
    {
        return Err(CatalogError::invalid(
            field,
            format!("must be an integer, got {t}"),
        ));
    }
    let cast = cast_with_options(array, &DataType::Int64, &STRICT)
        .map_err(|e| CatalogError::invalid(field, format!("cannot be read as an integer: {e}")))?;
    Ok(cast.as_primitive::<Int64Type>().clone())
}

/// `array` as booleans; `field` names it in errors.
pub(crate) fn boolean(array: &ArrayRef, field: &'static str) -> Result<BooleanArray> {
    let cast = cast_with_options(array, &DataType::Boolean, &STRICT)
        .map_err(|e| CatalogError::invalid(field, format!("cannot be read as a boolean: {e}")))?;
    Ok(cast.as_boolean().clone())
}

/// The value at `row`, or `None` for NULL.
pub(crate) fn opt_str(array: &StringArray, row: usize) -> Option<&str> {
    array.is_valid(row).then(|| array.value(row))
}

/// The value at `row`; NULL is an error naming `field`.
pub(crate) fn req_str<'a>(
    array: &'a StringArray,
    row: usize,
    field: &'static str,
) -> Result<&'a str> {
    opt_str(array, row).ok_or_else(|| CatalogError::invalid(field, "must not be NULL"))
}

/// The value at `row`, or `None` for NULL.
pub(crate) fn opt_int(array: &Int64Array, row: usize) -> Option<i64> {
    array.is_valid(row).then(|| array.value(row))
}

/// A version value: NULL stays `None`; anything outside 1..=i32::MAX is an error.
pub(crate) fn opt_version(
    array: &Int64Array,
    row: usize,
    field: &'static str,
) -> Result<Option<i32>> {
    match opt_int(array, row) {
        None => Ok(None),
        Some(v) => {
            let v = i32::try_from(v)
                .map_err(|_| CatalogError::invalid(field, format!("{v} is out of range")))?;
            crate::validate::version(field, v)?;
            Ok(Some(v))
        }
    }
}
