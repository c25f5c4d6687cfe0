//! The delivery settings in Odoo (towerhook extensions): the companion addon's `towerhook_*`
//! fields of `cx.tower.webhook` round-trip through `towerhook export` and `import`, the
//! Odoo source serves them, and without the addon the defaults apply and `check` says so.
//!
//! Against the emulator, or a real Odoo with the addon installed (README, "Testing against
//! a real Odoo"); the parts that need the addon absent are emulator only and say so.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::answer;
use common::odoo::{SERVICE_LOGIN, TestOdoo, spawn_app_on};
use serde_json::{Map, Value, json};
use towerhook::definitions::delivery_fields::field_names;
use towerhook::definitions::roundtrip::{self, Action};
use towerhook::odoo::Call;

const ADDON: &str = "cetmix_tower_webhook_sidecar";
const WEBHOOK: &str = "cx.tower.webhook";

/// An Odoo whose webhooks have the delivery fields: the emulator with the addon installed,
/// or a real Odoo that has them; `None` (with a note) for a real one without.
async fn odoo_with_fields() -> Option<TestOdoo> {
    let odoo = TestOdoo::start().await;
    install_addon(&odoo).await;
    if !towerhook::definitions::delivery_fields::available(&odoo.client)
        .await
        .unwrap()
    {
        eprintln!("skipped: this Odoo has no towerhook_* fields (install the companion addon)");
        return None;
    }
    Some(odoo)
}

async fn install_addon(odoo: &TestOdoo) {
    if let Some(emulator) = &odoo.emulator {
        emulator
            .control(
                "POST",
                "/addons",
                Some(json!({ADDON: {"members": [SERVICE_LOGIN]}})),
            )
            .await;
    }
}

/// Settings every key of which differs from its default.
fn tuned() -> Value {
    json!({
        "towerhook_dedup_key": "header:X-GitHub-Delivery",
        "towerhook_dedup_window_secs": 600,
        "towerhook_max_body_bytes": 2048,
        "towerhook_max_concurrent_calls": 3,
        "towerhook_rate_per_minute": 120,
        "towerhook_mode": "async",
        "towerhook_retries": 0,
        "towerhook_async_status": 200,
        "towerhook_async_message": "queued",
    })
}

/// An open authenticator, a webhook `tuned` with every delivery setting changed, and one
/// `plain` with the defaults.
async fn populate(odoo: &TestOdoo) {
    let authenticator = odoo
        .create(
            "cx.tower.webhook.authenticator",
            json!({"name": "Open", "reference": odoo.name("open"),
                   "code": "result = {'allowed': True}"}),
        )
        .await;
    let mut values = json!({
        "name": "Tuned", "reference": odoo.name("tuned"), "endpoint": odoo.name("tuned"),
        "authenticator_id": authenticator,
        "code": "result = {'exit_code': 0, 'message': 'ran tuned'}",
    });
    values.as_object_mut().unwrap().extend(
        tuned()
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    odoo.create(WEBHOOK, values).await;
    odoo.create(
        WEBHOOK,
        json!({"name": "Plain", "reference": odoo.name("plain"), "endpoint": odoo.name("plain"),
               "authenticator_id": authenticator,
               "code": "result = {'exit_code': 0, 'message': 'ran plain'}"}),
    )
    .await;
}

/// The delivery fields of this test's webhooks, by reference.
async fn delivery_fields(odoo: &TestOdoo) -> Map<String, Value> {
    let mut fields = field_names();
    fields.push("reference".into());
    let rows = odoo
        .client
        .execute(
            &Call::model(WEBHOOK, "search_read")
                .arg(json!([["reference", "=like", format!("{}%", odoo.prefix)]]))
                .arg(json!(fields))
                .kwarg("context", json!({"active_test": false})),
        )
        .await
        .unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let mut row = row.as_object().unwrap().clone();
            row.remove("id");
            let reference = row.remove("reference").unwrap();
            (reference.as_str().unwrap().to_string(), Value::Object(row))
        })
        .collect()
}

fn record_of(path: &Path) -> Map<String, Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let document: Value = serde_saphyr::from_str(&text).unwrap();
    document["records"][0].as_object().unwrap().clone()
}

#[tokio::test]
async fn the_addons_fields_round_trip_through_export_and_import() {
    let Some(source) = odoo_with_fields().await else {
        return;
    };
    populate(&source).await;
    let before = delivery_fields(&source).await;
    let exported = tempfile::tempdir().unwrap();
    roundtrip::export(&source.client, exported.path())
        .await
        .unwrap();
    // Only this test's files (a real database has others).
    let own = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(exported.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.contains(&source.prefix) {
            std::fs::copy(&path, own.path().join(name)).unwrap();
        }
    }
    let tuned_file = own
        .path()
        .join(format!("webhook_{}.yaml", source.name("tuned")));
    let record = record_of(&tuned_file);
    let written: Map<String, Value> = record
        .iter()
        .filter(|(key, _)| towerhook::definitions::delivery::KEYS.contains(&key.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(
        Value::Object(written),
        json!({
            "dedup_key": "header:X-GitHub-Delivery", "dedup_window_secs": 600,
            "max_body_bytes": 2048, "max_concurrent_calls": 3, "rate_per_minute": 120,
            "mode": "async", "retries": 0, "async_status": 200, "async_message": "queued",
        })
    );
    let plain = record_of(
        &own.path()
            .join(format!("webhook_{}.yaml", source.name("plain"))),
    );
    for key in towerhook::definitions::delivery::KEYS {
        assert!(
            !plain.contains_key(*key),
            "default {key} exported: {plain:?}"
        );
    }

    // Into an Odoo without these records: the same values.
    let target = if source.is_real() {
        let problems = source.remove_test_records().await;
        assert!(problems.is_empty(), "{problems:?}");
        None
    } else {
        let mut target = TestOdoo::start().await;
        target.prefix = source.prefix.clone();
        install_addon(&target).await;
        Some(target)
    };
    let target = target.as_ref().unwrap_or(&source);
    let plan = roundtrip::import(&target.client, own.path(), true)
        .await
        .unwrap();
    assert_eq!(plan.changes(), 3, "{plan}");
    let created: Vec<i64> = target
        .search(
            WEBHOOK,
            json!([["reference", "=like", format!("{}%", target.prefix)]]),
        )
        .await;
    target.track(WEBHOOK, &created);
    assert_eq!(delivery_fields(target).await, before);
    let again = roundtrip::import(&target.client, own.path(), false)
        .await
        .unwrap();
    assert_eq!(again.changes(), 0, "{again}");

    // An edited key is an update of exactly that field.
    let text = std::fs::read_to_string(&tuned_file).unwrap();
    std::fs::write(&tuned_file, text.replace("mode: async", "mode: sync")).unwrap();
    let plan = roundtrip::import(&target.client, own.path(), false)
        .await
        .unwrap();
    let updates: Vec<&Action> = plan
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Update { .. }))
        .collect();
    assert_eq!(
        updates,
        [&Action::Update {
            model: WEBHOOK,
            reference: source.name("tuned"),
            fields: vec!["towerhook_mode".into()],
        }]
    );
}

#[tokio::test]
async fn files_with_delivery_keys_are_not_imported_into_an_odoo_without_the_fields() {
    let odoo = TestOdoo::start().await;
    let Some(emulator) = odoo.emulator_only("needs Odoo without the companion addon") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hooks.yaml"),
        format!(
            "- {{cetmix_tower_model: webhook_authenticator, reference: {p}_open, name: Open, code: pass}}\n\
             - {{cetmix_tower_model: webhook, reference: {p}_hook, name: Hook, authenticator_id: {p}_open, \
             endpoint: {p}_hook, code: pass, mode: async, retries: 1}}\n",
            p = odoo.prefix
        ),
    )
    .unwrap();
    let since = emulator
        .journal("")
        .await
        .last()
        .map_or(0, |e| e["seq"].as_i64().unwrap());
    let error = roundtrip::import(&odoo.client, dir.path(), true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("import refused, nothing written")
            && error.contains(&format!("webhook \"{}_hook\" (mode, retries)", odoo.prefix))
            && error.contains("install or upgrade the companion addon"),
        "{error}"
    );
    let writes = emulator
        .journal(&format!("since={since}"))
        .await
        .iter()
        .filter(|e| matches!(e["model_method"].as_str(), Some("create" | "write")))
        .count();
    assert_eq!(writes, 0);
}

/// `towerhook check` against this Odoo: its standard output.
fn check(odoo: &TestOdoo) -> String {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_towerhook"))
        .arg("check")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TOWERHOOK_SOURCE", "odoo")
        .env("TOWERHOOK_ODOO_URL", &odoo.url)
        .env("TOWERHOOK_ODOO_DB", &odoo.database)
        .env("TOWERHOOK_ODOO_LOGIN", &odoo.login)
        .env("TOWERHOOK_ODOO_API_KEY", &odoo.secret)
        .env("TOWERHOOK_DATA_DIR", data.path())
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn the_odoo_source_serves_the_settings_and_check_says_where_they_come_from() {
    let Some(odoo) = odoo_with_fields().await else {
        return;
    };
    populate(&odoo).await;
    let app = spawn_app_on(&odoo, |_| {}).await;
    let client = reqwest::Client::new();
    // Asynchronous, answered as configured; the code runs from the queue.
    let response = client
        .post(app.url(&odoo.name("tuned")))
        .header("X-GitHub-Delivery", "d-1")
        .body("{}")
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    assert_eq!((status, message), (200, json!("queued")));
    let response = client
        .post(app.url(&odoo.name("tuned")))
        .header("X-GitHub-Delivery", "d-1")
        .body("{}")
        .send()
        .await
        .unwrap();
    let (_, _, message) = answer(response).await;
    assert_eq!(message, json!("Duplicate delivery ignored"));
    let mut waited = Duration::ZERO;
    while !app
        .logs()
        .iter()
        .any(|log| log.result_message.as_deref() == Some("ran tuned"))
    {
        assert!(waited < Duration::from_secs(10), "{:?}", app.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    let stdout = check(&odoo);
    assert!(
        stdout.contains("towerhook delivery settings (duplicate guard, limits, async mode): read from the companion addon's fields"),
        "{stdout}"
    );
    assert!(
        stdout.contains("delivery settings (towerhook extensions): 1 async, 1 with a duplicate guard, 1 with limits"),
        "{stdout}"
    );
}

#[tokio::test]
async fn without_the_addon_webhooks_have_the_defaults_and_check_says_so() {
    let odoo = TestOdoo::start().await;
    if odoo
        .emulator_only("needs Odoo without the companion addon")
        .is_none()
    {
        return;
    }
    let authenticator = odoo
        .create(
            "cx.tower.webhook.authenticator",
            json!({"name": "Open", "reference": odoo.name("open"),
                   "code": "result = {'allowed': True}"}),
        )
        .await;
    odoo.create(
        WEBHOOK,
        json!({"name": "Hook", "reference": odoo.name("hook"), "endpoint": odoo.name("hook"),
               "authenticator_id": authenticator,
               "code": "result = {'exit_code': 0, 'message': 'ran'}"}),
    )
    .await;
    let app = spawn_app_on(&odoo, |_| {}).await;
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let response = client
            .post(app.url(&odoo.name("hook")))
            .header("X-GitHub-Delivery", "d-1")
            .body("{}")
            .send()
            .await
            .unwrap();
        // Sync, no duplicate guard: the code runs each time.
        let (status, _, message) = answer(response).await;
        assert_eq!((status, message), (200, json!("ran")));
    }
    let stdout = check(&odoo);
    assert!(
        stdout.contains("warning: towerhook delivery settings (duplicate guard, limits, async mode) are not in this Odoo")
            && stdout.contains("every webhook runs with the defaults"),
        "{stdout}"
    );
}
