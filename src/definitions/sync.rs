//! Keeps the served registry current: loads the definitions at start, polls Odoo for
//! changes, answers `/admin/reload`, and falls back to the cached snapshot when Odoo cannot
//! be reached.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::configuration::{Settings, SourceKind};
use crate::definitions::odoo::{Mirror, build_registry};
use crate::definitions::registry::RegistryHandle;
use crate::definitions::secrets::SecretValues;
use crate::definitions::snapshot::SnapshotStore;
use crate::definitions::yaml::load_configured;
use crate::definitions::{LoadError, Problem};
use crate::odoo::companion::{self, AddonState};
use crate::odoo::{Call, OdooClient, OdooError, OdooLink};
use crate::telemetry::metrics::Metrics;

type ReloadReply = oneshot::Sender<Result<usize, ReloadError>>;

/// Why a reload left the previous definitions in service.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The definitions themselves are wrong (the YAML source): each problem, with its
    /// file, record and field.
    #[error("the definitions have {} problem(s)", .0.len())]
    Invalid(Vec<String>),
    /// Odoo could not be read.
    #[error(transparent)]
    Odoo(#[from] OdooError),
    #[error("the definitions task has stopped")]
    Stopped,
}

const RETENTION_PARAMETER: &str = "cetmix_tower_webhook.webhook_log_duration";
const DEFAULT_RETENTION_DAYS: u32 = 30;

/// Where the log retention read from Odoo goes (the log store).
pub trait Retention: Send + Sync {
    fn set_days(&self, days: u32);
    fn days(&self) -> u32;
}

/// Runs `task` until `stop` is cancelled.
async fn until(stop: CancellationToken, task: impl std::future::Future<Output = ()>) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = task => {}
    }
}

/// Handle to the task that keeps the definitions current.
#[derive(Clone)]
pub struct DefinitionsSync {
    requests: mpsc::Sender<ReloadReply>,
}

impl DefinitionsSync {
    /// Reloads now; the number of webhooks served afterwards.
    pub async fn reload(&self) -> Result<usize, ReloadError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(reply)
            .await
            .map_err(|_| ReloadError::Stopped)?;
        answer.await.map_err(|_| ReloadError::Stopped)?
    }
}

/// Loads the definitions and starts keeping them current. The YAML source must load now
/// (an error stops the start); the Odoo source may fall back to its snapshot, or start
/// empty and not ready while Odoo is unreachable.
pub async fn start(
    settings: &Settings,
    registry: Arc<RegistryHandle>,
    odoo: Option<(Arc<OdooLink>, Handle)>,
    retention: Arc<dyn Retention>,
    metrics: Arc<Metrics>,
    (stop, tasks): (&CancellationToken, &TaskTracker),
) -> Result<DefinitionsSync, LoadError> {
    let (requests, inbox) = mpsc::channel(8);
    match (settings.source, odoo) {
        (SourceKind::Yaml, _) => {
            registry.install(load_configured(settings)?, None);
            let settings = settings.clone();
            tasks.spawn(until(
                stop.child_token(),
                serve_yaml(settings, registry, inbox, metrics),
            ));
        }
        (SourceKind::Odoo, Some((link, runtime))) => {
            let snapshots = SnapshotStore::new(&settings.log_store_path());
            let mut source = OdooSource {
                link,
                mirror: Mirror::default(),
                registry,
                snapshots,
                secrets: Arc::default(),
                serving_snapshot: None,
                retention,
                retention_read_from: None,
                addon: None,
                metrics,
            };
            // A cached snapshot is served at once (start within a second, whatever Odoo
            // does) and confirmed in the background; without one, there is nothing to
            // serve until Odoo answers, so the first sync is waited for.
            // Talking to Odoo happens on the Odoo runtime only (see odoo/runtime.rs).
            let serving_cache = source.serve_cached();
            if !serving_cache {
                source = runtime
                    .spawn(async move {
                        if let Err(error) = source.sync().await {
                            source.fall_back(&error);
                        }
                        source
                    })
                    .await
                    .expect("the first sync does not panic");
            }
            let poll = Duration::from_secs_f64(settings.odoo_poll_secs);
            tasks.spawn_on(
                until(stop.child_token(), source.run(poll, inbox, serving_cache)),
                &runtime,
            );
        }
        (SourceKind::Odoo, None) => {
            return Err(LoadError(vec![Problem {
                file: "configuration".into(),
                record: None,
                field: Some("odoo_url".into()),
                message: "source = \"odoo\" needs the Odoo settings".into(),
            }]));
        }
    }
    Ok(DefinitionsSync { requests })
}

/// The YAML directory is read again on `/admin/reload`; invalid files keep the old set.
async fn serve_yaml(
    settings: Settings,
    registry: Arc<RegistryHandle>,
    mut inbox: mpsc::Receiver<ReloadReply>,
    metrics: Arc<Metrics>,
) {
    while let Some(reply) = inbox.recv().await {
        let settings = settings.clone();
        let loaded = tokio::task::spawn_blocking(move || load_configured(&settings))
            .await
            .map_err(|_| ReloadError::Stopped)
            .and_then(|loaded| {
                loaded.map_err(|error| {
                    ReloadError::Invalid(error.0.iter().map(ToString::to_string).collect())
                })
            });
        let answer = loaded.map(|fresh| {
            let count = fresh.webhooks().len();
            registry.install(fresh, None);
            count
        });
        metrics
            .definition_refreshes
            .with_label_values(&[if answer.is_ok() { "ok" } else { "failed" }])
            .inc();
        let _ = reply.send(answer);
    }
}

struct OdooSource {
    link: Arc<OdooLink>,
    mirror: Mirror,
    registry: Arc<RegistryHandle>,
    snapshots: SnapshotStore,
    secrets: Arc<SecretValues>,
    /// When the snapshot served since start (not yet confirmed by Odoo) was cached.
    serving_snapshot: Option<String>,
    retention: Arc<dyn Retention>,
    /// The client whose session last read the retention parameter.
    retention_read_from: Option<Arc<OdooClient>>,
    /// Whether the companion addon serves the current client's user.
    addon: Option<(Arc<OdooClient>, AddonState)>,
    metrics: Arc<Metrics>,
}

impl OdooSource {
    async fn run(mut self, poll: Duration, mut inbox: mpsc::Receiver<ReloadReply>, sync_now: bool) {
        let mut ticker = tokio::time::interval(poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if !sync_now {
            // The first tick fires at once: skip it, the first sync just happened.
            ticker.tick().await;
        }
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if let Err(error) = self.sync().await {
                        self.fall_back(&error);
                    }
                }
                request = inbox.recv() => {
                    let Some(reply) = request else { break };
                    let answer = self.sync().await;
                    if let Err(error) = &answer {
                        self.fall_back(error);
                    }
                    let _ = reply.send(answer.map_err(ReloadError::Odoo));
                }
            }
        }
    }

    /// One round, counted in the metrics.
    async fn sync(&mut self) -> Result<usize, OdooError> {
        let result = self.sync_once().await;
        self.metrics
            .definition_refreshes
            .with_label_values(&[if result.is_ok() { "ok" } else { "failed" }])
            .inc();
        result
    }

    /// Connects if needed, refreshes the mirror, installs and caches what changed.
    async fn sync_once(&mut self) -> Result<usize, OdooError> {
        let client = self.link.client().await?;
        if !self
            .retention_read_from
            .as_ref()
            .is_some_and(|read| Arc::ptr_eq(read, &client))
        {
            self.read_retention(&client).await;
            self.retention_read_from = Some(Arc::clone(&client));
        }
        let mut changed = match self.mirror.refresh(&client).await {
            Ok(changed) => changed,
            Err(error) => {
                self.link.report(&error).await;
                return Err(error);
            }
        };
        // Secret values change without touching the records that use them: asked every
        // round (one call), kept in memory only.
        let secrets = self.fetch_secrets(&client).await;
        if *secrets != *self.secrets {
            self.secrets = secrets;
            changed = true;
        }
        if changed || !self.registry.is_loaded() || self.serving_snapshot.is_some() {
            let (registry, problems) = build_registry(self.mirror.snapshot(), &self.secrets);
            for problem in &problems {
                tracing::warn!("definition not served: {problem}");
            }
            if self
                .addon
                .as_ref()
                .is_some_and(|(_, state)| *state != AddonState::Ready)
                && registry.uses_secrets()
            {
                tracing::warn!(
                    "some snippets use secrets: {}",
                    self.addon
                        .as_ref()
                        .map(|(_, s)| s.explain(&self.link.settings().login))
                        .unwrap_or_default()
                );
            }
            let count = registry.webhooks().len();
            self.registry.install(registry, None);
            self.serving_snapshot = None;
            if let Err(error) = self
                .snapshots
                .save(self.mirror.snapshot(), &self.link.origin())
            {
                tracing::warn!("cannot cache the definitions snapshot: {error}");
            }
            tracing::info!("definitions from Odoo installed: {count} webhook(s)");
        } else {
            self.registry.set_stale(None);
        }
        Ok(self.registry.current().webhooks().len())
    }

    /// The secret values the definitions reference, through the companion addon; none
    /// without it (snippets then get None, as the module gives for unknown secrets).
    async fn fetch_secrets(&mut self, client: &Arc<OdooClient>) -> Arc<SecretValues> {
        let state = match &self.addon {
            Some((known, state)) if Arc::ptr_eq(known, client) => state.clone(),
            _ => {
                let state = match companion::probe(client).await {
                    Ok(state) => state,
                    Err(error) => {
                        tracing::warn!(
                            "cannot tell whether the companion addon is installed: {error}"
                        );
                        return Arc::clone(&self.secrets);
                    }
                };
                tracing::info!("{}", state.explain(&self.link.settings().login));
                self.addon = Some((Arc::clone(client), state.clone()));
                state
            }
        };
        if state != AddonState::Ready {
            return Arc::default();
        }
        let snapshot = self.mirror.snapshot();
        let webhooks: Vec<i64> = snapshot.webhooks.keys().copied().collect();
        let authenticators: Vec<i64> = snapshot.authenticators.keys().copied().collect();
        match companion::secret_values(client, &webhooks, &authenticators).await {
            Ok(values) => Arc::new(values),
            Err(error) => {
                tracing::warn!(
                    "cannot read secret values from Odoo: {error}; keeping the last ones"
                );
                Arc::clone(&self.secrets)
            }
        }
    }

    /// "Keep Webhook Logs for (days)": readable by Settings users only; otherwise the
    /// configured retention stays.
    async fn read_retention(&self, client: &OdooClient) {
        let answer = client
            .execute(
                &Call::model("ir.config_parameter", "get_param")
                    .arg(json!(RETENTION_PARAMETER))
                    .arg(json!(false)),
            )
            .await;
        match answer {
            Ok(value) => {
                let days = value
                    .as_str()
                    .and_then(|text| text.trim().parse::<u32>().ok())
                    .or_else(|| value.as_u64().map(|days| days as u32));
                match days {
                    // The module treats 0 (a removed parameter) as its default, 30.
                    Some(0) | None => self.retention.set_days(DEFAULT_RETENTION_DAYS),
                    Some(days) => self.retention.set_days(days),
                }
                tracing::info!("log retention from Odoo: {} days", self.retention.days());
            }
            Err(error) => tracing::info!(
                "cannot read {RETENTION_PARAMETER} from Odoo ({error}); keeping retention_days \
                 = {}",
                self.retention.days()
            ),
        }
    }

    /// Serves the cached snapshot of this Odoo, if there is one; whether it did.
    fn serve_cached(&mut self) -> bool {
        match self.snapshots.load(&self.link.origin()) {
            Ok(Some(saved)) => {
                let (registry, _) = build_registry(&saved.snapshot, &self.secrets);
                let stale = format!(
                    "serving the snapshot of {} cached at {} UTC, not yet confirmed by Odoo",
                    self.link.origin(),
                    saved.saved_at
                );
                tracing::info!("{stale}");
                self.registry.install(registry, Some(stale));
                self.mirror = Mirror::from_snapshot(saved.snapshot);
                self.serving_snapshot = Some(saved.saved_at);
                true
            }
            Ok(None) => false,
            Err(error) => {
                tracing::warn!("the cached definitions snapshot is unreadable: {error}");
                false
            }
        }
    }

    /// Keeps serving what is served, saying why it may be stale.
    fn fall_back(&mut self, error: &OdooError) {
        let mut reason = format!("Odoo unreachable or refusing: {error}");
        if let Some(saved_at) = &self.serving_snapshot {
            reason.push_str(&format!("; serving the snapshot cached at {saved_at} UTC"));
        }
        if self.registry.is_loaded() {
            tracing::warn!("definitions may be stale: {reason}");
            self.registry.set_stale(Some(reason));
        } else {
            let reason = format!("{reason}; no cached snapshot to serve");
            tracing::error!("no definitions to serve: {reason}");
            self.registry.set_not_loaded_reason(reason);
        }
    }
}
