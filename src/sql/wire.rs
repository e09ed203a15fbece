//! The catalog's plan nodes as bytes and back, for engines that plan a statement in one
//! process and run it in others (Apache DataFusion Ballista, SPEC §17).
//!
//! What travels: a catalog table (its name, and the handle it acts with), a table's scan
//! (the statement it sends, tenant predicate and pushed filters in it), the `INSERT`
//! sink, and the catalog functions. Each carries its **grant**: the database, the scope
//! and the access level of the handle the client's session bound it to while planning
//! (`sql::shipping`). The database travels as its URL with the password redacted
//! ([`Store::redacted_url`]); the decoding process finds the pool for it through a
//! [`Stores`], which knows the full URLs it serves, and acts with exactly that grant: it
//! never widens the scope or the level, and the tables it decodes are bound to it, not to
//! whatever session the decoding process runs.
//!
//! What does not travel, refused with an error naming it: a join of catalog tables sent
//! whole to the database (sessions for such engines turn `jammi.join_pushdown` off),
//! `models_as_of` / `model_aliases_as_of`, `DELETE`, and an in-memory catalog (no other
//! process can reach it). Passwords never travel.
//!
//! The bytes are JSON; the codec that frames them (`jammi-ballista`) tells them from its
//! engine's own.

use std::any::Any;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::{exec_datafusion_err, not_impl_err, plan_datafusion_err};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::error::Result;
use datafusion::logical_expr::ScalarUDF;
use datafusion::physical_plan::ExecutionPlan;
use serde::{Deserialize, Serialize};

use super::as_of::{AsOfExec, AsOfTable};
use super::dml::{CatalogDeleteExec, CatalogSink};
use super::functions::bound;
use super::joined::JoinedTable;
use super::scan::{CatalogScanExec, ShippedScan};
use super::table::{CatalogTable, TableBinding};
use super::tables::{ALL, TableDef};
use crate::access::Access;
use crate::catalog::Catalog;
use crate::error::CatalogError;
use crate::store::{Store, Value};
use crate::tenant::TenantId;

/// Where a process finds a catalog database named in a plan: its one pool for it.
pub trait Stores: Send + Sync {
    /// The store for the database whose redacted URL is `database`
    /// ([`Store::redacted_url`]), connected (and migrated) on first use.
    ///
    /// # Errors
    /// When this process does not serve that database, or as [`Store::connect`].
    fn store(&self, database: &str) -> crate::Result<Store>;
}

/// One catalog node on the wire.
#[derive(Serialize, Deserialize)]
enum Node {
    /// A table of `jammi.public`, bound to `grant`.
    Table { table: String, grant: WireGrant },
    /// A scan of one table.
    Scan {
        table: String,
        /// The table's columns it reads, by name, in the scan's order.
        columns: Vec<String>,
        sql: String,
        args: Vec<Value>,
        grant: WireGrant,
        visible_rows: Option<u64>,
    },
    /// `INSERT INTO` a table: its sink (the input travels as the plan's child).
    Insert {
        table: String,
        grant: WireGrant,
        read_first: bool,
    },
    /// A catalog function acting for `grant`.
    Function { name: String, grant: WireGrant },
}

/// A handle's database (its redacted URL), scope and access level.
#[derive(Serialize, Deserialize)]
struct WireGrant {
    database: String,
    tenant: Option<String>,
    access: String,
}

impl WireGrant {
    fn of(catalog: &Catalog) -> Result<Self> {
        let store = catalog.store();
        if store.in_memory() {
            return Err(plan_datafusion_err!(
                "an in-memory catalog (sqlite::memory:) cannot be used by a distributed engine: \
                 no other process can reach it; open the catalog on a SQLite file or PostgreSQL"
            ));
        }
        Ok(WireGrant {
            database: store.redacted_url(),
            tenant: catalog.scope().map(|t| t.to_string()),
            access: catalog.access().as_str().to_owned(),
        })
    }

    /// The handle: `stores`' pool for the URL, in the scope, narrowed to the level.
    fn catalog(&self, stores: &dyn Stores) -> Result<Catalog> {
        let scope = self
            .tenant
            .as_deref()
            .map(str::parse::<TenantId>)
            .transpose()
            .map_err(CatalogError::into_datafusion)?;
        let access: Access = self.access.parse().map_err(CatalogError::into_datafusion)?;
        let store = stores
            .store(&self.database)
            .map_err(CatalogError::into_datafusion)?;
        Ok(Catalog::new(store, scope).narrowed(access))
    }
}

/// The refusal of a table or function that still acts for its session.
fn unbound(name: &str) -> datafusion::error::DataFusionError {
    plan_datafusion_err!(
        "{name} acts for the session that runs it, and this plan is leaving the session that \
         planned it: the session must bind its plans first (jammi_ballista::register adds the \
         rule, jammi_catalog::sql::shipping::BindForShipping)"
    )
}

fn to_bytes(node: &Node) -> Result<Vec<u8>> {
    serde_json::to_vec(node).map_err(|e| exec_datafusion_err!("encoding a jammi plan node: {e}"))
}

fn from_bytes(bytes: &[u8]) -> Result<Node> {
    serde_json::from_slice(bytes)
        .map_err(|e| exec_datafusion_err!("decoding a jammi plan node: {e}"))
}

fn table_def(name: &str) -> Result<&'static TableDef> {
    ALL.iter()
        .copied()
        .find(|t| t.name == name)
        .ok_or_else(|| exec_datafusion_err!("decoding a jammi plan node: no table {name:?}"))
}

/// The positions in `table` of the columns named `names`.
fn column_positions(table: &TableDef, names: &[String]) -> Result<Vec<usize>> {
    names
        .iter()
        .map(|name| {
            table.columns.iter().position(|c| c.name == name).ok_or_else(|| {
                exec_datafusion_err!(
                    "decoding a scan of jammi.public.{}: no column {name:?} (a client of another \
                     version of the catalog?)",
                    table.name
                )
            })
        })
        .collect()
}

/// `table` as bytes, when it is one of the catalog's tables: `None` for any other
/// provider.
///
/// # Errors
/// For a catalog table that cannot travel (see the module docs), or one still acting for
/// its session (the session did not bind its plans: `sql::shipping`).
pub fn encode_table(table: &dyn TableProvider) -> Option<Result<Vec<u8>>> {
    if table.is::<JoinedTable>() {
        return Some(not_impl_err!(
            "a join of jammi tables sent whole to the database cannot be used by a distributed \
             engine; run SET jammi.join_pushdown = false in the session"
        ));
    }
    if table.is::<AsOfTable>() {
        return Some(not_impl_err!(
            "models_as_of and model_aliases_as_of cannot be used by a distributed engine; run \
             time travel in a session of the catalog's own"
        ));
    }
    let table = table.downcast_ref::<CatalogTable>()?;
    let catalog = match table.binding() {
        TableBinding::Shipped(catalog) => catalog,
        TableBinding::Session => return Some(Err(unbound(table.def().name))),
        TableBinding::Lent(_) => {
            return Some(not_impl_err!(
                "jammi.public.{} was lent to another library's session; only a session of the \
                 catalog's own can ship it",
                table.def().name
            ));
        }
    };
    Some(WireGrant::of(catalog).and_then(|grant| {
        to_bytes(&Node::Table {
            table: table.def().name.to_owned(),
            grant,
        })
    }))
}

/// The table [`encode_table`] encoded, bound to its grant.
///
/// # Errors
/// Bytes that are not a catalog table, or a database `stores` cannot open.
pub fn decode_table(bytes: &[u8], stores: &dyn Stores) -> Result<Arc<dyn TableProvider>> {
    match from_bytes(bytes)? {
        Node::Table { table, grant } => Ok(Arc::new(CatalogTable::new(
            table_def(&table)?,
            TableBinding::Shipped(grant.catalog(stores)?),
        ))),
        _ => Err(exec_datafusion_err!(
            "decoding a jammi table: the bytes hold another kind of node"
        )),
    }
}

/// `plan` as bytes, when it is one of the catalog's nodes (its scan, or an `INSERT` into
/// one of its tables): `None` for any other node. Its children are not included.
///
/// # Errors
/// For a catalog node that cannot travel (see the module docs).
pub fn encode_plan(plan: &dyn ExecutionPlan) -> Option<Result<Vec<u8>>> {
    if let Some(scan) = plan.downcast_ref::<CatalogScanExec>() {
        let Some(shipped) = scan.to_shipped() else {
            return Some(not_impl_err!(
                "a join of jammi tables sent whole to the database cannot be used by a \
                 distributed engine; run SET jammi.join_pushdown = false in the session"
            ));
        };
        return Some(encode_scan(shipped, scan));
    }
    if let Some(exec) = plan.downcast_ref::<DataSinkExec>()
        && let Some(sink) = (exec.sink() as &dyn Any).downcast_ref::<CatalogSink>()
    {
        let (table, catalog, read_first) = sink.parts();
        return Some(WireGrant::of(catalog).and_then(|grant| {
            to_bytes(&Node::Insert {
                table: table.name.to_owned(),
                grant,
                read_first,
            })
        }));
    }
    if plan.is::<CatalogDeleteExec>() {
        return Some(not_impl_err!(
            "DELETE FROM a jammi table cannot run on a distributed engine; run it in a \
             session of the catalog's own"
        ));
    }
    if plan.is::<AsOfExec>() {
        return Some(not_impl_err!(
            "models_as_of and model_aliases_as_of cannot be used by a distributed engine; run \
             time travel in a session of the catalog's own"
        ));
    }
    None
}

fn encode_scan(shipped: ShippedScan, scan: &CatalogScanExec) -> Result<Vec<u8>> {
    // A scan only reads: the lowest level suffices wherever it runs.
    let catalog = Catalog::new(scan.store().clone(), shipped.scope).narrowed(Access::Read);
    let grant = WireGrant::of(&catalog)?;
    let columns = shipped
        .columns
        .iter()
        .map(|&i| shipped.table.columns[i].name.to_owned())
        .collect();
    to_bytes(&Node::Scan {
        table: shipped.table.name.to_owned(),
        columns,
        sql: shipped.sql,
        args: shipped.args,
        grant,
        visible_rows: shipped.visible_rows,
    })
}

/// The node [`encode_plan`] encoded, over `inputs` (its children, decoded).
///
/// # Errors
/// Bytes that are not a catalog node, or a database `stores` cannot open.
pub fn decode_plan(
    bytes: &[u8],
    inputs: &[Arc<dyn ExecutionPlan>],
    stores: &dyn Stores,
) -> Result<Arc<dyn ExecutionPlan>> {
    match from_bytes(bytes)? {
        Node::Scan {
            table,
            columns,
            sql,
            args,
            grant,
            visible_rows,
        } => {
            let table = table_def(&table)?;
            let columns = column_positions(table, &columns)?;
            let catalog = grant.catalog(stores)?;
            let shipped = ShippedScan {
                table,
                columns,
                sql,
                args,
                scope: catalog.scope(),
                visible_rows,
            };
            Ok(Arc::new(CatalogScanExec::from_shipped(
                shipped,
                catalog.store().clone(),
            )?))
        }
        Node::Insert {
            table,
            grant,
            read_first,
        } => {
            let [input] = inputs else {
                return Err(exec_datafusion_err!(
                    "decoding an INSERT into jammi.public.{table}: expected one input, got {}",
                    inputs.len()
                ));
            };
            let table = table_def(&table)?;
            let catalog = grant.catalog(stores)?;
            // What planning the INSERT checked, checked again where it runs.
            CatalogTable::check_insert(table, &catalog)?;
            let sink = CatalogSink::from_parts(table, catalog, read_first);
            Ok(Arc::new(DataSinkExec::new(
                Arc::clone(input),
                Arc::new(sink),
                None,
            )))
        }
        _ => Err(exec_datafusion_err!(
            "decoding a jammi plan node: the bytes hold a table or a function"
        )),
    }
}

/// `udf` as bytes, when it is one of the catalog's functions: `None` for any other.
///
/// # Errors
/// As [`encode_table`].
pub fn encode_function(udf: &ScalarUDF) -> Option<Result<Vec<u8>>> {
    let Some(catalog) = bound::binding_of(udf) else {
        return bound::is_session_function(udf).then(|| Err(unbound(udf.name())));
    };
    Some(WireGrant::of(&catalog).and_then(|grant| {
        to_bytes(&Node::Function {
            name: udf.name().to_owned(),
            grant,
        })
    }))
}

/// The function [`encode_function`] encoded, acting for its grant.
///
/// # Errors
/// Bytes that are not a catalog function, or a database `stores` cannot open.
pub fn decode_function(bytes: &[u8], stores: &dyn Stores) -> Result<Arc<ScalarUDF>> {
    match from_bytes(bytes)? {
        Node::Function { name, grant } => bound::bind(&name, &grant.catalog(stores)?)
            .map(Arc::new)
            .ok_or_else(|| exec_datafusion_err!("decoding a jammi function: no function {name:?}")),
        _ => Err(exec_datafusion_err!(
            "decoding a jammi function: the bytes hold another kind of node"
        )),
    }
}
