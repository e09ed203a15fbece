//! `jammi_catalog._native`: the Python face of `jammi_catalog::sql::foreign` (SPEC §12).
//! It converts and nothing more: PyCapsules in and out for DataFusion's FFI, Arrow IPC
//! bytes for tables and results, and the catalog's errors as `CatalogError`. The Python
//! package (`jammi_catalog/__init__.py`) wraps it.

use std::ffi::CStr;
use std::io::Cursor;
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
use jammi_catalog::sql::foreign::ForeignCatalog;
use jammi_catalog::{Access, Grant, TenantId, register_catalog};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCapsule};

create_exception!(
    _native,
    CatalogError,
    PyException,
    "An error of the jammi catalog, carrying its message; nothing was written."
);

const CODEC_CAPSULE: &CStr = c"datafusion_logical_extension_codec";
const CATALOG_CAPSULE: &CStr = c"datafusion_catalog_provider";
const UDF_CAPSULE: &CStr = c"datafusion_scalar_udf";

fn error(e: impl std::fmt::Display) -> PyErr {
    CatalogError::new_err(e.to_string())
}

/// An open catalog: its database, its scope and the runtime its I/O runs on.
#[pyclass(frozen, module = "jammi_catalog._native")]
struct NativeCatalog {
    inner: ForeignCatalog,
}

#[pymethods]
impl NativeCatalog {
    #[new]
    #[pyo3(signature = (url, tenant=None, access="admin"))]
    fn new(py: Python<'_>, url: &str, tenant: Option<&str>, access: &str) -> PyResult<Self> {
        let scope = tenant
            .map(|t| t.parse::<TenantId>())
            .transpose()
            .map_err(error)?;
        let access = access.parse::<Access>().map_err(error)?;
        let grant = Grant { scope, access };
        let inner = py
            .detach(|| ForeignCatalog::open(url, grant))
            .map_err(error)?;
        Ok(NativeCatalog { inner })
    }

    /// The `jammi` catalog provider, for the session whose logical extension codec
    /// datafusion-python passes in.
    fn catalog_provider<'py>(
        &self,
        py: Python<'py>,
        codec: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let capsule = codec.cast::<PyCapsule>()?;
        let pointer = capsule.pointer_checked(Some(CODEC_CAPSULE))?;
        // SAFETY: the capsule's name says it holds an FFI_LogicalExtensionCodec, which
        // datafusion-python keeps alive for this call; it is cloned, not moved.
        let codec = unsafe { pointer.cast::<FFI_LogicalExtensionCodec>().as_ref() }.clone();
        PyCapsule::new_with_value(py, self.inner.catalog_provider(codec), CATALOG_CAPSULE)
    }

    /// One `datafusion_scalar_udf` capsule per catalog function (stand-ins that refuse).
    fn functions<'py>(&self, py: Python<'py>) -> PyResult<Vec<(String, Bound<'py, PyCapsule>)>> {
        self.inner
            .functions()
            .into_iter()
            .map(|(name, f)| {
                Ok((
                    name.to_owned(),
                    PyCapsule::new_with_value(py, f, UDF_CAPSULE)?,
                ))
            })
            .collect()
    }

    /// The host tables `sql` names, to pass to `execute`.
    fn table_references(&self, sql: &str) -> PyResult<Vec<String>> {
        self.inner.table_references(sql).map_err(error)
    }

    /// Runs `sql` in the catalog's own session over `tables` (name, Arrow IPC stream);
    /// returns the result as an Arrow IPC stream.
    fn execute<'py>(
        &self,
        py: Python<'py>,
        sql: &str,
        tables: Vec<(String, Vec<u8>)>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let tables = tables
            .into_iter()
            .map(|(name, ipc)| {
                let (schema, batches) = read_ipc(&ipc).map_err(error)?;
                Ok((name, schema, batches))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let ipc = py
            .detach(|| {
                let (schema, batches) = self.inner.execute(sql, tables)?;
                write_ipc(&schema, &batches)
            })
            .map_err(error)?;
        Ok(PyBytes::new(py, &ipc))
    }
}

/// For the benchmark (`python/benches/ffi.py`): `sql` run `runs` times in one Rust
/// `SessionContext` with the catalog registered, the baseline of the same query through
/// datafusion-python. Returns each run's seconds, planning through the last batch.
#[pyfunction]
fn time_in_rust(
    py: Python<'_>,
    catalog: &NativeCatalog,
    sql: &str,
    runs: usize,
) -> PyResult<Vec<f64>> {
    py.detach(|| {
        let ctx = SessionContext::new();
        register_catalog(&ctx, catalog.inner.catalog());
        catalog.inner.block_on(async {
            let mut seconds = Vec::with_capacity(runs);
            for _ in 0..runs {
                let start = Instant::now();
                ctx.sql(sql).await?.collect().await?;
                seconds.push(start.elapsed().as_secs_f64());
            }
            Ok::<_, datafusion::error::DataFusionError>(seconds)
        })
    })
    .map_err(error)
}

fn read_ipc(ipc: &[u8]) -> datafusion::error::Result<(SchemaRef, Vec<RecordBatch>)> {
    let reader = StreamReader::try_new(Cursor::new(ipc), None)?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}

fn write_ipc(schema: &SchemaRef, batches: &[RecordBatch]) -> datafusion::error::Result<Vec<u8>> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
    for batch in batches {
        writer.write(batch)?;
    }
    Ok(writer.into_inner()?)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeCatalog>()?;
    m.add_function(wrap_pyfunction!(time_in_rust, m)?)?;
    m.add("CatalogError", m.py().get_type::<CatalogError>())?;
    Ok(())
}
