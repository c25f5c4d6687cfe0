//! The service's connection to Odoo, made on first use and made again after it was lost.

use std::sync::Arc;

use tokio::sync::Mutex;

use super::client::{ClientSettings, OdooClient, RpcObserver};
use super::error::{ErrorKind, OdooError};

pub struct OdooLink {
    settings: ClientSettings,
    client: Mutex<Option<Arc<OdooClient>>>,
    observer: Option<Arc<dyn RpcObserver>>,
}

impl OdooLink {
    pub fn new(settings: ClientSettings, observer: Option<Arc<dyn RpcObserver>>) -> Self {
        Self {
            settings,
            client: Mutex::new(None),
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

    /// The logged-in client, connecting first if needed. Concurrent callers wait for one
    /// connection attempt instead of each logging in.
    pub async fn client(&self) -> Result<Arc<OdooClient>, OdooError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref() {
            return Ok(Arc::clone(client));
        }
        let mut client = OdooClient::connect(&self.settings).await?;
        if let Some(observer) = &self.observer {
            client = client.with_observer(Arc::clone(observer));
        }
        let client = Arc::new(client);
        log::info!(
            "connected to Odoo {} at {} ({}), database {:?} as {:?} (uid {})",
            client.version().text,
            self.settings.url,
            client.protocol().as_str(),
            self.settings.database,
            self.settings.login,
            client.session().uid
        );
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }

    /// Forgets the client after an error that means its session is no longer good.
    pub async fn report(&self, error: &OdooError) {
        let stale_session = matches!(error, OdooError::LoginRefused { .. })
            || error.kind() == Some(ErrorKind::AccessDenied);
        if stale_session {
            *self.client.lock().await = None;
        }
    }
}
