//! Runs the service: binds the listener, serves until SIGTERM or SIGINT, then drains.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};

pub use crate::app::{Services, StartupError, pool_settings};
use crate::configuration::Settings;
use crate::http;

pub struct Application {
    port: u16,
    server: Server,
    services: web::Data<Services>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let services = web::Data::new(Services::build(settings).await?);
        let settings = Arc::clone(&services.settings);
        let bind_error = |source| StartupError::Bind {
            address: settings.listen.clone(),
            source,
        };
        let listener = TcpListener::bind(&settings.listen).map_err(bind_error)?;
        let port = listener.local_addr().map_err(bind_error)?.port();
        let app_services = services.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_services.clone())
                .app_data(web::Data::from(Arc::clone(&app_services.calls)))
                .configure(http::configure)
        })
        .client_request_timeout(Duration::from_secs(10))
        // towerhook handles the signals itself, to drain calls before actix stops.
        .disable_signals()
        .shutdown_timeout(settings.shutdown_grace_secs.ceil() as u64);
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        let server = server.listen(listener).map_err(bind_error)?.run();
        tracing::info!(
            "towerhook listening on port {port}, {} webhook(s) loaded",
            services.calls.registry.current().webhooks().len()
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

    /// A handle that stops the server as SIGTERM does.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            handle: self.server.handle(),
            services: self.services.clone(),
        }
    }

    /// Serves until SIGTERM/SIGINT (or a [`Stopper`]), then stops gracefully.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stopper = self.stopper();
        // The server future processes the handle's commands: it keeps running on its own.
        let mut server = tokio::spawn(self.server);
        let result = tokio::select! {
            result = &mut server => result,
            signal = shutdown_signal() => {
                tracing::info!("{signal}: shutting down");
                stopper.drain().await;
                server.await
            }
        };
        stopper.services.shutdown().await;
        tracing::info!("stopped");
        result.map_err(std::io::Error::other)?
    }
}

/// Says not ready, keeps serving for `shutdown_delay_secs` (a load balancer takes the
/// instance out of rotation meanwhile), stops accepting connections, lets the calls in
/// flight finish (and log) and ships what they left in the outbox, within the grace
/// period, then stops the server.
#[derive(Clone)]
pub struct Stopper {
    handle: ServerHandle,
    services: web::Data<Services>,
}

impl Stopper {
    pub async fn drain(&self) {
        let settings = &self.services.settings;
        let grace = Duration::from_secs_f64(settings.shutdown_grace_secs);
        self.services.draining.store(true, Ordering::Release);
        // Closing the listener at once would refuse, or reset in the accept queue, the
        // calls a load balancer still sends until its health check sees /readyz fail.
        let delay = Duration::from_secs_f64(settings.shutdown_delay_secs);
        if !delay.is_zero() {
            tracing::info!("not ready; still accepting calls for {delay:?} (shutdown_delay_secs)");
            tokio::time::sleep(delay).await;
        }
        let deadline = tokio::time::Instant::now() + grace;
        self.handle.pause().await;
        let in_flight = self.services.calls.in_flight.count();
        if in_flight > 0 {
            tracing::info!("waiting for {in_flight} call(s) in flight (grace {grace:?})");
        }
        if tokio::time::timeout_at(deadline, self.services.calls.in_flight.idle())
            .await
            .is_err()
        {
            tracing::warn!(
                "grace period over with {} call(s) still running",
                self.services.calls.in_flight.count()
            );
        }
        // The last calls' records usually wait for their batch (outbox_batch_age_ms): ship
        // them while Odoo takes them, so that an instance removed for good (scaled down)
        // leaves nothing behind. With Odoo failing they stay for the next start.
        if let Some(shipper) = &self.services.shipper {
            let outbox = self.services.calls.log_store.outbox();
            while outbox.records.load(Ordering::Relaxed) > 0
                && shipper.status.problem().is_none()
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.handle.stop(true).await;
    }
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT; stop towerhook with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    }
}
