//! Filter pushdown: DataFusion expressions translated into the database's SQL.
//!
//! [`translate`] returns `Some` only when the whole expression translates with the same
//! meaning in SQLite, Postgres and DataFusion; the provider answers `Exact` for those and
//! `Unsupported` for the rest, which DataFusion then evaluates itself. Identifiers come
//! from the table definitions ([`super::tables`]); every value becomes a bind parameter.
//!
//! What translates: `=`, `<>` on text; `=`, `<>`, `<`, `<=`, `>`, `>=` on integers and
//! timestamps (text ordering is left to DataFusion, since database collations may order
//! text differently); `IN` / `NOT IN` lists; `IS [NOT] NULL`; case-sensitive `LIKE` with
//! the default backslash escape; `BETWEEN`; and `AND` / `OR` / `NOT` over those. A text
//! literal holding NUL (U+0000) never translates: Postgres cannot bind it (SQLite can), so
//! DataFusion evaluates that filter, with the same answer on both backends.

use std::borrow::Cow;
use std::fmt::Write;

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Like, Operator, expr::InList};
use datafusion::scalar::ScalarValue;

use super::tables::{ColumnDef, ColumnKind, TableDef};
use crate::store::{Backend, Value};

/// The longest `IN` list pushed down (each value is one bind parameter).
const MAX_IN_LIST: usize = 1_000;

/// A translated predicate: SQL pieces and bind values, numbered when rendered.
#[derive(Clone, Debug, Default)]
pub(crate) struct SqlPredicate {
    pieces: Vec<Piece>,
}

#[derive(Clone, Debug)]
enum Piece {
    Sql(Cow<'static, str>),
    Arg(Value),
    /// `column` is one of the values of a list (`Value::TextList` / `IntList`), bound as one
    /// parameter; the SQL differs between the backends.
    AnyOf(&'static str, Value),
    /// The columns' values together are one of the rows of a JSON array of arrays (bound as
    /// one text parameter): `(a, b) IN (…)`.
    RowOf(Vec<&'static ColumnDef>, Value),
}

impl SqlPredicate {
    fn sql(&mut self, s: impl Into<Cow<'static, str>>) {
        self.pieces.push(Piece::Sql(s.into()));
    }

    fn arg(&mut self, v: Value) {
        self.pieces.push(Piece::Arg(v));
    }

    pub(super) fn append(&mut self, other: SqlPredicate) {
        self.pieces.extend(other.pieces);
    }

    /// `storage` (a column's storage expression) equals one of `list`'s values.
    pub(super) fn any_of(storage: &'static str, list: Value) -> SqlPredicate {
        SqlPredicate {
            pieces: vec![Piece::AnyOf(storage, list)],
        }
    }

    /// `columns` together equal one of `rows` (each row as many values as columns, in
    /// the columns' storage representation).
    pub(super) fn row_of(columns: Vec<&'static ColumnDef>, rows: &[Vec<Value>]) -> SqlPredicate {
        let json: Vec<Vec<serde_json::Value>> = rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|v| match v {
                        Value::Text(Some(t)) => serde_json::Value::from(t.as_str()),
                        Value::Int(Some(i)) => serde_json::Value::from(*i),
                        _ => serde_json::Value::Null,
                    })
                    .collect()
            })
            .collect();
        let text = serde_json::to_string(&json).unwrap_or_else(|_| "[]".into());
        SqlPredicate {
            pieces: vec![Piece::RowOf(columns, Value::Text(Some(text)))],
        }
    }

    /// `storage` followed by a fixed test (` IS NULL`).
    pub(super) fn raw(storage: &'static str, test: &'static str) -> SqlPredicate {
        let mut p = SqlPredicate::default();
        p.sql(storage);
        p.sql(test);
        p
    }

    /// A predicate that holds for no row.
    pub(super) fn none() -> SqlPredicate {
        let mut p = SqlPredicate::default();
        p.sql("1 = 0");
        p
    }

    /// `(a) AND (b)` or `(a) OR (b)`.
    pub(super) fn combine(a: SqlPredicate, op: Operator, b: SqlPredicate) -> SqlPredicate {
        let mut out = SqlPredicate::default();
        out.sql("(");
        out.append(a);
        out.sql(if op == Operator::And {
            ") AND ("
        } else {
            ") OR ("
        });
        out.append(b);
        out.sql(")");
        out
    }

    /// Appends the predicate to `sql` in `backend`'s dialect, numbering its placeholders
    /// after `args`.
    pub(crate) fn render(&self, backend: Backend, sql: &mut String, args: &mut Vec<Value>) {
        for piece in &self.pieces {
            match piece {
                Piece::Sql(s) => sql.push_str(s),
                Piece::Arg(v) => {
                    args.push(v.clone());
                    let _ = write!(sql, "${}", args.len());
                }
                Piece::RowOf(columns, rows) => {
                    args.push(rows.clone());
                    row_of_sql(backend, columns, args.len(), sql);
                }
                Piece::AnyOf(column, list) => {
                    args.push(list.clone());
                    let n = args.len();
                    // Both forms let the database seek an index on `column` for each value.
                    let _ = match backend {
                        Backend::Postgres => write!(sql, "{column} = ANY(${n})"),
                        Backend::Sqlite => {
                            write!(sql, "{column} IN (SELECT value FROM json_each(${n}))")
                        }
                    };
                }
            }
        }
    }
}

/// `(c1, c2, …) IN (<the rows of the JSON array of arrays bound to $n>)`. Each element is
/// read as its column's storage type, so that the database compares as it does on the
/// columns themselves and can seek their index.
fn row_of_sql(backend: Backend, columns: &[&'static ColumnDef], n: usize, sql: &mut String) {
    sql.push('(');
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(c.storage);
    }
    sql.push_str(") IN (SELECT ");
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        // `->>` gives text for a JSON string and (on SQLite) an integer for a JSON integer.
        let _ = match (backend, c.kind) {
            (Backend::Sqlite, _) => write!(sql, "value ->> {i}"),
            (Backend::Postgres, ColumnKind::Text) => write!(sql, "e ->> {i}"),
            (Backend::Postgres, _) => write!(sql, "(e ->> {i})::bigint"),
        };
    }
    let _ = match backend {
        Backend::Sqlite => write!(sql, " FROM json_each(${n}))"),
        Backend::Postgres => write!(sql, " FROM jsonb_array_elements(${n}::jsonb) AS e)"),
    };
}

/// Appends ` AND (p)` for each predicate.
pub(crate) fn render_conjunction(
    predicates: &[SqlPredicate],
    backend: Backend,
    sql: &mut String,
    args: &mut Vec<Value>,
) {
    for p in predicates {
        sql.push_str(" AND (");
        p.render(backend, sql, args);
        sql.push(')');
    }
}

/// Translates a filter on `table`, or `None` when it cannot be translated exactly.
pub(crate) fn translate(expr: &Expr, table: &TableDef) -> Option<SqlPredicate> {
    let mut out = SqlPredicate::default();
    predicate(expr, table, &mut out)?;
    Some(out)
}

/// A boolean expression.
fn predicate(expr: &Expr, table: &TableDef, out: &mut SqlPredicate) -> Option<()> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And | Operator::Or => {
                let mut l = SqlPredicate::default();
                let mut r = SqlPredicate::default();
                predicate(left, table, &mut l)?;
                predicate(right, table, &mut r)?;
                out.append(SqlPredicate::combine(l, *op, r));
                Some(())
            }
            _ => comparison(left, *op, right, table, out),
        },
        Expr::Not(inner) => {
            let mut p = SqlPredicate::default();
            predicate(inner, table, &mut p)?;
            out.sql("NOT (");
            out.append(p);
            out.sql(")");
            Some(())
        }
        Expr::IsNull(inner) | Expr::IsNotNull(inner) => {
            let column = column(inner, table)?;
            out.sql(column.storage);
            out.sql(if matches!(expr, Expr::IsNull(_)) {
                " IS NULL"
            } else {
                " IS NOT NULL"
            });
            Some(())
        }
        Expr::InList(InList {
            expr,
            list,
            negated,
        }) => {
            // Each value is a bind parameter, and databases cap their number per statement.
            if list.len() > MAX_IN_LIST {
                return None;
            }
            let column = column(expr, table)?;
            let values: Vec<Value> = list
                .iter()
                .map(|e| literal_for(column, e))
                .collect::<Option<_>>()?;
            out.sql(column.storage);
            out.sql(if *negated { " NOT IN (" } else { " IN (" });
            for (i, v) in values.into_iter().enumerate() {
                if i > 0 {
                    out.sql(", ");
                }
                out.arg(v);
            }
            out.sql(")");
            Some(())
        }
        Expr::Like(Like {
            negated,
            expr,
            pattern,
            escape_char,
            case_insensitive,
        }) => {
            let column = column(expr, table)?;
            if column.kind != ColumnKind::Text || *case_insensitive {
                return None;
            }
            if !matches!(escape_char, None | Some('\\')) {
                return None;
            }
            let pattern = literal_for(column, pattern)?;
            // A trailing lone backslash is a literal backslash to DataFusion, but an error
            // (Postgres) or a never-matching pattern (SQLite) under ESCAPE '\'.
            if let Value::Text(Some(p)) = &pattern
                && p.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
            {
                return None;
            }
            out.sql(column.storage);
            out.sql(if *negated { " NOT LIKE " } else { " LIKE " });
            out.arg(pattern);
            out.sql(" ESCAPE '\\'");
            Some(())
        }
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) => {
            let column = column(expr, table)?;
            if column.kind == ColumnKind::Text {
                return None;
            }
            let (low, high) = (literal_for(column, low)?, literal_for(column, high)?);
            out.sql(column.storage);
            out.sql(if *negated {
                " NOT BETWEEN "
            } else {
                " BETWEEN "
            });
            out.arg(low);
            out.sql(" AND ");
            out.arg(high);
            Some(())
        }
        _ => None,
    }
}

/// `a op b` where each side is a column of the table or a literal of a matching type.
fn comparison(
    left: &Expr,
    op: Operator,
    right: &Expr,
    table: &TableDef,
    out: &mut SqlPredicate,
) -> Option<()> {
    let translated = match (column(left, table), column(right, table)) {
        (Some(l), Some(r)) => {
            if l.kind != r.kind && !(l.kind.is_integer() && r.kind.is_integer()) {
                return None;
            }
            if is_ordering(op) && l.kind == ColumnKind::Text {
                return None;
            }
            let mut p = SqlPredicate::default();
            p.sql(l.storage);
            p.sql(sql_operator(op)?);
            p.sql(r.storage);
            p
        }
        (Some(c), None) => comparison_sql(c, op, literal_for(c, right)?, true)?,
        (None, Some(c)) => comparison_sql(c, op, literal_for(c, left)?, false)?,
        (None, None) => return None,
    };
    out.append(translated);
    Some(())
}

/// `column op value` (or `value op column` when `column_first` is false), when the
/// database compares them as DataFusion does: text only for (in)equality, since database
/// collations may order text differently.
pub(super) fn comparison_sql(
    column: &'static ColumnDef,
    op: Operator,
    value: Value,
    column_first: bool,
) -> Option<SqlPredicate> {
    let sql_op = sql_operator(op)?;
    if is_ordering(op) && column.kind == ColumnKind::Text {
        return None;
    }
    let mut p = SqlPredicate::default();
    if column_first {
        p.sql(column.storage);
        p.sql(sql_op);
        p.arg(value);
    } else {
        p.arg(value);
        p.sql(sql_op);
        p.sql(column.storage);
    }
    Some(p)
}

fn sql_operator(op: Operator) -> Option<&'static str> {
    Some(match op {
        Operator::Eq => " = ",
        Operator::NotEq => " <> ",
        Operator::Lt => " < ",
        Operator::LtEq => " <= ",
        Operator::Gt => " > ",
        Operator::GtEq => " >= ",
        _ => return None,
    })
}

fn is_ordering(op: Operator) -> bool {
    !matches!(op, Operator::Eq | Operator::NotEq)
}

/// A column of the table, possibly under a widening integer cast that changes no value.
fn column(expr: &Expr, table: &TableDef) -> Option<&'static ColumnDef> {
    match expr {
        Expr::Column(c) => table.column(&c.name),
        Expr::Cast(cast) => {
            let inner = column(&cast.expr, table)?;
            let widening = inner.kind.is_integer()
                && matches!(cast.field.data_type(), DataType::Int64)
                || inner.kind == ColumnKind::Int32
                    && matches!(cast.field.data_type(), DataType::Int32);
            widening.then_some(inner)
        }
        _ => None,
    }
}

/// A non-NULL literal converted to the column's storage representation.
fn literal_for(column: &ColumnDef, expr: &Expr) -> Option<Value> {
    let Expr::Literal(value, _) = expr else {
        return None;
    };
    scalar_for(column, value)
}

/// A non-NULL value converted to the column's storage representation, when it compares
/// with the column's values in the database exactly as in DataFusion.
pub(super) fn scalar_for(column: &ColumnDef, value: &ScalarValue) -> Option<Value> {
    match column.kind {
        ColumnKind::Text => match value {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
                if !s.contains('\0') =>
            {
                Some(Value::Text(Some(s.clone())))
            }
            _ => None,
        },
        ColumnKind::Int32 | ColumnKind::Int64 => {
            let v: i64 = match value {
                ScalarValue::Int8(Some(v)) => (*v).into(),
                ScalarValue::Int16(Some(v)) => (*v).into(),
                ScalarValue::Int32(Some(v)) => (*v).into(),
                ScalarValue::Int64(Some(v)) => *v,
                ScalarValue::UInt8(Some(v)) => (*v).into(),
                ScalarValue::UInt16(Some(v)) => (*v).into(),
                ScalarValue::UInt32(Some(v)) => (*v).into(),
                ScalarValue::UInt64(Some(v)) => i64::try_from(*v).ok()?,
                _ => return None,
            };
            Some(Value::Int(Some(v)))
        }
        ColumnKind::Timestamp => {
            let micros = match value {
                ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000)?,
                ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000)?,
                ScalarValue::TimestampMicrosecond(Some(v), _) => *v,
                // Only whole microseconds compare exactly against microsecond storage.
                ScalarValue::TimestampNanosecond(Some(v), _) if v % 1_000 == 0 => v / 1_000,
                _ => return None,
            };
            Some(Value::Int(Some(micros)))
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{col, lit};

    use super::*;
    use crate::sql::tables::MODELS;

    fn render(expr: Expr) -> Option<(String, Vec<Value>)> {
        let p = translate(&expr, &MODELS)?;
        let (mut sql, mut args) = (String::new(), vec![Value::from("tenant")]);
        p.render(Backend::Sqlite, &mut sql, &mut args);
        Some((sql, args))
    }

    #[test]
    fn equality_and_boolean_logic_translate_with_bind_parameters() {
        let (sql, args) = render(
            col("model_id")
                .eq(lit("bge"))
                .and(col("version").gt(lit(2))),
        )
        .unwrap();
        assert_eq!(sql, "(model_id = $2) AND (version > $3)");
        assert_eq!(args[1..], [Value::from("bge"), Value::from(2)]);
    }

    #[test]
    fn tenant_column_maps_to_the_owner_view() {
        let (sql, _) = render(col("tenant_id").is_null()).unwrap();
        assert_eq!(sql, "NULLIF(owner, '') IS NULL");
    }

    #[test]
    fn text_ordering_and_unknown_columns_are_not_translated() {
        assert!(render(col("model_id").gt(lit("a"))).is_none());
        assert!(render(col("nope").eq(lit(1))).is_none());
        assert!(render(col("version").eq(lit("1"))).is_none());
        assert!(render(col("model_id").eq(lit(ScalarValue::Utf8(None)))).is_none());
        // An OR with one untranslatable side is not translated at all.
        assert!(
            render(
                col("model_id")
                    .eq(lit("a"))
                    .or(col("model_id").gt(lit("b")))
            )
            .is_none()
        );
    }

    #[test]
    fn quotes_and_sql_fragments_stay_in_parameters() {
        let evil = "x'); DROP TABLE models; --";
        let (sql, args) = render(col("model_id").eq(lit(evil))).unwrap();
        assert_eq!(sql, "model_id = $2");
        assert_eq!(args[1], Value::from(evil));
    }

    #[test]
    fn like_in_list_and_between() {
        let (sql, _) = render(col("model_id").like(lit("org/%"))).unwrap();
        assert_eq!(sql, "model_id LIKE $2 ESCAPE '\\'");
        let (sql, _) =
            render(col("task").in_list(vec![lit("ner"), lit("regression")], true)).unwrap();
        assert_eq!(sql, "task NOT IN ($2, $3)");
        let (sql, _) = render(col("version").between(lit(1), lit(3))).unwrap();
        assert_eq!(sql, "version BETWEEN $2 AND $3");
        assert!(render(col("model_id").ilike(lit("A%"))).is_none());
        assert!(render(col("model_id").like(lit("ends\\"))).is_none());
        assert!(render(col("model_id").like(lit("ends\\\\"))).is_some());
        let long: Vec<Expr> = (0..=MAX_IN_LIST).map(|i| lit(i as i64)).collect();
        assert!(render(col("version").in_list(long, false)).is_none());
    }

    #[test]
    fn text_holding_nul_is_never_pushed() {
        assert!(render(col("model_id").eq(lit("a\0"))).is_none());
        assert!(render(col("model_id").not_eq(lit("\0"))).is_none());
        assert!(render(col("tenant_id").eq(lit("\0"))).is_none());
        assert!(render(col("task").in_list(vec![lit("ner"), lit("x\0")], false)).is_none());
        assert!(render(col("model_id").like(lit("a%\0"))).is_none());
        assert!(
            render(
                col("version")
                    .eq(lit(1))
                    .and(col("backend").eq(lit(ScalarValue::Utf8View(Some("c\0".into())))))
            )
            .is_none()
        );
        // Other control characters bind on both backends.
        assert!(render(col("model_id").eq(lit("tab\there\n"))).is_some());
    }
}
