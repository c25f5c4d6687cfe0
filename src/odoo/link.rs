//! The service's connection to Odoo, made on first use and made again after it was lost.

use std::sync::Arc;

use tokio::sync::Mutex;

use super::client::{ClientSettings, OdooClient};
use super::error::{ErrorKind, OdooError};

pub struct OdooLink {
    settings: ClientSettings,
    client: Mutex<Option<Arc<OdooClient>>>,
}

impl OdooLink {
    pub fn new(settings: ClientSettings) -> Self {
        Self {
            settings,
            client: Mutex::new(None),
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
        let client = Arc::new(OdooClient::connect(&self.settings).await?);
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
