//! A webhook's delivery settings (towerhook extensions), as its definition writes them: YAML
//! keys (`dedup_key`, `mode`, ...) or the companion addon's `towerhook_*` fields of
//! `cx.tower.webhook`. Every key is optional; an absent one takes its default. What was
//! written is kept apart from what applies, because an import writes to Odoo only the keys
//! the files name (as it does for `user_id`: files exported by the module itself have none
//! of them, and must not reset them).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// How long a delivery id is remembered unless `dedup_window_secs` says otherwise: 24 h.
pub const DEFAULT_DEDUP_WINDOW_SECS: u64 = 24 * 3600;
/// Further runs of a queued call whose code fails, unless `retries` says otherwise.
pub const DEFAULT_RETRIES: u64 = 5;
/// What an accepted asynchronous call is answered unless `async_status` says otherwise.
pub const DEFAULT_ASYNC_STATUS: u16 = 202;
pub const DEFAULT_ASYNC_MESSAGE: &str = "Accepted";

/// Bounds of the values, checked where definitions are read (YAML, Odoo, the addon).
const MAX_DEDUP_WINDOW_SECS: u64 = 366 * 24 * 3600;
/// A body is sent to a snippet worker in one frame of at most 256 MiB with its payload.
pub const MAX_BODY_BYTES: u64 = 100 * 1024 * 1024;
const MAX_CONCURRENT_CALLS: u64 = 100_000;
const MAX_RATE_PER_MINUTE: u64 = 6_000_000;
const MAX_RETRIES: u64 = 100;
const MAX_ASYNC_MESSAGE_CHARS: usize = 4096;

/// The YAML keys, in the order the export writes them; each is `towerhook_<key>` in Odoo.
pub const KEYS: &[&str] = &[
    "dedup_key",
    "dedup_window_secs",
    "max_body_bytes",
    "max_concurrent_calls",
    "rate_per_minute",
    "mode",
    "retries",
    "async_status",
    "async_message",
];

/// The Odoo field of a YAML key.
pub fn odoo_field(key: &str) -> String {
    format!("towerhook_{key}")
}

/// When a webhook's code runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// During the call, as the module does.
    #[default]
    Sync,
    /// From the durable queue, after the call was answered.
    Async,
}

impl Mode {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "sync" => Some(Mode::Sync),
            "async" => Some(Mode::Async),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::Async => "async",
        }
    }
}

/// Where a call carries its delivery id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupKey<'a> {
    /// A request header (case-insensitive), e.g. `X-GitHub-Delivery`.
    Header(&'a str),
    /// A dotted path into the payload (the JSON body; the form or query fields of form and
    /// GET webhooks), e.g. `event.id`.
    Payload(&'a str),
}

impl<'a> DedupKey<'a> {
    /// `header:NAME` or `json:a.b.c`.
    pub fn parse(text: &'a str) -> Result<Self, String> {
        let expected = "must be `header:<Header-Name>` or `json:<field>[.<field>...]`";
        match text.split_once(':') {
            Some(("header", name)) => {
                // werkzeug (and towerhook) drop headers whose name has `_`.
                if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    Ok(DedupKey::Header(name))
                } else {
                    Err(format!(
                        "{expected}: {name:?} is not a header name (letters, digits and `-`)"
                    ))
                }
            }
            Some(("json", path)) => {
                if !path.is_empty() && path.split('.').all(|part| !part.trim().is_empty()) {
                    Ok(DedupKey::Payload(path))
                } else {
                    Err(format!("{expected}: {path:?} has an empty field name"))
                }
            }
            _ => Err(format!("{expected}, not {text:?}")),
        }
    }
}

/// The settings as written; `None`: not given, the default applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// `header:NAME` or `json:path`; `Some("")` written explicitly as none.
    pub dedup_key: Option<String>,
    pub dedup_window_secs: Option<u64>,
    /// 0: the server's `max_body_bytes`.
    pub max_body_bytes: Option<u64>,
    /// 0: no limit.
    pub max_concurrent_calls: Option<u64>,
    /// Calls per minute from one client address; 0: no limit.
    pub rate_per_minute: Option<u64>,
    pub mode: Option<Mode>,
    pub retries: Option<u64>,
    pub async_status: Option<u64>,
    pub async_message: Option<String>,
}

impl Policy {
    /// Whether calls go straight through the module's flow: no setting needs the call
    /// watched (the body limit is applied where the body is read).
    pub fn is_plain(&self) -> bool {
        self.dedup_key().is_none()
            && self.max_concurrent_calls().is_none()
            && self.rate_per_minute().is_none()
            && self.mode() == Mode::Sync
    }

    /// The delivery id's place; `None` without a (valid) key.
    pub fn dedup_key(&self) -> Option<DedupKey<'_>> {
        self.dedup_key
            .as_deref()
            .filter(|text| !text.is_empty())
            .and_then(|text| DedupKey::parse(text).ok())
    }

    pub fn dedup_window_secs(&self) -> u64 {
        self.dedup_window_secs
            .filter(|&secs| secs > 0)
            .unwrap_or(DEFAULT_DEDUP_WINDOW_SECS)
    }

    /// The body limit, given the server's.
    pub fn max_body_bytes(&self, server: usize) -> usize {
        match self.max_body_bytes {
            Some(bytes) if bytes > 0 => bytes as usize,
            _ => server,
        }
    }

    pub fn max_concurrent_calls(&self) -> Option<u64> {
        self.max_concurrent_calls.filter(|&n| n > 0)
    }

    pub fn rate_per_minute(&self) -> Option<u64> {
        self.rate_per_minute.filter(|&n| n > 0)
    }

    pub fn mode(&self) -> Mode {
        self.mode.unwrap_or_default()
    }

    pub fn retries(&self) -> u64 {
        self.retries.unwrap_or(DEFAULT_RETRIES)
    }

    pub fn async_status(&self) -> u16 {
        self.async_status
            .filter(|status| (200..300).contains(status))
            .map_or(DEFAULT_ASYNC_STATUS, |status| status as u16)
    }

    pub fn async_message(&self) -> &str {
        self.async_message
            .as_deref()
            .filter(|text| !text.is_empty())
            .unwrap_or(DEFAULT_ASYNC_MESSAGE)
    }

    /// Every value out of its bounds: (YAML key, what is wrong).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if let Some(text) = self.dedup_key.as_deref().filter(|t| !t.is_empty())
            && let Err(message) = DedupKey::parse(text)
        {
            problems.push(("dedup_key", message));
        }
        let mut bounded = |key: &'static str, value: Option<u64>, low: u64, high: u64| {
            if let Some(value) = value
                && !(low..=high).contains(&value)
            {
                problems.push((
                    key,
                    format!("must be between {low} and {high}, not {value}"),
                ));
            }
        };
        bounded(
            "dedup_window_secs",
            self.dedup_window_secs,
            1,
            MAX_DEDUP_WINDOW_SECS,
        );
        bounded("max_body_bytes", self.max_body_bytes, 0, MAX_BODY_BYTES);
        bounded(
            "max_concurrent_calls",
            self.max_concurrent_calls,
            0,
            MAX_CONCURRENT_CALLS,
        );
        bounded(
            "rate_per_minute",
            self.rate_per_minute,
            0,
            MAX_RATE_PER_MINUTE,
        );
        bounded("retries", self.retries, 0, MAX_RETRIES);
        bounded("async_status", self.async_status, 200, 299);
        if let Some(message) = &self.async_message
            && message.chars().count() > MAX_ASYNC_MESSAGE_CHARS
        {
            problems.push((
                "async_message",
                format!("must be at most {MAX_ASYNC_MESSAGE_CHARS} characters"),
            ));
        }
        problems
    }

    /// The effective value of each key, as Odoo's `towerhook_*` fields hold it.
    pub fn odoo_values(&self) -> Map<String, Value> {
        let mut values = Map::new();
        for key in KEYS {
            values.insert(odoo_field(key), self.effective(key));
        }
        values
    }

    /// The Odoo values of the keys this policy was written with (an import writes these).
    pub fn written_odoo_values(&self) -> Map<String, Value> {
        let mut values = Map::new();
        for key in self.written_keys() {
            values.insert(odoo_field(key), self.effective(key));
        }
        values
    }

    /// The keys given in the definition.
    pub fn written_keys(&self) -> Vec<&'static str> {
        let given = [
            self.dedup_key.is_some(),
            self.dedup_window_secs.is_some(),
            self.max_body_bytes.is_some(),
            self.max_concurrent_calls.is_some(),
            self.rate_per_minute.is_some(),
            self.mode.is_some(),
            self.retries.is_some(),
            self.async_status.is_some(),
            self.async_message.is_some(),
        ];
        KEYS.iter()
            .zip(given)
            .filter(|(_, given)| *given)
            .map(|(key, _)| *key)
            .collect()
    }

    /// A key's effective value in Odoo's terms (text or integer).
    fn effective(&self, key: &str) -> Value {
        match key {
            "dedup_key" => json!(self.dedup_key.clone().unwrap_or_default()),
            "dedup_window_secs" => json!(self.dedup_window_secs()),
            "max_body_bytes" => json!(self.max_body_bytes.unwrap_or(0)),
            "max_concurrent_calls" => json!(self.max_concurrent_calls.unwrap_or(0)),
            "rate_per_minute" => json!(self.rate_per_minute.unwrap_or(0)),
            "mode" => json!(self.mode().as_str()),
            "retries" => json!(self.retries()),
            "async_status" => json!(self.async_status()),
            "async_message" => json!(self.async_message()),
            _ => Value::Null,
        }
    }

    /// The settings of a `cx.tower.webhook` row read with the addon's fields; all defaults
    /// when the row has none (no addon). Odoo integers cannot be empty: 0 stands for "the
    /// default" where 0 is not a value of its own.
    pub fn from_odoo(row: &Value) -> Self {
        let text = |key: &str| match row.get(odoo_field(key)) {
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Bool(false)) => Some(String::new()),
            _ => None,
        };
        let int = |key: &str| row.get(odoo_field(key)).and_then(Value::as_u64);
        let positive = |key: &str| int(key).filter(|&n| n > 0);
        Self {
            dedup_key: text("dedup_key"),
            dedup_window_secs: positive("dedup_window_secs"),
            max_body_bytes: int("max_body_bytes"),
            max_concurrent_calls: int("max_concurrent_calls"),
            rate_per_minute: int("rate_per_minute"),
            mode: text("mode").and_then(|mode| Mode::parse(&mode)),
            retries: int("retries"),
            async_status: positive("async_status"),
            async_message: text("async_message"),
        }
    }

    /// What an export writes: the keys whose value is not the default.
    pub fn export(&self) -> Export<'_> {
        let defaults = Policy::default();
        let differs = |key: &str| self.effective(key) != defaults.effective(key);
        Export {
            dedup_key: self.dedup_key.as_deref().filter(|_| differs("dedup_key")),
            dedup_window_secs: differs("dedup_window_secs").then(|| self.dedup_window_secs()),
            max_body_bytes: self.max_body_bytes.filter(|_| differs("max_body_bytes")),
            max_concurrent_calls: self
                .max_concurrent_calls
                .filter(|_| differs("max_concurrent_calls")),
            rate_per_minute: self.rate_per_minute.filter(|_| differs("rate_per_minute")),
            mode: differs("mode").then(|| self.mode().as_str()),
            retries: differs("retries").then(|| self.retries()),
            async_status: differs("async_status").then(|| self.async_status()),
            async_message: differs("async_message").then(|| self.async_message()),
        }
    }

    /// Reads the keys of a YAML webhook record; `fail(key, message)` for each bad value.
    pub fn from_yaml(record: &Map<String, Value>, mut fail: impl FnMut(&str, String)) -> Self {
        let mut text = |key: &str| match record.get(key) {
            None | Some(Value::Null) => None,
            // The module's export writes empty text as `false`.
            Some(Value::Bool(false)) => Some(String::new()),
            Some(Value::String(text)) => Some(text.trim().to_string()),
            Some(other) => {
                fail(key, format!("must be text, not {}", kind(other)));
                None
            }
        };
        let dedup_key = text("dedup_key");
        let mode_text = text("mode");
        let async_message = text("async_message");
        let mut policy = Self {
            dedup_key,
            async_message,
            ..Self::default()
        };
        if let Some(mode) = mode_text.filter(|m| !m.is_empty()) {
            match Mode::parse(&mode) {
                Some(mode) => policy.mode = Some(mode),
                None => fail("mode", format!("must be `sync` or `async`, not {mode:?}")),
            }
        }
        for (key, slot) in [
            ("dedup_window_secs", &mut policy.dedup_window_secs),
            ("max_body_bytes", &mut policy.max_body_bytes),
            ("max_concurrent_calls", &mut policy.max_concurrent_calls),
            ("rate_per_minute", &mut policy.rate_per_minute),
            ("retries", &mut policy.retries),
            ("async_status", &mut policy.async_status),
        ] {
            match record.get(key) {
                None | Some(Value::Null) => {}
                Some(value) => match value.as_u64() {
                    Some(number) => *slot = Some(number),
                    None => fail(
                        key,
                        format!("must be a whole number of 0 or more, not {}", kind(value)),
                    ),
                },
            }
        }
        for (key, message) in policy.problems() {
            fail(key, message);
        }
        policy
    }
}

/// The non-default keys of a webhook, as the export writes them (after the module's keys).
#[derive(Debug, Serialize)]
pub struct Export<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    dedup_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dedup_window_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_body_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_concurrent_calls: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_per_minute: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retries: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    async_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    async_message: Option<&'a str>,
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "a negative number",
        Value::Number(_) => "a fraction",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> (Policy, Vec<String>) {
        let record: Map<String, Value> = serde_saphyr::from_str(text).unwrap();
        let mut problems = Vec::new();
        let policy = Policy::from_yaml(&record, |key, message| {
            problems.push(format!("{key}: {message}"))
        });
        (policy, problems)
    }

    #[test]
    fn dedup_keys_name_a_header_or_a_payload_path() {
        assert_eq!(
            DedupKey::parse("header:X-GitHub-Delivery"),
            Ok(DedupKey::Header("X-GitHub-Delivery"))
        );
        assert_eq!(
            DedupKey::parse("json:event.id"),
            Ok(DedupKey::Payload("event.id"))
        );
        for bad in [
            "header:",
            "header:X_Id",
            "json:",
            "json:a..b",
            "id",
            "query:x",
        ] {
            assert!(DedupKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn absent_keys_take_the_defaults_and_are_not_written() {
        let (policy, problems) = yaml("reference: x\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert!(policy.is_plain());
        assert_eq!(policy.dedup_window_secs(), 24 * 3600);
        assert_eq!(policy.mode(), Mode::Sync);
        assert_eq!(policy.retries(), 5);
        assert_eq!(policy.async_status(), 202);
        assert_eq!(policy.max_body_bytes(1000), 1000);
        assert!(policy.written_keys().is_empty());
        assert_eq!(serde_json::to_string(&policy.export()).unwrap(), "{}");
    }

    #[test]
    fn written_keys_are_kept_even_at_their_default() {
        let (policy, problems) =
            yaml("mode: sync\ndedup_key: false\nretries: 0\nmax_body_bytes: 10\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            policy.written_keys(),
            ["dedup_key", "max_body_bytes", "mode", "retries"]
        );
        let written = policy.written_odoo_values();
        assert_eq!(written["towerhook_mode"], "sync");
        assert_eq!(written["towerhook_dedup_key"], "");
        assert_eq!(written["towerhook_retries"], 0);
        // Only what differs from the default is exported.
        assert_eq!(
            serde_json::to_string(&policy.export()).unwrap(),
            r#"{"max_body_bytes":10,"retries":0}"#
        );
    }

    #[test]
    fn bad_values_are_named_by_key() {
        let (_, problems) = yaml(
            "dedup_key: id\ndedup_window_secs: 0\nmode: later\nretries: -1\nasync_status: 404\n\
             rate_per_minute: 1.5\nmax_concurrent_calls: many\n",
        );
        let text = problems.join("\n");
        for expected in [
            "dedup_key: must be `header:<Header-Name>`",
            "dedup_window_secs: must be between 1 and",
            "mode: must be `sync` or `async`, not \"later\"",
            "retries: must be a whole number of 0 or more, not a negative number",
            "async_status: must be between 200 and 299, not 404",
            "rate_per_minute: must be a whole number of 0 or more, not a fraction",
            "max_concurrent_calls: must be a whole number of 0 or more, not text",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn odoo_rows_read_zero_as_the_default_where_zero_is_not_a_value() {
        let row = json!({
            "towerhook_dedup_key": "header:Webhook-Id", "towerhook_dedup_window_secs": 0,
            "towerhook_max_body_bytes": 0, "towerhook_max_concurrent_calls": 2,
            "towerhook_rate_per_minute": 0, "towerhook_mode": "async", "towerhook_retries": 0,
            "towerhook_async_status": 0, "towerhook_async_message": false,
        });
        let policy = Policy::from_odoo(&row);
        assert_eq!(policy.dedup_key(), Some(DedupKey::Header("Webhook-Id")));
        assert_eq!(policy.dedup_window_secs(), DEFAULT_DEDUP_WINDOW_SECS);
        assert_eq!(policy.max_concurrent_calls(), Some(2));
        assert_eq!(policy.rate_per_minute(), None);
        assert_eq!(policy.retries(), 0);
        assert_eq!(policy.async_status(), 202);
        assert_eq!(policy.async_message(), "Accepted");
        assert!(policy.problems().is_empty());
        // Without the addon's fields: every default.
        assert_eq!(Policy::from_odoo(&json!({"name": "x"})), Policy::default());
    }
}

#[cfg(test)]
mod yaml_tests {
    use std::sync::Arc;

    use crate::calls::request::HttpMethod;
    use crate::definitions::yaml::load_dir;

    use super::*;

    const HOOKS: &str = r#"- {cetmix_tower_model: webhook_authenticator, reference: open, name: Open, code: pass}
- cetmix_tower_model: webhook
  reference: push
  name: Push
  authenticator_id: open
  endpoint: push
  code: pass
  dedup_key: header:X-GitHub-Delivery
  dedup_window_secs: 3600
  mode: async
  retries: 2
  async_status: 200
  async_message: queued
"#;

    #[test]
    fn the_yaml_source_reads_the_keys_without_warnings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hooks.yaml"), HOOKS).unwrap();
        let loaded = load_dir(dir.path(), Arc::default()).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let push = loaded.registry.find("push", HttpMethod::Post).unwrap();
        let policy = &push.delivery;
        assert_eq!(
            policy.dedup_key(),
            Some(DedupKey::Header("X-GitHub-Delivery"))
        );
        assert_eq!(policy.dedup_window_secs(), 3600);
        assert_eq!(policy.mode(), Mode::Async);
        assert_eq!(policy.retries(), 2);
        assert_eq!(
            (policy.async_status(), policy.async_message()),
            (200, "queued")
        );
    }

    #[test]
    fn bad_values_name_file_record_and_field_and_keep_the_webhook_out() {
        let dir = tempfile::tempdir().unwrap();
        let bad = HOOKS
            .replace("header:X-GitHub-Delivery", "X-GitHub-Delivery")
            .replace("mode: async", "mode: later");
        std::fs::write(dir.path().join("bad.yaml"), bad).unwrap();
        let text = load_dir(dir.path(), Arc::default())
            .unwrap_err()
            .to_string();
        for expected in [
            "bad.yaml: record 2 (webhook \"push\"), field `dedup_key`: must be `header:",
            "bad.yaml: record 2 (webhook \"push\"), field `mode`: must be `sync` or `async`, \
             not \"later\"",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }
}
