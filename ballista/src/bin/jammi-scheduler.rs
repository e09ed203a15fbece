//! A Ballista scheduler that knows the jammi catalog: Ballista's own, with the catalog's
//! codecs (SPEC §17). The plans it receives carry their grants and name their database; it
//! serves the databases of its `--catalog-url`s, one pool each, opened when a plan first
//! names it.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use clap::Parser;
use jammi_ballista::{JammiLogicalCodec, JammiPhysicalCodec, ServedCatalogs};

/// Runs a Ballista scheduler with the jammi catalog's codecs.
#[derive(Parser)]
#[command(name = "jammi-scheduler", version)]
struct Args {
    /// The address to listen on (`0.0.0.0` for other machines: see the README on trust).
    #[arg(long, default_value = "127.0.0.1")]
    bind_host: String,
    #[command(flatten)]
    catalogs: ServedCatalogs,
    /// The port clients and executors connect to.
    #[arg(long, default_value_t = 50050)]
    port: u16,
    /// The host name executors and clients reach this scheduler by.
    #[arg(long, default_value = "localhost")]
    external_host: String,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = args.catalogs.serve() {
        eprintln!("jammi-scheduler: --catalog-url: {e}");
        std::process::exit(2);
    }
    let mut config = SchedulerConfig {
        bind_host: args.bind_host.clone(),
        bind_port: args.port,
        external_host: args.external_host,
        ..SchedulerConfig::default()
    };
    config.override_logical_codec = Some(Arc::new(JammiLogicalCodec::default()));
    config.override_physical_codec = Some(Arc::new(JammiPhysicalCodec::default()));
    let address: SocketAddr = match format!("{}:{}", args.bind_host, args.port).parse() {
        Ok(address) => address,
        Err(e) => {
            eprintln!("jammi-scheduler: --bind-host {}: {e}", args.bind_host);
            std::process::exit(2);
        }
    };
    let outcome = async {
        let cluster = BallistaCluster::new_from_config(&config).await?;
        println!("jammi-scheduler listening on {address}");
        start_server(cluster, address, Arc::new(config)).await
    };
    if let Err(e) = outcome.await {
        eprintln!("jammi-scheduler: {e}");
        std::process::exit(1);
    }
}
