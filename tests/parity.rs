//! What comparing towerhook with the real module on a real Odoo 18 found: each test shows
//! one difference fixed (issue "Match a real Odoo 18").

mod common;

use std::time::{Duration, Instant};

use common::odoo::{TestOdoo, spawn_app_on, spawn_app_shipping_to};
use common::{TestApp, answer};
use serde_json::{Value, json};

async fn post(app: &TestApp, endpoint: &str, body: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(app.url(endpoint))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    (status, message)
}

async fn readiness(app: &TestApp) -> (u16, Value) {
    let response = reqwest::get(format!("{}/readyz", app.base()))
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Item 1: an authenticator that uses the Odoo objects runs (it used to panic its snippet
/// thread); after more such calls than there are snippet threads, every webhook still
/// answers and the service stays ready.
#[tokio::test]
async fn authenticators_may_use_the_odoo_objects() {
    let odoo = TestOdoo::start().await;
    let authenticator = odoo
        .create(
            "cx.tower.webhook.authenticator",
            json!({
                "name": odoo.name("Uses uid"),
                "code": "result = {'allowed': uid > 0 and bool(user.login), \
                         'message': 'no user'}",
            }),
        )
        .await;
    odoo.create(
        "cx.tower.webhook",
        json!({
            "name": odoo.name("with odoo auth"), "endpoint": odoo.name("auth/odoo"),
            "authenticator_id": authenticator,
            "code": "result = {'exit_code': 0, 'message': 'in'}",
        }),
    )
    .await;
    odoo.open_webhook(
        "auth/plain",
        "result = {'exit_code': 0, 'message': 'plain'}",
        1,
    )
    .await;
    let app = spawn_app_on(&odoo, |settings| settings.python_threads = 2).await;
    for _ in 0..4 {
        let (status, message) = post(&app, &odoo.name("auth/odoo"), "{}").await;
        assert_eq!((status, message), (200, json!("in")));
    }
    let (status, message) = tokio::time::timeout(
        Duration::from_secs(10),
        post(&app, &odoo.name("auth/plain"), "{}"),
    )
    .await
    .expect("a trivial webhook hangs");
    assert_eq!((status, message), (200, json!("plain")));
    let (status, body) = readiness(&app).await;
    assert_eq!(status, 200, "{body}");
}

/// Item 2: with logs shipped to Odoo, RPC from snippets never waits on a connection that
/// belongs to the shipper (it used to stall until the Odoo timeout, in bursts).
#[tokio::test]
async fn snippet_rpc_does_not_stall_behind_log_shipping() {
    let odoo = TestOdoo::start().await;
    odoo.grant_log_create().await;
    odoo.open_webhook(
        "rpc/count",
        "result = {'exit_code': 0, 'message': str(env['res.partner'].search_count([]))}",
        1,
    )
    .await;
    let app = spawn_app_shipping_to(&odoo, |settings| {
        settings.odoo_timeout_secs = 4.0;
        settings.outbox_batch_age_ms = 10;
    })
    .await;
    let mut slowest = Duration::ZERO;
    for round in 0..60 {
        let started = Instant::now();
        let (status, message) = post(&app, &odoo.name("rpc/count"), "{}").await;
        assert_eq!(status, 200, "call {round}: {message}");
        slowest = slowest.max(started.elapsed());
        // Let the shipper send this call's record before the next call, so that its
        // connections come and go between the calls' RPCs.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(
        slowest < Duration::from_secs(2),
        "a call waited {slowest:?}: its RPC stalled on a connection of another runtime"
    );
}

const OPEN: &str = "- {cetmix_tower_model: webhook_authenticator, reference: open, name: Open, \
                    code: \"result = {'allowed': True}\"}\n";

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

/// Item 7: Odoo's routes do not use strict slashes: a trailing slash runs the webhook.
#[tokio::test]
async fn a_trailing_slash_reaches_the_webhook() {
    let app = common::spawn_app(&webhooks(&[
        ("hook", "result = {'exit_code': 0, 'message': 'hook ran'}"),
        (
            "deep/hook",
            "result = {'exit_code': 0, 'message': 'deep ran'}",
        ),
    ]))
    .await;
    assert_eq!(post(&app, "hook/", "{}").await, (200, json!("hook ran")));
    assert_eq!(app.last_log().endpoint, "hook");
    assert_eq!(app.last_log().webhook_reference.as_deref(), Some("hook"));
    assert_eq!(
        post(&app, "deep/hook/", "{}").await,
        (200, json!("deep ran"))
    );
}

/// Item 8: snippets see headers in arrival order, as werkzeug keeps them; a name with `_`
/// arrives with dashes (kept, not dropped), but never joins the proxy chain of the IP check.
#[tokio::test]
async fn headers_keep_their_arrival_order() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = common::spawn_app(&webhooks(&[(
        "order",
        "result = {'exit_code': 0, 'message': '|'.join('%s=%s' % kv for kv in headers.items())}",
    )]))
    .await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    stream
        .write_all(
            b"POST /cetmix_tower_webhooks/order HTTP/1.1\r\n\
              X-Zulu: z\r\n\
              Host: localhost\r\n\
              X_Under_Score: u\r\n\
              Accept: */*\r\n\
              x-alpha: a1\r\n\
              Content-Length: 2\r\n\
              X-Alpha: a2\r\n\
              Connection: close\r\n\r\n{}",
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    let message: Value = serde_json::from_str::<Value>(body).unwrap()["message"].clone();
    assert_eq!(
        message,
        json!(
            "X-Zulu=z|Host=localhost|X-Under-Score=u|Accept=*/*|X-Alpha=a1,a2|\
             Content-Length=2|Connection=close"
        )
    );
    // The stored headers keep the order too (towerhook's request id comes last).
    let stored: Vec<String> = app
        .last_log()
        .request_headers
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        stored,
        [
            "X-Zulu",
            "Host",
            "X-Under-Score",
            "Accept",
            "X-Alpha",
            "Content-Length",
            "Connection",
            "X-Towerhook-Request-Id"
        ]
    );
}

#[tokio::test]
async fn an_underscored_forwarded_for_does_not_reach_the_ip_check() {
    let yaml = r#"
- {cetmix_tower_model: webhook_authenticator, reference: lan, name: LAN, code: "result = {'allowed': True}",
   allowed_ip_addresses: 198.51.100.0/24, trusted_proxy_ips: 127.0.0.1}
- {cetmix_tower_model: webhook, reference: guarded, name: Guarded, authenticator_id: lan, endpoint: guarded,
   code: "result = {'exit_code': 0, 'message': headers.get('X-Forwarded-For')}"}
"#;
    let app = common::spawn_app(yaml).await;
    let client = reqwest::Client::new();
    // The proxy vouches for 203.0.113.9; the client slipped in an underscored variant.
    let response = client
        .post(app.url("guarded"))
        .header("X-Forwarded-For", "203.0.113.9")
        .header("X_Forwarded_For", "198.51.100.7")
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    assert_eq!((status, message), (403, json!("Address not allowed")));
    // Through the proxy with the real header only, the same client address is allowed,
    // and the snippet sees what werkzeug would give it.
    let response = client
        .post(app.url("guarded"))
        .header("X-Forwarded-For", "198.51.100.7")
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    assert_eq!((status, message), (200, json!("198.51.100.7")));
}

/// Item 9: naive times are UTC in snippets, whatever the host's time zone.
#[tokio::test]
async fn snippets_see_utc_on_any_host() {
    let definitions = tempfile::tempdir().unwrap();
    std::fs::write(
        definitions.path().join("hooks.yaml"),
        webhooks(&[(
            "clock",
            "now = datetime.datetime.now()\nutc = datetime.datetime.utcnow()\n\
             result = {'exit_code': 0, 'message': '%d|%d' % (round((now - utc).total_seconds()), \
             datetime.datetime.fromtimestamp(0).hour)}",
        )]),
    )
    .unwrap();
    let yaml_dir = definitions.path().to_str().unwrap();
    for zone in ["Asia/Kolkata", "America/New_York"] {
        let server = common::BinaryServer::start(&[
            ("TZ", zone),
            ("TOWERHOOK_YAML_DIR", yaml_dir),
            (
                "TOWERHOOK_PYTHON_PACKAGES_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/.python-packages"),
            ),
        ]);
        let response = reqwest::Client::new()
            .post(server.url("clock"))
            .body("{}")
            .send()
            .await
            .unwrap();
        let (status, _, message) = answer(response).await;
        assert_eq!((status, message), (200, json!("0|0")), "host zone {zone}");
    }
}

/// Item 12: an invalid definitions file is not a gateway error: 422 with the problems.
#[tokio::test]
async fn reloading_invalid_yaml_answers_422_with_the_problems() {
    let app = common::spawn_app_with(
        &webhooks(&[("kept", "result = {'exit_code': 0, 'message': 'kept'}")]),
        |settings| settings.admin_token = Some("reload-token".into()),
    )
    .await;
    std::fs::write(
        app.yaml_dir.path().join("definitions.yaml"),
        "- {cetmix_tower_model: webhook, reference: broken, name: Broken, endpoint: broken}\n",
    )
    .unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/admin/reload", app.base()))
        .bearer_auth("reload-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let body: Value = response.json().await.unwrap();
    let problems = body["problems"].as_array().expect("a list of problems");
    assert!(
        problems
            .iter()
            .any(|p| p.as_str().unwrap().contains("broken")),
        "{body}"
    );
    // The previous definitions stay in service.
    assert_eq!(post(&app, "kept", "{}").await, (200, json!("kept")));
}

/// A message with a lone surrogate is answered as the module's json.dumps writes it,
/// not turned into an internal error.
#[tokio::test]
async fn a_message_with_a_lone_surrogate_is_answered() {
    let app = common::spawn_app(&webhooks(&[(
        "surrogate",
        "result = {'exit_code': 0, 'message': 'a' + chr(0xd800) + 'b'}",
    )]))
    .await;
    let response = reqwest::Client::new()
        .post(app.url("surrogate"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"message": "a\ud800b"}"#);
    assert_eq!(app.last_log().result_message.as_deref(), Some("a\u{fffd}b"));
}

/// Item 13: while the disk refuses records, the store holds them in memory up to the
/// outbox bound; beyond it new calls are refused (503), and every accepted call's record
/// arrives once the disk takes writes again.
#[tokio::test]
async fn records_the_disk_refuses_are_held_and_new_calls_refused_beyond_the_bound() {
    let app = common::spawn_app_with(
        &webhooks(&[("held", "result = {'exit_code': 0, 'message': 'ok'}")]),
        |settings| settings.outbox_max_records = 3,
    )
    .await;
    let blocker = rusqlite::Connection::open(app.log_path()).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let client = reqwest::Client::new();
    let calls = (0..4).map(|n| {
        client
            .post(app.url("held"))
            .body(format!("{{\"n\": {n}}}"))
            .send()
    });
    for response in futures_util::future::join_all(calls).await {
        assert_eq!(response.unwrap().status().as_u16(), 200);
    }
    let refused = client
        .post(app.url("held"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.logs().len() < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut seen: Vec<i64> = app
        .logs()
        .iter()
        .map(|log| log.request_payload.as_ref().unwrap()["n"].as_i64().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, [0, 1, 2, 3], "every accepted call's record, once");
    // Once committed, calls are accepted again.
    assert_eq!(post(&app, "held", "{}").await.0, 200);
}

/// Item 3: one user's slow login does not hold up the RPC of another run-as user.
#[tokio::test]
async fn a_slow_login_blocks_only_its_own_user() {
    let odoo = TestOdoo::start().await;
    let Some(emulator) = odoo.emulator() else {
        return;
    };
    let code = "result = {'exit_code': 0, 'message': user.login}";
    odoo.open_webhook("as/demo", code, 5).await;
    odoo.open_webhook("as/admin", code, 2).await;
    let app = spawn_app_on(&odoo, |settings| {
        settings
            .run_as_users
            .insert("demo".into(), common::odoo::DEMO_KEY.into());
        settings
            .run_as_users
            .insert("admin".into(), common::odoo::ADMIN_KEY.into());
        settings.snippet_timeout_secs = 10.0;
        settings.odoo_timeout_secs = 10.0;
    })
    .await;
    assert_eq!(
        post(&app, &odoo.name("as/admin"), "{}").await,
        (200, json!("admin"))
    );
    emulator
        .control(
            "POST",
            "/stall",
            // The only login from now on is the demo user's: the admin is logged in.
            Some(json!({"seconds": 3, "method": "authenticate", "times": 1})),
        )
        .await;
    let demo_started = Instant::now();
    let slow = tokio::spawn({
        let url = app.url(&odoo.name("as/demo"));
        async move { reqwest::Client::new().post(url).body("{}").send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    assert_eq!(
        post(&app, &odoo.name("as/admin"), "{}").await,
        (200, json!("admin"))
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the admin's call waited {:?} for the demo user's login",
        started.elapsed()
    );
    let (status, _, message) = answer(slow.await.unwrap().unwrap()).await;
    assert_eq!((status, message), (200, json!("demo")));
    assert!(
        demo_started.elapsed() >= Duration::from_millis(2500),
        "the demo user's login was not slow: the test shows nothing"
    );
}

/// Item 3: callers waiting for a connection to a hanging Odoo share one attempt instead of
/// being served one attempt after another.
#[tokio::test]
async fn callers_share_one_connection_attempt_to_a_hanging_odoo() {
    let odoo = TestOdoo::start().await;
    let Some(emulator) = odoo.emulator() else {
        return;
    };
    odoo.open_webhook(
        "hang/count",
        "result = {'exit_code': 0, 'message': str(env['res.partner'].search_count([]))}",
        1,
    )
    .await;
    let data_dir = tempfile::tempdir().unwrap();
    let data = data_dir.path().to_path_buf();
    // A first run caches the definitions, so that the second starts without Odoo.
    let first = spawn_app_on(&odoo, |s| s.data_dir = data.clone()).await;
    assert_eq!(post(&first, &odoo.name("hang/count"), "{}").await.0, 200);
    emulator
        .control("POST", "/stall", Some(json!({"seconds": 30})))
        .await;
    let second = spawn_app_on(&odoo, |s| {
        s.data_dir = data.clone();
        s.odoo_timeout_secs = 1.0;
        s.snippet_timeout_secs = 20.0;
        s.python_threads = 4;
    })
    .await;
    let started = Instant::now();
    let endpoint = odoo.name("hang/count");
    let calls = (0..4).map(|_| post(&second, &endpoint, "{}"));
    let answers = futures_util::future::join_all(calls).await;
    let took = started.elapsed();
    for (status, message) in &answers {
        assert_eq!(*status, 500, "{message}");
        assert!(
            message.as_str().unwrap().contains("cannot reach Odoo"),
            "{message}"
        );
    }
    assert!(
        took < Duration::from_millis(2500),
        "4 waiting calls took {took:?}: one connection attempt after another"
    );
    emulator.control("DELETE", "/faults", None).await;
}

/// Item 5: the superuser (the module's default "Run as User") may be given an
/// administrator's key; `uid`/`user` name whose rights the code really uses.
#[tokio::test]
async fn superuser_webhooks_run_with_the_administrator_given_for_them() {
    let odoo = TestOdoo::start().await;
    let code = "n = env['ir.config_parameter'].search_count([])\n\
                result = {'exit_code': 0, 'message': '%s|%s|%s' % (uid, user.login, n > 0)}";
    odoo.open_webhook("super/params", code, 1).await;
    let admin = spawn_app_on(&odoo, |settings| {
        settings.run_as_users.insert(
            "1".into(),
            format!("{}:{}", common::odoo::ADMIN_LOGIN, common::odoo::ADMIN_KEY).into(),
        );
    })
    .await;
    assert_eq!(
        post(&admin, &odoo.name("super/params"), "{}").await,
        (200, json!("2|admin|True"))
    );
    // Without it, the service user's rights, and the snippet is told so by its `uid`.
    let service = spawn_app_on(&odoo, |_| {}).await;
    let (status, message) = post(&service, &odoo.name("super/params"), "{}").await;
    assert_eq!(status, 500, "{message}");
    assert!(
        message.as_str().unwrap().contains("(ir.config_parameter)"),
        "{message}"
    );
    let who = "result = {'exit_code': 0, 'message': '%s|%s' % (uid, user.login)}";
    odoo.open_webhook("super/who", who, 1).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let (status, message) = loop {
        let answer = post(&service, &odoo.name("super/who"), "{}").await;
        if answer.0 != 404 || Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        (status, message),
        (
            200,
            json!(format!("{}|{}", odoo.client.session().uid, odoo.login))
        )
    );
}

fn check_settings(odoo: &TestOdoo, data: &std::path::Path) -> towerhook::configuration::Settings {
    let mut settings = common::test_settings();
    settings.source = towerhook::configuration::SourceKind::Odoo;
    settings.odoo_url = Some(odoo.url.clone());
    settings.odoo_db = Some(odoo.database.clone());
    settings.odoo_login = Some(odoo.login.clone());
    settings.odoo_api_key = Some(odoo.secret.clone().into());
    settings.data_dir = data.to_path_buf();
    settings.python_packages_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/.python-packages").into();
    settings.worker_program = Some(env!("CARGO_BIN_EXE_towerhook").into());
    settings
}

/// Items 5 and 6: `check` logs in every run-as user once and reports each problem with
/// its fix, and names the superuser webhooks and whose rights they get.
#[tokio::test]
async fn check_reports_run_as_users_and_superuser_webhooks() {
    let odoo = TestOdoo::start().await;
    let code = "result = {'exit_code': 0}";
    odoo.open_webhook("check/demo", code, 5).await;
    odoo.open_webhook("check/super", code, 1).await;
    let data = tempfile::tempdir().unwrap();

    // No key for user 5 under the strict policy: a problem naming the setting.
    let settings = check_settings(&odoo, data.path());
    let report = towerhook::cli::check::run(&settings).await;
    let problems = report.problems.join("\n");
    assert!(
        problems.contains("Odoo user 5 (demo)") && problems.contains("run_as_users"),
        "{problems}"
    );
    let lines = report.lines.join("\n");
    assert!(
        lines.contains("run as the superuser") && lines.contains(&odoo.login),
        "{lines}"
    );

    // A wrong key: refused, named.
    let mut settings = check_settings(&odoo, data.path());
    settings.run_as_users.insert(
        "demo".into(),
        "0000000000000000000000000000000000000000".into(),
    );
    let report = towerhook::cli::check::run(&settings).await;
    let problems = report.problems.join("\n");
    assert!(
        problems.contains("the API key configured for \"demo\" was refused"),
        "{problems}"
    );

    // The right keys: no run-as problem, and whose rights each group gets.
    let mut settings = check_settings(&odoo, data.path());
    settings
        .run_as_users
        .insert("demo".into(), common::odoo::DEMO_KEY.into());
    settings.run_as_users.insert(
        "1".into(),
        format!("{}:{}", common::odoo::ADMIN_LOGIN, common::odoo::ADMIN_KEY).into(),
    );
    let report = towerhook::cli::check::run(&settings).await;
    let lines = report.lines.join("\n");
    assert!(
        !report
            .problems
            .iter()
            .any(|p| p.contains("Odoo user 5") || p.contains("superuser")),
        "{:?}",
        report.problems
    );
    assert!(lines.contains("with the rights of \"demo\""), "{lines}");
    assert!(lines.contains("with the rights of \"admin\""), "{lines}");
}

/// Item 10: a secret used as a number is masked in the answer as in the stored log.
#[tokio::test]
async fn a_secret_used_as_a_number_is_masked_in_the_answer() {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("secrets.yaml");
    std::fs::write(&file, "pin: \"004217\"\n").unwrap();
    let app = common::spawn_app_with(
        &webhooks(&[(
            "pin",
            "result = {'exit_code': 0, 'message': {'pin': int(#!cxtower.secret.pin!#), 'n': 7}}",
        )]),
        |settings| settings.secrets_file = Some(file.clone()),
    )
    .await;
    let response = reqwest::Client::new()
        .post(app.url("pin"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body = response.text().await.unwrap();
    assert_eq!(body, r#"{"message": {"pin": "*****", "n": 7}}"#);
    let logged = app.last_log().result_message.unwrap();
    assert!(!logged.contains("4217"), "{logged}");
}
