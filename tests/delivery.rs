//! Delivery guarantees per webhook (towerhook extensions, src/delivery): the duplicate
//! guard, the limits, and accept-now-run-later, through real sockets, the real SQLite
//! store, real worker processes and real signals. Whether webhook code ran is seen from
//! outside: the code calls a small HTTP recorder in the test.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::recorder::Recorder;
use common::{BinaryServer, TestApp, answer, metrics, read_logs, spawn_app_with};
use serde_json::Value;

/// An allow-all authenticator `open`, one that wants `X-Token: good` (`token`), and the
/// webhooks: (endpoint, authenticator, extra YAML keys, code).
fn definitions(hooks: &[(&str, &str, &str, &str)]) -> String {
    let mut yaml = String::from(
        "- {cetmix_tower_model: webhook_authenticator, reference: open, name: Open, \
         code: 'result = {\"allowed\": True}'}\n\
         - {cetmix_tower_model: webhook_authenticator, reference: token, name: Token, \
         code: 'result = {\"allowed\": headers.get(\"X-Token\") == \"good\"}'}\n",
    );
    for (endpoint, authenticator, extra, code) in hooks {
        let reference = endpoint.replace('-', "_");
        yaml.push_str(&format!(
            "- cetmix_tower_model: webhook\n  reference: {reference}\n  name: {reference}\n  \
             authenticator_id: {authenticator}\n  endpoint: {endpoint}\n"
        ));
        for line in extra.lines().filter(|l| !l.trim().is_empty()) {
            yaml.push_str(&format!("  {}\n", line.trim()));
        }
        yaml.push_str("  code: |\n");
        for line in code.lines() {
            yaml.push_str(&format!("    {line}\n"));
        }
    }
    yaml
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Option<String>, Value) {
    let mut request = client.post(url).body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let (status, _, message) = answer(response).await;
    (status, retry_after, message)
}

async fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    done()
}

#[tokio::test]
async fn a_repeat_inside_the_window_is_not_run_and_one_after_it_is() {
    let recorder = Recorder::start();
    let code = format!(
        "{}\nresult = {{'exit_code': 0, 'message': 'ran'}}",
        recorder.call("headers.get('X-Github-Delivery')")
    );
    let yaml = definitions(&[(
        "github",
        "open",
        "dedup_key: header:X-GitHub-Delivery\ndedup_window_secs: 2",
        &code,
    )]);
    let app = spawn_app_with(&yaml, |_| {}).await;
    let client = reqwest::Client::new();
    let url = app.url("github");
    let send = |id: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move { post(&client, &url, &[("X-GitHub-Delivery", id)], "{}").await }
    };

    assert_eq!(send("d-1").await, (200, None, "ran".into()));
    let started = Instant::now();
    let repeat = send("d-1").await;
    assert_eq!(repeat, (200, None, "Duplicate delivery ignored".into()));
    assert_eq!(send("d-2").await.2, "ran");
    assert_eq!(recorder.hits(), ["d-1", "d-2"], "the repeat ran the code");
    let logs = app.logs();
    let duplicate = &logs[1];
    assert_eq!(
        (
            duplicate.http_status,
            duplicate.authentication_status.as_str(),
            duplicate.code_status.as_str(),
            duplicate.result_message.as_deref(),
        ),
        (
            200,
            "success",
            "skipped",
            Some("Duplicate delivery ignored")
        )
    );
    let counted = metrics(&app.base()).await;
    assert_eq!(
        counted["towerhook_duplicates_total{endpoint=\"github\"}"],
        1.0
    );

    // The window (2 s) over: the same id is a new delivery.
    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(started.elapsed())).await;
    assert_eq!(send("d-1").await.2, "ran");
    assert_eq!(recorder.hits(), ["d-1", "d-2", "d-1"]);
    // A call without the id is not guarded.
    assert_eq!(post(&client, &url, &[], "{}").await.2, "ran");
    assert_eq!(post(&client, &url, &[], "{}").await.2, "ran");
}

#[tokio::test]
async fn a_forged_or_failed_call_does_not_burn_its_delivery_id() {
    let recorder = Recorder::start();
    let code = format!(
        "{}\nif payload.get('fail'):\n    result = {{'exit_code': 1, 'message': 'failed'}}\n\
         else:\n    result = {{'exit_code': 0, 'message': 'ran'}}",
        recorder.call("payload.get('id')")
    );
    let yaml = definitions(&[("stripe", "token", "dedup_key: json:id", &code)]);
    let app = spawn_app_with(&yaml, |_| {}).await;
    let client = reqwest::Client::new();
    let url = app.url("stripe");
    let good = [("X-Token", "good")];
    let forged = [("X-Token", "bad")];

    // A forged call with a real id is refused and leaves the id free.
    assert_eq!(
        post(&client, &url, &forged, r#"{"id": "evt_1"}"#).await.0,
        403
    );
    assert_eq!(
        post(&client, &url, &good, r#"{"id": "evt_1"}"#).await.2,
        "ran"
    );
    // A forged repeat learns nothing: 403, not "duplicate".
    assert_eq!(
        post(&client, &url, &forged, r#"{"id": "evt_1"}"#).await.0,
        403
    );
    assert_eq!(
        post(&client, &url, &good, r#"{"id": "evt_1"}"#).await.2,
        "Duplicate delivery ignored"
    );
    // A call whose code failed is run again when the sender retries.
    let failing = r#"{"id": "evt_2", "fail": true}"#;
    assert_eq!(post(&client, &url, &good, failing).await.0, 500);
    assert_eq!(post(&client, &url, &good, failing).await.0, 500);
    assert_eq!(recorder.hits(), ["evt_1", "evt_2", "evt_2"]);
}

#[tokio::test]
async fn concurrent_repeats_run_the_code_once() {
    let recorder = Recorder::start();
    let code = format!(
        "time.sleep(0.5)\n{}\nresult = {{'exit_code': 0, 'message': 'ran'}}",
        recorder.call("headers.get('Webhook-Id')")
    );
    let yaml = definitions(&[("standard", "open", "dedup_key: header:webhook-id", &code)]);
    let app = spawn_app_with(&yaml, |_| {}).await;
    let client = reqwest::Client::new();
    let url = app.url("standard");
    // The first runs for 0.5 s; the repeats arriving meanwhile wait for its decision.
    let calls = (0..4).map(|_| post(&client, &url, &[("webhook-id", "msg_1")], "{}"));
    let mut messages: Vec<String> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|(status, _, message)| {
            assert_eq!(status, 200);
            message.as_str().unwrap().to_string()
        })
        .collect();
    messages.sort();
    assert_eq!(
        messages,
        [
            "Duplicate delivery ignored",
            "Duplicate delivery ignored",
            "Duplicate delivery ignored",
            "ran"
        ]
    );
    assert_eq!(recorder.hits(), ["msg_1"]);
}

fn write_definitions(dir: &Path, yaml: &str) {
    std::fs::write(dir.join("definitions.yaml"), yaml).unwrap();
}

#[tokio::test]
async fn seen_ids_survive_a_sigkill_and_a_restart() {
    let recorder = Recorder::start();
    let code = format!(
        "{}\nresult = {{'exit_code': 0, 'message': 'ran'}}",
        recorder.call("headers.get('X-Github-Delivery')")
    );
    let definitions_dir = tempfile::tempdir().unwrap();
    write_definitions(
        definitions_dir.path(),
        &definitions(&[(
            "github",
            "open",
            "dedup_key: header:X-GitHub-Delivery",
            &code,
        )]),
    );
    let data = tempfile::tempdir().unwrap();
    let yaml_dir = definitions_dir.path().to_str().unwrap().to_string();
    let env = [
        ("TOWERHOOK_YAML_DIR", yaml_dir.as_str()),
        ("TOWERHOOK_PYTHON_WORKERS", "1"),
    ];
    common::init();
    let client = reqwest::Client::new();
    let server = BinaryServer::start_in(data.path(), &env);
    let delivery = [("X-GitHub-Delivery", "d-1")];
    assert_eq!(
        post(&client, &server.url("github"), &delivery, "{}")
            .await
            .2,
        "ran"
    );
    // Killed at once after the answer: nothing flushed on the way out.
    server.kill();
    let server = BinaryServer::start_in(data.path(), &env);
    assert_eq!(
        post(&client, &server.url("github"), &delivery, "{}")
            .await
            .2,
        "Duplicate delivery ignored"
    );
    assert_eq!(
        post(
            &client,
            &server.url("github"),
            &[("X-GitHub-Delivery", "d-2")],
            "{}"
        )
        .await
        .2,
        "ran"
    );
    assert_eq!(recorder.hits(), ["d-1", "d-2"]);
}

#[tokio::test]
async fn a_client_address_over_its_rate_gets_429_with_retry_after_and_a_log() {
    let yaml = definitions(&[(
        "limited",
        "open",
        "rate_per_minute: 3",
        "result = {'exit_code': 0, 'message': 'ok'}",
    )]);
    let app = spawn_app_with(&yaml, |_| {}).await;
    let url = app.url("limited");
    let first: IpAddr = "127.0.0.1".parse().unwrap();
    let second: IpAddr = "127.0.0.2".parse().unwrap();
    let from_first = app.client_from(first);
    for _ in 0..3 {
        assert_eq!(post(&from_first, &url, &[], "{}").await.0, 200);
    }
    let (status, retry_after, message) = post(&from_first, &url, &[], "{}").await;
    assert_eq!(status, 429);
    // 3 a minute: the next one in 20 s.
    assert_eq!(retry_after.as_deref(), Some("20"));
    assert_eq!(
        message,
        "Too many calls from this address (rate_per_minute = 3), retry later"
    );
    // Another address has its own rate.
    assert_eq!(post(&app.client_from(second), &url, &[], "{}").await.0, 200);
    let refused = &app.logs()[3];
    assert_eq!(
        (
            refused.http_status,
            refused.code_status.as_str(),
            refused.error_message.as_deref(),
            refused.ip_address.as_deref()
        ),
        (
            429,
            "skipped",
            Some("Too many calls from this address (rate_per_minute = 3), retry later"),
            Some("127.0.0.1")
        )
    );
    let counted = metrics(&app.base()).await;
    assert_eq!(
        counted["towerhook_limit_refusals_total{kind=\"rate\"}"],
        1.0
    );
}

#[tokio::test]
async fn calls_beyond_max_concurrent_calls_get_503_with_retry_after_and_a_log() {
    let yaml = definitions(&[(
        "single",
        "open",
        "max_concurrent_calls: 1",
        "time.sleep(1)\nresult = {'exit_code': 0, 'message': 'done'}",
    )]);
    let app = spawn_app_with(&yaml, |_| {}).await;
    let client = reqwest::Client::new();
    let url = app.url("single");
    let running = {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move { post(&client, &url, &[], "{}").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, retry_after, message) = post(&client, &url, &[], "{}").await;
    assert_eq!((status, retry_after.as_deref()), (503, Some("1")));
    assert_eq!(
        message,
        "Too many calls to this webhook at once (max_concurrent_calls = 1), retry later"
    );
    assert_eq!(running.await.unwrap().2, "done");
    // Its place is free again.
    assert_eq!(post(&client, &url, &[], "{}").await.2, "done");
    let statuses: Vec<i64> = app.logs().iter().map(|log| log.http_status).collect();
    assert_eq!(statuses, [503, 200, 200]);
    let counted = metrics(&app.base()).await;
    assert_eq!(
        counted["towerhook_limit_refusals_total{kind=\"concurrency\"}"],
        1.0
    );
}

#[tokio::test]
async fn a_webhooks_own_body_limit_replaces_the_servers() {
    let yaml = definitions(&[
        (
            "small",
            "open",
            "max_body_bytes: 64",
            "result = {'exit_code': 0, 'message': 'small ok'}",
        ),
        (
            "large",
            "open",
            "max_body_bytes: 4096",
            "result = {'exit_code': 0, 'message': 'large ok'}",
        ),
        (
            "plain",
            "open",
            "",
            "result = {'exit_code': 0, 'message': 'plain ok'}",
        ),
    ]);
    let app = spawn_app_with(&yaml, |settings| settings.max_body_bytes = 1000).await;
    let client = reqwest::Client::new();
    let body = format!("{{\"pad\": \"{}\"}}", "x".repeat(200));
    let (status, _, message) = post(&client, &app.url("small"), &[], &body).await;
    assert_eq!(
        (status, message),
        (413, "Request body too large (limit 64 bytes)".into())
    );
    assert_eq!(post(&client, &app.url("plain"), &[], &body).await.0, 200);
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(2000));
    assert_eq!(post(&client, &app.url("plain"), &[], &big).await.0, 413);
    assert_eq!(
        post(&client, &app.url("large"), &[], &big).await,
        (200, None, "large ok".into())
    );
    let logs = app.logs();
    assert_eq!(
        (
            logs[0].endpoint.as_str(),
            logs[0].http_status,
            logs[0].error_message.as_deref()
        ),
        (
            "small",
            413,
            Some("Request body too large (limit 64 bytes)")
        )
    );
    let counted = metrics(&app.base()).await;
    assert_eq!(
        counted["towerhook_limit_refusals_total{kind=\"body\"}"],
        2.0
    );
}

#[tokio::test]
async fn an_async_webhook_whose_code_sleeps_5_s_is_answered_202_at_once_and_logged_after() {
    let recorder = Recorder::start();
    let code = format!(
        "time.sleep(5)\n{}\nresult = {{'exit_code': 0, 'message': 'slept %s' % payload['n']}}",
        recorder.call("payload['n']")
    );
    let yaml = definitions(&[
        ("slow", "token", "mode: async", &code),
        (
            "custom",
            "open",
            "mode: async\nasync_status: 200\nasync_message: queued for later",
            "result = {'exit_code': 0}",
        ),
    ]);
    // An fsync on this kind of machine's disk now and then takes longer than the 50 ms
    // bound: what is measured here is the queue, not the disk.
    let app = spawn_app_with(&yaml, |settings| {
        settings.log_store_sync = towerhook::configuration::SyncMode::Normal;
    })
    .await;
    let client = reqwest::Client::new();
    let url = app.url("slow");
    let good = [("X-Token", "good")];
    let mut took = Vec::new();
    for n in 1..=3 {
        let started = Instant::now();
        let answer = post(&client, &url, &good, &format!("{{\"n\": {n}}}")).await;
        took.push(started.elapsed());
        assert_eq!(answer, (202, None, "Accepted".into()));
    }
    for elapsed in &took {
        assert!(
            *elapsed < Duration::from_millis(50),
            "202 answers took {took:?}"
        );
    }
    // The authenticator ran at once: a forged call is refused at once, and logged.
    let started = Instant::now();
    assert_eq!(
        post(&client, &url, &[("X-Token", "bad")], "{\"n\": 9}")
            .await
            .0,
        403
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(
        post(&client, &app.url("custom"), &[], "{}").await,
        (200, None, "queued for later".into())
    );
    // Nothing logged for the queued calls until their code has run.
    let logs = app.logs();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].http_status, 403);
    let ready: Value = reqwest::get(format!("{}/readyz", app.base()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ready["queue"]["depth"].as_u64().unwrap() >= 3, "{ready}");

    // One at a time, in arrival order: 5 s each.
    let hits = recorder.wait_for(3, Duration::from_secs(25)).await;
    assert_eq!(hits, ["1", "2", "3"]);
    assert!(
        wait_until(Duration::from_secs(5), || app.logs().len() == 5).await,
        "{:?}",
        app.logs()
    );
    let slow: Vec<_> = app
        .logs()
        .into_iter()
        .filter(|log| log.endpoint == "slow" && log.http_status == 202)
        .collect();
    let messages: Vec<_> = slow
        .iter()
        .map(|log| log.result_message.clone().unwrap())
        .collect();
    assert_eq!(messages, ["slept 1", "slept 2", "slept 3"]);
    for log in &slow {
        assert_eq!(
            (log.authentication_status.as_str(), log.code_status.as_str()),
            ("success", "success")
        );
        assert_eq!(log.request_headers["X-Towerhook-Attempts"], "1");
    }
    let counted = metrics(&app.base()).await;
    assert_eq!(counted["towerhook_queue_depth"], 0.0);
    assert_eq!(counted["towerhook_queue_runs_total{result=\"done\"}"], 4.0);
}

#[tokio::test]
async fn queued_calls_survive_sigkill_and_run_after_the_restart_in_arrival_order() {
    let recorder = Recorder::start();
    let code = format!(
        "{}\ntime.sleep(1)\nresult = {{'exit_code': 0, 'message': 'ran %s' % payload['n']}}",
        recorder.call("payload['n']")
    );
    let definitions_dir = tempfile::tempdir().unwrap();
    write_definitions(
        definitions_dir.path(),
        &definitions(&[("later", "open", "mode: async", &code)]),
    );
    let data = tempfile::tempdir().unwrap();
    let yaml_dir = definitions_dir.path().to_str().unwrap().to_string();
    let env = [
        ("TOWERHOOK_YAML_DIR", yaml_dir.as_str()),
        ("TOWERHOOK_PYTHON_WORKERS", "1"),
    ];
    common::init();
    let client = reqwest::Client::new();
    let server = BinaryServer::start_in(data.path(), &env);
    for n in 1..=5 {
        let answer = post(
            &client,
            &server.url("later"),
            &[],
            &format!("{{\"n\": {n}}}"),
        )
        .await;
        assert_eq!(answer.0, 202);
    }
    // The first has run (1 s), the second is running: SIGKILL.
    recorder.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    let before = recorder.hits();
    let ended_before = read_logs(&data.path().join("towerhook.sqlite3"))
        .into_iter()
        .filter(|log| log.code_status == "success")
        .count();
    eprintln!("at the kill: the code had started for {before:?}, {ended_before} call(s) ended");
    assert!(ended_before < 5, "nothing was left queued at the kill");

    let server = BinaryServer::start_in(data.path(), &env);
    let logs = || read_logs(&data.path().join("towerhook.sqlite3"));
    assert!(
        wait_until(Duration::from_secs(20), || logs().len() == 5).await,
        "{:?}",
        logs()
    );
    // Every call ran, once or (the one cut by the kill) twice, in arrival order.
    let hits = recorder.hits();
    let mut distinct = hits.clone();
    distinct.dedup();
    assert_eq!(distinct, ["1", "2", "3", "4", "5"], "runs: {hits:?}");
    eprintln!("runs seen by the recorder: {hits:?}");
    // One log per call, each once its code had run.
    let messages: Vec<_> = logs()
        .into_iter()
        .map(|log| (log.code_status, log.result_message.unwrap_or_default()))
        .collect();
    let expected: Vec<_> = (1..=5)
        .map(|n| ("success".to_string(), format!("ran {n}")))
        .collect();
    assert_eq!(messages, expected);
    drop(server);
}

/// `towerhook queue ...` on a data directory.
fn queue_command(data: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_towerhook"))
        .arg("queue")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TOWERHOOK_DATA_DIR", data)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn a_failing_queued_call_is_retried_then_kept_as_a_dead_letter_until_queue_retry() {
    let recorder = Recorder::start();
    let failing = format!(
        "{}\nresult = {{'exit_code': 1, 'message': 'not yet'}}",
        recorder.call("'run'")
    );
    let app = spawn_app_with(
        &definitions(&[("flaky", "open", "mode: async\nretries: 2", &failing)]),
        |settings| {
            settings.queue_retry_first_secs = 0.2;
            settings.queue_retry_max_secs = 0.5;
            settings.admin_token = Some("reload".into());
        },
    )
    .await;
    let client = reqwest::Client::new();
    assert_eq!(post(&client, &app.url("flaky"), &[], "{}").await.0, 202);
    // First run, then 2 retries (0.2 s, then 0.4 s later, plus up to a fifth), then dead.
    assert_eq!(recorder.wait_for(3, Duration::from_secs(10)).await.len(), 3);
    assert!(wait_until(Duration::from_secs(5), || app.logs().len() == 1).await);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(recorder.hits().len(), 3, "ran more than 1 + retries times");
    let dead = app.last_log();
    assert_eq!(
        (dead.code_status.as_str(), dead.error_message.as_deref()),
        ("failed", Some("not yet (dead letter after 3 attempt(s))"))
    );
    assert_eq!(dead.request_headers["X-Towerhook-Attempts"], "3");
    let listing = queue_command(app.data_dir.path(), &["list"]);
    assert!(listing.contains("queued: 0\ndead: 1\n"), "{listing}");
    assert!(
        listing.contains("dead") && listing.contains("flaky") && listing.contains("attempts 3"),
        "{listing}"
    );
    let counted = metrics(&app.base()).await;
    assert_eq!(counted["towerhook_queue_dead_letters"], 1.0);
    assert_eq!(
        counted["towerhook_queue_runs_total{result=\"retried\"}"],
        2.0
    );

    // Fixed; the dead letter runs again with the definition as it is now.
    let fixed = format!(
        "{}\nresult = {{'exit_code': 0, 'message': 'fixed'}}",
        recorder.call("'fixed'")
    );
    write_definitions(
        app.yaml_dir.path(),
        &definitions(&[("flaky", "open", "mode: async\nretries: 2", &fixed)]),
    );
    let reloaded = client
        .post(format!("{}/admin/reload", app.base()))
        .bearer_auth("reload")
        .send()
        .await
        .unwrap();
    assert_eq!(reloaded.status().as_u16(), 200);
    assert_eq!(
        queue_command(app.data_dir.path(), &["retry"]),
        "1 dead letter(s) queued again\n"
    );
    assert_eq!(
        recorder.wait_for(4, Duration::from_secs(10)).await[3],
        "fixed"
    );
    assert!(wait_until(Duration::from_secs(5), || app.logs().len() == 2).await);
    let done = app.last_log();
    assert_eq!(
        (done.code_status.as_str(), done.result_message.as_deref()),
        ("success", Some("fixed"))
    );
    assert_eq!(done.request_headers["X-Towerhook-Attempts"], "1");
    assert!(queue_command(app.data_dir.path(), &["list"]).starts_with("queued: 0\ndead: 0\n"));
}

#[tokio::test]
async fn a_queued_call_whose_webhook_is_gone_becomes_a_dead_letter_saying_why() {
    let recorder = Recorder::start();
    let code = format!(
        "{}\ntime.sleep(1)\nresult = {{'exit_code': 0, 'message': 'ran'}}",
        recorder.call("payload['n']")
    );
    let app = spawn_app_with(
        &definitions(&[("doomed", "open", "mode: async", &code)]),
        |settings| settings.admin_token = Some("reload".into()),
    )
    .await;
    let client = reqwest::Client::new();
    for n in 1..=2 {
        let body = format!("{{\"n\": {n}}}");
        assert_eq!(post(&client, &app.url("doomed"), &[], &body).await.0, 202);
    }
    // While the first runs, the webhook is deleted.
    recorder.wait_for(1, Duration::from_secs(10)).await;
    write_definitions(app.yaml_dir.path(), &definitions(&[]));
    let reloaded = client
        .post(format!("{}/admin/reload", app.base()))
        .bearer_auth("reload")
        .send()
        .await
        .unwrap();
    assert_eq!(reloaded.status().as_u16(), 200);
    assert!(wait_until(Duration::from_secs(10), || app.logs().len() == 2).await);
    let logs = app.logs();
    assert_eq!(
        (
            logs[0].code_status.as_str(),
            logs[0].result_message.as_deref()
        ),
        ("success", Some("ran"))
    );
    assert_eq!(logs[1].code_status, "failed");
    assert_eq!(
        logs[1].error_message.as_deref(),
        Some(
            "Webhook code not run: webhook \"doomed\" no longer exists; kept as a dead letter \
             (`towerhook queue retry 2` once it is back)"
        )
    );
    assert_eq!(recorder.hits(), ["1"]);
}

#[tokio::test]
async fn a_full_queue_refuses_new_async_calls_with_503_and_a_log() {
    let app: TestApp = spawn_app_with(
        &definitions(&[(
            "busy",
            "open",
            "mode: async",
            "time.sleep(2)\nresult = {'exit_code': 0}",
        )]),
        |settings| settings.queue_max_calls = 1,
    )
    .await;
    let client = reqwest::Client::new();
    assert_eq!(post(&client, &app.url("busy"), &[], "{}").await.0, 202);
    let (status, retry_after, message) = post(&client, &app.url("busy"), &[], "{}").await;
    assert_eq!(
        (status, retry_after.as_deref(), message),
        (503, Some("30"), "Delivery queue full, retry later".into())
    );
    let refused = app.last_log();
    assert_eq!(
        (refused.http_status, refused.authentication_status.as_str()),
        (503, "failed")
    );
    let counted = metrics(&app.base()).await;
    assert_eq!(
        counted["towerhook_limit_refusals_total{kind=\"queue_full\"}"],
        1.0
    );
}
