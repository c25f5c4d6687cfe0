//! HTTP routes: thin adapters from actix to the pipeline.

mod admin;
mod health;
mod metrics;
pub mod server;

use actix_web::{HttpResponse, web};

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/cetmix_tower_webhooks/{endpoint:.*}")
                .route(web::get().to(crate::calls::route::call))
                .route(web::post().to(crate::calls::route::call))
                .default_service(web::to(crate::calls::route::method_not_allowed)),
        )
        .route("/healthz", web::get().to(health::alive))
        .route("/readyz", web::get().to(health::ready))
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/admin/reload", web::post().to(admin::reload))
        .default_service(web::to(not_found));
}

async fn not_found() -> HttpResponse {
    crate::calls::route::json_message(actix_web::http::StatusCode::NOT_FOUND, "Not found")
}
