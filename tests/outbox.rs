//! Call logs reach Odoo through the durable outbox: nothing lost when Odoo is down, slow,
//! refusing, or when towerhook is killed. The logs are read back from Odoo over RPC,
//! this test's only (its endpoints carry its prefix); against the emulator or a real
//! Odoo, except the tests that take Odoo down, stall it or make it refuse, which say so.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::odoo::{SERVICE_LOGIN, TestOdoo, spawn_app_shipping_to};
use common::{BinaryServer, TestApp, answer};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// A POST webhook at `odoo.name(endpoint)` echoing `seq` from the payload, behind an open
/// authenticator.
async fn echo_webhook(odoo: &TestOdoo, endpoint: &str) -> i64 {
    let code = "result = {'exit_code': 0, 'message': 'seq %s' % payload.get('seq')}";
    odoo.open_webhook(endpoint, code, 1).await
}

async fn call(app: &TestApp, endpoint: &str, seq: usize) -> u16 {
    send(&reqwest::Client::new(), app, endpoint, seq).await
}

async fn send(client: &reqwest::Client, app: &TestApp, endpoint: &str, seq: usize) -> u16 {
    client
        .post(app.url(endpoint))
        .body(json!({"seq": seq}).to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `seq` of each log in Odoo → how many logs carry it.
fn seqs(logs: &[Value]) -> HashMap<i64, usize> {
    let mut seen = HashMap::new();
    for log in logs {
        let payload: Value = log["request_payload"]
            .as_str()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or(Value::Null);
        if let Some(seq) = payload["seq"].as_i64() {
            *seen.entry(seq).or_default() += 1;
        }
    }
    seen
}

async fn readiness(app: &TestApp) -> Value {
    reqwest::get(format!("{}/readyz", app.base()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn logs_reach_odoo_with_the_contract_fields() {
    let odoo = TestOdoo::start().await;
    odoo.grant_log_create().await;
    let webhook = echo_webhook(&odoo, "shipped").await;
    let app = spawn_app_shipping_to(&odoo, |_| {}).await;
    let response = reqwest::Client::new()
        .post(app.url(&odoo.name("shipped")))
        .header("X-Test-Header", "xxx")
        .body(r#"{"seq": 7}"#)
        .send()
        .await
        .unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(answer(response).await.0, 200);
    reqwest::Client::new()
        .post(app.url(&odoo.name("missing")))
        .send()
        .await
        .unwrap();
    let logs = odoo.wait_for_logs(2, Duration::from_secs(10)).await;
    assert_eq!(logs.len(), 2, "{logs:?}");
    let log = &logs[0];
    assert_eq!(log["webhook_id"][0], json!(webhook));
    assert_eq!(log["endpoint"], json!(odoo.name("shipped")));
    assert_eq!(log["request_method"], json!("post"));
    assert_eq!(log["http_status"], json!(200));
    assert_eq!(log["authentication_status"], json!("success"));
    assert_eq!(log["code_status"], json!("success"));
    assert_eq!(log["result_message"], json!("seq 7"));
    assert_eq!(log["user_id"][0], json!(1));
    assert_eq!(log["ip_address"], json!("127.0.0.1"));
    assert_eq!(
        log["authenticator_id"][1],
        json!(format!("Open {}", odoo.name("shipped")))
    );
    let headers: Value = serde_json::from_str(log["request_headers"].as_str().unwrap()).unwrap();
    assert_eq!(headers["X-Test-Header"], json!("xxx"));
    assert_eq!(headers["X-Towerhook-Request-Id"], json!(request_id));
    let unmatched = &logs[1];
    assert_eq!(unmatched["webhook_id"], json!(false));
    assert_eq!(unmatched["http_status"], json!(404));
    assert_eq!(unmatched["error_message"], json!("Webhook not found"));
    // Shipped records are marked as such locally.
    let local = app.logs();
    assert_eq!(local.len(), 2);
    odoo.assert_logs_shipped(&app).await;
}

#[tokio::test]
async fn a_thousand_calls_while_odoo_is_down_all_arrive_when_it_returns() {
    let odoo = TestOdoo::start().await;
    let Some(emulator) = odoo.emulator_only("takes Odoo down") else {
        return;
    };
    odoo.grant_log_create().await;
    echo_webhook(&odoo, "down").await;
    let endpoint = odoo.name("down");
    let app = spawn_app_shipping_to(&odoo, |_| {}).await;
    emulator.down().await;
    // 1,000 calls from 50 keep-alive connections.
    let client = reqwest::Client::new();
    let statuses: Vec<u16> = futures_util::stream::iter(0..1000)
        .map(|seq| send(&client, &app, &endpoint, seq))
        .buffer_unordered(50)
        .collect()
        .await;
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    let state = readiness(&app).await;
    assert_eq!(state["outbox"]["unshipped_records"], json!(1000), "{state}");
    assert!(
        state["outbox"]["problem"]
            .as_str()
            .unwrap()
            .contains(&odoo.url),
        "{state}"
    );
    emulator.up().await;
    let logs = odoo.wait_for_logs(1000, Duration::from_secs(30)).await;
    let seen = seqs(&logs);
    assert_eq!(logs.len(), 1000, "exactly the 1,000 calls, no duplicates");
    assert_eq!(seen.len(), 1000);
    let state = readiness(&app).await;
    assert_eq!(state["outbox"]["unshipped_records"], json!(0), "{state}");
    assert_eq!(state["outbox"]["problem"], Value::Null, "{state}");
}

#[tokio::test]
async fn a_slow_odoo_does_not_slow_the_callers() {
    let odoo = TestOdoo::start().await;
    let Some(emulator) = odoo.emulator_only("stalls Odoo") else {
        return;
    };
    odoo.grant_log_create().await;
    echo_webhook(&odoo, "slow").await;
    // What is measured is Odoo's stall, not this machine's fsync, which now and then takes
    // longer than the bound by itself.
    let app = spawn_app_shipping_to(&odoo, |settings| {
        settings.log_store_sync = towerhook::configuration::SyncMode::Normal;
    })
    .await;
    emulator
        .control(
            "POST",
            "/stall",
            Some(json!({"seconds": 5, "model": "cx.tower.webhook.log", "method": "create"})),
        )
        .await;
    let mut slowest = Duration::ZERO;
    for seq in 0..20 {
        let started = Instant::now();
        assert_eq!(call(&app, &odoo.name("slow"), seq).await, 200);
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        slowest < Duration::from_millis(500),
        "a call took {slowest:?} while Odoo stalled 5 s per log batch"
    );
    emulator.control("DELETE", "/faults", None).await;
    let logs = odoo.wait_for_logs(20, Duration::from_secs(20)).await;
    assert_eq!(seqs(&logs).len(), 20);
}

#[tokio::test]
async fn missing_rights_are_explained_and_the_records_ship_after_odoo_setup() {
    let odoo = TestOdoo::start().await;
    if odoo
        .emulator_only("needs a service user without the right to create logs")
        .is_none()
    {
        return;
    }
    echo_webhook(&odoo, "rights").await;
    let app = spawn_app_shipping_to(&odoo, |_| {}).await;
    for seq in 0..5 {
        assert_eq!(call(&app, &odoo.name("rights"), seq).await, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let problem = loop {
        let state = readiness(&app).await;
        if let Some(problem) = state["outbox"]["problem"].as_str() {
            break problem.to_string();
        }
        assert!(Instant::now() < deadline, "no operator message: {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        problem.contains("may not create cx.tower.webhook.log"),
        "{problem}"
    );
    assert!(problem.contains("towerhook odoo-setup"), "{problem}");
    assert!(problem.contains(&format!("{SERVICE_LOGIN:?}")), "{problem}");
    assert!(odoo.logs().await.is_empty());

    odoo.grant_log_create().await;
    let logs = odoo.wait_for_logs(5, Duration::from_secs(15)).await;
    assert_eq!(seqs(&logs).len(), 5);
}

#[tokio::test]
async fn two_towerhooks_sharing_one_odoo_lose_nothing() {
    let odoo = TestOdoo::start().await;
    odoo.grant_log_create().await;
    echo_webhook(&odoo, "shared").await;
    let endpoint = odoo.name("shared");
    let first = spawn_app_shipping_to(&odoo, |_| {}).await;
    let second = spawn_app_shipping_to(&odoo, |_| {}).await;
    let client = reqwest::Client::new();
    let statuses: Vec<u16> = futures_util::stream::iter(0..300)
        .map(|seq| {
            let app = if seq % 2 == 0 { &first } else { &second };
            send(&client, app, &endpoint, seq)
        })
        .buffer_unordered(20)
        .collect()
        .await;
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    let logs = odoo.wait_for_logs(300, Duration::from_secs(20)).await;
    let seen = seqs(&logs);
    assert_eq!(seen.len(), 300);
    assert!(seen.values().all(|n| *n == 1), "duplicates: {logs:?}");
}

#[tokio::test]
async fn refused_records_become_dead_letters_and_can_be_sent_again() {
    let odoo = TestOdoo::start().await;
    let Some(emulator) = odoo.emulator_only("makes Odoo refuse log batches") else {
        return;
    };
    odoo.grant_log_create().await;
    let webhook = echo_webhook(&odoo, "refused").await;
    let app = spawn_app_shipping_to(&odoo, |s| s.outbox_batch_size = 10).await;

    // Odoo refuses the next three creates: the batch, the record alone, the record without
    // its references. Only then is it a dead letter.
    emulator
        .control(
            "POST",
            "/fail",
            Some(json!({
                "kind": "odoo_error", "class": "validation", "name": "odoo.exceptions.ValidationError",
                "message": "refused for the test", "model": "cx.tower.webhook.log",
                "method": "create", "times": 3,
            })),
        )
        .await;
    let refused = odoo.name("refused");
    assert_eq!(call(&app, &refused, 1).await, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let store = app.log_path();
    loop {
        let listing = towerhook::logs::shipper::list(&store, &["dead"]).unwrap();
        if listing.entries.len() == 1 {
            let dead = &listing.entries[0];
            assert!(
                dead.last_error
                    .as_deref()
                    .unwrap()
                    .contains("refused for the test")
            );
            break;
        }
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Later records are not held back by a dead letter.
    assert_eq!(call(&app, &refused, 2).await, 200);
    let logs = odoo.wait_for_logs(1, Duration::from_secs(10)).await;
    assert_eq!(seqs(&logs).keys().collect::<Vec<_>>(), vec![&2]);

    // `towerhook outbox retry` queues it again; it goes through now.
    assert_eq!(towerhook::logs::shipper::retry(&store, &[]).unwrap(), 1);
    let logs = odoo.wait_for_logs(2, Duration::from_secs(10)).await;
    assert_eq!(seqs(&logs).len(), 2);

    // A webhook deleted before its log ships: the log arrives without the dangling link.
    emulator.down().await;
    assert_eq!(call(&app, &refused, 3).await, 200);
    emulator.up().await;
    odoo.unlink("cx.tower.webhook", webhook).await;
    let logs = odoo.wait_for_logs(3, Duration::from_secs(10)).await;
    let last = logs
        .iter()
        .find(|log| log["result_message"] == json!("seq 3"))
        .expect("the log of the deleted webhook's call");
    assert_eq!(last["webhook_id"], json!(false));
    assert_eq!(last["endpoint"], json!(refused));
}

#[tokio::test]
async fn a_full_outbox_refuses_new_calls_and_keeps_what_it_holds() {
    let odoo = TestOdoo::start().await;
    let Some(emulator) = odoo.emulator_only("takes Odoo down") else {
        return;
    };
    odoo.grant_log_create().await;
    echo_webhook(&odoo, "bounded").await;
    let bounded = odoo.name("bounded");
    let app = spawn_app_shipping_to(&odoo, |s| s.outbox_max_records = 5).await;
    emulator.down().await;
    for seq in 0..5 {
        assert_eq!(call(&app, &bounded, seq).await, 200);
    }
    let response = reqwest::Client::new()
        .post(app.url(&bounded))
        .body(r#"{"seq": 99}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "30");
    assert_eq!(app.logs().len(), 5, "the refused call was not accepted");
    emulator.up().await;
    let logs = odoo.wait_for_logs(5, Duration::from_secs(15)).await;
    assert_eq!(seqs(&logs).len(), 5);
    // Room again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while call(&app, &bounded, 100).await != 200 {
        assert!(
            Instant::now() < deadline,
            "still refusing after the outbox drained"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGKILL in the middle of 2,000 calls: every call that was answered has its log in Odoo
/// after a restart; duplicates only from the batch in flight.
#[tokio::test]
async fn a_killed_towerhook_loses_no_answered_call() {
    let odoo = TestOdoo::start().await;
    odoo.grant_log_create().await;
    echo_webhook(&odoo, "killed").await;
    // Odoo answers each log batch slowly, so that batches are surely in flight at the
    // kill (a real Odoo is not slowed down: batches may or may not be in flight there).
    let stalled = odoo.emulator_only("stalling log batches");
    if let Some(emulator) = stalled {
        emulator
            .control(
                "POST",
                "/stall",
                Some(json!({"seconds": 0.2, "model": "cx.tower.webhook.log", "method": "create"})),
            )
            .await;
    }
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("TOWERHOOK_SOURCE", "odoo"),
        ("TOWERHOOK_LOG_SINK", "odoo"),
        ("TOWERHOOK_ODOO_URL", odoo.url.as_str()),
        ("TOWERHOOK_ODOO_DB", odoo.database.as_str()),
        ("TOWERHOOK_ODOO_LOGIN", odoo.login.as_str()),
        ("TOWERHOOK_ODOO_API_KEY", odoo.secret.as_str()),
        ("TOWERHOOK_OUTBOX_BATCH_AGE_MS", "50"),
        ("TOWERHOOK_OUTBOX_BATCH_SIZE", "100"),
        ("TOWERHOOK_OUTBOX_RETRY_MAX_SECS", "0.5"),
    ];
    let server = BinaryServer::start_in(data.path(), &env);
    let url = server.url(&odoo.name("killed"));
    let client = reqwest::Client::new();
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for worker in 0..20 {
        let (client, url, answered) = (client.clone(), url.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..100 {
                let seq = worker * 100 + n;
                let sent = client
                    .post(&url)
                    .body(json!({"seq": seq}).to_string())
                    .send()
                    .await;
                if matches!(&sent, Ok(response) if response.status().as_u16() == 200) {
                    answered.lock().unwrap().push(seq as i64);
                }
            }
        }));
    }
    // Kill once part of the load is answered.
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered.lock().unwrap().len() < 700 {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    for task in tasks {
        let _ = task.await;
    }
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() < 2000, "killed too late to prove anything");

    if let Some(emulator) = stalled {
        emulator.control("DELETE", "/faults", None).await;
    }
    let restarted = BinaryServer::start_in(data.path(), &env);
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let seen = seqs(&odoo.logs().await);
        if answered.iter().all(|seq| seen.contains_key(seq)) {
            break seen;
        }
        assert!(
            Instant::now() < deadline,
            "{} answered calls have no log in Odoo",
            answered
                .iter()
                .filter(|seq| !seen.contains_key(seq))
                .count()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "{} calls answered before the kill, {} logs in Odoo, {duplicates} duplicate(s)",
        answered.len(),
        seen.values().sum::<usize>()
    );
    assert!(
        duplicates <= 100,
        "{duplicates} duplicates: more than one batch"
    );
    drop(restarted);
}

#[tokio::test]
async fn the_callers_country_reaches_odoo_when_a_geoip_database_is_configured() {
    let odoo = TestOdoo::start().await;
    odoo.grant_log_create().await;
    echo_webhook(&odoo, "geo").await;
    let geo = odoo.name("geo");
    let database = tempfile::tempdir().unwrap();
    let path = database.path().join("countries.mmdb");
    common::mmdb::write(
        &path,
        &[
            ("203.0.113.0".parse().unwrap(), 24, "BE"),
            ("198.51.100.0".parse().unwrap(), 24, "DE"),
        ],
    );
    let app = spawn_app_shipping_to(&odoo, |s| s.geoip_database = Some(path.clone())).await;
    for (source, seq) in [("203.0.113.5", 1), ("127.0.0.1", 2)] {
        let source: std::net::IpAddr = source.parse().unwrap();
        let response = app
            .client_from(source)
            .post(format!(
                "{}/cetmix_tower_webhooks/{geo}",
                app.base_for(source)
            ))
            .body(json!({"seq": seq}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
    }
    let logs = odoo.wait_for_logs(2, Duration::from_secs(10)).await;
    let by_seq = |seq: i64| {
        logs.iter()
            .find(|log| log["result_message"] == json!(format!("seq {seq}")))
            .unwrap()
    };
    assert_eq!(by_seq(1)["country_id"][1], json!("Belgium"));
    assert_eq!(by_seq(2)["country_id"], json!(false));
}

/// SIGTERM ships what the last calls left in the outbox before the process exits, while
/// Odoo takes logs: a replica removed for good (scaled down) leaves nothing behind.
#[tokio::test]
async fn sigterm_ships_the_last_records_before_exiting() {
    let odoo = TestOdoo::start().await;
    odoo.grant_log_create().await;
    echo_webhook(&odoo, "flushed").await;
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("TOWERHOOK_SOURCE", "odoo"),
        ("TOWERHOOK_LOG_SINK", "odoo"),
        ("TOWERHOOK_ODOO_URL", odoo.url.as_str()),
        ("TOWERHOOK_ODOO_DB", odoo.database.as_str()),
        ("TOWERHOOK_ODOO_LOGIN", odoo.login.as_str()),
        ("TOWERHOOK_ODOO_API_KEY", odoo.secret.as_str()),
        // The batch waits 2 s for more records: longer than the stop takes without it.
        ("TOWERHOOK_OUTBOX_BATCH_AGE_MS", "2000"),
    ];
    let mut server = BinaryServer::start_in(data.path(), &env);
    let client = reqwest::Client::new();
    for seq in 0..3 {
        let status = client
            .post(server.url(&odoo.name("flushed")))
            .body(json!({"seq": seq}).to_string())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200);
    }
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    // Read at once: nothing ships after the exit.
    assert_eq!(
        seqs(&odoo.logs().await).len(),
        3,
        "the last records stayed behind"
    );
    let store = data.path().join("towerhook.sqlite3");
    assert!(
        towerhook::logs::shipper::list(&store, &["pending"])
            .unwrap()
            .entries
            .is_empty()
    );
}
