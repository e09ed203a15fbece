//! `jammi`: SQL over the model catalog and your own data (SPEC §8), and the catalog's
//! Flight SQL server with its tokens (SPEC §11).
//!
//! Without a subcommand: one DataFusion session per run, bound to the scope given by
//! `--tenant`, with the catalog (`jammi.public.*`) and its functions registered,
//! `information_schema` on, and DataFusion's `CREATE EXTERNAL TABLE` for CSV, Parquet and
//! JSON files.

mod delivery;
mod events;
mod output;
mod repl;
mod serve;
mod session;
mod token;
mod webhook;

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use jammi_catalog::{Access, Grant, TenantId};

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

  # Serve the catalog over Flight SQL, with a read token for a tenant's dashboard and a
  # write token (valid 90 days) for its pipeline
  jammi token create --tenant 6f1c2a0e-3b9d-4c1e-9a7f-0d2b4e6f8a10 --name acme-dash
  jammi token create --tenant 6f1c2a0e-3b9d-4c1e-9a7f-0d2b4e6f8a10 --name acme-ci \\
        --access write --expires-in 90d
  jammi serve --listen 127.0.0.1:50051

  # Post the tenant's alias moves to its deploy pipeline (signed; `jammi serve` delivers)
  jammi webhook create --tenant 6f1c2a0e-3b9d-4c1e-9a7f-0d2b4e6f8a10 \\
        --url https://ci.example.com/hooks/jammi --events alias_set

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
        default_value = "sqlite://jammi.db",
        global = true
    )]
    db: String,

    #[command(subcommand)]
    action: Option<Action>,

    /// The tenant the session acts for (a UUID, not nil), or that `token create` makes a
    /// token for. Without it the session or token is unscoped: it reads and writes only
    /// global rows.
    /// Example: --tenant 6f1c2a0e-3b9d-4c1e-9a7f-0d2b4e6f8a10
    #[arg(
        long,
        value_name = "UUID",
        env = "JAMMI_TENANT",
        value_parser = parse_tenant,
        global = true
    )]
    tenant: Option<TenantId>,

    /// What the session may do: read (queries only), write (also register, INSERT, aliases,
    /// tags, jobs, eval runs) or admin (also delete). A statement that needs more is
    /// refused before it runs.
    /// Example: --access read
    #[arg(long, value_enum, default_value_t = AccessLevel::Admin)]
    access: AccessLevel,

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
        /// client reads it); at most a year.
        #[arg(long, value_name = "SECS", default_value_t = 300,
              value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
        query_timeout: u64,
        /// Statements running at once; more wait for a turn (up to the query timeout, at
        /// most 10 s), then get RESOURCE_EXHAUSTED.
        #[arg(long, value_name = "N", default_value_t = 64,
              value_parser = clap::value_parser!(u32).range(1..))]
        max_concurrent: u32,
        /// Do not deliver webhooks from this server (e.g. on a read replica); by default
        /// it delivers every active webhook that no other running server holds.
        #[arg(long)]
        no_webhooks: bool,
        /// A server's hold on a webhook it delivers: another server takes the webhook
        /// over this long after the first stopped renewing it (died).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
        webhook_lease: std::time::Duration,
        /// The longest one delivery attempt may take, connecting included.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
        webhook_timeout: std::time::Duration,
        /// The wait before retrying a failed delivery; doubled after each further failure,
        /// up to 5 minutes.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1s")]
        webhook_backoff: std::time::Duration,
        /// Failed attempts in a row at one event that pause its webhook (with the reason
        /// recorded; `jammi webhook resume` starts it again from that event).
        #[arg(long, value_name = "N", default_value_t = 10,
              value_parser = clap::value_parser!(i64).range(1..=1000))]
        webhook_max_failures: i64,
        /// How long the record of each delivery attempt
        /// (jammi.public.webhook_deliveries) is kept.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "7d")]
        webhook_retention: std::time::Duration,
    },
    /// Print the events the scope of --tenant sees (its own and global ones), one JSON
    /// object per line, oldest first; with --follow, keep printing them as they commit.
    Events {
        /// Only events after this event id (the `event_id` of the last one you handled).
        #[arg(long, value_name = "ID", default_value_t = 0,
              value_parser = clap::value_parser!(i64).range(0..))]
        since: i64,
        /// Only these kinds, comma-separated.
        /// Example: --kind alias_set,model_registered
        #[arg(long, value_name = "KIND", value_delimiter = ',', value_parser = parse_event_kind)]
        kind: Vec<jammi_catalog::EventKind>,
        /// Keep running and print each new event as it commits (on PostgreSQL at once, on
        /// SQLite within about 0.1 s), until interrupted.
        #[arg(long)]
        follow: bool,
    },
    /// Create, list or revoke the server's API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Create, list, pause, resume or delete the webhooks of --tenant's scope, which
    /// `jammi serve` delivers (signed POSTs of each new event, in order, at least once).
    Webhook {
        #[command(subcommand)]
        action: WebhookAction,
    },
}

#[derive(Subcommand, Debug)]
enum WebhookAction {
    /// Create a webhook for --tenant's events (its own and global ones; without --tenant,
    /// global events only) and print its signing secret (shown only now).
    Create {
        /// Where to POST the events: an http or https URL.
        /// Example: --url https://ci.example.com/hooks/jammi
        #[arg(long, value_name = "URL")]
        url: String,
        /// Only these kinds, comma-separated; by default every kind.
        /// Example: --events alias_set,model_registered
        #[arg(long, value_name = "KIND", value_delimiter = ',', value_parser = parse_event_kind)]
        events: Vec<jammi_catalog::EventKind>,
        /// Only events about models whose name matches this pattern (* any run of
        /// characters, ? one character).
        /// Example: --model 'fraud-*'
        #[arg(long, value_name = "PATTERN")]
        model: Option<String>,
        /// Deliver the events after this event id too (0: the whole log); by default only
        /// events appended from now on.
        #[arg(long, value_name = "ID", value_parser = clap::value_parser!(i64).range(0..))]
        since: Option<i64>,
    },
    /// List the webhooks --tenant's scope sees, without their secrets.
    List,
    /// Stop delivering a webhook until it is resumed; its events wait.
    Pause {
        /// The webhook's id.
        id: String,
        /// Why, recorded with it.
        #[arg(long, value_name = "TEXT", default_value = "paused by the operator")]
        reason: String,
    },
    /// Deliver a paused webhook again, from the first event it has not delivered.
    Resume {
        /// The webhook's id.
        id: String,
    },
    /// Delete a webhook and the record of its deliveries.
    Delete {
        /// The webhook's id.
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum TokenAction {
    /// Create a token and print it (once; only its digest is stored). Its scope is
    /// --tenant (without it the token is unscoped: global rows only, the operator's role).
    Create {
        /// A label for the token, unique among live tokens.
        #[arg(long, value_name = "LABEL")]
        name: String,
        /// What calls with the token may do: read (queries, metadata, time travel), write
        /// (also register, INSERT, aliases, tags, jobs, eval runs) or admin (also delete).
        /// Example: --access write
        #[arg(long, value_enum, default_value_t = AccessLevel::Read)]
        access: AccessLevel,
        /// The token stops working after this long: e.g. 90d, 12h, 30m, "1h 30m".
        #[arg(long, value_name = "DURATION", value_parser = parse_duration,
              conflicts_with = "expires_at")]
        expires_in: Option<std::time::Duration>,
        /// The token stops working at this time (UTC): e.g. 2027-06-30 or
        /// 2027-06-30T18:00:00Z.
        #[arg(long, value_name = "TIMESTAMP", value_parser = parse_timestamp)]
        expires_at: Option<std::time::SystemTime>,
    },
    /// List tokens: label, scope, access, created, expires, last used, status (live,
    /// revoked, expired).
    List,
    /// Revoke the token with this label; calls with it fail from the next one on.
    Revoke {
        /// The label given at creation.
        label: String,
    },
}

fn parse_event_kind(value: &str) -> Result<jammi_catalog::EventKind, String> {
    value
        .parse()
        .map_err(|e: jammi_catalog::CatalogError| e.to_string())
}

fn parse_tenant(value: &str) -> Result<TenantId, String> {
    value.parse::<TenantId>().map_err(|e| e.to_string())
}

/// An access level, as the command line spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum AccessLevel {
    Read,
    Write,
    Admin,
}

impl From<AccessLevel> for Access {
    fn from(level: AccessLevel) -> Access {
        match level {
            AccessLevel::Read => Access::Read,
            AccessLevel::Write => Access::Write,
            AccessLevel::Admin => Access::Admin,
        }
    }
}

fn parse_duration(value: &str) -> Result<std::time::Duration, String> {
    let duration = humantime::parse_duration(value)
        .map_err(|e| format!("{e}; write a duration such as 90d, 12h, 30m or \"1h 30m\""))?;
    if duration.is_zero() {
        return Err("the duration must be longer than zero".into());
    }
    Ok(duration)
}

fn parse_timestamp(value: &str) -> Result<std::time::SystemTime, String> {
    // A date alone is its midnight, UTC.
    let full = if value.len() == 10 {
        format!("{value}T00:00:00Z")
    } else {
        value.to_owned()
    };
    humantime::parse_rfc3339_weak(&full)
        .map_err(|e| format!("{e}; write a UTC time such as 2027-06-30 or 2027-06-30T18:00:00Z"))
}

/// Refuses options given on the command line to a part of the command that does not use
/// them (exit status 2): the SQL session's options with a subcommand, a tenant for a
/// server (each call's token gives it) or for listing and revoking tokens.
fn check_options(cli: &Cli, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
    let given = |id: &str| {
        matches!(
            matches.value_source(id),
            Some(clap::parser::ValueSource::CommandLine)
        )
    };
    let conflict = |message: String| {
        Err(Cli::command().error(clap::error::ErrorKind::ArgumentConflict, message))
    };
    let Some(action) = &cli.action else {
        return Ok(());
    };
    let subcommand = match action {
        Action::Serve { .. } => "serve",
        Action::Events { .. } => "events",
        Action::Token { .. } => "token",
        Action::Webhook { .. } => "webhook",
    };
    for (id, option) in [
        ("command", "-c"),
        ("file", "-f"),
        ("format", "--format"),
        ("access", "--access"),
    ] {
        if given(id) {
            return conflict(format!(
                "{option} belongs to a SQL session and cannot be used with `{subcommand}`{}",
                if id == "access" && subcommand == "token" {
                    "; to give a token's access, write it after `token create`"
                } else {
                    ""
                }
            ));
        }
    }
    let tenant_given = tenant_on_command_line(matches);
    let takes_tenant = matches!(
        action,
        Action::Events { .. }
            | Action::Webhook { .. }
            | Action::Token {
                action: TokenAction::Create { .. }
            }
    );
    if tenant_given && !takes_tenant {
        let (what, why) = match action {
            Action::Serve { .. } => ("serve", "each call's token gives its scope"),
            Action::Token { .. } => (
                "token list/revoke",
                "they act on every token, whatever its scope",
            ),
            Action::Events { .. } | Action::Webhook { .. } => return Ok(()),
        };
        return conflict(format!("--tenant cannot be used with `{what}`: {why}"));
    }
    Ok(())
}

/// Whether `--tenant` was typed in `matches` or any subcommand below it.
fn tenant_on_command_line(matches: &clap::ArgMatches) -> bool {
    matches!(
        matches.value_source("tenant"),
        Some(clap::parser::ValueSource::CommandLine)
    ) || matches
        .subcommand()
        .is_some_and(|(_, sub)| tenant_on_command_line(sub))
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
    if let Err(e) = check_options(&cli, &matches) {
        e.exit();
    }
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
            no_webhooks,
            webhook_lease,
            webhook_timeout,
            webhook_backoff,
            webhook_max_failures,
            webhook_retention,
        }) => {
            return serve::serve(serve::ServeOptions {
                db: cli.db,
                listen,
                tls: tls_cert.zip(tls_key),
                limits: serve::Limits {
                    query: serve::QueryLimits {
                        memory: memory_limit,
                        timeout: std::time::Duration::from_secs(query_timeout),
                    },
                    concurrent: max_concurrent as usize,
                    queue_wait: std::time::Duration::from_secs(query_timeout)
                        .min(serve::MAX_QUEUE_WAIT),
                },
                webhooks: (!no_webhooks).then_some(delivery::DeliveryOptions {
                    lease: webhook_lease,
                    timeout: webhook_timeout,
                    backoff: webhook_backoff,
                    max_failures: webhook_max_failures,
                    retention: webhook_retention,
                }),
            })
            .await;
        }
        Some(Action::Events {
            since,
            kind,
            follow,
        }) => return events::print(&cli.db, cli.tenant, since, &kind, follow).await,
        Some(Action::Token { action }) => {
            return match action {
                TokenAction::Create {
                    name,
                    access,
                    expires_in,
                    expires_at,
                } => {
                    let expires = match expires_in {
                        Some(d) => match std::time::SystemTime::now().checked_add(d) {
                            Some(at) => Some(at),
                            None => Cli::command()
                                .error(
                                    clap::error::ErrorKind::ValueValidation,
                                    "--expires-in is too far in the future",
                                )
                                .exit(),
                        },
                        None => expires_at,
                    };
                    let grant = Grant {
                        scope: cli.tenant,
                        access: access.into(),
                    };
                    token::create(&cli.db, &name, grant, expires).await
                }
                TokenAction::List => token::list(&cli.db).await,
                TokenAction::Revoke { label } => token::revoke(&cli.db, &label).await,
            };
        }
        Some(Action::Webhook { action }) => {
            let (db, tenant) = (cli.db.as_str(), cli.tenant);
            return match action {
                WebhookAction::Create {
                    url,
                    events,
                    model,
                    since,
                } => {
                    let webhook = jammi_catalog::NewWebhook {
                        url,
                        event_kinds: events,
                        model_pattern: model,
                        since,
                    };
                    webhook::create(db, tenant, webhook).await
                }
                WebhookAction::List => webhook::list(db, tenant).await,
                WebhookAction::Pause { id, reason } => {
                    webhook::pause(db, tenant, &id, &reason).await
                }
                WebhookAction::Resume { id } => webhook::resume(db, tenant, &id).await,
                WebhookAction::Delete { id } => webhook::delete(db, tenant, &id).await,
            };
        }
        None => {}
    }
    let session = Session::open(&cli.db, cli.tenant, cli.access.into(), cli.format).await?;
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
