//! A catalog function bound to one catalog handle: what a plan shipped to another process
//! calls (`sql::wire`), where the executing session carries no binding of its own. It runs
//! the session's function with the binding put into the call's options, so the functions
//! themselves keep reading their catalog in one place (`sql::binding`).
//!
//! Bound functions are interned per (function, database, scope, access level): the codec
//! that encodes one again (a scheduler shipping stages to executors) reads its handle from
//! the entry it equals, as DataFusion's `ScalarUDF` hides the implementation it wraps.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::exec_err;
use datafusion::error::Result;
use datafusion::logical_expr::async_udf::{AsyncScalarUDF, AsyncScalarUDFImpl};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

use crate::catalog::Catalog;
use crate::sql::binding::SessionBinding;

/// The catalog function `function` (one of [`super::all`]) acting for `catalog`.
#[derive(Debug)]
struct BoundFunction {
    function: ScalarUDF,
    catalog: Catalog,
}

impl BoundFunction {
    /// What makes two bound functions the same: the function and the handle's database,
    /// scope and access level.
    fn key(&self) -> (&str, &str, Option<crate::TenantId>, crate::Access) {
        (
            self.function.name(),
            self.catalog.store().url(),
            self.catalog.scope(),
            self.catalog.access(),
        )
    }
}

impl PartialEq for BoundFunction {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for BoundFunction {}

impl Hash for BoundFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl ScalarUDFImpl for BoundFunction {
    fn name(&self) -> &str {
        self.function.name()
    }

    fn signature(&self) -> &Signature {
        self.function.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.function.inner().return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.function.inner().return_field_from_args(args)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        exec_err!("{} runs only asynchronously", self.name())
    }
}

#[async_trait]
impl AsyncScalarUDFImpl for BoundFunction {
    async fn invoke_async_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(function) = self.function.as_async() else {
            return exec_err!("{} is not an asynchronous function", self.name());
        };
        let mut options = args.config_options.as_ref().clone();
        options
            .extensions
            .insert(SessionBinding::new(self.catalog.clone()));
        args.config_options = Arc::new(options);
        function.invoke_async_with_args(args).await
    }
}

/// Every bound function made in this process, with its handle: at most one per function,
/// database, scope and level (a handful per tenant).
static INTERNED: LazyLock<Mutex<HashMap<ScalarUDF, Catalog>>> = LazyLock::new(Mutex::default);

/// The catalog function named `name` acting for `catalog`, or `None` when no catalog
/// function has that name.
pub(crate) fn bind(name: &str, catalog: &Catalog) -> Option<ScalarUDF> {
    let function = super::all().into_iter().find(|f| f.name() == name)?;
    let bound = AsyncScalarUDF::new(Arc::new(BoundFunction {
        function,
        catalog: catalog.clone(),
    }))
    .into_scalar_udf();
    let mut interned = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((udf, _)) = interned.get_key_value(&bound) {
        return Some(udf.clone());
    }
    interned.insert(bound.clone(), catalog.clone());
    Some(bound)
}

/// The handle `udf` acts for, if it is a bound catalog function.
pub(crate) fn binding_of(udf: &ScalarUDF) -> Option<Catalog> {
    let interned = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    interned.get(udf).cloned()
}

/// Whether `udf` is one of the catalog's functions as `register_catalog` registers them
/// (acting for the executing session).
pub(crate) fn is_session_function(udf: &ScalarUDF) -> bool {
    super::all().iter().any(|f| f == udf)
}
