//! The definitions being served: an immutable snapshot, replaced atomically as a whole so
//! that a call never sees half an update.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::definitions::HttpMethod;
use crate::definitions::secrets::Masker;
use crate::definitions::secrets::SecretValues;
use crate::definitions::{Authenticator, Webhook};

#[derive(Debug, Default)]
pub struct Registry {
    get_routes: HashMap<String, Arc<Webhook>>,
    post_routes: HashMap<String, Arc<Webhook>>,
    webhooks: Vec<Arc<Webhook>>,
    authenticators: Vec<Arc<Authenticator>>,
    masker: Masker,
}

impl Registry {
    /// Inactive webhooks are kept (for `check` and export) but never routed.
    pub fn new(
        webhooks: Vec<Arc<Webhook>>,
        authenticators: Vec<Arc<Authenticator>>,
        secrets: &SecretValues,
    ) -> Self {
        let mut get_routes = HashMap::new();
        let mut post_routes = HashMap::new();
        for webhook in webhooks.iter().filter(|w| w.active) {
            let routes = match webhook.method {
                HttpMethod::Get => &mut get_routes,
                HttpMethod::Post => &mut post_routes,
            };
            routes.insert(webhook.endpoint.clone(), Arc::clone(webhook));
        }
        Self {
            get_routes,
            post_routes,
            webhooks,
            authenticators,
            masker: Masker::new(secrets),
        }
    }

    /// Whether any snippet has a secret placeholder.
    pub fn uses_secrets(&self) -> bool {
        let uses = |code: &str| code.contains("#!cxtower.secret.");
        self.webhooks.iter().any(|w| uses(w.code.source()))
            || self.authenticators.iter().any(|a| uses(a.code.source()))
    }

    /// Masks the secret values of these definitions in stored logs.
    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    /// The active webhook for (endpoint, method): exact, case-sensitive match.
    pub fn find(&self, endpoint: &str, method: HttpMethod) -> Option<&Arc<Webhook>> {
        match method {
            HttpMethod::Get => self.get_routes.get(endpoint),
            HttpMethod::Post => self.post_routes.get(endpoint),
        }
    }

    pub fn webhooks(&self) -> &[Arc<Webhook>] {
        &self.webhooks
    }

    pub fn authenticators(&self) -> &[Arc<Authenticator>] {
        &self.authenticators
    }
}

/// Whether the served snapshot can be trusted, for `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct RegistryStatus {
    /// A snapshot has been installed at least once.
    pub loaded: bool,
    /// Why the snapshot may be out of date, if it may be.
    pub stale_reason: Option<String>,
}

/// The live registry shared by every request.
#[derive(Debug, Default)]
pub struct RegistryHandle {
    current: ArcSwap<Registry>,
    /// Read on every call, so kept apart from the status' lock.
    loaded: AtomicBool,
    status: Mutex<RegistryStatus>,
}

impl RegistryHandle {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn current(&self) -> Arc<Registry> {
        self.current.load_full()
    }

    /// Serves `registry` from now on; `stale_reason` says why it may be out of date.
    pub fn install(&self, registry: Registry, stale_reason: Option<String>) {
        self.current.store(Arc::new(registry));
        self.loaded.store(true, Ordering::Release);
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.loaded = true;
        status.stale_reason = stale_reason;
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Marks the served definitions as possibly out of date (or current again).
    pub fn set_stale(&self, reason: Option<String>) {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stale_reason = reason;
    }

    /// Why nothing is served yet, while nothing is.
    pub fn set_not_loaded_reason(&self, reason: String) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if !status.loaded {
            status.stale_reason = Some(reason);
        }
    }

    pub fn status(&self) -> RegistryStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
