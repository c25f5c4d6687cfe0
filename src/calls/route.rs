//! `GET|POST /cetmix_tower_webhooks/{endpoint}`.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::{
    ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER,
};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::CallService;
use tracing::Instrument;

use crate::calls::flow::{self, BodyRejection, CallOutcome};
use crate::calls::request::{HttpMethod, IncomingCall, RequestHeaders};
use crate::telemetry::throttle::LogThrottle;

pub async fn call(
    request: HttpRequest,
    body: web::Payload,
    services: web::Data<CallService>,
) -> HttpResponse {
    let Some(method) = HttpMethod::parse(request.method().as_str()) else {
        return method_not_allowed().await;
    };
    let request_id = crate::logs::record::new_request_id();
    let call = IncomingCall {
        request_id: request_id.clone(),
        method,
        endpoint: endpoint(&request),
        headers: RequestHeaders::from_raw(in_arrival_order(request.headers())),
        query: request.query_string().to_string(),
        path: request.uri().path().to_string(),
        peer: request.peer_addr().map(|addr| addr.ip().to_canonical()),
    };
    // A call whose record cannot be kept is refused rather than dropping records.
    if let Some(reason) = services.log_store.refuses_new_calls() {
        static REFUSALS: LogThrottle = LogThrottle::new(10);
        if let Some(more) = REFUSALS.report() {
            tracing::error!(
                "refusing calls with 503: {reason} ({more} more refused since the last line)"
            );
        }
        let mut response = json_message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable: call logs cannot be delivered for now, retry later",
        );
        response.headers_mut().insert(
            RETRY_AFTER,
            HeaderValue::from_static(OUTBOX_FULL_RETRY_AFTER),
        );
        return response;
    }
    let declared_length = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let services = services.into_inner();
    // Every line the call causes (its RPC, retries, the access line) carries its id.
    let span = tracing::info_span!(
        "call",
        request_id = %request_id,
        endpoint = %call.endpoint,
        method = call.method.as_str()
    );
    // The call runs to completion and is logged even if the caller hangs up meanwhile:
    // its code may already have acted.
    let task = actix_web::rt::spawn(Instrument::instrument(
        async move {
            let _in_flight = services.in_flight.enter();
            let started = Instant::now();
            // towerhook extension (src/delivery): a webhook's own `max_body_bytes`.
            let limit = crate::calls::delivery::body_limit(&services, &call);
            let timeout = services.rules.body_timeout;
            let mut outcome = match read_body(body, declared_length, limit, timeout).await {
                Ok(bytes) => flow::handle(&services, call, bytes).await,
                Err(rejection) => {
                    crate::calls::delivery::note_rejection(&services, &rejection);
                    flow::reject(&services, call, &rejection)
                }
            };
            let record = std::mem::take(&mut outcome.record);
            flow::observe(&services, &record, started.elapsed());
            // towerhook extension (src/delivery): a queued call is logged when its code
            // has run.
            if outcome.log_later {
                return outcome;
            }
            let (endpoint, status) = (record.endpoint.clone(), outcome.status);
            if let Err(error) = services.log_store.append(record).await {
                tracing::error!(
                    "call to {endpoint} answered {status} but its log record was not stored: {error}"
                );
            }
            outcome
        },
        span,
    ));
    match task.await {
        Ok(outcome) => {
            let mut response = respond(outcome);
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static("x-request-id"), value);
            }
            response
        }
        Err(error) => {
            tracing::error!("webhook call {request_id} failed: {error}");
            json_message(
                StatusCode::INTERNAL_SERVER_ERROR,
                &flow::internal_error_message(&request_id),
            )
        }
    }
}

/// The endpoint the module's route would match: Odoo's routes do not use strict slashes,
/// so `/cetmix_tower_webhooks/hook/` runs `hook`.
fn endpoint(request: &HttpRequest) -> String {
    let path = request.match_info().query("endpoint");
    path.strip_suffix('/').unwrap_or(path).to_string()
}

/// The request's headers in the order they arrived, as the module's code sees them. actix
/// keeps headers in a hash map, but every value it parses is a slice of the one buffer
/// holding the request head, so the values' addresses give the arrival order back. Should
/// a later actix copy values elsewhere, the order would be lost: `tests/parity.rs` checks
/// it through a real socket.
fn in_arrival_order(headers: &HeaderMap) -> Vec<(&str, &[u8])> {
    let mut pairs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    pairs.sort_by_key(|(_, value)| value.as_ptr() as usize);
    pairs
}

/// Seconds a caller is asked to wait while the outbox is full.
const OUTBOX_FULL_RETRY_AFTER: &str = "30";

pub async fn method_not_allowed() -> HttpResponse {
    let mut response = json_message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    response.headers_mut().insert(
        ALLOW,
        actix_web::http::header::HeaderValue::from_static("GET, POST"),
    );
    response
}

/// The whole body, refusing more than `limit` bytes and clients slower than `timeout`.
async fn read_body(
    mut body: web::Payload,
    declared_length: Option<u64>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, BodyRejection> {
    if declared_length.is_some_and(|length| length > limit as u64) {
        return Err(BodyRejection::TooLarge { limit });
    }
    let read = async {
        let mut buffer = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| BodyRejection::Unreadable(e.to_string()))?;
            if buffer.len() + chunk.len() > limit {
                return Err(BodyRejection::TooLarge { limit });
            }
            buffer.extend_from_slice(&chunk);
        }
        Ok(buffer.freeze())
    };
    actix_web::rt::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(BodyRejection::TimedOut {
            seconds: timeout.as_secs(),
        }))
}

fn respond(outcome: CallOutcome) -> HttpResponse {
    // The flow's statuses are the `http` crate's; actix speaks an older version of it.
    let status =
        StatusCode::from_u16(outcome.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(shaped) = outcome.response {
        return shaped_response(status, shaped);
    }
    let mut response = HttpResponse::build(status);
    response.insert_header((CONTENT_TYPE, "application/json"));
    if let Some(seconds) = outcome.retry_after {
        response.insert_header((RETRY_AFTER, seconds.to_string()));
    }
    response.body(outcome.body)
}

/// A snippet's own answer (towerhook extension): its status, headers, type and body. The
/// sandbox refused hop-by-hop and framing headers; actix frames the body itself.
fn shaped_response(status: StatusCode, shaped: crate::snippets::ShapedResponse) -> HttpResponse {
    let status = StatusCode::from_u16(shaped.status).unwrap_or(status);
    let mut response = HttpResponse::build(status);
    for (name, value) in &shaped.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.append_header((name, value));
        }
    }
    response.insert_header((CONTENT_TYPE, shaped.content_type));
    response.body(shaped.body)
}

/// Every response towerhook writes itself is JSON, like the webhook answers.
pub fn json_message(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "message": message }))
}
