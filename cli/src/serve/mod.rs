//! `jammi serve`: the catalog over Arrow Flight SQL (SPEC §11).
//!
//! - `auth` — the bearer token of each call, and the Basic handshake that hands it out.
//! - `statement` — the per-call session, planning under the server's rules, parameters.
//! - `handle` — stateless prepared-statement handles.
//! - `service` — the `FlightSqlService`.
//! - `log` — one line per call; `drain` — the calls a shutdown waits for.

mod auth;
mod drain;
mod error;
mod handle;
mod log;
mod service;
mod statement;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use jammi_catalog::Tokens;

use crate::delivery::{Delivery, DeliveryOptions};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

pub use service::Limits;
pub use statement::QueryLimits;

/// The longest a statement waits for a turn to run (a client should hear soon that the
/// server is busy); shorter when the query timeout is.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(10);

/// How long in-flight calls may take to finish after SIGINT/SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How long connections stay open after the last call in flight has sent its last byte:
/// closing a socket while the client has not yet read what was sent resets the connection,
/// and the client loses the end of its result.
const SHUTDOWN_LINGER: Duration = Duration::from_secs(1);

/// Parameters and bound parameter rows can be large (`executemany`); gRPC's default limit
/// of 4 MiB per message would refuse them.
const MAX_MESSAGE: usize = 64 << 20;

pub struct ServeOptions {
    pub db: String,
    pub listen: SocketAddr,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub limits: Limits,
    /// How to deliver webhooks; `None`: this server does not (`--no-webhooks`).
    pub webhooks: Option<DeliveryOptions>,
}

/// Serves until SIGINT or SIGTERM, then lets in-flight calls finish (at most
/// [`SHUTDOWN_GRACE`]).
pub async fn serve(options: ServeOptions) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let catalog = crate::session::open_catalog(&options.db).await?;
    let tokens = Tokens::new(&catalog).map_err(|e| e.to_string())?;
    let drain = Arc::new(drain::Drain::default());
    let service =
        service::CatalogService::new(catalog.clone(), tokens, options.limits, Arc::clone(&drain))?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<FlightServiceServer<service::CatalogService>>()
        .await;

    // Dead peers are found by keepalives (a client whose network vanished would otherwise
    // hold its streams until the query timeout), and no connection opens unbounded streams.
    let mut server = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(256);
    if let Some((cert, key)) = &options.tls {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        let identity = Identity::from_pem(read(cert)?, read(key)?);
        server = server
            .tls_config(ServerTlsConfig::new().identity(identity))
            .map_err(|e| format!("invalid TLS certificate or key: {e}"))?;
    }
    if options.tls.is_none() && !options.listen.ip().is_loopback() {
        tracing::warn!(
            "serving without TLS on {}: tokens cross the network in the clear; \
             give --tls-cert and --tls-key",
            options.listen
        );
    }
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    // Delivery starts once the server can serve: a failed start holds no lease.
    let delivery = match options.webhooks.clone() {
        Some(webhooks) => {
            let worker = format!(
                "jammi-serve {address} pid {} {}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            );
            Some(Delivery::start(&catalog, &worker, webhooks).await?)
        }
        None => None,
    };
    // The one line a script waits for (tests start the server on port 0 and read it).
    println!(
        "jammi serve: listening on {}://{address}",
        if options.tls.is_some() {
            "grpc+tls"
        } else {
            "grpc"
        }
    );

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(
        server
            .add_service(health_service)
            .add_service(
                FlightServiceServer::new(service)
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE),
            )
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener)
                    .with_nodelay(Some(true))
                    .with_keepalive(Some(Duration::from_secs(60))),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    shutdown_signal().await;
    tracing::info!("shutting down: new calls are refused; waiting for calls in flight");
    if let Some(delivery) = delivery {
        // Released: another server takes these webhooks over at its next round.
        delivery.stop().await;
    }
    health
        .set_not_serving::<FlightServiceServer<service::CatalogService>>()
        .await;
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, drain.drained())
        .await
        .is_ok();
    if drained {
        tokio::time::sleep(SHUTDOWN_LINGER).await;
    }
    let _ = stop.send(());
    match tokio::time::timeout(SHUTDOWN_LINGER * 5, serving).await {
        Ok(Ok(Ok(()))) if drained => Ok(()),
        Ok(Ok(Err(e))) => Err(format!("the server failed: {e}")),
        Ok(Err(e)) => Err(format!("the server failed: {e}")),
        _ => Err(format!(
            "calls still in flight {} s after the signal; stopped",
            SHUTDOWN_GRACE.as_secs()
        )),
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
