//! The companion Odoo addon `cetmix_tower_webhook_sidecar` (odoo_addon/): its group-guarded
//! RPC methods give towerhook the secret values and the log creation that stock Cetmix
//! Tower closes to RPC. towerhook uses them when present and says what is missing when not.

use serde_json::{Value, json};

/// Secret values by reference (`None`: the secret has no value).
pub type SecretValues = std::collections::BTreeMap<String, Option<String>>;
use crate::odoo::{Call, ErrorKind, OdooClient, OdooError};

pub const ADDON: &str = "cetmix_tower_webhook_sidecar";
pub const GROUP_XMLID: &str = "cetmix_tower_webhook_sidecar.group_sidecar";
pub const GROUP_NAME: &str = "Cetmix Tower / Webhook Sidecar";
const SECRETS_MODEL: &str = "cx.tower.webhook";
const SECRETS_METHOD: &str = "towerhook_secret_values";

/// Whether the connected user can use the addon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddonState {
    Ready,
    /// Installed; the user is not in its group.
    NotInGroup,
    NotInstalled,
}

impl AddonState {
    /// What works and what does not, for the operator.
    pub fn explain(&self, login: &str) -> String {
        match self {
            AddonState::Ready => {
                format!("companion addon {ADDON}: installed, {login:?} in its group")
            }
            AddonState::NotInGroup => format!(
                "companion addon {ADDON} is installed but {login:?} is not in its group \
                 \"{GROUP_NAME}\": secrets are unavailable to snippets and logs cannot be created \
                 through it; fix: `towerhook odoo-setup` or add the user to the group in Odoo"
            ),
            AddonState::NotInstalled => format!(
                "companion addon {ADDON} is not installed: snippets get None for secrets \
                 (Odoo gives no secret values over its standard API) and logs need \
                 `towerhook odoo-setup` to be created; fix: install odoo_addon/{ADDON} next to \
                 cetmix_tower_webhook"
            ),
        }
    }
}

/// Asks the addon for nothing: the answer says whether it is there and usable.
pub async fn probe(client: &OdooClient) -> Result<AddonState, OdooError> {
    match client.execute(&secrets_call(&[], &[])).await {
        Ok(_) => Ok(AddonState::Ready),
        Err(OdooError::Server(error)) if error.name.ends_with("AttributeError") => {
            Ok(AddonState::NotInstalled)
        }
        Err(error) if error.kind() == Some(ErrorKind::AccessError) => Ok(AddonState::NotInGroup),
        Err(error) => Err(error),
    }
}

/// The values of the secrets these records' code references (global values; `None` for an
/// unknown secret), as the module resolves them for webhooks.
pub async fn secret_values(
    client: &OdooClient,
    webhook_ids: &[i64],
    authenticator_ids: &[i64],
) -> Result<SecretValues, OdooError> {
    let answer = client
        .execute(&secrets_call(webhook_ids, authenticator_ids))
        .await?;
    let Value::Object(map) = answer else {
        return Err(OdooError::Protocol {
            url: client.url().to_string(),
            reason: format!("{SECRETS_METHOD} returned {answer} instead of a mapping"),
        });
    };
    Ok(map
        .into_iter()
        .map(|(reference, value)| {
            let value = match value {
                Value::String(text) => Some(text),
                Value::Null | Value::Bool(false) => None,
                other => Some(other.to_string()),
            };
            (reference, value)
        })
        .collect())
}

fn secrets_call(webhook_ids: &[i64], authenticator_ids: &[i64]) -> Call {
    Call::model(SECRETS_MODEL, SECRETS_METHOD)
        .arg(json!(webhook_ids))
        .arg(json!(authenticator_ids))
}
