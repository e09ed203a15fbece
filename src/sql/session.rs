//! Sessions made cheaply, one per statement or call, from a template built once.
//!
//! Building a DataFusion session registers every built-in function, rule and planner
//! anew: hundreds of allocations, about half the fixed cost of a server's call before this
//! existed (docs/performance.md). A [`SessionTemplate`] does that once, with the catalog's
//! functions and rules in place, and [`SessionTemplate::state`] derives each session from it
//! by cloning (maps of `Arc`s, no function is built again). What a session could change is
//! its own:
//!
//! - its **catalog list** is new for every session. It holds the `jammi` catalog (immutable:
//!   its schema and tables refuse registration, and hold no scope) and, when the
//!   configuration asks for one, a fresh, empty default catalog and schema for the host's
//!   own tables. So a table, view or catalog one session registers is never seen by another,
//!   and nothing one session does can rebind another's.
//! - its **binding** (scope and access level, `sql::binding`) and any other option live in
//!   its own copy of the configuration (DataFusion copies it on write).
//! - its **start time** (`now()`) is the moment it is derived.
//!
//! Functions, rules and planners are shared: they are immutable, and a session that
//! registers a function adds it to its own maps only.

use std::sync::Arc;

use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider,
};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::session_state::SessionState;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::joined::JoinPushdown;
use super::provider::JammiCatalogProvider;
use super::{CATALOG_NAME, bind_state, prepare_state};
use crate::catalog::Catalog;

/// What every session of one host has in common: configuration, functions (DataFusion's
/// and the catalog's), rules, and the `jammi` catalog's tables.
#[derive(Clone)]
pub struct SessionTemplate {
    state: Arc<SessionState>,
    jammi: Arc<dyn CatalogProvider>,
    /// The default catalog and schema each session gets, empty, for the host's tables
    /// (`None` when the configuration does not create them, or names `jammi`).
    host_default: Option<(String, String)>,
}

impl std::fmt::Debug for SessionTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTemplate")
            .field("host_default", &self.host_default)
            .finish_non_exhaustive()
    }
}

impl SessionTemplate {
    /// The template of sessions configured by `config`, with DataFusion's default features
    /// and the catalog's functions, table functions and rules.
    pub fn new(config: SessionConfig) -> Self {
        Self::with(config, |_| {})
    }

    /// As [`new`](Self::new), with `customize` applied to the template's state once (e.g.
    /// an analyzer rule every session of the host runs: `sql::limits`).
    pub fn with(config: SessionConfig, customize: impl FnOnce(&mut SessionState)) -> Self {
        let catalog_options = &config.options().catalog;
        let host_default = (catalog_options.create_default_catalog_and_schema
            && catalog_options.default_catalog != CATALOG_NAME)
            .then(|| {
                (
                    catalog_options.default_catalog.clone(),
                    catalog_options.default_schema.clone(),
                )
            });
        // Each session gets its own default catalog, below; the template has none.
        let config = config.with_create_default_catalog_and_schema(false);
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_optimizer_rule(Arc::new(JoinPushdown))
            .build();
        prepare_state(&mut state);
        customize(&mut state);
        SessionTemplate {
            state: Arc::new(state),
            jammi: Arc::new(JammiCatalogProvider::new(None)),
            host_default,
        }
    }

    /// A new session bound to `catalog`'s database, scope and access level, with a catalog
    /// list of its own (see the module docs). Its start time (`now()`) is now.
    pub fn state(&self, catalog: &Catalog) -> SessionState {
        let mut state = SessionState::clone(&self.state);
        let list = MemoryCatalogProviderList::new();
        list.register_catalog(CATALOG_NAME.to_owned(), Arc::clone(&self.jammi));
        if let Some((catalog_name, schema_name)) = &self.host_default {
            let host = MemoryCatalogProvider::new();
            // A fresh memory catalog takes any schema: this cannot fail.
            let _ = host.register_schema(schema_name, Arc::new(MemorySchemaProvider::new()));
            list.register_catalog(catalog_name.clone(), Arc::new(host));
        }
        state.register_catalog_list(Arc::new(list) as Arc<dyn CatalogProviderList>);
        bind_state(&mut state, catalog);
        state.mark_start_execution();
        state
    }

    /// [`state`](Self::state) as a `SessionContext`.
    pub fn context(&self, catalog: &Catalog) -> SessionContext {
        SessionContext::new_with_state(self.state(catalog))
    }
}
