//! `towerhook export` and `import`: Odoo → Cetmix Tower YAML files → Odoo reproduces the
//! records; a second import changes nothing; a dry run writes nothing.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::odoo::{DATABASE, SERVICE_KEY, SERVICE_LOGIN, TestOdoo};
use serde_json::{Value, json};
use towerhook::odoo::Call;

const TRICKY_CODE: &str = "# a comment\nsecret = #!cxtower.secret.token!#\nif payload.get(\"x\") == \"1:20\":\n\tresult = {\"exit_code\": 0, \"message\": \"yes\"}\n  \n";

/// Definitions with the shapes that are easy to get wrong in YAML.
async fn populate(odoo: &TestOdoo) {
    let shared = odoo
        .create(
            "cx.tower.webhook.authenticator",
            json!({
                "name": "Shared", "reference": "shared_auth",
                "code": "result = {'allowed': True}\n",
                "allowed_ip_addresses": "10.0.0.0/8, 2001:db8::/32",
                "trusted_proxy_ips": "10.0.0.5",
            }),
        )
        .await;
    odoo.create(
        "cx.tower.webhook.authenticator",
        json!({"name": "Lonely", "reference": "lonely_auth", "code": "result = {'allowed': False}"}),
    )
    .await;
    for values in [
        json!({"name": "yes", "reference": "tricky", "endpoint": "ci/tricky", "code": TRICKY_CODE,
               "user_id": 5}),
        json!({"name": "on", "reference": "archived_get", "endpoint": "archived", "method": "get",
               "content_type": "form", "active": false, "code": "pass"}),
        json!({"name": "Simple", "reference": "simple", "endpoint": "simple_ep",
               "code": "result = {'exit_code': 0, 'message': '0755'}"}),
    ] {
        let mut values = values;
        values["authenticator_id"] = json!(shared);
        odoo.create("cx.tower.webhook", values).await;
    }
}

/// The definitions of `populate`, exported to a fresh directory.
async fn exported(source: &TestOdoo) -> tempfile::TempDir {
    populate(source).await;
    let dir = tempfile::tempdir().unwrap();
    towerhook::yaml_sync::export(&source.client, dir.path())
        .await
        .unwrap();
    dir
}

/// Everything exported, by reference.
async fn definitions(odoo: &TestOdoo) -> BTreeMap<String, Value> {
    let mut found = BTreeMap::new();
    let read = |model: &'static str, fields: Value| async move {
        let call = Call::model(model, "search_read")
            .arg(json!([]))
            .arg(fields)
            .kwarg("context", json!({"active_test": false}));
        odoo.client.execute(&call).await
    };
    let authenticators = read(
        "cx.tower.webhook.authenticator",
        json!([
            "reference",
            "name",
            "code",
            "allowed_ip_addresses",
            "trusted_proxy_ips"
        ]),
    )
    .await
    .unwrap();
    let mut names = BTreeMap::new();
    for row in authenticators.as_array().unwrap() {
        let mut row = row.clone();
        names.insert(row["id"].as_i64().unwrap(), row["reference"].clone());
        row.as_object_mut().unwrap().remove("id");
        found.insert(format!("authenticator {}", row["reference"]), row);
    }
    let webhooks = read(
        "cx.tower.webhook",
        json!([
            "reference",
            "name",
            "active",
            "endpoint",
            "method",
            "content_type",
            "code",
            "user_id",
            "authenticator_id"
        ]),
    )
    .await
    .unwrap();
    for row in webhooks.as_array().unwrap() {
        let mut row = row.clone();
        row["authenticator_id"] = names[&row["authenticator_id"][0].as_i64().unwrap()].clone();
        row["user_id"] = row["user_id"][0].clone();
        row.as_object_mut().unwrap().remove("id");
        found.insert(format!("webhook {}", row["reference"]), row);
    }
    found
}

#[tokio::test]
async fn export_then_import_into_an_empty_odoo_reproduces_the_records() {
    let source = TestOdoo::start().await;
    if source.emulator().is_none() {
        return;
    }
    populate(&source).await;
    let dir = tempfile::tempdir().unwrap();
    let report = towerhook::yaml_sync::export(&source.client, dir.path())
        .await
        .unwrap();
    assert_eq!((report.webhooks, report.authenticators), (3, 2));
    assert_eq!(
        report.files.len(),
        4,
        "one per webhook, one for the unused authenticator"
    );
    assert!(dir.path().join("webhook_tricky.yaml").is_file());
    assert!(
        dir.path()
            .join("webhook_authenticator_lonely_auth.yaml")
            .is_file()
    );
    // The YAML source reads them as they are.
    let loaded = towerhook::source::yaml::load_dir(dir.path(), Default::default()).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let text = std::fs::read_to_string(dir.path().join("webhook_tricky.yaml")).unwrap();
    assert!(text.contains("cetmix_tower_yaml_version: 1"), "{text}");
    assert!(
        text.contains("code: |"),
        "multi-line code as a literal block: {text}"
    );
    assert!(!text.contains("s3cr3t"), "{text}");

    let target = TestOdoo::start().await;
    let emulator = target.emulator().unwrap();
    let dry = towerhook::yaml_sync::import(&target.client, dir.path(), false)
        .await
        .unwrap();
    assert_eq!(dry.changes(), 5, "{dry}");
    assert!(
        dry.to_string().contains("create webhook \"tricky\""),
        "{dry}"
    );
    assert!(dry.to_string().contains("dry run"), "{dry}");
    let writes = emulator.journal("method=create").await;
    assert!(writes.is_empty(), "a dry run wrote: {writes:?}");

    let applied = towerhook::yaml_sync::import(&target.client, dir.path(), true)
        .await
        .unwrap();
    assert_eq!(applied.changes(), 5, "{applied}");
    assert_eq!(definitions(&target).await, definitions(&source).await);

    let again = towerhook::yaml_sync::import(&target.client, dir.path(), true)
        .await
        .unwrap();
    assert_eq!(again.changes(), 0, "{again}");

    // An edited file is an update of exactly the edited field.
    let simple = dir.path().join("webhook_simple.yaml");
    let edited = std::fs::read_to_string(&simple)
        .unwrap()
        .replace("'0755'", "'0644'");
    std::fs::write(&simple, edited).unwrap();
    let plan = towerhook::yaml_sync::import(&target.client, dir.path(), false)
        .await
        .unwrap();
    assert_eq!(plan.changes(), 1, "{plan}");
    assert!(
        plan.to_string().contains("update webhook \"simple\": code"),
        "{plan}"
    );
}

#[tokio::test]
async fn exported_files_read_back_the_same_in_pyyaml() {
    let source = TestOdoo::start().await;
    if source.emulator().is_none() {
        return;
    }
    let dir = exported(&source).await;
    // Odoo reads these files with PyYAML: values like `yes`, `on`, `0755` and `1:20`
    // must come back as the same strings (the pyenv interpreter has PyYAML).
    let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = r#"
import json, sys, yaml
records = []
for path in sorted(sys.argv[1:]):
    records += yaml.safe_load(open(path))["records"]
print(json.dumps(records))
"#;
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().to_string())
        .collect();
    files.sort();
    let output = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .unwrap();
    if String::from_utf8_lossy(&output.stderr).contains("No module named 'yaml'") {
        eprintln!("PyYAML is not installed for {python}: comparison skipped");
        return;
    }
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let records: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let by_reference = |reference: &str| {
        records
            .iter()
            .find(|r| r["reference"] == json!(reference))
            .unwrap()
            .clone()
    };
    let tricky = by_reference("tricky");
    assert_eq!(tricky["name"], json!("yes"));
    assert_eq!(tricky["code"], json!(TRICKY_CODE));
    assert_eq!(tricky["user_id"], json!(5));
    assert_eq!(
        tricky["authenticator_id"]["allowed_ip_addresses"],
        json!("10.0.0.0/8, 2001:db8::/32")
    );
    let archived = by_reference("archived_get");
    assert_eq!(archived["name"], json!("on"));
    assert_eq!(archived["active"], json!(false));
    assert_eq!(archived["method"], json!("get"));
    assert_eq!(
        by_reference("simple")["code"],
        json!("result = {'exit_code': 0, 'message': '0755'}")
    );
    assert_eq!(
        by_reference("lonely_auth")["allowed_ip_addresses"],
        json!(false)
    );
}

#[tokio::test]
async fn import_errors_name_the_record_and_what_was_done() {
    let source = TestOdoo::start().await;
    if source.emulator().is_none() {
        return;
    }
    let dir = exported(&source).await;
    let target = TestOdoo::start().await;
    // Another webhook already serves POST simple_ep.
    target.open_webhook("simple_ep", "pass", 1).await;
    let error = towerhook::yaml_sync::import(&target.client, dir.path(), true)
        .await
        .unwrap_err();
    assert!(error.contains("create webhook \"simple\""), "{error}");
    assert!(
        error.contains("Endpoint and method must be unique"),
        "{error}"
    );
    assert!(
        error.contains("done before: create authenticator"),
        "{error}"
    );
}

fn towerhook(args: &[&str], odoo: &TestOdoo, dir: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_towerhook"))
        .args(args)
        .arg(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TOWERHOOK_ODOO_URL", &odoo.url)
        .env("TOWERHOOK_ODOO_DB", DATABASE)
        .env("TOWERHOOK_ODOO_LOGIN", SERVICE_LOGIN)
        .env("TOWERHOOK_ODOO_API_KEY", SERVICE_KEY)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

#[tokio::test]
async fn the_cli_exports_and_plans_an_import() {
    let source = TestOdoo::start().await;
    if source.emulator().is_none() {
        return;
    }
    populate(&source).await;
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = towerhook(&["export", "--to"], &source, dir.path());
    assert!(ok, "{out}");
    assert!(
        out.contains("3 webhook(s) and 2 authenticator(s) exported"),
        "{out}"
    );
    let target = TestOdoo::start().await;
    let (ok, out) = towerhook(&["import"], &target, dir.path());
    assert!(ok, "{out}");
    assert!(
        out.contains("5 change(s) planned; nothing written"),
        "{out}"
    );
    assert!(definitions(&target).await.is_empty());
}
