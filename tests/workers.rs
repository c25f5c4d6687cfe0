//! Snippets in supervised worker processes: whatever a snippet does, it fails only its own
//! call, logged with a clear error, while other calls are answered and the server stays
//! ready (issue "Snippets in supervised worker processes").

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{TestApp, answer, spawn_app_with};
use serde_json::{Value, json};

const TRIVIAL: &str = "result = {'exit_code': 0, 'message': 'fine'}";

/// YAML for webhooks behind an allow-all authenticator: (endpoint, code).
fn webhooks(hooks: &[(&str, &str)]) -> String {
    let mut yaml = "- {cetmix_tower_model: webhook_authenticator, reference: open, name: Open, \
                    code: \"result = {'allowed': True}\"}\n"
        .to_string();
    for (endpoint, code) in hooks {
        yaml.push_str(&format!(
            "- cetmix_tower_model: webhook\n  reference: {reference}\n  name: {endpoint}\n  \
             authenticator_id: open\n  endpoint: {endpoint}\n  code: {code}\n",
            reference = endpoint.replace('/', "_"),
            code = serde_json::to_string(code).unwrap(),
        ));
    }
    yaml
}

async fn post(app: &TestApp, endpoint: &str) -> (u16, Value, Option<String>) {
    let response = reqwest::Client::new()
        .post(app.url(endpoint))
        .body("{}")
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_string());
    let (status, _, message) = answer(response).await;
    (status, message, request_id)
}

async fn metrics(app: &TestApp) -> HashMap<String, f64> {
    common::metrics(&app.base()).await
}

async fn ready(app: &TestApp) -> bool {
    reqwest::get(format!("{}/readyz", app.base()))
        .await
        .unwrap()
        .status()
        .as_u16()
        == 200
}

/// Waits until every worker is ready (serve answers once the first is).
async fn all_workers_ready(app: &TestApp, workers: f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while metrics(app).await.get("towerhook_workers_ready") != Some(&workers) {
        assert!(Instant::now() < deadline, "the workers did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two workers of one thread each, a short time limit, and the hostile snippet.
async fn app_with(hostile: &str) -> TestApp {
    spawn_two(hostile, |settings| settings.snippet_timeout_secs = 1.0).await
}

async fn spawn_two(
    hostile: &str,
    configure: impl FnOnce(&mut towerhook::configuration::Settings),
) -> TestApp {
    let app = spawn_app_with(
        &webhooks(&[("hostile", hostile), ("trivial", TRIVIAL)]),
        |settings| {
            settings.python_workers = 2;
            settings.python_threads = 1;
            // An fsync on this kind of machine's disk now and then takes longer than the
            // 100 ms bound: what is measured here is the snippets, not the disk.
            settings.log_store_sync = towerhook::configuration::SyncMode::Normal;
            configure(settings);
        },
    )
    .await;
    all_workers_ready(&app, 2.0).await;
    app
}

/// Runs the hostile call; meanwhile trivial calls must each answer within 100 ms. Returns
/// the hostile call's answer.
async fn hostile_call_beside_trivial_ones(app: &TestApp) -> (u16, Value, Option<String>) {
    let hostile = tokio::spawn({
        let url = app.url("hostile");
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .body("{}")
                .timeout(Duration::from_secs(60))
                .send()
                .await
                .unwrap();
            let request_id = response
                .headers()
                .get("x-request-id")
                .map(|v| v.to_str().unwrap().to_string());
            let (status, _, message) = answer(response).await;
            (status, message, request_id)
        }
    });
    // Let the hostile call reach its worker first.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut slowest = Duration::ZERO;
    let client = reqwest::Client::new();
    while !hostile.is_finished() {
        let started = Instant::now();
        let response = client
            .post(app.url("trivial"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        slowest < Duration::from_millis(100),
        "a trivial call beside the hostile one took {slowest:?}"
    );
    hostile.await.unwrap()
}

/// The hostile call's log record: the same request id, failed with `expected` in its error.
fn assert_logged(app: &TestApp, request_id: &str, expected: &str) {
    let record = app
        .logs()
        .into_iter()
        .find(|log| log.request_headers["X-Towerhook-Request-Id"] == json!(request_id))
        .expect("the hostile call is logged");
    assert_eq!(record.http_status, 500);
    assert_eq!(record.code_status, "failed");
    let error = record.error_message.unwrap_or_default();
    assert!(error.contains(expected), "{error:?} lacks {expected:?}");
}

#[tokio::test]
async fn c_recursion_that_overflows_the_stack_fails_only_its_call() {
    let app = app_with(
        "x = [1]\nfor i in range(200000):\n    x = map(abs, x)\n\
         result = {'exit_code': 0, 'message': str(list(x))}",
    )
    .await;
    let (status, message, request_id) = hostile_call_beside_trivial_ones(&app).await;
    let request_id = request_id.unwrap();
    assert_eq!(status, 500);
    // The caller learns what to quote, not how the worker ended (item 11).
    assert_eq!(
        message,
        json!(format!(
            "Webhook code execution error: the code ended its worker process (request {request_id})"
        ))
    );
    assert_logged(&app, &request_id, "its snippet worker died");
    assert!(ready(&app).await);
    assert_eq!(post(&app, "trivial").await.0, 200);
    let restarts = metrics(&app).await;
    assert_eq!(
        restarts.get("towerhook_worker_restarts{cause=\"died\"}"),
        Some(&1.0)
    );
}

#[tokio::test]
async fn hashing_a_deeply_nested_tuple_fails_only_its_call() {
    let app = app_with(
        "t = ()\nfor i in range(300000):\n    t = (t,)\nseen = {t}\nresult = {'exit_code': 0}",
    )
    .await;
    let (status, _, request_id) = hostile_call_beside_trivial_ones(&app).await;
    assert_eq!(status, 500);
    assert_logged(&app, &request_id.unwrap(), "its snippet worker died");
    assert!(ready(&app).await);
}

#[tokio::test]
async fn a_c_loop_holding_the_gil_is_killed_at_its_time_limit() {
    let app = app_with("result = {'exit_code': 0, 'message': str(sum(range(10**18)))}").await;
    let started = Instant::now();
    let (status, message, request_id) = hostile_call_beside_trivial_ones(&app).await;
    assert_eq!(
        (status, message),
        (
            500,
            json!("Webhook code execution error: execution timed out after 1 s")
        )
    );
    // The limit, the grace, and a few watchdog ticks.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_logged(&app, &request_id.unwrap(), "execution timed out");
    let counts = metrics(&app).await;
    assert_eq!(counts.get("towerhook_calls_killed_for_time"), Some(&1.0));
    assert_eq!(
        counts.get("towerhook_worker_restarts{cause=\"timeout\"}"),
        Some(&1.0)
    );
    assert!(ready(&app).await);
}

#[tokio::test]
async fn a_huge_power_that_cannot_be_interrupted_is_killed() {
    let app = app_with("n = 3 ** (2 * 10**8)\nresult = {'exit_code': 0}").await;
    let (status, message, _) = hostile_call_beside_trivial_ones(&app).await;
    assert_eq!(
        (status, message),
        (
            500,
            json!("Webhook code execution error: execution timed out after 1 s")
        )
    );
}

#[tokio::test]
async fn a_memory_bomb_fails_with_memory_error_in_its_own_call() {
    let app = spawn_two(
        "hoard = []\nwhile True:\n    hoard.append('x' * 10**7)",
        |settings| {
            settings.snippet_timeout_secs = 20.0;
            settings.worker_memory_mb = 256;
        },
    )
    .await;
    let (status, message, request_id) = hostile_call_beside_trivial_ones(&app).await;
    assert_eq!(status, 500);
    assert!(
        message.as_str().unwrap().contains("MemoryError"),
        "{message}"
    );
    assert_logged(&app, &request_id.unwrap(), "MemoryError");
    // Its worker is still there (no restart) and the memory came back.
    assert_eq!(post(&app, "trivial").await.0, 200);
    let counts = metrics(&app).await;
    let biggest = counts
        .iter()
        .filter(|(series, _)| series.starts_with("towerhook_worker_memory_bytes"))
        .map(|(_, bytes)| *bytes)
        .fold(0.0, f64::max);
    assert!(
        biggest > 0.0 && biggest < 256.0 * 1024.0 * 1024.0,
        "{biggest}"
    );
}

#[tokio::test]
async fn opening_sockets_without_end_fails_only_its_own_call() {
    // A server that accepts and never answers: each request holds a socket until its
    // timeout.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _held = std::thread::spawn(move || {
        let mut kept = Vec::new();
        for stream in listener.incoming().take(2000) {
            kept.push(stream);
        }
    });
    let code = format!(
        "answers = []\nfor i in range(1000):\n    try:\n        \
         answers.append(requests.get('http://127.0.0.1:{port}/', timeout=0.001))\n    \
         except Exception as error:\n        answers.append(str(error)[:20])\n\
         result = {{'exit_code': 0, 'message': str(len(answers))}}"
    );
    let app = spawn_two(&code, |settings| settings.snippet_timeout_secs = 20.0).await;
    let (status, message, _) = hostile_call_beside_trivial_ones(&app).await;
    // Every request's socket is closed before the next: the worker never runs out.
    assert_eq!((status, message), (200, json!("1000")));
    assert_eq!(post(&app, "trivial").await.0, 200);
}

#[tokio::test]
async fn workers_are_recycled_after_their_calls_and_a_fresh_interpreter_serves() {
    let app = spawn_app_with(
        &webhooks(&[(
            "identity",
            "result = {'exit_code': 0, 'message': repr(float_compare)}",
        )]),
        |settings| {
            settings.python_workers = 1;
            settings.python_threads = 1;
            settings.worker_max_calls = 2;
        },
    )
    .await;
    let mut identities: Vec<String> = Vec::new();
    for _ in 0..12 {
        let (status, message, _) = post(&app, "identity").await;
        assert_eq!(status, 200);
        identities.push(message.as_str().unwrap().to_string());
        // A worker that served its calls keeps serving until its successor is ready:
        // recycling never leaves the pool without a worker.
        let ready = metrics(&app).await["towerhook_workers_ready"];
        assert!(
            ready >= 1.0,
            "no worker ready after call {}",
            identities.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Each interpreter served at least its two calls, then a new process with its own
    // objects took over, and a retired one never came back.
    let mut runs: Vec<(String, usize)> = Vec::new();
    for identity in identities {
        match runs.last_mut() {
            Some((last, count)) if *last == identity => *count += 1,
            _ => runs.push((identity, 1)),
        }
    }
    assert!(runs.len() >= 3, "{runs:?}");
    assert!(
        runs[..runs.len() - 1].iter().all(|(_, count)| *count >= 2),
        "{runs:?}"
    );
    let distinct: std::collections::HashSet<&String> = runs.iter().map(|(id, _)| id).collect();
    assert_eq!(distinct.len(), runs.len(), "{runs:?}");
    let counts = metrics(&app).await;
    assert!(
        counts
            .get("towerhook_worker_restarts{cause=\"recycled\"}")
            .is_some_and(|n| *n >= 2.0),
        "{counts:?}"
    );
}

#[tokio::test]
async fn a_worker_killed_during_a_call_fails_that_call_logged_and_is_replaced() {
    let app = spawn_app_with(
        &webhooks(&[
            ("slow", "time.sleep(3)\nresult = {'exit_code': 0}"),
            ("trivial", TRIVIAL),
        ]),
        |settings| {
            settings.python_workers = 1;
            settings.python_threads = 1;
            settings.snippet_timeout_secs = 10.0;
        },
    )
    .await;
    assert_eq!(post(&app, "trivial").await.0, 200);
    let pid = metrics(&app)
        .await
        .keys()
        .find_map(|series| {
            series
                .strip_prefix("towerhook_worker_memory_bytes{pid=\"")
                .and_then(|rest| rest.strip_suffix("\"}"))
                .map(String::from)
        })
        .expect("the worker's pid in /metrics");
    let slow = tokio::spawn({
        let url = app.url("slow");
        async move {
            reqwest::Client::new()
                .post(url)
                .body("{}")
                .send()
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    let response = slow.await.unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let (status, _, message) = answer(response).await;
    assert_eq!(status, 500);
    assert!(message.as_str().unwrap().contains(&request_id), "{message}");
    assert_logged(&app, &request_id, "killed (SIGKILL");
    // A new worker serves the next call.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready(&app).await && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(post(&app, "trivial").await.0, 200);
}

#[tokio::test]
async fn readiness_and_metrics_show_the_workers() {
    let app = spawn_two(TRIVIAL, |_| {}).await;
    let counts = metrics(&app).await;
    assert_eq!(counts.get("towerhook_workers_ready"), Some(&2.0));
    assert_eq!(counts.get("towerhook_workers_busy"), Some(&0.0));
    let memory: Vec<f64> = counts
        .iter()
        .filter(|(series, _)| series.starts_with("towerhook_worker_memory_bytes"))
        .map(|(_, bytes)| *bytes)
        .collect();
    assert_eq!(memory.len(), 2, "{counts:?}");
    assert!(memory.iter().all(|bytes| *bytes > 1_000_000.0));
}

/// While no worker can run, `/readyz` answers 503 and says why; once one starts again,
/// the service is ready and calls are served.
#[tokio::test]
async fn readiness_is_503_while_no_worker_can_run() {
    let dir = tempfile::tempdir().unwrap();
    let disabled = dir.path().join("disabled");
    let program = dir.path().join("worker.sh");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\nif [ -e '{}' ]; then echo 'worker disabled by the test' >&2; exit 3; fi\n\
             exec '{}' \"$@\"\n",
            disabled.display(),
            env!("CARGO_BIN_EXE_towerhook")
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let app = spawn_app_with(&webhooks(&[("trivial", TRIVIAL)]), |settings| {
        settings.python_workers = 1;
        settings.python_workers_max = 1;
        settings.python_threads = 1;
        settings.worker_program = Some(program.clone());
    })
    .await;
    assert_eq!(post(&app, "trivial").await.0, 200);
    let pid: i32 = metrics(&app)
        .await
        .keys()
        .find_map(|series| {
            series
                .strip_prefix("towerhook_worker_memory_bytes{pid=\"")
                .and_then(|rest| rest.strip_suffix("\"}"))
                .and_then(|pid| pid.parse().ok())
        })
        .expect("the worker's pid in /metrics");
    std::fs::write(&disabled, "").unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let readyz = || async {
        let response = reqwest::get(format!("{}/readyz", app.base()))
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = readyz().await;
        if status == 503 {
            assert!(body.contains("no snippet worker is running"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "still ready: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::fs::remove_file(&disabled).unwrap();
    // Failed starts are retried with growing waits, at most 10 s apart.
    let deadline = Instant::now() + Duration::from_secs(30);
    while readyz().await.0 != 200 {
        assert!(Instant::now() < deadline, "not ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(post(&app, "trivial").await.0, 200);
}

#[tokio::test]
async fn calls_waiting_on_io_do_not_hold_up_quick_ones_the_pool_grows() {
    let app = spawn_app_with(
        &webhooks(&[
            (
                "slow",
                "time.sleep(3)\nresult = {'exit_code': 0, 'message': 'slept'}",
            ),
            ("trivial", TRIVIAL),
        ]),
        |settings| {
            settings.python_workers = 2;
            settings.python_threads = 1;
            settings.snippet_timeout_secs = 10.0;
        },
    )
    .await;
    all_workers_ready(&app, 2.0).await;
    // Both workers wait on their snippets' sleep...
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let url = app.url("slow");
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(url)
                    .body("{}")
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...and a quick call gets a new worker instead of waiting for them.
    let started = Instant::now();
    assert_eq!(post(&app, "trivial").await.0, 200);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the quick call waited {:?} behind the slow ones",
        started.elapsed()
    );
    for call in slow {
        assert_eq!(call.await.unwrap().as_u16(), 200);
    }
    let counts = metrics(&app).await;
    assert_eq!(
        counts.get("towerhook_worker_restarts{cause=\"grown\"}"),
        Some(&1.0),
        "{counts:?}"
    );
}
