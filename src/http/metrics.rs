//! `GET /metrics`: Prometheus text format.

use std::sync::atomic::Ordering;

use actix_web::{HttpResponse, web};

use crate::app::Services;

pub async fn metrics(services: web::Data<Services>) -> HttpResponse {
    let metrics = &services.calls.metrics;
    metrics
        .python_queue_depth
        .set(services.calls.pool.queue_depth() as i64);
    let pool = services.calls.pool.status();
    metrics
        .workers_ready
        .set(pool.ready.load(Ordering::Relaxed) as i64);
    metrics
        .workers_busy
        .set(pool.busy.load(Ordering::Relaxed) as i64);
    metrics
        .calls_killed_for_time
        .set(pool.killed_for_time.load(Ordering::Relaxed) as i64);
    for (cause, count) in pool
        .restarts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        metrics
            .worker_restarts
            .with_label_values(&[*cause])
            .set(*count as i64);
    }
    metrics.worker_memory_bytes.reset();
    let pids = pool.pids.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for pid in pids {
        if let Some(bytes) = resident_bytes(pid) {
            metrics
                .worker_memory_bytes
                .with_label_values(&[&pid.to_string()])
                .set(bytes as i64);
        }
    }
    let outbox = services.calls.log_store.outbox();
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
        let store = services.calls.log_store.clone();
        // A small read of the store; kept off the worker thread.
        match web::block(move || store.outbox_details()).await {
            Ok(Ok((dead, oldest))) => {
                metrics.dead_letters.set(dead);
                metrics
                    .outbox_oldest_age_seconds
                    .set(oldest.map_or(0, |age| age.as_secs() as i64));
            }
            Ok(Err(error)) => tracing::warn!("metrics: cannot read the outbox: {error}"),
            Err(error) => tracing::warn!("metrics: {error}"),
        }
    }
    // towerhook extension (src/delivery): the queue and the duplicate guard.
    crate::calls::delivery::sample_metrics(&services.calls);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}

/// Resident memory of a process, from /proc (no call into the worker).
fn resident_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096);
    Some(pages * page as u64)
}
