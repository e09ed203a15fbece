//! A join of catalog tables as one SELECT: the tree the rule builds from a logical plan
//! (`super`), and its SQL.
//!
//! Every relation is a whole SELECT whose columns are named `c0`, `c1`, …; a join reads its
//! inputs as derived tables (`(SELECT …) AS j1`). So each catalog table keeps its own
//! tenant predicate inside its own derived table, where no join can move it: an outer
//! join's `ON` never carries it, and the rows a `LEFT JOIN` keeps are the scope's only.

use std::fmt::Write;
use std::sync::LazyLock;

use crate::sql::filter::{SqlPredicate, render_conjunction};
use crate::sql::tables::{ColumnDef, ColumnKind, TableDef};
use crate::store::{Backend, Value};

/// Which input of a join a column comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Left,
    Right,
}

/// The joins a relation can be: the kinds the rule sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
    /// The rows of one side (each once) that have a match on the other: `EXISTS`.
    Semi(Side),
    /// The rows of one side that have no match on the other: `NOT EXISTS`.
    Anti(Side),
}

/// Rows with numbered columns: the i-th is `c{i}` in the relation's SELECT.
#[derive(Debug)]
pub(crate) enum Relation {
    /// The scope's rows of a catalog table: its `columns`, kept by `predicates` (the
    /// filters pushed into its scan, translated as for a scan).
    Table {
        table: &'static TableDef,
        columns: Vec<&'static ColumnDef>,
        predicates: Vec<SqlPredicate>,
    },
    /// `left <kind> JOIN right ON left.c{l} = right.c{r} AND …` for each `(l, r)` of `on`
    /// (SQL equality: a NULL key matches nothing), with the columns `select` names. A semi
    /// or anti join is `[NOT] EXISTS` over the other side.
    Join {
        left: Box<Relation>,
        right: Box<Relation>,
        kind: JoinKind,
        on: Vec<(usize, usize)>,
        select: Vec<(Side, usize)>,
    },
}

impl Relation {
    /// The type of column `c{i}`.
    pub fn kind(&self, i: usize) -> ColumnKind {
        match self {
            Relation::Table { columns, .. } => columns[i].kind,
            Relation::Join {
                left,
                right,
                select,
                ..
            } => match select[i] {
                (Side::Left, j) => left.kind(j),
                (Side::Right, j) => right.kind(j),
            },
        }
    }

    /// How many columns it has.
    pub fn width(&self) -> usize {
        match self {
            Relation::Table { columns, .. } => columns.len(),
            Relation::Join { select, .. } => select.len(),
        }
    }

    /// The catalog tables it reads, left to right.
    pub fn table_names(&self) -> Vec<&'static str> {
        match self {
            Relation::Table { table, .. } => vec![table.name],
            Relation::Join { left, right, .. } => {
                let mut names = left.table_names();
                names.extend(right.table_names());
                names
            }
        }
    }

    /// Appends the SELECT to `sql`, each table's tenant predicate binding `owner`,
    /// numbering the parameters after `args`.
    pub fn render(&self, owner: &str, backend: Backend, sql: &mut String, args: &mut Vec<Value>) {
        let mut aliases = 0;
        self.render_with(owner, backend, sql, args, &mut aliases);
    }

    fn render_with(
        &self,
        owner: &str,
        backend: Backend,
        sql: &mut String,
        args: &mut Vec<Value>,
        aliases: &mut usize,
    ) {
        match self {
            Relation::Table {
                table,
                columns,
                predicates,
            } => {
                select_list(sql, columns.iter().map(|c| c.storage.to_owned()));
                args.push(Value::from(owner));
                let _ = write!(
                    sql,
                    " FROM {} WHERE owner IN (${}, '')",
                    table.storage,
                    args.len()
                );
                render_conjunction(predicates, backend, sql, args);
            }
            Relation::Join {
                left,
                right,
                kind,
                on,
                select,
            } => {
                *aliases += 2;
                let (l, r) = (format!("j{}", *aliases - 1), format!("j{}", *aliases));
                let alias = |side: Side| if side == Side::Left { &l } else { &r };
                select_list(
                    sql,
                    select
                        .iter()
                        .map(|&(side, i)| format!("{}.c{i}", alias(side))),
                );
                let keys: Vec<String> = on
                    .iter()
                    .map(|(a, b)| format!("{l}.c{a} = {r}.c{b}"))
                    .collect();
                let (joined, kept, exists) = match kind {
                    JoinKind::Inner => ("JOIN", Side::Left, ""),
                    JoinKind::Left => ("LEFT JOIN", Side::Left, ""),
                    JoinKind::Right => ("RIGHT JOIN", Side::Left, ""),
                    JoinKind::Full => ("FULL JOIN", Side::Left, ""),
                    JoinKind::Semi(kept) => ("", *kept, "EXISTS"),
                    JoinKind::Anti(kept) => ("", *kept, "NOT EXISTS"),
                };
                if exists.is_empty() {
                    sql.push_str(" FROM (");
                    left.render_with(owner, backend, sql, args, aliases);
                    let _ = write!(sql, ") AS {l} {joined} (");
                    right.render_with(owner, backend, sql, args, aliases);
                    let _ = write!(sql, ") AS {r} ON ");
                    sql.push_str(&if keys.is_empty() {
                        "1 = 1".to_owned()
                    } else {
                        keys.join(" AND ")
                    });
                    return;
                }
                // A semi or anti join reads the kept side, and the other in `[NOT] EXISTS`.
                let (kept, other) = match kept {
                    Side::Left => ((left, &l), (right, &r)),
                    Side::Right => ((right, &r), (left, &l)),
                };
                sql.push_str(" FROM (");
                kept.0.render_with(owner, backend, sql, args, aliases);
                let _ = write!(sql, ") AS {} WHERE {exists} (SELECT 1 FROM (", kept.1);
                other.0.render_with(owner, backend, sql, args, aliases);
                let _ = write!(sql, ") AS {}", other.1);
                if !keys.is_empty() {
                    sql.push_str(" WHERE ");
                    sql.push_str(&keys.join(" AND "));
                }
                sql.push(')');
            }
        }
    }
}

/// One key of an `ORDER BY` over a relation's columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SortKey {
    /// The relation's column `c{column}`.
    pub column: usize,
    pub descending: bool,
    pub nulls_first: bool,
}

impl Relation {
    /// Appends ` ORDER BY c3 DESC NULLS FIRST, c0 COLLATE … ASC NULLS LAST, …` for `keys`
    /// (nothing for none), ordering as Arrow does: integers and timestamps by value, text
    /// by its bytes (`BINARY` on SQLite, `"C"` on Postgres), NULLs where the key says.
    pub fn render_order(&self, keys: &[SortKey], backend: Backend, sql: &mut String) {
        for (n, key) in keys.iter().enumerate() {
            sql.push_str(if n == 0 { " ORDER BY " } else { ", " });
            let _ = write!(sql, "c{}", key.column);
            if self.kind(key.column) == ColumnKind::Text {
                sql.push_str(match backend {
                    Backend::Sqlite => " COLLATE BINARY",
                    Backend::Postgres => " COLLATE \"C\"",
                });
            }
            sql.push_str(if key.descending { " DESC" } else { " ASC" });
            sql.push_str(if key.nulls_first {
                " NULLS FIRST"
            } else {
                " NULLS LAST"
            });
        }
    }
}

/// `SELECT e0 AS c0, e1 AS c1, …` (`SELECT 1` for no column: only the rows count).
fn select_list(sql: &mut String, items: impl Iterator<Item = String>) {
    sql.push_str("SELECT ");
    let mut any = false;
    for (i, item) in items.enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        let _ = write!(sql, "{item} AS c{i}");
        any = true;
    }
    if !any {
        sql.push('1');
    }
}

/// The most columns a relation may have.
pub(crate) const MAX_COLUMNS: usize = 256;

/// `c0` … `c255`.
static NAMES: LazyLock<Vec<String>> =
    LazyLock::new(|| (0..MAX_COLUMNS).map(|i| format!("c{i}")).collect());

/// In the order `column` indexes them.
const KINDS: [ColumnKind; 4] = [
    ColumnKind::Text,
    ColumnKind::Int32,
    ColumnKind::Int64,
    ColumnKind::Timestamp,
];

/// Column `c{i}` of each type, defined once: the scan of a join reads its columns through
/// the same `&'static ColumnDef`s as a table's (for the Arrow conversion and the dynamic
/// filters).
static COLUMNS: LazyLock<Vec<[ColumnDef; 4]>> = LazyLock::new(|| {
    let names: &'static [String] = &NAMES;
    names
        .iter()
        .map(|name| {
            KINDS.map(|kind| ColumnDef {
                name,
                kind,
                storage: name,
            })
        })
        .collect()
});

/// Column `c{i}` of a relation's SELECT, of type `kind` (`i < MAX_COLUMNS`).
pub(crate) fn column(i: usize, kind: ColumnKind) -> &'static ColumnDef {
    let columns: &'static [[ColumnDef; 4]] = &COLUMNS;
    let k = match kind {
        ColumnKind::Text => 0,
        ColumnKind::Int32 => 1,
        ColumnKind::Int64 => 2,
        ColumnKind::Timestamp => 3,
    };
    &columns[i][k]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::tables::{EVAL_RUNS, MODEL_ALIASES};

    fn aliases() -> Relation {
        Relation::Table {
            table: &MODEL_ALIASES,
            columns: vec![&MODEL_ALIASES.columns[0], &MODEL_ALIASES.columns[2]],
            predicates: vec![],
        }
    }

    fn runs() -> Relation {
        Relation::Table {
            table: &EVAL_RUNS,
            columns: vec![&EVAL_RUNS.columns[0], &EVAL_RUNS.columns[1]],
            predicates: vec![],
        }
    }

    #[test]
    fn each_table_has_its_own_tenant_predicate_inside_its_derived_table() {
        let join = Relation::Join {
            left: Box::new(aliases()),
            right: Box::new(runs()),
            kind: JoinKind::Left,
            on: vec![(0, 1)],
            select: vec![(Side::Left, 1), (Side::Right, 0)],
        };
        let (mut sql, mut args) = (String::new(), Vec::new());
        join.render("t", Backend::Sqlite, &mut sql, &mut args);
        assert_eq!(
            sql,
            "SELECT j1.c1 AS c0, j2.c0 AS c1 FROM (SELECT model_id AS c0, version AS c1 FROM \
             model_aliases WHERE owner IN ($1, '')) AS j1 LEFT JOIN (SELECT run_id AS c0, \
             model_id AS c1 FROM eval_runs WHERE owner IN ($2, '')) AS j2 ON j1.c0 = j2.c1"
        );
        assert_eq!(args, [Value::from("t"), Value::from("t")]);
        assert_eq!(join.kind(0), ColumnKind::Int32);
        assert_eq!(join.table_names(), ["model_aliases", "eval_runs"]);
    }

    #[test]
    fn an_anti_join_is_not_exists_over_the_other_side() {
        let join = Relation::Join {
            left: Box::new(aliases()),
            right: Box::new(runs()),
            kind: JoinKind::Anti(Side::Right),
            on: vec![(0, 1)],
            select: vec![(Side::Right, 0)],
        };
        let (mut sql, mut args) = (String::new(), Vec::new());
        join.render("", Backend::Postgres, &mut sql, &mut args);
        assert_eq!(
            sql,
            "SELECT j2.c0 AS c0 FROM (SELECT run_id AS c0, model_id AS c1 FROM eval_runs WHERE \
             owner IN ($1, '')) AS j2 WHERE NOT EXISTS (SELECT 1 FROM (SELECT model_id AS c0, \
             version AS c1 FROM model_aliases WHERE owner IN ($2, '')) AS j1 WHERE j1.c0 = j2.c1)"
        );
    }

    #[test]
    fn an_order_sorts_text_by_its_bytes_and_places_nulls_as_asked() {
        let (mut sql, mut order) = (String::new(), String::new());
        let table = runs();
        let keys = [
            SortKey {
                column: 1,
                descending: true,
                nulls_first: true,
            },
            SortKey {
                column: 0,
                descending: false,
                nulls_first: false,
            },
        ];
        table.render_order(&keys, Backend::Postgres, &mut sql);
        table.render_order(&keys, Backend::Sqlite, &mut order);
        assert_eq!(
            sql,
            " ORDER BY c1 COLLATE \"C\" DESC NULLS FIRST, c0 COLLATE \"C\" ASC NULLS LAST"
        );
        assert_eq!(
            order,
            " ORDER BY c1 COLLATE BINARY DESC NULLS FIRST, c0 COLLATE BINARY ASC NULLS LAST"
        );
        let versions = aliases();
        let mut sql = String::new();
        versions.render_order(&keys[1..], Backend::Postgres, &mut sql);
        versions.render_order(&[], Backend::Postgres, &mut sql);
        assert_eq!(sql, " ORDER BY c0 COLLATE \"C\" ASC NULLS LAST");
    }

    #[test]
    fn numbered_columns_are_static_per_type() {
        let c = column(7, ColumnKind::Timestamp);
        assert_eq!(
            (c.name, c.storage, c.kind),
            ("c7", "c7", ColumnKind::Timestamp)
        );
        assert_eq!(column(255, ColumnKind::Text).name, "c255");
    }
}
