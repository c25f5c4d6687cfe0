//! The duplicate guard with several replicas: each replica remembers the ids it saw, so
//! the repeats of a delivery must reach the same replica. deploy/haproxy.cfg routes calls
//! by their delivery id (a header, or `id` in a JSON body) with a consistent hash; here two
//! `towerhook serve` replicas (and a third address where nothing listens) sit behind
//! HAProxy started with that very file, and every delivery, sent three times, runs once.

mod common;

use std::time::{Duration, Instant};

use common::haproxy::{Haproxy, free_port};
use common::recorder::Recorder;
use common::{BinaryServer, answer, read_logs};

#[tokio::test]
async fn haproxy_routes_each_delivery_id_to_one_replica() {
    common::init();
    let recorder = Recorder::start();
    let code = |what: &str| {
        format!(
            "{}\n    result = {{'exit_code': 0, 'message': 'ran'}}",
            recorder.call(what)
        )
    };
    let definitions = tempfile::tempdir().unwrap();
    std::fs::write(
        definitions.path().join("definitions.yaml"),
        format!(
            "- {{cetmix_tower_model: webhook_authenticator, reference: open, name: Open, \
             code: 'result = {{\"allowed\": True}}'}}\n\
             - cetmix_tower_model: webhook\n  reference: github\n  name: GitHub\n  \
             authenticator_id: open\n  endpoint: github\n  \
             dedup_key: header:X-GitHub-Delivery\n  code: |\n    {}\n\
             - cetmix_tower_model: webhook\n  reference: stripe\n  name: Stripe\n  \
             authenticator_id: open\n  endpoint: stripe\n  dedup_key: json:id\n  \
             code: |\n    {}\n",
            code("headers.get('X-Github-Delivery')"),
            code("payload['id']"),
        ),
    )
    .unwrap();
    let yaml_dir = definitions.path().to_str().unwrap().to_string();
    let env = [
        ("TOWERHOOK_YAML_DIR", yaml_dir.as_str()),
        ("TOWERHOOK_PYTHON_WORKERS", "1"),
        ("TOWERHOOK_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    let data = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let replicas = [
        BinaryServer::start_in(data[0].path(), &env),
        BinaryServer::start_in(data[1].path(), &env),
    ];
    let proxy_port = free_port();
    let nowhere = format!("127.0.0.1:{}", free_port());
    let haproxy = Haproxy::start(
        &[
            ("PROXY_BIND", format!("127.0.0.1:{proxy_port}")),
            ("ODOO_ADDR", nowhere.clone()),
            ("ODOO_GEVENT_ADDR", nowhere.clone()),
            (
                "TOWERHOOK_1_ADDR",
                format!("127.0.0.1:{}", replicas[0].port),
            ),
            (
                "TOWERHOOK_2_ADDR",
                format!("127.0.0.1:{}", replicas[1].port),
            ),
            // A replica that is gone: its ids go to the others.
            ("TOWERHOOK_3_ADDR", nowhere),
        ],
        proxy_port,
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while !haproxy
        .lines()
        .iter()
        .any(|line| line.contains("towerhook_by_delivery_id/towerhook3 is DOWN"))
    {
        assert!(Instant::now() < deadline, "{:?}", haproxy.lines());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let client = reqwest::Client::new();
    let url =
        |endpoint: &str| format!("http://127.0.0.1:{proxy_port}/cetmix_tower_webhooks/{endpoint}");

    let ids: Vec<String> = (1..=16).map(|n| format!("delivery-{n}")).collect();
    for round in 0..3 {
        // Each round in another order: a balancer that ignores the id would send the
        // repeats elsewhere than the first (round robin alternates the replicas).
        let mut order = ids.clone();
        match round {
            1 => order.reverse(),
            2 => order.rotate_left(1),
            _ => {}
        }
        for id in &order {
            let response = client
                .post(url("github"))
                .header("X-GitHub-Delivery", id)
                .body("{}")
                .send()
                .await
                .unwrap();
            let (status, _, message) = answer(response).await;
            let expected = if round == 0 {
                "ran"
            } else {
                "Duplicate delivery ignored"
            };
            assert_eq!((status, message.as_str().unwrap()), (200, expected), "{id}");
        }
    }
    for round in 0..2 {
        let order: Vec<u32> = if round == 0 {
            (1..=6).collect()
        } else {
            (1..=6).rev().collect()
        };
        for n in order {
            let body = format!("{{\"id\": \"evt_{n}\", \"type\": \"charge.succeeded\"}}");
            let response = client.post(url("stripe")).body(body).send().await.unwrap();
            let (status, _, message) = answer(response).await;
            let expected = if round == 0 {
                "ran"
            } else {
                "Duplicate delivery ignored"
            };
            assert_eq!(
                (status, message.as_str().unwrap()),
                (200, expected),
                "evt_{n}"
            );
        }
    }
    let mut hits = recorder.hits();
    hits.sort();
    let mut expected: Vec<String> = ids.clone();
    expected.extend((1..=6).map(|n| format!("evt_{n}")));
    expected.sort();
    assert_eq!(hits, expected, "a delivery ran on more than one replica");
    // Both replicas took deliveries: the ids are spread, not all sent to one.
    let per_replica: Vec<usize> = data
        .iter()
        .map(|dir| {
            read_logs(&dir.path().join("towerhook.sqlite3"))
                .iter()
                .filter(|log| log.result_message.as_deref() == Some("ran"))
                .count()
        })
        .collect();
    eprintln!("runs per replica: {per_replica:?}");
    assert!(per_replica.iter().all(|&runs| runs > 0), "{per_replica:?}");
    drop(replicas);
}
