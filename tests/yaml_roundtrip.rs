//! `towerhook export` and `import`: Odoo → Cetmix Tower YAML files → Odoo reproduces the
//! records exactly (tricky scalars included, also as PyYAML reads the files); a second
//! import changes nothing; a dry run writes nothing; edits are updates of exactly the
//! edited fields; Odoo's refusals name the record and what was done before.
//!
//! Against the emulator or a real Odoo (README, "Testing against a real Odoo"). References
//! and endpoints carry the test's prefix; the names are the YAML edge cases under test and
//! stay as they are. A real database holds other definitions: the export writes them too,
//! and the tests compare and import only their own files and records. "An empty Odoo" to
//! import into is a second emulator, or on a real Odoo the same database once the test's
//! records were removed from it.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::odoo::{Emulator, TestOdoo};
use serde_json::{Value, json};
use towerhook::definitions::roundtrip::{self, Action};
use towerhook::odoo::Call;

const AUTHENTICATOR: &str = "cx.tower.webhook.authenticator";
const WEBHOOK: &str = "cx.tower.webhook";

/// Names that YAML 1.1 (PyYAML) or YAML 1.2 would read as something else than the text
/// if written plain, and other shapes that are easy to get wrong.
const NAMES: &[&str] = &[
    "yes",
    "on",
    "No",
    "0755",
    "1:20",
    "~",
    "null",
    " leading and trailing ",
    "tab\there",
    "#!cxtower.secret.token!#",
    "- dash",
    "key: value # not a comment",
    "'quoted' \"twice\"",
    "é ü ✓",
    "a long name that goes on and on well beyond the eighty columns of a folded YAML line",
];

/// Code in every shape a `|` block has to get right: trailing newline or none, several,
/// leading blank lines, an indented first line, tabs, whitespace-only lines, trailing
/// spaces, YAML-looking lines, CRLF (not representable as a block), secret placeholders.
const CODES: &[&str] = &[
    "# a comment\nsecret = #!cxtower.secret.token!#\nif payload.get(\"x\") == \"1:20\":\n\tresult = {\"exit_code\": 0, \"message\": \"yes\"}\n  \n",
    "result = {'exit_code': 0, 'message': '0755'}",
    "a = 1\nb = 2",
    "a = 1\n\n\n",
    "    indented = 1\nx = 2\n",
    "\n\nleading = 'blank lines'\n",
    "line\twith\ttabs\n\t\n",
    "trailing = 'spaces'   \nnext = 1\n",
    "x = '''\nkey: value\n- item\n---\n...\n'''\n",
    "crlf = 1\r\nother = 2\r\n",
    "token = '#!cxtower.secret.api_key!#'\n",
    "~",
    "  one line with spaces  ",
    "\n",
    "é = 'ü'\n",
];

/// The user the "as another user" webhook runs as: the administrator (`base.user_admin`,
/// id 2 in every Odoo database), not the default superuser.
const OTHER_USER: i64 = 2;

/// Definitions with the shapes that are easy to get wrong in YAML: one webhook per tricky
/// name (each with a tricky code), an archived GET/form one, one running as another user,
/// most sharing one authenticator, and an authenticator no webhook uses.
async fn populate(odoo: &TestOdoo) {
    let shared = odoo
        .create(
            AUTHENTICATOR,
            json!({
                "name": "Shared", "reference": odoo.name("shared_auth"),
                "code": "token = #!cxtower.secret.shared_token!#\nresult = {'allowed': True}",
                "allowed_ip_addresses": "192.0.2.0/24, 2001:db8::/32",
                "trusted_proxy_ips": "192.0.2.5",
            }),
        )
        .await;
    let form = odoo
        .create(
            AUTHENTICATOR,
            json!({"name": "on", "reference": odoo.name("form_auth"), "code": "\n  # indented\nresult = {'allowed': True}\n\n"}),
        )
        .await;
    odoo.create(
        AUTHENTICATOR,
        json!({"name": "1:20", "reference": odoo.name("lonely_auth"), "code": "result = {'allowed': False}"}),
    )
    .await;
    for (index, (name, code)) in NAMES.iter().zip(CODES).enumerate() {
        let id = odoo
            .create(
                WEBHOOK,
                json!({
                    "name": format!("hook {index}"), "reference": odoo.name(&format!("tricky_{index}")),
                    "endpoint": format!("{}/tricky-{index}", odoo.prefix), "code": code,
                    "authenticator_id": shared,
                }),
            )
            .await;
        // `create` strips names; `write` keeps them as given.
        odoo.write(WEBHOOK, id, json!({"name": name})).await;
    }
    for values in [
        json!({"name": "Archived GET", "reference": odoo.name("archived_get"),
               "endpoint": odoo.name("archived"), "method": "get", "content_type": "form",
               "active": false, "code": "pass", "authenticator_id": form}),
        json!({"name": "Form POST", "reference": odoo.name("form_post"), "endpoint": odoo.name("form"),
               "content_type": "form", "code": "pass\n", "authenticator_id": form}),
        json!({"name": "As another user", "reference": odoo.name("as_other_user"),
               "endpoint": format!("{}/run", odoo.prefix), "code": "pass", "user_id": OTHER_USER,
               "authenticator_id": shared}),
        json!({"name": "Simple", "reference": odoo.name("simple"), "endpoint": odoo.name("simple_ep"),
               "code": "result = {'exit_code': 0, 'message': '0755'}", "authenticator_id": shared}),
    ] {
        odoo.create(WEBHOOK, values).await;
    }
}

const WEBHOOKS: usize = NAMES.len() + 4;
const AUTHENTICATORS: usize = 3;

/// The file `export` writes for this test's webhook `name`.
fn webhook_file(odoo: &TestOdoo, dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("webhook_{}.yaml", odoo.name(name)))
}

/// Key of a record in `definitions`: `webhook "<prefix>_<name>"`.
fn key(odoo: &TestOdoo, kind: &str, name: &str) -> String {
    format!("{kind} {:?}", odoo.name(name))
}

/// The definitions of `populate`, exported to a fresh directory, and a directory with only
/// this test's files of it (the same files on the emulator; a real database has others).
async fn exported(source: &TestOdoo) -> (tempfile::TempDir, tempfile::TempDir) {
    populate(source).await;
    let dir = tempfile::tempdir().unwrap();
    roundtrip::export(&source.client, dir.path()).await.unwrap();
    let own = own_files(source, dir.path());
    (dir, own)
}

/// A copy of the files in `dir` that hold this test's records (their names carry its
/// prefix), for imports that must not touch anybody else's definitions.
fn own_files(odoo: &TestOdoo, dir: &Path) -> tempfile::TempDir {
    let own = tempfile::tempdir().unwrap();
    for path in files(dir) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.contains(&odoo.prefix) {
            std::fs::copy(&path, own.path().join(&name)).unwrap();
        }
    }
    own
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// An Odoo without this test's definitions, to import into.
enum Target<'a> {
    /// A second emulator, with the source's prefix so that the imported records are found
    /// and removed like the source's.
    Fresh(Box<TestOdoo>),
    /// A real Odoo: the source's database, the source's records removed from it.
    Same(&'a TestOdoo),
}

impl std::ops::Deref for Target<'_> {
    type Target = TestOdoo;

    fn deref(&self) -> &TestOdoo {
        match self {
            Target::Fresh(odoo) => odoo,
            Target::Same(odoo) => odoo,
        }
    }
}

async fn empty_target(source: &TestOdoo) -> Target<'_> {
    if source.is_real() {
        let problems = source.remove_test_records().await;
        assert!(problems.is_empty(), "{problems:?}");
        return Target::Same(source);
    }
    let mut target = TestOdoo::start().await;
    target.prefix = source.prefix.clone();
    Target::Fresh(Box::new(target))
}

/// Every exported field of this test's records, by "model reference"; many2ones as
/// references, empty text as "".
async fn definitions(odoo: &TestOdoo) -> BTreeMap<String, Value> {
    let read = |model: &'static str, fields: Value| async move {
        let call = Call::model(model, "search_read")
            .arg(json!([["reference", "=like", format!("{}%", odoo.prefix)]]))
            .arg(fields)
            .kwarg("context", json!({"active_test": false}));
        let rows = odoo.client.execute(&call).await.unwrap();
        rows.as_array().unwrap().clone()
    };
    let text = |value: &Value| match value {
        Value::Bool(false) => json!(""),
        other => other.clone(),
    };
    let mut found = BTreeMap::new();
    let mut references = BTreeMap::new();
    let fields = [
        "reference",
        "name",
        "code",
        "allowed_ip_addresses",
        "trusted_proxy_ips",
    ];
    for row in read(AUTHENTICATOR, json!(fields)).await {
        references.insert(row["id"].as_i64().unwrap(), row["reference"].clone());
        let record: serde_json::Map<String, Value> = fields
            .iter()
            .map(|f| (f.to_string(), text(&row[f])))
            .collect();
        found.insert(
            format!("authenticator {}", row["reference"]),
            Value::Object(record),
        );
    }
    let fields = [
        "reference",
        "name",
        "endpoint",
        "method",
        "code",
        "content_type",
    ];
    let mut all = fields.to_vec();
    all.extend(["active", "user_id", "authenticator_id"]);
    for row in read(WEBHOOK, json!(all)).await {
        let mut record: serde_json::Map<String, Value> = fields
            .iter()
            .map(|f| (f.to_string(), text(&row[f])))
            .collect();
        record.insert(
            "authenticator_id".into(),
            references[&row["authenticator_id"][0].as_i64().unwrap()].clone(),
        );
        record.insert("active".into(), row["active"].clone());
        record.insert("user_id".into(), row["user_id"][0].clone());
        found.insert(
            format!("webhook {}", row["reference"]),
            Value::Object(record),
        );
    }
    found
}

/// The calls that changed something since journal entry `since`.
async fn writes_since(emulator: &Emulator, since: i64) -> Vec<Value> {
    emulator
        .journal(&format!("since={since}"))
        .await
        .into_iter()
        .filter(|e| {
            matches!(
                e["model_method"].as_str(),
                Some("create" | "write" | "unlink")
            )
        })
        .collect()
}

async fn last_seq(emulator: &Emulator) -> i64 {
    emulator
        .journal("")
        .await
        .last()
        .map_or(0, |e| e["seq"].as_i64().unwrap())
}

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

/// Webhooks and authenticators the service user can read (a real database holds others
/// than this test's).
async fn readable(odoo: &TestOdoo) -> (usize, usize) {
    (
        odoo.search(WEBHOOK, json!([])).await.len(),
        odoo.search(AUTHENTICATOR, json!([])).await.len(),
    )
}

#[tokio::test]
async fn export_then_import_into_an_empty_odoo_reproduces_the_records() {
    let source = TestOdoo::start().await;
    populate(&source).await;
    let dir = tempfile::tempdir().unwrap();
    let report = roundtrip::export(&source.client, dir.path()).await.unwrap();
    let (webhooks, authenticators) = readable(&source).await;
    assert_eq!(
        (report.webhooks, report.authenticators),
        (webhooks, authenticators)
    );
    if source.emulator.is_some() {
        assert_eq!((webhooks, authenticators), (WEBHOOKS, AUTHENTICATORS));
    }
    let own = own_files(&source, dir.path());
    assert_eq!(
        files(own.path()).len(),
        WEBHOOKS + 1,
        "one per webhook, one for the unused authenticator: {report}"
    );
    assert!(
        !report.skipped.iter().any(|r| r.starts_with(&source.prefix)) && report.others.is_empty(),
        "{report}"
    );
    assert!(report.to_string().ends_with(&format!(
        "{webhooks} webhook(s) and {authenticators} authenticator(s) exported to {} (no secret \
         values)",
        dir.path().display()
    )));
    let tricky = webhook_file(&source, dir.path(), "tricky_0");
    assert!(tricky.is_file());
    let lonely = dir.path().join(format!(
        "webhook_authenticator_{}.yaml",
        source.name("lonely_auth")
    ));
    assert!(lonely.is_file());

    // The YAML source reads them as they are.
    let loaded = towerhook::definitions::yaml::load_dir(own.path(), Default::default()).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

    // The module's layout: header comments, a blank line, the version, the records with
    // the module's field order, the authenticator embedded without its model.
    let text = std::fs::read_to_string(&tricky).unwrap();
    let (header, body) = text.split_once("\n\n").unwrap();
    assert!(header.lines().all(|l| l.starts_with("# ")), "{text}");
    assert!(header.contains("towerhook"), "{text}");
    assert!(
        body.starts_with("cetmix_tower_yaml_version: 1\nrecords:\n- cetmix_tower_model: webhook\n"),
        "{text}"
    );
    assert!(body.contains("\n  code: |\n"), "literal block: {text}");
    assert!(
        !text.contains("secret_ids") && !text.contains("user_id"),
        "{text}"
    );
    let document: Value = serde_saphyr::from_str(&text).unwrap();
    let record = &document["records"][0];
    assert_eq!(
        keys(record),
        [
            "cetmix_tower_model",
            "reference",
            "name",
            "active",
            "authenticator_id",
            "endpoint",
            "method",
            "code",
            "content_type"
        ]
    );
    assert_eq!(
        keys(&record["authenticator_id"]),
        [
            "reference",
            "name",
            "code",
            "allowed_ip_addresses",
            "trusted_proxy_ips"
        ]
    );
    let text = std::fs::read_to_string(&lonely).unwrap();
    let document: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(
        keys(&document["records"][0]),
        [
            "cetmix_tower_model",
            "reference",
            "name",
            "code",
            "allowed_ip_addresses",
            "trusted_proxy_ips"
        ]
    );
    assert!(
        text.contains("  allowed_ip_addresses: false\n  trusted_proxy_ips: false\n"),
        "empty text as false: {text}"
    );
    // Run as User only when it is not the default.
    let text = std::fs::read_to_string(webhook_file(&source, dir.path(), "as_other_user")).unwrap();
    assert!(
        text.ends_with(&format!("  content_type: json\n  user_id: {OTHER_USER}\n")),
        "{text}"
    );

    // A dry run into an empty Odoo plans every creation and writes nothing.
    let expected = definitions(&source).await;
    assert_eq!(expected.len(), WEBHOOKS + AUTHENTICATORS);
    let target = empty_target(&source).await;
    let journal = target.emulator_only("reads the call journal");
    let since = match journal {
        Some(emulator) => last_seq(emulator).await,
        None => 0,
    };
    let dry = roundtrip::import(&target.client, own.path(), false)
        .await
        .unwrap();
    assert_eq!(dry.changes(), WEBHOOKS + AUTHENTICATORS, "{dry}");
    let lines: Vec<String> = dry.to_string().lines().map(String::from).collect();
    assert_eq!(
        lines[0],
        format!("create authenticator {:?}", source.name("form_auth")),
        "{dry}"
    );
    assert!(
        lines.contains(&format!("create webhook {:?}", source.name("tricky_0"))),
        "{dry}"
    );
    assert!(lines.last().unwrap().contains("dry run"), "{dry}");
    if let Some(emulator) = journal {
        assert!(writes_since(emulator, since).await.is_empty());
    }
    assert!(definitions(&target).await.is_empty());

    let applied = roundtrip::import(&target.client, own.path(), true)
        .await
        .unwrap();
    assert_eq!(applied.changes(), WEBHOOKS + AUTHENTICATORS, "{applied}");
    assert!(
        applied
            .to_string()
            .ends_with(&format!("{} change(s) applied", WEBHOOKS + AUTHENTICATORS))
    );
    assert_eq!(definitions(&target).await, expected);

    // Importing again changes nothing, and writes nothing.
    let since = match journal {
        Some(emulator) => last_seq(emulator).await,
        None => 0,
    };
    let again = roundtrip::import(&target.client, own.path(), true)
        .await
        .unwrap();
    assert_eq!(again.changes(), 0, "{again}");
    assert!(
        again
            .actions
            .iter()
            .all(|a| matches!(a, Action::Unchanged { .. }))
    );
    assert!(
        again.to_string().contains(&format!(
            "unchanged webhook {:?}",
            source.name("archived_get")
        )),
        "{again}"
    );
    if let Some(emulator) = journal {
        assert!(writes_since(emulator, since).await.is_empty());
    }
    assert_eq!(definitions(&target).await, expected);

    // Importing the files back into the Odoo they came from changes nothing either.
    let home = roundtrip::import(&source.client, own.path(), false)
        .await
        .unwrap();
    assert_eq!(home.changes(), 0, "{home}");
}

#[tokio::test]
async fn edited_files_update_exactly_the_edited_fields() {
    let source = TestOdoo::start().await;
    let (_all, dir) = exported(&source).await;
    let simple = webhook_file(&source, dir.path(), "simple");
    let text = std::fs::read_to_string(&simple).unwrap();
    let text = text.replace("'0755'", "'0644'").replace(
        &format!("endpoint: {}", source.name("simple_ep")),
        &format!("endpoint: {}/v2", source.name("simple")),
    );
    std::fs::write(&simple, text).unwrap();
    // The shared authenticator is embedded in several files: edit every copy.
    for path in files(dir.path()) {
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("192.0.2.0/24, ", "192.0.2.0/25, ")).unwrap();
    }
    // Another authenticator for one webhook, and archived.
    let other = webhook_file(&source, dir.path(), "as_other_user");
    let text = std::fs::read_to_string(&other).unwrap();
    let (head, rest) = text.split_once("  authenticator_id:\n").unwrap();
    let (_, tail) = rest.split_once("  endpoint:").unwrap();
    let text = format!(
        "{head}  authenticator_id: {}\n  endpoint:{tail}",
        source.name("lonely_auth")
    )
    .replace("active: true", "active: false");
    std::fs::write(&other, text).unwrap();

    let before = definitions(&source).await;
    let journal = source.emulator_only("reads the call journal");
    let since = match journal {
        Some(emulator) => last_seq(emulator).await,
        None => 0,
    };
    let plan = roundtrip::import(&source.client, dir.path(), false)
        .await
        .unwrap();
    let changes: Vec<String> = plan
        .actions
        .iter()
        .filter(|a| !matches!(a, Action::Unchanged { .. }))
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        changes,
        [
            format!(
                "update authenticator {:?}: allowed_ip_addresses",
                source.name("shared_auth")
            ),
            format!(
                "update webhook {:?}: active, authenticator_id",
                source.name("as_other_user")
            ),
            format!("update webhook {:?}: endpoint, code", source.name("simple")),
        ],
        "{plan}"
    );
    assert_eq!(definitions(&source).await, before, "the dry run wrote");
    if let Some(emulator) = journal {
        assert!(writes_since(emulator, since).await.is_empty());
    }

    let since = match journal {
        Some(emulator) => last_seq(emulator).await,
        None => 0,
    };
    roundtrip::import(&source.client, dir.path(), true)
        .await
        .unwrap();
    if let Some(emulator) = journal {
        let writes = writes_since(emulator, since).await;
        assert_eq!(writes.len(), 3, "{writes:?}");
        assert!(writes.iter().all(|w| w["model_method"] == "write"));
    }
    let after = definitions(&source).await;
    let simple = &after[&key(&source, "webhook", "simple")];
    assert_eq!(
        simple["endpoint"],
        json!(format!("{}/v2", source.name("simple")))
    );
    assert_eq!(
        simple["code"],
        json!("result = {'exit_code': 0, 'message': '0644'}")
    );
    assert_eq!(
        after[&key(&source, "authenticator", "shared_auth")]["allowed_ip_addresses"],
        json!("192.0.2.0/25, 2001:db8::/32")
    );
    let other = &after[&key(&source, "webhook", "as_other_user")];
    assert_eq!(
        (
            &other["active"],
            &other["authenticator_id"],
            &other["user_id"]
        ),
        (
            &json!(false),
            &json!(source.name("lonely_auth")),
            &json!(OTHER_USER)
        )
    );
    // Nothing else changed.
    let unchanged = |map: &BTreeMap<String, Value>| {
        let mut map = map.clone();
        for name in ["simple", "as_other_user"] {
            map.remove(&key(&source, "webhook", name));
        }
        map.remove(&key(&source, "authenticator", "shared_auth"));
        map
    };
    assert_eq!(unchanged(&after), unchanged(&before));
}

/// The interpreter with PyYAML (the pyenv one has it), or `None`.
fn python_with_pyyaml() -> Option<String> {
    let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("PyYAML is not installed for {python}: comparison skipped");
    }
    ok.then_some(python)
}

#[tokio::test]
async fn exported_files_read_back_the_same_in_pyyaml() {
    let source = TestOdoo::start().await;
    let Some(python) = python_with_pyyaml() else {
        return;
    };
    let (_all, dir) = exported(&source).await;
    // Odoo reads these files with PyYAML's safe_load (YAML 1.1): every value must come
    // back as Odoo has it (`false` for empty text; `user_id` absent for the default).
    let script = r#"
import json, sys, yaml
found = {}
def text(value):
    assert value is False or isinstance(value, str), repr(value)
    return value or ""
def authenticator(record):
    fields = ["reference", "name", "code", "allowed_ip_addresses", "trusted_proxy_ips"]
    found["authenticator %s" % json.dumps(record["reference"])] = {f: text(record[f]) for f in fields}
for path in sys.argv[1:]:
    document = yaml.safe_load(open(path, encoding="utf-8"))
    assert document["cetmix_tower_yaml_version"] == 1
    for record in document["records"]:
        if record["cetmix_tower_model"] == "webhook_authenticator":
            authenticator(record)
            continue
        authenticator(record["authenticator_id"])
        row = {f: text(record[f]) for f in ["reference", "name", "endpoint", "method", "code", "content_type"]}
        assert isinstance(record["active"], bool)
        row["active"] = record["active"]
        row["authenticator_id"] = record["authenticator_id"]["reference"]
        row["user_id"] = record.get("user_id", 1)
        found["webhook %s" % json.dumps(record["reference"])] = row
print(json.dumps(found))
"#;
    let output = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(files(dir.path()))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: BTreeMap<String, Value> = serde_json::from_slice(&output.stdout).unwrap();
    let expected = definitions(&source).await;
    assert_eq!(read.len(), expected.len());
    for (key, value) in &expected {
        assert_eq!(read.get(key), Some(value), "{key}");
    }
    assert_eq!(
        read[&key(&source, "webhook", "tricky_0")]["name"],
        json!("yes")
    );
    assert_eq!(
        read[&key(&source, "webhook", "tricky_4")]["name"],
        json!("1:20")
    );
}

#[tokio::test]
async fn import_errors_name_the_record_and_what_was_done() {
    let source = TestOdoo::start().await;
    let (_all, dir) = exported(&source).await;
    let target = empty_target(&source).await;
    // Another webhook already serves POST simple_ep.
    target.open_webhook("simple_ep", "pass", 1).await;
    let error = roundtrip::import(&target.client, dir.path(), true)
        .await
        .unwrap_err()
        .to_string();
    let stopped = format!(
        "import stopped at create webhook {:?}: ",
        source.name("simple")
    );
    assert!(error.starts_with(&stopped), "{error}");
    assert!(
        error.contains("Endpoint and method must be unique"),
        "{error}"
    );
    assert!(
        error.contains(&format!(
            "done before: create authenticator {:?}; ",
            source.name("form_auth")
        )),
        "{error}"
    );
    // The dry run does not see it (only Odoo knows), and says what it would do.
    let plan = roundtrip::import(&target.client, dir.path(), false)
        .await
        .unwrap();
    assert!(
        plan.to_string()
            .contains(&format!("create webhook {:?}", source.name("simple"))),
        "{plan}"
    );

    // Odoo refusing the service user a right.
    let Some(emulator) = target.emulator_only("makes Odoo refuse a create") else {
        return;
    };
    emulator
        .control(
            "POST",
            "/fail",
            Some(json!({
                "kind": "odoo_error", "class": "access", "name": "odoo.exceptions.AccessError",
                "model": WEBHOOK, "method": "create", "times": 1,
                "message": "You are not allowed to create 'Webhook' (cx.tower.webhook) records.",
            })),
        )
        .await;
    let simple = webhook_file(&source, dir.path(), "simple");
    let text = std::fs::read_to_string(&simple).unwrap();
    std::fs::write(&simple, text.replace("simple_ep", "simple_ep2")).unwrap();
    let error = roundtrip::import(&target.client, dir.path(), true)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.starts_with(&stopped), "{error}");
    assert!(
        error.contains("AccessError: You are not allowed to create"),
        "{error}"
    );
    // The webhooks before it were created by the first attempt.
    assert!(error.ends_with("(nothing was written)"), "{error}");
}

#[tokio::test]
async fn a_lost_answer_to_a_create_does_not_go_unnoticed() {
    let source = TestOdoo::start().await;
    if source
        .emulator_only("drops Odoo's answers to creates")
        .is_none()
    {
        return;
    }
    let (_all, dir) = exported(&source).await;
    let expected = definitions(&source).await;
    let target = empty_target(&source).await;
    let emulator = target.emulator.as_ref().unwrap();
    // The webhook is created, its answer lost; the client's retry is refused as a
    // duplicate endpoint: the record is there, the import goes on.
    emulator
        .control(
            "POST",
            "/fail",
            Some(
                json!({"kind": "drop", "model": WEBHOOK, "method": "create", "times": 1,
                        "phase": "after"}),
            ),
        )
        .await;
    let plan = roundtrip::import(&target.client, dir.path(), true)
        .await
        .unwrap();
    assert_eq!(plan.changes(), WEBHOOKS + AUTHENTICATORS, "{plan}");
    assert_eq!(definitions(&target).await, expected);

    // An authenticator has no other unique field: the retry creates a second one under
    // another reference, which the next import would not know. Said, not hidden.
    let target = empty_target(&source).await;
    let emulator = target.emulator.as_ref().unwrap();
    emulator
        .control(
            "POST",
            "/fail",
            Some(
                json!({"kind": "drop", "model": AUTHENTICATOR, "method": "create",
                        "times": 1, "phase": "after"}),
            ),
        )
        .await;
    let error = roundtrip::import(&target.client, dir.path(), true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!(
            "but Odoo stored it with reference {:?}",
            source.name("form_auth_2")
        )),
        "{error}"
    );
}

#[tokio::test]
async fn references_odoo_would_rewrite_are_refused_before_anything_is_written() {
    let odoo = TestOdoo::start().await;
    let dir = tempfile::tempdir().unwrap();
    let prefix = &odoo.prefix;
    std::fs::write(
        dir.path().join("hooks.yaml"),
        format!(
            r#"cetmix_tower_yaml_version: 1
records:
- cetmix_tower_model: webhook
  reference: {prefix}_Deploy-Prod
  name: Deploy
  authenticator_id:
    reference: {prefix}_open_auth
    name: Open
    code: "result = {{'allowed': True}}"
  endpoint: {prefix}_deploy
  code: pass
  secret_ids:
  - reference: {prefix}_deploy_key
  colour: blue
"#
        ),
    )
    .unwrap();
    let journal = odoo.emulator_only("reads the call journal");
    let since = match journal {
        Some(emulator) => last_seq(emulator).await,
        None => 0,
    };
    for apply in [false, true] {
        let error = roundtrip::import(&odoo.client, dir.path(), apply)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("import refused, nothing written:"),
            "{error}"
        );
        assert!(
            error.contains(&format!("webhook \"{prefix}_Deploy-Prod\": "))
                && error.contains(&format!("\"{prefix}_deployprod\"")),
            "{error}"
        );
    }
    assert!(definitions(&odoo).await.is_empty(), "something was written");
    if let Some(emulator) = journal {
        assert!(writes_since(emulator, since).await.is_empty());
    }

    // With a reference Odoo keeps, the plan goes ahead and shows the reader's warnings.
    let path = dir.path().join("hooks.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("Deploy-Prod", "deploy_prod")).unwrap();
    let plan = roundtrip::import(&odoo.client, dir.path(), false)
        .await
        .unwrap();
    assert_eq!(plan.warnings.len(), 1, "{plan}");
    assert!(
        plan.to_string().starts_with("warning: ")
            && plan
                .to_string()
                .contains("field `colour`: unknown field ignored"),
        "{plan}"
    );
}

#[tokio::test]
async fn export_leaves_other_files_alone_and_says_so() {
    let source = TestOdoo::start().await;
    let (dir, _own) = exported(&source).await;
    let written = own_file_count(&source, dir.path());
    // A webhook deleted in Odoo since: its file stays, and is reported.
    let simple = source
        .search(WEBHOOK, json!([["reference", "=", source.name("simple")]]))
        .await;
    source.unlink(WEBHOOK, simple[0]).await;
    std::fs::write(dir.path().join("README.md"), "not YAML\n").unwrap();
    let report = roundtrip::export(&source.client, dir.path()).await.unwrap();
    let old = webhook_file(&source, dir.path(), "simple");
    assert_eq!(report.others, std::slice::from_ref(&old), "{report}");
    assert!(
        report.to_string().contains(&format!(
            "not written by this export: {} (import reads it too",
            old.display()
        )),
        "{report}"
    );
    let own: Vec<&PathBuf> = report
        .files
        .iter()
        .filter(|f| f.to_string_lossy().contains(&source.prefix))
        .collect();
    assert_eq!(own.len(), WEBHOOKS, "{report}");
    assert_eq!(written - 1, own.len());
}

/// How many of the files in `dir` hold this test's records.
fn own_file_count(odoo: &TestOdoo, dir: &Path) -> usize {
    files(dir)
        .iter()
        .filter(|f| f.to_string_lossy().contains(&odoo.prefix))
        .count()
}

fn towerhook(args: &[&str], odoo: &TestOdoo, dir: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_towerhook"))
        .args(args)
        .arg(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TOWERHOOK_ODOO_URL", &odoo.url)
        .env("TOWERHOOK_ODOO_DB", &odoo.database)
        .env("TOWERHOOK_ODOO_LOGIN", &odoo.login)
        .env("TOWERHOOK_ODOO_API_KEY", &odoo.secret)
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
    populate(&source).await;
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = towerhook(&["export", "--to"], &source, dir.path());
    assert!(ok, "{out}");
    let (webhooks, authenticators) = readable(&source).await;
    assert!(
        out.contains(&format!(
            "{webhooks} webhook(s) and {authenticators} authenticator(s) exported"
        )),
        "{out}"
    );
    let own = own_files(&source, dir.path());
    let expected = definitions(&source).await;
    let target = empty_target(&source).await;
    let (ok, out) = towerhook(&["import"], &target, own.path());
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "{} change(s) planned; nothing written",
            WEBHOOKS + AUTHENTICATORS
        )),
        "{out}"
    );
    assert!(definitions(&target).await.is_empty());
    let (ok, out) = towerhook(&["import", "--apply"], &target, own.path());
    assert!(ok, "{out}");
    assert_eq!(definitions(&target).await, expected);
}
