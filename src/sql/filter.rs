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
use crate::store::Value;

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
}

impl SqlPredicate {
    fn sql(&mut self, s: impl Into<Cow<'static, str>>) {
        self.pieces.push(Piece::Sql(s.into()));
    }

    fn arg(&mut self, v: Value) {
        self.pieces.push(Piece::Arg(v));
    }

    fn append(&mut self, other: SqlPredicate) {
        self.pieces.extend(other.pieces);
    }

    /// Appends the predicate to `sql`, numbering its placeholders after `args`.
    pub(crate) fn render(&self, sql: &mut String, args: &mut Vec<Value>) {
        for piece in &self.pieces {
            match piece {
                Piece::Sql(s) => sql.push_str(s),
                Piece::Arg(v) => {
                    args.push(v.clone());
                    let _ = write!(sql, "${}", args.len());
                }
            }
        }
    }
}

/// Appends ` AND (p)` for each predicate.
pub(crate) fn render_conjunction(
    predicates: &[SqlPredicate],
    sql: &mut String,
    args: &mut Vec<Value>,
) {
    for p in predicates {
        sql.push_str(" AND (");
        p.render(sql, args);
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
                out.sql("(");
                out.append(l);
                out.sql(if *op == Operator::And {
                    ") AND ("
                } else {
                    ") OR ("
                });
                out.append(r);
                out.sql(")");
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
    let sql_op = match op {
        Operator::Eq => " = ",
        Operator::NotEq => " <> ",
        Operator::Lt => " < ",
        Operator::LtEq => " <= ",
        Operator::Gt => " > ",
        Operator::GtEq => " >= ",
        _ => return None,
    };
    let ordering = !matches!(op, Operator::Eq | Operator::NotEq);
    match (column(left, table), column(right, table)) {
        (Some(l), Some(r)) => {
            if l.kind != r.kind && !(is_integer(l.kind) && is_integer(r.kind)) {
                return None;
            }
            if ordering && l.kind == ColumnKind::Text {
                return None;
            }
            out.sql(l.storage);
            out.sql(sql_op);
            out.sql(r.storage);
        }
        (Some(c), None) => {
            if ordering && c.kind == ColumnKind::Text {
                return None;
            }
            let v = literal_for(c, right)?;
            out.sql(c.storage);
            out.sql(sql_op);
            out.arg(v);
        }
        (None, Some(c)) => {
            if ordering && c.kind == ColumnKind::Text {
                return None;
            }
            let v = literal_for(c, left)?;
            out.arg(v);
            out.sql(sql_op);
            out.sql(c.storage);
        }
        (None, None) => return None,
    }
    Some(())
}

fn is_integer(kind: ColumnKind) -> bool {
    matches!(kind, ColumnKind::Int32 | ColumnKind::Int64)
}

/// A column of the table, possibly under a widening integer cast that changes no value.
fn column(expr: &Expr, table: &TableDef) -> Option<&'static ColumnDef> {
    match expr {
        Expr::Column(c) => table.column(&c.name),
        Expr::Cast(cast) => {
            let inner = column(&cast.expr, table)?;
            let widening = is_integer(inner.kind)
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
        p.render(&mut sql, &mut args);
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
