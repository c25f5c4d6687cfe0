//! Nothing one webhook does reaches another, through the server: one test per finding of
//! the isolation issue. Each runs a victim webhook, the attack (refused, or harmless), and
//! the victim again, which must answer exactly as before. Outgoing HTTP goes to servers
//! of the test on 127.0.0.1 only.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::odoo::{DEMO_KEY, SERVICE_LOGIN, TestOdoo, spawn_app_on};
use common::{BinaryServer, answer, spawn_app_with};
use serde_json::{Value, json};

const OPEN: &str = r#"- {cetmix_tower_model: webhook_authenticator, reference: open, name: Open, code: "result = {'allowed': True}"}
"#;

/// YAML for webhooks behind the open authenticator: (endpoint, code).
fn webhooks(hooks: &[(&str, &str)]) -> String {
    let mut yaml = OPEN.to_string();
    for (endpoint, code) in hooks {
        yaml.push_str(&format!(
            "- cetmix_tower_model: webhook\n  reference: {endpoint}\n  name: {endpoint}\n  \
             authenticator_id: open\n  endpoint: {endpoint}\n  code: {code}\n",
            code = serde_json::to_string(code).unwrap(),
        ));
    }
    yaml
}

/// POST `{}` to `url`: the status and the message as text. A call that takes 20 s
/// (a snippet thread blocked for good) fails the test rather than hanging it.
async fn post_url(url: String) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(url)
        .timeout(Duration::from_secs(20))
        .body("{}")
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    let text = match message {
        Value::String(text) => text,
        other => other.to_string(),
    };
    (status, text)
}

/// An HTTP server on 127.0.0.1 answering every request with `body` (and closing); it
/// records the head of each request it received.
struct Upstream {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    fn start(body: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&heads);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let recorded = Arc::clone(&recorded);
                std::thread::spawn(move || serve(stream, body, &recorded));
            }
        });
        Self { port, heads }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

fn serve(mut stream: TcpStream, body: &str, recorded: &Mutex<Vec<String>>) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
    let head = String::from_utf8_lossy(&received).into_owned();
    recorded.lock().unwrap().push(head);
    let _ = stream.write_all(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
}

/// A port of 127.0.0.1 nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A server that accepts connections and never answers; they stay open while it lives.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        for stream in listener.incoming().flatten() {
            kept.push(stream);
        }
    });
    port
}

/// Runs `victim`, then each attack (expected to fail with a message containing the
/// text), then `victim` again; returns the victim's answer, the same both times.
async fn victim_unaffected(
    url: &dyn Fn(&str) -> String,
    victim: &str,
    attacks: &[(&str, &str)],
) -> (u16, String) {
    let before = post_url(url(victim)).await;
    assert_eq!(before.0, 200, "the victim fails on its own: {}", before.1);
    for (attack, expected) in attacks {
        let (status, message) = post_url(url(attack)).await;
        assert_eq!(status, 500, "{attack}: {message}");
        assert!(
            message.contains(expected),
            "{attack}: {message:?} lacks {expected:?}"
        );
    }
    let after = post_url(url(victim)).await;
    assert_eq!(after, before, "the attacks changed what the victim gets");
    before
}

/// Finding 1: a response led to urllib3's module-level `pool_classes_by_scheme`, whose
/// change redirected every later request of every webhook.
#[tokio::test]
async fn a_response_leads_to_no_connection_pool() {
    let upstream = Upstream::start("from the real upstream");
    let get = format!("r = requests.get('{}')\n", upstream.url("/"));
    let victim = format!("{get}result = {{'exit_code': 0, 'message': r.text}}");
    let swap =
        format!("{get}m = r.connection.poolmanager.pool_classes_by_scheme\nm['http'] = m['https']");
    let raw = format!("{get}x = r.raw._pool.ConnectionCls");
    let request = format!("{get}x = r.request.headers");
    let yaml = webhooks(&[
        ("victim", &victim),
        ("swap", &swap),
        ("raw", &raw),
        ("request", &request),
    ]);
    let app = spawn_app_with(&yaml, |_| {}).await;
    let (_, message) = victim_unaffected(
        &|endpoint| app.url(endpoint),
        "victim",
        &[
            ("swap", "'Response' object has no attribute 'connection'"),
            ("raw", "'Response' object has no attribute 'raw'"),
            ("request", "'Response' object has no attribute 'request'"),
        ],
    )
    .await;
    assert_eq!(message, "from the real upstream");
    // Every request of the victim and the attacks reached the upstream, plainly.
    let heads = upstream.heads();
    assert_eq!(heads.len(), 5);
    assert!(heads.iter().all(|head| head.starts_with("GET / HTTP/1.1")));
}

/// Finding 2: a failed request's exception led to the pool (a lock whose second acquire
/// blocks a thread forever), its connection class (raw sockets) and the socket options of
/// every later connection.
#[tokio::test]
async fn a_failed_request_leads_to_no_pool_lock_or_socket() {
    let upstream = Upstream::start("still reachable");
    let victim = format!(
        "r = requests.get('{}')\nresult = {{'exit_code': 0, 'message': r.text}}",
        upstream.url("/")
    );
    let failing = format!(
        "try:\n    requests.get('http://127.0.0.1:{}/')\nexcept Exception as e:\n",
        closed_port()
    );
    let timing_out = format!(
        "try:\n    requests.get('http://127.0.0.1:{}/', timeout=0.2)\nexcept Exception as e:\n",
        silent_server()
    );
    let options = format!(
        "{failing}    e.args[0].pool.ConnectionCls.default_socket_options.append((0, 12345, 1))"
    );
    let lock = format!("{failing}    e.args[0].pool.pool.mutex.acquire()");
    let lock_twice =
        format!("{timing_out}    m = e.args[0].pool.pool.mutex\n    m.acquire()\n    m.acquire()");
    let socket = format!("{failing}    e.args[0].reason.conn.sock.send(b'x')");
    let yaml = webhooks(&[
        ("victim", &victim),
        ("options", &options),
        ("lock", &lock),
        ("lock_twice", &lock_twice),
        ("socket", &socket),
    ]);
    let app = spawn_app_with(&yaml, |s| {
        s.python_threads = 2;
        s.snippet_timeout_secs = 5.0;
    })
    .await;
    let (_, message) = victim_unaffected(
        &|endpoint| app.url(endpoint),
        "victim",
        &[
            ("options", "'str' object has no attribute 'pool'"),
            ("lock", "'str' object has no attribute 'pool'"),
            ("lock_twice", "'str' object has no attribute 'pool'"),
            ("socket", "'str' object has no attribute 'reason'"),
        ],
    )
    .await;
    assert_eq!(message, "still reachable");
    // Both snippet threads still serve (a lock acquired twice would hold its thread in C,
    // out of the time limit's reach, and the calls would time out).
    for _ in 0..4 {
        assert_eq!(
            post_url(app.url("victim")).await,
            (200, "still reachable".into())
        );
    }
}

/// Finding 3: requests read `.netrc` and the proxy variables of the environment (their
/// credentials showed in a failed request's headers), and `verify=PATH` told whether a
/// host path exists. The real binary, with such an environment.
#[tokio::test]
async fn requests_ignore_netrc_proxy_variables_and_verify_paths() {
    let upstream = Upstream::start("direct");
    let env_proxy = Upstream::start("through the environment's proxy");
    let home = tempfile::tempdir().unwrap();
    let netrc = home.path().join(".netrc");
    std::fs::write(
        &netrc,
        "machine 127.0.0.1 login netrc-user password netrc-secret\n",
    )
    .unwrap();
    let proxy = format!(
        "http://proxy-user:proxy-secret@127.0.0.1:{}",
        env_proxy.port
    );
    let victim = format!(
        "r = requests.get('{}')\nresult = {{'exit_code': 0, 'message': r.text}}",
        upstream.url("/")
    );
    let failing = format!(
        "try:\n    requests.get('http://127.0.0.1:{}/')\nexcept Exception as e:\n",
        closed_port()
    );
    let headers = format!("{failing}    x = e.request.headers['Authorization']");
    let shown = format!("{failing}    raise Exception(repr(e) + str(e.args))");
    let existing = format!(
        "requests.get('{}', verify='/etc/passwd')",
        upstream.url("/")
    );
    let missing = format!(
        "requests.get('{}', verify='/no/such/file')",
        upstream.url("/")
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hooks.yaml"),
        webhooks(&[
            ("victim", &victim),
            ("headers", &headers),
            ("shown", &shown),
            ("existing", &existing),
            ("missing", &missing),
        ]),
    )
    .unwrap();
    let server = BinaryServer::start(&[
        ("TOWERHOOK_YAML_DIR", dir.path().to_str().unwrap()),
        ("HOME", home.path().to_str().unwrap()),
        ("NETRC", netrc.to_str().unwrap()),
        ("HTTP_PROXY", &proxy),
        ("http_proxy", &proxy),
        ("HTTPS_PROXY", &proxy),
        ("ALL_PROXY", &proxy),
        ("NO_PROXY", ""),
        ("REQUESTS_CA_BUNDLE", "/no/such/bundle.pem"),
    ]);
    let (_, message) = victim_unaffected(
        &|endpoint| server.url(endpoint),
        "victim",
        &[
            ("headers", "'NoneType' object has no attribute 'headers'"),
            ("shown", "Connection refused"),
            ("existing", "verify must be True or False"),
            ("missing", "verify must be True or False"),
        ],
    )
    .await;
    assert_eq!(message, "direct");
    // Straight to the upstream, without the environment's proxy or netrc credentials.
    assert!(env_proxy.heads().is_empty(), "{:?}", env_proxy.heads());
    for head in upstream.heads() {
        assert!(head.starts_with("GET / HTTP/1.1"), "{head}");
        assert!(
            !head.to_ascii_lowercase().contains("authorization"),
            "{head}"
        );
    }
    // The failure shows neither secret; a path, existing or not, gets the same answer.
    let (_, shown) = post_url(server.url("shown")).await;
    assert!(!shown.contains("secret"), "{shown}");
    assert_eq!(
        post_url(server.url("existing")).await,
        post_url(server.url("missing")).await
    );
}

/// Finding 3, what replaces the environment: towerhook's own `outbound_proxy` (its
/// credentials out of the snippets' reach) and `outbound_timeout_secs`, set as variables of
/// the real binary.
#[tokio::test]
async fn the_outbound_proxy_and_default_timeout_are_towerhook_settings() {
    let upstream = Upstream::start("direct");
    let proxy = Upstream::start("through towerhook's proxy");
    let silent = silent_server();
    let victim = format!(
        "r = requests.get('{}')\nresult = {{'exit_code': 0, 'message': r.text}}",
        upstream.url("/target")
    );
    let no_timeout = format!("requests.get('http://127.0.0.1:{silent}/')");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hooks.yaml"),
        webhooks(&[("victim", &victim), ("no_timeout", &no_timeout)]),
    )
    .unwrap();
    let yaml_dir = dir.path().to_str().unwrap();

    // A request without a timeout gets towerhook's (0.5 s), not the snippet's 30 s.
    let server = BinaryServer::start(&[
        ("TOWERHOOK_YAML_DIR", yaml_dir),
        ("TOWERHOOK_OUTBOUND_TIMEOUT_SECS", "0.5"),
    ]);
    let started = Instant::now();
    let (status, message) = post_url(server.url("no_timeout")).await;
    assert_eq!(status, 500, "{message}");
    assert!(message.contains("ReadTimeout"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let proxy_url = format!("http://op-user:pr0xy-s3cret@127.0.0.1:{}", proxy.port);
    let server = BinaryServer::start(&[
        ("TOWERHOOK_YAML_DIR", yaml_dir),
        ("TOWERHOOK_OUTBOUND_PROXY", &proxy_url),
    ]);
    assert_eq!(
        post_url(server.url("victim")).await,
        (200, "through towerhook's proxy".into())
    );
    assert!(upstream.heads().is_empty());
    let heads = proxy.heads();
    assert_eq!(heads.len(), 1);
    assert!(
        heads[0].starts_with(&format!("GET {} HTTP/1.1", upstream.url("/target"))),
        "{}",
        heads[0]
    );
    // base64("op-user:pr0xy-s3cret")
    assert!(
        heads[0].contains("Proxy-Authorization: Basic b3AtdXNlcjpwcjB4eS1zM2NyZXQ="),
        "{}",
        heads[0]
    );

    // A proxy that refuses connections: the error names it, never its credentials.
    let dead = format!("http://op-user:pr0xy-s3cret@127.0.0.1:{}", closed_port());
    let server = BinaryServer::start(&[
        ("TOWERHOOK_YAML_DIR", yaml_dir),
        ("TOWERHOOK_OUTBOUND_PROXY", &dead),
    ]);
    let (status, message) = post_url(server.url("victim")).await;
    assert_eq!(status, 500, "{message}");
    assert!(message.contains("ProxyError"), "{message}");
    assert!(
        !message.contains("pr0xy-s3cret") && !message.contains("op-user"),
        "{message}"
    );
}

/// Finding 4: pytz zones, `rrulestr`'s maps, `DNSException.supp_kwargs` and dateutil's
/// offset cache lock were state every call shares: a channel between webhooks.
#[tokio::test]
async fn library_state_is_no_channel_between_webhooks() {
    let victim = r#"
kolkata = timezone('Asia/Kolkata').localize(datetime.datetime(2026, 1, 1, 12))
daily = dateutil.rrule.rrulestr('FREQ=DAILY;COUNT=3', dtstart=datetime.datetime(2026, 1, 1))
try:
    dns.exception.DNSException(x=1)
    kwargs = 'accepted'
except Exception as e:
    kwargs = repr(e)
offset = dateutil.parser.parse('2026-01-01T10:00:00+02:00')
result = {'exit_code': 0, 'message': '%s | %s | %s | %s' % (
    kolkata.strftime('%z'), [d.day for d in daily], kwargs, offset.isoformat())}
"#;
    let tz = "tz = timezone('Asia/Kolkata')\n";
    let transitions = format!("{tz}tz._transition_info[-1] = tz._transition_info[0]");
    let tzinfos = format!("{tz}tz._tzinfos[tz._transition_info[-1]] = tz");
    let cleared = format!("{tz}tz._utc_transition_times.clear()");
    let yaml = webhooks(&[
        ("victim", victim),
        ("transitions", &transitions),
        ("tzinfos", &tzinfos),
        ("cleared", &cleared),
        (
            "freq_map",
            "dateutil.rrule.rrulestr._freq_map['DAILY'] = dateutil.rrule.YEARLY",
        ),
        (
            "supp_kwargs",
            "dns.exception.DNSException.supp_kwargs.add('x')",
        ),
        (
            "offset_lock",
            "d = dateutil.parser.parse('2026-01-01T10:00:00+02:00')\nd.tzinfo._cache_lock.acquire()",
        ),
        (
            "rule_lock",
            "r = dateutil.rrule.rrule(dateutil.rrule.DAILY, count=2, cache=True)\nlist(r)\nr._cache_lock.acquire()",
        ),
    ]);
    let app = spawn_app_with(&yaml, |s| s.snippet_timeout_secs = 5.0).await;
    let (_, message) = victim_unaffected(
        &|endpoint| app.url(endpoint),
        "victim",
        &[
            (
                "transitions",
                "'tuple' object does not support item assignment",
            ),
            (
                "tzinfos",
                "'mappingproxy' object does not support item assignment",
            ),
            ("cleared", "'tuple' object has no attribute 'clear'"),
            ("freq_map", "'function' object has no attribute '_freq_map'"),
            (
                "supp_kwargs",
                "type object 'DNSException' has no attribute 'supp_kwargs'",
            ),
            (
                "offset_lock",
                "'tzoffset' object has no attribute '_cache_lock'",
            ),
            ("rule_lock", "'rrule' object has no attribute '_cache_lock'"),
        ],
    )
    .await;
    assert_eq!(
        message,
        "+0530 | [1, 2, 3] | TypeError('DNSException() takes no keyword arguments') | \
         2026-01-01T10:00:00+02:00"
    );
}

/// A secret `ci_token` in the emulator with the companion addon (towerhook's service user
/// in its group), and a webhook that uses it.
async fn odoo_with_a_secret() -> Option<TestOdoo> {
    let odoo = TestOdoo::start().await;
    let emulator = odoo.emulator()?;
    emulator
        .control(
            "POST",
            "/addons",
            Some(json!({"cetmix_tower_webhook_sidecar": {"members": [SERVICE_LOGIN]}})),
        )
        .await;
    let key = odoo
        .create(
            "cx.tower.key",
            json!({"name": "CI token", "reference": "ci_token", "key_type": "s"}),
        )
        .await;
    odoo.create(
        "cx.tower.key.value",
        json!({"key_id": key, "secret_value": "s3cr3t-token"}),
    )
    .await;
    odoo.open_webhook(
        "guarded",
        "result = {'exit_code': 0, 'message': 'uses %s' % #!cxtower.secret.ci_token!#}",
        1,
    )
    .await;
    Some(odoo)
}

/// Finding 5: a superuser webhook (running as the service user, in the addon's group)
/// called `towerhook_secret_values` for every webhook and read the secret models.
#[tokio::test]
async fn odoo_secrets_stay_out_of_reach_of_snippets() {
    let Some(odoo) = odoo_with_a_secret().await else {
        return;
    };
    let emulator = odoo.emulator().unwrap();
    let steal = r#"
hooks = env['cx.tower.webhook'].search([])
values = env['cx.tower.webhook'].towerhook_secret_values(hooks.ids + [987654], [987654])
result = {'exit_code': 0, 'message': str(values)}
"#;
    odoo.open_webhook("steal", steal, 1).await;
    odoo.open_webhook(
        "keys",
        "result = {'exit_code': 0, 'message': str(env['cx.tower.key.value'].search_read([]))}",
        1,
    )
    .await;
    odoo.open_webhook(
        "vault",
        "result = {'exit_code': 0, 'message': str(env['cx.tower.vault'].search_read([]))}",
        1,
    )
    .await;
    odoo.open_webhook(
        "victim",
        "result = {'exit_code': 0, 'message': 'servers %s' % tower_servers.search_count([])}",
        1,
    )
    .await;
    let app = spawn_app_on(&odoo, |_| {}).await;
    // The test made the key and its value (towerhook's own towerhook_secret_values calls,
    // which may come at any time, never name the id 987654 the attack adds).
    let journal = async |query: &str| emulator.journal(query).await.len();
    let keys = journal("model=cx.tower.key").await;
    let values = journal("model=cx.tower.key.value").await;
    let (_, message) = victim_unaffected(
        &|endpoint| app.url(&odoo.name(endpoint)),
        "victim",
        &[
            (
                "steal",
                "towerhook's own methods (such as towerhook_secret_values) cannot be called",
            ),
            (
                "keys",
                "You are not allowed to access 'cx.tower.key.value' records",
            ),
            (
                "vault",
                "You are not allowed to access 'cx.tower.vault' records",
            ),
        ],
    )
    .await;
    assert!(message.starts_with("servers "), "{message}");
    // The snippets' attempts sent nothing to Odoo.
    let asked = emulator
        .journal("model=cx.tower.webhook&method=towerhook_secret_values")
        .await;
    assert!(!asked.is_empty(), "towerhook itself asks for the secrets");
    assert!(
        asked
            .iter()
            .all(|entry| !entry["args"].to_string().contains("987654")),
        "{asked:?}"
    );
    assert_eq!(journal("model=cx.tower.key").await, keys);
    assert_eq!(journal("model=cx.tower.key.value").await, values);
    assert_eq!(journal("model=cx.tower.vault").await, 0);
    // The webhook that uses the secret still gets it (masked in its answer).
    assert_eq!(
        post_url(app.url(&odoo.name("guarded"))).await,
        (200, "uses *****".into())
    );
}

/// Finding 5: a snippet that parked its `env` in shared library state let a concurrent
/// call of another webhook use it (with the first one's rights) while the first ran.
#[tokio::test]
async fn odoo_objects_parked_for_another_call_serve_nobody() {
    let odoo = TestOdoo::start().await;
    if odoo.emulator().is_none() {
        return;
    }
    let owner = r#"
parked = []
for name, park in [
    ('rrulestr', lambda: dateutil.rrule.rrulestr._weekday_map.update({'ENV': env})),
    ('pytz', lambda: timezone('Asia/Kolkata')._tzinfos.update({'ENV': env})),
    ('dns', lambda: dns.exception.DNSException.supp_kwargs.add(env)),
]:
    try:
        park()
        parked.append(name)
    except Exception:
        pass
time.sleep(1.5)
result = {'exit_code': 0, 'message': 'parked in %s; %s servers' % (parked, tower_servers.search_count([]))}
"#;
    let thief = r#"
found = []
for name, get in [
    ('rrulestr', lambda: dateutil.rrule.rrulestr._weekday_map['ENV']),
    ('pytz', lambda: timezone('Asia/Kolkata')._tzinfos['ENV']),
    ('dns', lambda: [x for x in dns.exception.DNSException.supp_kwargs if not isinstance(x, str)][0]),
]:
    try:
        found.append('%s: %s' % (name, get()['cx.tower.server'].search_count([])))
    except Exception:
        found.append('%s: -' % name)
result = {'exit_code': 0, 'message': ' | '.join(found)}
"#;
    odoo.open_webhook("owner", owner, 1).await;
    // demo (uid 5) may not read servers: had it used the owner's env, it would have.
    odoo.open_webhook("thief", thief, 5).await;
    let app = spawn_app_on(&odoo, |s| {
        s.run_as_users.insert("demo".into(), DEMO_KEY.into());
        s.python_threads = 2;
    })
    .await;
    let running = tokio::spawn(post_url(app.url(&odoo.name("owner"))));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        post_url(app.url(&odoo.name("thief"))).await,
        (200, "rrulestr: - | pytz: - | dns: -".into())
    );
    let (status, message) = running.await.unwrap();
    assert_eq!(status, 200, "{message}");
    assert!(message.starts_with("parked in []; "), "{message}");
}

/// What works in the module keeps working: a signature check of the raw body, json,
/// dates with pytz and dateutil, a request to another system, and the language.
#[tokio::test]
async fn what_works_in_the_module_keeps_working() {
    let upstream = Upstream::start("{\"queued\": true}");
    let code = format!(
        r#"
expected = hmac.new(b'key', json.dumps(payload, sort_keys=True).encode(), hashlib.sha256).hexdigest()
valid = hmac.compare_digest(expected, hmac.new(b'key', b'{{"a": 2}}', 'sha256').hexdigest())
due = timezone('Europe/Brussels').localize(datetime.datetime(2026, 1, 31, 9)) + dateutil.relativedelta.relativedelta(months=1)
days = [d.day for d in dateutil.rrule.rrule(dateutil.rrule.WEEKLY, count=2, dtstart=due.replace(tzinfo=None))]
sent = requests.post('{url}', json={{'due': due.isoformat()}}, timeout=5)
match payload.get('a'):
    case 1:
        size = 'one'
    case n if (double := n * 2) > 3:
        size = f'big {{double}}'
    case _:
        size = 'small'
result = {{'exit_code': 0, 'message': '%s %s %s %s %s %s' % (valid, due.strftime('%Y-%m-%d %z'), days,
    sent.json()['queued'], size, float_compare(0.1 + 0.2, 0.3, precision_digits=6))}}
"#,
        url = upstream.url("/queue")
    );
    let app = spawn_app_with(&webhooks(&[("module", &code)]), |_| {}).await;
    let response = reqwest::Client::new()
        .post(app.url("module"))
        .body(r#"{"a": 2}"#)
        .send()
        .await
        .unwrap();
    let (status, _, message) = answer(response).await;
    assert_eq!(
        (status, message),
        (200, json!("True 2026-02-28 +0100 [28, 7] True big 4 0"))
    );
    assert!(upstream.heads()[0].starts_with("POST /queue HTTP/1.1"));
}
