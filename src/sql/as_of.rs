//! Time travel (SPEC §13): `models_as_of(TIMESTAMP)` and `model_aliases_as_of(TIMESTAMP)`,
//! table functions whose rows are those of `models` / `model_aliases` as they were at an
//! instant, replayed from the event log and filtered by the session's scope like every
//! read.
//!
//! The argument is any constant expression of a timestamp (`TIMESTAMP '…'`, `now() -
//! INTERVAL '1 hour'`, a string), folded while planning. The log is read when the plan
//! executes; filters on the result are DataFusion's (nothing is pushed into the replay).

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DFSchema, ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use serde_json::Value as Json;

use super::batch::BatchBuilder;
use super::binding::bound_catalog;
use super::tables::{ColumnDef, MODEL_ALIASES, MODELS, TableDef, TableKind, projected};
use crate::catalog::Catalog;
use crate::error::{CatalogError, Result as CatalogResult};
use crate::store::RowValues;

/// The SQL name of the models time-travel function.
pub const MODELS_AS_OF: &str = "models_as_of";
/// The SQL name of the aliases time-travel function.
pub const MODEL_ALIASES_AS_OF: &str = "model_aliases_as_of";

/// The table functions, named, ready to register in a session.
pub(crate) fn all() -> [(&'static str, Arc<dyn TableFunctionImpl>); 2] {
    [
        (MODELS_AS_OF, Arc::new(AsOfFunction { table: &MODELS })),
        (
            MODEL_ALIASES_AS_OF,
            Arc::new(AsOfFunction {
                table: &MODEL_ALIASES,
            }),
        ),
    ]
}

/// `<table>_as_of(instant)`.
#[derive(Debug)]
struct AsOfFunction {
    table: &'static TableDef,
}

impl TableFunctionImpl for AsOfFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let name = format!("{}_as_of", self.table.name);
        let [instant] = args.exprs() else {
            return plan_err!(
                "{name}(instant) takes one TIMESTAMP argument, got {}",
                args.exprs().len()
            );
        };
        let at = micros_of(&name, instant, args.session())?;
        Ok(Arc::new(AsOfTable {
            table: self.table,
            schema: self.table.schema(),
            at,
        }))
    }
}

/// Folds a constant timestamp expression into microseconds since the epoch, UTC.
fn micros_of(name: &str, instant: &Expr, session: &dyn Session) -> Result<i64> {
    let context = SimplifyContext::builder()
        .with_schema(Arc::new(DFSchema::empty()))
        .with_config_options(Arc::new(session.config_options().clone()))
        .with_query_execution_start_time(session.execution_props().query_execution_start_time)
        .build();
    let folded = ExprSimplifier::new(context).simplify(instant.clone())?;
    let Expr::Literal(value, _) = folded else {
        return plan_err!("{name}(instant) takes a constant TIMESTAMP, got `{instant}`");
    };
    let utc_micros = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    match value.cast_to(&utc_micros) {
        Ok(ScalarValue::TimestampMicrosecond(Some(at), _)) => Ok(at),
        Ok(_) => plan_err!("{name}(instant) takes a TIMESTAMP, got NULL"),
        Err(e) => plan_err!("{name}(instant) takes a TIMESTAMP, got `{instant}`: {e}"),
    }
}

/// The rows of `table` at `at`.
#[derive(Debug)]
pub(crate) struct AsOfTable {
    table: &'static TableDef,
    schema: SchemaRef,
    at: i64,
}

#[async_trait::async_trait]
impl TableProvider for AsOfTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let indices = projected(projection, self.table.columns.len());
        let schema = Arc::new(self.schema.project(&indices)?);
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(Arc::new(AsOfExec {
            table: self.table,
            catalog: bound_catalog(state.config_options())?,
            at: self.at,
            columns: indices.iter().map(|&i| &self.table.columns[i]).collect(),
            schema,
            properties: Arc::new(properties),
        }))
    }
}

/// Replays the log when executed and returns the rows as one batch.
#[derive(Debug)]
pub(crate) struct AsOfExec {
    table: &'static TableDef,
    catalog: Catalog,
    at: i64,
    columns: Vec<&'static ColumnDef>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl AsOfExec {
    /// The rows, each as its JSON object (the columns of the SQL table).
    async fn rows(table: &TableDef, catalog: &Catalog, at: i64) -> CatalogResult<Vec<Json>> {
        fn json<T: serde::Serialize>(rows: Vec<T>) -> CatalogResult<Vec<Json>> {
            rows.iter()
                .map(|r| {
                    serde_json::to_value(r).map_err(|e| CatalogError::TypeConversion {
                        column: "state".into(),
                        detail: e.to_string(),
                    })
                })
                .collect()
        }
        match table.kind {
            TableKind::Models => json(catalog.models_as_of(at).await?),
            TableKind::ModelAliases => json(catalog.model_aliases_as_of(at).await?),
            _ => Err(CatalogError::Unsupported(format!(
                "{} has no time travel",
                table.name
            ))),
        }
    }
}

/// One replayed row, its values looked up by the projected columns' names.
struct JsonRow<'a> {
    values: Vec<Option<&'a Json>>,
}

impl RowValues for JsonRow<'_> {
    fn str_at(&self, i: usize) -> CatalogResult<Option<&str>> {
        match self.values[i] {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(other) => Err(CatalogError::TypeConversion {
                column: String::new(),
                detail: format!("expected text in an event's state, got {other}"),
            }),
        }
    }

    fn int_at(&self, i: usize) -> CatalogResult<Option<i64>> {
        match self.values[i] {
            None | Some(Json::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| CatalogError::TypeConversion {
                    column: String::new(),
                    detail: format!("expected an integer in an event's state, got {v}"),
                }),
        }
    }
}

impl DisplayAs for AsOfExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "JammiAsOfExec: table={}, at={}",
            self.table.name, self.at
        )
    }
}

impl ExecutionPlan for AsOfExec {
    fn name(&self) -> &str {
        "JammiAsOfExec"
    }

    leaf_plan_methods!();

    fn execute(
        &self,
        _partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let (table, catalog, at) = (self.table, self.catalog.clone(), self.at);
        let (schema, columns) = (Arc::clone(&self.schema), self.columns.clone());
        let batch_size = context.session_config().batch_size();
        let work = async move {
            let rows = Self::rows(table, &catalog, at).await?;
            let mut builder = BatchBuilder::new(schema, &columns, batch_size);
            for row in &rows {
                builder.append(&JsonRow {
                    values: columns.iter().map(|c| row.get(c.name)).collect(),
                })?;
            }
            builder.finish()
        };
        let stream =
            futures::stream::once(async move { work.await.map_err(CatalogError::into_datafusion) });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }
}
