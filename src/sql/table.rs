//! One catalog table as a DataFusion `TableProvider`.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{internal_err, not_impl_err, plan_err};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::error::Result;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;

use super::binding::bound_catalog;
use super::dml::{CatalogDeleteExec, CatalogSink, delete_predicates};
use super::filter::translate;
use super::scan::{CatalogScanExec, ScanSource};
use super::tables::{TableDef, TableKind, projected};
use crate::catalog::Catalog;
use crate::error::CatalogError;
use crate::tenant::owner_of;

/// A catalog table. Registered by [`register_catalog`](super::register_catalog) it holds
/// no scope: `scan`, `insert_into` and `delete_from` take the catalog and scope of the
/// session they are called for (`sql::binding`). Lent to a foreign session (`sql::foreign`),
/// or decoded from a plan shipped to another process (`sql::wire`), whose configuration
/// cannot carry that binding, it is bound to one catalog handle.
/// Planning reads no rows: the database is read by the scan node when the plan executes.
/// It may count them, now and then, for the scan's statistics (`store::estimates`).
#[derive(Debug)]
pub(crate) struct CatalogTable {
    def: &'static TableDef,
    schema: SchemaRef,
    binding: TableBinding,
}

/// Whose catalog handle a [`CatalogTable`] acts with.
#[derive(Clone, Debug)]
pub(crate) enum TableBinding {
    /// The executing session's (`sql::binding`): registered by `register_catalog`.
    Session,
    /// One handle, lent to a foreign session (`sql::foreign`), whose planner is not the
    /// catalog's: reads only.
    Lent(Catalog),
    /// One handle, carried by a plan that a session of the catalog's own planned (with its
    /// guard) and shipped to another process to finish (`sql::wire`): reads and `INSERT`.
    Shipped(Catalog),
}

impl CatalogTable {
    pub fn new(def: &'static TableDef, binding: TableBinding) -> Self {
        CatalogTable {
            def,
            schema: def.schema(),
            binding,
        }
    }

    /// The table's definition.
    pub fn def(&self) -> &'static TableDef {
        self.def
    }

    /// Refuses an `INSERT INTO table` by `catalog` when the table is not written by SQL or
    /// the handle's level does not allow it: checked when the statement is planned, and
    /// again where a shipped plan's sink is decoded (`sql::wire`).
    pub fn check_insert(table: &TableDef, catalog: &Catalog) -> Result<()> {
        if let Some(how) = table.managed_by {
            return plan_err!(
                "jammi.public.{} is read-only in SQL: {how}; nothing was written",
                table.name
            );
        }
        if table.kind == TableKind::Events {
            return plan_err!(
                "jammi.public.events is read-only: the catalog appends an event for every \
                 change it makes, and no statement writes one; nothing was written"
            );
        }
        let (needed, action) = table.insert_needs();
        catalog
            .access()
            .require(needed, action)
            .map_err(CatalogError::into_datafusion)
    }

    /// Whose handle it acts with.
    pub fn binding(&self) -> &TableBinding {
        &self.binding
    }

    /// Whether it acts for the session that runs it (not for a handle it was lent with).
    pub fn takes_session_scope(&self) -> bool {
        matches!(self.binding, TableBinding::Session)
    }

    /// The catalog handle a statement in `state` acts for.
    fn catalog(&self, state: &dyn Session) -> Result<Catalog> {
        match &self.binding {
            TableBinding::Lent(catalog) | TableBinding::Shipped(catalog) => Ok(catalog.clone()),
            TableBinding::Session => bound_catalog(state.config_options()),
        }
    }
}

#[async_trait]
impl TableProvider for CatalogTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match translate(f, self.def) {
                Some(_) => TableProviderFilterPushDown::Exact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let indices = projected(projection, self.def.columns.len());
        let columns = indices.iter().map(|&i| &self.def.columns[i]).collect();
        let schema = Arc::new(self.schema.project(&indices)?);
        let mut predicates = Vec::with_capacity(filters.len());
        for filter in filters {
            // Only filters answered `Exact` reach the scan; anything else here would be
            // silently dropped, so refuse rather than return too many rows.
            match translate(filter, self.def) {
                Some(p) => predicates.push(p),
                None => {
                    return internal_err!(
                        "filter {filter} was not pushed down to {}",
                        self.def.name
                    );
                }
            }
        }
        let catalog = self.catalog(state)?;
        let store = catalog.store();
        let visible_rows = store
            .visible_rows_estimate(self.def.storage, &owner_of(catalog.scope()))
            .await;
        Ok(Arc::new(
            CatalogScanExec::new(
                ScanSource::Table(self.def),
                store.clone(),
                catalog.scope(),
                columns,
                schema,
                predicates,
                limit,
            )
            .with_visible_rows(visible_rows),
        ))
    }

    /// `INSERT INTO`: every row by the catalog's register/create rules, in one transaction,
    /// when the plan executes.
    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if let TableBinding::Lent(_) = self.binding {
            // Lent to a foreign session (`sql::foreign`): its planner has already cast the
            // values into the integer columns, where `2.5` becomes `2`, and the guard that
            // keeps them exact does not run there.
            return plan_err!(
                "INSERT INTO jammi.public.{} cannot run in this session: it is not the \
                 catalog's own, and its planner casts values into the integer columns (2.5 \
                 would become 2) before the catalog sees them; nothing was written. Run the \
                 statement in the catalog's session instead (jammi_catalog: \
                 JammiCatalog.execute(sql, ctx)), which reads the session's tables it names",
                self.def.name
            );
        }
        if insert_op != InsertOp::Append {
            return not_impl_err!(
                "{insert_op} is not supported on jammi.public.{}; use INSERT INTO",
                self.def.name
            );
        }
        let catalog = self.catalog(state)?;
        CatalogTable::check_insert(self.def, &catalog)?;
        let sink = CatalogSink::new(self.def, catalog, input.as_ref());
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }

    /// `DELETE FROM … WHERE …`: checked now, done when the plan executes.
    async fn delete_from(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if let TableBinding::Shipped(_) = self.binding {
            // The delete plan does not travel (`sql::wire`): refused while planning, where
            // nothing has been read or written yet.
            return plan_err!(
                "DELETE FROM jammi.public.{} cannot run on a distributed engine (Ballista): \
                 the catalog deletes in one process; nothing was deleted. Run the statement \
                 in a session of the catalog's own (register_catalog on a SessionContext)",
                self.def.name
            );
        }
        if let TableBinding::Lent(_) = self.binding {
            // Lent to a foreign session: DataFusion's FFI does not carry `delete_from`, but
            // a host in this same library gets the provider back unwrapped, and its session
            // has no guard to refuse the DELETE forms DataFusion 55 gets wrong.
            return plan_err!(
                "DELETE FROM jammi.public.{} cannot run in this session: it is not the \
                 catalog's own; nothing was deleted. Run the statement in the catalog's \
                 session instead (jammi_catalog: JammiCatalog.execute(sql, ctx))",
                self.def.name
            );
        }
        if let Some(how) = self.def.managed_by {
            return plan_err!(
                "jammi.public.{} is read-only in SQL: {how}; nothing was deleted",
                self.def.name
            );
        }
        if self.def.kind == TableKind::Events {
            return plan_err!(
                "jammi.public.events is append-only: no statement deletes an event; nothing \
                 was deleted"
            );
        }
        let catalog = self.catalog(state)?;
        let (needed, action) = self.def.delete_needs();
        catalog
            .access()
            .require(needed, action)
            .map_err(CatalogError::into_datafusion)?;
        let predicates = delete_predicates(self.def, &filters)?;
        Ok(Arc::new(CatalogDeleteExec::new(
            self.def, catalog, predicates,
        )))
    }
}
