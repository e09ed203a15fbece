//! The jammi catalog inside Apache DataFusion Ballista (SPEC §17).
//!
//! A Ballista client plans a statement, sends its logical plan to a scheduler, which plans
//! it physically and sends stages to executors. The catalog's tables, scans, `INSERT`
//! sinks and functions travel in those plans through the codecs here
//! ([`JammiLogicalCodec`], [`JammiPhysicalCodec`]), each with the grant (database, scope,
//! access level) the client session bound it to while planning it; schedulers and
//! executors open one pool per database they serve ([`ProcessStores`]) and act with
//! exactly that grant.
//!
//! ```no_run
//! # async fn run() -> datafusion::error::Result<()> {
//! use jammi_catalog::Catalog;
//!
//! let catalog = Catalog::open("sqlite:///var/lib/jammi/catalog.db").await?;
//! let ctx = jammi_ballista::standalone(&catalog).await?;
//! ctx.sql("SELECT model_id, version FROM jammi.public.models").await?.show().await?;
//! # Ok(())
//! # }
//! ```
//!
//! What the catalog does differently there (also in the README): joins of catalog tables
//! run in the engine (`jammi.join_pushdown` is off), and `DELETE`, time travel and an
//! in-memory catalog are refused with an error that says so.

pub mod codec;
mod stores;

use std::sync::Arc;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::error::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::session_state::SessionState;
use datafusion::optimizer::OptimizerRule;
use datafusion::prelude::{SessionConfig, SessionContext};
use jammi_catalog::sql::shipping::BindForShipping;
use jammi_catalog::{Catalog, register_catalog};

pub use codec::{JammiLogicalCodec, JammiPhysicalCodec};
pub use stores::ProcessStores;

/// A client session's state for Ballista, acting for `catalog`: DataFusion's defaults
/// with Ballista's configuration, the catalog registered (see [`register`]), and the
/// codecs that carry it.
///
/// Ballista replaces a state's functions with its own when it makes a session of it, so
/// the session needs [`register`] again afterwards; [`standalone`] and [`remote`] do both.
///
/// # Errors
/// None in practice: setting the catalog's own option cannot fail once registered.
pub fn client_state(catalog: &Catalog) -> Result<SessionState> {
    client_state_with(catalog, SessionConfig::new_with_ballista())
}

/// As [`client_state`], from the caller's `config` (which must have Ballista's
/// configuration: `SessionConfig::new_with_ballista()`), whose codecs are replaced.
///
/// # Errors
/// As [`client_state`].
pub fn client_state_with(catalog: &Catalog, config: SessionConfig) -> Result<SessionState> {
    let config = config
        .with_ballista_logical_extension_codec(Arc::new(JammiLogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(JammiPhysicalCodec::default()));
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .build();
    let ctx = SessionContext::new_with_state(state);
    register(&ctx, catalog)?;
    Ok(ctx.state())
}

/// Registers the catalog in a Ballista client session for `catalog` (its tables, its
/// functions, the guard that checks where functions are called; see
/// `jammi_catalog::register_catalog`), with
/// - the rule that binds each statement's catalog tables and functions to the session's
///   handle while it is planned (`BindForShipping`), so that the plan carries that grant;
/// - joins of catalog tables left to the engine (`jammi.join_pushdown = false`: a join sent
///   whole to the database does not travel);
/// - `catalog`'s pool shared with the scheduler and executor of an in-process cluster.
///
/// Registering again rebinds the session, as `register_catalog` does.
///
/// # Errors
/// None in practice: setting the catalog's own option cannot fail once registered.
pub fn register(ctx: &SessionContext, catalog: &Catalog) -> Result<()> {
    register_catalog(ctx, catalog);
    let rule = BindForShipping;
    if !ctx
        .state_ref()
        .read()
        .optimizers()
        .iter()
        .any(|r| r.name() == rule.name())
    {
        ctx.add_optimizer_rule(Arc::new(rule));
    }
    ProcessStores::share(catalog.store());
    ctx.state_ref()
        .write()
        .config_mut()
        .options_mut()
        .set("jammi.join_pushdown", "false")
}

/// A session on a Ballista cluster in this process (a scheduler and an executor on
/// loopback), acting for `catalog`.
///
/// # Errors
/// When the in-process scheduler or executor cannot start.
pub async fn standalone(catalog: &Catalog) -> Result<SessionContext> {
    standalone_with(catalog, SessionConfig::new_with_ballista()).await
}

/// As [`standalone`], with the caller's Ballista `config` (e.g. its parallelism).
///
/// # Errors
/// As [`standalone`].
pub async fn standalone_with(catalog: &Catalog, config: SessionConfig) -> Result<SessionContext> {
    let ctx = SessionContext::standalone_with_state(client_state_with(catalog, config)?).await?;
    register(&ctx, catalog)?;
    Ok(ctx)
}

/// A session on the Ballista scheduler at `scheduler_url` (`df://host:port`), acting for
/// `catalog`. The scheduler and its executors must run with the codecs of this crate
/// (`jammi-scheduler`, `jammi-executor`).
///
/// # Errors
/// When `scheduler_url` is not a URL with a host.
pub async fn remote(scheduler_url: &str, catalog: &Catalog) -> Result<SessionContext> {
    remote_with(scheduler_url, catalog, SessionConfig::new_with_ballista()).await
}

/// As [`remote`], with the caller's Ballista `config`.
///
/// # Errors
/// As [`remote`].
pub async fn remote_with(
    scheduler_url: &str,
    catalog: &Catalog,
    config: SessionConfig,
) -> Result<SessionContext> {
    let state = client_state_with(catalog, config)?;
    let ctx = SessionContext::remote_with_state(scheduler_url, state).await?;
    register(&ctx, catalog)?;
    Ok(ctx)
}

/// The catalog databases a scheduler or executor serves, from its command line.
#[derive(clap::Args, Debug)]
pub struct ServedCatalogs {
    /// A catalog database this process serves (repeatable): plans name it by its URL
    /// without the password, and are refused for any other database.
    #[arg(
        long = "catalog-url",
        env = "JAMMI_CATALOG_URL",
        hide_env_values = true,
        required = true
    )]
    catalog_urls: Vec<String>,
}

impl ServedCatalogs {
    /// Serves each database ([`ProcessStores::serve`]).
    ///
    /// # Errors
    /// As [`ProcessStores::serve`].
    pub fn serve(&self) -> jammi_catalog::Result<()> {
        self.catalog_urls
            .iter()
            .try_for_each(|url| ProcessStores::serve(url))
    }
}
