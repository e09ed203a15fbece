//! The catalog a DataFusion session acts for: which database, and which scope.
//!
//! The tables, functions and DML plans hold no scope of their own. They read it, when a
//! statement is planned for execution, from the **executing session's** configuration,
//! where [`register_catalog`](super::register_catalog) puts it. So a view, a prepared
//! statement or a DataFrame built in one session, then run in another, acts for the
//! session that runs it; and hosts that clone one `SessionState` per request (clones
//! share the catalog *list*, an `Arc`, but copy their configuration on write) cannot
//! rebind each other's scope.
//!
//! The binding lives in DataFusion's `ConfigOptions` because that is what reaches both
//! the table providers (`Session::config_options`) and the async functions
//! (`ScalarFunctionArgs::config_options`, taken from the executing task). SQL cannot
//! change it: `SET jammi.…` is refused here, `RESET` only knows `datafusion.*` options,
//! and the binding lists no entry of it, so `SHOW ALL` and `information_schema.df_settings`
//! print nothing of it.
//!
//! One option beside it is the session's to set: `SET jammi.join_pushdown = false` keeps
//! joins of catalog tables in DataFusion instead of sending them to the database whole
//! (`sql::joined`). It changes how rows are read, never which. (`RESET` does not know it
//! either: `SET jammi.join_pushdown = true` turns it back on.)

use std::any::Any;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ConfigOptions, ExtensionOptions};
use datafusion::common::{config_err, plan_datafusion_err};
use datafusion::error::Result;

use crate::catalog::Catalog;

/// The session's catalog handle (store + scope), set by the host application only, and
/// the one option SQL may set.
#[derive(Clone, Debug)]
pub(crate) struct SessionBinding {
    catalog: Option<Catalog>,
    /// `jammi.join_pushdown`: whether joins of catalog tables go to the database whole.
    join_pushdown: bool,
}

impl Default for SessionBinding {
    fn default() -> Self {
        SessionBinding {
            catalog: None,
            join_pushdown: true,
        }
    }
}

impl SessionBinding {
    pub fn new(catalog: Catalog) -> Self {
        SessionBinding {
            catalog: Some(catalog),
            ..SessionBinding::default()
        }
    }
}

/// The name of the option, after `jammi.`.
const JOIN_PUSHDOWN: &str = "join_pushdown";

impl ConfigExtension for SessionBinding {
    const PREFIX: &'static str = "jammi";
}

impl ExtensionOptions for SessionBinding {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    /// The scope is fixed by the host application (SPEC §2): no statement sets it. Only
    /// `join_pushdown` may be set.
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        if key == JOIN_PUSHDOWN {
            self.join_pushdown = match value.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return config_err!("jammi.{key} is true or false, not '{value}'"),
            };
            return Ok(());
        }
        config_err!(
            "jammi.{key} cannot be set from SQL: the session's catalog and tenant are fixed by \
             the application that opened the session"
        )
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        vec![ConfigEntry {
            key: format!("jammi.{JOIN_PUSHDOWN}"),
            value: Some(self.join_pushdown.to_string()),
            description: "Send a join of catalog tables to the database as one statement \
                          (each table with its own tenant predicate) instead of joining in \
                          DataFusion",
        }]
    }
}

/// Whether the session sends joins of catalog tables to the database whole (see the module
/// docs); true unless the session set `jammi.join_pushdown = false`.
pub(crate) fn join_pushdown(options: &ConfigOptions) -> bool {
    options
        .extensions
        .get::<SessionBinding>()
        .is_none_or(|b| b.join_pushdown)
}

/// The catalog handle of the session whose options these are.
///
/// # Errors
/// A planning error when the session was never given a catalog: its `jammi` tables may
/// be visible through a catalog list shared with another session, but it has no scope of
/// its own to read them with.
pub(crate) fn bound_catalog(options: &ConfigOptions) -> Result<Catalog> {
    options
        .extensions
        .get::<SessionBinding>()
        .and_then(|b| b.catalog.clone())
        .ok_or_else(|| {
            plan_datafusion_err!(
                "this session has no jammi catalog bound to it; the application must call \
                 register_catalog on the session before using jammi tables or functions"
            )
        })
}
