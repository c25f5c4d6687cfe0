//! Definitions from Odoo: edits served within the poll interval, deletions, `/admin/reload`,
//! the snapshot cache when Odoo is down, and clear errors when it cannot be reached.
//! Against the emulator or a real Odoo (README, "Testing against a real Odoo"); the tests
//! that take Odoo down or stall it say so and run on the emulator only.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::odoo::{TestOdoo, client_settings, spawn_app_on};
use common::{TestApp, answer};
use serde_json::{Value, json};
use towerhook::odoo::{Call, OdooClient};

/// A POST webhook answering `message` at `odoo.name(endpoint)`, behind an open
/// authenticator.
async fn webhook(odoo: &TestOdoo, endpoint: &str, message: &str) -> i64 {
    let code = format!("result = {{'exit_code': 0, 'message': {message:?}}}");
    odoo.open_webhook(endpoint, &code, 1).await
}

async fn call(app: &TestApp, endpoint: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(app.url(endpoint))
        .body("{}")
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    (status, message)
}

/// Calls until the answer is `expected` or `within` has passed; how long it took.
async fn until(
    app: &TestApp,
    endpoint: &str,
    expected: (u16, Value),
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let got = call(app, endpoint).await;
        if got == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "still {got:?} after {within:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn readiness(app: &TestApp) -> (u16, Value) {
    let response = reqwest::get(format!("{}/readyz", app.base()))
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn an_edit_in_odoo_is_served_within_the_poll_interval() {
    let odoo = TestOdoo::start().await;
    let id = webhook(&odoo, "edited", "v1").await;
    let edited = odoo.name("edited");
    let app = spawn_app_on(&odoo, |s| s.odoo_poll_secs = 1.0).await;
    assert_eq!(call(&app, &edited).await, (200, json!("v1")));

    odoo.write(
        "cx.tower.webhook",
        id,
        json!({"code": "result = {'exit_code': 0, 'message': 'v2'}"}),
    )
    .await;
    let took = until(&app, &edited, (200, json!("v2")), Duration::from_secs(4)).await;
    assert!(
        took <= Duration::from_millis(2500),
        "the edit took {took:?}"
    );
    // The log record carries the Odoo ids.
    let log = app.last_log();
    assert_eq!(log.webhook_reference, Some(edited));
}

#[tokio::test]
async fn a_deleted_webhook_answers_404_and_a_new_one_is_served() {
    let odoo = TestOdoo::start().await;
    let id = webhook(&odoo, "doomed", "alive").await;
    let app = spawn_app_on(&odoo, |_| {}).await;
    assert_eq!(
        call(&app, &odoo.name("doomed")).await,
        (200, json!("alive"))
    );
    odoo.unlink("cx.tower.webhook", id).await;
    until(
        &app,
        &odoo.name("doomed"),
        (404, json!("Webhook not found")),
        Duration::from_secs(5),
    )
    .await;
    webhook(&odoo, "newcomer", "hello").await;
    until(
        &app,
        &odoo.name("newcomer"),
        (200, json!("hello")),
        Duration::from_secs(5),
    )
    .await;
    // Archiving is deactivation: 404 too.
    let id = webhook(&odoo, "archived", "on").await;
    let archived = odoo.name("archived");
    until(&app, &archived, (200, json!("on")), Duration::from_secs(5)).await;
    odoo.write("cx.tower.webhook", id, json!({"active": false}))
        .await;
    until(
        &app,
        &archived,
        (404, json!("Webhook not found")),
        Duration::from_secs(5),
    )
    .await;
}

#[tokio::test]
async fn admin_reload_makes_an_edit_visible_at_once() {
    let odoo = TestOdoo::start().await;
    let id = webhook(&odoo, "reloaded", "before").await;
    let reloaded_hook = odoo.name("reloaded");
    let app = spawn_app_on(&odoo, |s| {
        s.odoo_poll_secs = 3600.0;
        s.admin_token = Some("reload-token".into());
    })
    .await;
    assert_eq!(call(&app, &reloaded_hook).await, (200, json!("before")));
    odoo.write(
        "cx.tower.webhook",
        id,
        json!({"code": "result = {'exit_code': 0, 'message': 'after'}"}),
    )
    .await;
    let client = reqwest::Client::new();
    let reload = format!("{}/admin/reload", app.base());
    let refused = client
        .post(&reload)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    assert_eq!(call(&app, &reloaded_hook).await, (200, json!("before")));
    // Every webhook the service user can read is served (the database may hold others
    // than this test's).
    let readable = odoo.search("cx.tower.webhook", json!([])).await.len();

    let reloaded = client
        .post(&reload)
        .bearer_auth("reload-token")
        .send()
        .await
        .unwrap();
    assert_eq!(reloaded.status().as_u16(), 200);
    let body: Value = reloaded.json().await.unwrap();
    assert_eq!(body["webhooks"], json!(readable));
    assert_eq!(call(&app, &reloaded_hook).await, (200, json!("after")));
}

#[tokio::test]
async fn admin_reload_does_not_exist_without_a_token() {
    let odoo = TestOdoo::start().await;
    let app = spawn_app_on(&odoo, |_| {}).await;
    let response = reqwest::Client::new()
        .post(format!("{}/admin/reload", app.base()))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
}

#[tokio::test]
async fn a_start_while_odoo_is_down_serves_the_cached_snapshot() {
    let odoo = TestOdoo::start().await;
    let Some(emulator) = odoo.emulator_only("takes Odoo down") else {
        return;
    };
    webhook(&odoo, "cached", "from the snapshot").await;
    let cached = odoo.name("cached");
    let data_dir = tempfile::tempdir().unwrap();
    let data = data_dir.path().to_path_buf();
    let first = spawn_app_on(&odoo, |s| s.data_dir = data.clone()).await;
    assert_eq!(
        call(&first, &cached).await,
        (200, json!("from the snapshot"))
    );

    emulator.down().await;
    let second = spawn_app_on(&odoo, |s| s.data_dir = data.clone()).await;
    assert_eq!(
        call(&second, &cached).await,
        (200, json!("from the snapshot"))
    );
    let (status, body) = readiness(&second).await;
    assert_eq!(status, 200, "{body}");
    let stale = body["stale"].as_str().unwrap();
    assert!(stale.contains("snapshot"), "{stale}");
    assert!(stale.contains(&odoo.url), "{stale}");

    // Odoo back: the snapshot is replaced by live definitions and the staleness clears.
    emulator.up().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while readiness(&second).await.1["stale"] != Value::Null {
        assert!(
            Instant::now() < deadline,
            "still stale after Odoo came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_start_while_odoo_is_down_without_snapshot_is_not_ready_and_says_why() {
    let odoo = TestOdoo::start().await;
    let Some(emulator) = odoo.emulator_only("takes Odoo down") else {
        return;
    };
    emulator.down().await;
    let app = spawn_app_on(&odoo, |_| {}).await;
    let (status, body) = readiness(&app).await;
    assert_eq!(status, 503, "{body}");
    let problem = body["problems"][0].as_str().unwrap();
    assert!(problem.contains("definitions not loaded"), "{problem}");
    assert!(problem.contains(&odoo.url), "{problem}");
    assert!(problem.contains("no cached snapshot"), "{problem}");
    // Calls are refused with a reason, and logged.
    let (status, message) = call(&app, &odoo.name("anything")).await;
    assert_eq!(
        (status, message),
        (503, json!("Definitions not loaded yet, retry later"))
    );
    assert_eq!(app.last_log().http_status, 503);
}

#[tokio::test]
async fn odoo_going_down_keeps_the_definitions_served_and_marked_stale() {
    let odoo = TestOdoo::start().await;
    let Some(emulator) = odoo.emulator_only("takes Odoo down") else {
        return;
    };
    webhook(&odoo, "steady", "still here").await;
    let app = spawn_app_on(&odoo, |_| {}).await;
    emulator.down().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = readiness(&app).await;
        if body["stale"] != Value::Null {
            assert_eq!(status, 200);
            break;
        }
        assert!(Instant::now() < deadline, "never marked stale");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        call(&app, &odoo.name("steady")).await,
        (200, json!("still here"))
    );
}

fn check_against(odoo: &TestOdoo, secret: &str, data: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_towerhook"))
        .arg("check")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TOWERHOOK_SOURCE", "odoo")
        .env("TOWERHOOK_ODOO_URL", &odoo.url)
        .env("TOWERHOOK_ODOO_DB", &odoo.database)
        .env("TOWERHOOK_ODOO_LOGIN", &odoo.login)
        .env("TOWERHOOK_ODOO_API_KEY", secret)
        .env("TOWERHOOK_ODOO_RETRIES", "0")
        .env("TOWERHOOK_LOG_SINK", "odoo")
        .env("TOWERHOOK_DATA_DIR", data)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
    )
}

#[tokio::test]
async fn check_names_the_login_and_url_when_the_key_is_wrong() {
    let odoo = TestOdoo::start().await;
    let data = tempfile::tempdir().unwrap();
    let (ok, output) = check_against(&odoo, "not-the-key", data.path());
    assert!(!ok, "{output}");
    assert!(
        output.contains(&format!("refused the login {:?}", odoo.login)),
        "{output}"
    );
    assert!(output.contains(&odoo.url), "{output}");
    assert!(output.contains("odoo_api_key"), "{output}");
}

/// Readable records of `model` (archived ones too, as `check` counts them).
async fn readable(odoo: &TestOdoo, model: &str) -> usize {
    odoo.search(model, json!([])).await.len()
}

#[tokio::test]
async fn check_reports_version_protocol_counts_and_what_is_missing() {
    let odoo = TestOdoo::start().await;
    webhook(&odoo, "counted", "x").await;
    let archived = webhook(&odoo, "counted_off", "x").await;
    odoo.write("cx.tower.webhook", archived, json!({"active": false}))
        .await;
    let (webhooks, authenticators) = (
        readable(&odoo, "cx.tower.webhook").await,
        readable(&odoo, "cx.tower.webhook.authenticator").await,
    );
    let active = odoo
        .client
        .execute(&Call::model("cx.tower.webhook", "search_count").arg(json!([])))
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let (ok, output) = check_against(&odoo, &odoo.secret, data.path());
    assert!(
        output.contains(&format!(
            "Odoo {} over {} (uid {})",
            odoo.client.version().text,
            odoo.client.protocol().as_str(),
            odoo.uid()
        )),
        "{output}"
    );
    assert!(
        output.contains(&format!("cx.tower.webhook: {webhooks} record(s) readable")),
        "{output}"
    );
    assert!(
        output.contains(&format!(
            "{webhooks} webhook(s) ({active} active), {authenticators} authenticator(s)"
        )),
        "{output}"
    );
    if odoo.addon_ready().await {
        // A service user set up as the README says: the addon serves secrets and logs.
        assert!(
            output.contains("companion addon cetmix_tower_webhook_sidecar: installed"),
            "{output}"
        );
    }
    if odoo
        .emulator_only("the stock rights of a service user without the addon or odoo-setup")
        .is_some()
    {
        // Logs go to Odoo, whose stock rules make them read-only and which has no
        // companion addon: that right is missing, with the fix.
        assert!(!ok);
        assert!(
            output.contains("cannot create cx.tower.webhook.log records")
                && output.contains("towerhook odoo-setup"),
            "{output}"
        );
        assert!(output.contains("companion addon cetmix_tower_webhook_sidecar is not installed"));
    }
}

#[tokio::test]
async fn log_retention_follows_odoo_when_the_service_user_may_read_it() {
    let odoo = TestOdoo::start().await;
    if let Some(emulator) = odoo.emulator_only("changes the database-wide log retention") {
        // A value other than the default, so that following it shows.
        let parameter = emulator
            .control(
                "POST",
                "/records/ir.config_parameter/search",
                Some(
                    json!({"domain": [["key", "=", "cetmix_tower_webhook.webhook_log_duration"]]}),
                ),
            )
            .await;
        let id = parameter["records"][0]["id"].as_i64().unwrap();
        emulator
            .control(
                "PATCH",
                &format!("/records/ir.config_parameter/{id}"),
                Some(json!({"value": "7"})),
            )
            .await;
    }
    // The service user (Root, not Settings) cannot read config parameters: the
    // configured value is kept.
    let app = spawn_app_on(&odoo, |s| s.retention_days = 45).await;
    assert_eq!(readiness(&app).await.1["log_retention_days"], json!(45));
    // An administrator can: towerhook logged in as one follows Odoo's setting.
    let Some((login, secret)) = odoo.admin_credentials() else {
        eprintln!("skipped: needs an administrator (TOWERHOOK_TEST_ODOO_ADMIN_LOGIN)");
        return;
    };
    let admin = OdooClient::connect(&client_settings(&odoo.url, &odoo.database, login, secret))
        .await
        .unwrap();
    let days = admin
        .execute(
            &Call::model("ir.config_parameter", "get_param")
                .arg(json!("cetmix_tower_webhook.webhook_log_duration")),
        )
        .await
        .unwrap();
    // The module reads a missing or zero value as 30 days.
    let expected = match days.as_str().and_then(|d| d.trim().parse::<u64>().ok()) {
        Some(0) | None => 30,
        Some(days) => days,
    };
    if odoo.emulator.is_some() {
        assert_eq!(expected, 7);
    }
    let (login, secret) = (login.to_string(), secret.to_string());
    let as_admin = spawn_app_on(&odoo, |s| {
        s.retention_days = 45;
        s.odoo_login = Some(login);
        s.odoo_api_key = Some(secret.into());
    })
    .await;
    assert_eq!(
        readiness(&as_admin).await.1["log_retention_days"],
        json!(expected)
    );
}

#[tokio::test]
async fn a_start_while_odoo_hangs_serves_the_cached_snapshot_without_waiting_for_it() {
    let odoo = TestOdoo::start().await;
    let Some(emulator) = odoo.emulator_only("stalls Odoo") else {
        return;
    };
    webhook(&odoo, "cached_hang", "still served").await;
    let cached_hang = odoo.name("cached_hang");
    let data_dir = tempfile::tempdir().unwrap();
    let data = data_dir.path().to_path_buf();
    let first = spawn_app_on(&odoo, |s| s.data_dir = data.clone()).await;
    assert_eq!(call(&first, &cached_hang).await.0, 200);
    // Odoo accepts connections but answers nothing for a minute.
    emulator
        .control("POST", "/stall", Some(json!({"seconds": 60})))
        .await;
    let started = Instant::now();
    let second = spawn_app_on(&odoo, |s| {
        s.data_dir = data.clone();
        s.odoo_timeout_secs = 20.0;
    })
    .await;
    let (status, body) = readiness(&second).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the start waited {:?} for a hanging Odoo",
        started.elapsed()
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body["stale"].as_str().unwrap().contains("snapshot"),
        "{body}"
    );
    assert_eq!(
        call(&second, &cached_hang).await,
        (200, json!("still served"))
    );
}
