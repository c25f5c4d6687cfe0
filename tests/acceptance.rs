//! The 18 acceptance cases of the contract (the module's own controller tests), against the
//! real server on a real socket, checking the response and the stored log record: once with
//! the definitions in a YAML directory, once with the same definitions in Odoo (the
//! emulator, or a real Odoo: README, "Testing against a real Odoo"), where every log must
//! then also reach Odoo as stored.

mod common;

use std::net::IpAddr;

use common::odoo::{Names, TestOdoo, spawn_app_shipping_to};
use common::{TestApp, answer, spawn_app};
use serde_json::json;

const FIXTURES: &str = include_str!("fixtures/acceptance.yaml");

/// Runs each case against both sources. In Odoo the definitions carry the test's prefix
/// (`Names`), and the logs are shipped to Odoo and compared with the stored ones.
macro_rules! on_both_sources {
    ($($case:ident),* $(,)?) => {
        mod yaml_source {
            $(
                #[tokio::test]
                async fn $case() {
                    let app = super::spawn_app(super::FIXTURES).await;
                    super::$case(&app, &super::Names::as_written()).await;
                }
            )*
        }
        mod odoo_source {
            $(
                #[tokio::test]
                async fn $case() {
                    let odoo = super::TestOdoo::start().await;
                    odoo.load_yaml(super::FIXTURES).await;
                    odoo.grant_log_create().await;
                    let app = super::spawn_app_shipping_to(&odoo, |_| {}).await;
                    super::$case(&app, &odoo.names()).await;
                    odoo.assert_logs_shipped(&app).await;
                }
            )*
        }
    };
}

on_both_sources!(
    case_01_post_json_success,
    case_02_get_with_query,
    case_03_unknown_endpoint,
    case_04_wrong_method,
    case_05_post_without_body,
    case_06_authenticator_denies,
    case_07_webhook_code_raises,
    case_08_headers_are_stored_and_message_returned,
    case_09_log_has_the_client_address,
    case_10_inactive_webhook,
    case_11_authenticator_code_raises,
    case_12_json_and_form_content_types,
    case_13_ipv4_and_ipv6_allowlist,
    case_14_proxy_headers_ignored_without_trusted_proxy,
    case_15_forwarded_for_honoured_from_trusted_proxy,
    case_16_real_ip_fallback_when_forwarded_for_is_garbage,
    case_17_invalid_proxy_headers_fall_back_to_the_peer,
    case_18_immediate_peer_in_allowlist,
    denying_authenticator_chooses_its_status,
    spoofed_forwarded_for_entry_is_not_taken,
);

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

async fn post_json(app: &TestApp, endpoint: &str, body: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(endpoint))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn case_01_post_json_success(app: &TestApp, n: &Names) {
    let (status, text, _) =
        answer(post_json(app, &n.of("webhook_post"), r#"{"some": "data"}"#).await).await;
    assert_eq!(status, 200);
    // The module answers json.dumps({"message": ...}) with Python's separators.
    assert_eq!(text, r#"{"message": "POST ok"}"#);
    let log = app.last_log();
    assert_eq!(log.code_status, "success");
    assert_eq!(log.authentication_status, "success");
    assert_eq!(log.http_status, 200);
    assert_eq!(log.endpoint, n.of("webhook_post"));
    assert_eq!(log.request_method, "post");
    assert_eq!(log.request_payload, Some(json!({"some": "data"})));
    assert_eq!(log.result_message.as_deref(), Some("POST ok"));
    assert_eq!(log.error_message, None);
    assert_eq!(log.webhook_reference, Some(n.of("webhook_post")));
    assert_eq!(log.authenticator_reference, Some(n.of("always_ok")));
    assert_eq!(log.user_id, Some(1));
}

async fn case_02_get_with_query(app: &TestApp, n: &Names) {
    let response = reqwest::get(format!("{}?foo=bar", app.url(&n.of("webhook_get"))))
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    assert_eq!((status, message), (200, json!("GET ok")));
    let log = app.last_log();
    assert_eq!(
        (log.authentication_status.as_str(), log.code_status.as_str()),
        ("success", "success")
    );
    assert_eq!(log.http_status, 200);
    assert_eq!(log.request_method, "get");
    assert_eq!(log.request_payload, Some(json!({"foo": "bar"})));
}

async fn case_03_unknown_endpoint(app: &TestApp, n: &Names) {
    let (status, text, _) = answer(post_json(app, &n.of("missing"), r#"{"test": 1}"#).await).await;
    assert_eq!(status, 404);
    assert_eq!(text, r#"{"message": "Webhook not found"}"#);
    let log = app.last_log();
    assert_eq!(log.webhook_reference, None);
    assert_eq!(log.authenticator_reference, None);
    assert_eq!(log.code_status, "skipped");
    assert_eq!(log.authentication_status, "failed");
    assert_eq!(log.http_status, 404);
    assert_eq!(log.endpoint, n.of("missing"));
    assert_eq!(log.error_message.as_deref(), Some("Webhook not found"));
    assert_eq!(log.request_payload, Some(json!({"test": 1})));
    assert_eq!(log.user_id, None);
}

async fn case_04_wrong_method(app: &TestApp, n: &Names) {
    let response = reqwest::get(app.url(&n.of("webhook_post"))).await.unwrap();
    let (status, _, message) = answer(response).await;
    assert_eq!((status, message), (404, json!("Webhook not found")));
    let log = app.last_log();
    assert_eq!(log.webhook_reference, None);
    assert_eq!(log.request_method, "get");
    assert_eq!(log.endpoint, n.of("webhook_post"));
    assert_eq!(
        (log.authentication_status.as_str(), log.code_status.as_str()),
        ("failed", "skipped")
    );
    assert_eq!(log.error_message.as_deref(), Some("Webhook not found"));
}

async fn case_05_post_without_body(app: &TestApp, n: &Names) {
    let (status, _, message) = answer(post_json(app, &n.of("webhook_post"), "").await).await;
    assert_eq!((status, message), (200, json!("POST ok")));
    let log = app.last_log();
    assert_eq!(log.http_status, 200);
    assert_eq!(log.request_payload, Some(json!({})));
}

async fn case_06_authenticator_denies(app: &TestApp, n: &Names) {
    let (status, _, message) =
        answer(post_json(app, &n.of("forbidden"), r#"{"fail": 1}"#).await).await;
    assert_eq!(
        (status, message),
        (403, json!("Authentication not allowed"))
    );
    let log = app.last_log();
    assert_eq!(log.code_status, "skipped");
    assert_eq!(log.authentication_status, "failed");
    assert_eq!(log.http_status, 403);
    assert_eq!(log.endpoint, n.of("forbidden"));
    assert_eq!(log.request_payload, Some(json!({"fail": 1})));
    assert_eq!(
        log.error_message.as_deref(),
        Some("Authentication not allowed")
    );
}

async fn case_07_webhook_code_raises(app: &TestApp, n: &Names) {
    let (status, _, message) = answer(post_json(app, &n.of("webhook_raise"), "{}").await).await;
    assert_eq!(status, 500);
    assert!(
        message.as_str().unwrap().contains("Some error!"),
        "{message}"
    );
    let log = app.last_log();
    assert_eq!(log.code_status, "failed");
    assert_eq!(log.authentication_status, "success");
    assert_eq!(log.http_status, 500);
    assert_eq!(log.request_payload, Some(json!({})));
    assert!(log.error_message.unwrap().contains("Some error!"));
    assert_eq!(log.result_message, None);
}

async fn case_08_headers_are_stored_and_message_returned(app: &TestApp, n: &Names) {
    let response = reqwest::Client::new()
        .post(app.url(&n.of("webhook_post")))
        .header("Content-Type", "application/json")
        .header("x-test-header", "xxx")
        .body(r#"{"foo": "bar"}"#)
        .send()
        .await
        .unwrap();
    let (status, text, _) = answer(response).await;
    assert_eq!(status, 200);
    let log = app.last_log();
    assert_eq!(
        (log.authentication_status.as_str(), log.code_status.as_str()),
        ("success", "success")
    );
    assert_eq!(log.request_payload, Some(json!({"foo": "bar"})));
    // Title-Cased, as werkzeug hands headers to the module.
    assert_eq!(log.request_headers["X-Test-Header"], json!("xxx"));
    assert!(text.contains(&log.result_message.unwrap()));
}

async fn case_09_log_has_the_client_address(app: &TestApp, n: &Names) {
    post_json(app, &n.of("webhook_post"), r#"{"check": "ip"}"#).await;
    assert_eq!(app.last_log().ip_address.as_deref(), Some("127.0.0.1"));
}

async fn case_10_inactive_webhook(app: &TestApp, n: &Names) {
    let (status, _, message) =
        answer(post_json(app, &n.of("webhook_archived"), r#"{"a": 1}"#).await).await;
    assert_eq!((status, message), (404, json!("Webhook not found")));
    assert_eq!(app.last_log().webhook_reference, None);
}

async fn case_11_authenticator_code_raises(app: &TestApp, n: &Names) {
    let (status, _, message) = answer(post_json(app, &n.of("bad_auth"), r#"{"x": 1}"#).await).await;
    assert_eq!(status, 403);
    assert!(message.as_str().unwrap().contains("auth fail"), "{message}");
    let log = app.last_log();
    assert_eq!(
        (log.authentication_status.as_str(), log.code_status.as_str()),
        ("failed", "skipped")
    );
    assert_eq!(log.http_status, 403);
    assert_eq!(log.endpoint, n.of("bad_auth"));
    assert!(log.error_message.unwrap().contains("auth fail"));
}

async fn case_12_json_and_form_content_types(app: &TestApp, n: &Names) {
    let (status, _, message) =
        answer(post_json(app, &n.of("webhook_json"), r#"{"json_test": "ok"}"#).await).await;
    assert_eq!((status, message), (200, json!("POST JSON ok")));
    let log = app.last_log();
    assert_eq!(log.http_status, 200);
    assert_eq!(log.request_payload, Some(json!({"json_test": "ok"})));

    let response = reqwest::Client::new()
        .post(app.url(&n.of("webhook_form")))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("form_field=ok")
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    assert_eq!((status, message), (200, json!("POST FORM ok")));
    assert_eq!(
        app.last_log().request_payload,
        Some(json!({"form_field": "ok"}))
    );
}

async fn case_13_ipv4_and_ipv6_allowlist(app: &TestApp, n: &Names) {
    let cases = [
        ("203.0.113.5", 200, "IP OK"),
        ("2001:db8::42", 200, "IP OK"),
        ("198.51.100.99", 200, "IP OK"),
        ("2001:db8:abcd::abcd", 200, "IP OK"),
        ("203.0.113.99", 403, "Address not allowed"),
        ("2001:db8:ffff::1", 403, "Address not allowed"),
    ];
    for (peer, expected_status, expected_message) in cases {
        let peer = ip(peer);
        let response = app
            .client_from(peer)
            .post(format!(
                "{}/cetmix_tower_webhooks/{}",
                app.base_for(peer),
                n.of("webhook_iptest")
            ))
            .body(r#"{"ip": "test"}"#)
            .send()
            .await
            .unwrap();
        let (status, _, message) = answer(response).await;
        assert_eq!(
            (status, message),
            (expected_status, json!(expected_message)),
            "peer {peer}"
        );
        let log = app.last_log();
        assert_eq!(log.ip_address, Some(peer.to_string()), "peer {peer}");
        assert_eq!(log.http_status, i64::from(expected_status));
        if expected_status == 403 {
            assert_eq!(
                (log.authentication_status.as_str(), log.code_status.as_str()),
                ("failed", "skipped")
            );
            assert_eq!(log.error_message.as_deref(), Some("Address not allowed"));
        }
    }
}

async fn via_proxy(
    app: &TestApp,
    endpoint: &str,
    forwarded_for: &str,
    real_ip: Option<&str>,
) -> (u16, serde_json::Value) {
    let peer = ip("192.0.2.5");
    let mut request = app
        .client_from(peer)
        .post(format!(
            "{}/cetmix_tower_webhooks/{endpoint}",
            app.base_for(peer)
        ))
        .header("X-Forwarded-For", forwarded_for)
        .body(r#"{"k": "v"}"#);
    if let Some(real_ip) = real_ip {
        request = request.header("X-Real-IP", real_ip);
    }
    let (status, _, message) = answer(request.send().await.unwrap()).await;
    (status, message)
}

async fn case_14_proxy_headers_ignored_without_trusted_proxy(app: &TestApp, n: &Names) {
    let answer = via_proxy(
        app,
        &n.of("proxy_ignored"),
        "203.0.113.7, 192.0.2.5",
        Some("203.0.113.7"),
    )
    .await;
    assert_eq!(answer, (403, json!("Address not allowed")));
    assert_eq!(app.last_log().ip_address.as_deref(), Some("192.0.2.5"));
}

async fn case_15_forwarded_for_honoured_from_trusted_proxy(app: &TestApp, n: &Names) {
    let answer = via_proxy(app, &n.of("proxy_xff"), "203.0.113.7, 192.0.2.5", None).await;
    assert_eq!(answer, (200, json!("OK XFF")));
    // The log records the effective client, not the proxy.
    assert_eq!(app.last_log().ip_address.as_deref(), Some("203.0.113.7"));
}

async fn case_16_real_ip_fallback_when_forwarded_for_is_garbage(app: &TestApp, n: &Names) {
    let answer = via_proxy(
        app,
        &n.of("proxy_real_ip"),
        "garbage, not_an_ip",
        Some("203.0.113.8"),
    )
    .await;
    assert_eq!(answer, (200, json!("OK X-Real-IP")));
    assert_eq!(app.last_log().ip_address.as_deref(), Some("203.0.113.8"));
}

async fn case_17_invalid_proxy_headers_fall_back_to_the_peer(app: &TestApp, n: &Names) {
    let answer = via_proxy(
        app,
        &n.of("proxy_xff"),
        "not_an_ip, also_bad",
        Some("bad_ip_value"),
    )
    .await;
    assert_eq!(answer, (403, json!("Address not allowed")));
    assert_eq!(app.last_log().ip_address.as_deref(), Some("192.0.2.5"));
}

async fn case_18_immediate_peer_in_allowlist(app: &TestApp, n: &Names) {
    let answer = via_proxy(app, &n.of("proxy_peer"), "203.0.113.7", None).await;
    assert_eq!(answer, (200, json!("OK immediate peer")));
}

/// Documented difference: the authenticator's `http_code` is honoured (the module always
/// answers 403).
async fn denying_authenticator_chooses_its_status(app: &TestApp, n: &Names) {
    let (status, _, message) = answer(post_json(app, &n.of("teapot"), "{}").await).await;
    assert_eq!((status, message), (418, json!("I am a teapot!")));
    let log = app.last_log();
    assert_eq!(log.http_status, 418);
    assert_eq!(log.error_message.as_deref(), Some("I am a teapot!"));
}

/// Documented difference: X-Forwarded-For is walked from the right, so a client cannot
/// choose its address by sending the header to a trusted proxy that appends to it.
async fn spoofed_forwarded_for_entry_is_not_taken(app: &TestApp, n: &Names) {
    // The client wrote 203.0.113.66; the proxy appended the real client 198.51.100.1.
    let answer = via_proxy(app, &n.of("proxy_xff"), "203.0.113.66, 198.51.100.1", None).await;
    assert_eq!(answer, (403, json!("Address not allowed")));
    assert_eq!(app.last_log().ip_address.as_deref(), Some("198.51.100.1"));
}
