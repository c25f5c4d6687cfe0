//! The provider toolkit (towerhook extensions) end to end through the server, on the demo
//! definitions (`demo/webhooks/providers.yaml`, secrets in `demo/secrets.yaml`): one-line
//! signature checks, the public URL, and answers shaped by the snippet.

mod common;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::{TestApp, spawn_app_with};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The demo definitions and their secrets, with `public_url` as Twilio's sender sees it.
async fn demo() -> TestApp {
    spawn_app_with("", |settings| {
        settings.yaml_dir = repo("demo/webhooks");
        settings.secrets_file = Some(repo("demo/secrets.yaml"));
        settings.public_url = Some("https://hooks.example.com".into());
    })
    .await
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

async fn send(request: reqwest::RequestBuilder) -> (u16, String, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn github_signatures_are_checked_in_one_line_published_vector_included() {
    // GitHub's documented example, on an endpoint whose authenticator holds that secret.
    let app = spawn_app_with(
        r#"
- cetmix_tower_model: webhook_authenticator
  reference: gh
  name: GitHub
  code: |
    result = {"allowed": verify.github(["an old secret", #!cxtower.secret.gh!#]),
              "http_code": 401, "message": verify.reason}
- cetmix_tower_model: webhook
  reference: gh_hook
  name: GitHub hook
  authenticator_id: gh
  endpoint: gh
  code: "result = {'exit_code': 0, 'message': 'verified'}"
"#,
        |settings| settings.python_workers = 1,
    )
    .await;
    let client = reqwest::Client::new();
    // Without the secret's value the check cannot pass (None is no secret).
    let (status, _, body) = send(
        client
            .post(app.url("gh"))
            .header(
                "X-Hub-Signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            )
            .body("Hello, World!"),
    )
    .await;
    assert_eq!(status, 401, "{body}");

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "gh: \"It's a Secret to Everybody\"\n").unwrap();
    let app = spawn_app_with(
        &std::fs::read_to_string(app.yaml_dir.path().join("definitions.yaml")).unwrap(),
        |settings| settings.secrets_file = Some(file.path().to_path_buf()),
    )
    .await;
    let (status, _, body) = send(
        client
            .post(app.url("gh"))
            .header(
                "X-Hub-Signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            )
            .body("Hello, World!"),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, r#"{"message": "verified"}"#));
    // One byte off: refused with the reason, never the expected signature.
    let (status, _, body) = send(
        client
            .post(app.url("gh"))
            .header(
                "X-Hub-Signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            )
            .body("Hello, World?"),
    )
    .await;
    assert_eq!(status, 401);
    assert!(!body.contains("757107ea"), "{body}");
    let message: Value = serde_json::from_str(&body).unwrap();
    assert!(!message["message"].as_str().unwrap().is_empty(), "{body}");
}

#[tokio::test]
async fn stripe_signatures_are_checked_and_stale_ones_refused() {
    let app = demo().await;
    let secret = b"whsec_demo_stripe_signing_secret";
    let body = r#"{"type": "invoice.paid"}"#;
    let sign = |t: u64| {
        let signature = hex::encode(hmac_sha256(secret, format!("{t}.{body}").as_bytes()));
        format!("t={t},v1=deadbeef,v1={signature}")
    };
    let client = reqwest::Client::new();
    let (status, _, answer) = send(
        client
            .post(app.url("demo/stripe"))
            .header("Stripe-Signature", sign(now()))
            .body(body),
    )
    .await;
    assert_eq!(
        (status, answer.as_str()),
        (200, r#"{"message": "stripe event invoice.paid received"}"#)
    );
    let (status, _, answer) = send(
        client
            .post(app.url("demo/stripe"))
            .header("Stripe-Signature", sign(now() - 400))
            .body(body),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
}

#[tokio::test]
async fn slack_url_verification_echoes_the_challenge() {
    let app = demo().await;
    let body = r#"{"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#;
    let timestamp = now().to_string();
    let signature = hex::encode(hmac_sha256(
        b"demo-slack-signing-secret",
        format!("v0:{timestamp}:{body}").as_bytes(),
    ));
    let (status, content_type, answer) = send(
        reqwest::Client::new()
            .post(app.url("demo/slack"))
            .header("X-Slack-Request-Timestamp", &timestamp)
            .header("X-Slack-Signature", format!("v0={signature}"))
            .body(body),
    )
    .await;
    assert_eq!(
        (status, answer.as_str()),
        (200, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    );
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    // The call is logged as usual: the authenticator answered, the code did not run.
    let log = app.last_log();
    assert_eq!(log.http_status, 200);
    assert_eq!(log.code_status, "skipped");
}

#[tokio::test]
async fn meta_hub_challenge_is_answered_as_bare_text_after_the_verify_token() {
    let app = demo().await;
    let url = |token: &str| {
        format!(
            "{}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444",
            app.url("demo/meta")
        )
    };
    let (status, content_type, body) =
        send(reqwest::Client::new().get(url("demo-meta-verify-token"))).await;
    assert_eq!((status, body.as_str()), (200, "1158201444"));
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let (status, _, _) = send(reqwest::Client::new().get(url("wrong"))).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn zoom_url_validation_answers_the_plain_token_and_its_hmac() {
    let app = demo().await;
    let body = json!({"event": "endpoint.url_validation", "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"}, "event_ts": 1654503849680u64}).to_string();
    let timestamp = now().to_string();
    let signature = hex::encode(hmac_sha256(
        b"demo-zoom-secret-token",
        format!("v0:{timestamp}:{body}").as_bytes(),
    ));
    let (status, content_type, answer) = send(
        reqwest::Client::new()
            .post(app.url("demo/zoom"))
            .header("x-zm-request-timestamp", &timestamp)
            .header("x-zm-signature", format!("v0={signature}"))
            .body(body),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(content_type, "application/json");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        answer,
        json!({
            "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
            "encryptedToken": hex::encode(hmac_sha256(b"demo-zoom-secret-token", b"qgg8vlvZRS6UYooatFL8Aw")),
        })
    );
}

#[tokio::test]
async fn twilio_signs_the_public_url_and_gets_twiml_back() {
    let app = demo().await;
    let fields = [
        ("Body", "Hello <3"),
        ("From", "+15017122661"),
        ("To", "+15558675310"),
    ];
    // Twilio: the URL the sender called, then each field name and value, sorted by name.
    let mut signed = "https://hooks.example.com/cetmix_tower_webhooks/demo/twilio".to_string();
    let mut sorted = fields.to_vec();
    sorted.sort();
    for (name, value) in &sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"demo-twilio-auth-token").unwrap();
    mac.update(signed.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let form: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let (status, content_type, body) = send(
        reqwest::Client::new()
            .post(app.url("demo/twilio"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", &signature)
            .body(form.clone()),
    )
    .await;
    assert_eq!(
        (status, content_type.as_str(), body.as_str()),
        (
            200,
            "text/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>Received: Hello \
             &lt;3</Message></Response>"
        )
    );
    // Signed for another URL: refused.
    let (status, _, _) = send(
        reqwest::Client::new()
            .post(app.url("demo/twilio"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", "bm90IGEgc2lnbmF0dXJl")
            .body(form),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_public_url_comes_from_a_trusted_proxy_or_the_host() {
    let yaml = r#"
- {cetmix_tower_model: webhook_authenticator, reference: open, name: Open, code: "result = {'allowed': True}"}
- {cetmix_tower_model: webhook, reference: where, name: Where, authenticator_id: open, endpoint: where,
   code: "result = {'exit_code': 0, 'message': '%s %s %s' % (method, url, request_id == headers.get('X-Request-Id', request_id))}"}
"#;
    let app = spawn_app_with(yaml, |settings| {
        settings.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let (status, _, body) = send(
        reqwest::Client::new()
            .post(format!("{}?a=1", app.url("where")))
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "odoo.example.com")
            .body("{}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["message"],
        json!("POST https://odoo.example.com/cetmix_tower_webhooks/where?a=1 True")
    );
    // Not behind a trusted proxy: the forwarded headers mean nothing.
    let direct = spawn_app_with(yaml, |_| {}).await;
    let (_, _, body) = send(
        reqwest::Client::new()
            .post(direct.url("where"))
            .header("X-Forwarded-Host", "evil.example.com")
            .body("{}"),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["message"],
        json!(format!(
            "POST http://127.0.0.1:{}/cetmix_tower_webhooks/where True",
            direct.port
        ))
    );
}
