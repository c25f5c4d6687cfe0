//! What callers notice beyond the acceptance cases: methods, limits, odd bodies, slow
//! clients, endpoints with slashes, concurrency, health endpoints.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{answer, spawn_app, spawn_app_with};
use serde_json::json;

const DEFINITIONS: &str = r#"
- {cetmix_tower_model: webhook_authenticator, reference: open, name: Open, code: "result = {'allowed': True}"}
- {cetmix_tower_model: webhook, reference: echo, name: Echo, authenticator_id: open, endpoint: echo,
   code: "result = {'exit_code': 0, 'message': 'echo %s' % (payload,)}"}
- {cetmix_tower_model: webhook, reference: nested, name: Nested, authenticator_id: open,
   endpoint: ci/build-done, code: "result = {'exit_code': 0, 'message': 'build %s done' % payload.get('build')}"}
- {cetmix_tower_model: webhook, reference: raw, name: Raw, authenticator_id: open, endpoint: raw,
   code: "result = {'exit_code': 0, 'message': 'ok'}"}
- {cetmix_tower_model: webhook, reference: slow, name: Slow, authenticator_id: open, endpoint: slow,
   code: "time.sleep(2)\nresult = {'exit_code': 0, 'message': 'slept'}"}
"#;

#[tokio::test]
async fn other_methods_get_405_with_a_json_body() {
    let app = spawn_app(DEFINITIONS).await;
    let client = reqwest::Client::new();
    for method in ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] {
        let response = client
            .request(method.parse().unwrap(), app.url("echo"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "GET, POST");
        if method != "HEAD" {
            let (_, _, message) = answer(response).await;
            assert_eq!(message, json!("Method not allowed"));
        }
    }
    // The log model has no such methods: nothing is recorded, as in the module.
    assert!(app.logs().is_empty());
}

#[tokio::test]
async fn endpoints_may_contain_slashes() {
    let app = spawn_app(DEFINITIONS).await;
    let response = reqwest::Client::new()
        .post(app.url("ci/build-done"))
        .body(r#"{"build": 42}"#)
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    assert_eq!((status, message), (200, json!("build 42 done")));
    assert_eq!(app.last_log().endpoint, "ci/build-done");
    // A prefix or a longer path is another endpoint (a trailing slash is not: tests/parity.rs).
    for other in ["ci", "ci/build-done/x"] {
        let response = reqwest::Client::new()
            .post(app.url(other))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404, "{other}");
    }
}

#[tokio::test]
async fn oversize_bodies_get_413_and_are_logged() {
    let app = spawn_app_with(DEFINITIONS, |s| s.max_body_bytes = 1024).await;
    let client = reqwest::Client::new();
    let big = "x".repeat(1025);
    let response = client
        .post(app.url("echo"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    assert_eq!(status, 413);
    assert_eq!(message, json!("Request body too large (limit 1024 bytes)"));
    let log = app.last_log();
    assert_eq!(log.http_status, 413);
    assert_eq!(log.webhook_reference.as_deref(), Some("echo"));
    assert_eq!(
        (log.authentication_status.as_str(), log.code_status.as_str()),
        ("failed", "skipped")
    );

    // Without Content-Length (chunked), the limit is enforced while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(vec![b'y'; 800]), Ok(vec![b'y'; 800])];
    let response = client
        .post(app.url("echo"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(app.logs().len(), 2);

    // Exactly at the limit is fine.
    let response = client
        .post(app.url("echo"))
        .body("z".repeat(1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn unparsable_bodies_give_an_empty_payload() {
    let app = spawn_app(DEFINITIONS).await;
    let client = reqwest::Client::new();
    for body in [
        b"{not json".to_vec(),
        b"\xff\xfe\xfd garbage".to_vec(),
        b"{\"a\": \"\xc3\x28\"}".to_vec(),
        "[".repeat(10_000).into_bytes(),
    ] {
        let response = client
            .post(app.url("echo"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, _, message) = answer(response).await;
        assert_eq!((status, message), (200, json!("echo {}")));
        assert_eq!(app.last_log().request_payload, Some(json!({})));
    }
    // JSON null is a payload of its own: logged as no payload, the webhook sees {}.
    let response = client
        .post(app.url("echo"))
        .body("null")
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    assert_eq!((status, message), (200, json!("echo {}")));
    assert_eq!(app.last_log().request_payload, None);
}

#[tokio::test]
async fn sensitive_headers_are_redacted_in_the_log() {
    let app = spawn_app_with(DEFINITIONS, |s| {
        s.redact_headers.push("X-Signature".into());
    })
    .await;
    reqwest::Client::new()
        .post(app.url("raw"))
        .header("Authorization", "Bearer secret-token")
        .header("Cookie", "session=abc")
        .header("x-api-key", "k")
        .header("X-Signature", "sig")
        .header("X-Visible", "shown")
        .send()
        .await
        .unwrap();
    let headers = app.last_log().request_headers;
    for name in ["Authorization", "Cookie", "X-Api-Key", "X-Signature"] {
        assert_eq!(headers[name], json!("[redacted]"), "{name}");
    }
    assert_eq!(headers["X-Visible"], json!("shown"));
    assert!(!headers.to_string().contains("secret-token"));
}

#[tokio::test]
async fn a_sleeping_snippet_does_not_delay_other_calls() {
    let app = spawn_app(DEFINITIONS).await;
    let client = reqwest::Client::new();
    let slow = tokio::spawn(client.post(app.url("slow")).send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let response = client.post(app.url("raw")).send().await.unwrap();
    let quick = started.elapsed();
    assert_eq!(response.status().as_u16(), 200);
    let slow = slow.await.unwrap().unwrap();
    let (status, _, message) = answer(slow).await;
    assert_eq!((status, message), (200, json!("slept")));
    assert!(
        quick < Duration::from_millis(1500),
        "a trivial call waited {quick:?} behind a sleeping snippet"
    );
}

#[tokio::test]
async fn slow_clients_get_408_and_are_logged() {
    let app = spawn_app_with(DEFINITIONS, |s| s.body_timeout_secs = 1).await;
    let port = app.port;
    let reply = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .write_all(
                b"POST /cetmix_tower_webhooks/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\":",
            )
            .unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        String::from_utf8_lossy(&reply).to_string()
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        reply.contains("Request body not received within 1 s"),
        "{reply}"
    );
    assert_eq!(app.last_log().http_status, 408);
}

#[tokio::test]
async fn header_floods_are_refused_and_the_server_keeps_serving() {
    let app = spawn_app(DEFINITIONS).await;
    let port = app.port;
    let reply = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut request = b"POST /cetmix_tower_webhooks/echo HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..500 {
            request.extend(format!("X-Flood-{i}: {}\r\n", "v".repeat(100)).as_bytes());
        }
        request.extend(b"Content-Length: 0\r\n\r\n");
        let _ = stream.write_all(&request);
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        String::from_utf8_lossy(&reply).to_string()
    })
    .await
    .unwrap();
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 4"),
        "a flood of headers was accepted: {reply}"
    );
    let response = reqwest::Client::new()
        .post(app.url("raw"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app(DEFINITIONS).await;
    let alive = reqwest::get(format!("{}/healthz", app.base()))
        .await
        .unwrap();
    assert_eq!(alive.status().as_u16(), 200);
    let ready = reqwest::get(format!("{}/readyz", app.base()))
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], json!("ready"));
    assert_eq!(body["webhooks"], json!(4));
    let unknown = reqwest::get(format!("{}/elsewhere", app.base()))
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
}

#[tokio::test]
async fn a_log_store_that_cannot_write_is_reported_and_nothing_is_lost() {
    let app = spawn_app(DEFINITIONS).await;
    // Another process holds the database's write lock: commits fail after the busy timeout.
    let blocker = rusqlite::Connection::open(app.log_path()).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let response = reqwest::Client::new()
        .post(app.url("raw"))
        .body(r#"{"kept": true}"#)
        .send()
        .await
        .unwrap();
    // The caller still gets its answer: logging never breaks a response...
    assert_eq!(response.status().as_u16(), 200);
    // ...and the failure is reported, not ignored.
    let ready = reqwest::get(format!("{}/readyz", app.base()))
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert!(
        body["problems"][0]
            .as_str()
            .unwrap()
            .contains("log store not writable"),
        "{body}"
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    // The held record is committed once the disk takes writes again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.logs().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs = app.logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].request_payload, Some(json!({"kept": true})));
    let ready = reqwest::get(format!("{}/readyz", app.base()))
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}

#[tokio::test]
async fn calls_through_a_trusted_deployment_proxy_are_judged_by_the_original_client() {
    let yaml = r#"
- {cetmix_tower_model: webhook_authenticator, reference: lan, name: LAN, code: "result = {'allowed': True}",
   allowed_ip_addresses: 198.51.100.0/24}
- {cetmix_tower_model: webhook, reference: guarded, name: Guarded, authenticator_id: lan, endpoint: guarded,
   code: "result = {'exit_code': 0, 'message': 'in'}"}
"#;
    let app = spawn_app_with(yaml, |s| s.trusted_proxies = vec!["127.0.0.1".into()]).await;
    let client = reqwest::Client::new();
    let through_proxy = |forwarded: &'static str, endpoint: &str| {
        client
            .post(app.url(endpoint))
            .header("X-Forwarded-For", forwarded)
            .send()
    };
    let (status, _, message) =
        answer(through_proxy("198.51.100.7", "guarded").await.unwrap()).await;
    assert_eq!((status, message), (200, json!("in")));
    assert_eq!(app.last_log().ip_address.as_deref(), Some("198.51.100.7"));
    let (status, _, _) = answer(through_proxy("203.0.113.9", "guarded").await.unwrap()).await;
    assert_eq!(status, 403);
    // Unmatched calls too are logged with the client's address, not the proxy's.
    through_proxy("203.0.113.10", "nowhere").await.unwrap();
    assert_eq!(app.last_log().ip_address.as_deref(), Some("203.0.113.10"));
    // Without the setting, the proxy's headers mean nothing.
    let direct = spawn_app(yaml).await;
    let response = client
        .post(direct.url("guarded"))
        .header("X-Forwarded-For", "198.51.100.7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
}
