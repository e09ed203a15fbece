//! A join of catalog tables as the table the rewritten plan scans.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::internal_err;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

use super::relation::{self, Relation, SortKey};
use crate::sql::binding::bound_catalog;
use crate::sql::scan::{CatalogScanExec, ScanSource};
use crate::sql::tables::projected;

/// The rows of a join of catalog tables, read by one statement: field `c{i}` is the
/// relation's column `c{i}`. Like the catalog's tables it holds no scope: its scan acts for
/// the session that runs it (`sql::binding`). No filter is pushed into it (DataFusion
/// applies those above), and it is never written.
///
/// A sort with a limit above the join may be sent with it (`order`, `fetch`): the table's
/// rows are then the first `fetch` in that order, and the sort above picks them again.
#[derive(Debug)]
pub(crate) struct JoinedTable {
    relation: Arc<Relation>,
    order: Arc<[SortKey]>,
    fetch: Option<usize>,
    schema: SchemaRef,
}

impl JoinedTable {
    /// The table of `relation`, whose i-th column is nullable if `nullable[i]`: its first
    /// `fetch` rows in `order` (all rows, unordered, for no key and no fetch).
    pub fn new(
        relation: Relation,
        nullable: Vec<bool>,
        order: Vec<SortKey>,
        fetch: Option<usize>,
    ) -> Self {
        let fields: Vec<Field> = nullable
            .into_iter()
            .enumerate()
            .map(|(i, nullable)| {
                Field::new(format!("c{i}"), relation.kind(i).data_type(), nullable)
            })
            .collect();
        JoinedTable {
            relation: Arc::new(relation),
            order: order.into(),
            fetch,
            schema: Arc::new(Schema::new(fields)),
        }
    }
}

#[async_trait]
impl TableProvider for JoinedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !filters.is_empty() {
            return internal_err!("no filter is pushed into a join of catalog tables");
        }
        let indices = projected(projection, self.schema.fields().len());
        let columns = indices
            .iter()
            .map(|&i| relation::column(i, self.relation.kind(i)))
            .collect();
        let schema = Arc::new(self.schema.project(&indices)?);
        let catalog = bound_catalog(state.config_options())?;
        Ok(Arc::new(CatalogScanExec::new(
            ScanSource::Join {
                relation: Arc::clone(&self.relation),
                order: Arc::clone(&self.order),
            },
            catalog.store().clone(),
            catalog.scope(),
            columns,
            schema,
            Vec::new(),
            // A limit DataFusion pushes here is one more bound on the same rows.
            match (limit, self.fetch) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        )))
    }
}
