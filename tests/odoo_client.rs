//! The Odoo client against the emulator (or a real Odoo), over each transport.

mod common;

use common::odoo::{
    ADMIN_KEY, ADMIN_LOGIN, DATABASE, DEMO_KEY, DEMO_LOGIN, Emulator, SERVICE_KEY, SERVICE_LOGIN,
    TestOdoo, client_settings,
};
use serde_json::{Value, json};
use towerhook::odoo::{Call, ErrorKind, OdooClient, OdooError, Protocol};

async fn connect(emulator: &Emulator, protocol: Protocol, login: &str, key: &str) -> OdooClient {
    let mut settings = client_settings(&emulator.url(), DATABASE, login, key);
    settings.protocol = protocol;
    OdooClient::connect(&settings).await.unwrap()
}

/// Every transport reads the same shapes and names Odoo's errors the same way.
async fn exercise(emulator: &Emulator, protocol: Protocol) {
    let client = connect(emulator, protocol, SERVICE_LOGIN, SERVICE_KEY).await;
    assert_eq!(client.protocol(), protocol);
    assert_eq!(client.session().uid, 4);

    // `create` answers an id, or (JSON-2, where it takes vals_list) a list of ids.
    let id = |created: Value| created.as_i64().or_else(|| created[0].as_i64()).unwrap();
    let authenticator = id(client
        .execute(
            &Call::model("cx.tower.webhook.authenticator", "create")
                .arg(json!({"name": "Open", "code": "result = {'allowed': True}"})),
        )
        .await
        .unwrap());
    let hook = json!(id(client
        .execute(&Call::model("cx.tower.webhook", "create").arg(json!({
            "name": "Hook", "endpoint": "hook", "authenticator_id": authenticator,
            "code": "pass", "active": false,
        })))
        .await
        .unwrap()));
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
    assert_eq!(rows[0]["authenticator_id"], json!([authenticator, "Open"]));
    assert_eq!(rows[0]["user_id"][0], json!(1));
    assert_eq!(rows[0]["active"], json!(false));
    assert_eq!(rows[0]["reference"], json!("hook"));
    let hidden = client
        .execute(&Call::model("cx.tower.webhook", "search_count").arg(json!([])))
        .await
        .unwrap();
    assert_eq!(hidden, json!(0));

    // The log model is read-only for Root: AccessError, with Odoo's message.
    let error = client
        .execute(&Call::model("cx.tower.webhook.log", "create").arg(json!({"endpoint": "x"})))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::AccessError), "{error}");
    assert!(
        error.to_string().contains("cx.tower.webhook.log"),
        "{error}"
    );

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
    let mut settings = client_settings(&emulator.url(), DATABASE, SERVICE_LOGIN, "wrong-key");
    settings.protocol = protocol;
    let error = OdooClient::connect(&settings).await.err().unwrap();
    assert!(matches!(error, OdooError::LoginRefused { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("\"towerhook\"") && text.contains(&emulator.url()),
        "{text}"
    );
}

#[tokio::test]
async fn json_rpc() {
    let emulator = Emulator::start("17.0");
    exercise(&emulator, Protocol::JsonRpc).await;
}

#[tokio::test]
async fn xml_rpc() {
    let emulator = Emulator::start("16.0");
    exercise(&emulator, Protocol::XmlRpc).await;
}

#[tokio::test]
async fn json_2() {
    let emulator = Emulator::start("19.0");
    exercise(&emulator, Protocol::Json2).await;
}

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
    let emulator = Emulator::start("17.0");
    let admin = connect(&emulator, Protocol::JsonRpc, ADMIN_LOGIN, ADMIN_KEY).await;
    let demo = admin.login(DEMO_LOGIN, DEMO_KEY).await.unwrap();
    assert_eq!(demo.uid, 5);
    let error = admin
        .execute_as(
            &demo,
            &Call::model("cx.tower.webhook", "search_read")
                .arg(json!([]))
                .arg(json!(["name"])),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::AccessError), "{error}");
    let journal = emulator.journal("model=cx.tower.webhook").await;
    assert_eq!(journal.last().unwrap()["uid"], json!(5));
}

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
