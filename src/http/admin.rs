//! `POST /admin/reload`: read the definitions again now. Exists only when an admin token
//! is configured.

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::app::Services;
use secrecy::ExposeSecret;

use crate::calls::route::json_message;
use crate::definitions::sync::ReloadError;

pub async fn reload(request: HttpRequest, services: web::Data<Services>) -> HttpResponse {
    let Some(token) = services
        .settings
        .admin_token
        .as_ref()
        .map(ExposeSecret::expose_secret)
    else {
        return json_message(StatusCode::NOT_FOUND, "Not found");
    };
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        });
    if !given.is_some_and(|given| same_secret(given.trim(), token)) {
        let mut response = json_message(
            StatusCode::UNAUTHORIZED,
            "A valid admin token is required (Authorization: Bearer <admin_token>)",
        );
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            actix_web::http::header::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    match services.definitions.reload().await {
        Ok(webhooks) => HttpResponse::Ok().json(json!({
            "message": "Definitions reloaded",
            "webhooks": webhooks,
        })),
        Err(ReloadError::Invalid(problems)) => HttpResponse::UnprocessableEntity().json(json!({
            "message": "The definitions are invalid; the previous ones stay in service",
            "problems": problems,
        })),
        Err(error @ ReloadError::Odoo(_)) => json_message(
            StatusCode::BAD_GATEWAY,
            &format!("Reload failed, the previous definitions stay in service: {error}"),
        ),
        Err(error @ ReloadError::Stopped) => json_message(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("Reload failed, the previous definitions stay in service: {error}"),
        ),
    }
}

/// Compares without stopping at the first difference, so timing tells nothing.
fn same_secret(given: &str, expected: &str) -> bool {
    let (given, expected) = (given.as_bytes(), expected.as_bytes());
    let mut difference = given.len() ^ expected.len();
    for (i, byte) in expected.iter().enumerate() {
        difference |= usize::from(byte ^ given.get(i).copied().unwrap_or(0));
    }
    difference == 0
}
