//! The command line: `serve` and `check`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::configuration::{LogFormat, Settings, SourceKind};
use crate::source::yaml;
use crate::startup::Application;

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
}

pub fn run(cli: Cli) -> ExitCode {
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
        Command::Check => check(&settings),
    }
}

fn init_logging(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == LogFormat::Json {
        builder.format(|out, record| {
            use std::io::Write;
            let line = serde_json::json!({
                "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "level": record.level().as_str(),
                "target": record.target(),
                "message": record.args().to_string(),
            });
            writeln!(out, "{line}")
        });
    }
    let _ = builder.try_init();
}

fn serve(settings: Settings) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("towerhook: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let application = match Application::build(settings).await {
            Ok(application) => application,
            Err(error) => {
                log::error!("{error}");
                return ExitCode::FAILURE;
            }
        };
        match application.run_until_stopped().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                log::error!("server stopped: {error}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Prints what was checked and every problem found; non-zero exit when there is one.
fn check(settings: &Settings) -> ExitCode {
    let mut problems: Vec<String> = Vec::new();
    match settings.source {
        SourceKind::Yaml => {
            println!(
                "definitions: YAML directory {}",
                settings.yaml_dir.display()
            );
            let loaded = crate::startup::local_secrets(settings)
                .and_then(|secrets| yaml::load_dir(&settings.yaml_dir, Arc::new(secrets)));
            match loaded {
                Ok(loaded) => {
                    let registry = &loaded.registry;
                    let active = registry.webhooks().iter().filter(|w| w.active).count();
                    println!(
                        "  {} webhook(s) ({active} active), {} authenticator(s)",
                        registry.webhooks().len(),
                        registry.authenticators().len()
                    );
                    for warning in &loaded.warnings {
                        println!("  warning: {warning}");
                    }
                }
                Err(error) => problems.extend(error.0.iter().map(ToString::to_string)),
            }
        }
    }
    let store = settings.log_store_path();
    println!("log store: {}", store.display());
    if let Err(error) =
        crate::log_store::LogStore::open(&store, settings.log_store_sync, settings.retention_days)
    {
        problems.push(error.to_string());
    }
    if problems.is_empty() {
        println!("ok");
        ExitCode::SUCCESS
    } else {
        println!("{} problem(s):", problems.len());
        for problem in &problems {
            println!("  - {problem}");
        }
        ExitCode::FAILURE
    }
}
