//! `sql::foreign`: the catalog lent over DataFusion's FFI. The real foreign host,
//! datafusion-python, is exercised by `python/tests/`; here a host in this same library
//! takes the provider back (the FFI then hands over the provider itself, with no wrapper in
//! between) and must still find every write refused, since its session has no guard.

use std::sync::Arc;

use datafusion::catalog::CatalogProvider;
use datafusion::execution::{TaskContext, TaskContextProvider};
use datafusion::prelude::SessionContext;
use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
use jammi_catalog::sql::foreign::ForeignCatalog;
use jammi_catalog::{Grant, TenantId};

use crate::rows;

struct HostTasks(Arc<TaskContext>);

impl TaskContextProvider for HostTasks {
    fn task_ctx(&self) -> Arc<TaskContext> {
        Arc::clone(&self.0)
    }
}

#[test]
fn a_lent_provider_reads_its_scope_and_refuses_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
    let tenant: TenantId = "6f1c2a0e-3b9d-4c1e-9a7f-0d2b4e6f8a10".parse().unwrap();
    let foreign = ForeignCatalog::open(&url, Grant::full(Some(tenant))).unwrap();
    foreign
        .execute(
            "INSERT INTO jammi.public.models (model_id, version, model_type, backend, task) \
             VALUES ('acme/m', 1, 'embedding', 'candle', 'text_embedding')",
            vec![],
        )
        .unwrap();

    let host = SessionContext::new();
    let tasks: Arc<dyn TaskContextProvider> = Arc::new(HostTasks(host.task_ctx()));
    let lent = foreign.catalog_provider(FFI_LogicalExtensionCodec::new_default(&tasks));
    host.register_catalog("jammi", Arc::<dyn CatalogProvider>::from(&lent));

    foreign.block_on(async {
        let models = "SELECT model_id, version, tenant_id FROM jammi.public.models";
        let before = rows(&host, models).await;
        assert_eq!(before, [["acme/m", "1", &tenant.to_string()]]);
        for write in [
            "DELETE FROM jammi.public.models WHERE model_id = 'acme/m'",
            "INSERT INTO jammi.public.models (model_id, version, model_type, backend, task) \
             VALUES ('acme/n', 1, 'embedding', 'candle', 'text_embedding')",
        ] {
            let err = match host.sql(write).await {
                Ok(frame) => frame.collect().await.expect_err(write),
                Err(e) => e,
            };
            assert!(
                err.to_string().contains("cannot run in this session"),
                "{write}: {err}"
            );
        }
        assert_eq!(rows(&host, models).await, before);
    });
}
