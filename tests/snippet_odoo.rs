//! The Odoo objects in snippets (`env`, `user`, `uid`, `tower`, ...) over RPC, as the
//! webhook's run-as user, against the emulator or a real Odoo (README, "Testing against a
//! real Odoo": the service user needs "Contact Creation", the run-as tests a plain user).

mod common;

use std::time::{Duration, Instant};

use common::odoo::{TestOdoo, spawn_app_on};
use common::{TestApp, answer, spawn_app};
use serde_json::{Value, json};
use towerhook::odoo::Call;

async fn call(app: &TestApp, endpoint: &str, payload: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(app.url(endpoint))
        .body(payload.to_string())
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    (status, message)
}

const WORKFLOW: &str = r#"
partners = env["res.partner"].search([("name", "ilike", "admin")])
created = env["res.partner"].create({"name": payload["name"], "comment": "from a webhook"})
created.write({"comment": "updated"})
country = env.ref("base.be")
created.write({"country_id": country.id})
is_user = user.has_group("base.group_user")
result = {
    "exit_code": 0,
    "message": "%s|%s|%s|%s|%s|%s" % (
        len(partners), created.name, created.comment, created.country_id.name, is_user, uid,
    ),
}
"#;

#[tokio::test]
async fn a_snippet_searches_creates_writes_calls_and_reads_a_many2one() {
    let odoo = TestOdoo::start().await;
    odoo.open_webhook("workflow", WORKFLOW, 1).await;
    let partner = odoo.names().label("Webhook Partner");
    // What the service user finds itself (a real database holds other partners).
    let admins = odoo
        .client
        .execute(
            &Call::model("res.partner", "search_count").arg(json!([["name", "ilike", "admin"]])),
        )
        .await
        .unwrap();
    let app = spawn_app_on(&odoo, |_| {}).await;
    let (status, message) = call(&app, &odoo.name("workflow"), json!({"name": partner})).await;
    let created = odoo
        .search("res.partner", json!([["name", "=", partner]]))
        .await;
    odoo.track("res.partner", &created);
    assert_eq!(status, 200, "{message}");
    // `uid` names the user whose rights the code uses: the superuser runs as the service
    // user (no administrator configured for it).
    let service_uid = odoo.client.session().uid;
    assert_eq!(
        message,
        json!(format!(
            "{admins}|{partner}|updated|Belgium|True|{service_uid}"
        )),
        "the admin partners; the record as written; its country through the many2one; \
         the service user's uid"
    );
    let rows = odoo
        .client
        .execute(
            &Call::model("res.partner", "read")
                .arg(json!(created))
                .arg(json!(["comment", "create_uid"])),
        )
        .await
        .unwrap();
    assert_eq!(
        rows[0]["comment"].as_str().map(|c| c.contains("updated")),
        Some(true)
    );
    // The superuser (the module's default "Run as User") runs as the service user.
    assert_eq!(rows[0]["create_uid"][0], json!(odoo.uid()));
    let Some(emulator) = odoo.emulator_only("reads the call journal") else {
        return;
    };
    let calls = emulator.journal("model=res.partner").await;
    assert!(!calls.is_empty());
    assert!(
        calls.iter().all(|c| c["login"] == json!("towerhook")),
        "{calls:?}"
    );
}

#[tokio::test]
async fn odoo_errors_reach_snippets_with_their_names() {
    let odoo = TestOdoo::start().await;
    let caught = r#"
try:
    env["cx.tower.vault"].search([])
    result = {"exit_code": 0, "message": "read the vault?!"}
except AccessError as error:
    result = {"exit_code": 0, "message": "refused: %s" % ("vault" in str(error))}
"#;
    odoo.open_webhook("caught", caught, 1).await;
    odoo.open_webhook("uncaught", "env['cx.tower.vault'].search([])", 1)
        .await;
    odoo.open_webhook(
        "missing",
        "env['res.partner'].browse([987654]).write({'name': 'x'})",
        1,
    )
    .await;
    let app = spawn_app_on(&odoo, |_| {}).await;
    assert_eq!(
        call(&app, &odoo.name("caught"), json!({})).await,
        (200, json!("refused: True"))
    );
    let (status, message) = call(&app, &odoo.name("uncaught"), json!({})).await;
    assert_eq!(status, 500);
    let message = message.as_str().unwrap();
    assert!(
        message.starts_with("Webhook code execution error: ") && message.contains("cx.tower.vault"),
        "{message}"
    );
    assert!(
        !message.contains("AccessError("),
        "Odoo's text passes through: {message}"
    );
    let (status, message) = call(&app, &odoo.name("missing"), json!({})).await;
    assert_eq!(status, 500);
    assert!(
        message.as_str().unwrap().contains("Record does not exist"),
        "{message}"
    );
}

#[tokio::test]
async fn code_runs_as_the_mapped_run_as_user() {
    let odoo = TestOdoo::start().await;
    // A plain internal user: it may read partners, not create them (that needs "Contact
    // Creation"), and not read webhooks (Root only). Odoo's refusal reaches the snippet
    // as AccessError with Odoo's text.
    let Some(user) = odoo.plain_user().await else {
        return;
    };
    let code = r#"
names = env["res.partner"].search([], limit=1).mapped("name")
try:
    env["cx.tower.webhook"].search([])
    hooks = "readable"
except AccessError:
    hooks = "refused"
try:
    env["res.partner"].create({"name": "never created"})
    partners = "created"
except AccessError as error:
    partners = "refused" if "Extra Rights/Contact Creation" in str(error) else str(error)
result = {"exit_code": 0, "message": "%s %s %s %s %s" % (
    uid, user.login, bool(names), hooks, partners)}
"#;
    odoo.open_webhook("as_plain_user", code, user.uid).await;
    let app = spawn_app_on(&odoo, |s| {
        s.run_as_users
            .insert(user.login.clone(), user.secret.clone().into());
    })
    .await;
    assert_eq!(
        call(&app, &odoo.name("as_plain_user"), json!({})).await,
        (
            200,
            json!(format!("{} {} True refused refused", user.uid, user.login))
        )
    );
    // The log records the run-as user.
    assert_eq!(app.last_log().user_id, Some(user.uid));
    let Some(emulator) = odoo.emulator_only("reads the call journal") else {
        return;
    };
    let calls = emulator.journal("model=res.partner").await;
    assert!(!calls.is_empty());
    assert!(
        calls.iter().all(|c| c["uid"] == json!(user.uid)),
        "{calls:?}"
    );
}

#[tokio::test]
async fn an_unmapped_run_as_user_fails_under_strict_and_runs_as_service_otherwise() {
    let odoo = TestOdoo::start().await;
    let Some(user) = odoo.plain_user().await else {
        return;
    };
    let code = "result = {'exit_code': 0, 'message': '%s' % env['res.partner'].search_count([])}";
    odoo.open_webhook("unmapped", code, user.uid).await;
    odoo.open_webhook(
        "plain",
        "result = {'exit_code': 0, 'message': 'no odoo'}",
        user.uid,
    )
    .await;
    let strict = spawn_app_on(&odoo, |_| {}).await;
    let (status, message) = call(&strict, &odoo.name("unmapped"), json!({})).await;
    assert_eq!(status, 500);
    let message = message.as_str().unwrap();
    assert!(
        message.contains(&format!("Odoo user {} ({})", user.uid, user.login)),
        "{message}"
    );
    assert!(message.contains("run_as_users"), "{message}");
    // Code that does not use Odoo objects needs no credentials.
    assert_eq!(
        call(&strict, &odoo.name("plain"), json!({})).await,
        (200, json!("no odoo"))
    );

    let service = spawn_app_on(&odoo, |s| {
        s.run_as_policy = towerhook::configuration::RunAsPolicy::Service;
    })
    .await;
    let (status, message) = call(&service, &odoo.name("unmapped"), json!({})).await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(service.last_log().user_id, Some(user.uid));
}

#[tokio::test]
async fn snippets_waiting_on_a_slow_odoo_wait_together() {
    let odoo = TestOdoo::start().await;
    let Some(emulator) = odoo.emulator_only("stalls Odoo") else {
        return;
    };
    odoo.open_webhook(
        "slow_rpc",
        "result = {'exit_code': 0, 'message': '%s' % env['res.country'].search_count([])}",
        1,
    )
    .await;
    let app = spawn_app_on(&odoo, |s| s.python_threads = 4).await;
    emulator
        .control(
            "POST",
            "/stall",
            Some(json!({"seconds": 1, "model": "res.country", "method": "search_count"})),
        )
        .await;
    let started = Instant::now();
    let slow_rpc = odoo.name("slow_rpc");
    let calls = (0..4).map(|_| call(&app, &slow_rpc, json!({})));
    for (status, message) in futures_util::future::join_all(calls).await {
        assert_eq!(status, 200, "{message}");
    }
    let took = started.elapsed();
    // One call takes a second; four serialised would take four.
    assert!(took < Duration::from_millis(2500), "4 calls took {took:?}");
}

#[tokio::test]
async fn without_odoo_the_names_say_so() {
    let app = spawn_app(
        r#"
- {cetmix_tower_model: webhook_authenticator, reference: open, name: Open, code: "result = {'allowed': True}"}
- {cetmix_tower_model: webhook, reference: env, name: Env, authenticator_id: open, endpoint: env,
   code: "env['res.partner'].search([])"}
"#,
    )
    .await;
    let (status, message) = call(&app, "env", json!({})).await;
    assert_eq!(status, 500);
    let message = message.as_str().unwrap();
    assert!(message.contains("env is not available"), "{message}");
    assert!(message.contains("without an Odoo connection"), "{message}");
}
