//! DataFusion and catalog errors as gRPC statuses, with the message a person can act on.

use datafusion::error::DataFusionError;
use jammi_catalog::CatalogError;
use tonic::{Code, Status};

use crate::session::{catalog_error, describe};

/// The status for a failed plan or execution: the catalog's own error decides the code
/// (bad input, not found, unavailable, …); any other error of planning is the caller's SQL.
pub fn status_of(error: &DataFusionError) -> Status {
    let code = match catalog_error(error) {
        Some(catalog) => code_of(catalog),
        None => match error.find_root() {
            DataFusionError::ResourcesExhausted(_) => Code::ResourceExhausted,
            DataFusionError::NotImplemented(_) => Code::Unimplemented,
            DataFusionError::Internal(_) | DataFusionError::IoError(_) => Code::Internal,
            _ => Code::InvalidArgument,
        },
    };
    Status::new(code, describe(error))
}

fn code_of(error: &CatalogError) -> Code {
    match error {
        // The row is named in the message; the code is what went wrong with it.
        CatalogError::AtRow { source, .. } => code_of(source),
        CatalogError::InvalidInput { .. } | CatalogError::Unsupported(_) => Code::InvalidArgument,
        CatalogError::ModelNotFound { .. } | CatalogError::NotFound { .. } => Code::NotFound,
        CatalogError::AlreadyExists { .. } => Code::AlreadyExists,
        CatalogError::ModelReferenced { .. } => Code::FailedPrecondition,
        CatalogError::TenantMismatch { .. } | CatalogError::PermissionDenied { .. } => {
            Code::PermissionDenied
        }
        CatalogError::Unavailable(_) => Code::Unavailable,
        CatalogError::LimitExceeded(_) => Code::ResourceExhausted,
        CatalogError::DeadlineExceeded { .. } => Code::DeadlineExceeded,
        CatalogError::RetryExhausted { .. } => Code::Aborted,
        _ => Code::Internal,
    }
}
