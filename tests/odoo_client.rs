//! The Odoo client over each transport, against the emulator or a real Odoo (README,
//! "Testing against a real Odoo"); and the cleanup of what a test creates there.

mod common;

use common::odoo::{
    DATABASE, Emulator, SERVICE_KEY, SERVICE_LOGIN, TestOdoo, client_settings,
    spawn_app_shipping_to,
};
use serde_json::{Value, json};
use towerhook::odoo::{Call, ErrorKind, OdooClient, OdooError, Protocol};

async fn connect(emulator: &Emulator, protocol: Protocol, login: &str, key: &str) -> OdooClient {
    let mut settings = client_settings(&emulator.url(), DATABASE, login, key);
    settings.protocol = protocol;
    OdooClient::connect(&settings).await.unwrap()
}

/// Every transport reads the same shapes and names Odoo's errors the same way.
async fn exercise(odoo: &TestOdoo, protocol: Protocol) {
    let mut settings = client_settings(&odoo.url, &odoo.database, &odoo.login, &odoo.secret);
    settings.protocol = protocol;
    let client = OdooClient::connect(&settings).await.unwrap();
    assert_eq!(client.protocol(), protocol);
    assert_eq!(client.session().uid, odoo.uid());
    if odoo.emulator.is_some() {
        assert_eq!(odoo.uid(), 4, "the emulator's seeded service user");
    }

    // `create` answers an id, or (JSON-2, where it takes vals_list) a list of ids.
    let id = |created: Value| created.as_i64().or_else(|| created[0].as_i64()).unwrap();
    let open = odoo.names().label("Open");
    let authenticator = id(client
        .execute(
            &Call::model("cx.tower.webhook.authenticator", "create").arg(json!({
                "name": open, "reference": odoo.name("open"),
                "code": "result = {'allowed': True}",
            })),
        )
        .await
        .unwrap());
    odoo.track("cx.tower.webhook.authenticator", &[authenticator]);
    let hook = json!(id(client
        .execute(&Call::model("cx.tower.webhook", "create").arg(json!({
            "name": odoo.names().label("Hook"), "endpoint": odoo.name("hook"),
            "authenticator_id": authenticator, "code": "pass", "active": false,
        })))
        .await
        .unwrap()));
    odoo.track("cx.tower.webhook", &[hook.as_i64().unwrap()]);
    // Inactive records are found with active_test off; many2one comes as [id, name].
    let rows = client
        .execute(
            &Call::model("cx.tower.webhook", "search_read")
                .arg(json!([["id", "=", hook]]))
                .arg(json!([
                    "authenticator_id",
                    "user_id",
                    "active",
                    "reference"
                ]))
                .kwarg("context", json!({"active_test": false})),
        )
        .await
        .unwrap();
    assert_eq!(rows[0]["authenticator_id"], json!([authenticator, open]));
    assert_eq!(rows[0]["user_id"][0], json!(1));
    assert_eq!(rows[0]["active"], json!(false));
    // Generated from the name, as Cetmix Tower does.
    assert_eq!(rows[0]["reference"], json!(format!("{}_hook", odoo.prefix)));
    let hidden = client
        .execute(&Call::model("cx.tower.webhook", "search_count").arg(json!([["id", "=", hook]])))
        .await
        .unwrap();
    assert_eq!(hidden, json!(0));

    // A refused right: AccessError, with Odoo's message naming the model. The log model is
    // read-only for Root, unless `towerhook odoo-setup` granted create on it (a real Odoo
    // without the addon); then config parameters (Settings only) are refused.
    let (model, refused) = if odoo.may_create_logs().await {
        (
            "ir.config_parameter",
            Call::model("ir.config_parameter", "search_read").arg(json!([])),
        )
    } else {
        (
            "cx.tower.webhook.log",
            Call::model("cx.tower.webhook.log", "create").arg(json!({"endpoint": "x"})),
        )
    };
    if odoo.emulator.is_some() {
        assert_eq!(model, "cx.tower.webhook.log", "the stock rights");
    }
    let error = client.execute(&refused).await.unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::AccessError), "{error}");
    assert!(error.to_string().contains(model), "{error}");

    // A deleted record: MissingError (XML-RPC only knows it as a user error).
    client
        .execute(&Call::on(
            "cx.tower.webhook",
            "unlink",
            vec![hook.as_i64().unwrap()],
        ))
        .await
        .unwrap();
    let error = client
        .execute(
            &Call::on("cx.tower.webhook", "write", vec![hook.as_i64().unwrap()])
                .arg(json!({"name": "x"})),
        )
        .await
        .unwrap_err();
    let expected = if protocol == Protocol::XmlRpc {
        ErrorKind::UserError
    } else {
        ErrorKind::MissingError
    };
    assert_eq!(error.kind(), Some(expected), "{error}");

    // Private methods are refused remotely.
    let error = client
        .execute(&Call::model("res.partner", "_private"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::AccessError), "{error}");

    // A wrong key: a login refusal naming the login, never retried into a lockout.
    let mut settings = client_settings(&odoo.url, &odoo.database, &odoo.login, "wrong-key");
    settings.protocol = protocol;
    let error = OdooClient::connect(&settings).await.err().unwrap();
    assert!(matches!(error, OdooError::LoginRefused { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.contains(&format!("{:?}", odoo.login)) && text.contains(&odoo.url),
        "{text}"
    );
}

#[tokio::test]
async fn json_rpc() {
    let odoo = TestOdoo::start_version("17.0").await;
    exercise(&odoo, Protocol::JsonRpc).await;
}

#[tokio::test]
async fn xml_rpc() {
    let odoo = TestOdoo::start_version("16.0").await;
    exercise(&odoo, Protocol::XmlRpc).await;
}

#[tokio::test]
async fn json_2() {
    let odoo = TestOdoo::start_version("19.0").await;
    if odoo.client.version().major.is_some_and(|major| major < 19) {
        eprintln!("skipped: JSON-2 exists from Odoo 19.0 on");
        return;
    }
    exercise(&odoo, Protocol::Json2).await;
}

/// Emulators of several versions: runs on the emulator also when a real Odoo is configured.
#[tokio::test]
async fn auto_picks_json_2_from_odoo_19_and_json_rpc_before() {
    for (version, expected) in [
        ("16.0", Protocol::JsonRpc),
        ("18.0", Protocol::JsonRpc),
        ("19.0", Protocol::Json2),
    ] {
        let emulator = Emulator::start(version);
        let client = connect(&emulator, Protocol::Auto, SERVICE_LOGIN, SERVICE_KEY).await;
        assert_eq!(client.protocol(), expected, "{version}");
        assert_eq!(client.version().major, Some(version[..2].parse().unwrap()));
    }
}

#[tokio::test]
async fn each_user_calls_with_its_own_rights() {
    let odoo = TestOdoo::start().await;
    let Some(user) = odoo.plain_user().await else {
        return;
    };
    // The service user's client, calling as the plain user: refused what Root may read.
    let plain = odoo.client.login(&user.login, &user.secret).await.unwrap();
    assert_eq!(plain.uid, user.uid);
    let error = odoo
        .client
        .execute_as(
            &plain,
            &Call::model("cx.tower.webhook", "search_read")
                .arg(json!([]))
                .arg(json!(["name"])),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::AccessError), "{error}");
    let Some(emulator) = odoo.emulator_only("reads the call journal") else {
        return;
    };
    let journal = emulator.journal("model=cx.tower.webhook").await;
    assert_eq!(journal.last().unwrap()["uid"], json!(user.uid));
}

/// Injected proxy failures, the call journal and an outage: runs on the emulator also when a
/// real Odoo is configured.
#[tokio::test]
async fn transport_failures_are_retried_and_odoo_errors_are_not() {
    let emulator = Emulator::start("17.0");
    let client = connect(&emulator, Protocol::JsonRpc, SERVICE_LOGIN, SERVICE_KEY).await;
    // A proxy's 502 page once: retried, then the call succeeds.
    emulator
        .control(
            "POST",
            "/fail",
            Some(json!({"kind": "html", "status": 502, "model": "res.partner", "times": 1})),
        )
        .await;
    let count = client
        .execute(&Call::model("res.partner", "search_count").arg(json!([])))
        .await
        .unwrap();
    assert!(count.as_i64().unwrap() > 0);
    // An Odoo error is final: one attempt only.
    emulator.control("DELETE", "/journal", None).await;
    let error = client
        .execute(&Call::model("res.partner", "search_read").arg(json!([["nope", "=", 1]])))
        .await
        .unwrap_err();
    assert_eq!(error.server().unwrap().name, "builtins.ValueError");
    assert_eq!(emulator.journal("model=res.partner").await.len(), 1);
    // Down: the error says which URL could not be reached.
    emulator.down().await;
    let error = client
        .execute(&Call::model("res.partner", "search_count").arg(json!([])))
        .await
        .unwrap_err();
    assert!(matches!(error, OdooError::Unreachable { .. }), "{error}");
    assert!(error.to_string().contains(&emulator.url()), "{error}");
}

#[tokio::test]
async fn a_real_odoo_or_the_emulator_answers_the_basics() {
    let odoo = TestOdoo::start().await;
    let count = odoo
        .client
        .execute(&Call::model("cx.tower.webhook", "search_count").arg(json!([])))
        .await
        .unwrap();
    assert!(matches!(count, Value::Number(_)));
}

/// What this test made, found by its prefix: webhooks (by reference or endpoint),
/// authenticators, keys, key values, partners, and logs of its webhooks.
async fn left_behind(client: &OdooClient, prefix: &str) -> Vec<(String, Value)> {
    let like = format!("{prefix}%");
    let mut found = Vec::new();
    for (model, domain) in [
        (
            "cx.tower.webhook",
            json!([
                "|",
                ["reference", "=like", like],
                ["endpoint", "=like", like]
            ]),
        ),
        (
            "cx.tower.webhook.authenticator",
            json!([["reference", "=like", like]]),
        ),
        ("cx.tower.key", json!([["reference", "=like", like]])),
        (
            "cx.tower.key.value",
            json!([["key_id.reference", "=like", like]]),
        ),
        ("res.partner", json!([["name", "=like", like]])),
        (
            "cx.tower.webhook.log",
            json!([["endpoint", "=like", like], ["webhook_id", "!=", false]]),
        ),
    ] {
        let ids = client
            .execute(
                &Call::model(model, "search")
                    .arg(domain)
                    .kwarg("context", json!({"active_test": false})),
            )
            .await
            .unwrap();
        if ids.as_array().is_some_and(|ids| !ids.is_empty()) {
            found.push((model.to_string(), ids));
        }
    }
    found
}

/// Definitions, a secret, a partner and a shipped log: everything a test typically makes.
async fn make_a_bit_of_everything(odoo: &TestOdoo) {
    odoo.open_webhook("kept", "result = {'exit_code': 0, 'message': 'ok'}", 1)
        .await;
    odoo.load_yaml(
        "- {cetmix_tower_model: webhook_authenticator, reference: open, name: Open, code: \"result = {'allowed': True}\"}\n\
         - {cetmix_tower_model: webhook, reference: hook, name: Hook, authenticator_id: open, endpoint: hook, active: false, code: pass}\n",
    )
    .await;
    let key = odoo
        .create(
            "cx.tower.key",
            json!({"name": odoo.names().label("Key"), "reference": odoo.name("key"), "key_type": "s"}),
        )
        .await;
    odoo.create(
        "cx.tower.key.value",
        json!({"key_id": key, "secret_value": "v"}),
    )
    .await;
    odoo.create(
        "res.partner",
        json!({"name": odoo.names().label("Partner")}),
    )
    .await;
    odoo.grant_log_create().await;
    let app = spawn_app_shipping_to(odoo, |_| {}).await;
    let status = reqwest::Client::new()
        .post(app.url(&odoo.name("kept")))
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
    assert_eq!(
        odoo.wait_for_logs(1, std::time::Duration::from_secs(10))
            .await
            .len(),
        1
    );
    let made = left_behind(&odoo.client, &odoo.prefix).await;
    assert_eq!(made.len(), 6, "not everything was made: {made:?}");
}

#[tokio::test]
async fn cleanup_removes_what_a_test_created() {
    let odoo = TestOdoo::start().await;
    let other = TestOdoo::start().await;
    assert_ne!(odoo.prefix, other.prefix, "two tests, two prefixes");
    make_a_bit_of_everything(&odoo).await;
    assert_eq!(odoo.cleanup().await, Vec::<String>::new());
    assert_eq!(left_behind(&odoo.client, &odoo.prefix).await, vec![]);
}

#[tokio::test]
async fn a_failing_test_still_removes_what_it_created() {
    let mut odoo = TestOdoo::start().await;
    make_a_bit_of_everything(&odoo).await;
    let settings = client_settings(&odoo.url, &odoo.database, &odoo.login, &odoo.secret);
    let prefix = odoo.prefix.clone();
    // Keep the emulator past the test's end, to look at what is left.
    let emulator = odoo.emulator.take();
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _odoo = odoo;
        panic!("a test failing after it created records");
    }));
    assert!(failed.is_err());
    let client = OdooClient::connect(&settings).await.unwrap();
    assert_eq!(left_behind(&client, &prefix).await, vec![]);
    drop(emulator);
}
