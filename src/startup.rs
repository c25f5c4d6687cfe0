//! Builds the service from its settings and runs it.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

use crate::configuration::{Settings, SinkKind};
use crate::definitions_sync;
use crate::geoip::GeoIp;
use crate::log_store::{LogStore, StoreError};
use crate::odoo::OdooLink;
use crate::outbox::{self, ShipperSettings};
use crate::pipeline::Services;
use crate::python::{Engine, EngineSettings, InterpreterSettings};
use crate::registry::{Registry, RegistryHandle};
use crate::routes;
use crate::source::{LoadError, Problem, yaml};

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
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

pub struct Application {
    port: u16,
    server: Server,
    services: web::Data<Services>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let settings = Arc::new(settings);
        let log_store = LogStore::open(&settings.log_store_path(), &settings.store_options())?;
        let odoo = settings
            .odoo_client()
            .map(|client| Arc::new(OdooLink::new(client)));
        let registry = Arc::new(RegistryHandle::new());
        let definitions = definitions_sync::start(
            &settings,
            Arc::clone(&registry),
            odoo.clone(),
            log_store.clone(),
        )
        .await?;
        let engine =
            Arc::new(Engine::start(engine_settings(&settings)).map_err(StartupError::Python)?);
        log::info!(
            "python {} ready: {} snippet thread(s), queue {}",
            engine.python_version(),
            settings.python_threads,
            settings.python_queue
        );
        let shipper = match (settings.log_sink, &odoo) {
            (SinkKind::Odoo, Some(link)) => Some(
                outbox::start(
                    ShipperSettings::from(&settings),
                    Arc::clone(link),
                    Arc::clone(log_store.outbox()),
                )
                .map_err(StartupError::Outbox)?,
            ),
            _ => None,
        };
        let geoip = match &settings.geoip_database {
            Some(path) => Some(GeoIp::open(path).map_err(StartupError::GeoIp)?),
            None => None,
        };
        let services = web::Data::new(Services::new(
            Arc::clone(&settings),
            registry,
            engine,
            log_store,
            definitions,
            shipper,
            geoip,
        ));

        let listener =
            TcpListener::bind(&settings.listen).map_err(|source| StartupError::Bind {
                address: settings.listen.clone(),
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                address: settings.listen.clone(),
                source,
            })?
            .port();
        let app_services = services.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_services.clone())
                .configure(routes::configure)
        })
        .client_request_timeout(Duration::from_secs(10))
        .shutdown_timeout(30);
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartupError::Bind {
                address: settings.listen.clone(),
                source,
            })?
            .run();
        log::info!(
            "towerhook listening on port {port}, {} webhook(s) loaded",
            services.registry.current().webhooks().len()
        );
        Ok(Self {
            port,
            server,
            services,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

pub fn engine_settings(settings: &Settings) -> EngineSettings {
    let timeout = Duration::from_secs_f64(settings.snippet_timeout_secs);
    EngineSettings {
        threads: settings.python_threads,
        queue: settings.python_queue,
        timeout,
        stuck_after: timeout.max(Duration::from_secs(10)),
        interpreter: InterpreterSettings {
            packages_dir: settings.python_packages_dir.clone(),
            max_message_chars: settings.max_message_chars,
            recursion_limit: settings.python_recursion_limit,
            timeout_secs: settings.snippet_timeout_secs,
        },
    }
}

/// Reads the YAML definitions, logging warnings.
pub fn load_yaml(settings: &Settings) -> Result<Registry, LoadError> {
    let loaded = yaml::load_dir(&settings.yaml_dir, Arc::new(local_secrets(settings)?))?;
    for warning in &loaded.warnings {
        log::warn!("{warning}");
    }
    Ok(loaded.registry)
}

/// Secret values for the YAML source: the secrets file and `TOWERHOOK_SECRET_*` variables.
pub fn local_secrets(settings: &Settings) -> Result<crate::python::SecretValues, LoadError> {
    crate::secrets::load_local(
        settings.secrets_file.as_deref(),
        &settings.yaml_dir,
        std::env::vars(),
    )
    .map_err(|message| {
        LoadError(vec![Problem {
            file: settings
                .secrets_file
                .clone()
                .unwrap_or_else(|| settings.yaml_dir.clone()),
            record: None,
            field: None,
            message,
        }])
    })
}
