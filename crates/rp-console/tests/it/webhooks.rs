//! Webhooks against a real `serve`, simulator and receiver: every state change pushed,
//! signed (checked here with our own HMAC, not the crate's), in order per payout; a receiver
//! that fails and then recovers gets every event, duplicates only under the same ID.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use rp_ledger::DeliveryState;
use rp_model::PaymentId;
use serde_json::Value;
use sha2::Sha256;

use crate::api::{PAY_KEY, call, payout, post_payout, with_keys};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) id: String,
    pub(crate) timestamp: String,
    pub(crate) signature: String,
    pub(crate) raw: Vec<u8>,
    pub(crate) body: Value,
    /// Whether the receiver answered 2xx.
    pub(crate) accepted: bool,
}

/// A webhook endpoint on 127.0.0.1:0 that keeps what it gets; it answers 503 while `failing`.
pub(crate) struct Receiver {
    pub(crate) url: String,
    pub(crate) got: Arc<Mutex<Vec<Received>>>,
    pub(crate) failing: Arc<AtomicBool>,
}

/// A served desk with `receiver` (failing or not) registered as its webhook endpoint.
pub(crate) async fn serve_with_receiver(
    failing: bool,
) -> (crate::Server, Receiver, rp_ledger::WebhookEndpoint) {
    let server = with_keys().await;
    let receiver = Receiver::start(failing).await;
    let secret = rp_console::webhooks::new_secret().unwrap();
    let endpoint = server
        .desk
        .webhooks()
        .add_endpoint(&receiver.url, &secret)
        .await
        .unwrap();
    (server, receiver, endpoint)
}

impl Receiver {
    pub(crate) async fn start(failing: bool) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let failing = Arc::new(AtomicBool::new(failing));
        let (keep, fail) = (Arc::clone(&got), Arc::clone(&failing));
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (keep, fail) = (Arc::clone(&keep), Arc::clone(&fail));
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let accepted = !fail.load(Ordering::SeqCst);
                    keep.lock().unwrap().push(Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        raw: body.to_vec(),
                        accepted,
                    });
                    if accepted {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            }),
        );
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { url, got, failing }
    }

    pub(crate) fn accepted_for(&self, payment_id: &str) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.accepted && r.body["data"]["payment_id"] == payment_id)
            .cloned()
            .collect()
    }

    /// Waits (at most `limit`) until `payment_id`'s final `state` was accepted.
    pub(crate) async fn wait_for(&self, payment_id: &str, state: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let found = self
                .accepted_for(payment_id)
                .iter()
                .any(|r| r.body["data"]["state"] == state);
            if found {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {state} webhook for {payment_id} within {limit:?}; got {:#?}",
                self.got.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Checks a message's signature as a receiver does, with our own HMAC: the Base64 after
/// `whsec_` keys HMAC-SHA256 over `id.timestamp.body`; the header is `v1,` and the Base64 MAC.
pub(crate) fn signature_is_valid(secret: &str, received: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", received.id, received.timestamp).as_bytes());
    mac.update(&received.raw);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    received.signature.split(' ').any(|s| s == expected)
}

/// The versions of a payout's events that changed its state (what webhooks announce).
async fn state_changes(server: &crate::Server, payment_id: &str) -> BTreeSet<u64> {
    let events = server
        .desk
        .client()
        .store()
        .events(&PaymentId::new(payment_id).unwrap())
        .await
        .unwrap();
    // Event i produced version i.
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.previous.as_ref() != Some(&e.state))
        .map(|(i, _)| i as u64)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_state_change_is_pushed_signed_and_in_order() {
    let (server, receiver, endpoint) = serve_with_receiver(false).await;
    let secret = endpoint.secret;
    let (status, _, body) = call(
        &server,
        "POST",
        "/api/v1/payouts?wait=15",
        Some(PAY_KEY),
        Some(payout("wh-1", "1 500")),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    receiver
        .wait_for("wh-1", "success", Duration::from_secs(15))
        .await;

    let got = receiver.accepted_for("wh-1");
    let versions: Vec<u64> = got
        .iter()
        .map(|r| r.body["data"]["version"].as_u64().unwrap())
        .collect();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "in order: {versions:?}"
    );
    assert_eq!(
        versions.iter().copied().collect::<BTreeSet<_>>(),
        state_changes(&server, "wh-1").await,
        "one message per state change"
    );
    assert_eq!(got[0].body["type"], "payout.created");
    assert_eq!(got.last().unwrap().body["type"], "payout.success");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ids: BTreeSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), got.len(), "one ID per event");
    for message in &got {
        assert!(signature_is_valid(&secret, message), "{message:?}");
        assert!(!signature_is_valid("whsec_AAAA", message));
        assert!(message.id.starts_with("msg_"));
        let at: u64 = message.timestamp.parse().unwrap();
        assert!(now.abs_diff(at) < 60, "timestamp {at} vs now {now}");
        let data = &message.body["data"];
        assert_eq!(data["phone"], "7701***4567", "the phone is masked");
        assert_eq!(data["amount_minor"], 150_000);
        assert_eq!(data["currency"], "KZT");
        assert_eq!(data["customer_id"], "c-1");
    }
    assert_eq!(got.last().unwrap().body["data"]["settled"], true);

    // The ledger's log: each delivery delivered, at the first attempt.
    let deliveries = server
        .desk
        .webhooks()
        .deliveries(&PaymentId::new("wh-1").unwrap())
        .await
        .unwrap();
    assert_eq!(deliveries.len(), got.len());
    for delivery in &deliveries {
        assert_eq!(delivery.state, DeliveryState::Delivered, "{delivery:?}");
        assert_eq!(delivery.attempts.len(), 1);
        assert_eq!(delivery.attempts[0].status, Some(204));
    }
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .bearer_auth(crate::api::READ_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rp_webhook_attempts_total{outcome=\"delivered\"}"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_gets_every_event_once_it_recovers() {
    let (server, receiver, endpoint) = serve_with_receiver(true).await;
    let secret = endpoint.secret;
    let ids: Vec<String> = (0..6).map(|n| format!("wh-fail-{n}")).collect();
    for id in &ids {
        let (status, _, body) = call(
            &server,
            "POST",
            "/api/v1/payouts?wait=15",
            Some(PAY_KEY),
            Some(payout(id, "100")),
        )
        .await;
        assert!(status.is_success(), "{body}");
    }
    // Every payout's first message was refused at least once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.body["data"]["payment_id"].to_string())
        .collect::<BTreeSet<_>>()
        .len()
        < ids.len()
    {
        assert!(Instant::now() < deadline, "not every payout was attempted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    receiver.failing.store(false, Ordering::SeqCst);
    for id in &ids {
        // The first retry comes 5 s after a failure.
        receiver
            .wait_for(id, "success", Duration::from_secs(20))
            .await;
    }
    let mut bodies_by_id: BTreeMap<String, BTreeSet<Vec<u8>>> = BTreeMap::new();
    for message in receiver.got.lock().unwrap().iter() {
        assert!(signature_is_valid(&secret, message));
        bodies_by_id
            .entry(message.id.clone())
            .or_default()
            .insert(message.raw.clone());
    }
    assert!(
        bodies_by_id.values().all(|bodies| bodies.len() == 1),
        "a repeated ID always carries the same body"
    );
    for id in &ids {
        let accepted: BTreeSet<u64> = receiver
            .accepted_for(id)
            .iter()
            .map(|r| r.body["data"]["version"].as_u64().unwrap())
            .collect();
        assert_eq!(
            accepted,
            state_changes(&server, id).await,
            "{id}: none lost"
        );
        let deliveries = server
            .desk
            .webhooks()
            .deliveries(&PaymentId::new(id.clone()).unwrap())
            .await
            .unwrap();
        assert!(
            deliveries
                .iter()
                .all(|d| d.state == DeliveryState::Delivered)
        );
        assert!(
            deliveries[0].attempts.len() >= 2
                && deliveries[0].attempts[0].error.as_deref() == Some("HTTP 503"),
            "{:?}",
            deliveries[0]
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_lists_endpoints_shows_deliveries_and_replays_them() {
    use crate::api::READ_KEY;
    let (server, receiver, endpoint) = serve_with_receiver(false).await;
    let (status, _, body) = call(
        &server,
        "POST",
        "/api/v1/payouts?wait=15",
        Some(PAY_KEY),
        Some(payout("wh-api", "25")),
    )
    .await;
    assert!(status.is_success(), "{body}");
    receiver
        .wait_for("wh-api", "success", Duration::from_secs(15))
        .await;

    // Endpoints: read keys see them, never the secret, nor the URL's path and query (which
    // may carry the merchant's token); pay keys (which manage them) see the URL whole.
    let (status, _, list) = call(&server, "GET", "/api/v1/webhooks", Some(READ_KEY), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"][0]["id"], endpoint.id);
    assert_eq!(list["data"][0]["enabled"], true);
    assert!(!list.to_string().contains("whsec_"), "{list}");
    let path = endpoint
        .url
        .split_once("//")
        .unwrap()
        .1
        .split_once('/')
        .unwrap()
        .1;
    assert!(!list.to_string().contains(path), "{list}");
    assert!(
        list["data"][0]["url"].as_str().unwrap().ends_with("/…"),
        "{list}"
    );
    let (_, _, whole) = call(&server, "GET", "/api/v1/webhooks", Some(PAY_KEY), None).await;
    assert_eq!(whole["data"][0]["url"], endpoint.url.as_str());

    // Deliveries with their log and the webhook-id the receiver got.
    let (status, _, deliveries) = call(
        &server,
        "GET",
        "/api/v1/payouts/wh-api/deliveries",
        Some(READ_KEY),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{deliveries}");
    let data = deliveries["data"].as_array().unwrap();
    let got = receiver.accepted_for("wh-api");
    assert_eq!(data.len(), got.len());
    for (delivery, message) in data.iter().zip(&got) {
        assert!(
            delivery["url"].as_str().unwrap().ends_with("/…"),
            "{delivery}"
        );
        assert_eq!(delivery["state"], "delivered");
        assert_eq!(delivery["webhook_id"], message.id.as_str());
        assert_eq!(delivery["attempts"][0]["status"], 204);
    }

    // Replay: refused to a read key, checked member by member, then sent again under the
    // same webhook-id and written into the payout's history with the key's name.
    let last = data.last().unwrap()["version"].as_u64().unwrap();
    let replay = "/api/v1/payouts/wh-api/deliveries/replay";
    let (status, _, _) = call(
        &server,
        "POST",
        replay,
        Some(READ_KEY),
        Some(serde_json::json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, bad) = call(
        &server,
        "POST",
        replay,
        Some(PAY_KEY),
        Some(serde_json::json!({"version": "last"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    assert_eq!(bad["errors"][0]["field"], "version");
    let (status, _, none) = call(
        &server,
        "POST",
        replay,
        Some(PAY_KEY),
        Some(serde_json::json!({"endpoint": endpoint.id + 100})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{none}");
    let before = got.len();
    let (status, _, queued) = call(
        &server,
        "POST",
        replay,
        Some(PAY_KEY),
        Some(serde_json::json!({"version": last})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["queued"], 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.accepted_for("wh-api").len() == before {
        assert!(Instant::now() < deadline, "the replay was not sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = receiver.accepted_for("wh-api");
    assert_eq!(
        again.last().unwrap().id,
        got.last().unwrap().id,
        "same webhook-id"
    );
    assert_eq!(
        again.last().unwrap().raw,
        got.last().unwrap().raw,
        "same body"
    );
    let (_, _, events) = call(
        &server,
        "GET",
        "/api/v1/payouts/wh-api/events",
        Some(READ_KEY),
        None,
    )
    .await;
    let history = events.to_string();
    assert!(history.contains("operator:api:backend"), "{history}");
    assert!(history.contains("sent again"), "{history}");

    // Enabling: only with a pay key, 404 for an unknown endpoint.
    let enable = format!("/api/v1/webhooks/{}/enable", endpoint.id);
    let (status, _, _) = call(&server, "POST", &enable, Some(READ_KEY), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, enabled) = call(&server, "POST", &enable, Some(PAY_KEY), None).await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    assert_eq!(enabled["enabled"], true);
    let (status, _, _) = call(
        &server,
        "POST",
        "/api/v1/webhooks/999/enable",
        Some(PAY_KEY),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The mobile operators.
    let (status, _, operators) =
        call(&server, "GET", "/api/v1/operators", Some(READ_KEY), None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = operators["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ACTIV", "ALTEL", "BEELINE", "KCELL", "TELE2"]);
    assert!(
        operators["data"][3]["prefixes"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("701"))
    );
    server.stop().await;
}

/// The README's receivers (`examples/webhooks/receive.{py,mjs,php}`), run as they are: each
/// verifies our deliveries with its own language's HMAC, and refuses a forged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_node_and_php_receivers_verify_our_webhooks() {
    use tokio::io::AsyncBufReadExt as _;
    let server = with_keys().await;
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/webhooks");
    let receivers = [
        ("python3", "receive.py"),
        ("node", "receive.mjs"),
        ("php", "receive.php"),
    ];
    for (n, (program, script)) in receivers.iter().enumerate() {
        if !crate::installed(program) {
            crate::skip(
                &format!("the {script} receiver"),
                &format!("{program} is not installed (.ci/run installs it)"),
            );
            continue;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let secret = rp_console::webhooks::new_secret().unwrap();
        let mut command = tokio::process::Command::new(program);
        if *program == "php" {
            command
                .arg("-S")
                .arg(format!("127.0.0.1:{port}"))
                .arg(examples.join(script));
        } else {
            command.arg(examples.join(script)).arg(port.to_string());
        }
        let mut child = command
            .env("RP_WEBHOOK_SECRET", &secret)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let said = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let said = Arc::clone(&said);
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    said.lock().unwrap().push_str(&line);
                    said.lock().unwrap().push('\n');
                }
            });
        }
        let url = format!("http://127.0.0.1:{port}/hooks");
        // Up before anything is sent to it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "{script} did not start: {}",
                said.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let endpoint = server
            .desk
            .webhooks()
            .add_endpoint(&url, &secret)
            .await
            .unwrap();
        let id = format!("wh-example-{n}");
        let (status, _, body) = call(
            &server,
            "POST",
            "/api/v1/payouts?wait=15",
            Some(PAY_KEY),
            Some(payout(&id, "75")),
        )
        .await;
        assert!(status.is_success(), "{body}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let success = format!("payout.success {id}");
        while !said.lock().unwrap().contains(&success) {
            assert!(
                Instant::now() < deadline,
                "{script} never verified {success}: {}",
                said.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let deliveries = server
            .desk
            .webhooks()
            .deliveries(&PaymentId::new(id.clone()).unwrap())
            .await
            .unwrap();
        assert!(
            deliveries
                .iter()
                .filter(|d| d.key.endpoint == endpoint.id)
                .all(|d| d.state == DeliveryState::Delivered),
            "{script}: {deliveries:?}"
        );
        // A forged request (another secret) and a tampered body are refused.
        let timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string();
        let body = br#"{"type":"payout.success","data":{"payment_id":"forged"}}"#;
        let other = rp_console::webhooks::new_secret().unwrap();
        let forged =
            rp_console::webhooks::signature(&other, "msg_x", timestamp.parse().unwrap(), body)
                .unwrap();
        let genuine =
            rp_console::webhooks::signature(&secret, "msg_x", timestamp.parse().unwrap(), body)
                .unwrap();
        for (signature, sent) in [
            (&forged, &body[..]),
            (
                &genuine,
                &b"{\"type\":\"payout.success\",\"data\":{\"payment_id\":\"tampered\"}}"[..],
            ),
        ] {
            let answer = server
                .http
                .post(&url)
                .header("webhook-id", "msg_x")
                .header("webhook-timestamp", &timestamp)
                .header("webhook-signature", signature.as_str())
                .body(sent.to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{script}");
        }
        assert!(
            !said.lock().unwrap().contains("forged")
                && !said.lock().unwrap().contains("verified msg_x")
        );
        server
            .desk
            .webhooks()
            .remove_endpoint(endpoint.id)
            .await
            .unwrap();
        let _ = child.kill().await;
    }
    server.stop().await;
}

/// The console's webhooks page and a payment's deliveries: a `pay` operator adds an endpoint
/// (its secret shown that once), disables, enables, replays and removes; a `view` operator
/// sees, and is refused every change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_manage_endpoints_and_replay_from_the_console() {
    let server = with_keys().await;
    let receiver = Receiver::start(false).await;
    let anna = server.login(crate::PAY).await;
    let victor = server.login(crate::VIEW).await;
    let (status, page) = server.get_with(&anna.cookie, "/webhooks").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("No endpoints yet"), "{page}");

    // A plain-http URL to another machine is refused beside the form.
    let refused = server
        .post(&anna, "/webhooks", &[("url", "http://shop.example/hooks")])
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await.unwrap().contains("unencrypted"));
    // A view operator cannot add one.
    let forbidden = server
        .post(&victor, "/webhooks", &[("url", receiver.url.as_str())])
        .await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);

    let added = server
        .post(&anna, "/webhooks", &[("url", receiver.url.as_str())])
        .await;
    assert_eq!(added.status(), StatusCode::OK);
    let shown = added.text().await.unwrap();
    let secret = shown
        .split("whsec_")
        .nth(1)
        .map(|rest| format!("whsec_{}", rest.split('<').next().unwrap()))
        .expect("the secret is shown once");
    let (_, page) = server.get_with(&anna.cookie, "/webhooks").await;
    assert!(
        page.contains(&receiver.url) && !page.contains("whsec_"),
        "{page}"
    );
    // A view operator sees the endpoint, not the URL's path (it may carry a token).
    let (_, page) = server.get_with(&victor.cookie, "/webhooks").await;
    let host = receiver.url.rsplit_once('/').unwrap().0;
    assert!(
        page.contains(&format!("{host}/…")) && !page.contains(&receiver.url),
        "{page}"
    );

    // Disabled: deliveries wait; enabled: they are sent.
    let id = server.desk.webhooks().endpoints().await.unwrap()[0].id;
    let disabled = server
        .post(&anna, &format!("/webhooks/{id}/disable"), &[])
        .await;
    assert_eq!(disabled.status(), StatusCode::SEE_OTHER);
    let (_, page) = server.get_with(&victor.cookie, "/webhooks").await;
    assert!(page.contains("disabled by anna in the console"), "{page}");
    assert!(
        !page.contains("/disable\""),
        "no actions for a view operator"
    );
    let (_, attention) = server.get_with(&victor.cookie, "/attention").await;
    assert!(
        attention.contains(&format!("Webhook endpoint {id}")) && attention.contains("is disabled"),
        "{attention}"
    );
    let (status, _, body) = call(
        &server,
        "POST",
        "/api/v1/payouts?wait=15",
        Some(PAY_KEY),
        Some(payout("wh-console", "30")),
    )
    .await;
    assert!(status.is_success(), "{body}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        receiver.accepted_for("wh-console").is_empty(),
        "sent while disabled"
    );
    let enabled = server
        .post(&anna, &format!("/webhooks/{id}/enable"), &[])
        .await;
    assert_eq!(enabled.status(), StatusCode::SEE_OTHER);
    receiver
        .wait_for("wh-console", "success", Duration::from_secs(10))
        .await;
    let received = receiver.accepted_for("wh-console");
    assert!(received.iter().all(|r| signature_is_valid(&secret, r)));

    // The payment page lists the deliveries; "send again" repeats them under their IDs.
    let page = server
        .wait_for(&anna, "/payments/wh-console", "delivered")
        .await;
    assert!(
        page.contains("Webhooks") && page.contains(&receiver.url),
        "{page}"
    );
    let forbidden = server
        .post(&victor, "/payments/wh-console/webhooks/replay", &[])
        .await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let replayed = server
        .post(&anna, "/payments/wh-console/webhooks/replay", &[])
        .await;
    assert_eq!(replayed.status(), StatusCode::SEE_OTHER);
    let before = received.len();
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.accepted_for("wh-console").len() < before * 2 {
        assert!(Instant::now() < deadline, "the replay was not sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ids = |messages: &[Received]| -> BTreeSet<String> {
        messages.iter().map(|m| m.id.clone()).collect()
    };
    assert_eq!(ids(&receiver.accepted_for("wh-console")), ids(&received));
    let page = server
        .wait_for(&anna, "/payments/wh-console", "sent again from the console")
        .await;
    assert!(page.contains("anna"), "{page}");

    // Removing needs the confirmation box.
    let unconfirmed = server
        .post(&anna, &format!("/webhooks/{id}/remove"), &[])
        .await;
    assert_eq!(unconfirmed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let removed = server
        .post(
            &anna,
            &format!("/webhooks/{id}/remove"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(removed.status(), StatusCode::SEE_OTHER);
    assert!(server.desk.webhooks().endpoints().await.unwrap().is_empty());
    server.stop().await;
}

/// `rp serve` (with the API keys) whose webhook sender looks only hourly by itself, and a
/// receiver registered as its endpoint: what reaches the receiver soon was woken for.
pub(crate) async fn hourly_sender_with_receiver() -> (crate::Server, Receiver) {
    let server = crate::Server::start_tuned(|options| {
        options.webhooks_every = Some(Duration::from_secs(3600));
    })
    .await;
    crate::api::add_keys(&server).await;
    let receiver = Receiver::start(false).await;
    let secret = rp_console::webhooks::new_secret().unwrap();
    server
        .desk
        .webhooks()
        .add_endpoint(&receiver.url, &secret)
        .await
        .unwrap();
    (server, receiver)
}

/// Changes that no callback follows (payouts the platform accepted and has not settled: the
/// simulator's `0010`) are pushed at once, not at the sender's next look (here an hour
/// away): a batch's rows and an API payout's answer wake the sender, as callbacks do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_no_callback_follows_are_pushed_at_once() {
    let (server, receiver) = hourly_sender_with_receiver().await;
    let rows = serde_json::json!([
        {"payment_id": "wake-b-1", "phone": "+7 701 123 0010", "amount": "100", "customer": {"id": "c"}},
        {"payment_id": "wake-b-2", "phone": "+7 701 124 0010", "amount": "200", "customer": {"id": "c"}}
    ]);
    let (status, batch) = crate::api_batches::post_batch(
        &server,
        PAY_KEY,
        "",
        "application/json",
        rows.to_string().into_bytes(),
    )
    .await;
    assert!(status.is_success(), "{batch}");
    let single = serde_json::json!({"payment_id": "wake-api", "phone": "+7 701 125 0010",
                                    "amount": "300", "customer": {"id": "c"}});
    let (status, _, body) = post_payout(&server, single).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    for id in ["wake-b-1", "wake-b-2", "wake-api"] {
        receiver
            .wait_for(id, "accepted", Duration::from_secs(10))
            .await;
    }
    server.stop().await;
}
