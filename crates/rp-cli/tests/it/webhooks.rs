//! `rp serve add-webhook` and friends, and the outbox's promise across a SIGKILL: a state
//! change committed while `rp serve` is sending (or not running at all) is delivered after a
//! restart, duplicates only under the same `webhook-id` with the same body.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::gate_cmd::Sim;
use crate::{stderr, stdout};

/// One request the receiver got: `webhook-id`, timestamp, signature, body.
type Got = (String, String, String, Vec<u8>);

/// A webhook receiver on its own runtime. While `hang` is set it takes requests and never
/// answers (a send in flight); otherwise it answers 204.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
    hang: Arc<AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let hang = Arc::new(AtomicBool::new(true));
        let (keep, hold) = (Arc::clone(&got), Arc::clone(&hang));
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (keep, hold) = (Arc::clone(&keep), Arc::clone(&hold));
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let hanging = hold.load(Ordering::SeqCst);
                    keep.lock().unwrap().push((
                        header("webhook-id"),
                        header("webhook-timestamp"),
                        header("webhook-signature"),
                        body.to_vec(),
                    ));
                    if hanging {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    StatusCode::NO_CONTENT
                }
            }),
        );
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url,
            got,
            hang,
            _runtime: runtime,
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `check`, polling every 100 ms, at most `limit`.
fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !check() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_change_is_delivered_after_rp_serve_is_killed_mid_send() {
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let receiver = Receiver::start();

    // Registered from the command line: the secret is printed once, never listed.
    let added = sim.rp_in(&ledger, &["serve", "add-webhook", &receiver.url]);
    assert!(added.status.success(), "{}", stderr(&added));
    let secret = stdout(&added)
        .lines()
        .find_map(|l| l.strip_prefix("signing secret (shown once): "))
        .unwrap()
        .trim()
        .to_owned();
    assert!(secret.starts_with("whsec_"));
    let listed = sim.rp_in(&ledger, &["serve", "webhooks"]);
    assert!(
        stdout(&listed).contains(&receiver.url),
        "{}",
        stdout(&listed)
    );
    assert!(!stdout(&listed).contains("whsec_"));
    let refused = sim.rp_in(
        &ledger,
        &["serve", "add-webhook", "http://shop.example/hooks"],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("unencrypted"),
        "{}",
        stderr(&refused)
    );

    let serve_args = |port: u16| -> Vec<String> {
        [
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--webhook-timeout",
            "1",
            "--reconcile-every",
            "1",
            "--overdue-after",
            "1",
        ]
        .iter()
        .map(ToString::to_string)
        .collect()
    };
    let args = serve_args(free_port());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut serve = sim.spawn_in(&ledger, &args);

    // A payout from the command line: its changes land in the ledger with their deliveries.
    let paid = sim.rp_in(
        &ledger,
        &[
            "payout",
            "--payment-id",
            "wh-kill",
            "--phone",
            "+77015101001",
            "--amount",
            "10",
            "--customer-id",
            "c-1",
            "--wait",
            "20",
        ],
    );
    assert!(paid.status.success(), "{}{}", stdout(&paid), stderr(&paid));
    // rp serve sends the first one; the receiver holds it: the send is in flight.
    wait_until("a send in flight", Duration::from_secs(20), || {
        !receiver.got.lock().unwrap().is_empty()
    });
    serve.kill().unwrap();
    serve.wait().unwrap();
    let first_id = receiver.got.lock().unwrap()[0].0.clone();

    // Restarted, and the receiver answering now: everything arrives, once the dead
    // process's claim ran out (3 timeouts + 5 s).
    receiver.hang.store(false, Ordering::SeqCst);
    let args = serve_args(free_port());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut serve = sim.spawn_in(&ledger, &args);
    let payout_events = || {
        let shown = sim.rp_in(&ledger, &["payouts", "show", "wh-kill", "--json"]);
        serde_json::from_str::<Value>(&stdout(&shown)).unwrap_or(Value::Null)
    };
    wait_until("every change delivered", Duration::from_secs(40), || {
        let accepted: BTreeSet<String> = receiver
            .got
            .lock()
            .unwrap()
            .iter()
            .skip(1)
            .filter_map(|(_, _, _, body)| {
                let body: Value = serde_json::from_slice(body).ok()?;
                Some(body["data"]["state"].as_str()?.to_owned())
            })
            .collect();
        accepted.contains("success")
    });
    serve.kill().unwrap();
    serve.wait().unwrap();

    let got = receiver.got.lock().unwrap().clone();
    let mut bodies: BTreeMap<&str, BTreeSet<&[u8]>> = BTreeMap::new();
    for (id, timestamp, signature, body) in &got {
        let timestamp: i64 = timestamp.parse().unwrap();
        assert_eq!(
            &rp_console::webhooks::signature(&secret, id, timestamp, body).unwrap(),
            signature
        );
        bodies.entry(id).or_default().insert(body);
    }
    assert!(
        bodies.values().all(|b| b.len() == 1),
        "one body per webhook-id"
    );
    assert!(
        got.iter().skip(1).any(|(id, ..)| *id == first_id),
        "the send cut off by the kill is sent again under its ID"
    );
    // One webhook-id per state change of the payout.
    let shown = payout_events();
    let events = shown["events"].as_array().cloned().unwrap_or_default();
    let changes = events
        .iter()
        .filter(|e| e["previous"] != e["state"])
        .count();
    assert!(changes >= 2, "{shown}");
    assert_eq!(bodies.len(), changes, "{shown}");
}
