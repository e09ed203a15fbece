//! A Ballista executor that knows the jammi catalog: Ballista's own, with the catalog's
//! codecs (SPEC §17). The stages it runs carry their grants and name their database; it
//! serves the databases of its `--catalog-url`s, one pool each, opened when a stage first
//! names it.

use std::sync::Arc;

use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use clap::Parser;
use jammi_ballista::{JammiLogicalCodec, JammiPhysicalCodec, ServedCatalogs};

/// Runs a Ballista executor with the jammi catalog's codecs.
#[derive(Parser)]
#[command(name = "jammi-executor", version)]
struct Args {
    /// The scheduler's host.
    #[arg(long, default_value = "localhost")]
    scheduler_host: String,
    /// The scheduler's port.
    #[arg(long, default_value_t = 50050)]
    scheduler_port: u16,
    /// The address to listen on (`0.0.0.0` for other machines: see the README on trust).
    #[arg(long, default_value = "127.0.0.1")]
    bind_host: String,
    #[command(flatten)]
    catalogs: ServedCatalogs,
    /// The host name other executors reach this one by.
    #[arg(long)]
    external_host: Option<String>,
    /// The port other executors fetch this one's shuffle data from (Arrow Flight).
    #[arg(long, default_value_t = 50051)]
    port: u16,
    /// The port of this executor's gRPC service.
    #[arg(long, default_value_t = 50052)]
    grpc_port: u16,
    /// How many tasks it runs at once (default: the machine's cores).
    #[arg(long)]
    concurrent_tasks: Option<usize>,
    /// Where it keeps shuffle files (default: a temporary directory).
    #[arg(long)]
    work_dir: Option<String>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = args.catalogs.serve() {
        eprintln!("jammi-executor: --catalog-url: {e}");
        std::process::exit(2);
    }
    let defaults = ExecutorProcessConfig::default();
    let config = ExecutorProcessConfig {
        scheduler_host: args.scheduler_host,
        scheduler_port: args.scheduler_port,
        bind_host: args.bind_host,
        external_host: args.external_host,
        port: args.port,
        grpc_port: args.grpc_port,
        vcores: args.concurrent_tasks.unwrap_or(defaults.vcores),
        work_dir: args.work_dir,
        override_logical_codec: Some(Arc::new(JammiLogicalCodec::default())),
        override_physical_codec: Some(Arc::new(JammiPhysicalCodec::default())),
        ..defaults
    };
    println!(
        "jammi-executor: flight on port {}, scheduler {}:{}",
        config.port, config.scheduler_host, config.scheduler_port
    );
    if let Err(e) = start_executor_process(Arc::new(config)).await {
        eprintln!("jammi-executor: {e}");
        std::process::exit(1);
    }
}
