//! Dynamic filters (SPEC §15): what DataFusion learns while a query runs, pushed into a
//! scan's SQL when the scan starts.
//!
//! A hash join offers its probe side a filter built from the keys of its build side once
//! that side is collected (`k >= min AND k <= max AND k IN (…)`, or a hash-table lookup for
//! a large build side); a TopK offers the bound of its current top rows. The scan keeps
//! those filters and, when its stream is first polled (after the join has collected its
//! build side), translates a snapshot of each into SQL ANDed after the tenant predicate.
//!
//! The scan tells DataFusion it did not take the filter, so the join (or TopK) still
//! applies it; the SQL therefore only has to be *weaker* than the filter, never stronger:
//! it may let through rows the filter would drop, never the reverse. So what does not
//! translate exactly is left out rather than refused: an `AND` keeps the terms that
//! translate, an `OR` (or `CASE`) with a branch that does not becomes no condition at all,
//! and anything unknown (a hash-table lookup) is no condition.
//!
//! What translates: comparisons of a column with a literal (ordering only on integers and
//! timestamps, as in `sql::filter`), `IS [NOT] NULL`, `IN` lists (bound as one list
//! parameter; over several columns, one list per column, which is weaker), and
//! `AND` / `OR` / `CASE` over those. A hash-partitioned join's `CASE hash(k) % n WHEN i
//! THEN Fi …` becomes `F0 OR F1 …`: a row passes the `CASE` only if it passes its branch.

use std::sync::Arc;

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CaseExpr, CastExpr, Column, InListExpr, IsNotNullExpr, IsNullExpr, Literal,
};
use datafusion::scalar::ScalarValue;

use super::filter::{SqlPredicate, comparison_sql, scalar_for};
use super::tables::{ColumnDef, ColumnKind};
use crate::store::Value;

/// A SQL predicate implied by `expr` (a snapshot of the filters), over the scan's output
/// `columns`; `None` when nothing useful translates (no condition).
pub(crate) fn implied_predicate(
    expr: &Arc<dyn PhysicalExpr>,
    columns: &[&'static ColumnDef],
) -> Option<SqlPredicate> {
    match weaker(expr.as_ref(), columns) {
        Implied::Rows(p) => Some(p),
        Implied::NoRow => Some(SqlPredicate::none()),
        Implied::Any => None,
    }
}

/// What a filter implies about the rows it lets through.
enum Implied {
    /// Only rows matching the predicate (possibly more than the filter lets through).
    Rows(SqlPredicate),
    /// No row at all.
    NoRow,
    /// Nothing known: any row.
    Any,
}

fn weaker(expr: &dyn PhysicalExpr, columns: &[&'static ColumnDef]) -> Implied {
    if let Some(literal) = expr.downcast_ref::<Literal>() {
        // A filter is kept where it is true: NULL and false keep nothing.
        return match literal.value() {
            ScalarValue::Boolean(Some(true)) => Implied::Any,
            ScalarValue::Boolean(_) | ScalarValue::Null => Implied::NoRow,
            _ => Implied::Any,
        };
    }
    if let Some(binary) = expr.downcast_ref::<BinaryExpr>() {
        return match binary.op() {
            // A hash join's `bounds AND k IN (…)`: the list alone, since it implies the
            // bounds, and SQLite would rather seek the index by a range than by the list.
            Operator::And if is_key_list(binary.right().as_ref()) => {
                match weaker(binary.right().as_ref(), columns) {
                    Implied::Any => weaker(binary.left().as_ref(), columns),
                    list => list,
                }
            }
            Operator::And => and(
                weaker(binary.left().as_ref(), columns),
                weaker(binary.right().as_ref(), columns),
            ),
            Operator::Or => or([
                weaker(binary.left().as_ref(), columns),
                weaker(binary.right().as_ref(), columns),
            ]),
            op => comparison(binary.left(), *op, binary.right(), columns)
                .map_or(Implied::Any, Implied::Rows),
        };
    }
    if let Some(case) = expr.downcast_ref::<CaseExpr>() {
        // The CASE is true only where the branch it picks is: weaker is any branch true.
        // Without ELSE, an unmatched row gets NULL, which keeps nothing.
        let branches = case
            .when_then_expr()
            .iter()
            .map(|(_, then)| weaker(then.as_ref(), columns))
            .chain(case.else_expr().map(|e| weaker(e.as_ref(), columns)));
        return or(branches);
    }
    if let Some(is_null) = expr.downcast_ref::<IsNullExpr>() {
        return null_test(is_null.arg(), " IS NULL", columns);
    }
    if let Some(is_not_null) = expr.downcast_ref::<IsNotNullExpr>() {
        return null_test(is_not_null.arg(), " IS NOT NULL", columns);
    }
    if let Some(in_list) = expr.downcast_ref::<InListExpr>()
        && !in_list.negated()
    {
        return key_list(in_list, columns);
    }
    Implied::Any
}

fn is_key_list(expr: &dyn PhysicalExpr) -> bool {
    expr.downcast_ref::<InListExpr>()
        .is_some_and(|l| !l.negated())
}

fn and(a: Implied, b: Implied) -> Implied {
    match (a, b) {
        (Implied::NoRow, _) | (_, Implied::NoRow) => Implied::NoRow,
        (Implied::Any, other) | (other, Implied::Any) => other,
        (Implied::Rows(a), Implied::Rows(b)) => {
            Implied::Rows(SqlPredicate::combine(a, Operator::And, b))
        }
    }
}

fn or(branches: impl IntoIterator<Item = Implied>) -> Implied {
    let mut out = Implied::NoRow;
    for branch in branches {
        out = match (out, branch) {
            (Implied::Any, _) | (_, Implied::Any) => return Implied::Any,
            (Implied::NoRow, other) | (other, Implied::NoRow) => other,
            (Implied::Rows(a), Implied::Rows(b)) => {
                Implied::Rows(SqlPredicate::combine(a, Operator::Or, b))
            }
        };
    }
    out
}

fn comparison(
    left: &Arc<dyn PhysicalExpr>,
    op: Operator,
    right: &Arc<dyn PhysicalExpr>,
    columns: &[&'static ColumnDef],
) -> Option<SqlPredicate> {
    let (column, value, column_first) = match (column(left, columns), column(right, columns)) {
        (Some(c), None) => (c, literal(right)?, true),
        (None, Some(c)) => (c, literal(left)?, false),
        _ => return None,
    };
    comparison_sql(column, op, scalar_for(column, value)?, column_first)
}

fn null_test(
    arg: &Arc<dyn PhysicalExpr>,
    test: &'static str,
    columns: &[&'static ColumnDef],
) -> Implied {
    match column(arg, columns) {
        Some(c) => Implied::Rows(SqlPredicate::raw(c.storage, test)),
        None => Implied::Any,
    }
}

/// `k IN (v, …)`, or `struct(k1, k2) IN (struct(…), …)` for a join on several keys.
fn key_list(in_list: &InListExpr, columns: &[&'static ColumnDef]) -> Implied {
    let values: Option<Vec<&ScalarValue>> = in_list.list().iter().map(literal).collect();
    let Some(values) = values else {
        return Implied::Any;
    };
    if let Some(single) = column(in_list.expr(), columns) {
        return one_key_list(single, values.into_iter().cloned());
    }
    let Some(function) = in_list.expr().downcast_ref::<ScalarFunctionExpr>() else {
        return Implied::Any;
    };
    if function.name() != "struct" {
        return Implied::Any;
    }
    let keys: Vec<Option<&'static ColumnDef>> =
        function.args().iter().map(|k| column(k, columns)).collect();
    let field = |value: &ScalarValue, i: usize| match value {
        ScalarValue::Struct(s) if s.num_columns() > i && s.len() == 1 => {
            ScalarValue::try_from_array(s.column(i).as_ref(), 0).unwrap_or(ScalarValue::Null)
        }
        _ => ScalarValue::Null,
    };
    if let Some(keys) = keys.iter().copied().collect::<Option<Vec<_>>>() {
        return key_rows(keys, &values, field);
    }
    // Some key is not a plain column: one list for each key that is (weaker).
    let mut out = Implied::Any;
    for (i, key) in keys.into_iter().enumerate() {
        if let Some(key) = key {
            out = and(out, one_key_list(key, values.iter().map(|v| field(v, i))));
        }
    }
    out
}

/// `(k1, k2, …) IN (<rows>)` as one parameter. A row with a NULL key matches nothing and
/// is left out; a value that does not compare exactly leaves the whole list out.
fn key_rows(
    keys: Vec<&'static ColumnDef>,
    values: &[&ScalarValue],
    field: impl Fn(&ScalarValue, usize) -> ScalarValue,
) -> Implied {
    let mut rows = Vec::with_capacity(values.len());
    'rows: for value in values {
        let mut row = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let v = field(value, i);
            if v.is_null() {
                continue 'rows;
            }
            match scalar_for(key, &v) {
                Some(v) => row.push(v),
                None => return Implied::Any,
            }
        }
        rows.push(row);
    }
    rows.dedup();
    if rows.is_empty() {
        return Implied::NoRow;
    }
    Implied::Rows(SqlPredicate::row_of(keys, &rows))
}

/// `column IN (values)` as one list parameter. NULLs are left out (they match nothing);
/// a value that does not compare exactly in the database leaves the whole list out.
fn one_key_list(column: &'static ColumnDef, values: impl Iterator<Item = ScalarValue>) -> Implied {
    let mut texts = Vec::new();
    let mut ints = Vec::new();
    for value in values {
        if value.is_null() {
            continue;
        }
        match scalar_for(column, &value) {
            Some(Value::Text(Some(t))) => texts.push(t),
            Some(Value::Int(Some(i))) => ints.push(i),
            _ => return Implied::Any,
        }
    }
    let list = if column.kind == ColumnKind::Text {
        texts.sort_unstable();
        texts.dedup();
        if texts.is_empty() {
            return Implied::NoRow;
        }
        Value::TextList(texts)
    } else {
        ints.sort_unstable();
        ints.dedup();
        if ints.is_empty() {
            return Implied::NoRow;
        }
        Value::IntList(ints)
    };
    Implied::Rows(SqlPredicate::any_of(column.storage, list))
}

fn literal(expr: &Arc<dyn PhysicalExpr>) -> Option<&ScalarValue> {
    expr.downcast_ref::<Literal>().map(Literal::value)
}

/// The catalog column `expr` reads, possibly under a cast that changes no value (a wider
/// integer, another text representation).
fn column(
    expr: &Arc<dyn PhysicalExpr>,
    columns: &[&'static ColumnDef],
) -> Option<&'static ColumnDef> {
    if let Some(c) = expr.downcast_ref::<Column>() {
        return columns
            .get(c.index())
            .copied()
            .filter(|def| def.name == c.name());
    }
    let cast = expr.downcast_ref::<CastExpr>()?;
    let inner = column(cast.expr(), columns)?;
    let keeps_values = match inner.kind {
        ColumnKind::Text => matches!(
            cast.cast_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ),
        ColumnKind::Int32 => matches!(cast.cast_type(), DataType::Int32 | DataType::Int64),
        ColumnKind::Int64 => matches!(cast.cast_type(), DataType::Int64),
        ColumnKind::Timestamp => false,
    };
    keeps_values.then_some(inner)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::physical_expr::expressions::{is_null, lit};

    use super::*;
    use crate::sql::tables::MODELS;
    use crate::store::Backend;

    /// The scan's output: `model_id`, `version`, `task` (Text, Int32, Text).
    fn columns() -> Vec<&'static ColumnDef> {
        ["model_id", "version", "task"]
            .iter()
            .map(|n| MODELS.column(n).unwrap())
            .collect()
    }

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("model_id", DataType::Utf8, true),
            Field::new("version", DataType::Int32, true),
            Field::new("task", DataType::Utf8, true),
        ])
    }

    fn col(name: &str) -> Arc<dyn PhysicalExpr> {
        let index = ["model_id", "version", "task"]
            .iter()
            .position(|n| *n == name)
            .unwrap();
        Arc::new(Column::new(name, index))
    }

    fn binary(
        l: Arc<dyn PhysicalExpr>,
        op: Operator,
        r: Arc<dyn PhysicalExpr>,
    ) -> Arc<dyn PhysicalExpr> {
        Arc::new(BinaryExpr::new(l, op, r))
    }

    fn in_list(expr: Arc<dyn PhysicalExpr>, values: Vec<ScalarValue>) -> Arc<dyn PhysicalExpr> {
        let list = values
            .into_iter()
            .map(|v| lit(v) as Arc<dyn PhysicalExpr>)
            .collect();
        Arc::new(InListExpr::try_new(expr, list, false, &schema()).unwrap())
    }

    fn render(expr: &Arc<dyn PhysicalExpr>, backend: Backend) -> Option<(String, Vec<Value>)> {
        let p = implied_predicate(expr, &columns())?;
        let (mut sql, mut args) = (String::new(), vec![Value::from("owner")]);
        p.render(backend, &mut sql, &mut args);
        Some((sql, args))
    }

    fn text(s: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(s.into()))
    }

    #[test]
    fn a_join_s_keys_become_one_list_parameter_and_text_bounds_are_left_out() {
        // What a hash join offers: bounds AND membership.
        let bounds = binary(
            binary(col("model_id"), Operator::GtEq, lit(text("a"))),
            Operator::And,
            binary(col("model_id"), Operator::LtEq, lit(text("c"))),
        );
        let keys = in_list(
            col("model_id"),
            vec![text("c"), text("a"), ScalarValue::Utf8(None), text("a")],
        );
        let filter = binary(bounds, Operator::And, keys);
        let (sql, args) = render(&filter, Backend::Postgres).unwrap();
        assert_eq!(sql, "model_id = ANY($2)");
        assert_eq!(args[1], Value::TextList(vec!["a".into(), "c".into()]));
        let (sql, _) = render(&filter, Backend::Sqlite).unwrap();
        assert_eq!(sql, "model_id IN (SELECT value FROM json_each($2))");
        // Integer bounds are exact: kept alone, left out beside the list that implies them.
        let bounds = binary(col("version"), Operator::GtEq, lit(2i32));
        let (sql, _) = render(&bounds, Backend::Sqlite).unwrap();
        assert_eq!(sql, "version >= $2");
        let versions = binary(
            bounds,
            Operator::And,
            in_list(
                col("version"),
                vec![ScalarValue::Int32(Some(5)), ScalarValue::Int32(Some(2))],
            ),
        );
        let (sql, args) = render(&versions, Backend::Sqlite).unwrap();
        assert_eq!(sql, "version IN (SELECT value FROM json_each($2))");
        assert_eq!(args[1].json_list().unwrap(), "[2,5]");
    }

    #[test]
    fn several_keys_become_one_list_of_rows() {
        let key = Arc::new(ScalarFunctionExpr::new(
            "struct",
            datafusion::functions::core::r#struct(),
            vec![col("model_id"), col("version")],
            Arc::new(Field::new(
                "struct",
                DataType::Struct(
                    vec![
                        Field::new("c0", DataType::Utf8, true),
                        Field::new("c1", DataType::Int32, true),
                    ]
                    .into(),
                ),
                true,
            )),
            Arc::new(Default::default()),
        )) as Arc<dyn PhysicalExpr>;
        let fields = vec![
            Arc::new(Field::new("c0", DataType::Utf8, true)),
            Arc::new(Field::new("c1", DataType::Int32, true)),
        ];
        let rows = datafusion::arrow::array::StructArray::new(
            fields.into(),
            vec![
                Arc::new(datafusion::arrow::array::StringArray::from(vec![
                    Some("a"),
                    None,
                    Some("b'), --"),
                ])),
                Arc::new(datafusion::arrow::array::Int32Array::from(vec![1, 2, 3])),
            ],
            None,
        );
        let expr = Arc::new(
            InListExpr::try_new_from_array(key, Arc::new(rows), false, &schema()).unwrap(),
        ) as Arc<dyn PhysicalExpr>;
        let (sql, args) = render(&expr, Backend::Sqlite).unwrap();
        assert_eq!(
            sql,
            "(model_id, version) IN (SELECT value ->> 0, value ->> 1 FROM json_each($2))"
        );
        assert_eq!(args[1], Value::from(r#"[["a",1],["b'), --",3]]"#));
        let (sql, _) = render(&expr, Backend::Postgres).unwrap();
        assert_eq!(
            sql,
            "(model_id, version) IN (SELECT e ->> 0, (e ->> 1)::bigint \
             FROM jsonb_array_elements($2::jsonb) AS e)"
        );
    }

    #[test]
    fn what_does_not_translate_weakens_to_no_condition() {
        let keys = in_list(col("model_id"), vec![text("a")]);
        // An OR with an unknown branch: no condition.
        let unknown = binary(col("task"), Operator::Gt, lit(text("x")));
        assert!(
            render(
                &binary(Arc::clone(&keys), Operator::Or, Arc::clone(&unknown)),
                Backend::Sqlite
            )
            .is_none()
        );
        // An AND keeps what translates.
        let (sql, _) = render(
            &binary(unknown, Operator::And, Arc::clone(&keys)),
            Backend::Sqlite,
        )
        .unwrap();
        assert_eq!(sql, "model_id IN (SELECT value FROM json_each($2))");
        // A list of nothing but NULLs keeps no row; true keeps all; a NOT IN list is unknown.
        let (sql, _) = render(
            &in_list(col("model_id"), vec![ScalarValue::Utf8(None)]),
            Backend::Sqlite,
        )
        .unwrap();
        assert_eq!(sql, "1 = 0");
        assert!(render(&lit(true), Backend::Sqlite).is_none());
        let not_in = Arc::new(
            InListExpr::try_new(col("model_id"), vec![lit(text("a"))], true, &schema()).unwrap(),
        ) as Arc<dyn PhysicalExpr>;
        assert!(render(&not_in, Backend::Sqlite).is_none());
        // NUL cannot be bound on Postgres: the list is left out.
        assert!(
            render(
                &in_list(col("model_id"), vec![text("a\0")]),
                Backend::Sqlite
            )
            .is_none()
        );
        // A null-aware join keeps probe NULLs: `k IS NULL OR k IN (…)`.
        let (sql, _) = render(
            &binary(is_null(col("model_id")).unwrap(), Operator::Or, keys),
            Backend::Sqlite,
        )
        .unwrap();
        assert_eq!(
            sql,
            "(model_id IS NULL) OR (model_id IN (SELECT value FROM json_each($2)))"
        );
    }

    #[test]
    fn a_partitioned_join_s_case_becomes_an_or_of_its_branches() {
        let route = binary(
            col("version"),
            Operator::Modulo,
            lit(ScalarValue::UInt64(Some(2))),
        );
        let case = Arc::new(
            CaseExpr::try_new(
                Some(route),
                vec![
                    (
                        lit(ScalarValue::UInt64(Some(0))),
                        in_list(col("model_id"), vec![text("a")]),
                    ),
                    (
                        lit(ScalarValue::UInt64(Some(1))),
                        in_list(col("model_id"), vec![text("b")]),
                    ),
                ],
                Some(lit(false)),
            )
            .unwrap(),
        ) as Arc<dyn PhysicalExpr>;
        let (sql, args) = render(&case, Backend::Postgres).unwrap();
        assert_eq!(sql, "(model_id = ANY($2)) OR (model_id = ANY($3))");
        assert_eq!(args.len(), 3);
        // A branch that is unknown (a hash-table lookup, here a text ordering) makes it so.
        let unknown = Arc::new(
            CaseExpr::try_new(
                None,
                vec![(lit(true), binary(col("task"), Operator::Lt, lit(text("b"))))],
                Some(in_list(col("model_id"), vec![text("a")])),
            )
            .unwrap(),
        ) as Arc<dyn PhysicalExpr>;
        assert!(render(&unknown, Backend::Postgres).is_none());
    }
}
