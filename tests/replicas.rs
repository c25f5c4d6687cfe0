//! Three towerhook replicas behind a real load balancer, HAProxy from Debian's package,
//! started with the repository's own `deploy/haproxy.cfg` (the addresses filled in through
//! the environment, as that file documents), all shipping to one Odoo emulator with the
//! companion addon. Under a steady load through the proxy, one replica is killed with
//! SIGKILL and started again, a webhook is edited in Odoo, then all three are restarted one
//! after another with SIGTERM. What a user would check afterwards:
//! - no call fails during the rolling restart (nor outside the SIGKILL), and the calls
//!   failed by the SIGKILL are only the ones that replica had in flight;
//! - every call answered by towerhook has exactly one log in Odoo, by its request id;
//!   duplicate deliveries reach the addon only from the killed replica's batch in flight,
//!   and the addon's key absorbs them;
//! - an edit in Odoo is served by every replica within the poll interval;
//! - callers are judged by their own address, not by what they write in X-Forwarded-For;
//!   the rest of the site goes to Odoo.
//!
//! Emulator only: the duplicate deliveries are read from its call journal, and the killed
//! replica's batch is held in flight by stalling Odoo's answers.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::BinaryServer;
use common::haproxy::{Haproxy, free_port};
use common::odoo::{SERVICE_LOGIN, TestOdoo};
use serde_json::{Value, json};

/// Where the load comes from: a caller address of its own, so that the logs show whether
/// towerhook saw the caller or the proxy (127.0.0.1).
const CALLER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// Another caller, not in the webhook's allowlist, which claims to be `CALLER`.
const IMPOSTOR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
/// Calls per second through the proxy.
const RATE: u64 = 40;
/// The replicas' odoo_poll_secs.
const POLL_SECS: f64 = 1.0;
/// What deploy/haproxy.cfg asks of the replicas: longer than its health checks take to
/// take a replica out of rotation (fall 2 x inter 1 s + timeout check 1 s).
const SHUTDOWN_DELAY_SECS: &str = "5";
/// The replicas' outbox batch size: one batch in flight at the kill is the at-least-once
/// window, so no more duplicates than this.
const BATCH_SIZE: usize = 50;
/// Upper bound of the whole load, whatever happens.
const MAX_LOAD: Duration = Duration::from_secs(150);

/// HAProxy's log lines of webhook calls not answered 200, and of replicas leaving or
/// entering rotation.
fn notable_lines(haproxy: &Haproxy) -> Vec<String> {
    haproxy
        .lines()
        .into_iter()
        .filter(|line| line.contains("towerhook/") && !line.contains(" 200 "))
        .filter(|line| !line.starts_with("[WARNING]"))
        .collect()
}

/// One replica: its fixed port (the proxy's configuration names it), its own data
/// directory (its outbox), surviving its restarts.
struct Replica {
    name: &'static str,
    port: u16,
    data: tempfile::TempDir,
    env: Vec<(String, String)>,
    server: Option<BinaryServer>,
}

impl Replica {
    fn start(&mut self) {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.server = Some(BinaryServer::start_in(self.data.path(), &env));
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Request ids of the calls this replica answered, from its own log store.
    fn request_ids(&self) -> HashSet<String> {
        common::read_logs(&self.data.path().join("towerhook.sqlite3"))
            .into_iter()
            .filter_map(|log| {
                log.request_headers["X-Towerhook-Request-Id"]
                    .as_str()
                    .map(String::from)
            })
            .collect()
    }
}

/// Calls of `endpoint` this process answered since it started (its metrics).
async fn calls_served(replica: &Replica, endpoint: &str) -> u64 {
    let Ok(response) = reqwest::get(format!("{}/metrics", replica.base())).await else {
        return 0;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|line| {
            line.starts_with("towerhook_calls_total{")
                && line.contains(&format!("endpoint=\"{endpoint}\""))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Waits until the proxy sends calls to `replica` (HAProxy saw it ready).
async fn wait_serving(replica: &Replica, endpoint: &str) -> Duration {
    let started = Instant::now();
    while calls_served(replica, endpoint).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} gets no calls from the proxy",
            replica.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

const PHASES: [&str; 5] = [
    "steady",
    "sigkill",
    "edit",
    "rolling SIGTERM restart",
    "after",
];

/// What a caller got: status, towerhook's request id (absent when the proxy answered
/// itself) and message; or the transport error.
type Answer = Result<(u16, Option<String>, String), String>;

/// One call of the load, as the caller saw it.
#[derive(Debug, Clone)]
struct Outcome {
    seq: u64,
    phase: &'static str,
    sent: Duration,
    /// When the answer (or the error) came back.
    done: Duration,
    answer: Answer,
}

impl Outcome {
    fn failed(&self) -> bool {
        !matches!(&self.answer, Ok((status, _, _)) if (200..300).contains(status))
    }
}

async fn post(client: &reqwest::Client, url: &str, seq: u64) -> Answer {
    let response = client
        .post(url)
        .body(json!({ "seq": seq }).to_string())
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    let id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = response.text().await.map_err(|e| format!("{e:?}"))?;
    let message = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().map(String::from))
        .unwrap_or(body);
    Ok((status, id, message))
}

/// How a caller sees a call that died with its replica: HAProxy's 502 (no request id:
/// towerhook never answered), or, for a call that was not the first on its connection to
/// HAProxy, the connection closed without an answer (HAProxy passes the server's abort on,
/// for the client to decide whether to send again).
fn lost_in_flight(answer: &Answer) -> bool {
    match answer {
        Ok((status, id, _)) => *status == 502 && id.is_none(),
        Err(error) => error.contains("IncompleteMessage"),
    }
}

/// Every `towerhook_uid` value in a JSON tree (the journal's arguments of a create call).
fn collect_uids(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("towerhook_uid", Value::String(uid)) => into.push(uid.clone()),
                    _ => collect_uids(value, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_uids(item, into)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_behind_haproxy_survive_a_kill_and_a_rolling_restart() {
    let odoo = TestOdoo::start().await;
    let Some(emulator) = odoo
        .emulator_only("counts duplicate deliveries in the call journal and stalls Odoo's answers")
    else {
        return;
    };
    emulator
        .control(
            "POST",
            "/addons",
            Some(json!({"cetmix_tower_webhook_sidecar": {"members": [SERVICE_LOGIN]}})),
        )
        .await;
    common::ensure_local_address(IpAddr::V4(CALLER));
    common::ensure_local_address(IpAddr::V4(IMPOSTOR));

    // The webhook answers its version and the caller's sequence number; only CALLER may
    // call it, so the calls through the proxy only pass if towerhook sees CALLER.
    let endpoint = odoo.name("lb");
    let code = |version: &str| {
        format!("result = {{'exit_code': 0, 'message': '{version} seq %s' % payload.get('seq')}}")
    };
    let authenticator = odoo
        .create(
            "cx.tower.webhook.authenticator",
            json!({
                "name": odoo.names().label("Caller only"), "reference": odoo.name("lb_auth"),
                "code": "result = {'allowed': True}",
                "allowed_ip_addresses": CALLER.to_string(),
            }),
        )
        .await;
    let webhook = odoo
        .create(
            "cx.tower.webhook",
            json!({
                "name": odoo.names().label("Balanced"), "reference": odoo.name("lb"),
                "endpoint": endpoint, "authenticator_id": authenticator, "code": code("v1"),
            }),
        )
        .await;

    // Calls that take a while, to have some in flight on the replica that gets killed.
    let slow_endpoint = odoo.name("lb_slow");
    odoo.create(
        "cx.tower.webhook",
        json!({
            "name": odoo.names().label("Slow"), "reference": odoo.name("lb_slow"),
            "endpoint": slow_endpoint, "authenticator_id": authenticator,
            "code": "time.sleep(3)\nresult = {'exit_code': 0, 'message': 'slow %s' % payload.get('seq')}",
        }),
    )
    .await;

    let poll = POLL_SECS.to_string();
    let batch_size = BATCH_SIZE.to_string();
    let mut replicas: Vec<Replica> = ["towerhook1", "towerhook2", "towerhook3"]
        .into_iter()
        .map(|name| {
            let port = free_port();
            let env = [
                ("TOWERHOOK_LISTEN", format!("127.0.0.1:{port}")),
                ("TOWERHOOK_SOURCE", "odoo".into()),
                ("TOWERHOOK_LOG_SINK", "odoo".into()),
                ("TOWERHOOK_ODOO_URL", odoo.url.clone()),
                ("TOWERHOOK_ODOO_DB", odoo.database.clone()),
                ("TOWERHOOK_ODOO_LOGIN", odoo.login.clone()),
                ("TOWERHOOK_ODOO_API_KEY", odoo.secret.clone()),
                ("TOWERHOOK_ODOO_POLL_SECS", poll.clone()),
                // HAProxy connects from 127.0.0.1: exactly that address is trusted.
                ("TOWERHOOK_TRUSTED_PROXIES", "127.0.0.1".into()),
                ("TOWERHOOK_SHUTDOWN_DELAY_SECS", SHUTDOWN_DELAY_SECS.into()),
                ("TOWERHOOK_SHUTDOWN_GRACE_SECS", "20".into()),
                ("TOWERHOOK_OUTBOX_BATCH_SIZE", batch_size.clone()),
                ("TOWERHOOK_OUTBOX_BATCH_AGE_MS", "200".into()),
                ("TOWERHOOK_OUTBOX_RETRY_MAX_SECS", "0.5".into()),
                ("TOWERHOOK_PYTHON_WORKERS", "1".into()),
                // Slow calls must not hold up the quick ones behind them.
                ("TOWERHOOK_PYTHON_THREADS", "4".into()),
                ("TOWERHOOK_WORKERS", "1".into()),
            ];
            Replica {
                name,
                port,
                data: tempfile::tempdir().unwrap(),
                env: env.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                server: None,
            }
        })
        .collect();
    for replica in &mut replicas {
        replica.start();
    }

    let proxy_port = free_port();
    let odoo_addr = odoo.url.trim_start_matches("http://").to_string();
    let haproxy = Haproxy::start(
        &[
            ("PROXY_BIND", format!("127.0.0.1:{proxy_port}")),
            ("ODOO_ADDR", odoo_addr.clone()),
            ("ODOO_GEVENT_ADDR", odoo_addr),
            (
                "TOWERHOOK_1_ADDR",
                format!("127.0.0.1:{}", replicas[0].port),
            ),
            (
                "TOWERHOOK_2_ADDR",
                format!("127.0.0.1:{}", replicas[1].port),
            ),
            (
                "TOWERHOOK_3_ADDR",
                format!("127.0.0.1:{}", replicas[2].port),
            ),
        ],
        proxy_port,
    );
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let url = format!("{proxy}/cetmix_tower_webhooks/{endpoint}");
    // The caller drops idle connections before HAProxy does (its `timeout
    // http-keep-alive`, 5 s): a call written to a connection HAProxy is closing at that
    // moment fails in the client, before it reaches HAProxy or towerhook.
    let caller = reqwest::Client::builder()
        .local_address(IpAddr::V4(CALLER))
        .pool_idle_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    // The rest of the site is Odoo's: its JSON-RPC answers through the same proxy.
    let version: Value = caller
        .post(format!("{proxy}/jsonrpc"))
        .json(&json!({"jsonrpc": "2.0", "method": "call", "id": 1,
                      "params": {"service": "common", "method": "version", "args": []}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        version["result"]["server_version"],
        json!("17.0"),
        "{version}"
    );

    // An impostor writing the caller's address into X-Forwarded-For is judged by its own.
    let impostor = reqwest::Client::builder()
        .local_address(IpAddr::V4(IMPOSTOR))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let forged = loop {
        let response = impostor
            .post(&url)
            .header("X-Forwarded-For", CALLER.to_string())
            .body(r#"{"seq": -1}"#)
            .send()
            .await
            .unwrap();
        // 503 until HAProxy's first health checks put replicas in rotation.
        if response.status().as_u16() != 503 {
            break response;
        }
        assert!(Instant::now() < deadline, "no replica in rotation");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        forged.status().as_u16(),
        403,
        "a forged X-Forwarded-For passed"
    );
    let forged_id = forged.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();

    // ---------------------------------------------------------------- steady load
    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let load_started = Instant::now();
    let load = {
        let (phase, stop, outcomes, caller, url) = (
            phase.clone(),
            stop.clone(),
            outcomes.clone(),
            caller.clone(),
            url.clone(),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / RATE));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut calls = Vec::new();
            let mut seq = 0;
            while !stop.load(Ordering::SeqCst) && load_started.elapsed() < MAX_LOAD {
                tick.tick().await;
                let (caller, url, outcomes) = (caller.clone(), url.clone(), outcomes.clone());
                let phase = PHASES[phase.load(Ordering::SeqCst)];
                let sent = load_started.elapsed();
                calls.push(tokio::spawn(async move {
                    let answer = post(&caller, &url, seq).await;
                    outcomes.lock().unwrap().push(Outcome {
                        seq,
                        phase,
                        sent,
                        done: load_started.elapsed(),
                        answer,
                    });
                }));
                seq += 1;
            }
            for call in calls {
                call.await.unwrap();
            }
        })
    };
    for replica in &replicas {
        wait_serving(replica, &endpoint).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // ---------------------------------------------------------------- SIGKILL
    // Odoo answers log batches only 0.4 s after creating them, so that the killed
    // replica most likely has a batch created in Odoo but not yet marked as shipped: it
    // sends it again after its restart (at least once), and the addon must absorb it.
    emulator
        .control(
            "POST",
            "/stall",
            Some(json!({"seconds": 0.4, "model": "cx.tower.webhook.log",
                        "method": "towerhook_create_logs", "phase": "after"})),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    phase.store(1, Ordering::SeqCst);
    // Six slow calls: HAProxy (leastconn) spreads them over the three replicas, so the
    // one killed has some in flight.
    let slow_url = format!("{proxy}/cetmix_tower_webhooks/{slow_endpoint}");
    let slow_calls: Vec<_> = (0..6)
        .map(|n| {
            let (caller, slow_url) = (caller.clone(), slow_url.clone());
            tokio::spawn(async move { post(&caller, &slow_url, 2_000_000 + n).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = 1;
    // SIGKILL, then reaped: the process may take a moment to die (a thread inside an
    // fsync finishes it first), and keeps its listening socket until then.
    let server = replicas[killed].server.take().unwrap();
    let killed_at = load_started.elapsed();
    tokio::task::spawn_blocking(move || server.kill())
        .await
        .unwrap();
    let dead_at = load_started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    emulator.control("DELETE", "/faults", None).await;
    replicas[killed].start();
    let back_after = wait_serving(&replicas[killed], &endpoint).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut slow = Vec::new();
    for call in slow_calls {
        slow.push(call.await.unwrap());
    }

    // ---------------------------------------------------------------- edit in Odoo
    phase.store(2, Ordering::SeqCst);
    odoo.write("cx.tower.webhook", webhook, json!({"code": code("v2")}))
        .await;
    let edited = Instant::now();
    let edited_at = load_started.elapsed();
    // Each replica is asked directly, every 50 ms, until it answers with the new code.
    let direct = Arc::new(Mutex::new(Vec::<(String, Answer)>::new()));
    let probes = replicas.iter().enumerate().map(|(index, replica)| {
        let (caller, direct) = (caller.clone(), direct.clone());
        let url = format!("{}/cetmix_tower_webhooks/{endpoint}", replica.base());
        let name = replica.name;
        async move {
            let mut probe_seq = 1_000_000 + 100_000 * index as u64;
            loop {
                let answer = post(&caller, &url, probe_seq).await;
                probe_seq += 1;
                let done = matches!(&answer, Ok((200, _, message)) if message.starts_with("v2 "));
                direct.lock().unwrap().push((name.to_string(), answer));
                if done {
                    return (name, edited.elapsed());
                }
                assert!(
                    edited.elapsed() < Duration::from_secs(30),
                    "{name} never served the edit"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let seen_edit: BTreeMap<&str, Duration> = futures_util::future::join_all(probes)
        .await
        .into_iter()
        .collect();

    // ---------------------------------------------------------------- rolling restart
    phase.store(3, Ordering::SeqCst);
    let mut rolled = Vec::new();
    // One after another, as a rolling update does: the next only once the previous one
    // is back in rotation.
    for replica in &mut replicas {
        let started = Instant::now();
        let mut server = replica.server.take().unwrap();
        let status = tokio::task::spawn_blocking(move || server.terminate())
            .await
            .unwrap();
        assert!(status.success(), "{} exited with {status:?}", replica.name);
        let stopped = started.elapsed();
        replica.start();
        let serving = wait_serving(replica, &endpoint).await;
        rolled.push((replica.name, stopped, serving));
    }
    phase.store(4, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();

    // ---------------------------------------------------------------- what the callers saw
    let mut outcomes = outcomes.lock().unwrap().clone();
    outcomes.sort_by_key(|o| o.seq);
    let mut by_phase: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for outcome in &outcomes {
        let entry = by_phase.entry(outcome.phase).or_default();
        entry.0 += 1;
        entry.1 += usize::from(outcome.failed());
    }
    eprintln!(
        "calls through the proxy ({} in {:?}):",
        outcomes.len(),
        load_started.elapsed()
    );
    for name in PHASES {
        let (calls, failed) = by_phase.get(name).copied().unwrap_or_default();
        eprintln!("  {name:<24} {calls:>5} calls, {failed} failed");
    }
    for outcome in outcomes.iter().filter(|o| o.failed()) {
        eprintln!("  failed: {outcome:?}");
    }
    eprintln!(
        "  killed {} back in rotation {back_after:?} after its restart",
        replicas[killed].name
    );
    for (name, stopped, serving) in &rolled {
        eprintln!("  {name}: SIGTERM to exit {stopped:?}, restart to taking calls {serving:?}");
    }
    eprintln!(
        "HAProxy's log of calls not answered 200 and of rotation changes: {:#?}",
        notable_lines(&haproxy)
    );

    let failed_outside_kill: Vec<_> = outcomes
        .iter()
        .filter(|o| o.failed() && o.phase != "sigkill")
        .collect();
    assert!(
        failed_outside_kill.is_empty(),
        "calls failed outside the SIGKILL: {failed_outside_kill:#?}"
    );
    // The calls the killed replica had in flight are lost to their callers: HAProxy had
    // sent them (a POST is not retried once sent), and the replica died before answering.
    // Calls sent once it was dead are not lost: a refused connection is tried on another
    // replica.
    eprintln!("SIGKILL at {killed_at:?}, process gone at {dead_at:?}");
    let failed_at_kill: Vec<_> = outcomes.iter().filter(|o| o.failed()).collect();
    for outcome in &failed_at_kill {
        assert!(
            lost_in_flight(&outcome.answer),
            "a failure at the kill that is not a call lost in flight: {outcome:?}"
        );
        assert!(
            outcome.sent <= dead_at && outcome.done >= killed_at,
            "a call failed that was not in flight while the replica died \
             ({killed_at:?} to {dead_at:?}): {outcome:?}"
        );
    }
    // The slow calls: those on the killed replica got the proxy's 502 (the call had been
    // sent, so HAProxy may not send it elsewhere), the others their answer.
    eprintln!("slow calls across the kill: {slow:?}");
    let slow_lost = slow
        .iter()
        .filter(|answer| !matches!(answer, Ok((200, Some(_), _))))
        .count();
    for answer in &slow {
        assert!(
            matches!(answer, Ok((200, Some(_), m)) if m.starts_with("slow "))
                || lost_in_flight(answer),
            "{answer:?}"
        );
    }
    assert!(
        slow_lost >= 1,
        "no slow call was in flight on the killed replica: the kill proved nothing"
    );
    // Every answer is the webhook's own, for this call, in the version served then.
    let last_edit_seen = *seen_edit.values().max().unwrap();
    for outcome in outcomes.iter().filter(|o| !o.failed()) {
        let (_, id, message) = outcome.answer.as_ref().unwrap();
        assert!(id.is_some(), "{outcome:?}");
        let version = if message.starts_with("v2 ") {
            "v2"
        } else {
            "v1"
        };
        assert_eq!(
            message,
            &format!("{version} seq {}", outcome.seq),
            "{outcome:?}"
        );
        if outcome.sent > edited_at + last_edit_seen {
            assert_eq!(
                version, "v2",
                "the old code served after every replica had the edit: {outcome:?}"
            );
        }
    }
    // The edit reached every replica within the poll interval (plus the poll's own call).
    eprintln!("edit served by each replica after: {seen_edit:?} (poll interval {POLL_SECS} s)");
    for (name, after) in &seen_edit {
        assert!(
            after.as_secs_f64() <= POLL_SECS + 1.0,
            "{name} served the edit only after {after:?}"
        );
    }

    // ---------------------------------------------------------------- what reached Odoo
    let mut answered: HashSet<String> = outcomes
        .iter()
        .filter_map(|o| o.answer.as_ref().ok().and_then(|(_, id, _)| id.clone()))
        .collect();
    for (name, answer) in direct.lock().unwrap().iter() {
        let (status, id, _) = answer
            .as_ref()
            .unwrap_or_else(|e| panic!("direct call to {name} failed: {e}"));
        assert_eq!(*status, 200, "direct call to {name}");
        answered.insert(id.clone().unwrap());
    }
    answered.insert(forged_id.clone());
    let mut slow_answered = HashSet::new();
    for answer in &slow {
        if let Ok((200, Some(id), _)) = answer {
            answered.insert(id.clone());
            slow_answered.insert(id.clone());
        }
    }
    let domain = json!([["endpoint", "in", [endpoint.clone(), slow_endpoint.clone()]]]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let logs = loop {
        let logs = emulator
            .control(
                "POST",
                "/records/cx.tower.webhook.log/search",
                Some(json!({"domain": domain,
                            "fields": ["towerhook_uid", "ip_address", "http_status"]})),
            )
            .await["records"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let uids: HashSet<&str> = logs
            .iter()
            .filter_map(|l| l["towerhook_uid"].as_str())
            .collect();
        let missing = answered
            .iter()
            .filter(|id| !uids.contains(id.as_str()))
            .count();
        if missing == 0 {
            break logs;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} answered calls have no log in Odoo",
            answered.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut in_odoo: HashMap<String, usize> = HashMap::new();
    for log in &logs {
        let uid = log["towerhook_uid"]
            .as_str()
            .unwrap_or_else(|| panic!("a log without its request id: {log}"));
        *in_odoo.entry(uid.to_string()).or_default() += 1;
        // Calls through the proxy were judged, and logged, with the caller's address.
        let expected = if uid == forged_id { IMPOSTOR } else { CALLER };
        assert_eq!(log["ip_address"], json!(expected.to_string()), "{log}");
    }
    let twice: Vec<_> = in_odoo.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "logs in Odoo more than once: {twice:?}");
    // Logs of calls whose answer never reached the caller: only calls in flight at the kill.
    let unanswered = in_odoo
        .keys()
        .filter(|uid| !answered.contains(*uid))
        .count();
    assert!(
        unanswered <= failed_at_kill.len() + slow_lost,
        "{unanswered} logs of calls nobody got an answer for"
    );
    for replica in &replicas {
        let ready: Value = reqwest::get(format!("{}/readyz", replica.base()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            ready["outbox"]["unshipped_records"],
            json!(0),
            "{}: {ready}",
            replica.name
        );
    }

    // Deliveries that reached the addon: the same request id more than once means a batch
    // was sent again; it must come from the killed replica's batch in flight only.
    let mut sent = Vec::new();
    for entry in emulator.journal("method=towerhook_create_logs").await {
        if entry["ok"] == json!(true) {
            collect_uids(&entry["args"], &mut sent);
        }
    }
    let mut deliveries: HashMap<&str, usize> = HashMap::new();
    for uid in &sent {
        if in_odoo.contains_key(uid) {
            *deliveries.entry(uid.as_str()).or_default() += 1;
        }
    }
    let duplicated: Vec<&str> = deliveries
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(uid, _)| *uid)
        .collect();
    let served_by: Vec<HashSet<String>> = replicas.iter().map(Replica::request_ids).collect();
    eprintln!(
        "logs in Odoo: {} ({} answered calls, {unanswered} unanswered at the kill); \
         deliveries to the addon: {}, {} request id(s) delivered twice or more, absorbed",
        logs.len(),
        answered.len(),
        deliveries.values().sum::<usize>(),
        duplicated.len()
    );
    eprintln!(
        "calls per replica: {:?}",
        replicas
            .iter()
            .zip(&served_by)
            .map(|(r, ids)| (r.name, ids.len()))
            .collect::<Vec<_>>()
    );
    assert!(
        duplicated.len() <= BATCH_SIZE,
        "{} duplicates: more than the one batch in flight at the kill",
        duplicated.len()
    );
    // The slow calls that were answered were answered by the replicas that lived.
    for id in &slow_answered {
        assert!(
            !served_by[killed].contains(id),
            "{id}: answered by the killed replica?"
        );
    }
    for uid in &duplicated {
        assert!(
            served_by[killed].contains(*uid),
            "{uid} was delivered twice but not by the killed replica"
        );
    }
    // Each replica served calls both before and after its restarts (the balance worked).
    for (replica, ids) in replicas.iter().zip(&served_by) {
        assert!(
            ids.len() > 20,
            "{} served only {} calls",
            replica.name,
            ids.len()
        );
    }
    drop(haproxy);
    odoo.cleanup().await;
}
