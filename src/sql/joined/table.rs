//! A join of catalog tables as the table the rewritten plan scans.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::internal_err;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

use super::relation::{self, Relation};
use crate::sql::binding::bound_catalog;
use crate::sql::scan::{CatalogScanExec, ScanSource};

/// The rows of a join of catalog tables, read by one statement. Like the catalog's tables
/// it holds no scope: its scan acts for the session that runs it (`sql::binding`). No
/// filter is pushed into it (DataFusion applies those above), and it is never written.
#[derive(Debug)]
pub(crate) struct JoinedTable {
    relation: Arc<Relation>,
    /// The relation's columns the table shows, in order: field `c{p}` of the table is
    /// column `c{columns[p]}` of the relation.
    columns: Vec<usize>,
    schema: SchemaRef,
}

impl JoinedTable {
    pub fn new(relation: Relation, columns: Vec<usize>) -> Self {
        let fields: Vec<Field> = columns
            .iter()
            .enumerate()
            .map(|(p, &i)| Field::new(format!("c{p}"), relation.kind(i).data_type(), true))
            .collect();
        JoinedTable {
            relation: Arc::new(relation),
            columns,
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
        let indices: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.columns.len()).collect(),
        };
        let columns = indices
            .iter()
            .map(|&p| {
                let i = self.columns[p];
                relation::column(i, self.relation.kind(i))
            })
            .collect();
        let schema = Arc::new(self.schema.project(&indices)?);
        let catalog = bound_catalog(state.config_options())?;
        Ok(Arc::new(CatalogScanExec::new(
            ScanSource::Join(Arc::clone(&self.relation)),
            catalog.store().clone(),
            catalog.scope(),
            columns,
            schema,
            Vec::new(),
            limit,
        )))
    }
}
