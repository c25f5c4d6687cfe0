//! The assembled service: every component, built from the settings, and the order in which
//! they stop. One cancellation token stops all background work; every task is awaited.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::calls::{CallRules, CallService, InFlight};
use crate::configuration::{Settings, SinkKind};
use crate::definitions::IpList;
use crate::definitions::LoadError;
use crate::definitions::registry::RegistryHandle;
use crate::definitions::sync::{self, DefinitionsSync, Retention};
use crate::logs::geoip::GeoIp;
use crate::logs::shipper::{self, ShipperHandle, ShipperSettings};
use crate::logs::store::{LogStore, StoreError};
use crate::odoo::SnippetCalls;
use crate::odoo::run_as::RunAs;
use crate::odoo::{OdooLink, OdooRuntime, RpcObserver};
use crate::snippets::{Pool, PoolSettings, WorkerConfig, WorkerLimits};
use crate::telemetry::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Definitions(#[from] LoadError),
    #[error(transparent)]
    LogStore(#[from] StoreError),
    #[error("cannot start the Odoo runtime: {0}")]
    OdooRuntime(#[source] std::io::Error),
    #[error("cannot tell where the towerhook binary is (set worker_program): {0}")]
    Program(#[source] std::io::Error),
    #[error("cannot start the snippet workers: {0}")]
    Snippets(#[source] std::io::Error),
    #[error("no snippet worker started: {0}")]
    NoWorker(String),
    #[error(transparent)]
    Shipper(#[from] shipper::ShipperError),
    #[error(transparent)]
    GeoIp(#[from] crate::logs::geoip::GeoIpError),
    #[error(transparent)]
    Delivery(#[from] crate::delivery::DeliveryStoreError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// The whole service: what calls use (`calls`), and what keeps it current and ships its
/// logs.
pub struct Services {
    pub settings: Arc<Settings>,
    pub calls: Arc<CallService>,
    pub definitions: DefinitionsSync,
    /// The Odoo log sink's shipper, when logs go to Odoo.
    pub shipper: Option<ShipperHandle>,
    /// Where every Odoo exchange runs (definitions, shipping, snippets' RPC), when Odoo is
    /// configured. Only held, so that it lives as long as the tasks above that run on it.
    _odoo_runtime: Option<OdooRuntime>,
    /// Shutting down: readiness says so, so that balancers stop sending calls.
    pub draining: AtomicBool,
    /// Stops every background task (definitions, shipping).
    stop: CancellationToken,
    /// The background tasks, awaited on shutdown.
    tasks: TaskTracker,
}

impl Services {
    /// Opens the store, loads the definitions, starts the interpreter and the shipper.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let settings = Arc::new(settings);
        let metrics = Arc::new(Metrics::new());
        let log_store = LogStore::open(
            &settings.log_store_path(),
            &crate::logs::store::StoreOptions::from_settings(&settings),
        )?;
        let observer: Arc<dyn RpcObserver> = Arc::new(MetricsObserver(Arc::clone(&metrics)));
        let odoo = crate::odoo::ClientSettings::from_settings(&settings)
            .map(|client| Arc::new(OdooLink::new(client, Some(Arc::clone(&observer)))));
        let odoo_runtime = match &odoo {
            Some(_) => Some(OdooRuntime::start().map_err(StartupError::OdooRuntime)?),
            None => None,
        };
        let odoo_handle = odoo_runtime.as_ref().map(OdooRuntime::handle);
        let registry = Arc::new(RegistryHandle::new());
        let (stop, tasks) = (CancellationToken::new(), TaskTracker::new());
        let definitions = sync::start(
            &settings,
            Arc::clone(&registry),
            odoo.clone().zip(odoo_handle.clone()),
            Arc::new(log_store.clone()),
            Arc::clone(&metrics),
            (&stop, &tasks),
        )
        .await?;
        let snippet_calls = odoo.iter().zip(&odoo_handle).next().map(|(link, runtime)| {
            Arc::new(SnippetCalls::new(
                runtime.clone(),
                RunAs::new(
                    Arc::clone(link),
                    settings.run_as_users.clone(),
                    settings.run_as_policy,
                ),
                std::time::Duration::from_secs_f64(settings.odoo_timeout_secs),
            ))
        });
        let pool = Pool::start(pool_settings(&settings)?, snippet_calls)
            .map_err(StartupError::Snippets)?;
        let python = pool
            .ready(WORKER_START_LIMIT)
            .await
            .map_err(StartupError::NoWorker)?;
        tracing::info!(
            "python {python} ready: {} snippet worker(s) of {} thread(s), queue {}",
            pool_settings(&settings)?.workers,
            settings.python_threads,
            settings.python_queue
        );
        // towerhook extension (src/delivery): the seen delivery ids and the queued calls an
        // earlier run left; the queue's runner starts here.
        let delivery = crate::delivery::Guards::start(
            &settings,
            pool_settings(&settings)?.workers,
            &log_store,
            pool.clone(),
            Arc::clone(&registry),
            Arc::clone(&metrics),
            (&stop, &tasks),
        )?;
        let shipper = match (settings.log_sink, &odoo, &odoo_handle) {
            (SinkKind::Odoo, Some(link), Some(runtime)) => Some(
                shipper::start(
                    ShipperSettings::from(&settings),
                    Arc::clone(link),
                    Arc::clone(log_store.outbox()),
                    runtime,
                    (&stop, &tasks),
                )
                .map_err(StartupError::Shipper)?,
            ),
            _ => None,
        };
        let geoip = match &settings.geoip_database {
            Some(path) => Some(GeoIp::open(path)?),
            None => None,
        };
        let redacted_headers = settings
            .redact_headers
            .iter()
            .map(|name| name.to_ascii_lowercase())
            .collect();
        let trusted_proxies = IpList::parse(&settings.trusted_proxies.join(","));
        let calls = Arc::new(CallService {
            registry,
            pool: Arc::new(pool),
            log_store,
            metrics,
            geoip,
            in_flight: Arc::new(InFlight::default()),
            rules: CallRules {
                max_body_bytes: settings.max_body_bytes,
                body_timeout: std::time::Duration::from_secs(settings.body_timeout_secs),
                redacted_headers,
                trusted_proxies,
                public_url: settings.public_url.clone(),
                snippet_timeout_secs: settings.snippet_timeout_secs,
            },
            delivery,
        });
        tasks.close();
        Ok(Self {
            settings,
            calls,
            definitions,
            shipper,
            _odoo_runtime: odoo_runtime,
            draining: AtomicBool::new(false),
            stop,
            tasks,
        })
    }

    /// After the last call: ends the snippet workers, stops the background tasks (what is
    /// left to ship waits in the outbox) and waits for them, and commits every record
    /// handed to the store.
    pub async fn shutdown(&self) {
        // towerhook extension (src/delivery): queued calls running now may end first.
        self.calls
            .delivery
            .shutdown(std::time::Duration::from_secs_f64(
                self.settings.shutdown_grace_secs,
            ))
            .await;
        self.calls.pool.shutdown().await;
        self.stop.cancel();
        self.tasks.wait().await;
        if let Err(error) = self.calls.log_store.close().await {
            tracing::error!("log store did not close cleanly: {error}");
        }
    }
}

/// How long the first worker may take to start before `serve` gives up.
const WORKER_START_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The snippet pool as the settings describe it.
pub fn pool_settings(settings: &Settings) -> Result<PoolSettings, StartupError> {
    let program = match &settings.worker_program {
        Some(program) => program.clone(),
        None => std::env::current_exe().map_err(StartupError::Program)?,
    };
    let workers = match settings.python_workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let max_workers = match settings.python_workers_max {
        0 => workers * 4,
        n => n.max(workers),
    };
    Ok(PoolSettings {
        workers,
        max_workers,
        queue: settings.python_queue,
        timeout: std::time::Duration::from_secs_f64(settings.snippet_timeout_secs),
        odoo_timeout: std::time::Duration::from_secs_f64(settings.odoo_timeout_secs),
        max_calls: settings.worker_max_calls.max(1),
        program,
        config: WorkerConfig {
            packages_dir: settings.python_packages_dir.to_string_lossy().into_owned(),
            max_message_chars: settings.max_message_chars,
            recursion_limit: settings.python_recursion_limit,
            timeout_secs: settings.snippet_timeout_secs,
            threads: settings.python_threads.max(1),
            odoo: settings.odoo_configured(),
            odoo_timeout_secs: settings.odoo_timeout_secs,
            // Handed to the workers, which give it to `requests` only.
            outbound_proxy: settings
                .outbound_proxy
                .as_ref()
                .map(|proxy| proxy.expose_secret().to_string()),
            outbound_timeout_secs: settings.outbound_timeout_secs,
            max_response_bytes: settings.max_response_bytes,
            limits: WorkerLimits {
                memory_mb: settings.worker_memory_mb,
                open_files: settings.worker_open_files,
                cpu_secs_per_call: settings.worker_cpu_secs,
                user: Some(settings.worker_user.clone()),
            },
        },
    })
}

impl Retention for LogStore {
    fn set_days(&self, days: u32) {
        self.set_retention_days(days);
    }

    fn days(&self) -> u32 {
        self.retention_days()
    }
}

/// RPC calls are counted in the metrics (the client knows nothing of them).
impl RpcObserver for MetricsObserver {
    fn observe(
        &self,
        call: &crate::odoo::Call,
        took: std::time::Duration,
        error: Option<&crate::odoo::OdooError>,
    ) {
        let error = error.map(|error| match error {
            crate::odoo::OdooError::Server(server) => server.short_name().to_string(),
            crate::odoo::OdooError::Unreachable { .. } => "Unreachable".to_string(),
            crate::odoo::OdooError::Status { status, .. } => format!("HTTP{status}"),
            crate::odoo::OdooError::LoginRefused { .. } => "LoginRefused".to_string(),
            crate::odoo::OdooError::Protocol { .. } => "Protocol".to_string(),
            crate::odoo::OdooError::Unsupported(_) => "Unsupported".to_string(),
        });
        self.0.observe_rpc(&call.method, took, error.as_deref());
    }
}

struct MetricsObserver(Arc<Metrics>);
