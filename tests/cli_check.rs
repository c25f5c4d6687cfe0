//! `towerhook check`, run as the real binary.

use std::path::Path;
use std::process::{Command, Output};

fn check(yaml_dir: &Path, data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_towerhook"))
        .arg("check")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TOWERHOOK_YAML_DIR", yaml_dir)
        .env("TOWERHOOK_DATA_DIR", data_dir)
        .output()
        .unwrap()
}

#[test]
fn definitions_with_errors_fail_with_every_problem_listed() {
    let yaml = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        yaml.path().join("hooks.yaml"),
        r#"- cetmix_tower_model: webhook_authenticator
  reference: lan
  name: LAN
  code: pass
  allowed_ip_addresses: 192.0.2.0/24, 192.0.2.300
- cetmix_tower_model: webhook
  reference: deploy
  name: Deploy
  authenticator_id: lan
  endpoint: deploy/
  method: put
  code: pass
- cetmix_tower_model: webhook
  reference: deploy
  name: Deploy again
  authenticator_id: nobody
  endpoint: deploy
  code: pass
"#,
    )
    .unwrap();
    std::fs::write(yaml.path().join("broken.yml"), "- [unclosed\n").unwrap();
    let output = check(yaml.path(), data.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "check passed:\n{stdout}");
    for expected in [
        "5 problem(s):",
        "broken.yml: invalid YAML",
        "hooks.yaml: record 1 (webhook_authenticator \"lan\"), field `allowed_ip_addresses`: Invalid allowed IP/CIDR entry: 192.0.2.300",
        "hooks.yaml: record 2 (webhook \"deploy\"), field `endpoint`: Endpoint must start and end with a letter or digit",
        "hooks.yaml: record 2 (webhook \"deploy\"), field `method`: must be `post` or `get`, not \"put\"",
        "hooks.yaml: record 3 (webhook \"deploy\"), field `reference`: Reference must be unique",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn valid_definitions_pass() {
    let data = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/webhooks");
    let output = check(&demo, data.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "check failed:\n{stdout}");
    assert!(stdout.contains("webhook(s)"), "{stdout}");
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
}

#[test]
fn bad_settings_are_named() {
    let output = Command::new(env!("CARGO_BIN_EXE_towerhook"))
        .arg("check")
        .env("TOWERHOOK_MAX_BODY_BYTE", "10")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("TOWERHOOK_MAX_BODY_BYTE"), "{stderr}");
}
