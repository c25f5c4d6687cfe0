//! A webhook call's path: the route that reads it (`route`), the call as the flow sees it
//! (`request`, `payload`), the client's address (`client_ip`), and the module's flow itself
//! (`flow`), which answers and shapes the log record.

pub mod client_ip;
pub mod delivery;
pub mod flow;
pub mod payload;
pub mod request;
pub mod route;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::definitions::IpList;
use crate::definitions::registry::RegistryHandle;
use crate::logs::geoip::GeoIp;
use crate::logs::store::LogStore;
use crate::snippets::Pool;
use crate::telemetry::metrics::Metrics;

/// What a call needs, and nothing else: built once by the application, shared by all
/// calls.
pub struct CallService {
    pub registry: Arc<RegistryHandle>,
    pub pool: Arc<Pool>,
    pub log_store: LogStore,
    pub metrics: Arc<Metrics>,
    pub geoip: Option<GeoIp>,
    pub in_flight: Arc<InFlight>,
    pub rules: CallRules,
    /// towerhook extension (src/delivery): duplicate guard, limits, queue.
    pub delivery: crate::delivery::Guards,
}

/// The settings the flow applies to every call.
pub struct CallRules {
    /// Largest request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// How long a client may take to send its body; slower ones get 408.
    pub body_timeout: Duration,
    /// Header names (lower case) whose values are replaced in stored logs.
    pub redacted_headers: HashSet<String>,
    /// Proxies in front of towerhook itself.
    pub trusted_proxies: IpList,
    /// The public base URL senders call, when configured.
    pub public_url: Option<String>,
    /// Wall-clock limit of one snippet, in seconds (for messages).
    pub snippet_timeout_secs: f64,
}

impl CallService {
    /// The caller's country, when a GeoIP database is configured.
    pub(crate) fn country(&self, client: Option<IpAddr>) -> Option<String> {
        self.geoip.as_ref()?.country(client?)
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
