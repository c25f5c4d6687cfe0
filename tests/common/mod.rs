//! Spawns the real server on a random port with temporary definitions and data, and reads
//! what it stored.
#![allow(dead_code)]

pub mod haproxy;
pub mod mmdb;
pub mod odoo;
pub mod recorder;

use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use tempfile::TempDir;
use towerhook::configuration::Settings;
use towerhook::http::server::Application;

pub struct TestApp {
    pub port: u16,
    pub data_dir: TempDir,
    pub yaml_dir: TempDir,
}

/// Starts towerhook on `[::]:0` serving `yaml` as its only definitions file.
pub async fn spawn_app(yaml: &str) -> TestApp {
    spawn_app_with(yaml, |_| {}).await
}

pub async fn spawn_app_with(yaml: &str, configure: impl FnOnce(&mut Settings)) -> TestApp {
    init();
    let yaml_dir = tempfile::tempdir().unwrap();
    std::fs::write(yaml_dir.path().join("definitions.yaml"), yaml).unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings();
    settings.listen = "[::]:0".into();
    settings.yaml_dir = yaml_dir.path().to_path_buf();
    settings.data_dir = data_dir.path().to_path_buf();
    settings.python_workers = 2;
    settings.python_threads = 2;
    settings.worker_program = Some(env!("CARGO_BIN_EXE_towerhook").into());
    configure(&mut settings);
    let application = Application::build(settings)
        .await
        .expect("towerhook failed to start");
    let port = application.port();
    tokio::spawn(application.run_until_stopped());
    TestApp {
        port,
        data_dir,
        yaml_dir,
    }
}

/// Defaults, untouched by the developer's own TOWERHOOK_* variables.
pub fn test_settings() -> Settings {
    Settings::load_from(None, Vec::<(String, String)>::new()).unwrap()
}

/// Logging for failing tests, and the TLS provider every HTTP client needs.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        towerhook::odoo::install_tls_provider();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
    });
}

impl TestApp {
    /// Base URL reachable from `source` (an IPv4 source talks to 127.0.0.1, IPv6 to ::1).
    pub fn base_for(&self, source: IpAddr) -> String {
        match source {
            IpAddr::V4(_) => format!("http://127.0.0.1:{}", self.port),
            IpAddr::V6(_) => format!("http://[::1]:{}", self.port),
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url(&self, endpoint: &str) -> String {
        format!("{}/cetmix_tower_webhooks/{endpoint}", self.base())
    }

    /// A client whose connections come from `source`, added to the loopback interface
    /// when missing so the server sees that peer address on a real socket.
    pub fn client_from(&self, source: IpAddr) -> reqwest::Client {
        ensure_local_address(source);
        reqwest::Client::builder()
            .local_address(source)
            .build()
            .unwrap()
    }

    pub fn log_path(&self) -> PathBuf {
        self.data_dir.path().join("towerhook.sqlite3")
    }

    /// Every stored log record, oldest first.
    pub fn logs(&self) -> Vec<LogRow> {
        read_logs(&self.log_path())
    }

    pub fn last_log(&self) -> LogRow {
        self.logs().pop().expect("no log record stored")
    }
}

/// One row of the local store, JSON columns parsed.
#[derive(Debug, Clone)]
pub struct LogRow {
    pub webhook_reference: Option<String>,
    pub endpoint: String,
    pub authenticator_reference: Option<String>,
    pub request_method: String,
    pub request_headers: Value,
    pub request_payload: Option<Value>,
    pub authentication_status: String,
    pub code_status: String,
    pub http_status: i64,
    pub result_message: Option<String>,
    pub error_message: Option<String>,
    pub user_id: Option<i64>,
    pub ip_address: Option<String>,
}

pub fn read_logs(path: &Path) -> Vec<LogRow> {
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    towerhook::logs::schema::read_all(&connection)
        .unwrap()
        .into_iter()
        .map(|record| LogRow {
            webhook_reference: record.webhook_reference,
            endpoint: record.endpoint,
            authenticator_reference: record.authenticator_reference,
            request_method: record.request_method.as_str().to_string(),
            request_headers: serde_json::from_str(&record.request_headers).unwrap(),
            request_payload: record
                .request_payload
                .map(|payload| serde_json::from_str(&payload).unwrap()),
            authentication_status: record.authentication_status.as_str().to_string(),
            code_status: record.code_status.as_str().to_string(),
            http_status: i64::from(record.http_status),
            result_message: record.result_message,
            error_message: record.error_message,
            user_id: record.user_id,
            ip_address: record.ip_address,
        })
        .collect()
}

/// Makes `ip` usable as a source address by adding it to `lo` if needed (needs
/// CAP_NET_ADMIN, which the test machines' root has). 127.0.0.0/8 always works.
pub fn ensure_local_address(ip: IpAddr) {
    if TcpListener::bind((ip, 0)).is_ok() {
        return;
    }
    let (family, prefix) = match ip {
        IpAddr::V4(_) => ("-4", 32),
        IpAddr::V6(_) => ("-6", 128),
    };
    let mut command = Command::new("ip");
    command.args([
        family,
        "addr",
        "add",
        &format!("{ip}/{prefix}"),
        "dev",
        "lo",
    ]);
    if ip.is_ipv6() {
        command.arg("nodad");
    }
    let output = command.output();
    assert!(
        TcpListener::bind((ip, 0)).is_ok(),
        "cannot use {ip} as a test peer address: add it to the loopback interface \
         (`ip addr add {ip}/{prefix} dev lo`, needs root); `ip` said: {output:?}"
    );
}

/// Body as text and the parsed `message`.
pub async fn answer(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("response is not JSON ({e}): {text}"));
    (status, text, json["message"].clone())
}

/// The real `towerhook serve` binary in its own process (its own interpreter), listening
/// on a random port; killed when dropped.
pub struct BinaryServer {
    child: std::process::Child,
    pub port: u16,
    _data: Option<TempDir>,
    /// What the process wrote to stderr so far (its log).
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl BinaryServer {
    pub fn start(env: &[(&str, &str)]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut server = Self::start_in(data.path(), env);
        server._data = Some(data);
        server
    }

    /// With the data directory given (it survives the process).
    pub fn start_in(data: &Path, env: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader};
        init();
        let mut command = Command::new(env!("CARGO_BIN_EXE_towerhook"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("TOWERHOOK_LISTEN", "127.0.0.1:0")
            .env("TOWERHOOK_DATA_DIR", data)
            .stderr(std::process::Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = Vec::new();
        let mut port = None;
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut lines = stderr.lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.split("listening on port ").nth(1) {
                port = rest.split(',').next().and_then(|p| p.trim().parse().ok());
                break;
            }
            seen.push(line.clone());
            log.lock().unwrap().push(line);
        }
        let port = port.unwrap_or_else(|| panic!("towerhook did not start:\n{}", seen.join("\n")));
        // Keep reading its log so the process never blocks on a full pipe.
        let kept = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            port,
            _data: None,
            log,
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn url(&self, endpoint: &str) -> String {
        format!(
            "http://127.0.0.1:{}/cetmix_tower_webhooks/{endpoint}",
            self.port
        )
    }
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `/metrics` of the server at `base`: each `name{labels}` with its value.
pub async fn metrics(base: &str) -> std::collections::HashMap<String, f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}
