//! `INSERT INTO` and `DELETE FROM` on the catalog tables (SPEC §7).
//!
//! Both do their work when the returned plan executes, never while planning, so
//! `EXPLAIN INSERT` / `EXPLAIN DELETE` write nothing. Each statement is one transaction:
//! one bad row, or one referenced model, and nothing is written.

mod delete;
mod guard;
mod insert;

pub(crate) use delete::{CatalogDeleteExec, delete_predicates};
pub(crate) use guard::DeleteGuard;
pub(crate) use insert::CatalogSink;
