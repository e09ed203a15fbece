//! The `jammi` catalog and its `public` schema: a fixed set of seven tables. Registered in a
//! session they hold no scope: each statement reads it from the session that executes it
//! (`sql::binding`). Lent to a foreign session they are bound to one catalog handle.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::error::Result;

use super::SCHEMA_NAME;
use super::table::{CatalogTable, TableBinding};
use super::tables::ALL;
use crate::catalog::Catalog;

/// The `jammi` catalog.
#[derive(Debug)]
pub(crate) struct JammiCatalogProvider {
    schema: Arc<JammiSchemaProvider>,
}

impl JammiCatalogProvider {
    /// Tables that act for the catalog bound to the executing session (`None`), or always
    /// for `bound`.
    pub fn new(bound: Option<Catalog>) -> Self {
        JammiCatalogProvider {
            schema: Arc::new(JammiSchemaProvider::new(bound)),
        }
    }
}

impl CatalogProvider for JammiCatalogProvider {
    fn schema_names(&self) -> Vec<String> {
        vec![SCHEMA_NAME.to_owned()]
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        (name == SCHEMA_NAME).then(|| Arc::clone(&self.schema) as Arc<dyn SchemaProvider>)
    }
}

/// `jammi.public`: the catalog tables, built once when the catalog is registered.
#[derive(Debug)]
pub(crate) struct JammiSchemaProvider {
    tables: Vec<Arc<CatalogTable>>,
}

impl JammiSchemaProvider {
    fn new(bound: Option<Catalog>) -> Self {
        JammiSchemaProvider {
            tables: ALL
                .iter()
                .map(|def| {
                    let binding = bound
                        .clone()
                        .map_or(TableBinding::Session, TableBinding::Lent);
                    Arc::new(CatalogTable::new(def, binding))
                })
                .collect(),
        }
    }
}

#[async_trait]
impl SchemaProvider for JammiSchemaProvider {
    fn table_names(&self) -> Vec<String> {
        ALL.iter().map(|t| t.name.to_owned()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(ALL
            .iter()
            .position(|t| t.name == name)
            .map(|i| Arc::clone(&self.tables[i]) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        ALL.iter().any(|t| t.name == name)
    }
}
