//! The deployment files, read and run by the tools that read and run them in production,
//! without a Docker engine (scripts/test-tools.sh installs the tools):
//! - `docker-compose.yml` with `.env.example`: Docker Compose's own CLI (`docker-compose
//!   config`) interpolates and validates them and prints the model Compose would run.
//! - `Dockerfile`, `deploy/odoo.Dockerfile`: BuildKit's parser; `.dockerignore`: the Docker
//!   SDK's matcher; `deploy/odoo.conf`: Python's configparser, which Odoo reads it with.
//! - `deploy/nginx-compose.conf`, `deploy/nginx.conf`: `nginx -t`, then Debian's nginx in
//!   front of the real towerhook and a stand-in Odoo, answering real requests. Each of
//!   these tests runs in a network namespace of its own, so the files run unchanged: nginx
//!   on port 80, towerhook on 127.0.0.1:8080, Compose's DNS at 127.0.0.11 (played by
//!   dnsmasq), and no traffic can leave it.
//! - `deploy/towerhook.service`: `systemd-analyze verify` and `security --offline`.
//! - Every towerhook setting in them: the real binary (`check`, `run`, `serve`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

// ============================================================================ tools

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// A program of the pinned tools' virtualenv (scripts/deploy-tools.txt).
fn tool(name: &str) -> PathBuf {
    let path = repo().join(".tools/deploy-tools/bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test-tools.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?} ({e}): run scripts/test-tools.sh"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Standard output of a command that must succeed and print nothing on stderr (tools warn
/// there: a warning is a finding too).
fn quietly(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "{command:?}: {}\n{}{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// What a Python program run by the tools' interpreter prints, as JSON.
fn python(program: &str, args: &[&Path]) -> Value {
    let stdout = quietly(
        Command::new(tool("python"))
            .arg("-c")
            .arg(program)
            .args(args),
    );
    serde_json::from_str(&stdout).unwrap()
}

fn seconds(span: &str) -> f64 {
    // systemd's own parser; it also reads Compose's normalised Go durations (40s, 1m0s).
    let stdout = quietly(Command::new("systemd-analyze").args(["timespan", span]));
    let micros = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("μs:"))
        .unwrap_or_else(|| panic!("systemd-analyze timespan {span}: {stdout}"));
    micros.trim().parse::<f64>().unwrap() / 1e6
}

/// `towerhook ARGS` with exactly `env` (and PATH), as a container or systemd would start it,
/// in a network namespace of its own with no interface up: the Odoo its settings name is
/// not there, and nothing it tries (a DNS lookup of `odoo`) leaves the machine.
fn towerhook(args: &[&str], env: &BTreeMap<String, String>) -> Output {
    run(Command::new("unshare")
        .args(["--net", "--"])
        .arg(env!("CARGO_BIN_EXE_towerhook"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env))
}

/// `towerhook check` with settings that name an Odoo nobody runs here: it gets past the
/// settings (a refused one ends it at once, `towerhook: ...` on stderr) to that Odoo.
fn assert_settings_accepted(what: &str, args: &[&str], env: &BTreeMap<String, String>) {
    let data = tempfile::tempdir().unwrap();
    let mut env = env.clone();
    env.insert(
        "TOWERHOOK_DATA_DIR".into(),
        data.path().display().to_string(),
    );
    let output = towerhook(&[args, &["check"]].concat(), &env);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(
        stdout.starts_with("definitions: Odoo at ")
            && !stderr.lines().any(|line| line.starts_with("towerhook: ")),
        "{what}: {stdout}{stderr}"
    );
}

// ========================================================================= compose

const COMPOSE: &str = "docker-compose.yml";
/// What Compose must refuse to start without (`${NAME:?message}`).
const REQUIRED: [&str; 5] = [
    "CETMIX_TOWER_ADDONS",
    "POSTGRES_PASSWORD",
    "TOWERHOOK_ODOO_DB",
    "TOWERHOOK_ODOO_LOGIN",
    "TOWERHOOK_ADMIN_TOKEN",
];

/// Docker Compose on `file` with only `env` (and PATH) in its environment and no env file:
/// never a developer's own `.env`.
fn compose(file: &Path, env: &BTreeMap<String, String>, args: &[&str]) -> Output {
    run(Command::new(tool("docker-compose"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .args(["--env-file", "/dev/null", "-f"])
        .arg(file)
        .args(args))
}

/// What `docker-compose config --format json` prints for `file`, which must pass silently:
/// the model Compose runs, interpolated, validated against the Compose specification,
/// every short syntax in its long form.
fn config(file: &Path, env: &BTreeMap<String, String>, args: &[&str]) -> Value {
    let output = compose(file, env, &[&["config", "--format", "json"], args].concat());
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "docker-compose config: {}",
        text(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// docker-compose.yml as Compose runs it with `env` (the operator's `.env`).
fn model(env: &BTreeMap<String, String>) -> Value {
    config(&repo().join(COMPOSE), env, &[])
}

/// A `NAME=value` file as Compose reads env files: through a project that loads it.
fn env_file(relative: &str) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("compose.yml");
    let path = repo().join(relative).display().to_string();
    let project = format!("services:\n  env:\n    image: scratch\n    env_file: [{path:?}]\n");
    std::fs::write(&probe, project).unwrap();
    let model = config(&probe, &BTreeMap::new(), &[]);
    serde_json::from_value(model["services"]["env"]["environment"].clone()).unwrap()
}

/// `.env.example` as the operator fills it in: a sample for each value it leaves empty.
fn operator_env() -> BTreeMap<String, String> {
    env_file(".env.example")
        .into_iter()
        .map(|(name, value)| {
            let value = if value.is_empty() {
                format!("sample-{}", name.to_ascii_lowercase().replace('_', "-"))
            } else {
                value
            };
            (name, value)
        })
        .collect()
}

/// The variables docker-compose.yml uses, as Compose lists them (required, default).
fn variables() -> BTreeMap<String, Value> {
    let variables = config(&repo().join(COMPOSE), &operator_env(), &["--variables"]);
    serde_json::from_value(variables).unwrap()
}

/// The operator's `.env` filled in, and only what has no default in docker-compose.yml.
fn variants() -> Vec<(&'static str, BTreeMap<String, String>)> {
    let filled = operator_env();
    let variables = variables();
    let minimal = filled
        .iter()
        .filter(|(name, _)| {
            variables
                .get(*name)
                .is_none_or(|v| v["DefaultValue"] == json!(""))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    vec![
        (".env.example filled in", filled),
        ("only the values without a default", minimal),
    ]
}

fn service<'a>(model: &'a Value, name: &str) -> &'a Value {
    let service = &model["services"][name];
    assert!(service.is_object(), "{COMPOSE}: no service {name}");
    service
}

/// The mount of a service at `target` (Compose's long form: type, source, read_only).
fn mount<'a>(model: &'a Value, name: &str, target: &str) -> &'a Value {
    service(model, name)["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|m| m["target"] == json!(target)))
        .unwrap_or_else(|| panic!("{COMPOSE}: service {name} mounts nothing at {target}"))
}

fn odoo_conf() -> BTreeMap<String, String> {
    // Odoo reads its configuration with configparser.RawConfigParser (odoo/tools/config.py).
    let program = "import configparser, json, sys\n\
                   c = configparser.RawConfigParser()\n\
                   c.read(sys.argv[1])\n\
                   print(json.dumps(dict(c.items('options'))))";
    serde_json::from_value(python(program, &[&repo().join("deploy/odoo.conf")])).unwrap()
}

fn port(conf: &BTreeMap<String, String>, key: &str) -> u16 {
    conf[key].parse().unwrap()
}

/// towerhook's environment in its container: the image's ENV, then the service's.
fn container_env(model: &Value) -> BTreeMap<String, String> {
    let mut env = runtime().env();
    let compose: BTreeMap<String, String> =
        serde_json::from_value(service(model, "towerhook")["environment"].clone()).unwrap();
    env.extend(compose);
    env
}

#[test]
fn compose_runs_four_services_and_refuses_to_start_without_the_required_values() {
    for (variant, env) in variants() {
        let model = model(&env);
        let services: BTreeSet<&str> = model["services"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            services,
            BTreeSet::from(["db", "odoo", "towerhook", "proxy"]),
            "{variant}"
        );
    }
    let variables = variables();
    let required: BTreeSet<&str> = variables
        .iter()
        .filter(|(_, v)| v["Required"] == json!(true))
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(required, BTreeSet::from(REQUIRED));
    for name in REQUIRED {
        let mut env = operator_env();
        env.remove(name);
        let output = compose(&repo().join(COMPOSE), &env, &["config", "--quiet"]);
        assert!(
            !output.status.success() && text(&output.stderr).contains(name),
            "Compose starts without {name}: {}",
            text(&output.stderr)
        );
    }
    // Compose passes only what the file names: an .env.example variable it does not use
    // would be a setting with no effect, and one it lacks a value nobody is told to set.
    let documented: BTreeSet<String> = env_file(".env.example").into_keys().collect();
    let used: BTreeSet<String> = variables.into_keys().collect();
    assert_eq!(documented, used, ".env.example against {COMPOSE}");
}

#[test]
fn only_the_proxy_is_reachable_from_outside_and_towerhook_trusts_exactly_it() {
    for (variant, env) in variants() {
        let model = model(&env);
        for (name, service) in model["services"].as_object().unwrap() {
            assert!(service.get("network_mode").is_none(), "{variant}: {name}");
            let published = service["ports"].as_array().map_or(0, Vec::len);
            assert_eq!(published > 0, name == "proxy", "{variant}: {name} ports");
        }
        let proxy_ip: IpAddr = service(&model, "proxy")["networks"]["default"]["ipv4_address"]
            .as_str()
            .expect("the proxy has no fixed ipv4_address on the default network")
            .parse()
            .unwrap();
        let subnets: Vec<ipnetwork::IpNetwork> = model["networks"]["default"]["ipam"]["config"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["subnet"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(
            subnets.iter().any(|s| s.contains(proxy_ip)),
            "{variant}: {proxy_ip} outside {subnets:?}"
        );
        assert!(
            service(&model, "towerhook")["networks"]
                .get("default")
                .is_some(),
            "{variant}: towerhook is not on the proxy's network"
        );
        let env = container_env(&model);
        assert_eq!(
            env["TOWERHOOK_TRUSTED_PROXIES"],
            proxy_ip.to_string(),
            "{variant}"
        );
    }
}

#[test]
fn towerhook_accepts_its_compose_settings_and_reaches_odoo_by_name() {
    for (variant, env) in variants() {
        let model = model(&env);
        let env = container_env(&model);
        assert_eq!(env["TOWERHOOK_SOURCE"], "odoo", "{variant}");
        assert_eq!(env["TOWERHOOK_LOG_SINK"], "odoo", "{variant}");
        assert_eq!(
            env["TOWERHOOK_ODOO_URL"],
            format!("http://odoo:{}", port(&odoo_conf(), "http_port")),
            "{variant}: Odoo's service name and the HTTP port of odoo.conf"
        );
        assert_settings_accepted(variant, &[], &env);
    }
    // deploy/README.md, step 3: until the API key is set towerhook stops and says why.
    let mut env = operator_env();
    env.insert("TOWERHOOK_ODOO_API_KEY".into(), String::new());
    let output = towerhook(&["check"], &container_env(&model(&env)));
    let stderr = text(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("source = \"odoo\" needs odoo_api_key"),
        "{stderr}"
    );
}

#[test]
fn towerhook_is_built_here_keeps_its_data_and_every_service_has_a_healthcheck() {
    for (variant, env) in variants() {
        let model = model(&env);
        let towerhook = service(&model, "towerhook");
        assert_eq!(
            towerhook["build"],
            json!({"context": repo().display().to_string(), "dockerfile": "Dockerfile"}),
            "{variant}"
        );
        assert_eq!(towerhook["restart"], json!("unless-stopped"), "{variant}");
        assert!(towerhook["depends_on"].get("odoo").is_some(), "{variant}");
        let data = mount(
            &model,
            "towerhook",
            &container_env(&model)["TOWERHOOK_DATA_DIR"],
        );
        assert_eq!(data["type"], json!("volume"), "{variant}: a named volume");
        assert_ne!(data["read_only"], json!(true), "{variant}");
        let volume = data["source"].as_str().unwrap();
        assert!(model["volumes"].get(volume).is_some(), "{variant}");
        for name in ["db", "odoo", "towerhook", "proxy"] {
            let check = &service(&model, name)["healthcheck"];
            let test = check["test"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            assert!(
                test.first() == Some(&json!("CMD")) && check["disable"] != json!(true),
                "{variant}: {name} has no healthcheck"
            );
        }
        // The others run for real in compose_proxy_serves_webhooks_and_odoo_as_configured;
        // towerhook's must follow readiness (`docker compose ps`, deploy/README.md).
        assert_eq!(
            service(&model, "db")["healthcheck"]["test"][1],
            json!("pg_isready")
        );
        assert_eq!(
            service(&model, "towerhook")["healthcheck"]["test"][2],
            json!("/readyz")
        );
    }
}

#[test]
fn odoo_gets_cetmix_tower_the_companion_addon_and_their_python_libraries() {
    let env = operator_env();
    let model = model(&env);
    let conf_mount = mount(&model, "odoo", "/etc/odoo/odoo.conf");
    assert_eq!(
        conf_mount["source"],
        json!(repo().join("deploy/odoo.conf").display().to_string())
    );
    let conf = odoo_conf();
    let addons_path: Vec<&str> = conf["addons_path"].split(',').map(str::trim).collect();
    let cetmix = mount(&model, "odoo", "/mnt/extra-addons/cetmix-tower");
    assert_eq!(cetmix["source"], json!(env["CETMIX_TOWER_ADDONS"]));
    let companion = service(&model, "odoo")["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["source"] == json!(repo().join("odoo_addon").display().to_string()))
        .expect("odoo does not mount ./odoo_addon");
    for addons in [cetmix, companion] {
        assert_eq!(addons["read_only"], json!(true), "{addons}");
        let target = addons["target"].as_str().unwrap();
        assert!(
            addons_path.contains(&target),
            "{addons_path:?} lacks {target}"
        );
    }
    let modules = std::fs::read_dir(repo().join("odoo_addon"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().join("__manifest__.py").is_file())
        .count();
    assert!(modules > 0, "Odoo refuses an addons path without a module");
    assert_eq!(conf["proxy_mode"], "True", "Odoo is behind nginx");
    assert!(model["services"].get(&conf["db_host"]).is_some());
    assert_eq!(conf["db_host"], "db");
    // The gevent port, where /websocket goes, listens only with workers.
    assert!(conf["workers"].parse::<u32>().unwrap() > 0);

    let build = &service(&model, "odoo")["build"];
    let dockerfile = Path::new(build["context"].as_str().unwrap())
        .join(build["dockerfile"].as_str().unwrap_or("Dockerfile"));
    let stages = stages(&dockerfile);
    let stage = stages.last().unwrap();
    assert!(stage.image.starts_with("odoo:17"), "{}", stage.image);
    for package in ["paramiko", "pyyaml", "tldextract", "dnspython"] {
        assert!(stage.runs().contains(package), "odoo.Dockerfile: {package}");
    }
}

// ====================================================================== Dockerfile

/// One build stage as BuildKit's parser reads it; ARG defaults resolved in FROM.
struct Stage {
    image: String,
    name: Option<String>,
    instructions: Vec<Value>,
}

impl Stage {
    fn values(&self, cmd: &str) -> Vec<Vec<String>> {
        self.instructions
            .iter()
            .filter(|i| i["cmd"] == json!(cmd))
            .map(|i| serde_json::from_value(i["value"].clone()).unwrap())
            .collect()
    }

    fn last(&self, cmd: &str) -> Vec<String> {
        self.values(cmd)
            .pop()
            .unwrap_or_else(|| panic!("Dockerfile: no {cmd} in the stage {:?}", self.name))
    }

    fn env(&self) -> BTreeMap<String, String> {
        let pairs = self.values("ENV").concat();
        pairs
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect()
    }

    fn runs(&self) -> String {
        self.values("RUN").concat().join("\n")
    }

    /// `(--from stage, sources, destination)` of each COPY.
    fn copies(&self) -> Vec<(Option<String>, Vec<String>, String)> {
        self.instructions
            .iter()
            .filter(|i| i["cmd"] == json!("COPY"))
            .map(|i| {
                let from = i["flags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find_map(|f| f.as_str()?.strip_prefix("--from=").map(String::from));
                let mut paths: Vec<String> = serde_json::from_value(i["value"].clone()).unwrap();
                let destination = paths.pop().unwrap();
                (from, paths, destination)
            })
            .collect()
    }
}

fn stages(path: &Path) -> Vec<Stage> {
    let program = "import dockerfile, json, sys\n\
                   print(json.dumps([c._asdict() for c in dockerfile.parse_file(sys.argv[1])]))";
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in python(program, &[path]).as_array().unwrap() {
        let value: Vec<String> = serde_json::from_value(instruction["value"].clone()).unwrap();
        match (instruction["cmd"].as_str().unwrap(), stages.last_mut()) {
            ("FROM", _) => {
                let mut image = value[0].clone();
                for (name, default) in &args {
                    image = image.replace(&format!("${{{name}}}"), default);
                }
                let name = (value.len() == 3).then(|| value[2].clone());
                stages.push(Stage {
                    image,
                    name,
                    instructions: Vec::new(),
                });
            }
            (_, Some(stage)) => stage.instructions.push(instruction.clone()),
            ("ARG", None) => {
                let (name, default) = value[0].split_once('=').unwrap_or((&value[0], ""));
                args.insert(name.to_string(), default.to_string());
            }
            (other, None) => panic!("{}: {other} before FROM", path.display()),
        }
    }
    stages
}

fn dockerfile() -> Vec<Stage> {
    stages(&repo().join("Dockerfile"))
}

fn runtime() -> Stage {
    let mut stages = dockerfile();
    assert!(stages.len() >= 2, "Dockerfile: not multi-stage");
    stages.pop().unwrap()
}

/// The image's files as the runtime stage's COPY instructions lay them out, under a
/// temporary root (the sandbox packages, built in the builder stage, are this checkout's),
/// and `env` with its paths into that root.
fn in_image(env: &BTreeMap<String, String>) -> (tempfile::TempDir, BTreeMap<String, String>) {
    let root = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let mut laid_out = Vec::new();
    for (from, sources, destination) in runtime.copies() {
        let target = root.path().join(destination.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        match (from, sources.as_slice()) {
            (None, [source]) => {
                quietly(
                    Command::new("cp")
                        .arg("-r")
                        .arg(repo().join(source))
                        .arg(&target),
                );
            }
            (Some(_), _) if destination == runtime.env()["TOWERHOOK_PYTHON_PACKAGES_DIR"] => {
                std::os::unix::fs::symlink(repo().join(".python-packages"), &target).unwrap();
            }
            _ => continue, // the binary: the one under test
        }
        laid_out.push(destination);
    }
    let env = env
        .iter()
        .map(|(key, value)| {
            let value = match laid_out.iter().any(|d| value.starts_with(d.as_str())) {
                true => root.path().join(&value[1..]).display().to_string(),
                false => value.clone(),
            };
            (key.clone(), value)
        })
        .collect();
    (root, env)
}

#[test]
fn dockerfile_builds_in_a_bookworm_rust_stage_against_debians_python() {
    let stages = dockerfile();
    let builder = stages
        .iter()
        .find(|s| s.name.as_deref() == Some("builder"))
        .expect("Dockerfile: no stage `AS builder`");
    assert!(
        builder.image.starts_with("rust:") && builder.image.ends_with("-bookworm"),
        "{}",
        builder.image
    );
    // Debian's interpreter, named: a python3 found on PATH could be another one.
    assert_eq!(builder.env()["PYO3_PYTHON"], "/usr/bin/python3.11");
    assert!(builder.runs().contains("python3.11-dev"));
    assert!(builder.runs().contains("cargo build --release --locked"));
    let copied: Vec<String> = builder
        .copies()
        .into_iter()
        .filter(|(from, ..)| from.is_none())
        .flat_map(|(_, sources, _)| sources)
        .collect();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src",
        "python_sandbox",
    ] {
        assert!(copied.iter().any(|c| c == needed), "{needed}: {copied:?}");
    }
}

#[test]
fn dockerfile_runtime_is_slim_non_root_and_serves_by_default() {
    let runtime = runtime();
    assert_eq!(runtime.image, "debian:bookworm-slim");
    for package in ["libpython3.11", "ca-certificates"] {
        assert!(runtime.runs().contains(package), "{package}");
    }
    assert!(
        runtime.copies().contains(&(
            Some("builder".into()),
            vec!["/usr/local/bin/towerhook".into()],
            "/usr/local/bin/towerhook".into()
        )),
        "the binary is not copied onto PATH (ENTRYPOINT [\"towerhook\"])"
    );
    assert_eq!(runtime.last("ENTRYPOINT"), ["towerhook"]);
    assert_eq!(runtime.last("CMD"), ["serve"]);
    let user = runtime.last("USER")[0].clone();
    assert!(
        !["root", "0"].contains(&user.split(':').next().unwrap()),
        "{user}"
    );
    let env = runtime.env();
    let listen: std::net::SocketAddr = env["TOWERHOOK_LISTEN"].parse().unwrap();
    assert!(
        listen.ip().is_unspecified(),
        "unreachable from outside: {listen}"
    );
    assert!(
        runtime
            .values("EXPOSE")
            .concat()
            .contains(&listen.port().to_string())
    );
    assert!(
        runtime
            .values("VOLUME")
            .concat()
            .contains(&env["TOWERHOOK_DATA_DIR"])
    );
    assert_eq!(
        runtime.last("HEALTHCHECK")[1..],
        ["towerhook-healthcheck", "/healthz"]
    );
    assert!(runtime.copies().iter().any(|(_, sources, destination)| {
        sources == &["deploy/healthcheck.sh"] && destination.ends_with("/towerhook-healthcheck")
    }));
    // The sandbox packages land where towerhook looks for them.
    let stages = dockerfile();
    let (stage, run) = stages
        .iter()
        .flat_map(|stage| {
            stage
                .values("RUN")
                .concat()
                .into_iter()
                .map(move |run| (stage, run))
        })
        .find(|(_, run)| {
            run.contains("pip install") && run.contains("-r python_sandbox/requirements.txt")
        })
        .expect("no pip install -r python_sandbox/requirements.txt");
    let target = run
        .split_once("--target ")
        .map(|(_, rest)| rest.split_whitespace().next().unwrap().to_string())
        .expect("pip install without --target");
    assert!(
        runtime.copies().contains(&(
            stage.name.clone(),
            vec![target.clone()],
            env["TOWERHOOK_PYTHON_PACKAGES_DIR"].clone()
        )),
        "{target} is not copied to TOWERHOOK_PYTHON_PACKAGES_DIR"
    );
}

#[test]
fn the_images_defaults_serve_the_demo_with_its_secrets() {
    // README's signed example: the demo secret's value is in demo/secrets.yaml only.
    use hmac::Mac;
    let body = br#"{"ref": "refs/heads/main"}"#;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"demo-webhook-secret").unwrap();
    mac.update(body);
    let signature = format!(
        "X-Hub-Signature-256: sha256={}",
        hex::encode(mac.finalize().into_bytes())
    );
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("body.json");
    std::fs::write(&payload, body).unwrap();
    let (_image, mut env) = in_image(&runtime().env());
    env.insert(
        "TOWERHOOK_DATA_DIR".into(),
        dir.path().display().to_string(),
    );
    let output = towerhook(
        &[
            "run",
            "demo/github",
            "--payload",
            payload.to_str().unwrap(),
            "--header",
            &signature,
        ],
        &env,
    );
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("push to refs/heads/main accepted"),
        "{stdout}{}",
        text(&output.stderr)
    );
}

/// Build output, local state and secrets that must never reach the build context.
const NEVER_SENT: [&str; 6] = [
    "target",
    ".python-packages",
    "data",
    ".git",
    ".env",
    ".env.local",
];

#[test]
fn dockerfile_copies_only_what_the_build_context_holds() {
    // What `docker build .` sends, by the Docker SDK's reading of .dockerignore: the files
    // of this checkout it sends, and whether it would send those of NEVER_SENT.
    let program = "import json, sys\n\
                   from docker.utils.build import PatternMatcher, exclude_paths\n\
                   lines = open(sys.argv[1] + '/.dockerignore').read().splitlines()\n\
                   patterns = [l.strip() for l in lines if l.strip() and not l.startswith('#')]\n\
                   sent = sorted(exclude_paths(sys.argv[1], list(patterns)))\n\
                   never = [p for p in sys.argv[2:] if not PatternMatcher(patterns).matches(p)]\n\
                   print(json.dumps([sent, never]))";
    let mut args = vec![repo()];
    args.extend(NEVER_SENT.iter().map(Path::new));
    let answer = python(program, &args);
    let context: BTreeSet<String> = serde_json::from_value(answer[0].clone()).unwrap();
    assert_eq!(answer[1], json!([]), ".dockerignore lets these through");
    let tracked = quietly(Command::new("git").arg("-C").arg(repo()).arg("ls-files"));
    for stage in dockerfile() {
        let copies = stage
            .copies()
            .into_iter()
            .filter(|(from, ..)| from.is_none());
        for source in copies.flat_map(|(_, sources, _)| sources) {
            let source = source.trim_end_matches('/');
            assert!(
                context.contains(source),
                "COPY {source}: not in the build context"
            );
            // every tracked file under a copied directory, too
            let under = format!("{source}/");
            for file in tracked.lines().filter(|f| f.starts_with(&under)) {
                assert!(context.contains(file), "COPY {source}: {file} is excluded");
            }
        }
    }
}

// -------------------------------------------------------------- health probe

/// Answers one request on a free loopback port with `status` and `body`; the request line.
fn one_answer(status: &'static str, body: &'static str) -> (u16, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut lines = BufReader::new(stream.try_clone().unwrap()).lines();
        let request = lines.next().unwrap().unwrap();
        while lines.next().unwrap().is_ok_and(|line| !line.is_empty()) {}
        write!(
            &stream,
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        request
    });
    (port, handle)
}

fn probe(listen: &str, path: &str) -> Output {
    run(Command::new("bash")
        .arg(repo().join("deploy/healthcheck.sh"))
        .arg(path)
        .env("TOWERHOOK_LISTEN", listen))
}

#[test]
fn health_probe_fails_with_the_reason_when_towerhook_is_not_ready_or_gone() {
    let (port, server) = one_answer(
        "503 Service Unavailable",
        r#"{"status": "not ready", "problems": ["definitions not loaded yet"]}"#,
    );
    let output = probe(&format!("0.0.0.0:{port}"), "/readyz");
    assert_eq!(server.join().unwrap(), "GET /readyz HTTP/1.1");
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "the probe passed on 503");
    assert!(
        stderr.contains("503") && stderr.contains("definitions not loaded yet"),
        "{stderr}"
    );
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    assert!(
        !probe(&format!("127.0.0.1:{port}"), "/healthz")
            .status
            .success()
    );
    // It passing on 200 is seen in compose_proxy_serves_webhooks_and_odoo_as_configured.
}

// ======================================================================= systemd

const UNIT: &str = "deploy/towerhook.service";

/// The values of `Key=` lines of the unit. systemd-analyze has parsed the file (see
/// systemd_accepts_the_unit_and_confines_towerhook); no tool prints a unit's values without
/// a running systemd, so these few are read back as written.
fn unit(key: &str) -> Vec<String> {
    read(UNIT)
        .lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .map(|value| value.trim().to_string())
        .collect()
}

/// The environment systemd gives towerhook: `Environment=` and the example EnvironmentFile.
fn unit_env() -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = unit("Environment")
        .iter()
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    assert_eq!(unit("EnvironmentFile"), ["/etc/towerhook/towerhook.env"]);
    env.extend(env_file("deploy/towerhook.env.example"));
    env
}

/// ExecStart's arguments after the program, the settings file where the README installs
/// deploy/towerhook.toml replaced by the repository's.
fn exec_start_args() -> Vec<String> {
    let exec = unit("ExecStart");
    let words: Vec<&str> = exec[0].split_whitespace().collect();
    assert_eq!(
        words[0], "/usr/local/bin/towerhook",
        "where deploy/README.md installs it"
    );
    words[1..]
        .iter()
        .map(|w| match *w {
            "/etc/towerhook/towerhook.toml" => {
                repo().join("deploy/towerhook.toml").display().to_string()
            }
            other => other.to_string(),
        })
        .collect()
}

#[test]
fn systemd_accepts_the_unit_and_confines_towerhook() {
    // A root as deploy/README.md leaves the machine: the unit and the binary installed, and
    // the system's own units (network-online.target, ...) for the unit to refer to.
    let root = tempfile::tempdir().unwrap();
    let path = |p: &str| root.path().join(p);
    std::fs::create_dir_all(path("etc/systemd/system")).unwrap();
    std::fs::create_dir_all(path("usr/local/bin")).unwrap();
    std::fs::create_dir_all(path("usr/lib/systemd")).unwrap();
    std::fs::copy(
        repo().join(UNIT),
        path("etc/systemd/system/towerhook.service"),
    )
    .unwrap();
    quietly(
        Command::new("cp")
            .arg("-a")
            .arg("/usr/lib/systemd/system")
            .arg(path("usr/lib/systemd")),
    );
    let binary = path("usr/local/bin/towerhook");
    std::fs::write(
        &binary,
        format!(
            "#!/bin/sh\nexec {} \"$@\"\n",
            env!("CARGO_BIN_EXE_towerhook")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let root_arg = format!("--root={}", root.path().display());
    // verify: every key known, every value parsed, the command executable.
    let output =
        run(Command::new("systemd-analyze").args(["verify", &root_arg, "towerhook.service"]));
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    // security: systemd's own assessment of the sandboxing (0 to 100, shown as 0.0 to 10.0).
    let assessment: Vec<Value> =
        serde_json::from_str(&quietly(Command::new("systemd-analyze").args([
            "security",
            "--offline=yes",
            &root_arg,
            "--threshold=20",
            "--json=short",
            "towerhook.service",
        ])))
        .unwrap();
    for setting in [
        "User=/DynamicUser=",
        "NoNewPrivileges=",
        "ProtectSystem=",
        "ProtectHome=",
        "PrivateTmp=",
        "PrivateDevices=",
    ] {
        assert!(
            assessment
                .iter()
                .any(|a| a["name"] == json!(setting) && a["set"] == json!(true)),
            "systemd-analyze security: {setting} not in effect"
        );
    }
    assert_eq!(unit("Type"), ["exec"]);
    assert_eq!(
        unit("Restart"),
        ["on-failure"],
        "a crashed towerhook restarts"
    );
    assert_eq!(unit("KillSignal"), ["SIGTERM"]);
    assert_eq!(
        unit_env()["TOWERHOOK_DATA_DIR"],
        format!("/var/lib/{}", unit("StateDirectory")[0]),
        "the data directory is the one systemd creates for the service user"
    );
    assert!(!unit("MemoryMax").is_empty());
    // The time it gives towerhook to stop is measured in nginx_snippet_and_unit_serve_webhooks_as_configured.
}

/// deploy/towerhook.toml read by the loader towerhook reads it with (the config crate).
fn settings_file() -> config::Config {
    config::Config::builder()
        .add_source(config::File::from(repo().join("deploy/towerhook.toml")))
        .build()
        .unwrap()
}

#[test]
fn towerhook_accepts_the_settings_file_the_unit_gives_it() {
    let args = exec_start_args();
    let args: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    assert_settings_accepted(UNIT, &args, &unit_env());
    assert_eq!(settings_file().get_string("log_sink").unwrap(), "odoo");
}

#[test]
fn every_commented_key_of_the_example_settings_file_is_a_real_setting() {
    // `# key = value  # ...` lines document the other settings: uncommented, they must
    // load as well (towerhook refuses unknown keys and wrong types).
    let text = read("deploy/towerhook.toml");
    let mut uncommented = String::new();
    let mut documented = 0;
    for line in text.lines() {
        let rest = line.strip_prefix("# ").unwrap_or(line);
        let is_key = rest
            .split_once(" = ")
            .is_some_and(|(key, _)| key.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        if line.starts_with("# ") && is_key {
            documented += 1;
            uncommented.push_str(rest);
        } else {
            uncommented.push_str(line);
        }
        uncommented.push('\n');
    }
    assert!(documented > 10, "only {documented} documented keys");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("towerhook.toml");
    std::fs::write(&file, &uncommented).unwrap();
    assert_settings_accepted(
        "every key uncommented",
        &["--config", file.to_str().unwrap()],
        &unit_env(),
    );
}

// ================================================================ nginx, for real

/// The caller, on the internet: a documentation address.
const CALLER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
/// towerhook's default max_body_bytes (README), which neither deployment changes.
const MAX_BODY: usize = 1 << 20;
/// Definitions of the towerhook behind nginx: one echoing what it was given, one slower
/// than the snippet timeout.
const WEBHOOKS: &str = r#"
- {cetmix_tower_model: webhook_authenticator, reference: open, name: Open, code: "result = {'allowed': True}"}
- {cetmix_tower_model: webhook, reference: echo, name: Echo, authenticator_id: open, endpoint: echo,
   code: "result = {'exit_code': 0, 'message': json.dumps({'client_ip': client_ip, 'url': url, 'headers': dict(headers)})}"}
- {cetmix_tower_model: webhook, reference: slow, name: Slow, authenticator_id: open, endpoint: slow,
   code: "time.sleep(3600)\nresult = {'exit_code': 0, 'message': 'slept'}"}
"#;

/// Moves this thread, and the threads and processes it starts from now on, into a network
/// namespace of its own, with only a loopback interface.
fn private_network() {
    if let Err(error) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
        panic!("unshare(CLONE_NEWNET): {error} (needs root, as scripts/test.sh is run)");
    }
    quietly(Command::new("ip").args(["link", "set", "lo", "up"]));
}

/// A process of the test, stopped when dropped: SIGTERM (nginx's master then stops its
/// workers, which SIGKILL would leave behind), SIGKILL if it is still there after 5 s;
/// then the directories it used are removed.
struct Process(Child, Vec<tempfile::TempDir>);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        self.1.clear();
    }
}

impl Process {
    /// Waits until something listens on `address` (20 s at most); `what` says why not.
    fn wait_for(&mut self, address: (IpAddr, u16), what: &dyn Fn() -> String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(address).is_err() {
            assert!(self.0.try_wait().unwrap().is_none(), "exited: {}", what());
            assert!(
                Instant::now() < deadline,
                "nothing on {address:?}: {}",
                what()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// nginx from `site`, inside http {} as the nginx image's and Debian's main files include
/// conf.d/*.conf and sites-enabled/*; logs, pid and temporary files in a prefix of its own.
/// `nginx -t` first: it must pass without a word.
fn nginx(site: &Path, listens_on: (IpAddr, u16)) -> Process {
    let prefix = tempfile::tempdir().unwrap();
    let main = format!(
        "user root;\nworker_processes 1;\npid nginx.pid;\nerror_log stderr error;\nevents {{}}\n\
         http {{\n  include /etc/nginx/mime.types;\n  access_log off;\n  client_body_temp_path body;\n  \
         proxy_temp_path proxy;\n  fastcgi_temp_path fastcgi;\n  uwsgi_temp_path uwsgi;\n  \
         scgi_temp_path scgi;\n  include {};\n}}\n",
        site.display()
    );
    std::fs::write(prefix.path().join("nginx.conf"), main).unwrap();
    let args = |command: &mut Command| {
        command
            .arg("-e")
            .arg("stderr")
            .arg("-p")
            .arg(prefix.path())
            .args(["-c", "nginx.conf"]);
    };
    let mut test = Command::new("nginx");
    args(test.args(["-t", "-q"]));
    quietly(&mut test);
    let mut command = Command::new("nginx");
    args(command.args(["-g", "daemon off;"]));
    let mut nginx = Process(
        command.stdin(Stdio::null()).spawn().expect("nginx"),
        vec![prefix],
    );
    nginx.wait_for(listens_on, &|| "nginx".into());
    nginx
}

/// Odoo as nginx sees it, on every address at `port`: every request answered 200 with what
/// arrived (`{"odoo": port, "headers": {...}}`), websocket upgrades with 101.
fn odoo_stand_in(port: u16) {
    let listener = TcpListener::bind(("0.0.0.0", port)).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = serde_json::Map::new();
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    if let Some((name, value)) = line.split_once(':') {
                        headers.insert(name.to_ascii_lowercase(), json!(value.trim()));
                    }
                    line.clear();
                }
                let length = headers
                    .get("content-length")
                    .and_then(|v| v.as_str()?.parse().ok());
                std::io::copy(&mut reader.take(length.unwrap_or(0)), &mut std::io::sink()).unwrap();
                let answer = if headers.get("upgrade") == Some(&json!("websocket")) {
                    format!(
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                         Connection: Upgrade\r\nX-Odoo-Port: {port}\r\nX-Seen-Connection: {}\r\n\r\n",
                        headers["connection"].as_str().unwrap()
                    )
                } else {
                    let body = json!({"odoo": port, "headers": headers}).to_string();
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = (&stream).write_all(answer.as_bytes());
            });
        }
    });
}

/// `towerhook ARGS` with `env`, serving this test's webhooks; its log kept.
struct Served {
    process: Process,
    log: Arc<Mutex<Vec<String>>>,
    store: PathBuf,
}

fn serve(args: &[String], env: &BTreeMap<String, String>, listens_on: (IpAddr, u16)) -> Served {
    let definitions = tempfile::tempdir().unwrap();
    std::fs::write(definitions.path().join("hooks.yaml"), WEBHOOKS).unwrap();
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("towerhook.sqlite3");
    let mut env = env.clone();
    // The Odoo of these settings is not here: the definitions come from a directory and
    // the logs stay local (the environment wins over the file, as deploy/README.md says).
    for (key, value) in [
        ("TOWERHOOK_SOURCE", "yaml".to_string()),
        ("TOWERHOOK_LOG_SINK", "local".to_string()),
        (
            "TOWERHOOK_YAML_DIR",
            definitions.path().display().to_string(),
        ),
        ("TOWERHOOK_DATA_DIR", data.path().display().to_string()),
        (
            "TOWERHOOK_PYTHON_PACKAGES_DIR",
            repo().join(".python-packages").display().to_string(),
        ),
    ] {
        env.insert(key.into(), value);
    }
    env.remove("TOWERHOOK_SECRETS_FILE");
    let mut process = Process(
        Command::new(env!("CARGO_BIN_EXE_towerhook"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&env)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        vec![definitions, data],
    );
    let log = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&log);
    let stderr = process.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    process.wait_for(listens_on, &|| log.lock().unwrap().join("\n"));
    Served {
        process,
        log,
        store,
    }
}

impl Served {
    /// Whether towerhook logged a call answered `status` from `client`: the 413s behind
    /// nginx must reach the webhook's log (nginx's own would not).
    fn logged(&self, status: i64, client: Ipv4Addr) -> bool {
        common::read_logs(&self.store)
            .iter()
            .any(|row| row.http_status == status && row.ip_address == Some(client.to_string()))
    }

    /// SIGTERM; how long it took to exit.
    fn stop(mut self) -> Duration {
        let started = Instant::now();
        quietly(Command::new("kill").args(["-TERM", &self.process.0.id().to_string()]));
        let status = self.process.0.wait().unwrap();
        assert!(
            status.success(),
            "{status}: {}",
            self.log.lock().unwrap().join("\n")
        );
        started.elapsed()
    }
}

fn client(from: IpAddr) -> reqwest::Client {
    // reqwest is built without a TLS provider of its own (plain HTTP here, but it asks).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .local_address(from)
        .no_proxy()
        .build()
        .unwrap()
}

/// POSTs `body` to `url` from `from` with `headers`: the status and the body, with the
/// message of towerhook's JSON answers parsed again when it is JSON itself (echo).
async fn post(from: IpAddr, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Value) {
    let mut request = client(from).post(url).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let answer: Value = serde_json::from_str(&text).unwrap_or(json!({"not json": text}));
    let message = answer["message"]
        .as_str()
        .and_then(|m| serde_json::from_str(m).ok());
    (status, message.unwrap_or(answer))
}

/// The echo's view of one header, by name in any case.
fn header<'a>(echo: &'a Value, name: &str) -> Option<&'a str> {
    echo["headers"]
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

/// What callers of the webhook URL see through nginx at `front`: towerhook answers, judges
/// the caller by the address nginx saw whatever it writes in X-Forwarded-For, with or
/// without underscores (nginx drops names with `_`, its default), and bodies up to its own
/// limit pass, larger ones get its logged 413, not nginx's.
async fn webhooks_through(front: &str) {
    let caller = IpAddr::V4(CALLER);
    let url = format!("{front}/cetmix_tower_webhooks/echo");
    let (status, echo) = post(
        caller,
        &url,
        &[
            ("Host", "hooks.example.org"),
            ("X-Forwarded-For", "192.0.2.5"),
            ("X_Forwarded_For", "198.51.100.9"),
            ("X_Sender_Token", "1"),
        ],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["client_ip"], json!(CALLER.to_string()), "{echo}");
    assert_eq!(header(&echo, "X-Real-IP"), Some("203.0.113.7"), "{echo}");
    assert_eq!(
        header(&echo, "X-Forwarded-For"),
        Some("192.0.2.5, 203.0.113.7"),
        "{echo}"
    );
    assert_eq!(header(&echo, "X-Forwarded-Proto"), Some("http"), "{echo}");
    assert_eq!(
        echo["url"],
        json!("http://hooks.example.org/cetmix_tower_webhooks/echo")
    );
    assert_eq!(
        header(&echo, "X-Sender-Token"),
        None,
        "nginx passed a header with `_`: {echo}"
    );

    let (status, _) = post(caller, &url, &[], vec![b'a'; MAX_BODY]).await;
    assert_eq!(status, 200, "a body of towerhook's limit");
    let (status, answer) = post(caller, &url, &[], vec![b'a'; MAX_BODY + 1]).await;
    assert_eq!(
        (status, &answer["message"]),
        (
            413,
            &json!(format!("Request body too large (limit {MAX_BODY} bytes)"))
        ),
        "towerhook's own 413, which it logs"
    );
}

/// The slowest call: a snippet running into towerhook's snippet timeout gets towerhook's
/// answer, not nginx's 504 (proxy_read_timeout is longer).
async fn slowest_call(front: String) -> (u16, Value) {
    post(
        IpAddr::V4(CALLER),
        &format!("{front}/cetmix_tower_webhooks/slow"),
        &[],
        vec![],
    )
    .await
}

fn assert_timed_out_in_towerhook((status, answer): (u16, Value)) {
    assert_eq!(
        (status, &answer["message"]),
        (
            500,
            &json!("Webhook code execution error: execution timed out after 30 s")
        ),
        "{answer}"
    );
}

/// A call straight to towerhook from `neighbour` (not its proxy), claiming to be the caller.
async fn neighbour_is_judged_by_its_own_address(neighbour: IpAddr, towerhook: &str) {
    let (status, echo) = post(
        neighbour,
        &format!("{towerhook}/cetmix_tower_webhooks/echo"),
        &[("X-Forwarded-For", &CALLER.to_string())],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(
        (status, &echo["client_ip"]),
        (200, &json!(neighbour.to_string()))
    );
}

async fn reaches_odoo(from: IpAddr, url: &str, port: u16) {
    let response = client(from).get(url).send().await.unwrap();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(answer["odoo"], json!(port), "{url}: {answer}");
    let headers = &answer["headers"];
    assert_eq!(
        headers["x-forwarded-for"],
        json!(from.to_string()),
        "{url}: {headers}"
    );
    assert_eq!(
        headers["x-forwarded-proto"],
        json!("http"),
        "{url}: {headers}"
    );
    assert!(headers.get("host").is_some(), "{url}: {headers}");
}

#[tokio::test]
async fn compose_proxy_serves_webhooks_and_odoo_as_configured() {
    private_network();
    // The compose network on this namespace's loopback, moved to a documentation range
    // with the two documented knobs. On one loopback a connection comes from the address
    // it goes to: the services answer at the proxy's address, so that nginx's connections
    // to towerhook come from it, as in Compose.
    let mut env = operator_env();
    env.insert("NETWORK_SUBNET".into(), "192.0.2.0/24".into());
    env.insert("PROXY_IPV4".into(), "192.0.2.10".into());
    let model = model(&env);
    let proxy_ip: IpAddr = service(&model, "proxy")["networks"]["default"]["ipv4_address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let neighbour: IpAddr = "192.0.2.11".parse().unwrap();
    for ip in [proxy_ip, neighbour, IpAddr::V4(CALLER)] {
        common::ensure_local_address(ip);
    }
    // Docker's DNS, at the address nginx-compose.conf's resolver names.
    let mut dns = Command::new("dnsmasq");
    dns.args([
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
    ])
    .args([
        "--bind-interfaces",
        "--listen-address=127.0.0.11",
        "--user=root",
        "--pid-file=",
    ]);
    for name in model["services"].as_object().unwrap().keys() {
        dns.arg(format!("--address=/{name}/{proxy_ip}"));
    }
    let mut dns = Process(
        dns.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq"),
        vec![],
    );
    // It answers over TCP too: a connection tells it is ready.
    dns.wait_for(("127.0.0.11".parse().unwrap(), 53), &|| "dnsmasq".into());

    let conf = odoo_conf();
    let (http_port, gevent_port) = (port(&conf, "http_port"), port(&conf, "gevent_port"));
    odoo_stand_in(http_port);
    odoo_stand_in(gevent_port);
    let (image, container) = in_image(&container_env(&model));
    let listen: std::net::SocketAddr = container["TOWERHOOK_LISTEN"].parse().unwrap();
    // The image's command (compose sets none), its environment and the service's.
    let towerhook = serve(
        &runtime().last("CMD"),
        &container,
        (proxy_ip, listen.port()),
    );

    let site = mount(&model, "proxy", "/etc/nginx/conf.d/default.conf");
    let published = service(&model, "proxy")["ports"][0]["target"]
        .as_u64()
        .unwrap() as u16;
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let _nginx = nginx(
        Path::new(site["source"].as_str().unwrap()),
        (loopback, published),
    );
    let front = format!("http://{proxy_ip}:{published}");

    let slow = tokio::spawn(slowest_call(front.clone()));
    webhooks_through(&front).await;
    assert!(
        towerhook.logged(413, CALLER),
        "the 413 is not in towerhook's log"
    );
    neighbour_is_judged_by_its_own_address(
        neighbour,
        &format!("http://{proxy_ip}:{}", listen.port()),
    )
    .await;
    for path in ["/", "/web/login", "/web/health", "/jsonrpc"] {
        reaches_odoo(IpAddr::V4(CALLER), &format!("{front}{path}"), http_port).await;
    }
    let upload = client(IpAddr::V4(CALLER))
        .post(format!("{front}/web/binary/upload_attachment"))
        .body(vec![b'a'; 8 * MAX_BODY])
        .send()
        .await
        .unwrap();
    assert_eq!(
        upload.status(),
        200,
        "Odoo takes attachments larger than webhooks"
    );
    websocket_reaches_gevent(proxy_ip, published, gevent_port);

    // The healthchecks, run as Docker runs them, each in its service (one loopback here).
    for name in ["odoo", "towerhook", "proxy"] {
        let test: Vec<String> =
            serde_json::from_value(service(&model, name)["healthcheck"]["test"].clone()).unwrap();
        // towerhook's probe is the image's own (a bash script); the others use curl.
        let in_image = image.path().join("usr/local/bin").join(&test[1]);
        let mut command = Command::new(if in_image.is_file() { "bash" } else { &test[1] });
        if in_image.is_file() {
            command.arg(&in_image).envs(&container);
        }
        let output = run(command.args(&test[2..]));
        assert!(
            output.status.success(),
            "{name}: {test:?}: {}",
            text(&output.stderr)
        );
    }

    // `docker compose stop`: towerhook lets the call in flight finish before Docker's kill.
    let grace = seconds(
        service(&model, "towerhook")["stop_grace_period"]
            .as_str()
            .unwrap(),
    );
    let stopped = tokio::task::spawn_blocking(move || towerhook.stop())
        .await
        .unwrap();
    assert_timed_out_in_towerhook(slow.await.unwrap());
    assert!(
        stopped.as_secs_f64() < grace,
        "stopped after {stopped:?}; stop_grace_period {grace} s"
    );
}

/// Odoo's bus websocket through the proxy: the upgrade reaches the gevent port with its
/// Upgrade and Connection headers, and the 101 comes back.
fn websocket_reaches_gevent(host: IpAddr, port: u16, gevent_port: u16) {
    let mut stream = TcpStream::connect((host, port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = "GET /websocket HTTP/1.1\r\nHost: odoo.example.org\r\n\
                   Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    stream.write_all(request.as_bytes()).unwrap();
    let head: Vec<String> = BufReader::new(stream)
        .lines()
        .map_while(Result::ok)
        .take_while(|line| !line.is_empty())
        .collect();
    assert_eq!(head[0], "HTTP/1.1 101 Switching Protocols", "{head:?}");
    assert!(
        head.contains(&format!("X-Odoo-Port: {gevent_port}")),
        "{head:?}"
    );
    assert!(
        head.iter()
            .any(|h| h.eq_ignore_ascii_case("x-seen-connection: upgrade")),
        "{head:?}"
    );
}

#[tokio::test]
async fn nginx_snippet_and_unit_serve_webhooks_as_configured() {
    private_network();
    let caller = IpAddr::V4(CALLER);
    let neighbour = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    common::ensure_local_address(caller);
    // The Odoo site the snippet goes into (deploy/README.md: before its `location /`).
    let odoo_port = 8069;
    odoo_stand_in(odoo_port);
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("odoo.conf");
    std::fs::write(
        &site,
        format!(
            "server {{\n  listen 80 default_server;\n  include {};\n  location / {{\n    \
             proxy_pass http://127.0.0.1:{odoo_port};\n    proxy_set_header X-Forwarded-For \
             $proxy_add_x_forwarded_for;\n    proxy_set_header X-Forwarded-Proto $scheme;\n    \
             proxy_set_header Host $host;\n  }}\n}}\n",
            repo().join("deploy/nginx.conf").display()
        ),
    )
    .unwrap();
    // towerhook as the unit starts it: ExecStart's arguments, Environment= and the
    // EnvironmentFile, listening where deploy/towerhook.toml says.
    let listen: std::net::SocketAddr = settings_file()
        .get_string("listen")
        .unwrap()
        .parse()
        .unwrap();
    let towerhook = serve(
        &exec_start_args(),
        &unit_env(),
        (listen.ip(), listen.port()),
    );
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let _nginx = nginx(&site, (loopback, 80));
    let front = "http://127.0.0.1:80".to_string();

    let slow = tokio::spawn(slowest_call(front.clone()));
    webhooks_through(&front).await;
    assert!(
        towerhook.logged(413, CALLER),
        "the 413 is not in towerhook's log"
    );
    neighbour_is_judged_by_its_own_address(neighbour, &format!("http://{listen}")).await;
    reaches_odoo(caller, &format!("{front}/web/login"), odoo_port).await;

    // `systemctl stop`: towerhook lets the call in flight finish before systemd's SIGKILL.
    let timeout = seconds(&unit("TimeoutStopSec")[0]);
    let stopped = tokio::task::spawn_blocking(move || towerhook.stop())
        .await
        .unwrap();
    assert_timed_out_in_towerhook(slow.await.unwrap());
    assert!(
        stopped.as_secs_f64() < timeout,
        "stopped after {stopped:?}; TimeoutStopSec {timeout} s"
    );
}
