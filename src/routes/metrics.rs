//! `GET /metrics`: Prometheus text format.

use std::sync::atomic::Ordering;

use actix_web::{HttpResponse, web};

use crate::pipeline::Services;

pub async fn metrics(services: web::Data<Services>) -> HttpResponse {
    let metrics = &services.metrics;
    metrics
        .python_queue_depth
        .set(services.pool.queue_depth() as i64);
    let outbox = services.log_store.outbox();
    metrics
        .outbox_records
        .set(outbox.records.load(Ordering::Relaxed) as i64);
    metrics
        .outbox_bytes
        .set(outbox.bytes.load(Ordering::Relaxed) as i64);
    if let Some(shipper) = &services.shipper {
        metrics
            .shipped_records
            .set(shipper.status.shipped.load(Ordering::Relaxed) as i64);
        let store = services.log_store.clone();
        // A small read of the store; kept off the worker thread.
        match web::block(move || store.outbox_details()).await {
            Ok(Ok((dead, oldest))) => {
                metrics.dead_letters.set(dead);
                metrics
                    .outbox_oldest_age_seconds
                    .set(oldest.map_or(0, |age| age.as_secs() as i64));
            }
            Ok(Err(error)) => log::warn!("metrics: cannot read the outbox: {error}"),
            Err(error) => log::warn!("metrics: {error}"),
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}
