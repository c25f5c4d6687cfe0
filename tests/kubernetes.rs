//! deploy/kubernetes, offline: the kustomization renders (`kubectl kustomize`, no cluster
//! needed), every resource is valid against the Kubernetes API schemas (kubernetes-validate,
//! installed by scripts/test-tools.sh), and the pieces fit together the way a cluster would
//! need them to: settings towerhook accepts, probes on the right paths and port, a
//! termination grace that outlasts towerhook's own shutdown, selectors that select, the
//! autoscaler on the StatefulSet, the Ingress routes, and trust given to nobody but the
//! ingress controller. Finally the real binary serves with the manifests' settings.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use towerhook::configuration::Settings;

const DIR: &str = "deploy/kubernetes";
/// The oldest and the newest Kubernetes versions the manifests are checked against.
const VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> PathBuf {
    let path = repo().join(".tools/kubernetes-validate/bin/kubernetes-validate");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test-tools.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// `kubectl kustomize deploy/kubernetes`: the manifests as `kubectl apply -k` sends them.
fn rendered_text() -> String {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(repo().join(DIR))
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl ({e}); it renders the kustomization"));
    assert!(
        output.status.success(),
        "kubectl kustomize {DIR}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn rendered() -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(&rendered_text())
        .unwrap()
        .into_iter()
        .filter(|document| !document.is_null())
        .collect()
}

fn resource<'a>(all: &'a [Value], kind: &str, name: &str) -> &'a Value {
    all.iter()
        .find(|r| r["kind"] == json!(kind) && r["metadata"]["name"] == json!(name))
        .unwrap_or_else(|| panic!("{DIR} has no {kind} {name}"))
}

fn of_kind<'a>(all: &'a [Value], kind: &str) -> Vec<&'a Value> {
    all.iter().filter(|r| r["kind"] == json!(kind)).collect()
}

/// `kubernetes-validate --strict` of a YAML stream: its exit status and what it said.
fn validate(text: &str, version: &str) -> (bool, String) {
    let mut child = Command::new(validator())
        .args(["--strict", "--kubernetes-version", version, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// Whether `selector` (matchLabels) selects `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let wanted = selector["matchLabels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    !wanted.is_empty() && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn statefulset(all: &[Value]) -> &Value {
    resource(all, "StatefulSet", "towerhook")
}

fn container(all: &[Value]) -> &Value {
    let containers = statefulset(all)["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1, "one container: towerhook");
    &containers[0]
}

/// The environment the container gets from its ConfigMap and Secret (envFrom), plus what
/// the image sets itself (Dockerfile).
fn container_env(all: &[Value]) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([
        ("TOWERHOOK_LISTEN".to_string(), "0.0.0.0:8080".to_string()),
        (
            "TOWERHOOK_DATA_DIR".to_string(),
            "/var/lib/towerhook".to_string(),
        ),
    ]);
    for source in container(all)["envFrom"].as_array().unwrap() {
        let (kind, name, field) = if let Some(name) = source["configMapRef"]["name"].as_str() {
            ("ConfigMap", name, "data")
        } else {
            let name = source["secretRef"]["name"].as_str().unwrap();
            ("Secret", name, "stringData")
        };
        let data = resource(all, kind, name)[field]
            .as_object()
            .unwrap_or_else(|| panic!("{kind} {name} has no {field}"));
        for (key, value) in data {
            env.insert(key.clone(), value.as_str().unwrap().to_string());
        }
    }
    env
}

fn settings(all: &[Value]) -> Settings {
    let env = container_env(all)
        .into_iter()
        .filter(|(k, _)| k.starts_with("TOWERHOOK_"));
    Settings::load_from(None, env)
        .unwrap_or_else(|e| panic!("the ConfigMap/Secret settings are refused by towerhook: {e}"))
}

fn container_port(all: &[Value]) -> (String, u64) {
    let port = &container(all)["ports"][0];
    (
        port["name"].as_str().unwrap().to_string(),
        port["containerPort"].as_u64().unwrap(),
    )
}

#[test]
fn every_resource_is_valid_against_the_kubernetes_schemas() {
    let text = rendered_text();
    let count = rendered().len();
    for version in VERSIONS {
        let (ok, said) = validate(&text, version);
        assert!(ok, "against Kubernetes {version}:\n{said}");
        let short = version.rsplit_once('.').unwrap().0;
        let passed = said
            .lines()
            .filter(|l| {
                l.contains("passed for resource") && l.contains(&format!("version {short}"))
            })
            .count();
        assert_eq!(passed, count, "not every resource was checked:\n{said}");
    }
    // The validator is no rubber stamp: a misspelt field in the same manifests fails.
    let broken = text.replacen(
        "terminationGracePeriodSeconds",
        "terminationGraceSeconds",
        1,
    );
    assert_ne!(broken, text);
    let (ok, said) = validate(&broken, VERSIONS[1]);
    assert!(!ok, "a misspelt field passed: {said}");
    assert!(said.contains("terminationGraceSeconds"), "{said}");
}

#[test]
fn every_manifest_file_is_in_the_kustomization() {
    let kustomization: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(repo().join(DIR).join("kustomization.yaml")).unwrap(),
    )
    .unwrap();
    let listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for entry in std::fs::read_dir(repo().join(DIR)).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".yaml") && name != "kustomization.yaml" {
            assert!(
                listed.contains(&name.as_str()),
                "{name} is not in the kustomization"
            );
        }
    }
    // The image is the one the repository's Dockerfile builds, renamed by `images`.
    let all = rendered();
    let image = container(&all)["image"].as_str().unwrap();
    assert!(image.contains("towerhook:"), "{image}");
}

#[test]
fn settings_come_from_a_configmap_and_keys_from_a_secret() {
    let all = rendered();
    let settings = settings(&all);
    assert_eq!(settings.source, towerhook::configuration::SourceKind::Odoo);
    assert_eq!(settings.log_sink, towerhook::configuration::SinkKind::Odoo);
    let config = resource(&all, "ConfigMap", "towerhook-settings");
    let secret = resource(&all, "Secret", "towerhook-keys");
    // The key is in the Secret and nowhere else.
    assert!(secret["stringData"].get("TOWERHOOK_ODOO_API_KEY").is_some());
    let data = config["data"].as_object().unwrap();
    for key in data.keys() {
        assert!(
            !key.contains("API_KEY")
                && !key.contains("TOKEN")
                && !key.starts_with("TOWERHOOK_SECRET_"),
            "{key} belongs in the Secret"
        );
    }
    assert!(
        settings.odoo_poll_secs <= 10.0,
        "edits would take long to reach the replicas"
    );
}

#[test]
fn the_statefulset_keeps_each_replicas_store_on_its_own_volume() {
    let all = rendered();
    let set = statefulset(&all);
    let settings = settings(&all);
    let claims = set["spec"]["volumeClaimTemplates"].as_array().unwrap();
    assert_eq!(claims.len(), 1);
    let claim = claims[0]["metadata"]["name"].as_str().unwrap();
    let mount = container(&all)["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == json!(claim))
        .unwrap_or_else(|| panic!("the claim {claim} is not mounted"));
    assert_eq!(
        Path::new(mount["mountPath"].as_str().unwrap()),
        settings.data_dir,
        "the volume is not where towerhook keeps its store (data_dir)"
    );
    assert_eq!(claims[0]["spec"]["accessModes"], json!(["ReadWriteOnce"]));
    // Unshipped logs outlive a scale-down and a deleted StatefulSet.
    let retention = &set["spec"]["persistentVolumeClaimRetentionPolicy"];
    assert_eq!(retention["whenScaled"], json!("Retain"));
    assert_eq!(retention["whenDeleted"], json!("Retain"));
    // The pod template is what the selector selects, and the governing Service exists.
    assert!(selects(
        &set["spec"]["selector"],
        &set["spec"]["template"]["metadata"]["labels"]
    ));
    let governing = resource(
        &all,
        "Service",
        set["spec"]["serviceName"].as_str().unwrap(),
    );
    assert_eq!(governing["spec"]["clusterIP"], json!("None"));
    // Runs as the image's unprivileged user, the volume writable for its group.
    let pod = &set["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"], json!(10001));
    assert_eq!(pod["securityContext"]["fsGroup"], json!(10001));
    assert_eq!(pod["securityContext"]["runAsNonRoot"], json!(true));
}

#[test]
fn probes_ask_readyz_and_healthz_on_the_port_towerhook_listens_on() {
    let all = rendered();
    let settings = settings(&all);
    let listen: std::net::SocketAddr = settings.listen.parse().unwrap();
    assert!(
        listen.ip().is_unspecified(),
        "{}: not reachable from the node",
        settings.listen
    );
    let (port_name, port) = container_port(&all);
    assert_eq!(port, u64::from(listen.port()));
    let container = container(&all);
    for (probe, path) in [
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
        ("startupProbe", "/healthz"),
    ] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], json!(path), "{probe}");
        assert!(
            get["port"] == json!(port_name) || get["port"] == json!(port),
            "{probe}"
        );
    }
    // A pod leaves rotation quickly once /readyz says 503 (at most one period).
    let readiness = &container["readinessProbe"];
    let noticed = readiness["periodSeconds"].as_f64().unwrap()
        * readiness["failureThreshold"].as_f64().unwrap();
    assert!(
        noticed < settings.shutdown_delay_secs,
        "readiness notices a stopping pod after {noticed} s, but it stops accepting after \
         shutdown_delay_secs = {} s",
        settings.shutdown_delay_secs
    );
}

#[test]
fn a_stopping_pod_gets_longer_than_towerhook_takes_to_stop() {
    let all = rendered();
    let settings = settings(&all);
    assert!(
        settings.shutdown_delay_secs > 0.0,
        "shutdown_delay_secs: no time to leave rotation"
    );
    let grace = statefulset(&all)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_f64()
        .unwrap();
    let needed = settings.shutdown_delay_secs + settings.shutdown_grace_secs;
    assert!(
        grace > needed,
        "terminationGracePeriodSeconds {grace} does not outlast shutdown_delay_secs + \
         shutdown_grace_secs = {needed}: calls in flight would be killed"
    );
}

#[test]
fn the_budget_and_the_autoscaler_act_on_the_replicas() {
    let all = rendered();
    let set = statefulset(&all);
    let pod_labels = &set["spec"]["template"]["metadata"]["labels"];
    let budget = resource(&all, "PodDisruptionBudget", "towerhook");
    assert!(selects(&budget["spec"]["selector"], pod_labels));
    assert_eq!(budget["spec"]["maxUnavailable"], json!(1));

    let autoscaler = resource(&all, "HorizontalPodAutoscaler", "towerhook");
    let target = &autoscaler["spec"]["scaleTargetRef"];
    assert_eq!(target["kind"], json!("StatefulSet"));
    assert_eq!(target["name"], set["metadata"]["name"]);
    let min = autoscaler["spec"]["minReplicas"].as_u64().unwrap();
    assert!(
        min >= 2,
        "one replica left alone while the budget evicts the other"
    );
    assert!(autoscaler["spec"]["maxReplicas"].as_u64().unwrap() > min);
    let metric = &autoscaler["spec"]["metrics"][0]["resource"];
    assert_eq!(metric["name"], json!("cpu"));
    assert_eq!(metric["target"]["type"], json!("Utilization"));
    // Utilization is relative to the request: there must be one, and a memory limit.
    let resources = &container(&all)["resources"];
    assert!(resources["requests"]["cpu"].is_string(), "{resources}");
    assert!(resources["requests"]["memory"].is_string(), "{resources}");
    let limit = resources["limits"]["memory"].as_str().unwrap();
    let limit_mib: u64 = limit.strip_suffix("Mi").unwrap().parse().unwrap();
    // The snippet workers' own limit leaves the server room inside the pod's.
    let settings = settings(&all);
    let workers = settings.python_workers as u64;
    assert!(
        workers > 0,
        "python_workers: set it for the pod's CPU, not the node's"
    );
    assert!(
        workers * settings.worker_memory_mb + 64 <= limit_mib,
        "{workers} workers of {} MiB and the server do not fit {limit}",
        settings.worker_memory_mb
    );
}

#[test]
fn the_ingress_routes_webhooks_to_towerhook_and_the_rest_to_odoo() {
    let all = rendered();
    let settings = settings(&all);
    let mut routes = Vec::new();
    for ingress in of_kind(&all, "Ingress") {
        for rule in ingress["spec"]["rules"].as_array().unwrap() {
            for path in rule["http"]["paths"].as_array().unwrap() {
                routes.push((ingress, path.clone()));
            }
        }
    }
    // The longest matching Prefix wins, as for every ingress controller.
    let route = |uri: &str| {
        routes
            .iter()
            .filter(|(_, p)| uri.starts_with(p["path"].as_str().unwrap()))
            .max_by_key(|(_, p)| p["path"].as_str().unwrap().len())
            .cloned()
            .unwrap_or_else(|| panic!("nothing routes {uri}"))
    };
    let (webhook_ingress, webhooks) = route("/cetmix_tower_webhooks/github/push");
    assert_eq!(webhooks["pathType"], json!("Prefix"));
    let service = resource(
        &all,
        "Service",
        webhooks["backend"]["service"]["name"].as_str().unwrap(),
    );
    assert!(selects(
        &json!({"matchLabels": service["spec"]["selector"]}),
        &statefulset(&all)["spec"]["template"]["metadata"]["labels"]
    ));
    let (port_name, port) = container_port(&all);
    let service_port = &service["spec"]["ports"][0];
    assert_eq!(
        webhooks["backend"]["service"]["port"]["name"],
        service_port["name"]
    );
    assert!(
        service_port["targetPort"] == json!(port_name) || service_port["targetPort"] == json!(port)
    );
    // Bodies up to towerhook's own limit get through (towerhook answers 413 beyond it).
    let body =
        webhook_ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
            .as_str()
            .unwrap();
    let body_bytes = body.strip_suffix('m').unwrap().parse::<u64>().unwrap() << 20;
    assert!(body_bytes >= settings.max_body_bytes as u64, "{body}");

    for uri in ["/", "/web/login", "/cetmix_tower_webhooksX", "/websocket"] {
        let (_, other) = route(uri);
        assert_eq!(other["backend"]["service"]["name"], json!("odoo"), "{uri}");
    }
    // Only the webhook path reaches towerhook (not /admin/reload, /metrics...).
    for (_, path) in &routes {
        if path["backend"]["service"]["name"] == service["metadata"]["name"] {
            assert_eq!(path["path"], json!("/cetmix_tower_webhooks/"));
        }
    }
}

#[test]
fn towerhook_trusts_only_what_the_ingress_controller_can_be() {
    let all = rendered();
    let settings = settings(&all);
    assert!(
        !settings.trusted_proxies.is_empty(),
        "calls would be judged by the controller's address"
    );
    for entry in &settings.trusted_proxies {
        let network: ipnetwork::IpNetwork = entry.parse().unwrap();
        assert!(
            network.prefix() >= 8,
            "{entry}: trusts far more than a pod network"
        );
        assert!(
            !network.contains("127.0.0.1".parse().unwrap()),
            "{entry}: would trust the pod itself"
        );
    }
    // Nothing but the ingress controller's pods may connect to towerhook's port: so the
    // trusted range can only ever be the controller.
    let policies = of_kind(&all, "NetworkPolicy");
    assert_eq!(policies.len(), 1);
    let policy = &policies[0]["spec"];
    let pod_labels = &statefulset(&all)["spec"]["template"]["metadata"]["labels"];
    assert!(selects(&policy["podSelector"], pod_labels));
    assert_eq!(policy["policyTypes"], json!(["Ingress"]));
    let rules = policy["ingress"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "one allowed sender: the controller");
    let from = rules[0]["from"].as_array().unwrap();
    assert_eq!(from.len(), 1);
    // Namespace and pods together (one entry), not either of them.
    assert!(
        from[0]["namespaceSelector"]["matchLabels"].is_object(),
        "{from:?}"
    );
    assert!(
        from[0]["podSelector"]["matchLabels"].is_object(),
        "{from:?}"
    );
    assert!(from[0].get("ipBlock").is_none());
    let (_, port) = container_port(&all);
    assert_eq!(
        rules[0]["ports"],
        json!([{"protocol": "TCP", "port": port}])
    );
}

/// The real binary with the manifests' settings (Odoo's address and key swapped for the
/// emulator's, the listen address for a free port): it gets ready, answers, and stops
/// within the pod's termination grace period.
#[tokio::test]
async fn towerhook_serves_with_the_manifests_settings_and_stops_in_time() {
    let all = rendered();
    let odoo = common::odoo::TestOdoo::start().await;
    let Some(_) = odoo.emulator_only("runs towerhook against the emulator's own key") else {
        return;
    };
    odoo.grant_log_create().await;
    odoo.open_webhook("k8s", "result = {'exit_code': 0, 'message': 'ok'}", 1)
        .await;
    let mut env = container_env(&all);
    let data = tempfile::tempdir().unwrap();
    for (key, value) in [
        ("TOWERHOOK_LISTEN", "127.0.0.1:0".to_string()),
        ("TOWERHOOK_DATA_DIR", data.path().display().to_string()),
        ("TOWERHOOK_ODOO_URL", odoo.url.clone()),
        ("TOWERHOOK_ODOO_DB", odoo.database.clone()),
        ("TOWERHOOK_ODOO_LOGIN", odoo.login.clone()),
        ("TOWERHOOK_ODOO_API_KEY", odoo.secret.clone()),
    ] {
        env.insert(key.to_string(), value);
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut server = common::BinaryServer::start_in(data.path(), &env);
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{}/readyz", server.base()))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(
            Instant::now() < deadline,
            "not ready with the manifests' settings"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = reqwest::Client::new()
        .post(server.url(&odoo.name("k8s")))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(common::answer(response).await.0, 200);
    let grace = statefulset(&all)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_f64()
        .unwrap();
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    let delay = settings(&all).shutdown_delay_secs;
    assert!(
        took.as_secs_f64() >= delay && took.as_secs_f64() < grace,
        "stopped after {took:?}: expected at least shutdown_delay_secs ({delay} s) and \
         less than terminationGracePeriodSeconds ({grace} s)"
    );
    // Its log reached Odoo before it stopped: nothing waits on the volume.
    let logs = odoo.logs().await;
    assert_eq!(logs.len(), 1, "{logs:?}");
    odoo.cleanup().await;
}
