//! DataFusion and catalog errors as gRPC statuses, with the message a person can act on.

use datafusion::error::DataFusionError;
use jammi_catalog::CatalogError;
use tonic::{Code, Status};

use crate::session::describe;

/// The status for a failed plan or execution: the catalog's own error decides the code
/// (bad input, not found, unavailable, …); any other error of planning is the caller's SQL.
pub fn status_of(error: &DataFusionError) -> Status {
    Status::new(code_of(error), describe(error))
}

fn code_of(error: &DataFusionError) -> Code {
    let mut current: &(dyn std::error::Error + 'static) = error;
    loop {
        if let Some(catalog) = current.downcast_ref::<CatalogError>() {
            return match catalog {
                CatalogError::InvalidInput { .. } | CatalogError::AtRow { .. } => {
                    Code::InvalidArgument
                }
                CatalogError::ModelNotFound { .. } | CatalogError::NotFound { .. } => {
                    Code::NotFound
                }
                CatalogError::AlreadyExists { .. } => Code::AlreadyExists,
                CatalogError::ModelReferenced { .. } => Code::FailedPrecondition,
                CatalogError::TenantMismatch { .. } => Code::PermissionDenied,
                CatalogError::Unavailable(_) => Code::Unavailable,
                CatalogError::RetryExhausted { .. } => Code::Aborted,
                CatalogError::Unsupported(_) => Code::InvalidArgument,
                _ => Code::Internal,
            };
        }
        match current.source() {
            Some(next) => current = next,
            None => break,
        }
    }
    match error.find_root() {
        DataFusionError::ResourcesExhausted(_) => Code::ResourceExhausted,
        DataFusionError::Internal(_) | DataFusionError::IoError(_) => Code::Internal,
        _ => Code::InvalidArgument,
    }
}
