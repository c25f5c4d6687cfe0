//! The service's connection to Odoo, made on first use and made again after it was lost.

use std::sync::Arc;
use std::time::Duration;

use super::client::{ClientSettings, OdooClient, RpcObserver};
use super::error::{ErrorKind, OdooError};
use super::single_flight::SingleFlight;

/// A failed connection is answered from memory this long: callers arriving right after a
/// failure (tens of seconds of retries while Odoo is down) do not each start another one.
const KEEP_UNREACHABLE: Duration = Duration::from_secs(2);
/// A refused login is not tried again for this long: Odoo locks out an address after a few
/// failures, and everybody behind it with it.
const KEEP_REFUSED: Duration = Duration::from_secs(60);

pub struct OdooLink {
    settings: ClientSettings,
    client: SingleFlight<(), Arc<OdooClient>, OdooError>,
    observer: Option<Arc<dyn RpcObserver>>,
}

impl OdooLink {
    pub fn new(settings: ClientSettings, observer: Option<Arc<dyn RpcObserver>>) -> Self {
        Self {
            settings,
            client: SingleFlight::default(),
            observer,
        }
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// `url database`, naming this Odoo in caches and messages.
    pub fn origin(&self) -> String {
        format!("{} {}", self.settings.url, self.settings.database)
    }

    /// The logged-in client, connecting first if needed. Concurrent callers share one
    /// connection attempt, and a failure is answered again for a short while.
    pub async fn client(&self) -> Result<Arc<OdooClient>, OdooError> {
        let (settings, observer) = (self.settings.clone(), self.observer.clone());
        self.client
            .get(&(), keep_failure, move || connect(settings, observer))
            .await
    }

    /// Forgets the client after an error that means its session is no longer good.
    pub async fn report(&self, error: &OdooError) {
        let stale_session = matches!(error, OdooError::LoginRefused { .. })
            || error.kind() == Some(ErrorKind::AccessDenied);
        if stale_session {
            self.client.forget(&());
        }
    }
}

fn keep_failure(error: &OdooError) -> Duration {
    if matches!(error, OdooError::LoginRefused { .. }) {
        KEEP_REFUSED
    } else {
        KEEP_UNREACHABLE
    }
}

async fn connect(
    settings: ClientSettings,
    observer: Option<Arc<dyn RpcObserver>>,
) -> Result<Arc<OdooClient>, OdooError> {
    let mut client = OdooClient::connect(&settings).await?;
    if let Some(observer) = observer {
        client = client.with_observer(observer);
    }
    tracing::info!(
        "connected to Odoo {} at {} ({}), database {:?} as {:?} (uid {})",
        client.version().text,
        settings.url,
        client.protocol().as_str(),
        settings.database,
        settings.login,
        client.session().uid
    );
    Ok(Arc::new(client))
}
