//! The catalog lent to a DataFusion session of another library, through DataFusion's FFI
//! (SPEC §12): datafusion-python registers it as a foreign catalog provider. The Python
//! package (`python/`) is a thin layer over this module.
//!
//! What crosses the FFI in DataFusion 55, and what the catalog does about the rest:
//! - **Reads cross**, with filter, projection and limit pushdown. The tables are bound to
//!   one catalog handle: a foreign session's configuration cannot carry the session
//!   binding (`sql::binding`) that tables registered by `register_catalog` read.
//! - **Writes do not run in the foreign session**, because none of them can keep the SQL
//!   safety rules there (the analyzer rule `sql::guard` does not cross):
//!   - `INSERT`: the foreign planner casts values into the integer columns before the
//!     catalog sees them, so `2.5` would arrive as `2`; refused while planning.
//!   - `DELETE`: `delete_from` does not cross; DataFusion answers "DELETE not supported".
//!     (A host in this same library gets the provider itself back; the lent tables refuse
//!     `DELETE` there too.)
//!   - `register_model` / `delete_model`: async functions do not cross, and a function
//!     cannot see where a statement calls it, so it could not refuse a placement that acts
//!     on rows the statement does not select. [`ForeignCatalog::functions`] gives
//!     stand-ins that refuse while planning and say what to do instead.
//!
//!   Every write runs instead in the catalog's own session with every rule in place:
//!   [`ForeignCatalog::execute`], which reads the host's tables that the statement names.
//! - **Runtime.** The FFI calls the provider on the host's threads, where no runtime of
//!   this library runs (the host links its own copy of tokio). The provider carries the
//!   handle of a runtime the [`ForeignCatalog`] owns, which the FFI enters around every
//!   call and every poll of a stream; planning does no I/O there (the row-count estimate
//!   of `store::estimates` is skipped where no runtime is current).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{
    CatalogProvider, MemTable, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider,
};
use datafusion::common::{TableReference, plan_err};
use datafusion::error::Result;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_ffi::catalog_provider::FFI_CatalogProvider;
use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
use datafusion_ffi::udf::FFI_ScalarUDF;
use tokio::runtime::Runtime;

use super::CATALOG_NAME;
use super::functions::CATALOG_FUNCTIONS;
use super::provider::JammiCatalogProvider;
use super::session::SessionTemplate;
use crate::access::Grant;
use crate::catalog::Catalog;

/// A catalog handle with the runtime its I/O runs on, for sessions of another library.
#[derive(Debug, Clone)]
pub struct ForeignCatalog {
    catalog: Catalog,
    runtime: Arc<OwnedRuntime>,
    /// What the session of each [`execute`](Self::execute) starts from.
    sessions: SessionTemplate,
}

impl ForeignCatalog {
    /// Opens the database at `url` (migrating it, as [`Catalog::open`] does) for `grant`
    /// (its scope, and at most its access level for every write, reads over the FFI
    /// included), on a runtime of its own. Call it from a thread that runs no tokio runtime.
    pub fn open(url: &str, grant: Grant) -> crate::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("jammi-catalog")
            .enable_all()
            .build()
            .map_err(|e| {
                crate::CatalogError::Unsupported(format!("cannot start the catalog's runtime: {e}"))
            })?;
        let catalog = runtime
            .block_on(Catalog::open(url))?
            .with_scope(grant.scope)
            .narrowed(grant.access);
        Ok(ForeignCatalog {
            catalog,
            runtime: Arc::new(OwnedRuntime(Some(runtime))),
            sessions: SessionTemplate::new(SessionConfig::new().with_information_schema(true)),
        })
    }

    /// The catalog handle (its store and scope).
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The `jammi` catalog provider for a foreign session whose logical extension codec is
    /// `codec`. The provider keeps the runtime alive for as long as the host holds it.
    pub fn catalog_provider(&self, codec: FFI_LogicalExtensionCodec) -> FFI_CatalogProvider {
        let provider = RuntimeBound {
            inner: JammiCatalogProvider::new(Some(self.catalog.clone())),
            _runtime: Arc::clone(&self.runtime),
        };
        FFI_CatalogProvider::new_with_ffi_codec(
            Arc::new(provider),
            Some(self.runtime.handle().clone()),
            codec,
        )
    }

    /// Stand-ins for the catalog's writing functions (`register_model`, `delete_model`,
    /// `set_model_alias`, `set_model_tag`) in a foreign session: they plan under the real
    /// names and refuse every call while planning (see the module docs).
    pub fn functions(&self) -> Vec<(&'static str, FFI_ScalarUDF)> {
        CATALOG_FUNCTIONS
            .into_iter()
            .map(|name| {
                let udf = Arc::new(ScalarUDF::new_from_impl(Refused::new(name)));
                (name, FFI_ScalarUDF::from(udf))
            })
            .collect()
    }

    /// The tables `sql` names outside the `jammi` catalog and `information_schema`, quoted
    /// so that [`TableReference::from`] reads them back: the host's tables that
    /// [`execute`](Self::execute) must be given.
    ///
    /// # Errors
    /// A parse error, or more than one statement.
    pub fn table_references(&self, sql: &str) -> Result<Vec<String>> {
        let state = self.sessions.state(&self.catalog);
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state.sql_to_statement(sql, &dialect)?;
        Ok(state
            .resolve_table_references(&statement)?
            .into_iter()
            .filter(|t| {
                t.catalog() != Some(CATALOG_NAME) && t.schema() != Some("information_schema")
            })
            .map(|t| t.to_quoted_string())
            .collect())
    }

    /// Runs one statement in the catalog's own session, where every SQL rule of the
    /// library holds (SPEC §6–§7), and returns its result's schema and batches. `tables`
    /// are the host's tables it reads, by the names
    /// [`table_references`](Self::table_references) returned. DDL and `SET` are refused:
    /// the session lives for this one statement. Blocks the calling thread, which must
    /// run no tokio runtime.
    ///
    /// # Errors
    /// Whatever the statement fails with; a refused statement writes nothing.
    pub fn execute(
        &self,
        sql: &str,
        tables: Vec<(String, SchemaRef, Vec<RecordBatch>)>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let ctx = self.sessions.context(&self.catalog);
        for (name, schema, batches) in tables {
            let table = TableReference::from(name.as_str());
            register_schema_of(&ctx, &table)?;
            // Read-only: a write to a host table would change only this copy of it.
            let copy = ctx.read_table(Arc::new(MemTable::try_new(schema, vec![batches])?))?;
            ctx.register_table(table, copy.into_view())?;
        }
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_statements(false);
        self.block_on(async {
            let frame = ctx.sql_with_options(sql, options).await?;
            let schema = Arc::clone(frame.schema().inner());
            Ok((schema, frame.collect().await?))
        })
    }

    /// Runs `future` on the catalog's runtime, blocking the calling thread (which must run
    /// no tokio runtime): for hosts that drive the catalog's Rust API directly.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.handle().block_on(future)
    }
}

/// Creates the catalog and schema a host table is registered under, when they are not
/// the session's defaults.
fn register_schema_of(ctx: &SessionContext, table: &TableReference) -> Result<()> {
    let state = ctx.state();
    let defaults = &state.config().options().catalog;
    let catalog_name = table.catalog().unwrap_or(&defaults.default_catalog);
    let schema_name = table.schema().unwrap_or(&defaults.default_schema);
    if catalog_name == CATALOG_NAME {
        return plan_err!("{table} is in the jammi catalog, not a table of the host");
    }
    let catalog = match ctx.catalog(catalog_name) {
        Some(c) => c,
        None => {
            let c: Arc<dyn CatalogProvider> = Arc::new(MemoryCatalogProvider::new());
            ctx.register_catalog(catalog_name, Arc::clone(&c));
            c
        }
    };
    if catalog.schema(schema_name).is_none() {
        catalog.register_schema(schema_name, Arc::new(MemorySchemaProvider::new()))?;
    }
    Ok(())
}

/// A catalog provider that keeps the runtime its tables' I/O runs on alive for as long as
/// the foreign session holds it.
#[derive(Debug)]
struct RuntimeBound {
    inner: JammiCatalogProvider,
    _runtime: Arc<OwnedRuntime>,
}

impl CatalogProvider for RuntimeBound {
    fn schema_names(&self) -> Vec<String> {
        self.inner.schema_names()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.inner.schema(name)
    }
}

/// A runtime that may be dropped anywhere: the last holder can be a thread of the host's
/// runtime, where dropping a tokio runtime the usual way (which waits) would panic.
#[derive(Debug)]
struct OwnedRuntime(Option<Runtime>);

impl OwnedRuntime {
    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("present until dropped").handle()
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A catalog function's name in a foreign session, refusing every call while planning.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Refused {
    name: &'static str,
    signature: Signature,
}

impl Refused {
    fn new(name: &'static str) -> Self {
        Refused {
            name,
            signature: Signature::variadic_any(Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for Refused {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!(
            "{} cannot run in this session: it is not the catalog's own, so the catalog \
             cannot see where the statement calls it, nor keep it to exactly the rows the \
             statement selects; nothing was run. Run the statement in the catalog's session \
             instead (jammi_catalog: JammiCatalog.execute(sql, ctx)), which reads the \
             session's tables it names",
            self.name
        )
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        plan_err!("{} cannot run in this session; nothing was run", self.name)
    }
}
