//! `/healthz`: the process answers. `/readyz`: it can serve calls and keep their logs.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::app::Services;

pub async fn alive() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "alive" }))
}

pub async fn ready(services: web::Data<Services>) -> HttpResponse {
    let registry = services.calls.registry.status();
    let mut problems = Vec::new();
    if !registry.loaded {
        problems.push(match &registry.stale_reason {
            Some(reason) => format!("definitions not loaded: {reason}"),
            None => "definitions not loaded yet".to_string(),
        });
    }
    if services.draining.load(std::sync::atomic::Ordering::Acquire) {
        problems.push("shutting down".to_string());
    }
    problems.extend(services.calls.log_store.health_problem());
    problems.extend(services.calls.pool.health_problem());
    // Stale definitions are still served: the instance stays in rotation, and says so.
    let stale = registry
        .stale_reason
        .as_ref()
        .filter(|_| registry.loaded)
        .map(|reason| format!("definitions may be stale: {reason}"));
    let webhooks = services.calls.registry.current().webhooks().len();
    let body = json!({
        "status": if problems.is_empty() { "ready" } else { "not ready" },
        "webhooks": webhooks,
        "stale": stale,
        "log_retention_days": services.calls.log_store.retention_days(),
        "outbox": outbox_state(&services),
        // towerhook extension (src/delivery): calls accepted for later.
        "queue": crate::calls::delivery::readiness(&services.calls),
        "problems": problems,
    });
    if problems.is_empty() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Records not yet in Odoo and why they wait, when logs go to Odoo.
fn outbox_state(services: &Services) -> serde_json::Value {
    let Some(shipper) = &services.shipper else {
        return serde_json::Value::Null;
    };
    let gauge = services.calls.log_store.outbox();
    json!({
        "unshipped_records": gauge.records.load(std::sync::atomic::Ordering::Relaxed),
        "unshipped_bytes": gauge.bytes.load(std::sync::atomic::Ordering::Relaxed),
        "problem": shipper.status.problem(),
    })
}
