//! The request flow of the module's controller, as plain functions: match the webhook,
//! check the client address, run the authenticator and the webhook code, and shape the
//! response and the log record. Nothing here knows about actix.

use std::collections::HashSet;

use super::CallService;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value};

use crate::calls::client_ip::effective_client_ip;
use crate::calls::payload;
use crate::calls::request::{IncomingCall, RequestHeaders};
use crate::definitions::registry::Registry;
use crate::definitions::secrets::Masker;
use crate::definitions::{ContentType, SnippetKind, Webhook};
use crate::logs::record::{AuthenticationStatus, CodeStatus, LogRecord, timestamp_now};
use crate::snippets::{CallContext, Origin, Outcome, PoolError, ShapedResponse, Verdict};
use crate::telemetry::throttle::LogThrottle;

/// Where the stored headers keep towerhook's request id (a name no caller header takes).
pub const REQUEST_ID_HEADER: &str = "X-Towerhook-Request-Id";

/// What replaces a redacted header's value in stored logs.
pub const REDACTED: &str = "[redacted]";

/// Why a call was answered before its body could be used.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyRejection {
    TooLarge { limit: usize },
    TimedOut { seconds: u64 },
    Unreadable(String),
}

/// The response to send and the record to store.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    pub status: StatusCode,
    /// The JSON body, `{"message": ...}`.
    pub body: String,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u32>,
    pub record: LogRecord,
    /// The answer a snippet shaped itself (towerhook extension): sent instead of `body`.
    pub response: Option<ShapedResponse>,
    /// towerhook extension (src/delivery): the call waits in the delivery queue; its log
    /// record is written when its code has run, not now.
    pub log_later: bool,
}

/// Runs one call through the module's flow.
pub async fn handle(services: &CallService, call: IncomingCall, body: Bytes) -> CallOutcome {
    let registry = services.registry.current();
    if !services.registry.is_loaded() {
        let record = new_record(services, &registry, &call, None, None);
        return failure(
            record,
            StatusCode::SERVICE_UNAVAILABLE,
            "Definitions not loaded yet, retry later",
            Some(RETRY_AFTER_SECS),
        );
    }
    let webhook = registry.find(&call.endpoint, call.method).cloned();
    // Parsed before the lookup's result matters, as the module does; an unmatched call is
    // parsed as JSON.
    let content_type = webhook
        .as_ref()
        .map_or(ContentType::Json, |w| w.content_type);
    let mimetype = call.headers.mimetype();
    let payload = payload::parse(
        call.method,
        content_type,
        &call.query,
        mimetype.as_deref(),
        &body,
    );
    let mut record = new_record(
        services,
        &registry,
        &call,
        webhook.as_deref(),
        Some(&payload),
    );

    let Some(webhook) = webhook else {
        return failure(record, StatusCode::NOT_FOUND, "Webhook not found", None);
    };
    let authenticator = &webhook.authenticator;
    let client = effective_client_ip(
        call.peer,
        &call.headers,
        &[
            &authenticator.trusted_proxies,
            &services.rules.trusted_proxies,
        ],
    );
    record.ip_address = client.map(|ip| ip.to_string());
    record.country_code = services.country(client);
    if !authenticator.allowed_ips.allows(client) {
        return failure(record, StatusCode::FORBIDDEN, "Address not allowed", None);
    }

    let context = CallContext {
        url: Some(public_url(services, &call)),
        method: call.method.as_str().to_ascii_uppercase(),
        client_ip: record.ip_address.clone(),
        request_id: call.request_id.clone(),
    };
    // towerhook extension (src/delivery): per-webhook limits, duplicate guard and
    // accept-now-run-later; webhooks without these settings pass straight through.
    let mut admission =
        match crate::calls::delivery::admit(services, &webhook, &call, &payload, &mut record).await
        {
            Ok(admission) => admission,
            Err(refused) => return refused,
        };
    admission.keep_for_queue(&body, &context);
    let ran = services
        .pool
        .call(
            admission.snippets(&webhook),
            call.headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            body,
            &payload,
            context,
            Origin::Caller,
        )
        .await;
    let outcome = answered(services, record, ran);
    crate::calls::delivery::settle(services, admission, outcome, &webhook, &call, &payload).await
}

/// The answer and log record of a call whose snippets ran, or could not run, in the pool.
fn answered(
    services: &CallService,
    mut record: LogRecord,
    ran: Result<Verdict, PoolError>,
) -> CallOutcome {
    match ran {
        Ok(verdict) => {
            services
                .metrics
                .snippet_seconds
                .observe(verdict.micros as f64 / 1e6);
            let body = message_body(&verdict.message_json);
            match verdict.outcome {
                Outcome::Ok => {
                    record.authentication_status = AuthenticationStatus::Success;
                    record.code_status = CodeStatus::Success;
                    record.result_message = Some(verdict.message_text);
                }
                Outcome::AuthFailed => {
                    record.error_message = Some(verdict.message_text);
                }
                Outcome::CodeFailed => {
                    record.authentication_status = AuthenticationStatus::Success;
                    record.code_status = CodeStatus::Failed;
                    record.error_message = Some(verdict.message_text);
                }
            }
            record.http_status = verdict.http_status;
            CallOutcome {
                // The sandbox answers the module's statuses, or a shaped response's own
                // (checked there: 200-599).
                status: StatusCode::from_u16(verdict.http_status)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body,
                retry_after: None,
                record,
                response: verdict.response,
                log_later: false,
            }
        }
        Err(PoolError::Overloaded) => {
            static SHED: LogThrottle = LogThrottle::new(10);
            if let Some(more) = SHED.report() {
                tracing::warn!(
                    "shedding calls with 503 (now {} {}): every snippet worker is busy and the \
                     queue is full ({more} more shed since the last line)",
                    record.request_method,
                    record.endpoint
                );
            }
            failure(
                record,
                StatusCode::SERVICE_UNAVAILABLE,
                "Service overloaded, retry later",
                Some(RETRY_AFTER_SECS),
            )
        }
        Err(PoolError::Stopped) => failure(
            record,
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable, retry later",
            Some(RETRY_AFTER_SECS),
        ),
        // The snippet's own doing: its call fails as a failing snippet does.
        Err(PoolError::TimedOut { kind }) => {
            let what = format!(
                "execution timed out after {} s",
                services.rules.snippet_timeout_secs
            );
            snippet_failure(record, kind, &what, None)
        }
        // The cause (a signal, a C crash) is for the operator: the caller learns what to
        // quote.
        Err(PoolError::WorkerDied { kind, cause }) => {
            let public = format!(
                "the code ended its worker process (request {})",
                record.request_id
            );
            snippet_failure(record, kind, &public, Some(&cause))
        }
        Err(PoolError::Worker(error)) => {
            // The detail is for the operator (process log, stored record), not for the
            // caller, who gets what to quote when asking about it.
            tracing::error!(
                "call {} to {} failed inside towerhook: {error}",
                record.request_id,
                record.endpoint
            );
            let public = internal_error_message(&record.request_id);
            let mut outcome = failure(record, StatusCode::INTERNAL_SERVER_ERROR, &public, None);
            outcome.record.error_message = Some(format!("{public}: {error}"));
            outcome
        }
    }
}

/// The URL the sender called, as it signed it: the `public_url` setting, else the scheme
/// and host a trusted proxy in front of towerhook forwarded, else the request's Host; then
/// the path and query as they arrived.
fn public_url(services: &CallService, call: &IncomingCall) -> String {
    let target = if call.query.is_empty() {
        call.path.clone()
    } else {
        format!("{}?{}", call.path, call.query)
    };
    if let Some(base) = &services.rules.public_url {
        return format!("{}{target}", base.trim_end_matches('/'));
    }
    let through_proxy = call
        .peer
        .is_some_and(|peer| services.rules.trusted_proxies.contains(peer));
    // A proxy appends to what it received: its own value is the last one.
    let forwarded = |name: &str| {
        through_proxy
            .then(|| call.headers.get(name))
            .flatten()
            .and_then(|value| value.rsplit(',').next())
            .map(str::trim)
            .filter(|value| !value.is_empty())
    };
    let scheme = forwarded("X-Forwarded-Proto").unwrap_or("http");
    let host = forwarded("X-Forwarded-Host")
        .or_else(|| call.headers.get("Host"))
        .unwrap_or("localhost");
    format!("{scheme}://{host}{target}")
}

/// A snippet that failed outside the sandbox's own handling (its worker killed for time,
/// or dead), answered as the module answers a snippet that raises; `detail` goes to the
/// stored record only.
fn snippet_failure(
    mut record: LogRecord,
    kind: SnippetKind,
    what: &str,
    detail: Option<&str>,
) -> CallOutcome {
    let (status, prefix) = match kind {
        SnippetKind::Authenticator => (StatusCode::FORBIDDEN, "Authentication code error: "),
        SnippetKind::Webhook => {
            record.authentication_status = AuthenticationStatus::Success;
            record.code_status = CodeStatus::Failed;
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Webhook code execution error: ",
            )
        }
    };
    let mut outcome = failure(record, status, &format!("{prefix}{what}"), None);
    if let Some(detail) = detail {
        outcome.record.error_message = Some(format!("{prefix}{what}: {detail}"));
    }
    outcome
}

const RETRY_AFTER_SECS: u32 = 1;

/// What a caller reads when towerhook itself failed: no detail, the request id to quote.
pub fn internal_error_message(request_id: &str) -> String {
    format!("Internal error in towerhook (request {request_id})")
}

/// Counts the call in the metrics and writes its access-log line.
pub fn observe(services: &CallService, record: &LogRecord, took: std::time::Duration) {
    let metrics = &services.metrics;
    let endpoint = if record.webhook_reference.is_some() {
        record.endpoint.as_str()
    } else {
        crate::telemetry::metrics::UNMATCHED
    };
    metrics
        .calls
        .with_label_values(&[endpoint, &record.http_status.to_string()])
        .inc();
    metrics
        .authentication
        .with_label_values(&[record.authentication_status.as_str()])
        .inc();
    metrics
        .code
        .with_label_values(&[record.code_status.as_str()])
        .inc();
    let millis = took.as_secs_f64() * 1000.0;
    tracing::info!(
        target: "towerhook::access",
        request_id = record.request_id.as_str(),
        method = record.request_method.as_str(),
        endpoint = record.endpoint.as_str(),
        status = record.http_status,
        authentication = record.authentication_status.as_str(),
        code = record.code_status.as_str(),
        client = record.ip_address.as_deref().unwrap_or(""),
        duration_ms = (millis * 10.0).round() / 10.0,
        "{} {} {} {:.1} ms",
        record.request_method.as_str().to_ascii_uppercase(),
        record.endpoint,
        record.http_status,
        millis
    );
}

/// A call answered without running any code because its body was not usable.
pub fn reject(
    services: &CallService,
    call: IncomingCall,
    rejection: &BodyRejection,
) -> CallOutcome {
    let registry = services.registry.current();
    let webhook = registry.find(&call.endpoint, call.method);
    let record = new_record(
        services,
        &registry,
        &call,
        webhook.map(|w| w.as_ref()),
        None,
    );
    let (status, message) = match rejection {
        BodyRejection::TooLarge { limit } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body too large (limit {limit} bytes)"),
        ),
        BodyRejection::TimedOut { seconds } => (
            StatusCode::REQUEST_TIMEOUT,
            format!("Request body not received within {seconds} s"),
        ),
        BodyRejection::Unreadable(reason) => (
            StatusCode::BAD_REQUEST,
            format!("Request body could not be read: {reason}"),
        ),
    };
    failure(record, status, &message, None)
}

/// A record with what is known before any code runs: statuses start at failed/skipped,
/// the module's values for every early exit.
fn new_record(
    services: &CallService,
    registry: &Registry,
    call: &IncomingCall,
    webhook: Option<&Webhook>,
    payload: Option<&Value>,
) -> LogRecord {
    let client = effective_client_ip(call.peer, &call.headers, &[&services.rules.trusted_proxies]);
    LogRecord {
        request_id: call.request_id.clone(),
        create_date: timestamp_now(),
        webhook_id: webhook.and_then(|w| w.id),
        webhook_reference: webhook.map(|w| w.reference.clone()),
        endpoint: call.endpoint.clone(),
        authenticator_id: webhook.and_then(|w| w.authenticator.id),
        authenticator_reference: webhook.map(|w| w.authenticator.reference.clone()),
        request_method: call.method,
        request_headers: headers_json(
            &call.headers,
            &call.request_id,
            &services.rules.redacted_headers,
            registry.masker(),
        ),
        request_payload: match payload {
            None => Some("{}".to_string()),
            Some(Value::Null) => None,
            Some(value) if registry.masker().is_empty() => Some(value.to_string()),
            Some(value) => {
                let mut masked = value.clone();
                registry.masker().mask_json(&mut masked);
                Some(masked.to_string())
            }
        },
        authentication_status: AuthenticationStatus::Failed,
        code_status: CodeStatus::Skipped,
        http_status: 0,
        result_message: None,
        error_message: None,
        user_id: webhook.map(|w| w.user_id),
        ip_address: client.map(|ip| ip.to_string()),
        country_code: services.country(client),
    }
}

pub(crate) fn failure(
    mut record: LogRecord,
    status: StatusCode,
    message: &str,
    retry_after: Option<u32>,
) -> CallOutcome {
    record.http_status = status.as_u16();
    record.error_message = Some(message.to_string());
    CallOutcome {
        status,
        body: message_body(&serde_json::to_string(message).unwrap_or_default()),
        retry_after,
        record,
        response: None,
        log_later: false,
    }
}

/// `json.dumps({"message": m})` with Python's separators, given `json.dumps(m)`.
pub(crate) fn message_body(message_json: &str) -> String {
    format!("{{\"message\": {message_json}}}")
}

/// The stored headers, with towerhook's request id among them.
fn headers_json(
    headers: &RequestHeaders,
    request_id: &str,
    redacted: &HashSet<String>,
    masker: &Masker,
) -> String {
    let mut map: Map<String, Value> = headers
        .iter()
        .map(|(name, value)| {
            let value = if redacted.contains(&name.to_ascii_lowercase()) {
                REDACTED.to_string()
            } else {
                masker.mask_text(value).unwrap_or_else(|| value.to_string())
            };
            (name.to_string(), Value::String(value))
        })
        .collect();
    map.insert(
        REQUEST_ID_HEADER.to_string(),
        Value::String(request_id.to_string()),
    );
    Value::Object(map).to_string()
}
