//! The companion addon: secrets reach snippets only through its method, logs are created
//! through it (idempotently), its group guards both, and without it towerhook says what is
//! missing while calls still answer.

mod common;

use std::process::Command;
use std::time::Duration;

use common::odoo::{
    DATABASE, DEMO_KEY, DEMO_LOGIN, SERVICE_KEY, SERVICE_LOGIN, TestOdoo, client_settings,
    spawn_app_on, spawn_app_shipping_to,
};
use common::{TestApp, answer};
use serde_json::{Value, json};
use towerhook::odoo::{Call, ErrorKind, OdooClient};

const ADDON: &str = "cetmix_tower_webhook_sidecar";

/// An emulator with a secret `ci_token` and a webhook whose authenticator compares it with
/// the `X-Token` header; the addon installed with `members` in its group, or not at all.
async fn odoo_with_secret(addon: Option<&[&str]>) -> TestOdoo {
    let odoo = TestOdoo::start().await;
    let emulator = odoo.emulator().expect("these tests need the emulator");
    if let Some(members) = addon {
        emulator
            .control(
                "POST",
                "/addons",
                Some(json!({ADDON: {"members": members}})),
            )
            .await;
    }
    let key = odoo
        .create(
            "cx.tower.key",
            json!({"name": "CI token", "reference": "ci_token", "key_type": "s"}),
        )
        .await;
    odoo.create(
        "cx.tower.key.value",
        json!({"key_id": key, "secret_value": "s3cr3t-token"}),
    )
    .await;
    let authenticator = odoo
        .create(
            "cx.tower.webhook.authenticator",
            json!({
                "name": "Token",
                "code": "result = {'allowed': headers.get('X-Token') == #!cxtower.secret.ci_token!#}",
            }),
        )
        .await;
    odoo.create(
        "cx.tower.webhook",
        json!({
            "name": "Guarded", "endpoint": "guarded", "authenticator_id": authenticator,
            "code": "result = {'exit_code': 0, 'message': 'token %s' % #!cxtower.secret.ci_token!#}",
        }),
    )
    .await;
    odoo
}

async fn call_with_token(app: &TestApp, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(app.url("guarded"))
        .header("X-Token", token)
        .body("{}")
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    (status, message)
}

#[tokio::test]
async fn secrets_reach_snippets_only_through_the_addon() {
    let odoo = odoo_with_secret(Some(&[SERVICE_LOGIN])).await;
    let emulator = odoo.emulator().unwrap();
    let app = spawn_app_on(&odoo, |_| {}).await;
    assert_eq!(
        call_with_token(&app, "s3cr3t-token").await,
        (200, json!("token *****"))
    );
    assert_eq!(call_with_token(&app, "guess").await.0, 403);
    let asked = emulator
        .journal("model=cx.tower.webhook&method=towerhook_secret_values")
        .await;
    assert!(!asked.is_empty());
    assert!(
        asked
            .iter()
            .all(|entry| entry["login"] == json!(SERVICE_LOGIN))
    );
    // The vault itself stays closed to towerhook.
    assert!(emulator.journal("model=cx.tower.vault").await.is_empty());
    // Never written to the snapshot cache.
    let store = std::fs::read(app.log_path()).unwrap();
    assert!(!String::from_utf8_lossy(&store).contains("s3cr3t-token"));
}

#[tokio::test]
async fn a_changed_secret_is_used_within_the_poll_interval() {
    let odoo = odoo_with_secret(Some(&[SERVICE_LOGIN])).await;
    let app = spawn_app_on(&odoo, |_| {}).await;
    assert_eq!(call_with_token(&app, "s3cr3t-token").await.0, 200);
    let values = odoo
        .client
        .execute(&Call::model("cx.tower.key.value", "search").arg(json!([[
            "key_id.reference",
            "=",
            "ci_token"
        ]])))
        .await
        .unwrap();
    let id = values[0].as_i64().unwrap();
    odoo.write("cx.tower.key.value", id, json!({"secret_value": "rotated"}))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while call_with_token(&app, "rotated").await.0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the new secret is not used"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(call_with_token(&app, "s3cr3t-token").await.0, 403);
}

#[tokio::test]
async fn without_the_addon_secrets_are_none_check_names_it_and_calls_still_answer() {
    let odoo = odoo_with_secret(None).await;
    let app = spawn_app_shipping_to(&odoo, |_| {}).await;
    // No secret: the authenticator compares with None and denies, as the module would
    // for an unknown secret. The call is answered and its log kept for later.
    assert_eq!(call_with_token(&app, "s3cr3t-token").await.0, 403);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.logs().len(), 1);
    let ready: Value = reqwest::get(format!("{}/readyz", app.base()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["outbox"]["unshipped_records"], json!(1), "{ready}");

    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_towerhook"))
        .arg("check")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TOWERHOOK_SOURCE", "odoo")
        .env("TOWERHOOK_LOG_SINK", "odoo")
        .env("TOWERHOOK_ODOO_URL", &odoo.url)
        .env("TOWERHOOK_ODOO_DB", DATABASE)
        .env("TOWERHOOK_ODOO_LOGIN", SERVICE_LOGIN)
        .env("TOWERHOOK_ODOO_API_KEY", SERVICE_KEY)
        .env("TOWERHOOK_DATA_DIR", data.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("companion addon {ADDON} is not installed")),
        "{stdout}"
    );
    assert!(stdout.contains("snippets use secrets"), "{stdout}");
    assert!(stdout.contains("towerhook odoo-setup"), "{stdout}");
}

#[tokio::test]
async fn a_user_outside_the_addons_group_gets_access_error() {
    let odoo = odoo_with_secret(Some(&[])).await;
    let demo = OdooClient::connect(&client_settings(&odoo.url, DATABASE, DEMO_LOGIN, DEMO_KEY))
        .await
        .unwrap();
    for call in [
        Call::model("cx.tower.webhook", "towerhook_secret_values")
            .arg(json!([]))
            .arg(json!([])),
        Call::model("cx.tower.webhook.log", "towerhook_create_logs").arg(json!([])),
    ] {
        let error = demo.execute(&call).await.unwrap_err();
        assert_eq!(error.kind(), Some(ErrorKind::AccessError), "{error}");
    }
    // The service user (Root, but not in the addon's group) is refused too.
    let error = odoo
        .client
        .execute(
            &Call::model("cx.tower.webhook", "towerhook_secret_values")
                .arg(json!([]))
                .arg(json!([])),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::AccessError), "{error}");
    let app = spawn_app_on(&odoo, |_| {}).await;
    assert_eq!(call_with_token(&app, "s3cr3t-token").await.0, 403);
}

#[tokio::test]
async fn logs_created_through_the_addon_carry_their_request_id_once() {
    let odoo = odoo_with_secret(Some(&[SERVICE_LOGIN])).await;
    let app = spawn_app_shipping_to(&odoo, |_| {}).await;
    let response = reqwest::Client::new()
        .post(app.url("guarded"))
        .header("X-Token", "s3cr3t-token")
        .header("X-Extra", "shown")
        .body(r#"{"n": 1}"#)
        .send()
        .await
        .unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(response.status().as_u16(), 200);
    let logs = odoo.wait_for_logs(1, Duration::from_secs(10)).await;
    assert_eq!(logs.len(), 1);
    let log = &logs[0];
    assert_eq!(log["towerhook_uid"], json!(request_id));
    assert!(
        log["towerhook_call_time"]
            .as_str()
            .unwrap()
            .starts_with("20")
    );
    assert_eq!(log["endpoint"], json!("guarded"));
    assert_eq!(log["http_status"], json!(200));
    assert_eq!(log["result_message"], json!("token *****"));
    let headers: Value = serde_json::from_str(log["request_headers"].as_str().unwrap()).unwrap();
    assert_eq!(headers["X-Token"], json!("*****"));
    assert_eq!(headers["X-Extra"], json!("shown"));
    // No access rule was needed: the stock read-only rule stands.
    let access = odoo
        .emulator()
        .unwrap()
        .journal("model=cx.tower.webhook.log&method=create")
        .await;
    assert!(access.is_empty(), "plain create was used: {access:?}");

    // Re-sending the same records (a crash between Odoo's answer and the local mark)
    // creates nothing new.
    let again = odoo
        .client
        .execute(
            &Call::model("cx.tower.webhook.log", "towerhook_create_logs").arg(json!([{
                "endpoint": "guarded", "request_method": "post",
                "authentication_status": "success", "code_status": "success",
                "towerhook_uid": request_id,
            }])),
        )
        .await;
    // The service user is in the group; the answer is the existing record's id.
    assert_eq!(again.unwrap(), json!([log["id"]]));
    assert_eq!(odoo.logs().await.len(), 1);
}

#[tokio::test]
async fn odoo_setup_adds_the_service_user_to_the_addons_group() {
    let odoo = odoo_with_secret(Some(&[])).await;
    odoo.grant_log_create().await;
    // Through the addon: no access rule on the log model was created.
    let rules = odoo
        .client
        .execute(&Call::model("res.groups", "search_count").arg(json!([[
            "name",
            "=",
            towerhook::odoo_setup::GROUP_NAME
        ]])))
        .await
        .unwrap();
    assert_eq!(rules, json!(0));
    let app = spawn_app_shipping_to(&odoo, |_| {}).await;
    assert_eq!(call_with_token(&app, "s3cr3t-token").await.0, 200);
    let logs = odoo.wait_for_logs(1, Duration::from_secs(10)).await;
    assert_eq!(logs.len(), 1);
}
