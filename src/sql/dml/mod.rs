//! `INSERT INTO` and `DELETE FROM` on the catalog tables (SPEC §7).
//!
//! Both do their work when the returned plan executes, never while planning, so
//! `EXPLAIN INSERT` / `EXPLAIN DELETE` write nothing. Each statement is one transaction:
//! one bad row, or one referenced model, and nothing is written. The DELETE forms that
//! DataFusion would mishandle are refused earlier by the analyzer rule in `sql::guard`.

mod delete;
mod insert;

pub(crate) use delete::{CatalogDeleteExec, delete_predicates};
pub(crate) use insert::CatalogSink;
