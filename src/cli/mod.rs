//! The command line: `serve`, `check`, `run`, `outbox`, `export`, `import`, `odoo-setup`.

pub mod check;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::configuration::{LogFormat, Settings};
use crate::http::server::Application;

#[derive(Debug, Parser)]
#[command(
    name = "towerhook",
    version,
    about = "Serves Cetmix Tower webhooks for Odoo"
)]
pub struct Cli {
    /// TOML settings file; every key can also be set with TOWERHOOK_<KEY>.
    #[arg(long, short, global = true, env = "TOWERHOOK_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the webhooks.
    Serve,
    /// Validate the settings and the definitions; list every problem.
    Check,
    /// Inspect the log records not yet in Odoo; send dead letters again.
    Outbox {
        #[command(subcommand)]
        action: OutboxAction,
    },
    /// Inspect the calls accepted for later (webhooks with `mode: async`); run dead letters
    /// again.
    Queue {
        #[command(subcommand)]
        action: QueueAction,
    },
    /// Run one webhook locally through the same pipeline as `serve` and print the answer and
    /// the log record; nothing is stored or shipped. The way to try a snippet before
    /// enabling it.
    Run(RunArgs),
    /// Write Odoo's webhooks and authenticators as Cetmix Tower YAML files (no secret
    /// values), one file per webhook.
    Export {
        /// Directory to write to (created if needed).
        #[arg(long)]
        to: PathBuf,
    },
    /// Create or update Odoo's webhooks and authenticators from YAML files, by reference.
    /// Shows the plan; writes only with --apply.
    Import {
        /// Directory of Cetmix Tower YAML files.
        dir: PathBuf,
        /// Write the changes (without it, a dry run).
        #[arg(long)]
        apply: bool,
    },
    /// A snippet worker, started by `serve` itself (not for use by hand).
    #[command(hide = true)]
    Worker,
    /// Give the service user the right to create webhook logs in Odoo (needs an
    /// administrator's credentials; safe to run again).
    OdooSetup {
        /// Login of an Odoo administrator (Settings group).
        #[arg(long, env = "TOWERHOOK_ODOO_ADMIN_LOGIN")]
        admin_login: String,
        /// The administrator's API key or password.
        #[arg(long, env = "TOWERHOOK_ODOO_ADMIN_API_KEY", hide_env_values = true)]
        admin_api_key: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The endpoint, as in /cetmix_tower_webhooks/<ENDPOINT>.
    endpoint: String,
    /// `post` or `get`.
    #[arg(long, default_value = "post")]
    method: String,
    /// File whose bytes are the request body.
    #[arg(long)]
    payload: Option<PathBuf>,
    /// A request header, `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// The query string, without `?`.
    #[arg(long, default_value = "")]
    query: String,
    /// The caller's address, for allowlists.
    #[arg(long, default_value = "127.0.0.1")]
    peer: std::net::IpAddr,
}

/// towerhook extension (src/delivery): `towerhook queue list|retry`.
#[derive(Debug, Subcommand)]
pub enum QueueAction {
    /// Counts by state, and the dead letters (with --queued, the waiting calls too).
    List {
        #[arg(long)]
        queued: bool,
    },
    /// Puts dead letters back in the queue (attempts reset): the given ids, or all of
    /// them. A running towerhook takes them within a second.
    Retry { ids: Vec<i64> },
}

#[derive(Debug, Subcommand)]
pub enum OutboxAction {
    /// Counts by state, and the dead letters (with --pending, the waiting records too).
    List {
        #[arg(long)]
        pending: bool,
    },
    /// Moves dead letters back to the queue: the given ids, or all of them.
    Retry { ids: Vec<i64> },
}

pub fn run(cli: Cli) -> ExitCode {
    if let Command::Worker = cli.command {
        // Its settings come from the server, over its socket.
        return crate::snippets::worker::main();
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("towerhook: {error}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(settings.log_format);
    match cli.command {
        Command::Serve => serve(settings),
        Command::Worker => unreachable!("handled above"),
        Command::Check => check(&settings),
        Command::Outbox { action } => outbox(&settings, action),
        Command::Queue { action } => queue(&settings, action),
        Command::Run(request) => run_one(settings, request),
        Command::Export { to } => with_odoo(&settings, |client| async move {
            let report = crate::definitions::roundtrip::export(&client, &to).await?;
            Ok(report.to_string())
        }),
        Command::Import { dir, apply } => with_odoo(&settings, |client| async move {
            let plan = crate::definitions::roundtrip::import(&client, &dir, apply).await?;
            Ok(plan.to_string())
        }),
        Command::OdooSetup {
            admin_login,
            admin_api_key,
        } => odoo_setup(&settings, &admin_login, &admin_api_key),
    }
}

/// The process's own log on stderr: text or JSON lines, filtered by `RUST_LOG` (default
/// `info`). Lines of a call carry its span: request id and endpoint. Crates that log with
/// `log` (actix, reqwest) are bridged.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        // Event fields (request id, status, ...) at the top level, next to time and level.
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

fn serve(settings: Settings) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let application = match Application::build(settings).await {
            Ok(application) => application,
            Err(error) => {
                tracing::error!("{error}");
                return ExitCode::FAILURE;
            }
        };
        match application.run_until_stopped().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!("server stopped: {error}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Prints what was checked and every problem found; non-zero exit when there is one.
fn check(settings: &Settings) -> ExitCode {
    let report = match runtime() {
        Ok(runtime) => runtime.block_on(crate::cli::check::run(settings)),
        Err(code) => return code,
    };
    for line in &report.lines {
        println!("{line}");
    }
    if report.problems.is_empty() {
        println!("ok");
        ExitCode::SUCCESS
    } else {
        println!("{} problem(s):", report.problems.len());
        for problem in &report.problems {
            println!("  - {problem}");
        }
        ExitCode::FAILURE
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("towerhook: cannot start the runtime: {error}");
            ExitCode::FAILURE
        })
}

/// Runs `command` on the existing log store; its error names the store.
fn on_store(
    settings: &Settings,
    command: impl FnOnce(&std::path::Path) -> rusqlite::Result<()>,
) -> ExitCode {
    let store = settings.log_store_path();
    if !store.is_file() {
        eprintln!("towerhook: no log store at {}", store.display());
        return ExitCode::FAILURE;
    }
    match command(&store) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("towerhook: {}: {error}", store.display());
            ExitCode::FAILURE
        }
    }
}

fn outbox(settings: &Settings, action: OutboxAction) -> ExitCode {
    on_store(settings, |store| match action {
        OutboxAction::List { pending } => {
            let states: &[&str] = if pending {
                &["dead", "pending"]
            } else {
                &["dead"]
            };
            crate::logs::shipper::list(store, states).map(|listing| {
                for (state, count) in listing.counts {
                    println!("{state}: {count}");
                }
                for entry in listing.entries {
                    println!(
                        "#{} {} {} {} {} -> {} (attempts {}): {}",
                        entry.id,
                        entry.state,
                        entry.create_date,
                        entry.request_method,
                        entry.endpoint,
                        entry.http_status.unwrap_or_default(),
                        entry.attempts,
                        entry.last_error.unwrap_or_default()
                    );
                }
            })
        }
        OutboxAction::Retry { ids } => crate::logs::shipper::retry(store, &ids).map(|moved| {
            println!("{moved} dead letter(s) queued again");
        }),
    })
}

/// towerhook extension (src/delivery): the delivery queue in the local store.
fn queue(settings: &Settings, action: QueueAction) -> ExitCode {
    on_store(settings, |store| match action {
        QueueAction::List { queued } => {
            crate::logs::delivery_store::list(store, queued).map(|listing| {
                for (state, count) in listing.counts {
                    println!("{state}: {count}");
                }
                for entry in listing.entries {
                    println!(
                        "#{} {} {} {} (webhook {}, request {}) attempts {}: {}",
                        entry.id,
                        entry.state,
                        entry.enqueued_at,
                        entry.endpoint,
                        entry.webhook_reference,
                        entry.request_id,
                        entry.attempts,
                        entry.last_error.unwrap_or_default()
                    );
                }
            })
        }
        QueueAction::Retry { ids } => {
            crate::logs::delivery_store::retry(store, &ids).map(|moved| {
                println!("{moved} dead letter(s) queued again");
            })
        }
    })
}

fn odoo_setup(settings: &Settings, admin_login: &str, admin_secret: &str) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(crate::odoo::setup::run(settings, admin_login, admin_secret)) {
        Ok(steps) => {
            for step in steps {
                println!("{step}");
            }
            println!("ok");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("towerhook: odoo-setup failed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_one(mut settings: Settings, request: RunArgs) -> ExitCode {
    let Some(method) = crate::definitions::HttpMethod::parse(&request.method) else {
        eprintln!("towerhook: --method must be post or get");
        return ExitCode::FAILURE;
    };
    let body = match &request.payload {
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => {
                eprintln!("towerhook: {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => Vec::new(),
    };
    let mut headers = Vec::new();
    for header in &request.headers {
        match header.split_once(':') {
            Some((name, value)) => {
                headers.push((name.trim().to_string(), value.trim().to_string()))
            }
            None => {
                eprintln!("towerhook: --header {header:?} is not `Name: value`");
                return ExitCode::FAILURE;
            }
        }
    }
    // Nothing of the trial may reach the real store or Odoo's logs.
    let scratch = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!("towerhook: cannot create a scratch directory: {error}");
            return ExitCode::FAILURE;
        }
    };
    settings.data_dir = scratch.path().to_path_buf();
    settings.log_sink = crate::configuration::SinkKind::Local;
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let services = match crate::app::Services::build(settings).await {
            Ok(services) => services,
            Err(error) => {
                eprintln!("towerhook: {error}");
                return ExitCode::FAILURE;
            }
        };
        if !services.calls.registry.is_loaded() {
            eprintln!(
                "towerhook: definitions not loaded: {}",
                services
                    .calls
                    .registry
                    .status()
                    .stale_reason
                    .unwrap_or_default()
            );
            return ExitCode::FAILURE;
        }
        let call = crate::calls::request::IncomingCall {
            request_id: crate::logs::record::new_request_id(),
            method,
            path: format!("/cetmix_tower_webhooks/{}", request.endpoint),
            endpoint: request.endpoint,
            headers: crate::calls::request::RequestHeaders::from_raw(
                headers
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_bytes())),
            ),
            query: request.query,
            peer: Some(request.peer),
        };
        let outcome = crate::calls::flow::handle(&services.calls, call, body.into()).await;
        println!("HTTP {}", outcome.status.as_u16());
        println!("{}", outcome.body);
        println!();
        // towerhook extension (src/delivery): an async webhook's code runs from the queue,
        // and its log record is written once it has run.
        let record = if outcome.log_later {
            println!("(mode async: queued; its code runs now)");
            crate::calls::delivery::ran_from_queue(&services.calls).await
        } else {
            serde_json::to_value(&outcome.record).ok()
        };
        println!("log record:");
        println!(
            "{}",
            serde_json::to_string_pretty(&record).unwrap_or_default()
        );
        services.shutdown().await;
        if outcome.status.as_u16() < 400 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}

/// Connects to the configured Odoo and runs `job`, printing what it says.
fn with_odoo<F, Fut>(settings: &Settings, job: F) -> ExitCode
where
    F: FnOnce(crate::odoo::OdooClient) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let outcome = runtime.block_on(async {
        let client_settings = crate::odoo::ClientSettings::from_settings(settings).context(
            "this command needs Odoo: set odoo_url, odoo_db, odoo_login and odoo_api_key",
        )?;
        let client = crate::odoo::OdooClient::connect(&client_settings).await?;
        job(client).await
    });
    match outcome {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("towerhook: {error:#}");
            ExitCode::FAILURE
        }
    }
}
