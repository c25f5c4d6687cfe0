//! The Odoo the integration tests talk to: the emulator under `tests/odoo_emulator` by
//! default, or a real Odoo when `TOWERHOOK_TEST_ODOO_URL`, `_DB`, `_LOGIN` and `_PASSWORD`
//! are set (the login must be in "Cetmix Tower / Root"). Records are created and changed
//! over RPC in both cases; outages, stalls and the call journal need the emulator.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use towerhook::odoo::{Call, ClientSettings, OdooClient, Protocol};

/// Credentials of the emulator's seeded users (tests/odoo_emulator/README.md).
pub const SERVICE_LOGIN: &str = "towerhook";
pub const SERVICE_KEY: &str = "91db4ffea7166b07c5c01632641177b656b5f15e";
pub const ADMIN_LOGIN: &str = "admin";
pub const ADMIN_KEY: &str = "96c63236899f8fe29ca4fd5ffd531da18ec448c7";
pub const DEMO_LOGIN: &str = "demo";
pub const DEMO_KEY: &str = "9817cbaa1888272565e5009be512ac7e0cffd8e0";
pub const DATABASE: &str = "towerhook_test";

/// A running emulator; stopped when dropped (its stdin closes and it exits).
pub struct Emulator {
    child: Child,
    _stdin: ChildStdin,
    pub rpc_port: u16,
    pub control_port: u16,
    http: reqwest::Client,
}

impl Emulator {
    pub fn start(version: &str) -> Self {
        super::init();
        let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/odoo_emulator/emulator.py"
        );
        let mut child = Command::new(python)
            .args([
                script,
                "--port",
                "0",
                "--control-port",
                "0",
                "--db",
                DATABASE,
            ])
            .args(["--version", version])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start the Odoo emulator");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = |name: &str| -> u16 {
            line.split_whitespace()
                .find_map(|part| part.strip_prefix(&format!("{name}=")))
                .and_then(|port| port.parse().ok())
                .unwrap_or_else(|| panic!("emulator did not start: {line:?}"))
        };
        Self {
            rpc_port: port("rpc"),
            control_port: port("control"),
            child,
            _stdin: stdin,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port)
    }

    fn control_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.control_port)
    }

    /// A control-port request; panics on an error answer.
    pub async fn control(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.parse().unwrap(), self.control_url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "control {method} {path}: {status} {answer}"
        );
        answer
    }

    pub async fn down(&self) {
        self.control("POST", "/rpc/down", None).await;
    }

    pub async fn up(&self) {
        self.control("POST", "/rpc/up", None).await;
    }

    pub async fn journal(&self, query: &str) -> Vec<Value> {
        let answer = self
            .control("GET", &format!("/journal?{query}"), None)
            .await;
        answer["entries"].as_array().cloned().unwrap_or_default()
    }

    /// Records as the superuser sees them (inactive included).
    pub async fn records(&self, model: &str) -> Vec<Value> {
        let answer = self
            .control(
                "POST",
                &format!("/records/{model}/search"),
                Some(json!({"domain": [], "order": "id"})),
            )
            .await;
        answer["records"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An Odoo for one test: its address, the service user towerhook logs in as, and an RPC
/// client (as that user) to arrange records.
pub struct TestOdoo {
    pub emulator: Option<Emulator>,
    pub url: String,
    pub database: String,
    pub login: String,
    pub secret: String,
    pub client: OdooClient,
    /// Records this test created (real Odoo: removed again at the end).
    created: std::sync::Mutex<Vec<(String, i64)>>,
}

impl TestOdoo {
    /// The emulator (version 17.0) unless a real Odoo is configured.
    pub async fn start() -> Self {
        Self::start_version("17.0").await
    }

    pub async fn start_version(version: &str) -> Self {
        let real = |name: &str| std::env::var(format!("TOWERHOOK_TEST_ODOO_{name}")).ok();
        let (emulator, url, database, login, secret) =
            match (real("URL"), real("DB"), real("LOGIN"), real("PASSWORD")) {
                (Some(url), Some(db), Some(login), Some(password)) => {
                    (None, url, db, login, password)
                }
                _ => {
                    let emulator = Emulator::start(version);
                    let url = emulator.url();
                    (
                        Some(emulator),
                        url,
                        DATABASE.to_string(),
                        SERVICE_LOGIN.to_string(),
                        SERVICE_KEY.to_string(),
                    )
                }
            };
        let client = OdooClient::connect(&client_settings(&url, &database, &login, &secret))
            .await
            .expect("cannot log in to the test Odoo");
        Self {
            emulator,
            url,
            database,
            login,
            secret,
            client,
            created: Default::default(),
        }
    }

    /// The emulator, or `None` (with a note) when the test runs against a real Odoo.
    pub fn emulator(&self) -> Option<&Emulator> {
        if self.emulator.is_none() {
            eprintln!("this part needs the Odoo emulator; skipped against a real Odoo");
        }
        self.emulator.as_ref()
    }

    pub async fn create(&self, model: &str, values: Value) -> i64 {
        let id = self
            .client
            .execute(&Call::model(model, "create").arg(values))
            .await
            .unwrap_or_else(|e| panic!("create {model}: {e}"));
        let id = id.as_i64().or_else(|| id[0].as_i64()).unwrap();
        self.created.lock().unwrap().push((model.to_string(), id));
        id
    }

    /// An allow-all authenticator and a POST webhook at `endpoint` running `code` as
    /// `user_id`; the webhook's id.
    pub async fn open_webhook(&self, endpoint: &str, code: &str, user_id: i64) -> i64 {
        let authenticator = self
            .create(
                "cx.tower.webhook.authenticator",
                json!({"name": format!("Open {endpoint}"), "code": "result = {'allowed': True}"}),
            )
            .await;
        self.create(
            "cx.tower.webhook",
            json!({
                "name": endpoint, "endpoint": endpoint, "authenticator_id": authenticator,
                "code": code, "user_id": user_id,
            }),
        )
        .await
    }

    pub async fn write(&self, model: &str, id: i64, values: Value) {
        self.client
            .execute(&Call::on(model, "write", vec![id]).arg(values))
            .await
            .unwrap_or_else(|e| panic!("write {model} {id}: {e}"));
    }

    pub async fn unlink(&self, model: &str, id: i64) {
        self.client
            .execute(&Call::on(model, "unlink", vec![id]))
            .await
            .unwrap_or_else(|e| panic!("unlink {model} {id}: {e}"));
    }

    /// Creates the definitions of a Cetmix Tower YAML text (the acceptance fixtures).
    /// Records left with the same references by an earlier run (real Odoo) go first.
    pub async fn load_yaml(&self, yaml: &str) {
        self.remove_leftovers(yaml).await;
        let document: Value = serde_saphyr::from_str(yaml).unwrap();
        let records = document
            .get("records")
            .cloned()
            .unwrap_or(document)
            .as_array()
            .cloned()
            .unwrap();
        let mut authenticators = std::collections::HashMap::new();
        for record in records
            .iter()
            .filter(|r| r["cetmix_tower_model"] == "webhook_authenticator")
        {
            let mut values = json!({
                "name": record["name"], "reference": record["reference"], "code": record["code"],
            });
            for field in ["allowed_ip_addresses", "trusted_proxy_ips"] {
                if let Some(text) = record.get(field).and_then(Value::as_str) {
                    values[field] = json!(text);
                }
            }
            let id = self.create("cx.tower.webhook.authenticator", values).await;
            authenticators.insert(record["reference"].as_str().unwrap().to_string(), id);
        }
        for record in records
            .iter()
            .filter(|r| r["cetmix_tower_model"] == "webhook")
        {
            let mut values = json!({
                "name": record["name"], "reference": record["reference"], "code": record["code"],
                "endpoint": record["endpoint"],
                "authenticator_id": authenticators[record["authenticator_id"].as_str().unwrap()],
            });
            for field in ["method", "content_type", "active"] {
                if let Some(value) = record.get(field) {
                    values[field] = value.clone();
                }
            }
            self.create("cx.tower.webhook", values).await;
        }
    }
}

impl TestOdoo {
    async fn remove_leftovers(&self, yaml: &str) {
        if self.emulator.is_some() {
            return;
        }
        let document: Value = serde_saphyr::from_str(yaml).unwrap();
        let records = document.get("records").cloned().unwrap_or(document);
        let references: Vec<Value> = records
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["reference"].clone())
            .collect();
        for model in ["cx.tower.webhook", "cx.tower.webhook.authenticator"] {
            let ids = self
                .client
                .execute(
                    &Call::model(model, "search")
                        .arg(json!([["reference", "in", references]]))
                        .kwarg("context", json!({"active_test": false})),
                )
                .await
                .unwrap();
            let ids: Vec<i64> = ids
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_i64)
                .collect();
            if !ids.is_empty() {
                self.client
                    .execute(&Call::on(model, "unlink", ids))
                    .await
                    .unwrap();
            }
        }
    }
}

impl Drop for TestOdoo {
    fn drop(&mut self) {
        // A real Odoo keeps its data: note what this test left behind.
        if self.emulator.is_none() {
            let created = self.created.lock().unwrap();
            if !created.is_empty() {
                eprintln!("records created in the real Odoo by this test: {created:?}");
            }
        }
    }
}

pub fn client_settings(url: &str, database: &str, login: &str, secret: &str) -> ClientSettings {
    ClientSettings {
        url: url.to_string(),
        database: database.to_string(),
        login: login.to_string(),
        secret: secret.to_string(),
        protocol: Protocol::Auto,
        timeout: Duration::from_secs(5),
        retries: 1,
    }
}

/// towerhook serving this Odoo's definitions (local log store), polling every half second
/// unless `configure` says otherwise.
pub async fn spawn_app_on(
    odoo: &TestOdoo,
    configure: impl FnOnce(&mut towerhook::configuration::Settings),
) -> super::TestApp {
    let (url, database, login, secret) = (
        odoo.url.clone(),
        odoo.database.clone(),
        odoo.login.clone(),
        odoo.secret.clone(),
    );
    super::spawn_app_with("", move |settings| {
        settings.source = towerhook::configuration::SourceKind::Odoo;
        settings.odoo_url = Some(url);
        settings.odoo_db = Some(database);
        settings.odoo_login = Some(login);
        settings.odoo_api_key = Some(secret);
        settings.odoo_poll_secs = 0.5;
        settings.odoo_retries = 0;
        configure(settings);
    })
    .await
}

/// towerhook serving this Odoo's definitions and shipping its logs there, quickly: small
/// batch age, short retry delays.
pub async fn spawn_app_shipping_to(
    odoo: &TestOdoo,
    configure: impl FnOnce(&mut towerhook::configuration::Settings),
) -> super::TestApp {
    spawn_app_on(odoo, |settings| {
        settings.log_sink = towerhook::configuration::SinkKind::Odoo;
        settings.outbox_batch_age_ms = 50;
        settings.outbox_retry_max_secs = 0.5;
        configure(settings);
    })
    .await
}

impl TestOdoo {
    /// What `towerhook odoo-setup` does, as the emulator's administrator.
    pub async fn grant_log_create(&self) {
        let settings = towerhook::configuration::Settings {
            odoo_url: Some(self.url.clone()),
            odoo_db: Some(self.database.clone()),
            odoo_login: Some(self.login.clone()),
            odoo_api_key: Some(self.secret.clone()),
            ..Default::default()
        };
        let admin_secret = std::env::var("TOWERHOOK_TEST_ODOO_ADMIN_PASSWORD")
            .unwrap_or_else(|_| ADMIN_KEY.to_string());
        let admin_login = std::env::var("TOWERHOOK_TEST_ODOO_ADMIN_LOGIN")
            .unwrap_or_else(|_| ADMIN_LOGIN.to_string());
        towerhook::odoo_setup::run(&settings, &admin_login, &admin_secret)
            .await
            .expect("odoo-setup");
    }

    /// The webhook logs in Odoo, as its superuser sees them (emulator) or as the service
    /// user reads them (real Odoo).
    pub async fn logs(&self) -> Vec<Value> {
        match &self.emulator {
            Some(emulator) => emulator.records("cx.tower.webhook.log").await,
            None => self
                .client
                .execute(
                    &Call::model("cx.tower.webhook.log", "search_read")
                        .arg(json!([]))
                        .arg(json!([]))
                        .kwarg("order", json!("id")),
                )
                .await
                .unwrap()
                .as_array()
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// Waits until Odoo holds at least `count` logs; returns them.
    pub async fn wait_for_logs(&self, count: usize, within: Duration) -> Vec<Value> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let logs = self.logs().await;
            if logs.len() >= count || std::time::Instant::now() > deadline {
                return logs;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
