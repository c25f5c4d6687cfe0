//! The Odoo the integration tests talk to: the emulator under `tests/odoo_emulator` by
//! default, or a real Odoo when `TOWERHOOK_TEST_ODOO_URL`, `_DB`, `_LOGIN` and `_PASSWORD`
//! are set (optionally `_ADMIN_LOGIN`/`_ADMIN_PASSWORD` and `_USER_LOGIN`/`_USER_PASSWORD`;
//! README, "Testing against a real Odoo", says how to set the users up). Records are
//! created, read and removed over RPC in both cases, with the same code; outages, stalls
//! and the call journal need the emulator (`TestOdoo::emulator_only`).
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

/// The real Odoo named by the environment (README, "Testing against a real Odoo"), if any.
struct RealOdoo {
    url: String,
    database: String,
    login: String,
    secret: String,
    admin: Option<(String, String)>,
    plain_user: Option<(String, String)>,
}

fn real_odoo() -> Option<RealOdoo> {
    let var = |name: &str| {
        std::env::var(format!("TOWERHOOK_TEST_ODOO_{name}"))
            .ok()
            .filter(|value| !value.is_empty())
    };
    let pair = |login: &str, secret: &str| var(login).zip(var(secret));
    Some(RealOdoo {
        url: var("URL")?,
        database: var("DB")?,
        login: var("LOGIN")?,
        secret: var("PASSWORD")?,
        admin: pair("ADMIN_LOGIN", "ADMIN_PASSWORD"),
        plain_user: pair("USER_LOGIN", "USER_PASSWORD"),
    })
}

/// A prefix no other test run uses: every reference, endpoint and name a test creates in
/// Odoo starts with it, so that runs never collide in a database that already holds data,
/// a test finds its own records among others, and cleanup removes exactly them.
fn run_prefix() -> String {
    use std::hash::{BuildHasher, Hasher};
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    // RandomState is seeded randomly per process; the sequence separates the tests of one
    // process. Lower-case letters and digits only: references keep nothing else.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    format!("th{:010x}", hasher.finish() & 0xff_ffff_ffff)
}

/// How the names of a test's definitions read where towerhook serves them: with the
/// test's prefix when they were created in Odoo, as written when they come from YAML.
#[derive(Clone, Debug)]
pub struct Names {
    prefix: Option<String>,
}

impl Names {
    /// Names as written (definitions that never went to Odoo).
    pub fn as_written() -> Self {
        Self { prefix: None }
    }

    /// `name` as the test created it: `<prefix>_<name>` (references, endpoints).
    pub fn of(&self, name: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}_{name}"),
            None => name.to_string(),
        }
    }

    /// A display name (`name` of a record) as the test created it.
    pub fn label(&self, label: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix} {label}"),
            None => label.to_string(),
        }
    }
}

/// An Odoo user other than the service user, logged in once to learn its id.
#[derive(Clone, Debug)]
pub struct OdooUser {
    pub login: String,
    pub secret: String,
    pub uid: i64,
}

/// An Odoo for one test: its address, the service user towerhook logs in as, and an RPC
/// client (as that user) to arrange records. Everything the test creates is named with
/// its run-unique `prefix` and removed again when it ends (`cleanup`, or on drop, also
/// after a failure), on the emulator as on a real Odoo, through the same RPC calls.
pub struct TestOdoo {
    pub emulator: Option<Emulator>,
    pub url: String,
    pub database: String,
    pub login: String,
    pub secret: String,
    pub client: OdooClient,
    /// Start of every reference, endpoint and name this test creates.
    pub prefix: String,
    admin: Option<(String, String)>,
    plain_user: Option<(String, String)>,
    /// Records this test created, oldest first, removed again by `cleanup`.
    created: std::sync::Mutex<Vec<(String, i64)>>,
    cleaned: std::sync::atomic::AtomicBool,
}

impl TestOdoo {
    /// The emulator (version 17.0) unless a real Odoo is configured.
    pub async fn start() -> Self {
        Self::start_version("17.0").await
    }

    /// The emulator of that version, or the configured real Odoo (whatever its version).
    pub async fn start_version(version: &str) -> Self {
        let (emulator, real) = match real_odoo() {
            Some(real) => (None, real),
            None => {
                let emulator = Emulator::start(version);
                let url = emulator.url();
                let real = RealOdoo {
                    url,
                    database: DATABASE.to_string(),
                    login: SERVICE_LOGIN.to_string(),
                    secret: SERVICE_KEY.to_string(),
                    admin: Some((ADMIN_LOGIN.to_string(), ADMIN_KEY.to_string())),
                    plain_user: Some((DEMO_LOGIN.to_string(), DEMO_KEY.to_string())),
                };
                (Some(emulator), real)
            }
        };
        let client = OdooClient::connect(&client_settings(
            &real.url,
            &real.database,
            &real.login,
            &real.secret,
        ))
        .await
        .expect("cannot log in to the test Odoo");
        Self {
            emulator,
            url: real.url,
            database: real.database,
            login: real.login,
            secret: real.secret,
            client,
            prefix: run_prefix(),
            admin: real.admin,
            plain_user: real.plain_user,
            created: Default::default(),
            cleaned: Default::default(),
        }
    }

    /// Whether this is a real Odoo rather than the emulator.
    pub fn is_real(&self) -> bool {
        self.emulator.is_none()
    }

    /// The emulator, or `None` (with a note) when the test runs against a real Odoo.
    pub fn emulator(&self) -> Option<&Emulator> {
        if self.emulator.is_none() {
            eprintln!("this part needs the Odoo emulator; skipped against a real Odoo");
        }
        self.emulator.as_ref()
    }

    /// The emulator, or `None` against a real Odoo, saying which test part is skipped and
    /// why it cannot run there (an outage, a stall, the call journal...).
    pub fn emulator_only(&self, why: &str) -> Option<&Emulator> {
        if self.emulator.is_none() {
            eprintln!("emulator only, skipped against a real Odoo: {why}");
        }
        self.emulator.as_ref()
    }

    /// The service user's id.
    pub fn uid(&self) -> i64 {
        self.client.session().uid
    }

    /// How this test's names read in Odoo.
    pub fn names(&self) -> Names {
        Names {
            prefix: Some(self.prefix.clone()),
        }
    }

    /// `name` with this test's prefix: use it for every reference and endpoint.
    pub fn name(&self, name: &str) -> String {
        self.names().of(name)
    }

    /// An administrator (base.group_system): the emulator's `admin`, or
    /// `TOWERHOOK_TEST_ODOO_ADMIN_LOGIN`/`_ADMIN_PASSWORD` of a real Odoo.
    pub fn admin_credentials(&self) -> Option<(&str, &str)> {
        self.admin.as_ref().map(|(l, s)| (l.as_str(), s.as_str()))
    }

    /// A plain internal user (no Cetmix Tower group, no Contact Creation, not in the
    /// companion addon's group): the emulator's `demo`, or
    /// `TOWERHOOK_TEST_ODOO_USER_LOGIN`/`_USER_PASSWORD` of a real Odoo; `None` (with a
    /// note) when a real Odoo has none configured.
    pub async fn plain_user(&self) -> Option<OdooUser> {
        let Some((login, secret)) = self.plain_user.clone() else {
            eprintln!(
                "skipped: needs a plain internal user (TOWERHOOK_TEST_ODOO_USER_LOGIN and \
                 TOWERHOOK_TEST_ODOO_USER_PASSWORD)"
            );
            return None;
        };
        let session = self
            .client
            .login(&login, &secret)
            .await
            .unwrap_or_else(|e| panic!("cannot log in as the plain user {login:?}: {e}"));
        Some(OdooUser {
            login,
            secret,
            uid: session.uid,
        })
    }

    /// Whether the service user can use the companion addon (installed, user in its group).
    pub async fn addon_ready(&self) -> bool {
        matches!(
            towerhook::odoo::companion::probe(&self.client).await,
            Ok(towerhook::odoo::companion::AddonState::Ready)
        )
    }

    pub async fn create(&self, model: &str, values: Value) -> i64 {
        let id = self
            .client
            .execute(&Call::model(model, "create").arg(values))
            .await
            .unwrap_or_else(|e| panic!("create {model}: {e}"));
        let id = id.as_i64().or_else(|| id[0].as_i64()).unwrap();
        self.track(model, &[id]);
        id
    }

    /// Records the test made some other way (through towerhook, a snippet, an import):
    /// removed with the rest at the end.
    pub fn track(&self, model: &str, ids: &[i64]) {
        let mut created = self.created.lock().unwrap();
        created.extend(ids.iter().map(|id| (model.to_string(), *id)));
    }

    /// An allow-all authenticator "Open <endpoint>" and a POST webhook at endpoint
    /// `self.name(endpoint)` running `code` as `user_id`; the webhook's id. References:
    /// the endpoint's (`/` and `-` as `_`), and that plus `_auth`.
    pub async fn open_webhook(&self, endpoint: &str, code: &str, user_id: i64) -> i64 {
        let endpoint = self.name(endpoint);
        let reference: String = endpoint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let authenticator = self
            .create(
                "cx.tower.webhook.authenticator",
                json!({
                    "name": format!("Open {endpoint}"), "reference": format!("{reference}_auth"),
                    "code": "result = {'allowed': True}",
                }),
            )
            .await;
        self.create(
            "cx.tower.webhook",
            json!({
                "name": endpoint, "reference": reference, "endpoint": endpoint,
                "authenticator_id": authenticator, "code": code, "user_id": user_id,
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

    /// Ids of `model` records matching `domain`, archived ones included.
    pub async fn search(&self, model: &str, domain: Value) -> Vec<i64> {
        let ids = self
            .client
            .execute(
                &Call::model(model, "search")
                    .arg(domain)
                    .kwarg("context", json!({"active_test": false})),
            )
            .await
            .unwrap_or_else(|e| panic!("search {model}: {e}"));
        ids.as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_i64)
            .collect()
    }

    /// Creates the definitions of a Cetmix Tower YAML text (the acceptance fixtures), each
    /// reference, endpoint and name with this test's prefix (`self.names()`).
    pub async fn load_yaml(&self, yaml: &str) {
        let names = self.names();
        let document: Value = serde_saphyr::from_str(yaml).unwrap();
        let records = document
            .get("records")
            .cloned()
            .unwrap_or(document)
            .as_array()
            .cloned()
            .unwrap();
        let text = |value: &Value| value.as_str().unwrap().to_string();
        let mut authenticators = std::collections::HashMap::new();
        for record in records
            .iter()
            .filter(|r| r["cetmix_tower_model"] == "webhook_authenticator")
        {
            let mut values = json!({
                "name": names.label(&text(&record["name"])),
                "reference": names.of(&text(&record["reference"])),
                "code": record["code"],
            });
            for field in ["allowed_ip_addresses", "trusted_proxy_ips"] {
                if let Some(text) = record.get(field).and_then(Value::as_str) {
                    values[field] = json!(text);
                }
            }
            let id = self.create("cx.tower.webhook.authenticator", values).await;
            authenticators.insert(text(&record["reference"]), id);
        }
        for record in records
            .iter()
            .filter(|r| r["cetmix_tower_model"] == "webhook")
        {
            let mut values = json!({
                "name": names.label(&text(&record["name"])),
                "reference": names.of(&text(&record["reference"])),
                "code": record["code"],
                "endpoint": names.of(&text(&record["endpoint"])),
                "authenticator_id": authenticators[&text(&record["authenticator_id"])],
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

pub fn client_settings(url: &str, database: &str, login: &str, secret: &str) -> ClientSettings {
    ClientSettings {
        url: url.to_string(),
        database: database.to_string(),
        login: login.to_string(),
        secret: secret.into(),
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
        settings.odoo_api_key = Some(secret.into());
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

/// One webhook log as both sides hold it, for comparing what towerhook stored with what
/// reached Odoo: webhook and authenticator by reference, empty values as `None`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ShippedLog {
    pub endpoint: String,
    pub request_method: String,
    pub webhook: Option<String>,
    pub authenticator: Option<String>,
    pub authentication_status: String,
    pub code_status: String,
    pub http_status: i64,
    pub result_message: Option<String>,
    pub error_message: Option<String>,
    pub user_id: Option<i64>,
    pub ip_address: Option<String>,
}

impl TestOdoo {
    /// Makes sure the service user can create logs in Odoo: nothing to do when it can use
    /// the companion addon; otherwise what `towerhook odoo-setup` does, as the
    /// administrator (the emulator's, or `TOWERHOOK_TEST_ODOO_ADMIN_LOGIN` of a real Odoo).
    pub async fn grant_log_create(&self) {
        if self.is_real() && (self.addon_ready().await || self.may_create_logs().await) {
            return;
        }
        let (admin_login, admin_secret) = self.admin_credentials().unwrap_or_else(|| {
            panic!(
                "{:?} can use neither the companion addon nor plain create on \
                 cx.tower.webhook.log: set it up as the README says (\"Testing against a real \
                 Odoo\"), or set TOWERHOOK_TEST_ODOO_ADMIN_LOGIN and \
                 TOWERHOOK_TEST_ODOO_ADMIN_PASSWORD for `towerhook odoo-setup`",
                self.login
            )
        });
        let settings = towerhook::configuration::Settings {
            odoo_url: Some(self.url.clone()),
            odoo_db: Some(self.database.clone()),
            odoo_login: Some(self.login.clone()),
            odoo_api_key: Some(self.secret.clone().into()),
            ..Default::default()
        };
        towerhook::odoo::setup::run(&settings, admin_login, admin_secret)
            .await
            .expect("odoo-setup");
    }

    /// Whether the service user may create logs with plain `create` (an access rule, as
    /// `towerhook odoo-setup` adds without the addon).
    pub async fn may_create_logs(&self) -> bool {
        let allowed = self
            .client
            .execute(
                &Call::model("cx.tower.webhook.log", "check_access_rights")
                    .arg(json!("create"))
                    .arg(json!(false)),
            )
            .await
            .unwrap_or_else(|e| panic!("asking for the right to create logs: {e}"));
        allowed == json!(true)
    }

    /// The webhook logs of this test's endpoints in Odoo, oldest first, read over RPC as
    /// the service user (Root may read logs).
    pub async fn logs(&self) -> Vec<Value> {
        self.client
            .execute(
                &Call::model("cx.tower.webhook.log", "search_read")
                    .arg(json!([["endpoint", "=like", format!("{}%", self.prefix)]]))
                    .arg(json!([]))
                    .kwarg("order", json!("id")),
            )
            .await
            .unwrap_or_else(|e| panic!("reading the webhook logs: {e}"))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until Odoo holds at least `count` logs of this test; returns them.
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

    /// Every log `app` stored reaches Odoo, once, with the same fields.
    pub async fn assert_logs_shipped(&self, app: &super::TestApp) {
        let stored: Vec<ShippedLog> = app
            .logs()
            .into_iter()
            .map(|log| ShippedLog {
                endpoint: log.endpoint,
                request_method: log.request_method,
                webhook: log.webhook_reference,
                authenticator: log.authenticator_reference,
                authentication_status: log.authentication_status,
                code_status: log.code_status,
                http_status: log.http_status,
                result_message: log.result_message,
                error_message: log.error_message,
                user_id: log.user_id,
                ip_address: log.ip_address,
            })
            .collect();
        let logs = self
            .wait_for_logs(stored.len(), Duration::from_secs(15))
            .await;
        let mut references = std::collections::HashMap::new();
        for model in ["cx.tower.webhook", "cx.tower.webhook.authenticator"] {
            let rows = self
                .client
                .execute(
                    &Call::model(model, "search_read")
                        .arg(json!([["reference", "=like", format!("{}%", self.prefix)]]))
                        .arg(json!(["reference"]))
                        .kwarg("context", json!({"active_test": false})),
                )
                .await
                .unwrap();
            for row in rows.as_array().unwrap() {
                references.insert(
                    (model, row["id"].as_i64().unwrap()),
                    row["reference"].as_str().unwrap().to_string(),
                );
            }
        }
        let text = |value: &Value| value.as_str().map(String::from);
        let reference = |model: &'static str, value: &Value| {
            value[0].as_i64().map(|id| {
                references
                    .get(&(model, id))
                    .cloned()
                    .unwrap_or_else(|| format!("{model} {id}, not this test's"))
            })
        };
        let mut shipped: Vec<ShippedLog> = logs
            .iter()
            .map(|log| ShippedLog {
                endpoint: text(&log["endpoint"]).unwrap_or_default(),
                request_method: text(&log["request_method"]).unwrap_or_default(),
                webhook: reference("cx.tower.webhook", &log["webhook_id"]),
                authenticator: reference(
                    "cx.tower.webhook.authenticator",
                    &log["authenticator_id"],
                ),
                authentication_status: text(&log["authentication_status"]).unwrap_or_default(),
                code_status: text(&log["code_status"]).unwrap_or_default(),
                http_status: log["http_status"].as_i64().unwrap_or_default(),
                result_message: text(&log["result_message"]),
                error_message: text(&log["error_message"]),
                user_id: log["user_id"][0].as_i64(),
                ip_address: text(&log["ip_address"]),
            })
            .collect();
        let mut stored = stored;
        stored.sort();
        shipped.sort();
        assert_eq!(
            shipped, stored,
            "the logs in Odoo differ from the stored ones"
        );
    }

    /// Removes what this test created: its tracked records (newest first), then whatever
    /// still carries its prefix (webhooks by reference or endpoint, with their logs;
    /// authenticators, keys with their values, partners by name). Logs of unknown
    /// endpoints stay: nobody may delete logs over RPC (Cetmix Tower's retention removes
    /// them). Returns what could not be removed.
    pub async fn cleanup(&self) -> Vec<String> {
        self.cleaned
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.remove_test_records().await
    }

    /// What `cleanup` removes, while the test goes on (e.g. to import its definitions
    /// again into the same database); the end of the test still cleans up.
    pub async fn remove_test_records(&self) -> Vec<String> {
        let created = std::mem::take(&mut *self.created.lock().unwrap());
        remove_records_of_run(&self.client, &self.prefix, &created).await
    }
}

/// The models a test's records may be in, and how its prefix finds them, in the order
/// they can be removed (webhooks before their authenticators; key values go with keys,
/// logs with webhooks).
const PREFIXED_FIELDS: &[(&str, &str)] = &[
    ("cx.tower.webhook", "reference"),
    ("cx.tower.webhook", "endpoint"),
    ("cx.tower.webhook.authenticator", "reference"),
    ("cx.tower.key", "reference"),
    ("res.partner", "name"),
];

/// Unlinks `created` (newest first), then whatever carries `prefix`; what failed.
async fn remove_records_of_run(
    client: &OdooClient,
    prefix: &str,
    created: &[(String, i64)],
) -> Vec<String> {
    let mut problems = Vec::new();
    for (model, id) in created.iter().rev() {
        remove_matching(client, model, json!([["id", "=", id]]), &mut problems).await;
    }
    for (model, field) in PREFIXED_FIELDS {
        let domain = json!([[field, "=like", format!("{prefix}%")]]);
        remove_matching(client, model, domain, &mut problems).await;
    }
    problems
}

/// Unlinks the records of `domain` that still exist (archived ones too).
async fn remove_matching(
    client: &OdooClient,
    model: &str,
    domain: Value,
    problems: &mut Vec<String>,
) {
    let found = client
        .execute(
            &Call::model(model, "search")
                .arg(domain.clone())
                .kwarg("context", json!({"active_test": false})),
        )
        .await;
    let ids: Vec<i64> = match found {
        Ok(ids) => ids
            .as_array()
            .map(|ids| ids.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default(),
        Err(error) => {
            problems.push(format!("searching {model} {domain}: {error}"));
            return;
        }
    };
    if ids.is_empty() {
        return;
    }
    if let Err(error) = client
        .execute(&Call::on(model, "unlink", ids.clone()))
        .await
    {
        problems.push(format!("unlinking {model} {ids:?}: {error}"));
    }
}

impl Drop for TestOdoo {
    /// Cleanup the test did not do itself (it failed, or never asked): on another thread
    /// with its own runtime and connection, since the test's runtime is blocked here.
    fn drop(&mut self) {
        if self.cleaned.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let settings = client_settings(&self.url, &self.database, &self.login, &self.secret);
        let prefix = self.prefix.clone();
        // A test that failed while holding the lock still knows what it created.
        let created = self
            .created
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| vec![e.to_string()])?;
            runtime.block_on(async {
                let client = OdooClient::connect(&settings)
                    .await
                    .map_err(|e| vec![e.to_string()])?;
                let problems = remove_records_of_run(&client, &prefix, &created).await;
                if problems.is_empty() {
                    Ok(())
                } else {
                    Err(problems)
                }
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(problems)) => eprintln!(
                "records of test run {} left in Odoo: {}",
                self.prefix,
                problems.join("; ")
            ),
            Err(_) => eprintln!("cleanup of test run {} panicked", self.prefix),
        }
    }
}
