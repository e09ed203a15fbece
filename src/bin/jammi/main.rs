//! `jammi`: SQL over the model catalog and your own data (SPEC §8).
//!
//! One DataFusion session per run, bound to the scope given by `--tenant`, with the
//! catalog (`jammi.public.*`) and its functions registered, `information_schema` on, and
//! DataFusion's `CREATE EXTERNAL TABLE` for CSV, Parquet and JSON files.

mod output;
mod repl;
mod session;

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};
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

Exit status: 0 on success, 1 when a statement fails (the run stops there), 2 for bad arguments.";

/// SQL over the jammi model catalog and your own data.
///
/// Runs the statements of -c and -f in the order given; with neither, reads statements
/// from an interactive prompt (on a terminal) or from standard input. Results go to
/// stdout; an error goes to stderr as one line starting with `error:`.
#[derive(Parser, Debug)]
#[command(name = "jammi", version, after_help = EXAMPLES)]
struct Cli {
    /// The catalog database: sqlite://PATH, a file path, or postgres://USER@HOST/DB.
    /// A SQLite file is created and migrated on first use.
    /// Example: --db sqlite:///var/lib/jammi/catalog.db
    #[arg(
        long,
        value_name = "URL",
        env = "JAMMI_DB",
        default_value = "sqlite://jammi.db"
    )]
    db: String,

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
