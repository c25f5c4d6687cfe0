//! Running it as a product: metrics, request ids and structured logs, graceful shutdown,
//! load shedding, and `towerhook run`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::odoo::{TestOdoo, spawn_app_shipping_to};
use common::{BinaryServer, TestApp, answer, metrics, spawn_app, spawn_app_with};
use futures_util::StreamExt;
use serde_json::{Value, json};

const DEFINITIONS: &str = r#"
- {cetmix_tower_model: webhook_authenticator, reference: open, name: Open, code: "result = {'allowed': True}"}
- {cetmix_tower_model: webhook_authenticator, reference: closed, name: Closed, code: "result = {'allowed': False}"}
- {cetmix_tower_model: webhook, reference: ok, name: OK, authenticator_id: open, endpoint: ok,
   code: "result = {'exit_code': 0, 'message': 'fine'}"}
- {cetmix_tower_model: webhook, reference: broken, name: Broken, authenticator_id: open, endpoint: broken,
   code: "result = {'exit_code': 2, 'message': 'no'}"}
- {cetmix_tower_model: webhook, reference: denied, name: Denied, authenticator_id: closed, endpoint: denied,
   code: "result = {'exit_code': 0}"}
- {cetmix_tower_model: webhook, reference: slow, name: Slow, authenticator_id: open, endpoint: slow,
   code: "time.sleep(1)\nresult = {'exit_code': 0, 'message': 'slept %s' % payload.get('n')}"}
"#;

async fn post(app: &TestApp, endpoint: &str) -> u16 {
    reqwest::Client::new()
        .post(app.url(endpoint))
        .body("{}")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn metrics_reflect_a_known_sequence_of_calls() {
    let app = spawn_app(DEFINITIONS).await;
    for (endpoint, times, status) in [
        ("ok", 3, 200),
        ("broken", 1, 500),
        ("denied", 2, 403),
        ("nowhere", 4, 404),
    ] {
        for _ in 0..times {
            assert_eq!(post(&app, endpoint).await, status, "{endpoint}");
        }
    }
    let m = metrics(&app.base()).await;
    let value = |series: &str| {
        m.get(series)
            .copied()
            .unwrap_or_else(|| panic!("no {series} in {m:?}"))
    };
    assert_eq!(
        value(r#"towerhook_calls_total{endpoint="ok",status="200"}"#),
        3.0
    );
    assert_eq!(
        value(r#"towerhook_calls_total{endpoint="broken",status="500"}"#),
        1.0
    );
    assert_eq!(
        value(r#"towerhook_calls_total{endpoint="denied",status="403"}"#),
        2.0
    );
    // Unknown paths share one label, so probing cannot grow the series without bound.
    assert_eq!(
        value(r#"towerhook_calls_total{endpoint="(unmatched)",status="404"}"#),
        4.0
    );
    assert_eq!(
        value(r#"towerhook_authentication_total{outcome="success"}"#),
        4.0
    );
    assert_eq!(
        value(r#"towerhook_authentication_total{outcome="failed"}"#),
        6.0
    );
    assert_eq!(value(r#"towerhook_code_total{outcome="success"}"#), 3.0);
    assert_eq!(value(r#"towerhook_code_total{outcome="failed"}"#), 1.0);
    assert_eq!(value(r#"towerhook_code_total{outcome="skipped"}"#), 6.0);
    // Snippets ran for the 6 calls that reached an authenticator.
    assert_eq!(value("towerhook_snippet_seconds_count"), 6.0);
    assert_eq!(value("towerhook_python_queue_depth"), 0.0);
    assert_eq!(value("towerhook_outbox_records"), 0.0);
}

#[tokio::test]
async fn odoo_metrics_count_refreshes_rpc_and_the_outbox() {
    let odoo = TestOdoo::start().await;
    let Some(emulator) = odoo.emulator_only("takes Odoo down") else {
        return;
    };
    odoo.grant_log_create().await;
    odoo.open_webhook("hook", "pass", 1).await;
    let app = spawn_app_shipping_to(&odoo, |_| {}).await;
    emulator.down().await;
    for _ in 0..3 {
        assert_eq!(post(&app, &odoo.name("hook")).await, 200);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let m = metrics(&app.base()).await;
    assert_eq!(m["towerhook_outbox_records"], 3.0);
    assert!(m["towerhook_outbox_oldest_age_seconds"] >= 1.0, "{m:?}");
    assert!(m[r#"towerhook_definition_refreshes_total{result="ok"}"#] >= 1.0);
    assert!(m[r#"towerhook_definition_refreshes_total{result="failed"}"#] >= 1.0);
    assert!(m[r#"towerhook_odoo_rpc_seconds_count{method="search_read"}"#] >= 1.0);
    assert!(
        m.keys()
            .any(|k| k.starts_with("towerhook_odoo_rpc_errors_total") && k.contains("Unreachable")),
        "{m:?}"
    );
    emulator.up().await;
    assert_eq!(
        odoo.wait_for_logs(3, Duration::from_secs(10)).await.len(),
        3
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m = metrics(&app.base()).await;
    assert_eq!(m["towerhook_outbox_records"], 0.0);
    assert_eq!(m["towerhook_shipped_records"], 3.0);
    assert_eq!(m["towerhook_dead_letters"], 0.0);
}

#[tokio::test]
async fn every_call_has_a_request_id_in_its_answer_and_its_log() {
    let app = spawn_app(DEFINITIONS).await;
    let mut seen = Vec::new();
    for endpoint in ["ok", "nowhere"] {
        let response = reqwest::Client::new()
            .post(app.url(endpoint))
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(id.len(), 32);
        let log = app.last_log();
        assert_eq!(log.request_headers["X-Towerhook-Request-Id"], json!(id));
        seen.push(id);
    }
    assert_ne!(seen[0], seen[1]);
}

fn yaml_dir(yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hooks.yaml"), yaml).unwrap();
    dir
}

#[tokio::test]
async fn json_logs_carry_each_calls_fields() {
    let dir = yaml_dir(DEFINITIONS);
    let server = BinaryServer::start(&[
        ("TOWERHOOK_YAML_DIR", dir.path().to_str().unwrap()),
        ("TOWERHOOK_LOG_FORMAT", "json"),
    ]);
    let response = reqwest::Client::new()
        .post(server.url("ok"))
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let line = loop {
        let found = server
            .log
            .lock()
            .unwrap()
            .iter()
            .find(|line| line.contains(&id))
            .cloned();
        if let Some(line) = found {
            break line;
        }
        assert!(std::time::Instant::now() < deadline, "no log line for {id}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let entry: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["request_id"], json!(id));
    assert_eq!(entry["target"], json!("towerhook::access"));
    assert_eq!(entry["status"], json!(200));
    assert_eq!(entry["endpoint"], json!("ok"));
    assert_eq!(entry["method"], json!("post"));
    assert!(entry["duration_ms"].as_f64().is_some());
}

#[tokio::test]
async fn sigterm_during_200_slow_calls_loses_none_and_exits_0() {
    let dir = yaml_dir(DEFINITIONS);
    let data = tempfile::tempdir().unwrap();
    let mut server = BinaryServer::start_in(
        data.path(),
        &[
            ("TOWERHOOK_YAML_DIR", dir.path().to_str().unwrap()),
            ("TOWERHOOK_PYTHON_THREADS", "50"),
        ],
    );
    let url = server.url("slow");
    let calls = tokio::spawn(async move {
        let client = reqwest::Client::new();
        futures_util::stream::iter(0..200)
            .map(|n| {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    let response = client
                        .post(&url)
                        .body(json!({"n": n}).to_string())
                        .send()
                        .await?;
                    let status = response.status().as_u16();
                    let body: Value = response.json().await?;
                    Ok::<_, reqwest::Error>((status, body["message"].clone()))
                }
            })
            .buffer_unordered(200)
            .collect::<Vec<_>>()
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    let answers = calls.await.unwrap();
    let answered: Vec<_> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
    assert_eq!(
        answered.len(),
        200,
        "{:?}",
        answers.iter().filter(|a| a.is_err()).collect::<Vec<_>>()
    );
    assert!(answered.iter().all(|(status, _)| *status == 200));
    let logs = common::read_logs(&data.path().join("towerhook.sqlite3"));
    assert_eq!(logs.len(), 200);
    assert!(logs.iter().all(|log| log.http_status == 200));
}

#[tokio::test]
async fn a_full_snippet_queue_sheds_with_503_and_logs_it() {
    // One worker that cannot grow, one call allowed to wait for it.
    let app = spawn_app_with(DEFINITIONS, |s| {
        s.python_workers = 1;
        s.python_workers_max = 1;
        s.python_threads = 1;
        s.python_queue = 1;
    })
    .await;
    let client = reqwest::Client::new();
    let send = |n: usize| {
        let (client, url) = (client.clone(), app.url("slow"));
        async move {
            let response = client
                .post(url)
                .body(json!({"n": n}).to_string())
                .send()
                .await
                .unwrap();
            let retry = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (response.status().as_u16(), retry)
        }
    };
    // The first call holds the worker (1 s); the worker takes no call behind one that
    // has run a while, so of the next five one waits and four are shed.
    let first = tokio::spawn(send(0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut answers: Vec<(u16, Option<String>)> = futures_util::stream::iter(1..6)
        .map(send)
        .buffer_unordered(5)
        .collect()
        .await;
    answers.push(first.await.unwrap());
    let shed: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == 503)
        .collect();
    assert_eq!(shed.len(), 4, "{answers:?}");
    assert!(shed.iter().all(|(_, retry)| retry.as_deref() == Some("1")));
    assert_eq!(
        answers.iter().filter(|(status, _)| *status == 200).count(),
        2,
        "{answers:?}"
    );
    let logs = app.logs();
    assert_eq!(logs.len(), 6);
    let logged_shed = logs.iter().filter(|log| log.http_status == 503).count();
    assert_eq!(logged_shed, shed.len());
    assert!(
        logs.iter()
            .filter(|log| log.http_status == 503)
            .all(|log| log.error_message.as_deref() == Some("Service overloaded, retry later"))
    );
}

#[tokio::test]
async fn run_prints_what_the_server_would_answer() {
    let dir = yaml_dir(DEFINITIONS);
    let data = tempfile::tempdir().unwrap();
    let app = spawn_app_with(DEFINITIONS, |_| {}).await;
    for (endpoint, expected_exit) in [("ok", true), ("broken", false), ("nowhere", false)] {
        let output = Command::new(env!("CARGO_BIN_EXE_towerhook"))
            .args(["run", endpoint])
            .env("TOWERHOOK_YAML_DIR", dir.path())
            .env("TOWERHOOK_DATA_DIR", data.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.success(), expected_exit, "{stdout}");
        let served = reqwest::Client::new()
            .post(app.url(endpoint))
            .send()
            .await
            .unwrap();
        let (status, body, _) = answer(served).await;
        let mut lines = stdout.lines();
        assert_eq!(
            lines.next(),
            Some(format!("HTTP {status}").as_str()),
            "{stdout}"
        );
        assert_eq!(lines.next(), Some(body.as_str()), "{stdout}");
        let record: Value =
            serde_json::from_str(stdout.split_once("log record:\n").unwrap().1).unwrap();
        let stored = app.last_log();
        assert_eq!(record["http_status"], json!(stored.http_status));
        assert_eq!(record["code_status"], json!(stored.code_status));
        assert_eq!(record["result_message"], json!(stored.result_message));
    }
    // Nothing was stored in the configured data directory.
    assert!(!data.path().join("towerhook.sqlite3").exists());
}

#[tokio::test]
async fn run_takes_method_payload_headers_and_query() {
    let dir = yaml_dir(
        r#"
- {cetmix_tower_model: webhook_authenticator, reference: token, name: Token,
   code: "result = {'allowed': headers.get('X-Token') == 'abc'}"}
- {cetmix_tower_model: webhook, reference: echo, name: Echo, authenticator_id: token, endpoint: echo,
   code: "result = {'exit_code': 0, 'message': '%s' % payload}"}
- {cetmix_tower_model: webhook, reference: query, name: Query, authenticator_id: token, endpoint: query,
   method: get, code: "result = {'exit_code': 0, 'message': payload.get('q')}"}
"#,
    );
    let payload = dir.path().join("payload.json");
    std::fs::write(&payload, r#"{"a": 1}"#).unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_towerhook"))
            .arg("run")
            .args(args)
            .env("TOWERHOOK_YAML_DIR", dir.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let out = run(&[
        "echo",
        "--payload",
        payload.to_str().unwrap(),
        "--header",
        "X-Token: abc",
    ]);
    assert!(
        out.starts_with("HTTP 200\n{\"message\": \"{'a': 1}\"}"),
        "{out}"
    );
    let out = run(&["echo", "--payload", payload.to_str().unwrap()]);
    assert!(out.starts_with("HTTP 403"), "{out}");
    let out = run(&[
        "query",
        "--method",
        "get",
        "--query",
        "q=hi",
        "--header",
        "X-Token: abc",
    ]);
    assert!(out.starts_with("HTTP 200\n{\"message\": \"hi\"}"), "{out}");
}
