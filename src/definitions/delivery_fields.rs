//! The delivery settings in Odoo: the companion addon adds them to `cx.tower.webhook` as
//! `towerhook_*` fields. Odoo refuses to read fields it does not have, so towerhook asks
//! first (`fields_get`) and reads them only when they are all there; without them every
//! webhook has the defaults.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::definitions::delivery::{KEYS, odoo_field};
use crate::odoo::{Call, OdooClient, OdooError};

const WEBHOOK_MODEL: &str = "cx.tower.webhook";
/// The fields are looked for again this often (the addon may be installed or upgraded
/// while towerhook runs).
const PROBE_EVERY: Duration = Duration::from_secs(60);

/// The `towerhook_*` field names.
pub fn field_names() -> Vec<String> {
    KEYS.iter().map(|key| odoo_field(key)).collect()
}

/// Whether `cx.tower.webhook` has every delivery field. Odoo's own refusals (access, ...)
/// count as "no"; a transport failure is an error.
pub async fn available(client: &OdooClient) -> Result<bool, OdooError> {
    let names = field_names();
    let call = Call::model(WEBHOOK_MODEL, "fields_get")
        .arg(json!(names))
        .kwarg("attributes", json!(["type"]));
    match client.execute(&call).await {
        Ok(Value::Object(found)) => Ok(names.iter().all(|name| found.contains_key(name))),
        Ok(_) => Ok(false),
        Err(error @ OdooError::Server(_)) => {
            tracing::warn!("cannot tell whether Odoo has towerhook's delivery fields: {error}");
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// What the line of `towerhook check` says.
pub fn explain(available: bool) -> String {
    if available {
        "towerhook delivery settings (duplicate guard, limits, async mode): read from the \
         companion addon's fields of cx.tower.webhook (tab \"towerhook\")"
            .to_string()
    } else {
        "warning: towerhook delivery settings (duplicate guard, limits, async mode) are not in \
         this Odoo: cx.tower.webhook has no towerhook_* fields (the companion addon \
         cetmix_tower_webhook_sidecar is not installed, or is older): every webhook runs with \
         the defaults (sync, no duplicate guard, no limits); fix: install or upgrade the addon"
            .to_string()
    }
}

/// Remembers whether the fields exist, per connection, asking again every minute.
#[derive(Debug, Default)]
pub struct FieldsProbe {
    /// (the client it was asked through, the answer, when).
    known: Option<(usize, bool, Instant)>,
}

impl FieldsProbe {
    /// The extra fields to read on webhooks, and whether the answer changed since the last
    /// call (then every webhook must be read again).
    pub async fn fields(&mut self, client: &OdooClient) -> Result<(Vec<String>, bool), OdooError> {
        let address = client as *const OdooClient as usize;
        let fresh = self
            .known
            .filter(|(asked, _, at)| *asked == address && at.elapsed() < PROBE_EVERY);
        let (available, changed) = match fresh {
            Some((_, available, _)) => (available, false),
            None => {
                let available = available(client).await?;
                let changed = self.known.is_some_and(|(_, before, _)| before != available);
                if changed || self.known.is_none() {
                    tracing::info!("{}", explain(available));
                }
                self.known = Some((address, available, Instant::now()));
                (available, changed)
            }
        };
        Ok((if available { field_names() } else { Vec::new() }, changed))
    }
}
