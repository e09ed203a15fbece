//! The catalog's SQL functions (SPEC §7): asynchronous, volatile scalar UDFs bound to
//! the session's scope. DataFusion 55 evaluates async UDFs only at execution (never while
//! planning, constant folding or for `EXPLAIN`), and only in projections, filters and
//! aggregate arguments; elsewhere (`ORDER BY`, `GROUP BY`, DML filters) planning fails.
//!
//! Each row is its own call: one row's error fails the statement, but rows already
//! registered stay registered. Use `INSERT INTO jammi.public.models` for all-or-nothing.

mod delete_model;
mod register_model;

use std::sync::Arc;

use datafusion::logical_expr::ScalarUDF;
use datafusion::logical_expr::async_udf::AsyncScalarUDF;

pub use delete_model::DELETE_MODEL;
pub use register_model::REGISTER_MODEL;

use crate::catalog::Catalog;

/// The functions, bound to `catalog`'s scope, ready to register in a session.
pub(crate) fn all(catalog: &Catalog) -> Vec<ScalarUDF> {
    vec![
        AsyncScalarUDF::new(Arc::new(register_model::RegisterModelUdf::new(
            catalog.clone(),
        )))
        .into_scalar_udf(),
        AsyncScalarUDF::new(Arc::new(delete_model::DeleteModelUdf::new(catalog.clone())))
            .into_scalar_udf(),
    ]
}

/// Two instances of a function are interchangeable when they act for the same scope.
macro_rules! scoped_udf_identity {
    ($ty:ty) => {
        impl PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                self.catalog.scope() == other.catalog.scope()
            }
        }
        impl Eq for $ty {}
        impl std::hash::Hash for $ty {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.catalog.scope().hash(state);
            }
        }
    };
}
pub(crate) use scoped_udf_identity;
