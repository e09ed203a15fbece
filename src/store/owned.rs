//! Write statements whose row owner is the transaction's by construction (SPEC §2, defence
//! in depth).
//!
//! A write names the owner of the rows it touches in one placeholder, and [`Tx`] binds its
//! own owner there: callers never pass that value, so no argument of theirs can stand in
//! for it. What makes the placeholder *the row's owner* is the statement's shape, checked
//! by [`check`] before the statement can run:
//!
//! - `INSERT INTO t (owner, …) VALUES (<owner>, …)[, (<owner>, …)…]`: `owner` is the first
//!   column and the owner placeholder the first value of every row. An upsert's
//!   `ON CONFLICT … DO UPDATE` must be guarded by `WHERE t.owner = excluded.owner`, so it
//!   never updates another owner's row, and must not assign `owner`.
//! - `UPDATE t SET … WHERE owner = <owner> [AND …]` and `DELETE FROM t WHERE owner =
//!   <owner> [AND …]`: the `WHERE` clause is `owner = <owner>` AND-ed with the rest (no
//!   top-level `OR`, which would escape it), and `SET` never assigns `owner`.
//!
//! The check is conservative: a form it does not recognise (comments, several statements,
//! quoted identifiers, dollar quoting, escape strings, `WITH`, …) is refused.
//! Statements written in the source are [`OwnedWrite`] constants, checked when the crate
//! compiles (a statement that fails is a compile error); statements built at run time
//! are checked by [`Tx::write_built`] before they run.
//!
//! [`Tx`]: super::Tx
//! [`Tx::write_built`]: super::Tx::write_built

use crate::access::Access;

/// Where a statement built at run time carries the row's owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OwnerParam {
    /// Numbered placeholders: `$1` is the owner (it may appear more than once) and the
    /// caller's values are `$2`, `$3`, … (Every [`OwnedWrite`] constant has this form.)
    Numbered,
    /// Positional `?` placeholders of a multi-row `INSERT … VALUES` (SQLite looks a
    /// numbered placeholder up by name, a linear search per parameter): the first value of
    /// every row is the owner, and the caller passes the other values of each row, row
    /// after row.
    RowHead,
}

/// A write statement written in the source, whose `$1` is the row's owner.
///
/// Only [`OwnedWrite::new`] makes one, and it refuses (at compile time, for a constant) a
/// statement that does not put `$1` in its owner column or owner predicate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OwnedWrite {
    sql: &'static str,
    access: Access,
}

impl OwnedWrite {
    /// Checks `sql` (see the module doc) and wraps it with the access level it needs.
    ///
    /// # Panics
    /// When `sql` fails the check: a compile error for a `const`.
    pub(crate) const fn new(sql: &'static str) -> Self {
        match check(sql, OwnerParam::Numbered) {
            Ok(shape) => OwnedWrite {
                sql,
                access: shape.access,
            },
            Err(why) => panic!("{}", why),
        }
    }

    /// The statement's text.
    pub(crate) const fn sql(&self) -> &'static str {
        self.sql
    }

    /// The access level running it needs.
    pub(crate) const fn access(&self) -> Access {
        self.access
    }
}

/// What [`check`] learned about a statement: for [`OwnerParam::RowHead`], how many rows
/// its `VALUES` holds and how many placeholders each (owner included); `width` is 0 for
/// [`OwnerParam::Numbered`]. And the access level running it needs (SPEC §14): a `DELETE`
/// needs what [`Access::to_delete_from`] says for its table, any other write `write`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) rows: usize,
    pub(crate) width: usize,
    pub(crate) access: Access,
}

impl Shape {
    const fn write(rows: usize, width: usize) -> Shape {
        Shape {
            rows,
            width,
            access: Access::Write,
        }
    }
}

type Check<T> = Result<T, &'static str>;

/// Checks that `sql` writes only rows whose owner is the value bound at `owner`.
pub(crate) const fn check(sql: &str, owner: OwnerParam) -> Check<Shape> {
    let b = sql.as_bytes();
    let question_marks = match lex(b, owner) {
        Ok(n) => n,
        Err(e) => return Err(e),
    };
    let i = skip_ws(b, 0);
    let shape = if word_at(b, i, b"INSERT") {
        match insert(b, i + 6, owner) {
            Ok(shape) => shape,
            Err(e) => return Err(e),
        }
    } else if word_at(b, i, b"UPDATE") {
        match update(b, i + 6, owner) {
            Ok(()) => Shape::write(0, 0),
            Err(e) => return Err(e),
        }
    } else if word_at(b, i, b"DELETE") {
        match delete(b, i + 6, owner) {
            Ok(access) => Shape {
                rows: 0,
                width: 0,
                access,
            },
            Err(e) => return Err(e),
        }
    } else {
        return Err("a write statement starts with INSERT, UPDATE or DELETE");
    };
    if question_marks != shape.rows * shape.width {
        return Err("positional placeholders belong in the VALUES rows only");
    }
    Ok(shape)
}

/// Refuses what could hide text from the shape checks, and counts `?` placeholders.
const fn lex(b: &[u8], owner: OwnerParam) -> Check<usize> {
    let (mut i, mut depth, mut question_marks) = (0, 0usize, 0);
    while i < b.len() {
        let c = b[i];
        if c == b'\'' {
            if i > 0 && is_ident(b[i - 1]) {
                return Err("prefixed string literals (E'…', U&'…') are not accepted");
            }
            i = string_end(b, i);
            if i > b.len() {
                return Err("unterminated string literal");
            }
            continue;
        }
        match c {
            b';' => return Err("a write is a single statement (no ';')"),
            b'"' | b'`' | b'[' => return Err("quoted identifiers are not accepted"),
            b'-' if i + 1 < b.len() && b[i + 1] == b'-' => {
                return Err("comments are not accepted");
            }
            b'/' if i + 1 < b.len() && b[i + 1] == b'*' => {
                return Err("comments are not accepted");
            }
            b'$' => {
                if !(i + 1 < b.len() && b[i + 1].is_ascii_digit()) {
                    return Err("'$' is only accepted in numbered placeholders ($1, $2, …)");
                }
                if matches!(owner, OwnerParam::RowHead) {
                    return Err("numbered placeholders in a statement with positional owners");
                }
            }
            b'?' => {
                if matches!(owner, OwnerParam::Numbered) {
                    return Err("positional '?' placeholders in a statement whose owner is $1");
                }
                if i + 1 < b.len() && is_ident(b[i + 1]) {
                    return Err("numbered '?' placeholders are not accepted");
                }
                question_marks += 1;
            }
            b'(' => depth += 1,
            b')' => {
                if depth == 0 {
                    return Err("unbalanced parentheses");
                }
                depth -= 1;
            }
            _ => {}
        }
        i += 1;
    }
    if depth != 0 {
        return Err("unbalanced parentheses");
    }
    Ok(question_marks)
}

/// `INTO t (owner, …) VALUES (<owner>, …)[, …] [ON CONFLICT …] [RETURNING …]`, from after
/// `INSERT`.
const fn insert(b: &[u8], i: usize, owner: OwnerParam) -> Check<Shape> {
    let i = skip_ws(b, i);
    if !word_at(b, i, b"INTO") {
        return Err("INSERT INTO expected");
    }
    let table_start = skip_ws(b, i + 4);
    let table_end = ident_end(b, table_start);
    if table_end == table_start {
        return Err("INSERT INTO names its table");
    }
    let i = skip_ws(b, table_end);
    if i >= b.len() || b[i] != b'(' {
        return Err("an INSERT lists its columns");
    }
    let columns_end = close_of(b, i);
    let first = skip_ws(b, i + 1);
    if !word_at(b, first, b"OWNER") {
        return Err("an INSERT's first column is owner");
    }
    let after = skip_ws(b, first + 5);
    if after >= b.len() || !(b[after] == b',' || b[after] == b')') {
        return Err("an INSERT's first column is owner");
    }
    let mut i = skip_ws(b, columns_end + 1);
    if !word_at(b, i, b"VALUES") {
        return Err("an INSERT writes VALUES rows");
    }
    i = skip_ws(b, i + 6);
    let (mut rows, mut width) = (0, 0);
    loop {
        if i >= b.len() || b[i] != b'(' {
            return Err("a VALUES row is parenthesized");
        }
        let row_end = close_of(b, i);
        let value = skip_ws(b, i + 1);
        let value_end = match placeholder_at(b, value, owner) {
            Some(end) => end,
            None => return Err("the first value of every VALUES row is the owner placeholder"),
        };
        let after = skip_ws(b, value_end);
        if after >= b.len() || !(b[after] == b',' || b[after] == b')') {
            return Err("the first value of every VALUES row is the owner placeholder");
        }
        if matches!(owner, OwnerParam::RowHead) {
            let n = count_question_marks(b, i, row_end);
            if rows > 0 && n != width {
                return Err("every VALUES row has the same number of placeholders");
            }
            width = n;
        }
        rows += 1;
        i = skip_ws(b, row_end + 1);
        if i < b.len() && b[i] == b',' {
            i = skip_ws(b, i + 1);
        } else {
            break;
        }
    }
    // An upsert may update an existing row: only one of the same owner.
    let mut k = i;
    while k < b.len() {
        k = next_top_word(b, k, b.len(), b"DO");
        if k < b.len() && word_at(b, skip_ws(b, k + 2), b"UPDATE") {
            let set = skip_ws(b, skip_ws(b, k + 2) + 6);
            if !word_at(b, set, b"SET") {
                return Err("DO UPDATE SET expected");
            }
            let where_at = next_top_word(b, set + 3, b.len(), b"WHERE");
            if let Err(e) = assignments(b, set + 3, where_at) {
                return Err(e);
            }
            if where_at == b.len() {
                return Err(
                    "an upsert's DO UPDATE is guarded by WHERE <table>.owner = excluded.owner",
                );
            }
            return upsert_guard(b, where_at + 5, table_start, table_end, rows, width);
        }
        if k < b.len() {
            k += 2;
        }
    }
    Ok(Shape::write(rows, width))
}

/// `<table>.owner = excluded.owner`, alone or AND-ed with the rest, after the WHERE of an
/// upsert's `DO UPDATE`.
const fn upsert_guard(
    b: &[u8],
    i: usize,
    table_start: usize,
    table_end: usize,
    rows: usize,
    width: usize,
) -> Check<Shape> {
    let i = skip_ws(b, i);
    let qualifier_end = name_end(b, i);
    if !same_ident(b, i, qualifier_end, table_start, table_end)
        || qualifier_end >= b.len()
        || b[qualifier_end] != b'.'
        || !word_at(b, qualifier_end + 1, b"OWNER")
    {
        return Err("an upsert's DO UPDATE is guarded by WHERE <table>.owner = excluded.owner");
    }
    let i = skip_ws(b, qualifier_end + 6);
    if i >= b.len() || b[i] != b'=' {
        return Err("an upsert's DO UPDATE is guarded by WHERE <table>.owner = excluded.owner");
    }
    let i = skip_ws(b, i + 1);
    if !(word_at(b, i, b"EXCLUDED")
        && i + 8 < b.len()
        && b[i + 8] == b'.'
        && word_at(b, i + 9, b"OWNER"))
    {
        return Err("an upsert's DO UPDATE is guarded by WHERE <table>.owner = excluded.owner");
    }
    match conjunction_rest(b, i + 14) {
        Ok(()) => Ok(Shape::write(rows, width)),
        Err(e) => Err(e),
    }
}

/// `t SET … WHERE owner = $1 …`, from after `UPDATE`.
const fn update(b: &[u8], i: usize, owner: OwnerParam) -> Check<()> {
    let table_start = skip_ws(b, i);
    let table_end = ident_end(b, table_start);
    if table_end == table_start {
        return Err("UPDATE names its table");
    }
    let set = skip_ws(b, table_end);
    if !word_at(b, set, b"SET") {
        return Err("UPDATE t SET expected");
    }
    let where_at = next_top_word(b, set + 3, b.len(), b"WHERE");
    if let Err(e) = assignments(b, set + 3, where_at) {
        return Err(e);
    }
    owner_predicate(b, where_at, owner)
}

/// `FROM t WHERE owner = $1 …`, from after `DELETE`; the access level deleting from `t`
/// needs.
const fn delete(b: &[u8], i: usize, owner: OwnerParam) -> Check<Access> {
    let i = skip_ws(b, i);
    if !word_at(b, i, b"FROM") {
        return Err("DELETE FROM expected");
    }
    let table_start = skip_ws(b, i + 4);
    let table_end = ident_end(b, table_start);
    if table_end == table_start {
        return Err("DELETE FROM names its table");
    }
    let table = b.split_at(table_end).0.split_at(table_start).1;
    match owner_predicate(b, skip_ws(b, table_end), owner) {
        Ok(()) => Ok(Access::to_delete_from_bytes(table)),
        Err(e) => Err(e),
    }
}

/// `WHERE owner = $1`, alone or AND-ed with the rest, at `i`.
const fn owner_predicate(b: &[u8], i: usize, owner: OwnerParam) -> Check<()> {
    if !word_at(b, i, b"WHERE") {
        return Err("an UPDATE or DELETE restricts its rows: WHERE owner = $1 …");
    }
    if matches!(owner, OwnerParam::RowHead) {
        return Err("positional owner placeholders are for multi-row INSERTs only");
    }
    let i = skip_ws(b, i + 5);
    if !word_at(b, i, b"OWNER") {
        return Err("the WHERE clause of an UPDATE or DELETE starts with owner = $1");
    }
    let i = skip_ws(b, i + 5);
    if i >= b.len() || b[i] != b'=' {
        return Err("the WHERE clause of an UPDATE or DELETE starts with owner = $1");
    }
    let i = skip_ws(b, i + 1);
    match placeholder_at(b, i, owner) {
        Some(end) => conjunction_rest(b, end),
        None => Err("the WHERE clause of an UPDATE or DELETE starts with owner = $1"),
    }
}

/// After the owner predicate: the end, `AND …` without a top-level `OR`, or `RETURNING …`.
const fn conjunction_rest(b: &[u8], i: usize) -> Check<()> {
    let i = skip_ws(b, i);
    if i < b.len() && !word_at(b, i, b"AND") && !word_at(b, i, b"RETURNING") {
        return Err("the owner predicate is followed by AND, RETURNING or nothing");
    }
    if next_top_word(b, i, b.len(), b"OR") < b.len() {
        return Err("a top-level OR would escape the owner predicate");
    }
    Ok(())
}

/// The `SET` list `[from, to)`: no assignment to `owner`.
const fn assignments(b: &[u8], from: usize, to: usize) -> Check<()> {
    let mut i = from;
    while i < to {
        let target = skip_ws(b, i);
        let end = ident_end(b, target);
        if end == target {
            return Err("a SET item assigns a column");
        }
        // The column is the last dot-separated part of the target.
        let mut column = end;
        while column > target && b[column - 1] != b'.' {
            column -= 1;
        }
        if word_at(b, column, b"OWNER") {
            return Err("a write never assigns owner");
        }
        i = next_top_comma(b, end, to) + 1;
    }
    Ok(())
}

/// `$1` (numbered) or a lone `?` (positional) at `i`; returns where it ends.
const fn placeholder_at(b: &[u8], i: usize, owner: OwnerParam) -> Option<usize> {
    match owner {
        OwnerParam::Numbered => {
            if i + 1 < b.len()
                && b[i] == b'$'
                && b[i + 1] == b'1'
                && !(i + 2 < b.len() && is_ident(b[i + 2]))
            {
                Some(i + 2)
            } else {
                None
            }
        }
        OwnerParam::RowHead => {
            if i < b.len() && b[i] == b'?' {
                Some(i + 1)
            } else {
                None
            }
        }
    }
}

const fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

const fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The end of a (possibly dot-qualified) identifier starting at `i`.
const fn ident_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (is_ident(b[i]) || b[i] == b'.') {
        i += 1;
    }
    i
}

/// The end of an unqualified identifier starting at `i`.
const fn name_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ident(b[i]) {
        i += 1;
    }
    i
}

/// Whether `[a, a_end)` and `[c, c_end)` are the same identifier, ignoring ASCII case.
const fn same_ident(b: &[u8], a: usize, a_end: usize, c: usize, c_end: usize) -> bool {
    if a_end - a != c_end - c || a_end == a {
        return false;
    }
    let mut k = 0;
    while k < a_end - a {
        if !b[a + k].eq_ignore_ascii_case(&b[c + k]) {
            return false;
        }
        k += 1;
    }
    true
}

/// Whether the keyword `w` (upper case) is the whole word at `i`, in any case.
const fn word_at(b: &[u8], i: usize, w: &[u8]) -> bool {
    if i + w.len() > b.len() || (i > 0 && is_ident(b[i - 1])) {
        return false;
    }
    let mut k = 0;
    while k < w.len() {
        if !b[i + k].eq_ignore_ascii_case(&w[k]) {
            return false;
        }
        k += 1;
    }
    !(i + w.len() < b.len() && is_ident(b[i + w.len()]))
}

/// The index after the string literal opening at `i` (past the end when unterminated).
/// A doubled quote inside is read as two adjacent literals, which is the same extent.
const fn string_end(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() && b[j] != b'\'' {
        j += 1;
    }
    j + 1
}

/// The `)` matching the `(` at `i` (the statement is balanced, see [`lex`]).
const fn close_of(b: &[u8], i: usize) -> usize {
    let (mut j, mut depth) = (i, 0usize);
    while j < b.len() {
        match b[j] {
            b'\'' => {
                j = string_end(b, j);
                continue;
            }
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
        j += 1;
    }
    b.len()
}

/// The `?` placeholders in `[from, to)`, outside string literals.
const fn count_question_marks(b: &[u8], from: usize, to: usize) -> usize {
    let (mut j, mut n) = (from, 0);
    while j < to {
        if b[j] == b'\'' {
            j = string_end(b, j);
            continue;
        }
        if b[j] == b'?' {
            n += 1;
        }
        j += 1;
    }
    n
}

/// The first top-level (outside parentheses and literals) occurrence of keyword `w` in
/// `[from, to)`, or `to`.
const fn next_top_word(b: &[u8], from: usize, to: usize, w: &[u8]) -> usize {
    let (mut j, mut depth) = (from, 0usize);
    while j < to {
        match b[j] {
            b'\'' => {
                j = string_end(b, j);
                continue;
            }
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            _ => {
                if depth == 0 && word_at(b, j, w) {
                    return j;
                }
            }
        }
        j += 1;
    }
    to
}

/// The first top-level `,` in `[from, to)`, or `to`.
const fn next_top_comma(b: &[u8], from: usize, to: usize) -> usize {
    let (mut j, mut depth) = (from, 0usize);
    while j < to {
        match b[j] {
            b'\'' => {
                j = string_end(b, j);
                continue;
            }
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => return j,
            _ => {}
        }
        j += 1;
    }
    to
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(sql: &str) -> Check<Shape> {
        check(sql, OwnerParam::Numbered)
    }

    #[test]
    fn owner_column_and_owner_predicate_forms_are_accepted() {
        for sql in [
            "INSERT INTO eval_runs (owner, run_id) VALUES ($1, $2) ON CONFLICT DO NOTHING \
             RETURNING owner, run_id",
            "insert into t (owner) values ($1)",
            "INSERT INTO models (owner, model_key, backend) VALUES ($1, $2, $3), ($1, $4, $5) \
             ON CONFLICT (model_key) DO UPDATE SET backend = excluded.backend, \
             artifact_path = COALESCE(excluded.artifact_path, models.artifact_path) \
             WHERE models.owner = excluded.owner RETURNING owner",
            "UPDATE t SET a = $2, b = CASE WHEN c >= $3 THEN 'x; y' ELSE b END \
             WHERE owner = $1 AND id = $4",
            "UPDATE t SET a = $2 WHERE owner = $1 AND id = (SELECT id FROM t \
             WHERE owner = $1 OR x ORDER BY id LIMIT 1) RETURNING owner",
            "DELETE FROM t WHERE owner = $1",
            "DELETE FROM t WHERE owner = $1 AND (a = $2 OR b LIKE $3 ESCAPE '\\') AND (c IN ($4, $5))",
        ] {
            assert_eq!(numbered(sql).map(|_| ()), Ok(()), "{sql}");
        }
        let shape = check(
            "INSERT INTO t (owner, a, b) VALUES (?, ?, 'x', ?), (?, ?, 'y', ?)",
            OwnerParam::RowHead,
        );
        assert_eq!(shape, Ok(Shape::write(2, 3)));
    }

    #[test]
    fn a_statement_knows_the_access_level_it_needs() {
        let level = |sql| numbered(sql).map(|shape| shape.access);
        for (sql, needed) in [
            ("INSERT INTO models (owner) VALUES ($1)", Access::Write),
            (
                "UPDATE training_jobs SET a = $2 WHERE owner = $1",
                Access::Write,
            ),
            ("DELETE FROM model_aliases WHERE owner = $1", Access::Write),
            (
                "delete from Model_Tags WHERE owner = $1 AND k = $2",
                Access::Write,
            ),
            ("DELETE FROM models WHERE owner = $1", Access::Admin),
            ("DELETE FROM eval_runs WHERE owner = $1", Access::Admin),
            ("DELETE FROM result_tables WHERE owner = $1", Access::Admin),
            ("DELETE FROM training_jobs WHERE owner = $1", Access::Admin),
            // A table the rule does not know is an admin's to delete from.
            (
                "DELETE FROM model_tags_archive WHERE owner = $1",
                Access::Admin,
            ),
        ] {
            assert_eq!(level(sql), Ok(needed), "{sql}");
        }
        const REMOVE_TAG: OwnedWrite = OwnedWrite::new("DELETE FROM model_tags WHERE owner = $1");
        assert_eq!(REMOVE_TAG.access(), Access::Write);
    }

    #[test]
    fn a_write_that_could_touch_another_owners_row_is_refused() {
        for sql in [
            // No owner predicate at all: the old "some bind equals the owner" check let
            // this through whenever any argument equalled the owner ('' when unscoped).
            "UPDATE models SET artifact_path = $2 WHERE model_key = $3",
            "DELETE FROM models WHERE model_key = $2",
            "DELETE FROM models",
            // The owner predicate compares with a caller's value, not the transaction's.
            "DELETE FROM models WHERE owner = $2 AND model_key = $3",
            "UPDATE models SET backend = $2 WHERE owner = $10",
            "UPDATE models SET backend = $2 WHERE model_key = $3 AND owner = $1",
            "UPDATE models SET backend = $2 WHERE models.owner = $1",
            "UPDATE models SET backend = $2 WHERE owner = $1 || ''",
            "UPDATE models SET backend = $2 WHERE owner = $1::text",
            "UPDATE models SET backend = $2 WHERE (owner = $1 OR true)",
            // A top-level OR escapes the owner predicate.
            "UPDATE models SET backend = $2 WHERE owner = $1 OR model_key = $3",
            "DELETE FROM models WHERE owner = $1 AND a = $2 or b = $3",
            // Moving a row to another owner.
            "UPDATE models SET backend = $2, owner = $3 WHERE owner = $1",
            "UPDATE models SET models.OWNER = $3 WHERE owner = $1",
            // An insert whose owner column is not the transaction's placeholder.
            "INSERT INTO models (model_key, owner) VALUES ($2, $1)",
            "INSERT INTO models (owner, model_key) VALUES ($2, $3)",
            "INSERT INTO models (owner, model_key) VALUES ($1, $2), ($3, $4)",
            "INSERT INTO models (owner, model_key) VALUES ($1 || 'x', $2)",
            "INSERT INTO models (owner, model_key) SELECT owner, model_key FROM models",
            // An upsert that may update another owner's row, or re-own it.
            "INSERT INTO models (owner, k) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET b = 1",
            "INSERT INTO models (owner, k) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET b = 1 \
             WHERE excluded.owner = excluded.owner",
            "INSERT INTO models (owner, k) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET b = 1 \
             WHERE models.owner = excluded.owner OR true",
            "INSERT INTO models (owner, k) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE \
             SET owner = excluded.owner WHERE models.owner = excluded.owner",
            // Forms that could hide text from the checks.
            "DELETE FROM models WHERE owner = $1; DELETE FROM models",
            "DELETE FROM models WHERE owner = $1 -- \n OR true",
            "DELETE FROM models WHERE owner = $1 AND /* ( */ a OR b",
            "DELETE FROM models WHERE owner = $1 AND a = $$)$$ OR b = $2",
            "DELETE FROM models WHERE owner = $1 AND a = E'\\')' OR b = $2",
            "DELETE FROM \"models\" WHERE \"owner\" = $2 AND owner = $1",
            "WITH x AS (SELECT 1) DELETE FROM models WHERE owner = $1",
            "DELETE FROM models WHERE owner = $1 AND a = ?",
            "SELECT * FROM models WHERE owner = $1",
        ] {
            assert!(numbered(sql).is_err(), "accepted: {sql}");
        }
        for sql in [
            "INSERT INTO t (owner, a) VALUES (?, ?), (?, ?, ?)",
            "INSERT INTO t (owner, a) VALUES (?, ?), ($1, ?)",
            "INSERT INTO t (owner, a) VALUES (?, ?) ON CONFLICT (a) DO UPDATE SET a = ? \
             WHERE t.owner = excluded.owner",
            "INSERT INTO t (owner, a) VALUES (?1, ?2)",
            "UPDATE t SET a = ? WHERE owner = ?",
        ] {
            assert!(check(sql, OwnerParam::RowHead).is_err(), "accepted: {sql}");
        }
    }

    #[test]
    #[should_panic(expected = "starts with owner = $1")]
    fn a_statement_that_fails_the_check_cannot_be_made() {
        let sql: &'static str = "UPDATE models SET a = $2 WHERE model_key = $1";
        let _ = std::hint::black_box(OwnedWrite::new)(sql);
    }
}
