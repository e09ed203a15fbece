//! `DELETE FROM jammi.public.<table> WHERE …`: the rows the session owns that match, in
//! one serializable transaction; for models every row is reference-checked first.
//!
//! DataFusion 55 hands `delete_from` only the filters it could extract: `WHERE 1 = 0`,
//! `IN (SELECT …)` and `EXISTS (…)` arrive as an empty list, which would mean "every row".
//! So an empty list is refused, as is any filter the catalog cannot evaluate exactly: the
//! catalog is never emptied, or over-deleted, by one statement. Forms whose filters would
//! be extracted wrongly (subqueries on the same table, joins, LIMIT) are refused earlier,
//! by the analyzer rule in `sql::guard`.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::FutureExt;

use crate::catalog::Catalog;
use crate::catalog::dml::{delete_model_in, record_events, removed};
use crate::error::{CatalogError, Result as CatalogResult};
use crate::sql::filter::{SqlPredicate, render_conjunction, translate};
use crate::sql::guard::has_subquery;
use crate::sql::tables::{TableDef, TableKind};
use crate::store::{OwnerParam, TxOptions, Value};
use crate::tenant::owner_of;

/// Translates a DELETE's filters, refusing what could delete more than was asked for.
pub(crate) fn delete_predicates(table: &TableDef, filters: &[Expr]) -> Result<Vec<SqlPredicate>> {
    let target = format!("jammi.public.{}", table.name);
    if filters.is_empty() {
        return plan_err!(
            "DELETE FROM {target} needs a WHERE clause on the table's own columns (e.g. WHERE \
             model_id = '…'); a missing or always-false WHERE, or one built on a subquery \
             (IN (SELECT …), EXISTS), reaches the catalog as no filter at all, and the catalog \
             never deletes every row in one statement"
        );
    }
    filters
        .iter()
        .map(|f| {
            if has_subquery(f) {
                return plan_err!(
                    "DELETE FROM {target}: subqueries are not supported in the WHERE clause; \
                     list the values instead (e.g. WHERE model_id IN ('a', 'b'))"
                );
            }
            match translate(f, table) {
                Some(p) => Ok(p),
                None => {
                    let shown = f.to_string();
                    if shown.contains('\0') {
                        // Escaped: a raw NUL would cut the message short in a terminal.
                        let shown = shown.replace('\0', "\\0");
                        return plan_err!(
                            "DELETE FROM {target}: `{shown}` compares with text holding the NUL \
                             character (U+0000), which no catalog row holds"
                        );
                    }
                    plan_err!(
                        "DELETE FROM {target}: the catalog cannot evaluate `{f}`; use comparisons \
                         of columns with literals (=, <>, <, >, IN, IS NULL, LIKE, BETWEEN, \
                         AND/OR/NOT)"
                    )
                }
            }
        })
        .collect()
}

/// The plan of a DELETE: a leaf that deletes when executed and returns the count.
#[derive(Debug)]
pub(crate) struct CatalogDeleteExec {
    table: &'static TableDef,
    catalog: Catalog,
    predicates: Vec<SqlPredicate>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl CatalogDeleteExec {
    pub fn new(table: &'static TableDef, catalog: Catalog, predicates: Vec<SqlPredicate>) -> Self {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "count",
            DataType::UInt64,
            false,
        )]));
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        CatalogDeleteExec {
            table,
            catalog,
            predicates,
            schema,
            properties: Arc::new(properties),
        }
    }

    /// `<head> WHERE owner = $1 AND (<pushed>)…`: only rows the session owns, exactly.
    /// `args` starts with the session's owner (`$1`), then the pushed values.
    fn statement(&self, head: &str) -> (String, Vec<Value>) {
        let mut sql = format!("{head} WHERE owner = $1");
        let mut args = vec![Value::from(owner_of(self.catalog.scope()))];
        render_conjunction(
            &self.predicates,
            self.catalog.store().backend(),
            &mut sql,
            &mut args,
        );
        (sql, args)
    }

    async fn run(
        table: &'static TableDef,
        catalog: Catalog,
        sql: String,
        args: Vec<Value>,
    ) -> CatalogResult<u64> {
        let options = TxOptions::serializable().needing(table.delete_needs().0);
        catalog
            .transaction(options, |tx| {
                let (sql, args) = (sql.clone(), args.clone());
                async move {
                    if table.kind != TableKind::Models {
                        // The transaction binds `$1`, its own owner, itself. Each removed
                        // row gets its event, in this transaction.
                        let sql = format!("{sql} RETURNING *");
                        let rows = tx
                            .write_built_returning(sql, OwnerParam::Numbered, &args[1..])
                            .await?;
                        record_events(tx, &removed(table.name, &rows)?).await?;
                        return Ok(rows.len() as u64);
                    }
                    let targets = tx.fetch_all(sqlx::AssertSqlSafe(sql), &args).await?;
                    for row in &targets {
                        let (name, version) = (row.text("model_id")?, row.int32("version")?);
                        delete_model_in(tx, &name, Some(version), false).await?;
                    }
                    Ok(targets.len() as u64)
                }
                .boxed()
            })
            .await
    }
}

impl DisplayAs for CatalogDeleteExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sql, _) = self.statement(&format!("DELETE FROM {}", self.table.storage));
        write!(f, "JammiDeleteExec: table={}, sql={sql}", self.table.name)
    }
}

impl ExecutionPlan for CatalogDeleteExec {
    fn name(&self) -> &str {
        "JammiDeleteExec"
    }

    leaf_plan_methods!();

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        // The SQL is built from the table definition and `$n` placeholders only.
        let (sql, args) = match self.table.kind {
            TableKind::Models => self.statement("SELECT model_id, version FROM models"),
            _ => self.statement(&format!("DELETE FROM {}", self.table.storage)),
        };
        let (table, catalog, schema) = (self.table, self.catalog.clone(), Arc::clone(&self.schema));
        let work = async move {
            let count = Self::run(table, catalog, sql, args)
                .await
                .map_err(CatalogError::into_datafusion)?;
            Ok(RecordBatch::try_new(
                schema,
                vec![Arc::new(UInt64Array::from(vec![count]))],
            )?)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            futures::stream::once(work),
        )))
    }
}
