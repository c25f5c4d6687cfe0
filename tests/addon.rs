//! The companion addon: secrets reach snippets only through its method, logs are created
//! through it (idempotently), its group guards both, and without it towerhook says what is
//! missing while calls still answer. Against a real Odoo, the tests that need the addon
//! installed with the service user in its group run when it is (README, "Testing against
//! a real Odoo"); those that need it absent, or the user outside its group, are emulator
//! only and say so.

mod common;

use std::process::Command;
use std::time::Duration;

use common::odoo::{SERVICE_LOGIN, TestOdoo, client_settings, spawn_app_on, spawn_app_shipping_to};
use common::{TestApp, answer};
use serde_json::{Value, json};
use towerhook::odoo::{Call, ErrorKind, OdooClient, Protocol};

const ADDON: &str = "cetmix_tower_webhook_sidecar";

/// Where the companion addon stands for a test.
#[derive(Clone, Copy, PartialEq)]
enum Addon {
    /// Installed, the service user in its group: a real Odoo set up as the README says.
    Ready,
    /// Installed, the service user outside its group (emulator only).
    NotInGroup,
    /// Not installed (emulator only).
    Absent,
}

/// An Odoo with a secret `ci_token` (prefixed) and a webhook at `guarded` (prefixed) whose
/// authenticator compares it with the `X-Token` header; `None` (with a note) when a real
/// Odoo cannot give the addon state asked for.
async fn odoo_with_secret(addon: Addon) -> Option<TestOdoo> {
    let odoo = TestOdoo::start().await;
    if addon != Addon::Ready {
        let why = if addon == Addon::Absent {
            "needs Odoo without the companion addon"
        } else {
            "needs the service user outside the companion addon's group"
        };
        let emulator = odoo.emulator_only(why)?;
        if addon == Addon::NotInGroup {
            emulator
                .control("POST", "/addons", Some(json!({ADDON: {"members": []}})))
                .await;
        }
    } else if let Some(emulator) = &odoo.emulator {
        emulator
            .control(
                "POST",
                "/addons",
                Some(json!({ADDON: {"members": [SERVICE_LOGIN]}})),
            )
            .await;
    } else if !odoo.addon_ready().await {
        eprintln!(
            "skipped: the companion addon is not installed in this Odoo, or {:?} is not in \
             its group",
            odoo.login
        );
        return None;
    }
    let reference = odoo.name("ci_token");
    let key = odoo
        .create(
            "cx.tower.key",
            json!({"name": odoo.names().label("CI token"), "reference": reference, "key_type": "s"}),
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
                "name": odoo.names().label("Token"), "reference": odoo.name("token"),
                "code": format!(
                    "result = {{'allowed': headers.get('X-Token') == #!cxtower.secret.{reference}!#}}"
                ),
            }),
        )
        .await;
    odoo.create(
        "cx.tower.webhook",
        json!({
            "name": odoo.names().label("Guarded"), "reference": odoo.name("guarded"),
            "endpoint": odoo.name("guarded"), "authenticator_id": authenticator,
            "code": format!(
                "result = {{'exit_code': 0, 'message': 'token %s' % #!cxtower.secret.{reference}!#}}"
            ),
        }),
    )
    .await;
    Some(odoo)
}

async fn call_with_token(odoo: &TestOdoo, app: &TestApp, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(app.url(&odoo.name("guarded")))
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
    let Some(odoo) = odoo_with_secret(Addon::Ready).await else {
        return;
    };
    let app = spawn_app_on(&odoo, |_| {}).await;
    assert_eq!(
        call_with_token(&odoo, &app, "s3cr3t-token").await,
        (200, json!("token *****"))
    );
    assert_eq!(call_with_token(&odoo, &app, "guess").await.0, 403);
    // Never written to the snapshot cache.
    let store = std::fs::read(app.log_path()).unwrap();
    assert!(!String::from_utf8_lossy(&store).contains("s3cr3t-token"));
    let Some(emulator) = odoo.emulator_only("reads the call journal") else {
        return;
    };
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
}

#[tokio::test]
async fn a_changed_secret_is_used_within_the_poll_interval() {
    let Some(odoo) = odoo_with_secret(Addon::Ready).await else {
        return;
    };
    let app = spawn_app_on(&odoo, |_| {}).await;
    assert_eq!(call_with_token(&odoo, &app, "s3cr3t-token").await.0, 200);
    let values = odoo
        .search(
            "cx.tower.key.value",
            json!([["key_id.reference", "=", odoo.name("ci_token")]]),
        )
        .await;
    let id = values[0];
    odoo.write("cx.tower.key.value", id, json!({"secret_value": "rotated"}))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while call_with_token(&odoo, &app, "rotated").await.0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the new secret is not used"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(call_with_token(&odoo, &app, "s3cr3t-token").await.0, 403);
}

#[tokio::test]
async fn without_the_addon_secrets_are_none_check_names_it_and_calls_still_answer() {
    let Some(odoo) = odoo_with_secret(Addon::Absent).await else {
        return;
    };
    let app = spawn_app_shipping_to(&odoo, |_| {}).await;
    // No secret: the authenticator compares with None and denies, as the module would
    // for an unknown secret. The call is answered and its log kept for later.
    assert_eq!(call_with_token(&odoo, &app, "s3cr3t-token").await.0, 403);
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
        .env("TOWERHOOK_ODOO_DB", &odoo.database)
        .env("TOWERHOOK_ODOO_LOGIN", &odoo.login)
        .env("TOWERHOOK_ODOO_API_KEY", &odoo.secret)
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
    let Some(odoo) = odoo_with_secret(Addon::Ready).await else {
        return;
    };
    let Some(user) = odoo.plain_user().await else {
        return;
    };
    let plain = OdooClient::connect(&client_settings(
        &odoo.url,
        &odoo.database,
        &user.login,
        &user.secret,
    ))
    .await
    .unwrap();
    for call in [
        Call::model("cx.tower.webhook", "towerhook_secret_values")
            .arg(json!([]))
            .arg(json!([])),
        Call::model("cx.tower.webhook.log", "towerhook_create_logs").arg(json!([])),
    ] {
        let error = plain.execute(&call).await.unwrap_err();
        assert_eq!(error.kind(), Some(ErrorKind::AccessError), "{error}");
    }
}

#[tokio::test]
async fn a_service_user_outside_the_addons_group_gets_no_secrets() {
    let Some(odoo) = odoo_with_secret(Addon::NotInGroup).await else {
        return;
    };
    // The service user (Root, but not in the addon's group) is refused.
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
    assert_eq!(call_with_token(&odoo, &app, "s3cr3t-token").await.0, 403);
}

#[tokio::test]
async fn logs_created_through_the_addon_carry_their_request_id_once() {
    let Some(odoo) = odoo_with_secret(Addon::Ready).await else {
        return;
    };
    let app = spawn_app_shipping_to(&odoo, |_| {}).await;
    let response = reqwest::Client::new()
        .post(app.url(&odoo.name("guarded")))
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
    assert_eq!(log["endpoint"], json!(odoo.name("guarded")));
    assert_eq!(log["http_status"], json!(200));
    assert_eq!(log["result_message"], json!("token *****"));
    let headers: Value = serde_json::from_str(log["request_headers"].as_str().unwrap()).unwrap();
    assert_eq!(headers["X-Token"], json!("*****"));
    assert_eq!(headers["X-Extra"], json!("shown"));
    // No access rule was needed: the stock read-only rule stands.
    if let Some(emulator) = odoo.emulator_only("reads the call journal") {
        let access = emulator
            .journal("model=cx.tower.webhook.log&method=create")
            .await;
        assert!(access.is_empty(), "plain create was used: {access:?}");
    }

    // Re-sending the same records (a crash between Odoo's answer and the local mark)
    // creates nothing new.
    let again = odoo
        .client
        .execute(
            &Call::model("cx.tower.webhook.log", "towerhook_create_logs").arg(json!([{
                "endpoint": odoo.name("guarded"), "request_method": "post",
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
    let Some(odoo) = odoo_with_secret(Addon::NotInGroup).await else {
        return;
    };
    odoo.grant_log_create().await;
    // Through the addon: no access rule on the log model was created.
    let rules = odoo
        .client
        .execute(&Call::model("res.groups", "search_count").arg(json!([[
            "name",
            "=",
            towerhook::odoo::setup::GROUP_NAME
        ]])))
        .await
        .unwrap();
    assert_eq!(rules, json!(0));
    let app = spawn_app_shipping_to(&odoo, |_| {}).await;
    assert_eq!(call_with_token(&odoo, &app, "s3cr3t-token").await.0, 200);
    let logs = odoo.wait_for_logs(1, Duration::from_secs(10)).await;
    assert_eq!(logs.len(), 1);
}

/// One referenced secret without a value must not cost the others: the addon answers it as
/// `false`, which XML-RPC can carry (a `None` would fail the whole answer there), and the
/// snippet gets `None` for it only. JSON-2 exists from Odoo 19.0, where the addon does not
/// install.
#[tokio::test]
async fn a_secret_without_value_leaves_the_others_on_json_rpc_and_xml_rpc() {
    let Some(odoo) = odoo_with_secret(Addon::Ready).await else {
        return;
    };
    let code = format!(
        "result = {{'exit_code': 0, 'message': '%s %s' % (\
         #!cxtower.secret.{}!# == 's3cr3t-token', #!cxtower.secret.{}!# is None)}}",
        odoo.name("ci_token"),
        odoo.name("no_such_secret")
    );
    odoo.open_webhook("mixed_secrets", &code, 1).await;
    for protocol in [Protocol::JsonRpc, Protocol::XmlRpc] {
        let app = spawn_app_on(&odoo, |s| s.odoo_protocol = protocol).await;
        let response = reqwest::Client::new()
            .post(app.url(&odoo.name("mixed_secrets")))
            .body("{}")
            .send()
            .await
            .unwrap();
        let (status, _, message) = answer(response).await;
        assert_eq!(
            (status, message),
            (200, json!("True True")),
            "over {protocol:?}"
        );
    }
}
