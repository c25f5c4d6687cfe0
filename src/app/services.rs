//! The assembled service: every component a call needs, built from the settings, and the
//! order in which they stop.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

use crate::calls::client_ip::IpList;
use crate::configuration::{Settings, SinkKind};
use crate::definitions::LoadError;
use crate::definitions::registry::RegistryHandle;
use crate::definitions::sync::{self, DefinitionsSync};
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
    #[error("{0}")]
    Python(String),
    #[error("{0}")]
    Outbox(String),
    #[error("{0}")]
    GeoIp(String),
    /// towerhook extension (src/delivery).
    #[error("{0}")]
    Delivery(String),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// Everything a call needs, shared by all calls.
pub struct Services {
    pub settings: Arc<Settings>,
    pub registry: Arc<RegistryHandle>,
    pub pool: Pool,
    pub log_store: LogStore,
    pub definitions: DefinitionsSync,
    /// The Odoo log sink's shipper, when logs go to Odoo.
    pub shipper: Option<ShipperHandle>,
    pub odoo: Option<Arc<OdooLink>>,
    /// Where every Odoo exchange runs (definitions, shipping, snippets' RPC), when Odoo is
    /// configured. Only held, so that it lives as long as the tasks above that run on it.
    _odoo_runtime: Option<OdooRuntime>,
    pub metrics: Arc<Metrics>,
    /// towerhook extension (src/delivery): duplicate guard, limits, queue.
    pub delivery: crate::delivery::Guards,
    pub in_flight: InFlight,
    /// Shutting down: readiness says so, so that balancers stop sending calls.
    pub draining: AtomicBool,
    pub(crate) redacted_headers: HashSet<String>,
    /// Proxies in front of towerhook itself.
    pub(crate) trusted_proxies: IpList,
    geoip: Option<GeoIp>,
}

impl Services {
    /// Opens the store, loads the definitions, starts the interpreter and the shipper.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let settings = Arc::new(settings);
        let metrics = Arc::new(Metrics::new());
        let log_store = LogStore::open(&settings.log_store_path(), &settings.store_options())?;
        let observer: Arc<dyn RpcObserver> = metrics.clone();
        let odoo = settings
            .odoo_client()
            .map(|client| Arc::new(OdooLink::new(client, Some(Arc::clone(&observer)))));
        let odoo_runtime = match &odoo {
            Some(_) => Some(OdooRuntime::start().map_err(|e| {
                StartupError::Python(format!("cannot start the Odoo runtime: {e}"))
            })?),
            None => None,
        };
        let odoo_handle = odoo_runtime.as_ref().map(OdooRuntime::handle);
        let registry = Arc::new(RegistryHandle::new());
        let definitions = sync::start(
            &settings,
            Arc::clone(&registry),
            odoo.clone().zip(odoo_handle.clone()),
            log_store.clone(),
            Arc::clone(&metrics),
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
            .map_err(|e| StartupError::Python(format!("cannot start the snippet workers: {e}")))?;
        let python = pool
            .ready(WORKER_START_LIMIT)
            .await
            .map_err(|e| StartupError::Python(format!("no snippet worker started: {e}")))?;
        log::info!(
            "python {python} ready: {} snippet worker(s) of {} thread(s), queue {}",
            pool_settings(&settings)?.workers,
            settings.python_threads,
            settings.python_queue
        );
        // towerhook extension (src/delivery): the seen delivery ids and the queued calls an
        // earlier run left; the queue's runner starts here.
        let delivery = crate::delivery::Guards::start(
            &settings,
            &log_store,
            pool.clone(),
            Arc::clone(&registry),
            Arc::clone(&metrics),
        )
        .map_err(StartupError::Delivery)?;
        let shipper = match (settings.log_sink, &odoo, &odoo_handle) {
            (SinkKind::Odoo, Some(link), Some(runtime)) => Some(
                shipper::start(
                    ShipperSettings::from(&settings),
                    Arc::clone(link),
                    Arc::clone(log_store.outbox()),
                    runtime,
                )
                .map_err(StartupError::Outbox)?,
            ),
            _ => None,
        };
        let geoip = match &settings.geoip_database {
            Some(path) => Some(GeoIp::open(path).map_err(StartupError::GeoIp)?),
            None => None,
        };
        let redacted_headers = settings
            .redact_headers
            .iter()
            .map(|name| name.to_ascii_lowercase())
            .collect();
        let trusted_proxies = IpList::parse(&settings.trusted_proxies.join(","));
        Ok(Self {
            settings,
            registry,
            pool,
            log_store,
            definitions,
            shipper,
            odoo,
            _odoo_runtime: odoo_runtime,
            metrics,
            delivery,
            in_flight: InFlight::default(),
            draining: AtomicBool::new(false),
            redacted_headers,
            trusted_proxies,
            geoip,
        })
    }

    /// The caller's country, when a GeoIP database is configured.
    pub(crate) fn country(&self, client: Option<IpAddr>) -> Option<String> {
        self.geoip.as_ref()?.country(client?)
    }

    /// After the last call: stops shipping (what is left waits in the outbox) and commits
    /// every record handed to the store.
    pub async fn shutdown(&self) {
        // towerhook extension (src/delivery): queued calls running now may end first.
        self.delivery
            .shutdown(std::time::Duration::from_secs_f64(
                self.settings.shutdown_grace_secs,
            ))
            .await;
        self.pool.shutdown().await;
        if let Some(shipper) = &self.shipper {
            shipper.stop().await;
        }
        if let Err(error) = self.log_store.close().await {
            log::error!("log store did not close cleanly: {error}");
        }
    }
}

/// Calls being processed, so that shutdown can wait for them (a call whose caller hung up
/// still runs to its end and its log record).
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    pub fn enter(&self) -> InFlightGuard<'_> {
        self.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard(self)
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Returns once no call is in flight.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

pub struct InFlightGuard<'a>(&'a InFlight);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// How long the first worker may take to start before `serve` gives up.
const WORKER_START_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The snippet pool as the settings describe it.
pub fn pool_settings(settings: &Settings) -> Result<PoolSettings, StartupError> {
    let program = match &settings.worker_program {
        Some(program) => program.clone(),
        None => std::env::current_exe().map_err(|e| {
            StartupError::Python(format!("cannot tell where the towerhook binary is: {e}"))
        })?,
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
            odoo: settings.odoo_client().is_some(),
            odoo_timeout_secs: settings.odoo_timeout_secs,
            outbound_proxy: settings.outbound_proxy.clone(),
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
