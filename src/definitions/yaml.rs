//! Definitions from a directory of Cetmix Tower YAML files.
//!
//! Accepts what the module's export writes (a mapping with `cetmix_tower_yaml_version` and
//! `records`), a bare list of records, and a single record (the per-record `yaml_code`).
//! Related authenticators are given by `reference` or embedded whole. Every problem is
//! collected, so `towerhook check` can list them all at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{LoadError, Problem};
use crate::configuration::Settings;
use crate::definitions::HttpMethod;
use crate::definitions::IpList;
use crate::definitions::registry::Registry;
use crate::definitions::secrets::SecretValues;
use crate::definitions::{
    Authenticator, ContentType, ENDPOINT_RULE, SUPERUSER_ID, Webhook, is_valid_endpoint,
};
use crate::definitions::{Snippet, SnippetKind};

/// The export format version this reader understands.
const SUPPORTED_VERSION: i64 = 1;

const WEBHOOK_FIELDS: &[&str] = &[
    "cetmix_tower_model",
    "reference",
    "name",
    "active",
    "authenticator_id",
    "endpoint",
    "method",
    "code",
    "content_type",
    "variable_ids",
    "secret_ids",
    // towerhook extension: "Run as User" is not part of the module's export.
    "user_id",
];

const AUTHENTICATOR_FIELDS: &[&str] = &[
    "cetmix_tower_model",
    "reference",
    "name",
    "code",
    "allowed_ip_addresses",
    "trusted_proxy_ips",
    "variable_ids",
    "secret_ids",
];

/// A loaded directory: the registry to serve and what deserves a warning.
#[derive(Debug)]
pub struct YamlLoad {
    pub registry: Registry,
    pub warnings: Vec<Problem>,
}

/// Loads every file under `dir`; snippets get `secrets` for their placeholders.
pub fn load_dir(dir: &Path, secrets: Arc<SecretValues>) -> Result<YamlLoad, LoadError> {
    let mut reader = Reader {
        secrets,
        ..Reader::default()
    };
    match yaml_files(dir) {
        Ok(files) => {
            if files.is_empty() {
                reader.warn(dir, None, None, "no .yaml or .yml files: nothing to serve");
            }
            for file in files {
                reader.read_file(&file);
            }
        }
        Err(message) => reader.error(dir, None, None, message),
    }
    reader.finish()
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .map_err(|e| format!("cannot read definitions directory: {e}"))?;
        for entry in entries {
            let path = entry
                .map_err(|e| format!("cannot read definitions directory: {e}"))?
                .path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Where a record was read, for messages.
#[derive(Debug, Clone)]
struct Origin {
    file: PathBuf,
    label: String,
}

#[derive(Debug, Clone, PartialEq)]
struct AuthenticatorDraft {
    reference: String,
    name: String,
    code: String,
    allowed_ip_addresses: String,
    trusted_proxy_ips: String,
}

#[derive(Debug)]
struct WebhookDraft {
    reference: String,
    name: String,
    active: bool,
    authenticator: String,
    endpoint: String,
    method: HttpMethod,
    content_type: ContentType,
    user_id: i64,
    code: String,
    delivery: crate::definitions::delivery::Policy,
}

#[derive(Default)]
struct Reader {
    secrets: Arc<SecretValues>,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
    authenticators: Vec<(AuthenticatorDraft, Origin)>,
    webhooks: Vec<(WebhookDraft, Origin)>,
    /// Every webhook reference seen, valid record or not, for the uniqueness rule.
    webhook_references: HashMap<String, Origin>,
}

impl Reader {
    fn error(
        &mut self,
        file: &Path,
        record: Option<&str>,
        field: Option<&str>,
        message: impl Into<String>,
    ) {
        self.problems
            .push(problem(file, record, field, message.into()));
    }

    fn warn(
        &mut self,
        file: &Path,
        record: Option<&str>,
        field: Option<&str>,
        message: impl Into<String>,
    ) {
        self.warnings
            .push(problem(file, record, field, message.into()));
    }

    fn read_file(&mut self, file: &Path) {
        let text = match std::fs::read(file) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => return self.error(file, None, None, "not valid UTF-8"),
            },
            Err(e) => return self.error(file, None, None, format!("cannot read: {e}")),
        };
        // YAML 1.2 booleans: `y`/`n`/`on` stay text, as PyYAML (Odoo's side) reads `y`/`n`;
        // boolean fields accept PyYAML's other spellings themselves.
        let mut options = serde_saphyr::Options::default();
        options.strict_booleans = true;
        let document: Value = match serde_saphyr::from_str_with_options(&text, options) {
            Ok(value) => value,
            Err(e) => return self.error(file, None, None, format!("invalid YAML: {e}")),
        };
        let records = match document {
            Value::Null => {
                return self.warn(file, None, None, "empty file");
            }
            Value::Array(records) => records,
            Value::Object(mut root) if root.contains_key("records") => {
                match root.remove("cetmix_tower_yaml_version") {
                    None | Some(Value::Null) => {}
                    Some(version) => match version.as_i64() {
                        Some(v) if v > SUPPORTED_VERSION => {
                            return self.error(
                                file,
                                None,
                                Some("cetmix_tower_yaml_version"),
                                format!(
                                    "YAML version is higher than version supported by \
                                     towerhook. {v} > {SUPPORTED_VERSION}"
                                ),
                            );
                        }
                        Some(_) => {}
                        None => {
                            return self.error(
                                file,
                                None,
                                Some("cetmix_tower_yaml_version"),
                                "must be an integer",
                            );
                        }
                    },
                }
                match root.remove("records") {
                    Some(Value::Array(records)) => records,
                    _ => {
                        return self.error(
                            file,
                            None,
                            Some("records"),
                            "must be a list of records",
                        );
                    }
                }
            }
            Value::Object(record) if record.contains_key("cetmix_tower_model") => {
                vec![Value::Object(record)]
            }
            _ => {
                return self.error(
                    file,
                    None,
                    None,
                    "expected a list of records or a mapping with `records`",
                );
            }
        };
        for (index, record) in records.into_iter().enumerate() {
            self.read_record(file, index + 1, record);
        }
    }

    fn read_record(&mut self, file: &Path, number: usize, record: Value) {
        let Value::Object(record) = record else {
            return self.error(
                file,
                Some(&format!("record {number}")),
                None,
                "must be a mapping",
            );
        };
        let model = record.get("cetmix_tower_model").and_then(Value::as_str);
        let reference = record
            .get("reference")
            .and_then(Value::as_str)
            .unwrap_or("");
        let label = match model {
            Some(model) if !reference.is_empty() => {
                format!("record {number} ({model} \"{reference}\")")
            }
            Some(model) => format!("record {number} ({model})"),
            None => format!("record {number}"),
        };
        let origin = Origin {
            file: file.to_path_buf(),
            label,
        };
        match model {
            Some("webhook") => {
                // towerhook extensions: the delivery settings (definitions/delivery.rs).
                self.warn_unknown_fields(
                    &origin,
                    &record,
                    &[WEBHOOK_FIELDS, super::delivery::KEYS],
                );
                if !reference.is_empty() {
                    if let Some(first) = self.webhook_references.get(reference) {
                        let message = format!(
                            "Reference must be unique: {reference:?} is also used by {} ({})",
                            first.file.display(),
                            first.label
                        );
                        return self.error(file, Some(&origin.label), Some("reference"), message);
                    }
                    self.webhook_references
                        .insert(reference.to_string(), origin.clone());
                }
                if let Some(draft) = self.webhook(&origin, &record) {
                    self.webhooks.push((draft, origin));
                }
            }
            Some("webhook_authenticator") => {
                self.warn_unknown_fields(&origin, &record, &[AUTHENTICATOR_FIELDS]);
                if let Some(draft) = self.authenticator(&origin, None, &record) {
                    self.authenticators.push((draft, origin));
                }
            }
            Some(other) => self.warn(
                file,
                Some(&origin.label),
                Some("cetmix_tower_model"),
                format!("model `{other}` is not served by towerhook; record ignored"),
            ),
            None => self.error(
                file,
                Some(&origin.label),
                Some("cetmix_tower_model"),
                "missing: must be `webhook` or `webhook_authenticator`",
            ),
        }
    }

    fn warn_unknown_fields(
        &mut self,
        origin: &Origin,
        record: &Map<String, Value>,
        known: &[&[&str]],
    ) {
        for key in record
            .keys()
            .filter(|k| !known.iter().any(|fields| fields.contains(&k.as_str())))
        {
            self.warn(
                &origin.file,
                Some(&origin.label),
                Some(key),
                "unknown field ignored (as the module's import does)",
            );
        }
    }

    fn webhook(&mut self, origin: &Origin, record: &Map<String, Value>) -> Option<WebhookDraft> {
        let mut fields = Fields::new(self, origin, None, record);
        let reference = fields.required_text("reference");
        let name = fields.required_text("name");
        let active = fields.boolean("active", true);
        let endpoint = fields.required_text("endpoint");
        let method = fields.choice("method", "post", HttpMethod::parse, "`post` or `get`");
        let content_type = fields.choice(
            "content_type",
            "json",
            ContentType::parse,
            "`json` or `form`",
        );
        let user_id = fields.user_id();
        let code = fields.code();
        let authenticator = fields.authenticator_reference();
        // towerhook extension (src/delivery): the webhook's delivery settings.
        let delivery = crate::definitions::delivery::Policy::from_yaml(record, |key, message| {
            fields.fail(key, message)
        });
        if let Some(endpoint) = &endpoint
            && !is_valid_endpoint(endpoint)
        {
            fields.fail("endpoint", format!("{ENDPOINT_RULE} (got {endpoint:?})"));
        }
        let ok = fields.ok;
        let embedded = fields.embedded_authenticator.take();
        if let Some(embedded) = embedded {
            let embedded_origin = Origin {
                file: origin.file.clone(),
                label: format!("{}, embedded authenticator", origin.label),
            };
            if let Some(draft) =
                self.authenticator(&embedded_origin, Some("authenticator_id"), &embedded)
            {
                self.authenticators.push((draft, embedded_origin));
            }
        }
        if !ok {
            return None;
        }
        Some(WebhookDraft {
            reference: reference?,
            name: name?,
            active,
            authenticator: authenticator?,
            endpoint: endpoint?,
            method: method?,
            content_type: content_type?,
            user_id,
            code: code?,
            delivery,
        })
    }

    fn authenticator(
        &mut self,
        origin: &Origin,
        prefix: Option<&str>,
        record: &Map<String, Value>,
    ) -> Option<AuthenticatorDraft> {
        let mut fields = Fields::new(self, origin, prefix, record);
        let reference = fields.required_text("reference");
        let name = fields.required_text("name");
        let code = fields.code();
        let allowed = fields.ip_list("allowed_ip_addresses", "Invalid allowed IP/CIDR entry");
        let trusted = fields.ip_list("trusted_proxy_ips", "Invalid trusted proxy entry");
        if !fields.ok {
            return None;
        }
        Some(AuthenticatorDraft {
            reference: reference?,
            name: name?,
            code: code?,
            allowed_ip_addresses: allowed,
            trusted_proxy_ips: trusted,
        })
    }

    fn finish(mut self) -> Result<YamlLoad, LoadError> {
        let authenticators = self.resolve_authenticators();
        let webhooks = self.resolve_webhooks(&authenticators);
        if !self.problems.is_empty() {
            return Err(LoadError(self.problems));
        }
        let mut all_authenticators: Vec<Arc<Authenticator>> =
            authenticators.into_values().collect();
        all_authenticators.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(YamlLoad {
            registry: Registry::new(webhooks, all_authenticators, &self.secrets),
            warnings: self.warnings,
        })
    }

    fn resolve_authenticators(&mut self) -> HashMap<String, Arc<Authenticator>> {
        let mut seen: HashMap<String, (AuthenticatorDraft, Origin)> = HashMap::new();
        for (draft, origin) in std::mem::take(&mut self.authenticators) {
            match seen.get(&draft.reference) {
                // The export writes a shared authenticator in full once per file; identical
                // copies are the same record.
                Some((existing, _)) if *existing == draft => {}
                Some((_, first)) => {
                    let message = format!(
                        "authenticator reference {:?} is already defined differently in {} ({})",
                        draft.reference,
                        first.file.display(),
                        first.label
                    );
                    self.error(
                        &origin.file,
                        Some(&origin.label),
                        Some("reference"),
                        message,
                    );
                }
                None => {
                    seen.insert(draft.reference.clone(), (draft, origin));
                }
            }
        }
        seen.into_iter()
            .map(|(reference, (d, _))| {
                let authenticator = Authenticator {
                    id: None,
                    code: Snippet::with_secrets(SnippetKind::Authenticator, &d.code, &self.secrets),
                    reference: d.reference,
                    name: d.name,
                    allowed_ips: IpList::parse(&d.allowed_ip_addresses),
                    trusted_proxies: IpList::parse(&d.trusted_proxy_ips),
                };
                (reference, Arc::new(authenticator))
            })
            .collect()
    }

    fn resolve_webhooks(
        &mut self,
        authenticators: &HashMap<String, Arc<Authenticator>>,
    ) -> Vec<Arc<Webhook>> {
        let mut routes: HashMap<(String, HttpMethod), Origin> = HashMap::new();
        let mut webhooks = Vec::new();
        for (draft, origin) in std::mem::take(&mut self.webhooks) {
            // The module's SQL constraint covers archived webhooks too.
            let route = (draft.endpoint.clone(), draft.method);
            if let Some(first) = routes.get(&route) {
                let message = format!(
                    "Endpoint and method must be unique! {} {} is also served by {} ({})",
                    draft.method.as_str().to_uppercase(),
                    draft.endpoint,
                    first.file.display(),
                    first.label
                );
                self.error(&origin.file, Some(&origin.label), Some("endpoint"), message);
                continue;
            }
            routes.insert(route, origin.clone());
            let Some(authenticator) = authenticators.get(&draft.authenticator) else {
                let message = format!(
                    "no authenticator with reference {:?} in the definitions",
                    draft.authenticator
                );
                self.error(
                    &origin.file,
                    Some(&origin.label),
                    Some("authenticator_id"),
                    message,
                );
                continue;
            };
            webhooks.push(Arc::new(Webhook {
                id: None,
                reference: draft.reference,
                name: draft.name,
                active: draft.active,
                authenticator: Arc::clone(authenticator),
                endpoint: draft.endpoint,
                method: draft.method,
                content_type: draft.content_type,
                user_id: draft.user_id,
                code: Snippet::with_secrets(SnippetKind::Webhook, &draft.code, &self.secrets),
                delivery: Arc::new(draft.delivery),
            }));
        }
        webhooks
    }
}

fn problem(file: &Path, record: Option<&str>, field: Option<&str>, message: String) -> Problem {
    Problem {
        file: file.to_path_buf(),
        record: record.map(String::from),
        field: field.map(String::from),
        message,
    }
}

/// Reads typed fields out of one record, reporting each problem once.
struct Fields<'r, 'a> {
    reader: &'r mut Reader,
    origin: &'a Origin,
    prefix: Option<&'a str>,
    record: &'a Map<String, Value>,
    ok: bool,
    embedded_authenticator: Option<Map<String, Value>>,
}

impl<'r, 'a> Fields<'r, 'a> {
    fn new(
        reader: &'r mut Reader,
        origin: &'a Origin,
        prefix: Option<&'a str>,
        record: &'a Map<String, Value>,
    ) -> Self {
        Self {
            reader,
            origin,
            prefix,
            record,
            ok: true,
            embedded_authenticator: None,
        }
    }

    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.ok = false;
        let field = match self.prefix {
            Some(prefix) => format!("{prefix}.{field}"),
            None => field.to_string(),
        };
        self.reader.error(
            &self.origin.file,
            Some(&self.origin.label),
            Some(&field),
            message,
        );
    }

    /// A text field; the module exports empty values as `false`.
    fn text(&mut self, field: &str) -> Option<String> {
        match self.record.get(field) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => Some(String::new()),
            Some(Value::String(text)) => Some(text.clone()),
            // Odoo stores a number given for a text field as its text.
            Some(Value::Number(number)) => Some(number.to_string()),
            Some(other) => {
                self.fail(field, format!("must be text, not {}", kind(other)));
                None
            }
        }
    }

    fn required_text(&mut self, field: &str) -> Option<String> {
        let text = self.text(field)?;
        if text.trim().is_empty() {
            self.fail(field, "is required");
            return None;
        }
        Some(text)
    }

    fn code(&mut self) -> Option<String> {
        if !self.record.contains_key("code") {
            self.fail("code", "is required (Python code; may be a comment)");
            return None;
        }
        self.text("code")
    }

    fn boolean(&mut self, field: &str, default: bool) -> bool {
        match self.record.get(field) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(value)) => *value,
            // PyYAML's YAML 1.1 spellings (`yes`, `off`, ...) are booleans there too.
            Some(other) => match other.as_str().and_then(is_pyyaml_bool) {
                Some(value) => value,
                None => {
                    self.fail(field, format!("must be true or false, not {}", kind(other)));
                    default
                }
            },
        }
    }

    fn choice<T>(
        &mut self,
        field: &str,
        default: &str,
        parse: fn(&str) -> Option<T>,
        expected: &str,
    ) -> Option<T> {
        let text = self.text(field)?;
        let text = if text.is_empty() {
            default.to_string()
        } else {
            text
        };
        let parsed = parse(&text);
        // The selection keys are lower case; `POST` is not one of them.
        if parsed.is_none() || text.chars().any(|c| c.is_ascii_uppercase()) {
            self.fail(field, format!("must be {expected}, not {text:?}"));
            return None;
        }
        parsed
    }

    fn user_id(&mut self) -> i64 {
        match self.record.get("user_id") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => SUPERUSER_ID,
            Some(value) => match value.as_i64() {
                Some(id) if id > 0 => id,
                _ => {
                    self.fail("user_id", "must be a positive res.users id");
                    SUPERUSER_ID
                }
            },
        }
    }

    fn ip_list(&mut self, field: &str, message: &str) -> String {
        let Some(text) = self.text(field) else {
            return String::new();
        };
        let list = IpList::parse(&text);
        if let Some(bad) = list.invalid_entries().first() {
            self.fail(field, format!("{message}: {bad}"));
        }
        text
    }

    /// `authenticator_id: ref`, `{reference: ref}`, or the whole authenticator embedded.
    fn authenticator_reference(&mut self) -> Option<String> {
        match self.record.get("authenticator_id") {
            Some(Value::String(reference)) if !reference.trim().is_empty() => {
                Some(reference.clone())
            }
            Some(Value::Object(embedded)) => {
                let Some(reference) = embedded.get("reference").and_then(Value::as_str) else {
                    self.fail("authenticator_id.reference", "is required");
                    return None;
                };
                let reference = reference.to_string();
                if embedded
                    .keys()
                    .any(|k| k != "reference" && k != "cetmix_tower_model")
                {
                    self.embedded_authenticator = Some(embedded.clone());
                }
                Some(reference)
            }
            None | Some(Value::Null) | Some(Value::Bool(false)) => {
                self.fail(
                    "authenticator_id",
                    "is required (an authenticator reference)",
                );
                None
            }
            Some(other) => {
                self.fail(
                    "authenticator_id",
                    format!("must be an authenticator reference, not {}", kind(other)),
                );
                None
            }
        }
    }
}

fn is_pyyaml_bool(text: &str) -> Option<bool> {
    match text {
        "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => Some(true),
        "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Reads the YAML definitions, logging warnings.
pub fn load_configured(settings: &Settings) -> Result<Registry, LoadError> {
    let loaded = load_dir(&settings.yaml_dir, Arc::new(local_secrets(settings)?))?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    Ok(loaded.registry)
}

/// Secret values for the YAML source: the secrets file and `TOWERHOOK_SECRET_*` variables.
pub fn local_secrets(
    settings: &Settings,
) -> Result<crate::definitions::secrets::SecretValues, LoadError> {
    crate::definitions::secrets::load_local(
        settings.secrets_file.as_deref(),
        &settings.yaml_dir,
        std::env::vars(),
    )
    .map_err(|error| {
        LoadError(vec![Problem {
            file: settings
                .secrets_file
                .clone()
                .unwrap_or_else(|| settings.yaml_dir.clone()),
            record: None,
            field: None,
            message: error.to_string(),
        }])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    const EXPORT: &str = r#"# generated with Cetmix Tower
cetmix_tower_yaml_version: 1
records:
- cetmix_tower_model: webhook
  reference: github_push
  name: GitHub push
  active: true
  authenticator_id:
    reference: github_hmac
    name: GitHub HMAC
    code: |
      result = {"allowed": True}
    allowed_ip_addresses: false
    trusted_proxy_ips: false
    secret_ids:
    - reference: github_secret
      name: GitHub secret
      key_type: s
      note: false
  endpoint: github-push
  method: post
  code: |
    result = {"exit_code": 0, "message": "ok"}
  content_type: json
  secret_ids:
  - reference: github_secret
- cetmix_tower_model: webhook
  reference: github_ping
  name: GitHub ping
  active: false
  authenticator_id:
    reference: github_hmac
  endpoint: github/ping
  method: get
  code: ""
  content_type: form
"#;

    #[test]
    fn reads_the_module_export_format() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "webhook_selected.yaml", EXPORT);
        let loaded = load_dir(dir.path(), Arc::default()).unwrap();
        let registry = loaded.registry;
        assert_eq!(registry.webhooks().len(), 2);
        assert_eq!(registry.authenticators().len(), 1);
        let push = registry.find("github-push", HttpMethod::Post).unwrap();
        assert_eq!(push.authenticator.reference, "github_hmac");
        assert_eq!(push.user_id, SUPERUSER_ID);
        assert!(push.authenticator.allowed_ips.is_unset());
        // Inactive webhooks are known but not routed.
        assert!(registry.find("github/ping", HttpMethod::Get).is_none());
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn plain_lists_and_references_across_files() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "auth.yml",
            "- cetmix_tower_model: webhook_authenticator\n  reference: open\n  name: Open\n  code: 'result = {\"allowed\": True}'\n",
        );
        write(
            dir.path(),
            "hook.yaml",
            "cetmix_tower_model: webhook\nreference: a\nname: A\nauthenticator_id: open\nendpoint: a\ncode: pass\nuser_id: 7\n",
        );
        let registry = load_dir(dir.path(), Arc::default()).unwrap().registry;
        let hook = registry.find("a", HttpMethod::Post).unwrap();
        assert_eq!(hook.user_id, 7);
    }

    #[test]
    fn every_problem_names_file_record_and_field() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "bad.yaml",
            r#"- cetmix_tower_model: webhook_authenticator
  reference: picky
  name: Picky
  code: pass
  allowed_ip_addresses: 10.0.0.1, not-an-ip
- cetmix_tower_model: webhook
  reference: one
  name: One
  authenticator_id: picky
  endpoint: -bad-
  method: PUT
  content_type: xml
  code: pass
- cetmix_tower_model: webhook
  reference: two
  name: Two
  authenticator_id: missing
  endpoint: fine
  code: pass
- cetmix_tower_model: webhook
  reference: three
  name: Three
  authenticator_id: picky
  endpoint: fine
"#,
        );
        write(dir.path(), "broken.yaml", "records: [\n");
        let err = load_dir(dir.path(), Arc::default()).unwrap_err();
        let text = err.to_string();
        for expected in [
            "bad.yaml: record 1 (webhook_authenticator \"picky\"), field `allowed_ip_addresses`: Invalid allowed IP/CIDR entry: not-an-ip",
            "bad.yaml: record 2 (webhook \"one\"), field `endpoint`",
            "field `method`: must be `post` or `get`, not \"PUT\"",
            "field `content_type`: must be `json` or `form`, not \"xml\"",
            "record 3 (webhook \"two\"), field `authenticator_id`: no authenticator with reference \"missing\"",
            "record 4 (webhook \"three\"), field `code`: is required",
            "broken.yaml: invalid YAML",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn endpoint_and_method_must_be_unique_even_when_archived() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "dup.yaml",
            r#"- {cetmix_tower_model: webhook_authenticator, reference: a, name: A, code: pass}
- {cetmix_tower_model: webhook, reference: x, name: X, authenticator_id: a, endpoint: e, code: pass}
- {cetmix_tower_model: webhook, reference: y, name: Y, authenticator_id: a, endpoint: e, code: pass, active: false}
- {cetmix_tower_model: webhook, reference: z, name: Z, authenticator_id: a, endpoint: e, method: get, code: pass}
"#,
        );
        let text = load_dir(dir.path(), Arc::default())
            .unwrap_err()
            .to_string();
        assert!(text.contains("record 3 (webhook \"y\")"), "{text}");
        assert!(
            text.contains("Endpoint and method must be unique!"),
            "{text}"
        );
        assert_eq!(text.matches("must be unique").count(), 1, "{text}");
    }

    #[test]
    fn scalars_read_as_pyyaml_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "scalars.yaml",
            r#"- {cetmix_tower_model: webhook_authenticator, reference: n, name: 1234, code: pass}
- {cetmix_tower_model: webhook, reference: y, name: on, authenticator_id: n, endpoint: 2024, code: pass, active: "off"}
- {cetmix_tower_model: webhook, reference: z, name: Z, authenticator_id: n, endpoint: z, code: pass, active: Yes}
"#,
        );
        let registry = load_dir(dir.path(), Arc::default()).unwrap().registry;
        let off = &registry.webhooks()[0];
        assert_eq!((off.reference.as_str(), off.name.as_str()), ("y", "on"));
        assert_eq!(off.endpoint, "2024");
        assert!(!off.active);
        assert!(registry.find("z", HttpMethod::Post).is_some());
        assert_eq!(registry.authenticators()[0].name, "1234");
    }

    #[test]
    fn newer_format_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "v2.yaml",
            "cetmix_tower_yaml_version: 2\nrecords: []\n",
        );
        let text = load_dir(dir.path(), Arc::default())
            .unwrap_err()
            .to_string();
        assert!(text.contains("2 > 1"), "{text}");
    }

    #[test]
    fn missing_directory_is_an_error() {
        let text = load_dir(Path::new("/nonexistent/towerhook"), Arc::default())
            .unwrap_err()
            .to_string();
        assert!(text.contains("cannot read definitions directory"), "{text}");
    }
}
