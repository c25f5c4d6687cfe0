//! The sandbox through the server: the escape corpus, snippets module users write, secrets,
//! time limits, recursion, message size, I/O concurrency, and the package directory.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{BinaryServer, TestApp, answer, spawn_app_with};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const OPEN: &str = r#"- {cetmix_tower_model: webhook_authenticator, reference: open, name: Open, code: "result = {'allowed': True}"}
"#;

/// YAML for webhooks behind the open authenticator: (endpoint, code).
fn webhooks(hooks: &[(&str, &str)]) -> String {
    let mut yaml = OPEN.to_string();
    for (endpoint, code) in hooks {
        yaml.push_str(&format!(
            "- cetmix_tower_model: webhook\n  reference: {reference}\n  name: {endpoint}\n  \
             authenticator_id: open\n  endpoint: {endpoint}\n  code: {code}\n",
            reference = endpoint.replace('/', "_"),
            code = serde_json::to_string(code).unwrap(),
        ));
    }
    yaml
}

async fn post(app: &TestApp, endpoint: &str, body: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(app.url(endpoint))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    let text = match message {
        Value::String(text) => text,
        other => other.to_string(),
    };
    (status, text)
}

#[derive(serde::Deserialize)]
struct Escape {
    id: String,
    code: String,
    expect: String,
    contains: String,
}

#[tokio::test]
async fn the_escape_corpus_is_refused_or_harmless_through_the_server() {
    let corpus: Vec<Escape> =
        serde_json::from_str(include_str!("../python_sandbox/tests/escape_corpus.json")).unwrap();
    assert!(corpus.len() >= 40);
    let hooks: Vec<(String, String)> = corpus
        .iter()
        .map(|e| (format!("escape/{}", e.id), e.code.clone()))
        .collect();
    let borrowed: Vec<(&str, &str)> = hooks
        .iter()
        .map(|(e, c)| (e.as_str(), c.as_str()))
        .collect();
    let app = spawn_app_with(&webhooks(&borrowed), |s| s.snippet_timeout_secs = 5.0).await;
    for entry in &corpus {
        let (status, message) = post(&app, &format!("escape/{}", entry.id), "{}").await;
        let expected_status = if entry.expect == "refused" { 500 } else { 200 };
        assert_eq!(status, expected_status, "{}: {message}", entry.id);
        assert!(
            message.contains(&entry.contains),
            "{}: {message:?} lacks {:?}",
            entry.id,
            entry.contains
        );
    }
    // Every attempt was logged as the call's failure or success.
    assert_eq!(app.logs().len(), corpus.len());
}

fn github_signature(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

const GITHUB: &str = r#"
- cetmix_tower_model: webhook_authenticator
  reference: github
  name: GitHub signature
  code: |
    signature = headers.get("X-Hub-Signature-256", "")
    expected = "sha256=" + hmac.new(#!cxtower.secret.github_secret!#.encode(), raw_data, hashlib.sha256).hexdigest()
    result = {"allowed": hmac.compare_digest(expected, signature), "http_code": 401, "message": "bad signature"}
- cetmix_tower_model: webhook_authenticator
  reference: token
  name: Token header
  code: |
    result = {"allowed": headers.get("X-Token") == #!cxtower.secret.ci_token!#}
- cetmix_tower_model: webhook
  reference: push
  name: Push
  authenticator_id: github
  endpoint: github/push
  code: |
    result = {"exit_code": 0, "message": "push to %s" % payload.get("ref")}
- cetmix_tower_model: webhook
  reference: leaky
  name: Leaky
  authenticator_id: token
  endpoint: leaky
  code: |
    if payload.get("raise"):
        raise Exception("the token is " + #!cxtower.secret.ci_token!#)
    result = {"exit_code": 0, "message": "the token is %s" % #!cxtower.secret.ci_token!#}
- cetmix_tower_model: webhook
  reference: dates
  name: Dates
  authenticator_id: token
  endpoint: dates
  code: |
    data = json.loads(payload["doc"])
    due = datetime.datetime(2026, 1, 31, 12, 0) + dateutil.relativedelta.relativedelta(months=data["months"])
    local = timezone("UTC").localize(due).astimezone(timezone("Europe/Brussels"))
    result = {"exit_code": 0, "message": "%s %s" % (due.date().isoformat(), local.strftime("%H:%M %Z"))}
"#;

async fn app_with_secrets() -> (TestApp, tempfile::TempDir) {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("secrets.yaml");
    std::fs::write(
        &file,
        "github_secret: gh-hook-secret\nci_token: \"tok'en\\\"with\\\\quotes\"\n",
    )
    .unwrap();
    let app = spawn_app_with(GITHUB, |s| s.secrets_file = Some(file)).await;
    (app, secrets)
}

#[tokio::test]
async fn github_style_hmac_of_the_raw_body() {
    let (app, _secrets) = app_with_secrets().await;
    let body = r#"{"ref": "refs/heads/main"}"#;
    let client = reqwest::Client::new();
    let response = client
        .post(app.url("github/push"))
        .header(
            "X-Hub-Signature-256",
            github_signature("gh-hook-secret", body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    assert_eq!((status, message), (200, json!("push to refs/heads/main")));

    let response = client
        .post(app.url("github/push"))
        .header("X-Hub-Signature-256", github_signature("wrong", body))
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    assert_eq!((status, message), (401, json!("bad signature")));
}

#[tokio::test]
async fn secrets_are_compared_and_never_shown() {
    let (app, _secrets) = app_with_secrets().await;
    let token = "tok'en\"with\\quotes";
    let client = reqwest::Client::new();
    let call = |body: &'static str, token: &'static str| {
        client
            .post(app.url("leaky"))
            .header("X-Token", token)
            .body(body)
            .send()
    };
    let (status, text, _) = answer(
        call("{\"echo\": \"tok'en\\\"with\\\\quotes\"}", token)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(text, r#"{"message": "the token is *****"}"#);
    let log = app.last_log();
    assert_eq!(log.result_message.as_deref(), Some("the token is *****"));
    // The caller's copy of the secret is masked in the stored headers and payload too.
    assert_eq!(log.request_headers["X-Token"], json!("*****"));
    assert_eq!(log.request_payload, Some(json!({"echo": "*****"})));

    let (status, text, _) = answer(call("{\"raise\": true}", token).await.unwrap()).await;
    assert_eq!(status, 500);
    assert!(!text.contains("quotes"), "{text}");
    assert!(text.contains("*****"), "{text}");
    assert!(!app.last_log().error_message.unwrap().contains("quotes"));

    let (status, _, _) = answer(call("{}", "guess").await.unwrap()).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn json_dates_and_time_zones() {
    let (app, _secrets) = app_with_secrets().await;
    let response = reqwest::Client::new()
        .post(app.url("dates"))
        .header("X-Token", "tok'en\"with\\quotes")
        .body(r#"{"doc": "{\"months\": 1}"}"#)
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    assert_eq!((status, message), (200, json!("2026-02-28 13:00 CET")));
}

#[tokio::test]
async fn a_snippet_past_its_time_limit_is_interrupted_and_the_thread_reused() {
    let yaml = webhooks(&[
        ("spin", "while True:\n    pass"),
        (
            "stubborn",
            "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass",
        ),
        ("quick", "result = {'exit_code': 0, 'message': 'quick'}"),
    ]);
    // Two threads: one spins, the other serves; afterwards each is reused.
    let app = spawn_app_with(&yaml, |s| {
        s.snippet_timeout_secs = 1.0;
        s.python_threads = 2;
    })
    .await;
    for endpoint in ["spin", "stubborn"] {
        let url = app.url(endpoint);
        let started = Instant::now();
        let spinning = tokio::spawn(async move { reqwest::Client::new().post(url).send().await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let quick_started = Instant::now();
        assert_eq!(post(&app, "quick", "{}").await, (200, "quick".to_string()));
        let quick = quick_started.elapsed();
        assert!(
            quick < Duration::from_millis(500),
            "a trivial call took {quick:?}"
        );

        let (status, _, message) = answer(spinning.await.unwrap().unwrap()).await;
        let took = started.elapsed();
        assert_eq!(status, 500, "{endpoint}");
        assert_eq!(
            message,
            json!("Webhook code execution error: execution timed out after 1 s"),
            "{endpoint}"
        );
        assert!(took < Duration::from_secs(3), "{endpoint} took {took:?}");
        assert_eq!(app.last_log().code_status, "failed");
    }
    // Both threads were interrupted and still serve.
    for _ in 0..4 {
        assert_eq!(post(&app, "quick", "{}").await, (200, "quick".to_string()));
    }
}

#[tokio::test]
async fn recursion_and_message_size_are_limited() {
    let yaml = webhooks(&[
        ("deep", "def f(n):\n    return f(n + 1)\nf(0)"),
        ("long", "result = {'exit_code': 0, 'message': 'x' * 5000}"),
    ]);
    let app = spawn_app_with(&yaml, |s| {
        s.max_message_chars = 100;
        s.python_recursion_limit = 200;
    })
    .await;
    let (status, message) = post(&app, "deep", "{}").await;
    assert_eq!(status, 500);
    assert!(message.contains("RecursionError"), "{message}");
    let (status, message) = post(&app, "long", "{}").await;
    assert_eq!(status, 200);
    assert!(message.chars().count() <= 120, "{} chars", message.len());
    assert!(message.starts_with("xxxx"));
}

/// An HTTP server answering every request after `delay`, each on its own thread.
fn slow_server(delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer);
                std::thread::sleep(delay);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow",
                );
            });
        }
    });
    port
}

#[tokio::test]
async fn snippets_waiting_on_io_do_not_wait_for_each_other() {
    let port = slow_server(Duration::from_secs(1));
    let code = format!(
        "r = requests.get('http://127.0.0.1:{port}/', timeout=10)\nresult = {{'exit_code': 0, 'message': r.text}}"
    );
    let app = spawn_app_with(&webhooks(&[("io", &code)]), |s| s.python_threads = 4).await;
    let started = Instant::now();
    let calls = (0..4).map(|_| post(&app, "io", "{}"));
    for answer in futures_util::future::join_all(calls).await {
        assert_eq!(answer, (200, "slow".to_string()));
    }
    let took = started.elapsed();
    // Serialised they would take 4 s.
    assert!(
        took < Duration::from_millis(2500),
        "4 slow calls took {took:?}"
    );
}

#[tokio::test]
async fn check_lists_snippets_the_sandbox_refuses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hooks.yaml"),
        webhooks(&[
            ("imports", "import os\nresult = {'exit_code': 0}"),
            ("fine", "result = {'exit_code': 0}"),
            ("broken", "result = {"),
        ]),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_towerhook"))
        .arg("check")
        .env("TOWERHOOK_YAML_DIR", dir.path())
        .env("TOWERHOOK_DATA_DIR", data.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains("2 problem(s)"), "{stdout}");
    assert!(
        stdout.contains("webhook \"imports\": its code cannot run: forbidden opcode(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("IMPORT_NAME"), "{stdout}");
    assert!(
        stdout.contains("webhook \"broken\": its code cannot run"),
        "{stdout}"
    );
    // The interpreter is the one towerhook was built against, not Debian's.
    assert!(
        stdout.contains(&format!(
            "python: {}.",
            towerhook::snippets::python::BUILT_FOR
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("(/usr)"), "{stdout}");
}

/// The embedded interpreter sees the packages of python_packages_dir and nothing else from
/// the machine (whose own site-packages has requests and dateutil too).
#[tokio::test]
async fn libraries_come_only_from_the_configured_package_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hooks.yaml"),
        webhooks(&[(
            "uses_dateutil",
            "d = dateutil.parser.parse('2026-03-01')\nresult = {'exit_code': 0, 'message': d.isoformat()}",
        )]),
    )
    .unwrap();
    let yaml_dir = dir.path().to_str().unwrap();
    let installed = BinaryServer::start(&[("TOWERHOOK_YAML_DIR", yaml_dir)]);
    let empty = tempfile::tempdir().unwrap();
    let missing = BinaryServer::start(&[
        ("TOWERHOOK_YAML_DIR", yaml_dir),
        (
            "TOWERHOOK_PYTHON_PACKAGES_DIR",
            empty.path().to_str().unwrap(),
        ),
    ]);
    let client = reqwest::Client::new();
    let response = client
        .post(installed.url("uses_dateutil"))
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    assert_eq!((status, message), (200, json!("2026-03-01T00:00:00")));

    let response = client
        .post(missing.url("uses_dateutil"))
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    assert_eq!(status, 500);
    let message = message.as_str().unwrap();
    assert!(
        message.contains("python-dateutil") && message.contains("not installed"),
        "{message}"
    );
}
