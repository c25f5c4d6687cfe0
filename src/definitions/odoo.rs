//! Definitions from Odoo: a mirror of `cx.tower.webhook` and `cx.tower.webhook.authenticator`
//! kept current by comparing `id` + `write_date` and re-reading only what changed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Problem;
use crate::definitions::HttpMethod;
use crate::definitions::IpList;
use crate::definitions::registry::Registry;
use crate::definitions::secrets::SecretValues;
use crate::definitions::{Authenticator, ContentType, SUPERUSER_ID, Webhook, is_valid_endpoint};
use crate::definitions::{Snippet, SnippetKind};
use crate::odoo::{Call, OdooClient, OdooError};

pub use crate::odoo::models::{AUTHENTICATOR_MODEL, WEBHOOK_MODEL};

const WEBHOOK_FIELDS: &[&str] = &[
    "name",
    "reference",
    "active",
    "authenticator_id",
    "endpoint",
    "method",
    "content_type",
    "user_id",
    "code",
    "write_date",
];
const AUTHENTICATOR_FIELDS: &[&str] = &[
    "name",
    "reference",
    "code",
    "allowed_ip_addresses",
    "trusted_proxy_ips",
    "write_date",
];

/// `write_date` has one-second precision: a record read in the same second as a later edit
/// would look unchanged. Records stay "unsettled" and are read again until a read happens
/// this long after their first one.
const SETTLE_AFTER: Duration = Duration::from_secs(2);

/// Everything towerhook needs of Odoo's definitions, without secret values: what the
/// snapshot cache stores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub webhooks: BTreeMap<i64, WebhookRow>,
    pub authenticators: BTreeMap<i64, AuthenticatorRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookRow {
    pub id: i64,
    pub write_date: String,
    pub name: String,
    pub reference: String,
    pub active: bool,
    pub authenticator_id: Option<i64>,
    pub endpoint: String,
    pub method: String,
    pub content_type: String,
    pub user_id: i64,
    pub code: String,
    /// towerhook extension (src/delivery): the companion addon's `towerhook_*` fields
    /// (defaults without them; snapshots cached before them read as defaults).
    #[serde(default)]
    pub delivery: crate::definitions::delivery::Policy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthenticatorRow {
    pub id: i64,
    pub write_date: String,
    pub name: String,
    pub reference: String,
    pub code: String,
    pub allowed_ip_addresses: String,
    pub trusted_proxy_ips: String,
}

/// A record type of the mirror.
trait Row: Sized + PartialEq {
    const MODEL: &'static str;
    const FIELDS: &'static [&'static str];
    fn parse(row: &Value) -> Result<Self, OdooError>;
    fn write_date(&self) -> &str;
}

impl Row for WebhookRow {
    const MODEL: &'static str = WEBHOOK_MODEL;
    const FIELDS: &'static [&'static str] = WEBHOOK_FIELDS;
    fn parse(row: &Value) -> Result<Self, OdooError> {
        webhook_row(row)
    }
    fn write_date(&self) -> &str {
        &self.write_date
    }
}

impl Row for AuthenticatorRow {
    const MODEL: &'static str = AUTHENTICATOR_MODEL;
    const FIELDS: &'static [&'static str] = AUTHENTICATOR_FIELDS;
    fn parse(row: &Value) -> Result<Self, OdooError> {
        authenticator_row(row)
    }
    fn write_date(&self) -> &str {
        &self.write_date
    }
}

/// The mirror and what is needed to keep it current.
#[derive(Default)]
pub struct Mirror {
    snapshot: Snapshot,
    /// (model, id) → when the record's current version was first read.
    unsettled: HashMap<(&'static str, i64), Instant>,
    /// towerhook extension (src/delivery): whether Odoo has the delivery fields.
    delivery_fields: crate::definitions::delivery_fields::FieldsProbe,
}

impl Mirror {
    pub fn from_snapshot(snapshot: Snapshot) -> Self {
        Self {
            snapshot,
            unsettled: HashMap::new(),
            delivery_fields: Default::default(),
        }
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Brings the mirror up to date; true when anything changed.
    pub async fn refresh(&mut self, client: &OdooClient) -> Result<bool, OdooError> {
        // towerhook extension (src/delivery): the addon's delivery fields are read when Odoo
        // has them; when that changes every webhook is read again.
        let (delivery_fields, fields_changed) = self.delivery_fields.fields(client).await?;
        if fields_changed {
            self.snapshot.webhooks.clear();
        }
        let webhooks = refresh_rows(
            client,
            &mut self.snapshot.webhooks,
            &mut self.unsettled,
            &delivery_fields,
        )
        .await?;
        let authenticators = refresh_rows(
            client,
            &mut self.snapshot.authenticators,
            &mut self.unsettled,
            &[],
        )
        .await?;
        Ok(webhooks || authenticators)
    }
}

/// Every webhook (inactive ones too) and authenticator, read once.
pub async fn read_all(client: &OdooClient) -> Result<Snapshot, OdooError> {
    let mut mirror = Mirror::default();
    mirror.refresh(client).await?;
    Ok(mirror.snapshot)
}

/// Lists ids and `write_date`s, reads only new, changed and unsettled records, drops
/// deleted ones; true when the rows changed.
async fn refresh_rows<R: Row>(
    client: &OdooClient,
    rows: &mut BTreeMap<i64, R>,
    unsettled: &mut HashMap<(&'static str, i64), Instant>,
    extra_fields: &[String],
) -> Result<bool, OdooError> {
    let listing = client
        .execute(
            &Call::model(R::MODEL, "search_read")
                .arg(json!([]))
                .arg(json!(["id", "write_date"]))
                .kwarg("context", json!({"active_test": false})),
        )
        .await?;
    let now = Instant::now();
    let mut present = Vec::new();
    let mut to_read = Vec::new();
    for entry in records(listing, R::MODEL, "search_read")? {
        let id = int(&entry, "id").ok_or_else(|| shape_error(R::MODEL, "id"))?;
        let write_date = text(&entry, "write_date");
        present.push(id);
        let changed = rows
            .get(&id)
            .is_none_or(|row| row.write_date() != write_date);
        if changed {
            unsettled.insert((R::MODEL, id), now);
        }
        if changed || unsettled.contains_key(&(R::MODEL, id)) {
            to_read.push(id);
        }
    }
    let mut changed = false;
    let before = rows.len();
    rows.retain(|id, _| present.contains(id));
    changed |= rows.len() != before;
    if !to_read.is_empty() {
        let mut fields: Vec<&str> = R::FIELDS.to_vec();
        fields.extend(extra_fields.iter().map(String::as_str));
        let answer = client
            .execute(
                &Call::on(R::MODEL, "read", to_read)
                    .arg(json!(fields))
                    .kwarg("context", json!({"active_test": false})),
            )
            .await?;
        for entry in records(answer, R::MODEL, "read")? {
            let row = R::parse(&entry)?;
            let id = int(&entry, "id").ok_or_else(|| shape_error(R::MODEL, "id"))?;
            if rows.get(&id) != Some(&row) {
                rows.insert(id, row);
                changed = true;
            }
        }
    }
    unsettled.retain(|(model, id), first| {
        *model != R::MODEL || (present.contains(id) && now.duration_since(*first) < SETTLE_AFTER)
    });
    Ok(changed)
}

fn records(answer: Value, model: &str, method: &str) -> Result<Vec<Value>, OdooError> {
    match answer {
        Value::Array(rows) => Ok(rows),
        other => Err(OdooError::Protocol {
            url: String::new(),
            reason: format!("{model}.{method} returned {other} instead of a list of records"),
        }),
    }
}

fn shape_error(model: &str, field: &str) -> OdooError {
    OdooError::Protocol {
        url: String::new(),
        reason: format!("a {model} record came without a usable `{field}`"),
    }
}

fn int(row: &Value, field: &str) -> Option<i64> {
    row.get(field).and_then(Value::as_i64)
}

/// Char/Text values: Odoo sends `false` for empty ones.
fn text(row: &Value, field: &str) -> String {
    row.get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A many2one: `[id, "name"]` or `false`.
fn many2one(row: &Value, field: &str) -> Option<i64> {
    match row.get(field) {
        Some(Value::Array(pair)) => pair.first().and_then(Value::as_i64),
        Some(Value::Number(id)) => id.as_i64(),
        _ => None,
    }
}

fn webhook_row(row: &Value) -> Result<WebhookRow, OdooError> {
    Ok(WebhookRow {
        id: int(row, "id").ok_or_else(|| shape_error(WEBHOOK_MODEL, "id"))?,
        write_date: text(row, "write_date"),
        name: text(row, "name"),
        reference: text(row, "reference"),
        active: row.get("active").and_then(Value::as_bool).unwrap_or(true),
        authenticator_id: many2one(row, "authenticator_id"),
        endpoint: text(row, "endpoint"),
        method: text(row, "method"),
        content_type: text(row, "content_type"),
        user_id: many2one(row, "user_id").unwrap_or(SUPERUSER_ID),
        code: text(row, "code"),
        delivery: crate::definitions::delivery::Policy::from_odoo(row),
    })
}

fn authenticator_row(row: &Value) -> Result<AuthenticatorRow, OdooError> {
    Ok(AuthenticatorRow {
        id: int(row, "id").ok_or_else(|| shape_error(AUTHENTICATOR_MODEL, "id"))?,
        write_date: text(row, "write_date"),
        name: text(row, "name"),
        reference: text(row, "reference"),
        code: text(row, "code"),
        allowed_ip_addresses: text(row, "allowed_ip_addresses"),
        trusted_proxy_ips: text(row, "trusted_proxy_ips"),
    })
}

/// The registry for a snapshot. Odoo's constraints normally keep records valid; a record
/// that is not (an endpoint Odoo would refuse today, a missing authenticator) is left out
/// and reported rather than served wrongly.
pub fn build_registry(
    snapshot: &Snapshot,
    secrets: &Arc<SecretValues>,
) -> (Registry, Vec<Problem>) {
    let origin = std::path::PathBuf::from("odoo");
    let mut problems = Vec::new();
    let mut report = |model: &str, id: i64, reference: &str, field: &str, message: String| {
        problems.push(Problem {
            file: origin.clone(),
            record: Some(format!("{model} {id} ({reference:?})")),
            field: Some(field.to_string()),
            message,
        });
    };
    let authenticators: BTreeMap<i64, Arc<Authenticator>> = snapshot
        .authenticators
        .values()
        .map(|row| {
            (
                row.id,
                Arc::new(Authenticator {
                    id: Some(row.id),
                    reference: row.reference.clone(),
                    name: row.name.clone(),
                    code: Snippet::with_secrets(SnippetKind::Authenticator, &row.code, secrets),
                    allowed_ips: IpList::parse(&row.allowed_ip_addresses),
                    trusted_proxies: IpList::parse(&row.trusted_proxy_ips),
                }),
            )
        })
        .collect();
    let mut webhooks = Vec::new();
    for row in snapshot.webhooks.values() {
        let Some(authenticator) = row.authenticator_id.and_then(|id| authenticators.get(&id))
        else {
            report(
                WEBHOOK_MODEL,
                row.id,
                &row.reference,
                "authenticator_id",
                "no readable authenticator".into(),
            );
            continue;
        };
        let Some(method) = HttpMethod::parse(&row.method) else {
            report(
                WEBHOOK_MODEL,
                row.id,
                &row.reference,
                "method",
                format!("unknown method {:?}", row.method),
            );
            continue;
        };
        let content_type = ContentType::parse(&row.content_type).unwrap_or(ContentType::Json);
        if !is_valid_endpoint(&row.endpoint) {
            report(
                WEBHOOK_MODEL,
                row.id,
                &row.reference,
                "endpoint",
                format!("invalid endpoint {:?}", row.endpoint),
            );
            continue;
        }
        // towerhook extension (src/delivery): the addon validates these; a value it would
        // refuse leaves the webhook out, as above.
        if let Some((key, message)) = row.delivery.problems().into_iter().next() {
            report(
                WEBHOOK_MODEL,
                row.id,
                &row.reference,
                &crate::definitions::delivery::odoo_field(key),
                message,
            );
            continue;
        }
        webhooks.push(Arc::new(Webhook {
            id: Some(row.id),
            reference: row.reference.clone(),
            name: row.name.clone(),
            active: row.active,
            authenticator: Arc::clone(authenticator),
            endpoint: row.endpoint.clone(),
            method,
            content_type,
            user_id: row.user_id,
            code: Snippet::with_secrets(SnippetKind::Webhook, &row.code, secrets),
            delivery: Arc::new(row.delivery.clone()),
        }));
    }
    let registry = Registry::new(webhooks, authenticators.into_values().collect(), secrets);
    (registry, problems)
}
