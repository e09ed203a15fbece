//! What one call of a function whose output can be far larger than its input would build,
//! computed from its arguments before it runs: an upper bound in bytes over the call's
//! rows.
//!
//! These are the built-in functions whose output size is set by a count argument or by the
//! product of two inputs, and those that join any number of arguments (`concat`,
//! `make_array`, …: a statement may pass the same large value a thousand times). Every
//! other scalar function builds at most a small multiple of its input (a substring, a case
//! change, a hash), and is checked after it runs (`limits`). `levenshtein` builds little
//! but works in time that is the product of its inputs' lengths: its estimate is that work,
//! in bytes of the two strings compared, so a call too slow to finish inside a statement's
//! time is refused.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, GenericListArray, OffsetSizeTrait};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};

/// An upper bound of the bytes a call builds.
pub(super) type Estimate = fn(&ScalarFunctionArgs) -> u128;

/// The estimate of the function named `name` (its primary name), if it needs one.
pub(super) fn of(name: &str) -> Option<Estimate> {
    Some(match name {
        "repeat" => repeat,
        "lpad" | "rpad" => pad,
        "replace" => replace,
        "regexp_replace" => regexp_replace,
        "array_repeat" => array_repeat,
        "array_resize" => array_resize,
        "range" | "generate_series" => range,
        "array_replace_n" | "array_replace_all" => array_replace,
        "array_to_string" => array_to_string,
        "string_to_array" => string_to_array,
        "levenshtein" => levenshtein,
        "||" | "concat" | "make_array" | "array_concat" | "array_append" | "array_prepend"
        | "overlay" => inputs,
        "concat_ws" => joined_with,
        _ => return None,
    })
}

/// Whether the function named `name` builds no more than its inputs hold (so a call with
/// constant arguments may be folded while planning: its value is no larger than the
/// statement's own text).
pub(super) fn is_additive(name: &str) -> bool {
    matches!(
        name,
        "||" | "concat"
            | "make_array"
            | "array_concat"
            | "array_append"
            | "array_prepend"
            | "overlay"
    )
}

/// Bytes of an offset and a validity bit per value, and Arrow's slack, rounded up.
const PER_VALUE: u128 = 16;

/// `repeat(s, n)`: `len(s) × n` per row.
fn repeat(args: &ScalarFunctionArgs) -> u128 {
    let Some([s, n]) = first(args) else {
        return 0;
    };
    sum_rows(args, |i| len(s, i) * count(n, i))
}

/// `lpad(s, n [, fill])` / `rpad`: `n` characters per row, of up to 4 bytes each (1 when
/// the string and the fill are ASCII).
fn pad(args: &ScalarFunctionArgs) -> u128 {
    let Some([s, n]) = first(args) else {
        return 0;
    };
    let fill = args.args.get(2);
    sum_rows(args, |i| {
        let ascii = text(s, i).is_none_or(str::is_ascii)
            && fill.is_none_or(|f| text(f, i).is_none_or(str::is_ascii));
        count(n, i) * if ascii { 1 } else { 4 } + PER_VALUE
    })
}

/// `replace(s, from, to)`: each match of `from` (at most `len(s) / len(from)`, or one
/// between every character when `from` is empty) becomes `to`.
fn replace(args: &ScalarFunctionArgs) -> u128 {
    let Some([s, from, to]) = first(args) else {
        return 0;
    };
    sum_rows(args, |i| {
        let matches = len(s, i) / len(from, i).max(1) + 1;
        len(s, i) + matches * len(to, i) + PER_VALUE
    })
}

/// `regexp_replace(s, pattern, replacement [, flags])`: one match, or with the `g` flag
/// one at every position (a pattern may match the empty string). Each reference in the
/// replacement (`$1`, `\1`) copies a capture group; matches do not overlap, so over all
/// the matches one reference copies at most the whole string.
fn regexp_replace(args: &ScalarFunctionArgs) -> u128 {
    let Some([s, _pattern, replacement]) = first(args) else {
        return 0;
    };
    let flags = args.args.get(3);
    sum_rows(args, |i| {
        let global = flags.is_some_and(|f| text(f, i).is_some_and(|f| f.contains('g')));
        let matches = if global { len(s, i) + 1 } else { 1 };
        let references = text(replacement, i).map_or(0, |r| r.matches(['$', '\\']).count()) as u128;
        len(s, i) + matches * len(replacement, i) + references * len(s, i) + PER_VALUE
    })
}

/// `array_repeat(element, n)`: `n` copies of the element per row.
fn array_repeat(args: &ScalarFunctionArgs) -> u128 {
    let Some([element, n]) = first(args) else {
        return 0;
    };
    sum_rows(args, |i| count(n, i) * (bytes(element, i) + PER_VALUE))
}

/// `array_resize(array, n [, value])`: `n` elements, each at most the size of `value`
/// (or of a NULL), plus the array it starts from.
fn array_resize(args: &ScalarFunctionArgs) -> u128 {
    let Some([array, n]) = first(args) else {
        return 0;
    };
    let value = args.args.get(2);
    sum_rows(args, |i| {
        bytes(array, i) + count(n, i) * (value.map_or(0, |v| bytes(v, i)) + PER_VALUE)
    })
}

/// `range(stop)`, `range(start, stop [, step])`, `generate_series(…)`: one value of 8
/// bytes for each step from start to stop. Ranges of dates and timestamps step by an
/// interval: counted in nanoseconds, with the shortest length a month can have.
fn range(args: &ScalarFunctionArgs) -> u128 {
    sum_rows(args, |i| {
        let values: Vec<ScalarValue> = args.args.iter().map(|a| scalar(a, i)).collect();
        let steps = match values.as_slice() {
            [stop] => span(&ScalarValue::Int64(Some(0)), stop, None),
            [start, stop] => span(start, stop, None),
            [start, stop, step] => span(start, stop, Some(step)),
            _ => None,
        };
        steps.map_or(0, |n| (n + 1) * 8 + PER_VALUE)
    })
}

/// Whether a call of `range` or `generate_series` may never end: one stepping by an
/// interval whose months and days (or time) have opposite signs. DataFusion accepts such
/// a step, but it can cycle at a month's end (`1 month -28 days` from January 28th:
/// February 28th, January 31st, February 28th, …), growing its list in one call that no
/// deadline can interrupt.
pub(super) fn never_ends(name: &str, args: &ScalarFunctionArgs) -> bool {
    let ("range" | "generate_series", Some(step)) = (name, args.args.get(2)) else {
        return false;
    };
    let rows = match step {
        ColumnarValue::Scalar(_) => 1,
        ColumnarValue::Array(_) => args.number_rows,
    };
    (0..rows).any(|i| match scalar(step, i) {
        ScalarValue::IntervalMonthDayNano(Some(v)) => {
            let signs = [
                i64::from(v.months).signum(),
                i64::from(v.days).signum(),
                v.nanoseconds.signum(),
            ];
            signs.contains(&1) && signs.contains(&-1)
        }
        ScalarValue::IntervalDayTime(Some(v)) => {
            i64::from(v.days).signum() * i64::from(v.milliseconds).signum() < 0
        }
        _ => false,
    })
}

const DAY_NS: i128 = 86_400_000_000_000;

/// How many steps from `start` to `stop`, when the values can say.
fn span(start: &ScalarValue, stop: &ScalarValue, step: Option<&ScalarValue>) -> Option<u128> {
    let (start, stop) = (nanos_or_int(start)?, nanos_or_int(stop)?);
    let step: i128 = match step {
        None => 1,
        Some(ScalarValue::IntervalMonthDayNano(Some(v))) => {
            i128::from(v.months) * 28 * DAY_NS
                + i128::from(v.days) * DAY_NS
                + i128::from(v.nanoseconds)
        }
        Some(ScalarValue::IntervalDayTime(Some(v))) => {
            i128::from(v.days) * DAY_NS + i128::from(v.milliseconds) * 1_000_000
        }
        Some(ScalarValue::IntervalYearMonth(Some(months))) => i128::from(*months) * 28 * DAY_NS,
        Some(other) => nanos_or_int(other)?,
    };
    if step == 0 {
        return None; // Refused by the function itself.
    }
    Some(((stop - start) / step).unsigned_abs())
}

/// An integer as it is, a date or a timestamp in nanoseconds since the epoch.
fn nanos_or_int(value: &ScalarValue) -> Option<i128> {
    Some(match value {
        ScalarValue::Date32(Some(days)) => i128::from(*days) * DAY_NS,
        ScalarValue::Date64(Some(ms)) => i128::from(*ms) * 1_000_000,
        ScalarValue::TimestampSecond(Some(s), _) => i128::from(*s) * 1_000_000_000,
        ScalarValue::TimestampMillisecond(Some(ms), _) => i128::from(*ms) * 1_000_000,
        ScalarValue::TimestampMicrosecond(Some(us), _) => i128::from(*us) * 1_000,
        ScalarValue::TimestampNanosecond(Some(ns), _) => i128::from(*ns),
        other => i128::from(integer(other)?),
    })
}

/// `array_replace_n(array, from, to, n)`, `array_replace_all(array, from, to)`: every
/// element of the array may become `to`.
fn array_replace(args: &ScalarFunctionArgs) -> u128 {
    let Some([array, _from, to]) = first(args) else {
        return 0;
    };
    sum_rows(args, |i| {
        bytes(array, i) + elements(array, i) * (bytes(to, i) + PER_VALUE)
    })
}

/// `array_to_string(array, separator [, null_string])`: each element as text (a number
/// takes up to 40 characters) with a separator, or the null string, after it.
fn array_to_string(args: &ScalarFunctionArgs) -> u128 {
    let Some([array, separator]) = first(args) else {
        return 0;
    };
    let null_string = args.args.get(2);
    sum_rows(args, |i| {
        let per_element = 40 + len(separator, i) + null_string.map_or(0, |n| len(n, i));
        bytes(array, i) + elements(array, i) * per_element
    })
}

/// `string_to_array(s, delimiter [, null_string])`: at most one element per character.
fn string_to_array(args: &ScalarFunctionArgs) -> u128 {
    let Some([s, _delimiter]) = first(args) else {
        return 0;
    };
    sum_rows(args, |i| len(s, i) + (len(s, i) + 1) * PER_VALUE)
}

/// `a || b`, `concat(a, b, …)`, `make_array(…)`, `array_concat(…)`, `array_append`,
/// `array_prepend`, `overlay(s PLACING t FROM …)`: at most every argument, whole.
fn inputs(args: &ScalarFunctionArgs) -> u128 {
    sum_rows(args, |i| {
        let all = args.args.iter().map(|a| len(a, i));
        all.fold(PER_VALUE, u128::saturating_add)
    })
}

/// `concat_ws(separator, a, b, …)`: every argument, and a separator between each two.
fn joined_with(args: &ScalarFunctionArgs) -> u128 {
    let Some([separator]) = first(args) else {
        return 0;
    };
    let between = args.args.len().saturating_sub(2) as u128;
    sum_rows(args, |i| {
        let all = args.args[1..].iter().map(|a| len(a, i));
        all.fold(
            between * len(separator, i) + PER_VALUE,
            u128::saturating_add,
        )
    })
}

/// `levenshtein(a, b)`: the work of comparing every character of one with every
/// character of the other.
fn levenshtein(args: &ScalarFunctionArgs) -> u128 {
    let Some([a, b]) = first(args) else {
        return 0;
    };
    sum_rows(args, |i| len(a, i) * len(b, i))
}

/// The first `N` arguments, when the call has them (a call with fewer fails by itself).
fn first<const N: usize>(args: &ScalarFunctionArgs) -> Option<[&ColumnarValue; N]> {
    let given: &[ColumnarValue; N] = args.args.get(..N)?.try_into().ok()?;
    Some(given.each_ref())
}

/// The sum over the call's rows of `per_row(row)`. When every argument is a scalar the
/// function builds one value, but a projection copies it into every row of the batch, so
/// it counts once per row too.
fn sum_rows(args: &ScalarFunctionArgs, per_row: impl Fn(usize) -> u128) -> u128 {
    let all_scalar = args
        .args
        .iter()
        .all(|a| matches!(a, ColumnarValue::Scalar(_)));
    if all_scalar {
        return per_row(0).saturating_mul(args.number_rows.max(1) as u128);
    }
    (0..args.number_rows)
        .map(per_row)
        .fold(0u128, u128::saturating_add)
}

/// The text of `value` at `row`, when it is text and not NULL.
fn text(value: &ColumnarValue, row: usize) -> Option<&str> {
    match value {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s),
        ) => s.as_deref(),
        ColumnarValue::Scalar(_) => None,
        ColumnarValue::Array(array) => text_at(array, row),
    }
}

fn text_at(array: &ArrayRef, row: usize) -> Option<&str> {
    if array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Utf8 => Some(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Some(array.as_string::<i64>().value(row)),
        DataType::Utf8View => Some(array.as_string_view().value(row)),
        _ => None,
    }
}

/// The length in bytes of the text (or binary value) at `row`; 0 for NULL.
fn len(value: &ColumnarValue, row: usize) -> u128 {
    match text(value, row) {
        Some(s) => s.len() as u128,
        None => bytes(value, row),
    }
}

/// The value at `row` as a count: a negative or NULL count is nothing.
fn count(value: &ColumnarValue, row: usize) -> u128 {
    integer(&scalar(value, row)).map_or(0, |n| u128::try_from(n).unwrap_or(0))
}

fn integer(value: &ScalarValue) -> Option<i64> {
    match value.cast_to(&DataType::Int64).ok()? {
        ScalarValue::Int64(n) => n,
        _ => None,
    }
}

/// The value at `row` as a scalar. Only called for small values (counts, bounds, steps):
/// a text or list argument is measured in place instead.
fn scalar(value: &ColumnarValue, row: usize) -> ScalarValue {
    match value {
        ColumnarValue::Scalar(s) => s.clone(),
        ColumnarValue::Array(array) => {
            ScalarValue::try_from_array(array, row).unwrap_or(ScalarValue::Null)
        }
    }
}

/// The bytes the value at `row` takes in memory.
fn bytes(value: &ColumnarValue, row: usize) -> u128 {
    match value {
        ColumnarValue::Scalar(s) => s.size() as u128,
        ColumnarValue::Array(array) => array_bytes(array.slice(row, 1).as_ref()),
    }
}

/// The bytes the values of `array` take, a slice counting only what it holds: Arrow's own
/// measure of a slice counts a list's whole child array, every row of the batch.
pub(super) fn array_bytes(array: &dyn Array) -> u128 {
    match array.data_type() {
        DataType::List(_) => list_bytes(array.as_list::<i32>()),
        DataType::LargeList(_) => list_bytes(array.as_list::<i64>()),
        _ => array
            .to_data()
            .get_slice_memory_size()
            .map_or(u128::MAX, |n| n as u128),
    }
}

fn list_bytes<O: OffsetSizeTrait>(list: &GenericListArray<O>) -> u128 {
    let offsets = list.value_offsets();
    let (start, end) = (offsets[0].as_usize(), offsets[offsets.len() - 1].as_usize());
    let values = list.values().slice(start, end - start);
    (list.len() as u128 * PER_VALUE).saturating_add(array_bytes(values.as_ref()))
}

/// The number of elements of the list at `row` (0 for anything else).
fn elements(value: &ColumnarValue, row: usize) -> u128 {
    let length = |array: &dyn Array, row: usize| -> u128 {
        if array.is_null(row) {
            return 0;
        }
        match array.data_type() {
            DataType::List(_) => array.as_list::<i32>().value(row).len() as u128,
            DataType::LargeList(_) => array.as_list::<i64>().value(row).len() as u128,
            DataType::FixedSizeList(_, n) => *n as u128,
            _ => 0,
        }
    };
    match value {
        ColumnarValue::Scalar(s) => s.to_array().map_or(0, |a| length(a.as_ref(), 0)),
        ColumnarValue::Array(array) => length(array.as_ref(), row),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::Field;
    use datafusion::common::config::ConfigOptions;

    use super::*;

    fn call(args: Vec<ColumnarValue>, rows: usize) -> ScalarFunctionArgs {
        ScalarFunctionArgs {
            arg_fields: args
                .iter()
                .map(|a| Arc::new(Field::new("a", a.data_type(), true)))
                .collect(),
            args,
            number_rows: rows,
            return_field: Arc::new(Field::new("r", DataType::Utf8, true)),
            config_options: Arc::new(ConfigOptions::default()),
        }
    }

    fn text_scalar(s: &str) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(s.to_owned())))
    }

    fn int_scalar(n: i64) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Int64(Some(n)))
    }

    #[test]
    fn repeat_counts_every_row_of_a_column() {
        // A constant value is copied into every row of the batch.
        assert_eq!(
            repeat(&call(vec![text_scalar("ab"), int_scalar(1_500_000_000)], 8)),
            8 * 3_000_000_000
        );
        let counts = ColumnarValue::Array(Arc::new(Int64Array::from(vec![
            Some(10),
            None,
            Some(-3),
            Some(5),
        ])));
        assert_eq!(repeat(&call(vec![text_scalar("xyz"), counts], 4)), 45);
    }

    #[test]
    fn pad_counts_four_bytes_a_character_unless_ascii() {
        let padded = |s: &str| pad(&call(vec![text_scalar(s), int_scalar(1000)], 1));
        assert_eq!(padded("ab"), 1000 + PER_VALUE);
        assert_eq!(padded("é"), 4000 + PER_VALUE);
    }

    #[test]
    fn replacements_grow_with_the_product_of_their_inputs() {
        let s = ColumnarValue::Array(Arc::new(StringArray::from(vec!["aaaa"; 2])));
        let by = replace(&call(
            vec![s, text_scalar("a"), text_scalar("bbbbbbbbbb")],
            2,
        ));
        assert_eq!(by, 2 * (4 + 5 * 10 + PER_VALUE));
        let global = regexp_replace(&call(
            vec![
                text_scalar("aaaa"),
                text_scalar(""),
                text_scalar("$0$0"),
                text_scalar("g"),
            ],
            1,
        ));
        assert_eq!(global, 4 + 5 * 4 + 2 * 4 + PER_VALUE);
    }

    #[test]
    fn ranges_count_their_steps() {
        let r = |args: Vec<i64>| range(&call(args.into_iter().map(int_scalar).collect(), 1));
        assert_eq!(r(vec![1_000_000_000]), (1_000_000_000 + 1) * 8 + PER_VALUE);
        assert_eq!(r(vec![0, 100, 10]), 11 * 8 + PER_VALUE);
        assert_eq!(r(vec![0, 100, 0]), 0);
    }

    #[test]
    fn joins_count_every_argument() {
        let column = ColumnarValue::Array(Arc::new(StringArray::from(vec!["abc", "de"])));
        let args = vec![text_scalar("xy"), column.clone(), text_scalar("xy"), column];
        assert_eq!(
            inputs(&call(args.clone(), 2)),
            (2 + 3 + 2 + 3) + (2 + 2 + 2 + 2) + 2 * PER_VALUE
        );
        // concat_ws: the separator "xy" between each two of the other three.
        assert_eq!(
            joined_with(&call(args, 2)),
            (3 + 2 + 3 + 4) + (2 + 2 + 2 + 4) + 2 * PER_VALUE
        );
    }

    #[test]
    fn a_row_of_a_list_column_counts_its_own_elements() {
        use datafusion::arrow::array::ListArray;
        use datafusion::arrow::datatypes::Int64Type;
        let rows = (0..1000).map(|i| Some(vec![Some(i), Some(i)]));
        let lists = ColumnarValue::Array(Arc::new(
            ListArray::from_iter_primitive::<Int64Type, _, _>(rows),
        ));
        // Two 8-byte values, their offsets and validity: not the whole child array.
        assert!(bytes(&lists, 500) < 64, "{}", bytes(&lists, 500));
        let text = ColumnarValue::Array(Arc::new(StringArray::from(vec!["abc"; 1000])));
        assert!(bytes(&text, 7) < 32, "{}", bytes(&text, 7));
    }

    #[test]
    fn ranges_whose_step_parts_disagree_never_end() {
        let step = |months: i32, days: i32, nanoseconds: i64| {
            ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(Some(
                datafusion::arrow::datatypes::IntervalMonthDayNano {
                    months,
                    days,
                    nanoseconds,
                },
            )))
        };
        let date = |d: i32| ColumnarValue::Scalar(ScalarValue::Date32(Some(d)));
        let ends = |s| !never_ends("range", &call(vec![date(27), date(400), s], 1));
        assert!(!ends(step(1, -28, 0)));
        assert!(!ends(step(0, 1, -1)));
        assert!(ends(step(1, 1, 0)));
        assert!(ends(step(-1, -2, -3)));
        assert!(ends(step(0, 7, 0)));
    }

    #[test]
    fn functions_without_an_estimate_are_checked_after_they_run() {
        for name in ["upper", "substr", "md5", "length"] {
            assert!(of(name).is_none(), "{name}");
        }
        for name in [
            "repeat",
            "lpad",
            "rpad",
            "array_repeat",
            "range",
            "levenshtein",
        ] {
            assert!(of(name).is_some(), "{name}");
        }
    }
}
