//! `towerhook odoo-setup`: with administrator credentials, makes Odoo ready for towerhook's
//! service user. With the companion addon installed: adds the user to the addon's group
//! (secrets and log creation through the addon). Without it: grants create on
//! `cx.tower.webhook.log`, which the module makes read-only for everyone, and says that
//! secrets stay unavailable. Idempotent: what already exists is left as it is.

use serde_json::{Value, json};

use crate::configuration::Settings;
use crate::odoo::companion::{self, AddonState};
use crate::odoo::models::LOG_MODEL;
use crate::odoo::{Call, ClientSettings, OdooClient, OdooError};

pub const GROUP_NAME: &str = "Towerhook: webhook log writers";
const ACCESS_NAME: &str = "towerhook: create webhook logs";

/// Performs the set-up; the steps taken, for the operator.
pub async fn run(
    settings: &Settings,
    admin_login: &str,
    admin_secret: &str,
) -> Result<Vec<String>, String> {
    let service: ClientSettings = crate::odoo::ClientSettings::from_settings(settings)
        .ok_or("odoo-setup needs odoo_url, odoo_db, odoo_login and odoo_api_key")?;
    let admin_settings = ClientSettings {
        login: admin_login.to_string(),
        secret: admin_secret.into(),
        ..service.clone()
    };
    let admin = OdooClient::connect(&admin_settings)
        .await
        .map_err(|e| e.to_string())?;
    let mut steps = Vec::new();
    let failed = |what: &str, e: OdooError| format!("{what}: {e}");

    let user = first_id(&admin, "res.users", json!([["login", "=", service.login]]))
        .await
        .map_err(|e| failed("looking up the service user", e))?
        .ok_or_else(|| format!("no Odoo user with login {:?}", service.login))?;

    let addon_state = first_record(
        &admin,
        "ir.module.module",
        json!([["name", "=", companion::ADDON]]),
        &["state"],
    )
    .await
    .map_err(|e| failed("looking up the companion addon", e))?
    .and_then(|module| module["state"].as_str().map(String::from));
    if addon_state.as_deref() == Some("installed") {
        let (module, name) = companion::GROUP_XMLID.split_once('.').unwrap_or_default();
        let group = first_record(
            &admin,
            "ir.model.data",
            json!([["module", "=", module], ["name", "=", name]]),
            &["res_id"],
        )
        .await
        .map_err(|e| failed("looking up the addon's group", e))?
        .and_then(|data| data["res_id"].as_i64())
        .ok_or("the companion addon is installed but its group is missing: upgrade it")?;
        add_to_group(&admin, user, group)
            .await
            .map_err(|e| failed("adding the service user to the addon's group", e))?;
        steps.push(format!(
            "companion addon {} installed; user {:?} (id {user}) is in \"{}\"",
            companion::ADDON,
            service.login,
            companion::GROUP_NAME
        ));
        let client = OdooClient::connect(&service)
            .await
            .map_err(|e| e.to_string())?;
        match companion::probe(&client).await.map_err(|e| e.to_string())? {
            AddonState::Ready => {
                steps.push("secrets and log creation go through the addon".to_string());
                return Ok(steps);
            }
            state => return Err(state.explain(&service.login)),
        }
    }
    steps.push(format!(
        "companion addon {} not installed ({}): secrets stay unavailable to snippets; \
         granting create on {LOG_MODEL} instead",
        companion::ADDON,
        addon_state.as_deref().unwrap_or("not found")
    ));

    let group = match first_id(&admin, "res.groups", json!([["name", "=", GROUP_NAME]]))
        .await
        .map_err(|e| failed("looking up the group", e))?
    {
        Some(group) => {
            steps.push(format!("group {GROUP_NAME:?} exists (id {group})"));
            group
        }
        None => {
            let created = admin
                .execute(&Call::model("res.groups", "create").arg(json!({"name": GROUP_NAME})))
                .await
                .map_err(|e| failed("creating the group", e))?;
            let group = single_id(&created).ok_or("creating the group returned no id")?;
            steps.push(format!("created group {GROUP_NAME:?} (id {group})"));
            group
        }
    };

    let model = first_id(&admin, "ir.model", json!([["model", "=", LOG_MODEL]]))
        .await
        .map_err(|e| failed("looking up the log model", e))?
        .ok_or("the Cetmix Tower webhook module is not installed (no cx.tower.webhook.log)")?;
    let rule_domain = json!([["model_id", "=", model], ["group_id", "=", group]]);
    match first_id(&admin, "ir.model.access", rule_domain)
        .await
        .map_err(|e| failed("looking up the access rule", e))?
    {
        Some(rule) => {
            admin
                .execute(
                    &Call::on("ir.model.access", "write", vec![rule])
                        .arg(json!({"perm_read": true, "perm_create": true})),
                )
                .await
                .map_err(|e| failed("updating the access rule", e))?;
            steps.push(format!(
                "access rule {ACCESS_NAME:?} grants create (id {rule})"
            ));
        }
        None => {
            let created = admin
                .execute(&Call::model("ir.model.access", "create").arg(json!({
                    "name": ACCESS_NAME,
                    "model_id": model,
                    "group_id": group,
                    "perm_read": true,
                    "perm_create": true,
                    "perm_write": false,
                    "perm_unlink": false,
                })))
                .await
                .map_err(|e| failed("creating the access rule", e))?;
            steps.push(format!(
                "created access rule {ACCESS_NAME:?} granting create on {LOG_MODEL} (id {})",
                single_id(&created).unwrap_or_default()
            ));
        }
    }

    add_to_group(&admin, user, group)
        .await
        .map_err(|e| failed("adding the service user to the group", e))?;
    steps.push(format!(
        "user {:?} (id {user}) is in the group",
        service.login
    ));

    // Check as the service user itself.
    let client = OdooClient::connect(&service)
        .await
        .map_err(|e| e.to_string())?;
    let allowed = client
        .execute(
            &Call::model(LOG_MODEL, "check_access_rights")
                .arg(json!("create"))
                .arg(json!(false)),
        )
        .await
        .map_err(|e| failed("checking the right", e))?;
    if allowed != Value::Bool(true) {
        return Err(format!(
            "{:?} still may not create {LOG_MODEL} records; check record rules in Odoo",
            service.login
        ));
    }
    steps.push(format!(
        "{:?} may now create {LOG_MODEL} records",
        service.login
    ));
    Ok(steps)
}

/// Adds the user to the group; the field is `groups_id` up to Odoo 18, `group_ids` from 19.
async fn add_to_group(admin: &OdooClient, user: i64, group: i64) -> Result<(), OdooError> {
    let fields = admin
        .execute(&Call::model("res.users", "fields_get").kwarg("attributes", json!(["type"])))
        .await?;
    let groups_field = if fields.get("group_ids").is_some() {
        "group_ids"
    } else {
        "groups_id"
    };
    admin
        .execute(
            &Call::on("res.users", "write", vec![user]).arg(json!({groups_field: [[4, group]]})),
        )
        .await
        .map(drop)
}

async fn first_record(
    client: &OdooClient,
    model: &str,
    domain: Value,
    fields: &[&str],
) -> Result<Option<Value>, OdooError> {
    let rows = client
        .execute(
            &Call::model(model, "search_read")
                .arg(domain)
                .arg(json!(fields))
                .kwarg("limit", json!(1))
                .kwarg("context", json!({"active_test": false})),
        )
        .await?;
    Ok(rows.get(0).cloned())
}

async fn first_id(
    client: &OdooClient,
    model: &str,
    domain: Value,
) -> Result<Option<i64>, OdooError> {
    let ids = client
        .execute(
            &Call::model(model, "search")
                .arg(domain)
                .kwarg("limit", json!(1))
                .kwarg("context", json!({"active_test": false})),
        )
        .await?;
    Ok(ids.get(0).and_then(Value::as_i64))
}

fn single_id(created: &Value) -> Option<i64> {
    created
        .as_i64()
        .or_else(|| created.get(0).and_then(Value::as_i64))
}
