//! `towerhook check`: everything `serve` needs, verified up front, every problem listed
//! with what to do about it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::app::pool_settings;
use crate::configuration::{Settings, SourceKind};
use crate::definitions::SUPERUSER_ID;
use crate::definitions::odoo::{AUTHENTICATOR_MODEL, WEBHOOK_MODEL, build_registry, read_all};
use crate::definitions::registry::Registry;
use crate::definitions::secrets::SecretValues;
use crate::definitions::yaml;
use crate::definitions::yaml::local_secrets;
use crate::logs::store::LogStore;
use crate::odoo::companion::{self, AddonState};
use crate::odoo::run_as::{Principal, RunAs};
use crate::odoo::{Call, ClientSettings, ErrorKind, OdooClient, OdooError, OdooLink};
use crate::snippets::Pool;

pub const LOG_MODEL: &str = "cx.tower.webhook.log";

/// What was checked (for the operator to read) and what is wrong.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub problems: Vec<String>,
}

impl Report {
    fn line(&mut self, text: impl Into<String>) {
        self.lines.push(text.into());
    }

    fn problem(&mut self, text: impl Into<String>) {
        self.problems.push(text.into());
    }
}

pub async fn run(settings: &Settings) -> Report {
    let mut report = Report::default();
    let registry = match settings.source {
        SourceKind::Yaml => check_yaml(settings, &mut report),
        SourceKind::Odoo => check_odoo(settings, &mut report).await,
    };
    if let Some(registry) = registry {
        check_snippets(settings, &registry, &mut report).await;
    }
    if let Some(path) = &settings.geoip_database {
        match crate::logs::geoip::GeoIp::open(path) {
            Ok(_) => report.line(format!("geoip: {}", path.display())),
            Err(error) => report.problem(format!(
                "{error}: point geoip_database at a GeoLite2/GeoIP2 .mmdb file, or unset it"
            )),
        }
    }
    let store = settings.log_store_path();
    report.line(format!("log store: {}", store.display()));
    if let Err(error) = LogStore::open(
        &store,
        &crate::logs::store::StoreOptions::from_settings(settings),
    ) {
        report.problem(format!(
            "{error}: make data_dir ({}) a writable directory",
            settings.data_dir.display()
        ));
    }
    report
}

fn check_yaml(settings: &Settings, report: &mut Report) -> Option<Registry> {
    report.line(format!(
        "definitions: YAML directory {}",
        settings.yaml_dir.display()
    ));
    let loaded = local_secrets(settings)
        .and_then(|secrets| yaml::load_dir(&settings.yaml_dir, Arc::new(secrets)));
    match loaded {
        Ok(loaded) => {
            describe_registry(&loaded.registry, report);
            for warning in &loaded.warnings {
                report.line(format!("  warning: {warning}"));
            }
            Some(loaded.registry)
        }
        Err(error) => {
            for problem in error.0 {
                report.problem(problem.to_string());
            }
            None
        }
    }
}

fn describe_registry(registry: &Registry, report: &mut Report) {
    let active = registry.webhooks().iter().filter(|w| w.active).count();
    report.line(format!(
        "  {} webhook(s) ({active} active), {} authenticator(s)",
        registry.webhooks().len(),
        registry.authenticators().len()
    ));
    // towerhook extension (src/delivery).
    if let Some(line) = crate::delivery::describe(registry) {
        report.line(line);
    }
}

/// Snippets that cannot run are answered with an error on every call: say so now, with the
/// same worker code `serve` runs them with.
async fn check_snippets(settings: &Settings, registry: &Registry, report: &mut Report) {
    let pool = match pool_settings(settings) {
        Ok(mut pool) => {
            pool.workers = 1;
            Pool::start(pool, None).map_err(|e| e.to_string())
        }
        Err(error) => Err(error.to_string()),
    };
    let pool = match pool {
        Ok(pool) => pool,
        Err(error) => {
            report.problem(format!("cannot start a snippet worker: {error}"));
            return;
        }
    };
    match pool.ready(Duration::from_secs(30)).await {
        Ok(version) => report.line(format!(
            "python: {version}, packages from {}",
            settings.python_packages_dir.display()
        )),
        Err(error) => {
            report.problem(format!("no snippet worker starts: {error}"));
            pool.shutdown().await;
            return;
        }
    }
    let snippets = registry
        .authenticators()
        .iter()
        .map(|a| (format!("authenticator {:?}", a.reference), &a.code))
        .chain(
            registry
                .webhooks()
                .iter()
                .map(|w| (format!("webhook {:?}", w.reference), &w.code)),
        );
    for (label, snippet) in snippets {
        match pool.check(snippet).await {
            Ok(None) => {}
            Ok(Some(problem)) => report.problem(format!(
                "{label}: its code cannot run: {problem} (every call would fail with this)"
            )),
            Err(error) => {
                report.problem(format!("{label}: cannot be checked: {error}"));
                break;
            }
        }
    }
    pool.shutdown().await;
}

async fn check_odoo(settings: &Settings, report: &mut Report) -> Option<Registry> {
    let Some(client_settings) = crate::odoo::ClientSettings::from_settings(settings) else {
        report.problem("source = \"odoo\" needs odoo_url, odoo_db, odoo_login and odoo_api_key");
        return None;
    };
    report.line(format!(
        "definitions: Odoo at {}, database {:?}, as {:?}",
        client_settings.url, client_settings.database, client_settings.login
    ));
    let client = match OdooClient::connect(&client_settings).await {
        Ok(client) => client,
        Err(error) => {
            report.problem(connect_fix(&error));
            return None;
        }
    };
    report.line(format!(
        "  Odoo {} over {} (uid {})",
        client.version().text,
        client.protocol().as_str(),
        client.session().uid
    ));
    for model in [WEBHOOK_MODEL, AUTHENTICATOR_MODEL] {
        match client
            .execute(
                &Call::model(model, "search_count")
                    .arg(json!([]))
                    .kwarg("context", json!({"active_test": false})),
            )
            .await
        {
            Ok(count) => report.line(format!("  {model}: {count} record(s) readable")),
            Err(error) if error.kind() == Some(ErrorKind::AccessError) => report.problem(format!(
                "the service user cannot read {model} ({error}): add {:?} to the group \
                 \"Cetmix Tower / Root\"",
                client_settings.login
            )),
            Err(error) => report.problem(format!("reading {model} failed: {error}")),
        }
    }
    let addon = match companion::probe(&client).await {
        Ok(state) => state,
        Err(error) => {
            report.problem(format!("asking for the companion addon failed: {error}"));
            AddonState::NotInstalled
        }
    };
    match addon {
        AddonState::Ready => report.line(format!("  {}", addon.explain(&client_settings.login))),
        AddonState::NotInGroup => report.problem(addon.explain(&client_settings.login)),
        AddonState::NotInstalled => report.line(format!(
            "  warning: {}",
            addon.explain(&client_settings.login)
        )),
    }
    // towerhook extension (src/delivery): without the addon's fields, the defaults apply.
    match crate::definitions::delivery_fields::available(&client).await {
        Ok(available) => report.line(format!(
            "  {}",
            crate::definitions::delivery_fields::explain(available)
        )),
        Err(error) => report.problem(format!("asking for the delivery fields failed: {error}")),
    }
    let logs_to_odoo = settings.log_sink == crate::configuration::SinkKind::Odoo;
    if addon == AddonState::Ready {
        report.line(format!(
            "  {LOG_MODEL}: created through the companion addon"
        ));
    } else if logs_to_odoo {
        match can_create(&client, LOG_MODEL).await {
            Ok(true) => report.line(format!("  {LOG_MODEL}: create allowed")),
            Ok(false) => report.problem(format!(
                "the service user cannot create {LOG_MODEL} records (the module makes them \
                 read-only), so logs would wait in the outbox: install the companion addon, \
                 or run `towerhook odoo-setup` with administrator credentials to grant create \
                 to {:?}",
                client_settings.login
            )),
            Err(error) => report.problem(format!("checking create on {LOG_MODEL} failed: {error}")),
        }
    }
    match read_all(&client).await {
        Ok(snapshot) => {
            let (registry, problems) = build_registry(&snapshot, &Arc::new(SecretValues::new()));
            describe_registry(&registry, report);
            for problem in problems {
                report.problem(format!("{problem} (fix the record in Odoo)"));
            }
            if registry.uses_secrets() && addon != AddonState::Ready {
                report.problem(format!(
                    "snippets use secrets, which they cannot get: {}",
                    addon.explain(&client_settings.login)
                ));
            }
            check_run_as(settings, client_settings.clone(), &registry, report).await;
            Some(registry)
        }
        Err(error) => {
            report.problem(format!("reading the definitions failed: {error}"));
            None
        }
    }
}

/// Logs in every "Run as User" of the active webhooks once, as `serve` would on their
/// first call, and says whose rights each group of webhooks gets.
async fn check_run_as(
    settings: &Settings,
    client_settings: ClientSettings,
    registry: &Registry,
    report: &mut Report,
) {
    let mut by_user: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for webhook in registry.webhooks().iter().filter(|w| w.active) {
        by_user
            .entry(webhook.user_id)
            .or_default()
            .push(&webhook.reference);
    }
    if by_user.is_empty() {
        return;
    }
    let service_login = client_settings.login.clone();
    let run_as = RunAs::new(
        Arc::new(OdooLink::new(client_settings, None)),
        settings.run_as_users.clone(),
        settings.run_as_policy,
    );
    for (uid, references) in by_user {
        let webhooks = format!(
            "{} webhook(s) ({})",
            references.len(),
            references.join(", ")
        );
        let user = if uid == SUPERUSER_ID {
            "the superuser (1)".to_string()
        } else {
            format!("Odoo user {uid}")
        };
        match run_as.resolve(uid).await {
            Ok((session, Principal::Own)) => report.line(format!(
                "  {webhooks} run as {user}: with the rights of {:?} (uid {})",
                session.login, session.uid
            )),
            Ok((_, Principal::Service)) if uid == SUPERUSER_ID => report.line(format!(
                "  warning: {webhooks} run as the superuser, which cannot log in over RPC: they \
                 get the service user {service_login:?}'s rights, where the module gives them \
                 every right; to give them an administrator's rights instead, set \
                 run_as_users 1 = \"<admin login>:<admin api key>\""
            )),
            Ok((_, Principal::Service)) => report.line(format!(
                "  warning: {webhooks} run as {user} without credentials: with the service \
                 user {service_login:?}'s rights (run_as_policy = \"service\"); add the user's \
                 API key to run_as_users to use its own rights"
            )),
            Err(error) => report.problem(format!("{webhooks}: {error}")),
        }
    }
}

/// `check_access_rights` up to Odoo 18; `has_access` where it was replaced.
async fn can_create(client: &OdooClient, model: &str) -> Result<bool, OdooError> {
    let answer = client
        .execute(
            &Call::model(model, "check_access_rights")
                .arg(json!("create"))
                .arg(json!(false)),
        )
        .await;
    match answer {
        Ok(value) => Ok(value == Value::Bool(true)),
        Err(OdooError::Server(error)) if error.name.ends_with("AttributeError") => client
            .execute(&Call::model(model, "has_access").arg(json!("create")))
            .await
            .map(|value| value == Value::Bool(true)),
        Err(error) => Err(error),
    }
}

/// A connection failure, with the fix.
fn connect_fix(error: &OdooError) -> String {
    match error {
        OdooError::LoginRefused { .. } => format!(
            "{error}: check odoo_login and odoo_api_key (Odoo: Preferences > Account Security > \
             New API Key)"
        ),
        OdooError::Unreachable { .. } => {
            format!("{error}: check odoo_url and that Odoo is running and reachable from here")
        }
        OdooError::Status { status: 404, .. } => format!(
            "{error}: odoo_url must be Odoo's base URL (no /web or /jsonrpc), or set odoo_protocol"
        ),
        OdooError::Server(server) if server.message.contains("does not exist") => {
            format!("{error}: check odoo_db")
        }
        _ => error.to_string(),
    }
}
