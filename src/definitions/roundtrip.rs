//! `towerhook export` / `towerhook import`: webhooks and authenticators between Odoo and
//! Cetmix Tower YAML files, so that teams can keep their definitions in git. The files are
//! the module's export format (with its authenticator embedded in each webhook, as the
//! module's "explode child records" writes it), which the YAML source reads too. Secret
//! values never travel: code only holds `#!cxtower.secret.REF!#` placeholders.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::definitions::odoo::{
    AUTHENTICATOR_MODEL, AuthenticatorRow, Snapshot, WEBHOOK_MODEL, WebhookRow, read_all,
};
use crate::definitions::yaml;
use crate::definitions::{ContentType, SUPERUSER_ID, Webhook};
use crate::odoo::{Call, OdooClient, OdooError};

/// Text as the module exports it: empty values are `false`, text with line breaks is a
/// `|` literal block (serde-saphyr picks the chomping and indentation indicators, and
/// falls back to a quoted scalar for text a block cannot hold, such as `\r`); one-line
/// text is plain, quoted whenever YAML 1.1 (PyYAML, Odoo's side) would read something
/// else than the string (`yes`, `on`, `0755`, `1:20`, `~`, surrounding spaces...).
enum Text<'a> {
    Plain(&'a str),
    Block(&'a str),
}

impl<'a> Text<'a> {
    fn of(value: &'a str) -> Self {
        if value.contains('\n') {
            Text::Block(value)
        } else {
            Text::Plain(value)
        }
    }
}

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Text::Plain("") | Text::Block("") => serializer.serialize_bool(false),
            Text::Plain(text) => serializer.serialize_str(text),
            Text::Block(text) => serde_saphyr::LitStr(text).serialize(serializer),
        }
    }
}

#[derive(Serialize)]
struct Document<R: Serialize> {
    cetmix_tower_yaml_version: u32,
    records: Vec<R>,
}

/// Field order of the module's export; `cetmix_tower_model` only on top-level records.
#[derive(Serialize)]
struct AuthenticatorRecord<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    cetmix_tower_model: Option<&'static str>,
    reference: &'a str,
    name: Text<'a>,
    code: Text<'a>,
    allowed_ip_addresses: Text<'a>,
    trusted_proxy_ips: Text<'a>,
}

#[derive(Serialize)]
struct WebhookRecord<'a> {
    cetmix_tower_model: &'static str,
    reference: &'a str,
    name: Text<'a>,
    active: bool,
    authenticator_id: AuthenticatorRecord<'a>,
    endpoint: &'a str,
    method: &'a str,
    code: Text<'a>,
    content_type: &'a str,
    /// towerhook extension: "Run as User" is not part of the module's export; written
    /// only when it is not the module's default (the superuser).
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<i64>,
    /// towerhook extensions (src/delivery): the delivery settings that are not the
    /// default, from the companion addon's fields.
    #[serde(flatten)]
    delivery: crate::definitions::delivery::Export<'a>,
}

fn authenticator_record(row: &AuthenticatorRow, top_level: bool) -> AuthenticatorRecord<'_> {
    AuthenticatorRecord {
        cetmix_tower_model: top_level.then_some("webhook_authenticator"),
        reference: &row.reference,
        name: Text::of(&row.name),
        code: Text::of(&row.code),
        allowed_ip_addresses: Text::of(&row.allowed_ip_addresses),
        trusted_proxy_ips: Text::of(&row.trusted_proxy_ips),
    }
}

/// Why an export or import did not complete.
#[derive(Debug, thiserror::Error)]
pub enum RoundTripError {
    #[error("reading the definitions from Odoo")]
    Read(#[source] OdooError),
    #[error("{}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Yaml { path: PathBuf, message: String },
    /// The files are invalid, as the YAML source would report them.
    #[error(transparent)]
    Definitions(#[from] crate::definitions::LoadError),
    /// New records whose reference Odoo would rewrite: nothing was written.
    #[error("import refused, nothing written:\n{}", .0.join("\n"))]
    Refused(Vec<String>),
    /// towerhook extension (src/delivery): asking Odoo whether it has the fields failed.
    #[error("asking Odoo for the delivery fields")]
    DeliveryFields(#[source] OdooError),
    /// towerhook extension (src/delivery): the files set delivery settings that this Odoo
    /// cannot store.
    #[error(
        "import refused, nothing written: the files set towerhook delivery settings ({}), but \
         cx.tower.webhook in this Odoo has no towerhook_* fields: install or upgrade the \
         companion addon cetmix_tower_webhook_sidecar, or remove those keys",
        .0.join("; ")
    )]
    NoDeliveryFields(Vec<String>),
    /// Odoo refused a step: the step, the reason, and what was done before it.
    #[error("import stopped at {step}: {reason} ({before})")]
    Stopped {
        step: String,
        reason: String,
        before: String,
    },
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> RoundTripError + '_ {
    move |source| RoundTripError::File {
        path: path.to_path_buf(),
        source,
    }
}

async fn read_definitions(client: &OdooClient) -> Result<Snapshot, RoundTripError> {
    read_all(client).await.map_err(RoundTripError::Read)
}

/// What an export wrote.
#[derive(Debug)]
pub struct ExportReport {
    pub dir: PathBuf,
    /// The files written, in the order written.
    pub files: Vec<PathBuf>,
    /// Webhooks exported (inactive ones included).
    pub webhooks: usize,
    /// Authenticators exported (embedded in their webhooks, or in a file of their own).
    pub authenticators: usize,
    /// References of webhooks left out: their authenticator could not be read.
    pub skipped: Vec<String>,
    /// YAML files already in the directory that this export did not write: `import` reads
    /// them too (a record deleted in Odoo since an earlier export, for instance).
    pub others: Vec<PathBuf>,
}

impl fmt::Display for ExportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for file in &self.files {
            writeln!(f, "wrote {}", file.display())?;
        }
        for reference in &self.skipped {
            writeln!(
                f,
                "skipped webhook {reference:?}: its authenticator cannot be read"
            )?;
        }
        for file in &self.others {
            writeln!(
                f,
                "not written by this export: {} (import reads it too; delete it if its \
                 records are no longer in Odoo)",
                file.display()
            )?;
        }
        write!(
            f,
            "{} webhook(s) and {} authenticator(s) exported to {} (no secret values)",
            self.webhooks,
            self.authenticators,
            self.dir.display()
        )
    }
}

/// Writes every webhook (inactive ones too) as `webhook_<reference>.yaml` with its
/// authenticator embedded, and each authenticator no webhook uses as
/// `webhook_authenticator_<reference>.yaml`. Existing files of those names are replaced;
/// other files are left alone and listed in the report.
pub async fn export(client: &OdooClient, dir: &Path) -> Result<ExportReport, RoundTripError> {
    let snapshot = &read_definitions(client).await?;
    std::fs::create_dir_all(dir).map_err(file_error(dir))?;
    let before = yaml_files(dir)?;
    let header = format!(
        "# Generated by towerhook {} from Odoo on {} UTC\n# Cetmix Tower YAML export format; \
         secret values are not included\n\n",
        env!("CARGO_PKG_VERSION"),
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S")
    );
    let mut names = FileNames::default();
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let mut used = HashSet::new();
    let mut webhooks = 0;
    for row in snapshot.webhooks.values() {
        let Some(authenticator) = row
            .authenticator_id
            .and_then(|id| snapshot.authenticators.get(&id))
        else {
            skipped.push(row.reference.clone());
            continue;
        };
        used.insert(authenticator.id);
        let record = WebhookRecord {
            cetmix_tower_model: "webhook",
            reference: &row.reference,
            name: Text::of(&row.name),
            active: row.active,
            authenticator_id: authenticator_record(authenticator, false),
            endpoint: &row.endpoint,
            method: &row.method,
            code: Text::of(&row.code),
            content_type: &row.content_type,
            user_id: (row.user_id != SUPERUSER_ID).then_some(row.user_id),
            delivery: row.delivery.export(),
        };
        let path = dir.join(names.pick("webhook", &row.reference));
        write(&path, &header, record)?;
        files.push(path);
        webhooks += 1;
    }
    let mut authenticators = used.len();
    for row in snapshot
        .authenticators
        .values()
        .filter(|row| !used.contains(&row.id))
    {
        let path = dir.join(names.pick("webhook_authenticator", &row.reference));
        write(&path, &header, authenticator_record(row, true))?;
        files.push(path);
        authenticators += 1;
    }
    let written: HashSet<&PathBuf> = files.iter().collect();
    let others = before
        .into_iter()
        .filter(|file| !written.contains(file))
        .collect();
    Ok(ExportReport {
        dir: dir.to_path_buf(),
        files,
        webhooks,
        authenticators,
        skipped,
        others,
    })
}

/// File names as the module's export names them, `<model>_<reference>.yaml`, made unique
/// (a webhook `authenticator_x` next to an authenticator `x`; case-insensitive file
/// systems) with a numeric suffix.
#[derive(Default)]
struct FileNames {
    taken: HashSet<String>,
}

impl FileNames {
    fn pick(&mut self, prefix: &str, reference: &str) -> String {
        let reference: String = reference
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let base = format!("{prefix}_{reference}");
        let mut name = format!("{base}.yaml");
        let mut n = 2;
        while !self.taken.insert(name.to_lowercase()) {
            name = format!("{base}_{n}.yaml");
            n += 1;
        }
        name
    }
}

/// The files `import` would read (as the YAML source: every non-hidden `*.yaml`/`*.yml`
/// below `dir`).
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, RoundTripError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(file_error(&current))?;
        for entry in entries {
            let path = entry.map_err(file_error(&current))?.path();
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
            {
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

/// One document with one record.
fn write<R: Serialize>(path: &Path, header: &str, record: R) -> Result<(), RoundTripError> {
    let document = Document {
        cetmix_tower_yaml_version: 1,
        records: vec![record],
    };
    // One-line text stays on one line (no folding of long values); line breaks are
    // literal blocks through `Text`.
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    let yaml = serde_saphyr::to_string_with_options(&document, options).map_err(|e| {
        RoundTripError::Yaml {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    })?;
    std::fs::write(path, format!("{header}{yaml}")).map_err(file_error(path))
}

/// One step of an import.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Create {
        model: &'static str,
        reference: String,
    },
    Update {
        model: &'static str,
        reference: String,
        /// The fields written, as the module names them.
        fields: Vec<String>,
    },
    Unchanged {
        model: &'static str,
        reference: String,
    },
}

/// `webhook` or `authenticator`, as the plan names them.
fn kind(model: &str) -> &'static str {
    if model == WEBHOOK_MODEL {
        "webhook"
    } else {
        "authenticator"
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Create { model, reference } => {
                write!(f, "create {} {reference:?}", kind(model))
            }
            Action::Update {
                model,
                reference,
                fields,
            } => write!(
                f,
                "update {} {reference:?}: {}",
                kind(model),
                fields.join(", ")
            ),
            Action::Unchanged { model, reference } => {
                write!(f, "unchanged {} {reference:?}", kind(model))
            }
        }
    }
}

/// The actions of an import, planned (dry run) or done (`applied`), authenticators first.
#[derive(Debug)]
pub struct ImportPlan {
    pub actions: Vec<Action>,
    pub applied: bool,
    /// What the YAML reader warned about (unknown fields ignored, other models...).
    pub warnings: Vec<String>,
}

impl ImportPlan {
    /// Creations and updates.
    pub fn changes(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| !matches!(a, Action::Unchanged { .. }))
            .count()
    }
}

impl fmt::Display for ImportPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        for action in &self.actions {
            writeln!(f, "{action}")?;
        }
        if self.applied {
            write!(f, "{} change(s) applied", self.changes())
        } else {
            write!(
                f,
                "{} change(s) planned; nothing written (dry run: add --apply to write)",
                self.changes()
            )
        }
    }
}

/// A planned write: the action and the values it writes.
struct Step {
    action: Action,
    id: Option<i64>,
    values: Map<String, Value>,
    /// For webhooks: the reference of their authenticator (its id is known only once it
    /// exists).
    authenticator: Option<String>,
}

/// Reads `dir` (validated as the YAML source validates it) and compares every
/// authenticator and webhook with Odoo's by reference (archived ones included): missing
/// ones are created, different ones get the changed fields written, equal ones are left
/// alone. With `apply` false nothing is written and the plan is returned; with `apply`
/// true the plan is carried out, authenticators first, stopping at the first refusal
/// (the error names the record, Odoo's reason and what was done before).
pub async fn import(
    client: &OdooClient,
    dir: &Path,
    apply: bool,
) -> Result<ImportPlan, RoundTripError> {
    let loaded = yaml::load_dir(dir, Arc::default())?;
    let warnings = loaded.warnings.iter().map(ToString::to_string).collect();
    let registry = loaded.registry;
    refuse_delivery_keys_without_fields(client, &registry).await?;
    let snapshot = &read_definitions(client).await?;
    let mut steps = Vec::new();
    for authenticator in registry.authenticators() {
        let existing = find(&snapshot.authenticators, |r| {
            r.reference == authenticator.reference
        });
        // The reader keeps IP lists trimmed; the module strips them before use too.
        let wanted = json!({
            "name": authenticator.name,
            "code": authenticator.code.source(),
            "allowed_ip_addresses": authenticator.allowed_ips.text(),
            "trusted_proxy_ips": authenticator.trusted_proxies.text(),
        });
        let current = existing.map(|row| {
            json!({
                "name": row.name,
                "code": row.code,
                "allowed_ip_addresses": row.allowed_ip_addresses.trim(),
                "trusted_proxy_ips": row.trusted_proxy_ips.trim(),
            })
        });
        steps.push(step(
            AUTHENTICATOR_MODEL,
            &authenticator.reference,
            existing.map(|r| r.id),
            wanted,
            current,
            None,
        ));
    }
    for webhook in registry.webhooks() {
        let existing = find(&snapshot.webhooks, |r| r.reference == webhook.reference);
        let current = existing.map(|row| current_webhook(row, snapshot));
        steps.push(step(
            WEBHOOK_MODEL,
            &webhook.reference,
            existing.map(|r| r.id),
            webhook_values(webhook),
            current,
            Some(webhook.authenticator.reference.clone()),
        ));
    }
    refuse_rewritten_references(&steps)?;
    if apply {
        perform(client, snapshot, &mut steps).await?;
    }
    Ok(ImportPlan {
        actions: steps.into_iter().map(|s| s.action).collect(),
        applied: apply,
        warnings,
    })
}

fn find<R>(rows: &BTreeMap<i64, R>, matches: impl Fn(&R) -> bool) -> Option<&R> {
    rows.values().find(|row| matches(row))
}

/// The values a webhook should have. "Run as User" only when the files say so: the
/// module's format has no such field, so its absence changes nothing (and a new webhook
/// gets the module's default, the superuser).
fn webhook_values(webhook: &Webhook) -> Value {
    let mut values = json!({
        "name": webhook.name,
        "active": webhook.active,
        "authenticator": webhook.authenticator.reference,
        "endpoint": webhook.endpoint,
        "method": webhook.method.as_str(),
        "code": webhook.code.source(),
        "content_type": match webhook.content_type {
            ContentType::Json => "json",
            ContentType::Form => "form",
        },
    });
    if webhook.user_id != SUPERUSER_ID {
        values["user_id"] = json!(webhook.user_id);
    }
    // towerhook extension (src/delivery): like "Run as User", only the keys the files name.
    if let Value::Object(values) = &mut values {
        values.extend(webhook.delivery.written_odoo_values());
    }
    values
}

/// towerhook extension (src/delivery): files that set delivery settings need the companion
/// addon's fields in Odoo; without them nothing is written.
async fn refuse_delivery_keys_without_fields(
    client: &OdooClient,
    registry: &crate::definitions::registry::Registry,
) -> Result<(), RoundTripError> {
    let with_keys: Vec<String> = registry
        .webhooks()
        .iter()
        .filter(|webhook| !webhook.delivery.written_keys().is_empty())
        .map(|webhook| {
            format!(
                "webhook {:?} ({})",
                webhook.reference,
                webhook.delivery.written_keys().join(", ")
            )
        })
        .collect();
    if with_keys.is_empty() {
        return Ok(());
    }
    let available = crate::definitions::delivery_fields::available(client)
        .await
        .map_err(RoundTripError::DeliveryFields)?;
    if available {
        return Ok(());
    }
    Err(RoundTripError::NoDeliveryFields(with_keys))
}

fn current_webhook(row: &WebhookRow, snapshot: &Snapshot) -> Value {
    let mut current = json!({
        "name": row.name,
        "active": row.active,
        "authenticator": row
            .authenticator_id
            .and_then(|id| snapshot.authenticators.get(&id))
            .map(|a| a.reference.clone()),
        "endpoint": row.endpoint,
        "method": row.method,
        "code": row.code,
        "content_type": row.content_type,
        "user_id": row.user_id,
    });
    // towerhook extension (src/delivery): the delivery settings as they apply.
    if let Value::Object(current) = &mut current {
        current.extend(row.delivery.odoo_values());
    }
    current
}

fn step(
    model: &'static str,
    reference: &str,
    id: Option<i64>,
    wanted: Value,
    current: Option<Value>,
    authenticator: Option<String>,
) -> Step {
    let Value::Object(wanted) = wanted else {
        unreachable!("values are built as objects")
    };
    let reference = reference.to_string();
    let (action, values) = match current {
        None => (Action::Create { model, reference }, wanted),
        Some(current) => {
            let changed: Map<String, Value> = wanted
                .into_iter()
                .filter(|(field, value)| current.get(field) != Some(value))
                .collect();
            if changed.is_empty() {
                (Action::Unchanged { model, reference }, changed)
            } else {
                let fields = changed
                    .keys()
                    .map(|f| {
                        if f == "authenticator" {
                            "authenticator_id".to_string()
                        } else {
                            f.clone()
                        }
                    })
                    .collect();
                let action = Action::Update {
                    model,
                    reference,
                    fields,
                };
                (action, changed)
            }
        }
    };
    Step {
        action,
        id,
        values,
        authenticator,
    }
}

/// The reference Cetmix Tower stores for a new record asked to have `wanted` (its
/// reference mixin keeps only `[a-z0-9_]`; `None` when it would derive one from the name).
fn stored_reference(wanted: &str) -> Option<String> {
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if !wanted.is_empty() && wanted.chars().all(valid) {
        return Some(wanted.to_string());
    }
    let sanitized: String = wanted
        .trim()
        .replace(' ', "_")
        .to_lowercase()
        .chars()
        .filter(|&c| valid(c))
        .collect();
    (!sanitized.is_empty()).then_some(sanitized)
}

/// A record created under another reference than the files' would be created again by
/// the next import: refused before anything is written.
fn refuse_rewritten_references(steps: &[Step]) -> Result<(), RoundTripError> {
    let refused: Vec<String> = steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::Create { model, reference }
                if stored_reference(reference).as_deref() != Some(reference) =>
            {
                let stored = match stored_reference(reference) {
                    Some(stored) => format!("{stored:?}"),
                    None => "a reference made from its name".to_string(),
                };
                Some(format!(
                    "  - {} {reference:?}: a new record's reference may only contain a-z, \
                     0-9 and _; Odoo would store {stored} and the next import would create \
                     it again. Rename it in the files.",
                    kind(model)
                ))
            }
            _ => None,
        })
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(RoundTripError::Refused(refused))
    }
}

/// Writes the steps in order (authenticators first), stopping at the first error with
/// what was done so far.
async fn perform(
    client: &OdooClient,
    snapshot: &Snapshot,
    steps: &mut [Step],
) -> Result<(), RoundTripError> {
    let mut authenticator_ids: BTreeMap<String, i64> = snapshot
        .authenticators
        .values()
        .map(|row| (row.reference.clone(), row.id))
        .collect();
    let mut done: Vec<String> = Vec::new();
    for step in steps.iter_mut() {
        if matches!(step.action, Action::Unchanged { .. }) {
            continue;
        }
        let fail = |reason: String| RoundTripError::Stopped {
            step: step.action.to_string(),
            reason,
            before: if done.is_empty() {
                "nothing was written".to_string()
            } else {
                format!("done before: {}", done.join("; "))
            },
        };
        let (model, reference) = match &step.action {
            Action::Create { model, reference }
            | Action::Update {
                model, reference, ..
            }
            | Action::Unchanged { model, reference } => (*model, reference.clone()),
        };
        let mut values = std::mem::take(&mut step.values);
        // Odoo spells an empty text `false`, as the module's import writes it.
        for value in values.values_mut() {
            if value.as_str() == Some("") {
                *value = Value::Bool(false);
            }
        }
        if values.remove("authenticator").is_some()
            && let Some(authenticator) = &step.authenticator
        {
            let Some(&id) = authenticator_ids.get(authenticator) else {
                return Err(fail(format!(
                    "its authenticator {authenticator:?} is not in Odoo"
                )));
            };
            values.insert("authenticator_id".into(), json!(id));
        }
        match step.id {
            Some(id) => {
                let call = Call::on(model, "write", vec![id]).arg(Value::Object(values));
                client
                    .execute(&call)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
            }
            None => {
                let name = values.get("name").and_then(Value::as_str).map(String::from);
                values.insert("reference".into(), json!(reference));
                let call = Call::model(model, "create").arg(Value::Object(values));
                let id = match client.execute(&call).await {
                    Ok(answer) => answer
                        .as_i64()
                        .or_else(|| answer.get(0).and_then(Value::as_i64))
                        .ok_or_else(|| fail(format!("create returned {answer}")))?,
                    // An answer lost after Odoo committed (and perhaps a retry refused as
                    // a duplicate endpoint): the record is there all the same.
                    Err(error) => match find_by_reference(client, model, &reference).await {
                        Some(id) => {
                            tracing::warn!(
                                "{}: Odoo answered {error}, but the record exists (id {id})",
                                step.action
                            );
                            id
                        }
                        None => return Err(fail(error.to_string())),
                    },
                };
                let created = format!("created (id {id})");
                // The reference mixin may store another reference than asked: another
                // record took it meanwhile, or a create retried after a lost answer made
                // this one a duplicate. Either way the next import would not find it.
                let call = Call::on(model, "read", vec![id]).arg(json!(["reference"]));
                let stored = client
                    .execute(&call)
                    .await
                    .map_err(|e| fail(format!("{created}, then reading it back: {e}")))?;
                let stored = stored
                    .get(0)
                    .and_then(|row| row.get("reference"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if stored != reference {
                    return Err(fail(format!(
                        "{created}, but Odoo stored it with reference {stored:?}, as {reference:?} \
                         is taken (by an earlier attempt whose answer was lost?): delete the \
                         duplicate in Odoo and import again"
                    )));
                }
                // The module strips a new record's name; the files have the last word.
                if let Some(name) = name.filter(|name| name.trim() != name) {
                    let call = Call::on(model, "write", vec![id]).arg(json!({"name": name}));
                    client
                        .execute(&call)
                        .await
                        .map_err(|e| fail(format!("{created}, then writing its name: {e}")))?;
                }
                if model == AUTHENTICATOR_MODEL {
                    authenticator_ids.insert(reference.clone(), id);
                }
            }
        }
        done.push(step.action.to_string());
    }
    Ok(())
}

/// The id of the record with this reference (archived included), if exactly one.
async fn find_by_reference(client: &OdooClient, model: &str, reference: &str) -> Option<i64> {
    let call = Call::model(model, "search_read")
        .arg(json!([["reference", "=", reference]]))
        .arg(json!(["id"]))
        .kwarg("context", json!({"active_test": false}));
    let found = client.execute(&call).await.ok()?;
    match found.as_array()?.as_slice() {
        [row] => row.get("id").and_then(Value::as_i64),
        _ => None,
    }
}
