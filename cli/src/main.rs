//! `jammi`: SQL over the model catalog and your own data (SPEC §8), and the catalog's
//! Flight SQL server with its tokens (SPEC §11).
//!
//! Without a subcommand: one DataFusion session per run, bound to the scope given by
//! `--tenant`, with the catalog (`jammi.public.*`) and its functions registered,
//! `information_schema` on, and DataFusion's `CREATE EXTERNAL TABLE` for CSV, Parquet and
//! JSON files.

mod output;
mod repl;
mod serve;
mod session;
mod token;

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use jammi_catalog::TenantId;

use output::Format;
use session::Session;

const EXAMPLES: &str = "\
Examples:
  # Run the quickstart script on the default catalog (./jammi.db)
  jammi -f examples/quickstart.sql

  # One query as a tenant, as CSV
  jammi --tenant 6f1c2a0e-3b9d-4c1e-9a7f-0d2b4e6f8a10 --format csv \\
        -c 'SELECT model_id, version FROM jammi.public.models'

  # Join the catalog with a CSV file of scores
  jammi -c \"CREATE EXTERNAL TABLE scores STORED AS CSV LOCATION 'scores.csv' OPTIONS ('format.has_header' 'true')\" \\
        -c 'SELECT m.model_id, s.ndcg FROM jammi.public.models m JOIN scores s USING (model_id)'

  # A shared catalog on PostgreSQL, statements from stdin
  echo 'SELECT count(*) FROM jammi.public.models;' | jammi --db postgres://user@host/catalog

  # Serve the catalog over Flight SQL, with a token for one tenant
  jammi token create --tenant 6f1c2a0e-3b9d-4c1e-9a7f-0d2b4e6f8a10 --name acme
  jammi serve --listen 127.0.0.1:50051

Exit status: 0 on success, 1 when a statement fails (the run stops there), 2 for bad arguments.";

/// SQL over the jammi model catalog and your own data.
///
/// Runs the statements of -c and -f in the order given; with neither, reads statements
/// from an interactive prompt (on a terminal) or from standard input. Results go to
/// stdout; an error goes to stderr as one line starting with `error:`.
#[derive(Parser, Debug)]
#[command(
    name = "jammi",
    version,
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// The catalog database: sqlite://PATH, a file path, or postgres://USER@HOST/DB.
    /// A SQLite file is created and migrated on first use.
    /// Example: --db sqlite:///var/lib/jammi/catalog.db
    #[arg(
        long,
        value_name = "URL",
        env = "JAMMI_DB",
        default_value = "sqlite://jammi.db",
        global = true
    )]
    db: String,

    #[command(subcommand)]
    action: Option<Action>,

    /// The tenant the session acts for (a UUID, not nil). Without it the session is
    /// unscoped: it reads and writes only global rows.
    /// Example: --tenant 6f1c2a0e-3b9d-4c1e-9a7f-0d2b4e6f8a10
    #[arg(long, value_name = "UUID", env = "JAMMI_TENANT", value_parser = parse_tenant)]
    tenant: Option<TenantId>,

    /// How results are printed: an aligned table, CSV with a header row, one JSON array,
    /// or newline-delimited JSON (one object per line).
    /// Example: --format ndjson
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// SQL to run; may hold several `;`-separated statements, and may be repeated.
    /// Example: -c "SELECT * FROM jammi.public.models"
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    command: Vec<String>,

    /// A file of `;`-separated SQL statements to run; may be repeated.
    /// Example: -f examples/quickstart.sql
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Serve the catalog over Arrow Flight SQL; each call runs in the scope of its bearer
    /// token (see `jammi token`). Stops on SIGINT/SIGTERM after calls in flight finish.
    Serve {
        /// The address to listen on.
        /// Example: --listen 0.0.0.0:50051
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50051")]
        listen: std::net::SocketAddr,
        /// A PEM certificate chain; with --tls-key, the server speaks TLS only.
        #[arg(long, value_name = "PEM", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, value_name = "PEM", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Bytes of memory one query may use for sorts, joins and aggregates (never
        /// spilled to disk); a query needing more fails with RESOURCE_EXHAUSTED.
        /// Example: --memory-limit 4294967296
        #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
        memory_limit: usize,
        /// Seconds a statement may run, streaming its result included (whether or not the
        /// client reads it).
        #[arg(long, value_name = "SECS", default_value_t = 300,
              value_parser = clap::value_parser!(u64).range(1..))]
        query_timeout: u64,
        /// Statements running at once; more wait for a turn (up to the query timeout, at
        /// most 10 s), then get RESOURCE_EXHAUSTED.
        #[arg(long, value_name = "N", default_value_t = 64,
              value_parser = clap::value_parser!(u32).range(1..))]
        max_concurrent: u32,
    },
    /// Create, list or revoke the server's API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Subcommand, Debug)]
enum TokenAction {
    /// Create a token and print it (once; only its digest is stored).
    Create {
        /// The tenant the token acts for (a UUID); without it the token is unscoped
        /// (global rows only: the operator's role).
        #[arg(long, value_name = "UUID", value_parser = parse_tenant)]
        tenant: Option<TenantId>,
        /// A label for the token, unique among live tokens.
        #[arg(long, value_name = "LABEL")]
        name: String,
    },
    /// List tokens: label, scope, creation, live or revoked.
    List,
    /// Revoke the token with this label; calls with it fail from the next one on.
    Revoke {
        /// The label given at creation.
        label: String,
    },
}

fn parse_tenant(value: &str) -> Result<TenantId, String> {
    value.parse::<TenantId>().map_err(|e| e.to_string())
}

/// What to run, in command-line order.
enum Input {
    Sql(String),
    File(PathBuf),
}

fn inputs_in_order(cli: &Cli, matches: &clap::ArgMatches) -> Vec<Input> {
    let mut indexed: Vec<(usize, Input)> = Vec::new();
    if let Some(indices) = matches.indices_of("command") {
        indexed.extend(indices.zip(cli.command.iter().cloned().map(Input::Sql)));
    }
    if let Some(indices) = matches.indices_of("file") {
        indexed.extend(indices.zip(cli.file.iter().cloned().map(Input::File)));
    }
    indexed.sort_by_key(|(i, _)| *i);
    indexed.into_iter().map(|(_, input)| input).collect()
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let inputs = inputs_in_order(&cli, &matches);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, inputs)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {}", output::one_line(&message));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, inputs: Vec<Input>) -> Result<(), String> {
    match cli.action {
        Some(Action::Serve {
            listen,
            tls_cert,
            tls_key,
            memory_limit,
            query_timeout,
            max_concurrent,
        }) => {
            return serve::serve(serve::ServeOptions {
                db: cli.db,
                listen,
                tls: tls_cert.zip(tls_key),
                limits: serve::Limits {
                    query: serve::QueryLimits {
                        memory: memory_limit,
                    },
                    timeout: std::time::Duration::from_secs(query_timeout),
                    concurrent: max_concurrent as usize,
                    queue_wait: std::time::Duration::from_secs(query_timeout)
                        .min(serve::MAX_QUEUE_WAIT),
                },
            })
            .await;
        }
        Some(Action::Token { action }) => {
            return match action {
                TokenAction::Create { tenant, name } => token::create(&cli.db, tenant, &name).await,
                TokenAction::List => token::list(&cli.db).await,
                TokenAction::Revoke { label } => token::revoke(&cli.db, &label).await,
            };
        }
        None => {}
    }
    let session = Session::open(&cli.db, cli.tenant, cli.format).await?;
    if inputs.is_empty() {
        if std::io::stdin().is_terminal() {
            return repl::run(&session).await;
        }
        let mut script = String::new();
        std::io::stdin()
            .read_to_string(&mut script)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        return session.run_script(&script).await;
    }
    for input in inputs {
        match input {
            Input::Sql(sql) => session.run_script(&sql).await?,
            Input::File(path) => {
                let script = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                session.run_script(&script).await?;
            }
        }
    }
    Ok(())
}
