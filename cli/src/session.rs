//! The DataFusion session behind one `jammi` run.

use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};
use jammi_catalog::sql::script::split_statements;
use jammi_catalog::sql::session::SessionTemplate;
use jammi_catalog::{Access, Catalog, CatalogError, TenantId};

use crate::output::{self, Format};

pub struct Session {
    ctx: SessionContext,
    format: Format,
}

impl Session {
    /// Opens (creating and migrating) the catalog and builds the session for `tenant`, with
    /// at most `access`.
    pub async fn open(
        db: &str,
        tenant: Option<TenantId>,
        access: Access,
        format: Format,
    ) -> Result<Session, String> {
        let catalog = open_catalog(db).await?.with_scope(tenant).narrowed(access);
        let ctx = SessionTemplate::new(SessionConfig::new().with_information_schema(true))
            .context(&catalog);
        Ok(Session { ctx, format })
    }

    /// Runs every statement of `script` in order, stopping at the first failure.
    pub async fn run_script(&self, script: &str) -> Result<(), String> {
        for statement in split_statements(script) {
            self.run_statement(&statement).await?;
        }
        Ok(())
    }

    /// Runs one statement and prints its result.
    pub async fn run_statement(&self, sql: &str) -> Result<(), String> {
        let df = self.ctx.sql(sql).await.map_err(|e| describe(&e))?;
        let schema = df.schema().as_arrow().clone();
        let batches = df.collect().await.map_err(|e| describe(&e))?;
        output::print(self.format, &schema, &batches)
            .map_err(|e| format!("cannot print the result: {e}"))
    }
}

/// Opens (creating and migrating) the catalog at `db`, unscoped.
pub async fn open_catalog(db: &str) -> Result<Catalog, String> {
    Catalog::open(db)
        .await
        .map_err(|e| format!("cannot open the catalog at {}: {e}", redact(db)))
}

/// The message a person can act on: the catalog's own error when there is one, without
/// DataFusion's wrapping.
pub fn describe(error: &DataFusionError) -> String {
    match catalog_error(error) {
        Some(catalog) => catalog.to_string(),
        // DataFusion wraps errors in context ("caused by"); the innermost one is the
        // message a person can act on.
        None => error.find_root().strip_backtrace(),
    }
}

/// The catalog's own error inside `error`, if there is one.
pub fn catalog_error(error: &DataFusionError) -> Option<&CatalogError> {
    let mut current: &(dyn std::error::Error + 'static) = error;
    loop {
        if let Some(catalog) = current.downcast_ref::<CatalogError>() {
            return Some(catalog);
        }
        current = current.source()?;
    }
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
