//! `towerhook export` / `towerhook import`: webhooks and authenticators between Odoo and
//! Cetmix Tower YAML files, so that teams can keep their definitions in git. The files are
//! the module's export format, which the YAML source reads too.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::definitions::{SUPERUSER_ID, Webhook};
use crate::odoo::{Call, OdooClient};
use crate::source::odoo::{
    AUTHENTICATOR_MODEL, AuthenticatorRow, Snapshot, WEBHOOK_MODEL, WebhookRow, read_all,
};
use crate::source::yaml;

/// Text as the module exports it: empty values are `false`, code with line breaks is a
/// `|` literal block.
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

/// Field order of the module's export.
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
    /// towerhook extension: "Run as User" is not part of the module's export.
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<i64>,
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

async fn read_definitions(client: &OdooClient) -> Result<Snapshot, String> {
    read_all(client)
        .await
        .map_err(|e| format!("reading the definitions from Odoo: {e}"))
}

/// What an export wrote.
#[derive(Debug)]
pub struct ExportReport {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub webhooks: usize,
    pub authenticators: usize,
}

impl fmt::Display for ExportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for file in &self.files {
            writeln!(f, "wrote {}", file.display())?;
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
/// `webhook_authenticator_<reference>.yaml`.
pub async fn export(client: &OdooClient, dir: &Path) -> Result<ExportReport, String> {
    let snapshot = &read_definitions(client).await?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files = Vec::new();
    let header = format!(
        "# Exported from Odoo by towerhook {} on {} UTC.\n# Cetmix Tower YAML format; secret \
         values are not included.\n\n",
        env!("CARGO_PKG_VERSION"),
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S")
    );
    let mut used = std::collections::HashSet::new();
    for row in snapshot.webhooks.values() {
        let Some(authenticator) = row
            .authenticator_id
            .and_then(|id| snapshot.authenticators.get(&id))
        else {
            log::warn!(
                "webhook {:?} has no readable authenticator: not exported",
                row.reference
            );
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
        };
        files.push(write(dir, "webhook", &row.reference, &header, record)?);
    }
    for row in snapshot
        .authenticators
        .values()
        .filter(|row| !used.contains(&row.id))
    {
        let record = authenticator_record(row, true);
        files.push(write(
            dir,
            "webhook_authenticator",
            &row.reference,
            &header,
            record,
        )?);
    }
    Ok(ExportReport {
        dir: dir.to_path_buf(),
        files,
        webhooks: snapshot.webhooks.len(),
        authenticators: snapshot.authenticators.len(),
    })
}

fn write<R: Serialize>(
    dir: &Path,
    prefix: &str,
    reference: &str,
    header: &str,
    record: R,
) -> Result<PathBuf, String> {
    let document = Document {
        cetmix_tower_yaml_version: 1,
        records: vec![record],
    };
    let yaml = serde_saphyr::to_string(&document).map_err(|e| e.to_string())?;
    let name: String = reference
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{prefix}_{name}.yaml"));
    std::fs::write(&path, format!("{header}{yaml}"))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
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
        fields: Vec<String>,
    },
    Unchanged {
        model: &'static str,
        reference: String,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = |model: &str| {
            if model == WEBHOOK_MODEL {
                "webhook"
            } else {
                "authenticator"
            }
        };
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

/// The actions of an import, planned (dry run) or done (`applied`).
#[derive(Debug)]
pub struct ImportPlan {
    pub actions: Vec<Action>,
    pub applied: bool,
}

impl ImportPlan {
    pub fn changes(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| !matches!(a, Action::Unchanged { .. }))
            .count()
    }
}

impl fmt::Display for ImportPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

/// Reads `dir` (validated as the YAML source validates it) and creates or updates the
/// records by reference; with `apply` false only the plan is returned.
pub async fn import(client: &OdooClient, dir: &Path, apply: bool) -> Result<ImportPlan, String> {
    let loaded = yaml::load_dir(dir, Arc::default()).map_err(|e| e.to_string())?;
    let registry = loaded.registry;
    let snapshot = &read_definitions(client).await?;
    let mut steps = Vec::new();
    for authenticator in registry.authenticators() {
        let wanted = json!({
            "name": authenticator.name,
            "code": authenticator.code.source(),
            "allowed_ip_addresses": authenticator.allowed_ips.text(),
            "trusted_proxy_ips": authenticator.trusted_proxies.text(),
        });
        let existing = find(&snapshot.authenticators, |r| {
            r.reference == authenticator.reference
        });
        let current = existing.map(|row| {
            json!({
                "name": row.name, "code": row.code,
                "allowed_ip_addresses": row.allowed_ip_addresses,
                "trusted_proxy_ips": row.trusted_proxy_ips,
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
        let wanted = webhook_values(webhook);
        let current = existing.map(|row| current_webhook(row, snapshot));
        steps.push(step(
            WEBHOOK_MODEL,
            &webhook.reference,
            existing.map(|r| r.id),
            wanted,
            current,
            Some(webhook.authenticator.reference.clone()),
        ));
    }
    if apply {
        perform(client, snapshot, &mut steps).await?;
    }
    Ok(ImportPlan {
        actions: steps.into_iter().map(|s| s.action).collect(),
        applied: apply,
    })
}

fn find<R>(rows: &BTreeMap<i64, R>, matches: impl Fn(&R) -> bool) -> Option<&R> {
    rows.values().find(|row| matches(row))
}

/// The values a webhook should have; "Run as User" only when the files say so (the
/// module's format has no such field, so its absence changes nothing).
fn webhook_values(webhook: &Webhook) -> Value {
    let mut values = json!({
        "name": webhook.name,
        "active": webhook.active,
        "endpoint": webhook.endpoint,
        "method": webhook.method.as_str(),
        "content_type": match webhook.content_type {
            crate::definitions::ContentType::Json => "json",
            crate::definitions::ContentType::Form => "form",
        },
        "code": webhook.code.source(),
        "authenticator": webhook.authenticator.reference,
    });
    if webhook.user_id != SUPERUSER_ID {
        values["user_id"] = json!(webhook.user_id);
    }
    values
}

fn current_webhook(row: &WebhookRow, snapshot: &Snapshot) -> Value {
    json!({
        "name": row.name,
        "active": row.active,
        "endpoint": row.endpoint,
        "method": row.method,
        "content_type": row.content_type,
        "code": row.code,
        "authenticator": row
            .authenticator_id
            .and_then(|id| snapshot.authenticators.get(&id))
            .map(|a| a.reference.clone()),
        "user_id": row.user_id,
    })
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
        None => (
            Action::Create {
                model,
                reference: reference.clone(),
            },
            wanted,
        ),
        Some(current) => {
            let changed: Map<String, Value> = wanted
                .into_iter()
                .filter(|(field, value)| current.get(field) != Some(value))
                .collect();
            if changed.is_empty() {
                (
                    Action::Unchanged {
                        model,
                        reference: reference.clone(),
                    },
                    changed,
                )
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
                (
                    Action::Update {
                        model,
                        reference: reference.clone(),
                        fields,
                    },
                    changed,
                )
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

/// Writes the steps in order (authenticators first), stopping at the first error with
/// what was done so far.
async fn perform(
    client: &OdooClient,
    snapshot: &Snapshot,
    steps: &mut [Step],
) -> Result<(), String> {
    let mut authenticator_ids: BTreeMap<String, i64> = snapshot
        .authenticators
        .values()
        .map(|row| (row.reference.clone(), row.id))
        .collect();
    let mut done = Vec::new();
    for step in steps.iter_mut() {
        let (model, reference) = match &step.action {
            Action::Unchanged { .. } => continue,
            Action::Create { model, reference }
            | Action::Update {
                model, reference, ..
            } => (*model, reference.clone()),
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
            let id = authenticator_ids
                .get(authenticator)
                .copied()
                .ok_or_else(|| {
                    format!(
                        "authenticator {authenticator:?} of webhook {reference:?} is not in Odoo"
                    )
                })?;
            values.insert("authenticator_id".into(), json!(id));
        }
        let call = match step.id {
            Some(id) => Call::on(model, "write", vec![id]).arg(Value::Object(values)),
            None => {
                values.insert("reference".into(), json!(reference));
                Call::model(model, "create").arg(Value::Object(values))
            }
        };
        let answer = client.execute(&call).await.map_err(|error| {
            let before = if done.is_empty() {
                "nothing was written".to_string()
            } else {
                format!("done before: {}", done.join("; "))
            };
            format!("{}: {error} ({before})", step.action)
        })?;
        if step.id.is_none() && model == AUTHENTICATOR_MODEL {
            let id = answer
                .as_i64()
                .or_else(|| answer.get(0).and_then(Value::as_i64))
                .ok_or_else(|| format!("creating authenticator {reference:?} returned {answer}"))?;
            authenticator_ids.insert(reference.clone(), id);
        }
        done.push(step.action.to_string());
    }
    Ok(())
}
