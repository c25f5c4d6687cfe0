//! The delivery guarantees (towerhook extensions, src/delivery) as a stage of the call
//! flow: the flow calls [`admit`] once the client address is allowed, runs the snippets
//! [`Admission::snippets`] names, and hands the outcome to [`settle`]. A webhook without
//! any of these settings passes straight through both.
//!
//! Order of a watched call: the address allowlist (403, the module's), the rate of its
//! client address (429 + Retry-After), its webhook's calls at once (503 + Retry-After), a
//! full queue for asynchronous webhooks (503), the delivery id (a repeat waits while the
//! first is decided), then the authenticator: a duplicate is answered "Duplicate delivery
//! ignored" only once the authenticator allowed it (a forged repeat gets 403 and learns
//! nothing), and a new id becomes seen only once its call was accepted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

use crate::calls::CallService;
use crate::calls::flow::{BodyRejection, CallOutcome, failure, message_body};
use crate::calls::request::IncomingCall;
use crate::definitions::Webhook;
use crate::definitions::delivery::Mode;
use crate::delivery::authenticator_only;
use crate::delivery::dedup::{self, Claim, Pending};
use crate::delivery::limits::Permit;
use crate::delivery::queue::now_ms;
use crate::logs::delivery_store::{self as store, QueuedCall, Seen, Write};
use crate::logs::record::{AuthenticationStatus, CodeStatus, LogRecord};
use crate::snippets::CallContext;

/// The answer to a repeat inside the window.
pub const DUPLICATE_MESSAGE: &str = "Duplicate delivery ignored";
/// A repeat waits at most the snippet time limit plus this for its first call's decision.
const DECIDING_GRACE: Duration = Duration::from_secs(5);
/// `Retry-After` of a full queue: it drains at the pace of the webhooks' code.
const QUEUE_FULL_RETRY_AFTER: u32 = 30;
const BUSY_RETRY_AFTER: u32 = 1;

enum Kind {
    /// No setting needs the call watched.
    Plain,
    Sync,
    /// Authenticator now, code from the queue.
    Async,
    /// Seen: only the authenticator runs, to tell a sender's repeat from a forged one.
    Duplicate,
}

/// A watched call between [`admit`] and [`settle`].
pub struct Admission {
    kind: Kind,
    /// The delivery id this call decides on.
    claim: Option<(Pending, String)>,
    /// Counted among its webhook's calls at once until the answer.
    _permit: Option<Permit>,
    /// An asynchronous call's body and context, for its run from the queue.
    kept: Option<(Bytes, CallContext)>,
}

impl Admission {
    /// The webhook whose snippets run now: all of it, or only its authenticator.
    pub fn snippets(&self, webhook: &Arc<Webhook>) -> Arc<Webhook> {
        match self.kind {
            Kind::Plain | Kind::Sync => Arc::clone(webhook),
            Kind::Async | Kind::Duplicate => authenticator_only(webhook),
        }
    }

    /// Keeps what the queue needs of an asynchronous call; other calls copy nothing.
    pub fn keep_for_queue(&mut self, body: &Bytes, context: &CallContext) {
        if matches!(self.kind, Kind::Async) {
            self.kept = Some((body.clone(), context.clone()));
        }
    }
}

/// Applies the webhook's limits and looks its delivery id up; the refusal to answer, if
/// any (its record written as every answer's is).
pub async fn admit(
    services: &CallService,
    webhook: &Arc<Webhook>,
    call: &IncomingCall,
    payload: &Value,
    record: &mut LogRecord,
) -> Result<Admission, CallOutcome> {
    let policy = &webhook.delivery;
    if policy.is_plain() {
        return Ok(Admission {
            kind: Kind::Plain,
            claim: None,
            _permit: None,
            kept: None,
        });
    }
    let guards = &services.delivery;
    let metrics = &services.metrics.delivery;
    let refuse = |record: &mut LogRecord, kind: &str, status, message: &str, wait| {
        metrics.refusals.with_label_values(&[kind]).inc();
        failure(std::mem::take(record), status, message, Some(wait))
    };
    if let Some(per_minute) = policy.rate_per_minute() {
        let client = record.ip_address.as_deref().and_then(|ip| ip.parse().ok());
        if let Err(wait) = guards
            .rates
            .take(&webhook.reference, client, per_minute, Instant::now())
        {
            return Err(refuse(
                record,
                "rate",
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "Too many calls from this address (rate_per_minute = {per_minute}), retry later"
                ),
                wait,
            ));
        }
    }
    let permit = match policy.max_concurrent_calls() {
        None => None,
        Some(limit) => match guards.concurrency.enter(&webhook.reference, limit) {
            Some(permit) => Some(permit),
            None => {
                return Err(refuse(
                    record,
                    "concurrency",
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!(
                        "Too many calls to this webhook at once (max_concurrent_calls = {limit}), \
                         retry later"
                    ),
                    BUSY_RETRY_AFTER,
                ));
            }
        },
    };
    let asynchronous = policy.mode() == Mode::Async;
    if asynchronous && guards.queue.is_full() {
        return Err(refuse(
            record,
            "queue_full",
            StatusCode::SERVICE_UNAVAILABLE,
            "Delivery queue full, retry later",
            QUEUE_FULL_RETRY_AFTER,
        ));
    }
    let mut claim = None;
    let mut duplicate = false;
    if let Some(key) = policy.dedup_key()
        && let Some(id) = dedup::delivery_id(key, |name| call.headers.get(name), payload)
    {
        let wait = Duration::from_secs_f64(services.rules.snippet_timeout_secs) + DECIDING_GRACE;
        match guards
            .dedup
            .claim(&webhook.reference, &id, now_ms(), wait)
            .await
        {
            Claim::Fresh(pending) => claim = Some((pending, id)),
            Claim::Duplicate => duplicate = true,
            Claim::Busy => {
                let message = "The same delivery is still being processed, retry later";
                return Err(failure(
                    std::mem::take(record),
                    StatusCode::SERVICE_UNAVAILABLE,
                    message,
                    Some(BUSY_RETRY_AFTER),
                ));
            }
        }
    }
    let kind = match (duplicate, asynchronous) {
        (true, _) => Kind::Duplicate,
        (false, true) => Kind::Async,
        (false, false) => Kind::Sync,
    };
    Ok(Admission {
        kind,
        claim,
        _permit: permit,
        kept: None,
    })
}

/// Turns the outcome of the snippets that ran into the call's answer: a sync call's id
/// becomes seen when its code succeeded; an accepted async call is queued (committed)
/// and answered; an authenticated repeat is answered as a duplicate.
// The call's parts are handed over as the flow holds them.
pub async fn settle(
    services: &CallService,
    mut admission: Admission,
    outcome: CallOutcome,
    webhook: &Webhook,
    call: &IncomingCall,
    payload: &Value,
) -> CallOutcome {
    let policy = &webhook.delivery;
    let window_ms = policy.dedup_window_secs() as i64 * 1000;
    let allowed = outcome.record.authentication_status == AuthenticationStatus::Success
        && outcome.record.code_status == CodeStatus::Success;
    match admission.kind {
        Kind::Plain => outcome,
        Kind::Sync => {
            if let Some((pending, id)) = admission.claim
                && allowed
            {
                let expires_ms = now_ms() + window_ms;
                pending.accept(expires_ms);
                // Not awaited: sent before the call's log record, it is committed with it
                // or before it, so before the answer leaves.
                drop(services.log_store.deliver(Write::Seen(Seen {
                    webhook: webhook.reference.clone(),
                    id,
                    expires_ms,
                })));
            }
            outcome
        }
        Kind::Duplicate => {
            if !allowed {
                return outcome;
            }
            services
                .metrics
                .delivery
                .duplicates
                .with_label_values(&[&webhook.endpoint])
                .inc();
            let mut record = outcome.record;
            record.code_status = CodeStatus::Skipped;
            record.result_message = Some(DUPLICATE_MESSAGE.to_string());
            record.http_status = 200;
            CallOutcome {
                status: StatusCode::OK,
                body: message_body(&json!(DUPLICATE_MESSAGE).to_string()),
                retry_after: None,
                record,
                response: None,
                log_later: false,
            }
        }
        Kind::Async => {
            if !allowed {
                return outcome;
            }
            let (body, context) = admission
                .kept
                .take()
                .expect("flow::handle keeps an asynchronous call's body and context");
            let status =
                StatusCode::from_u16(policy.async_status()).unwrap_or(StatusCode::ACCEPTED);
            let mut record = outcome.record;
            record.code_status = CodeStatus::Skipped;
            record.result_message = None;
            record.error_message = None;
            record.http_status = status.as_u16();
            let queued = QueuedCall {
                id: 0,
                webhook_reference: webhook.reference.clone(),
                endpoint: record.endpoint.clone(),
                request_id: record.request_id.clone(),
                enqueued_at_ms: now_ms(),
                headers: call
                    .headers
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.to_string()))
                    .collect(),
                body,
                payload: payload.to_string(),
                context,
                record: record.clone(),
            };
            let expires_ms = now_ms() + window_ms;
            let seen = admission.claim.as_ref().map(|(_, id)| Seen {
                webhook: webhook.reference.clone(),
                id: id.clone(),
                expires_ms,
            });
            match services
                .delivery
                .queue
                .enqueue(&services.log_store, queued, seen)
                .await
            {
                Ok(()) => {
                    if let Some((pending, _)) = admission.claim {
                        pending.accept(expires_ms);
                    }
                    CallOutcome {
                        status,
                        body: message_body(&json!(policy.async_message()).to_string()),
                        retry_after: None,
                        record,
                        response: None,
                        log_later: true,
                    }
                }
                Err(error) => {
                    tracing::error!(
                        "call {} to {} not queued: {error}",
                        record.request_id,
                        record.endpoint
                    );
                    let mut refused = failure(
                        record,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Service unavailable: the call could not be queued, retry later",
                        Some(BUSY_RETRY_AFTER),
                    );
                    refused.record.error_message = Some(format!(
                        "Service unavailable: the call could not be queued: {error}"
                    ));
                    refused
                }
            }
        }
    }
}

/// The body limit of the webhook a call is for (`max_body_bytes` of its own, else the
/// server's).
pub fn body_limit(services: &CallService, call: &IncomingCall) -> usize {
    let server = services.rules.max_body_bytes;
    services
        .registry
        .current()
        .find(&call.endpoint, call.method)
        .map_or(server, |webhook| webhook.delivery.max_body_bytes(server))
}

/// Counts a body refused for its size among the limit refusals.
pub fn note_rejection(services: &CallService, rejection: &BodyRejection) {
    if let BodyRejection::TooLarge { .. } = rejection {
        services
            .metrics
            .delivery
            .refusals
            .with_label_values(&["body"])
            .inc();
    }
}

/// Samples the gauges for `/metrics`.
pub fn sample_metrics(services: &CallService) {
    let state = services.delivery.queue_state();
    let metrics = &services.metrics.delivery;
    metrics.queue_depth.set(state.depth as i64);
    metrics
        .queue_oldest_age_seconds
        .set(state.oldest_age_secs as i64);
    metrics.queue_dead_letters.set(state.dead_letters as i64);
    metrics.dedup_ids.set(services.delivery.dedup.len() as i64);
}

/// The queue, for `/readyz`.
pub fn readiness(services: &CallService) -> Value {
    json!(services.delivery.queue_state())
}

/// For `towerhook run`: waits until the queue has run what it holds (retries included),
/// then the last log record written.
pub async fn ran_from_queue(services: &CallService) -> Option<Value> {
    while services.delivery.queue_state().depth > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let path = services.log_store.path().to_path_buf();
    tokio::task::spawn_blocking(move || store::last_log(&path).ok().flatten())
        .await
        .ok()
        .flatten()
}
