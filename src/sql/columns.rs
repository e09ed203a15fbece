//! Reading typed values out of Arrow arrays, for the SQL functions and DML alike, so that
//! both accept and refuse the same values: whatever type DataFusion hands over is read
//! as text, booleans or integers, and an integer is checked value by value.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray,
};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};

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

/// An integer argument or column, read value by value: a fraction, a number out of
/// range, text that is not an integer or a value of another type is refused at its row,
/// naming the field, rather than truncated or cast (`2.5` is not version 2).
pub(crate) enum IntColumn {
    Ints(Int64Array),
    Floats(Float64Array),
    Text(StringArray),
    /// Values of a type that holds no integers: every non-NULL one is refused.
    Other(ArrayRef),
}

/// `array` as integers, for [`opt_int`] / [`opt_version`]; `field` names it in errors.
pub(crate) fn int(array: &ArrayRef, field: &'static str) -> Result<IntColumn> {
    let t = array.data_type();
    let read = |to: &DataType| {
        cast_with_options(array, to, &STRICT)
            .map_err(|e| CatalogError::invalid(field, format!("cannot be read as an integer: {e}")))
    };
    Ok(if t.is_integer() || t.is_null() {
        IntColumn::Ints(read(&DataType::Int64)?.as_primitive::<Int64Type>().clone())
    } else if t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) {
        IntColumn::Floats(
            read(&DataType::Float64)?
                .as_primitive::<Float64Type>()
                .clone(),
        )
    } else if matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
        IntColumn::Text(read(&DataType::Utf8)?.as_string::<i32>().clone())
    } else {
        IntColumn::Other(Arc::clone(array))
    })
}

/// The integer at `row`, or `None` for NULL.
pub(crate) fn opt_int(column: &IntColumn, row: usize, field: &'static str) -> Result<Option<i64>> {
    // i64's range as f64: [-2^63, 2^63).
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    match column {
        IntColumn::Ints(a) => Ok(a.is_valid(row).then(|| a.value(row))),
        IntColumn::Floats(a) if a.is_null(row) => Ok(None),
        IntColumn::Floats(a) => {
            let v = a.value(row);
            if v.fract() != 0.0 || !v.is_finite() {
                return Err(CatalogError::invalid(
                    field,
                    format!("must be a whole number, got {v}"),
                ));
            }
            if !(-LIMIT..LIMIT).contains(&v) {
                return Err(CatalogError::invalid(field, format!("{v} is out of range")));
            }
            Ok(Some(v as i64))
        }
        IntColumn::Text(a) => opt_str(a, row)
            .map(|s| {
                s.trim().parse::<i64>().map_err(|_| {
                    CatalogError::invalid(field, format!("must be an integer, got {s:?}"))
                })
            })
            .transpose(),
        IntColumn::Other(a) if a.is_null(row) => Ok(None),
        IntColumn::Other(a) => Err(CatalogError::invalid(
            field,
            format!("must be an integer, got {}", a.data_type()),
        )),
    }
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

/// A version value: NULL stays `None`; anything outside 1..=i32::MAX is an error.
pub(crate) fn opt_version(
    column: &IntColumn,
    row: usize,
    field: &'static str,
) -> Result<Option<i32>> {
    match opt_int(column, row, field)? {
        None => Ok(None),
        Some(v) => {
            let v = i32::try_from(v)
                .map_err(|_| CatalogError::invalid(field, format!("{v} is out of range")))?;
            crate::validate::version(field, v)?;
            Ok(Some(v))
        }
    }
}
