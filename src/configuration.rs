//! Settings: built-in defaults, then an optional TOML file, then `TOWERHOOK_*` variables.
//!
//! Every key is flat (`listen`, `odoo_url`, ...) so that its environment variable is simply
//! `TOWERHOOK_` + the key in upper case. Values from the environment are strings; the
//! `config` crate converts them to numbers and booleans where a field asks for one, and lists
//! accept a comma-separated string.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

/// Variables naming a secret value for the YAML source: `TOWERHOOK_SECRET_github_token=...`.
pub const SECRET_ENV_PREFIX: &str = "TOWERHOOK_SECRET_";
/// Environment variables with this prefix are settings.
pub const ENV_PREFIX: &str = "TOWERHOOK_";
/// Variables with the prefix that are not settings: the config file path and the test
/// harness' own knobs.
const ENV_NOT_SETTINGS: &[&str] = &[
    "TOWERHOOK_CONFIG",
    "TOWERHOOK_TEST_",
    // `towerhook odoo-setup`'s administrator credentials, never kept in settings.
    "TOWERHOOK_ODOO_ADMIN_",
    SECRET_ENV_PREFIX,
];

/// How towerhook talks to Odoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// JSON-2 on Odoo 19 and later, JSON-RPC before.
    Auto,
    /// `/jsonrpc` (Odoo 8–19).
    JsonRpc,
    /// `/xmlrpc/2/common` and `/xmlrpc/2/object`.
    XmlRpc,
    /// `/json/2/<model>/<method>` with a bearer API key (Odoo 19+).
    Json2,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Auto => "auto",
            Protocol::JsonRpc => "jsonrpc",
            Protocol::XmlRpc => "xmlrpc",
            Protocol::Json2 => "json2",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A directory of Cetmix Tower YAML files.
    Yaml,
    /// The webhooks and authenticators of an Odoo database, over its external API.
    Odoo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// Records stay in the local SQLite store, pruned after `retention_days`.
    Local,
    /// Records go through the local outbox to `cx.tower.webhook.log` in Odoo.
    Odoo,
}

/// SQLite `synchronous` level of the log store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// fsync on every (group) commit: survives power loss.
    Full,
    /// WAL without fsync per commit: survives a killed process, not a power cut.
    Normal,
}

/// What webhook code runs as when its "Run as User" has no credentials in `run_as_users`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunAsPolicy {
    /// The call fails, naming the user and the setting to add.
    Strict,
    /// The code runs as the service user instead (logged).
    Service,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server listens on.
    pub listen: String,
    /// actix-web worker threads; 0 means one per core.
    pub workers: usize,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Seconds a client may take to send its request body.
    pub body_timeout_secs: u64,
    /// Addresses or networks of the reverse proxies in front of towerhook: calls through
    /// them are judged by the address the proxy saw (X-Forwarded-For), for every webhook.
    #[serde(deserialize_with = "string_or_list")]
    pub trusted_proxies: Vec<String>,

    /// Where webhook and authenticator definitions come from.
    pub source: SourceKind,
    /// Directory of YAML files for `source = "yaml"`.
    pub yaml_dir: PathBuf,
    /// YAML mapping `reference: value` of secret values for the YAML source (kept apart
    /// from the definitions); `TOWERHOOK_SECRET_<reference>` variables add to it.
    pub secrets_file: Option<PathBuf>,

    /// Where call logs go.
    pub log_sink: SinkKind,
    /// Directory for the local SQLite store.
    pub data_dir: PathBuf,
    /// Local log records older than this many days are deleted.
    pub retention_days: u32,
    /// Request headers whose values are replaced before a log record is stored.
    #[serde(deserialize_with = "string_or_list")]
    pub redact_headers: Vec<String>,
    /// SQLite durability of a committed log record.
    pub log_store_sync: SyncMode,
    /// Log records sent to Odoo in one `create` at most.
    pub outbox_batch_size: usize,
    /// A batch smaller than `outbox_batch_size` waits at most this long to fill up.
    pub outbox_batch_age_ms: u64,
    /// Records not yet in Odoo beyond which new calls get 503 (0: no bound).
    pub outbox_max_records: u64,
    /// Bytes of records not yet in Odoo beyond which new calls get 503 (0: no bound).
    pub outbox_max_bytes: u64,
    /// Longest wait between two shipping attempts while Odoo fails.
    pub outbox_retry_max_secs: f64,
    /// A MaxMind-format country database (GeoLite2/GeoIP2 Country or City); without it the
    /// log's country stays empty.
    pub geoip_database: Option<PathBuf>,

    /// Worker processes that run snippets, each with its own interpreter; 0: one per core.
    pub python_workers: usize,
    /// Worker processes at most: while every worker is busy and calls wait (snippets that
    /// wait on HTTP or Odoo), more start, and end again after 30 s without calls. 0: four
    /// times `python_workers`.
    pub python_workers_max: usize,
    /// Snippet threads in each worker (they share its GIL: more let snippets that wait on
    /// I/O overlap, but a snippet killed for its time takes the others of its worker along).
    pub python_threads: usize,
    /// Calls waiting for a snippet worker before new ones are shed with 503.
    pub python_queue: usize,
    /// Calls after which a worker is replaced by a fresh one.
    pub worker_max_calls: u64,
    /// Memory one worker may allocate (RLIMIT_DATA), in MiB; 0: unlimited.
    pub worker_memory_mb: u64,
    /// Files and sockets one worker may hold open.
    pub worker_open_files: u64,
    /// CPU seconds one call may use in its worker (the worker is killed beyond); 0:
    /// unlimited.
    pub worker_cpu_secs: u64,
    /// The unprivileged user workers run as when towerhook runs as root.
    pub worker_user: String,
    /// The program workers are started from: towerhook itself (leave unset), or another
    /// towerhook binary.
    pub worker_program: Option<PathBuf>,
    /// Directory holding the Python packages snippets may use.
    pub python_packages_dir: PathBuf,
    /// Wall-clock limit of one snippet, in seconds.
    pub snippet_timeout_secs: f64,
    /// Deepest Python recursion a snippet may reach (interpreter-wide).
    pub python_recursion_limit: u32,
    /// Longest message a snippet may return, in characters; longer ones are cut.
    pub max_message_chars: usize,
    /// Proxy URL every outgoing HTTP request of a snippet goes through (http and https),
    /// e.g. `http://user:pass@proxy:3128`; snippets never see it. None: direct.
    pub outbound_proxy: Option<SecretString>,
    /// Timeout of a snippet's outgoing HTTP request when the snippet sets none, in seconds
    /// (always also bounded by the snippet's remaining time).
    pub outbound_timeout_secs: f64,
    /// The public base URL senders call (e.g. `https://odoo.example.com`), for the `url` of
    /// snippets (Twilio signs it). Unset: rebuilt from a trusted proxy's X-Forwarded-Proto
    /// and X-Forwarded-Host, or from the request's Host.
    pub public_url: Option<String>,
    /// Largest body a snippet's shaped `response` may have, in bytes.
    pub max_response_bytes: usize,

    /// Log output of the process itself.
    pub log_format: LogFormat,
    /// After SIGTERM, how long calls in flight may take to finish.
    pub shutdown_grace_secs: f64,
    /// After SIGTERM, how long towerhook still accepts calls while `/readyz` already says
    /// it is shutting down, so that a load balancer takes it out of rotation first.
    pub shutdown_delay_secs: f64,

    /// Base URL of Odoo, e.g. `https://odoo.example.com`.
    pub odoo_url: Option<String>,
    /// Database name.
    pub odoo_db: Option<String>,
    /// Login of towerhook's service user.
    pub odoo_login: Option<String>,
    /// API key (or password) of the service user.
    pub odoo_api_key: Option<SecretString>,
    /// `auto`, `jsonrpc`, `xmlrpc` or `json2`.
    pub odoo_protocol: Protocol,
    /// Limit of one call to Odoo, in seconds.
    pub odoo_timeout_secs: f64,
    /// Further attempts after a transport failure or a 5xx answer.
    pub odoo_retries: usize,
    /// Seconds between two checks for changed definitions.
    pub odoo_poll_secs: f64,

    /// Bearer token of `POST /admin/reload`; without one the route does not exist.
    pub admin_token: Option<SecretString>,

    /// towerhook extension (src/delivery): asynchronous calls waiting in the queue beyond
    /// which new ones get 503.
    pub queue_max_calls: usize,
    /// Wait before the second run of a queued call whose code failed; it doubles with each
    /// failure.
    pub queue_retry_first_secs: f64,
    /// Longest wait between two runs of a failing queued call.
    pub queue_retry_max_secs: f64,
    /// Webhooks whose queued calls run at the same time (each webhook's calls run one at
    /// a time, in arrival order); 0: `python_workers`.
    pub queue_parallel: usize,

    /// Credentials of the Odoo users webhook code runs as ("Run as User"): user id or
    /// login → API key. The superuser (1) runs as the service user.
    #[serde(deserialize_with = "map_or_pairs")]
    pub run_as_users: BTreeMap<String, SecretString>,
    /// A "Run as User" without credentials: `strict` fails the call, `service` runs the
    /// code as the service user.
    pub run_as_policy: RunAsPolicy,
}

/// The demo definitions, relative to the working directory (the repository's root for
/// `scripts/run.sh`); a deployment names its own `yaml_dir`.
fn demo_dir() -> PathBuf {
    PathBuf::from("demo")
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            workers: 0,
            max_body_bytes: 1024 * 1024,
            body_timeout_secs: 30,
            trusted_proxies: Vec::new(),
            source: SourceKind::Yaml,
            yaml_dir: demo_dir().join("webhooks"),
            secrets_file: None,
            log_sink: SinkKind::Local,
            data_dir: PathBuf::from("data"),
            retention_days: 30,
            redact_headers: [
                "Authorization",
                "Proxy-Authorization",
                "Cookie",
                "X-Api-Key",
            ]
            .map(String::from)
            .to_vec(),
            log_store_sync: SyncMode::Full,
            outbox_batch_size: 200,
            outbox_batch_age_ms: 500,
            outbox_max_records: 1_000_000,
            outbox_max_bytes: 1024 * 1024 * 1024,
            outbox_retry_max_secs: 60.0,
            geoip_database: None,
            python_workers: 0,
            python_workers_max: 0,
            python_threads: 1,
            python_queue: 1024,
            worker_max_calls: 10_000,
            worker_memory_mb: 512,
            worker_open_files: 256,
            worker_cpu_secs: 60,
            worker_user: "nobody".into(),
            worker_program: None,
            python_packages_dir: PathBuf::from(".python-packages"),
            snippet_timeout_secs: 30.0,
            python_recursion_limit: 1000,
            max_message_chars: 64 * 1024,
            outbound_proxy: None,
            outbound_timeout_secs: 30.0,
            public_url: None,
            max_response_bytes: 1024 * 1024,
            log_format: LogFormat::Text,
            shutdown_grace_secs: 30.0,
            shutdown_delay_secs: 0.0,
            odoo_url: None,
            odoo_db: None,
            odoo_login: None,
            odoo_api_key: None,
            odoo_protocol: Protocol::Auto,
            odoo_timeout_secs: 10.0,
            odoo_retries: 3,
            odoo_poll_secs: 5.0,
            admin_token: None,
            queue_max_calls: 100_000,
            queue_retry_first_secs: 1.0,
            queue_retry_max_secs: 300.0,
            queue_parallel: 0,
            run_as_users: BTreeMap::new(),
            run_as_policy: RunAsPolicy::Strict,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {source}")]
    File {
        path: PathBuf,
        source: config::ConfigError,
    },
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Defaults, overlaid by `file` (if any), overlaid by the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Same as [`Settings::load`] with an explicit environment (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::Invalid(format!(
                    "configuration file {} does not exist",
                    path.display()
                )));
            }
            builder = builder.add_source(
                config::File::from(path.to_path_buf()).format(config::FileFormat::Toml),
            );
        }
        for (key, value) in settings_from_env(env) {
            builder = builder
                .set_override(key.as_str(), value)
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        let layered = builder.build().map_err(|source| match file {
            Some(path) => ConfigError::File {
                path: path.to_path_buf(),
                source,
            },
            None => ConfigError::Invalid(source.to_string()),
        })?;
        let mut settings: Settings = layered
            .try_deserialize()
            .map_err(|e| ConfigError::Invalid(explain_unknown_key(&e.to_string())))?;
        // An empty value (`TOWERHOOK_ADMIN_TOKEN=`) means unset, not "the empty token".
        for value in [
            &mut settings.odoo_url,
            &mut settings.odoo_db,
            &mut settings.odoo_login,
            &mut settings.public_url,
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                *value = None;
            }
        }
        for secret in [
            &mut settings.admin_token,
            &mut settings.odoo_api_key,
            &mut settings.outbound_proxy,
        ] {
            if secret
                .as_ref()
                .is_some_and(|v| v.expose_secret().trim().is_empty())
            {
                *secret = None;
            }
        }
        // The demo definitions come with their demo secrets.
        if settings.secrets_file.is_none() && settings.yaml_dir == Settings::default().yaml_dir {
            settings.secrets_file = Some(demo_dir().join("secrets.yaml"));
        }
        settings.validate()?;
        // Snippet workers may start in another directory than the server's.
        if let Ok(absolute) = std::path::absolute(&settings.python_packages_dir) {
            settings.python_packages_dir = absolute;
        }
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "listen = {:?} is not an address such as 127.0.0.1:8080",
                self.listen
            ));
        }
        for entry in &self.trusted_proxies {
            // The allowlists' own parsing: a network, or a bare address.
            for token in entry.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if token.parse::<ipnetwork::IpNetwork>().is_err()
                    && token.parse::<std::net::IpAddr>().is_err()
                {
                    problems.push(format!(
                        "trusted_proxies: {token:?} is not an address or network"
                    ));
                }
            }
        }
        if self.python_threads == 0 {
            problems.push("python_threads must be at least 1".to_string());
        }
        if self.python_queue == 0 {
            problems.push("python_queue must be at least 1".to_string());
        }
        if !(50..=100_000).contains(&self.python_recursion_limit) {
            problems.push("python_recursion_limit must be between 50 and 100000".to_string());
        }
        if self.max_message_chars == 0 {
            problems.push("max_message_chars must be at least 1".to_string());
        }
        if self.max_body_bytes == 0 {
            problems.push("max_body_bytes must be at least 1".to_string());
        }
        if !(self.snippet_timeout_secs > 0.0 && self.snippet_timeout_secs.is_finite()) {
            problems.push("snippet_timeout_secs must be a positive number".to_string());
        }
        if !(self.outbound_timeout_secs > 0.0 && self.outbound_timeout_secs.is_finite()) {
            problems.push("outbound_timeout_secs must be a positive number".to_string());
        }
        if let Some(proxy) = self
            .outbound_proxy
            .as_ref()
            .map(ExposeSecret::expose_secret)
        {
            // The URL may hold a password: the message does not repeat it.
            if !(proxy.starts_with("http://") || proxy.starts_with("https://")) {
                problems.push("outbound_proxy must be an http:// or https:// URL".to_string());
            }
        }
        if self.outbox_batch_size == 0 || self.outbox_retry_max_secs <= 0.0 {
            problems.push("outbox_batch_size and outbox_retry_max_secs must be positive".into());
        }
        if (self.source == SourceKind::Odoo || self.log_sink == SinkKind::Odoo)
            && !self.odoo_configured()
        {
            problems.push(
                "the Odoo source or log sink needs odoo_url, odoo_db, odoo_login and \
                 odoo_api_key"
                    .to_string(),
            );
        }
        if self.source == SourceKind::Odoo {
            for (key, value) in [
                ("odoo_url", self.odoo_url.as_deref()),
                ("odoo_db", self.odoo_db.as_deref()),
                ("odoo_login", self.odoo_login.as_deref()),
                (
                    "odoo_api_key",
                    self.odoo_api_key.as_ref().map(ExposeSecret::expose_secret),
                ),
            ] {
                if value.is_none_or(|v| v.trim().is_empty()) {
                    problems.push(format!(
                        "source = \"odoo\" needs {key} (variable {ENV_PREFIX}{})",
                        key.to_ascii_uppercase()
                    ));
                }
            }
        }
        let duration = |secs: f64| secs >= 0.0 && secs.is_finite();
        if !duration(self.shutdown_grace_secs) || !duration(self.shutdown_delay_secs) {
            problems
                .push("shutdown_grace_secs and shutdown_delay_secs must be 0 or more".to_string());
        }
        if !(self.queue_retry_first_secs > 0.0
            && self.queue_retry_max_secs >= self.queue_retry_first_secs
            && self.queue_retry_max_secs.is_finite())
        {
            problems.push(
                "queue_retry_first_secs must be positive and queue_retry_max_secs at least as \
                 long"
                    .to_string(),
            );
        }
        if !(self.odoo_poll_secs > 0.0 && self.odoo_timeout_secs > 0.0) {
            problems.push("odoo_poll_secs and odoo_timeout_secs must be positive".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems.join("; ")))
        }
    }

    pub fn log_store_path(&self) -> PathBuf {
        self.data_dir.join("towerhook.sqlite3")
    }

    /// Whether the settings name an Odoo to talk to.
    pub fn odoo_configured(&self) -> bool {
        self.odoo_url.is_some()
            && self.odoo_db.is_some()
            && self.odoo_login.is_some()
            && self.odoo_api_key.is_some()
    }
}

/// `TOWERHOOK_RETENTION_DAYS=7` becomes `("retention_days", "7")`.
fn settings_from_env(env: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
    env.into_iter()
        .filter(|(name, _)| {
            name.starts_with(ENV_PREFIX)
                && !ENV_NOT_SETTINGS
                    .iter()
                    .any(|excluded| name.starts_with(excluded))
        })
        .map(|(name, value)| (name[ENV_PREFIX.len()..].to_ascii_lowercase(), value))
        .collect()
}

fn explain_unknown_key(message: &str) -> String {
    // serde says "unknown field `x`, expected one of ..."; name the variable as well.
    match message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
    {
        Some(key) => format!(
            "unknown setting `{key}` (file key `{key}` or variable {ENV_PREFIX}{})",
            key.to_ascii_uppercase()
        ),
        None => message.to_string(),
    }
}

/// Maps may be written as a TOML table or, from the environment, as `k=v,k2=v2`.
fn map_or_pairs<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Map(BTreeMap<String, String>),
        Text(String),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Map(map) => Ok(map
            .into_iter()
            .map(|(user, key)| (user, SecretString::from(key)))
            .collect()),
        Raw::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                pair.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), SecretString::from(v.trim())))
                    .ok_or_else(|| {
                        serde::de::Error::custom(format!(
                            "{pair:?} is not `user=api-key` (user: an id or a login)"
                        ))
                    })
            })
            .collect(),
    }
}

/// Lists may be written as a TOML array or, from the environment, as `a,b,c`.
fn string_or_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Raw::deserialize(deserializer)? {
        Raw::List(items) => items,
        Raw::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(String::from)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_serve_the_demo_on_localhost() {
        let settings = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(settings.listen, "127.0.0.1:8080");
        assert!(settings.yaml_dir.ends_with("demo/webhooks"));
        assert_eq!(settings.retention_days, 30);
        assert_eq!(settings.max_body_bytes, 1_048_576);
    }

    #[test]
    fn environment_overrides_file_and_keeps_strings_intact() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("towerhook.toml");
        std::fs::write(&file, "retention_days = 10\nlisten = \"0.0.0.0:9000\"\n").unwrap();
        let settings = Settings::load_from(
            Some(&file),
            env(&[
                ("TOWERHOOK_RUN_AS_USERS", "5=key-five, jdoe = key-j"),
                ("TOWERHOOK_RETENTION_DAYS", "7"),
                ("TOWERHOOK_REDACT_HEADERS", "Authorization, X-Signature"),
                ("TOWERHOOK_TEST_ODOO_URL", "http://ignored"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.retention_days, 7);
        assert_eq!(settings.listen, "0.0.0.0:9000");
        assert_eq!(settings.redact_headers, ["Authorization", "X-Signature"]);
        assert_eq!(settings.run_as_users["5"].expose_secret(), "key-five");
        assert_eq!(settings.run_as_users["jdoe"].expose_secret(), "key-j");
    }

    /// Settings end up in debug output and error reports: their secrets do not.
    #[test]
    fn secrets_never_print() {
        let settings = Settings::load_from(
            None,
            env(&[
                ("TOWERHOOK_ODOO_API_KEY", "odoo-key-1f3a"),
                ("TOWERHOOK_ADMIN_TOKEN", "admin-token-9c2e"),
                ("TOWERHOOK_RUN_AS_USERS", "5=run-as-key-77d0"),
                (
                    "TOWERHOOK_OUTBOUND_PROXY",
                    "http://u:proxy-pass-4b1e@proxy:3128",
                ),
            ]),
        )
        .unwrap();
        let printed = format!("{settings:?}");
        for secret in [
            "odoo-key-1f3a",
            "admin-token-9c2e",
            "run-as-key-77d0",
            "proxy-pass-4b1e",
        ] {
            assert!(!printed.contains(secret), "{secret} printed: {printed}");
        }
        let client = crate::odoo::ClientSettings {
            url: "http://odoo".into(),
            database: "db".into(),
            login: "towerhook".into(),
            secret: "client-key-5e6f".into(),
            protocol: crate::odoo::Protocol::Auto,
            timeout: std::time::Duration::from_secs(1),
            retries: 0,
        };
        assert!(!format!("{client:?}").contains("client-key-5e6f"));
    }

    #[test]
    fn empty_values_mean_unset() {
        let settings = Settings::load_from(None, env(&[("TOWERHOOK_ADMIN_TOKEN", "")])).unwrap();
        assert!(settings.admin_token.is_none());
    }

    #[test]
    fn outbound_proxy_and_timeout() {
        let settings = Settings::load_from(None, env(&[])).unwrap();
        assert!(settings.outbound_proxy.is_none());
        assert_eq!(settings.outbound_timeout_secs, 30.0);
        let settings = Settings::load_from(
            None,
            env(&[
                ("TOWERHOOK_OUTBOUND_PROXY", "http://u:p@proxy:3128"),
                ("TOWERHOOK_OUTBOUND_TIMEOUT_SECS", "2.5"),
            ]),
        )
        .unwrap();
        assert_eq!(
            settings
                .outbound_proxy
                .as_ref()
                .map(ExposeSecret::expose_secret),
            Some("http://u:p@proxy:3128")
        );
        assert_eq!(settings.outbound_timeout_secs, 2.5);
        let settings = Settings::load_from(None, env(&[("TOWERHOOK_OUTBOUND_PROXY", "")])).unwrap();
        assert!(settings.outbound_proxy.is_none());
        let err = Settings::load_from(
            None,
            env(&[("TOWERHOOK_OUTBOUND_PROXY", "socks5://u:secret@proxy:1080")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("outbound_proxy") && !err.contains("secret"),
            "{err}"
        );
        let err = Settings::load_from(None, env(&[("TOWERHOOK_OUTBOUND_TIMEOUT_SECS", "0")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("outbound_timeout_secs"), "{err}");
    }

    #[test]
    fn unknown_variable_is_named() {
        let err = Settings::load_from(None, env(&[("TOWERHOOK_RETENTON_DAYS", "7")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("TOWERHOOK_RETENTON_DAYS"), "{err}");
    }

    #[test]
    fn bad_values_are_reported() {
        let err = Settings::load_from(None, env(&[("TOWERHOOK_LISTEN", "localhost")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen"), "{err}");
        let err = Settings::load_from(None, env(&[("TOWERHOOK_RETENTION_DAYS", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("retention_days"), "{err}");
    }
}
