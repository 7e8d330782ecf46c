//! Integration tests for rp-sim: a real simulator on 127.0.0.1:0, raw signed HTTP requests
//! (reqwest), and a real callback receiver (axum) on 127.0.0.1:0.

// Test helpers outside `#[test]` functions may unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod callbacks;
mod concurrency;
mod control;
mod conversion;
mod faults;
mod limits;
mod magic;
mod payout_limits;
mod validation;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use reqwest::header::HeaderMap;
use rp_sign::{SecretKey, Signer};
use rp_sim::{
    DEFAULT_PROJECT_ID, DEFAULT_SECRET_KEY, PAYOUT_PATH, RunningSimulator, STATUS_PATH, Simulator,
    SimulatorBuilder, TimeScale,
};
use serde_json::{Value, json};

/// Acceptance to final status in the tests.
pub(crate) const PROCESSING: Duration = Duration::from_millis(40);
/// The response delay of magic `0023` in the tests.
pub(crate) const SLOW: Duration = Duration::from_millis(400);
/// How long a test waits for something that should happen.
pub(crate) const PATIENCE: Duration = Duration::from_secs(5);

/// A callback receiver: records every body, answers with scripted statuses, then 200.
#[derive(Clone)]
pub(crate) struct Receiver {
    addr: SocketAddr,
    inner: Arc<ReceiverState>,
}

#[derive(Default)]
struct ReceiverState {
    bodies: Mutex<Vec<Vec<u8>>>,
    times: Mutex<Vec<Instant>>,
    script: Mutex<VecDeque<u16>>,
}

async fn receive(State(state): State<Arc<ReceiverState>>, body: Bytes) -> StatusCode {
    state.times.lock().unwrap().push(Instant::now());
    state.bodies.lock().unwrap().push(body.to_vec());
    let code = state.script.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(code).unwrap()
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let inner = Arc::new(ReceiverState::default());
        let app = Router::new()
            .route("/callbacks", post(receive))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { addr, inner }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/callbacks", self.addr)
    }

    /// The next answers, before the default 200.
    pub(crate) fn answer_next(&self, statuses: &[u16]) {
        self.inner.script.lock().unwrap().extend(statuses);
    }

    /// When each callback arrived.
    pub(crate) fn times(&self) -> Vec<Instant> {
        self.inner.times.lock().unwrap().clone()
    }

    pub(crate) fn bodies(&self) -> Vec<Vec<u8>> {
        self.inner.bodies.lock().unwrap().clone()
    }

    /// Every callback received, parsed.
    pub(crate) fn callbacks(&self) -> Vec<Value> {
        self.bodies()
            .iter()
            .map(|b| serde_json::from_slice(b).unwrap())
            .collect()
    }

    /// The callbacks of one payment.
    pub(crate) fn callbacks_for(&self, payment_id: &str) -> Vec<Value> {
        self.callbacks()
            .into_iter()
            .filter(|c| c["payment"]["id"] == payment_id)
            .collect()
    }

    /// Waits until `count` callbacks of `payment_id` arrived.
    pub(crate) async fn wait_for(&self, payment_id: &str, count: usize) -> Vec<Value> {
        eventually(|| self.callbacks_for(payment_id).len() >= count).await;
        self.callbacks_for(payment_id)
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) json: Value,
}

impl Answer {
    /// The error code of an error envelope.
    pub(crate) fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or("")
    }
}

/// A simulator (default project) with a callback receiver and a client.
pub(crate) struct Env {
    pub(crate) sim: RunningSimulator,
    pub(crate) rx: Receiver,
    pub(crate) client: reqwest::Client,
    pub(crate) signer: Signer,
}

impl Env {
    pub(crate) async fn start() -> Env {
        Env::start_with(|b| b).await
    }

    pub(crate) async fn start_with(
        configure: impl FnOnce(SimulatorBuilder) -> SimulatorBuilder,
    ) -> Env {
        let rx = Receiver::start().await;
        let builder = Simulator::builder()
            .callback_url(rx.url())
            .processing_delay(PROCESSING)
            .slow_delay(SLOW)
            .time_scale(TimeScale::per_million(100)) // 10 s -> 1 ms
            .seed(42);
        let sim = configure(builder).start().await.unwrap();
        Env {
            sim,
            rx,
            client: client(),
            signer: Signer::new(&SecretKey::from(DEFAULT_SECRET_KEY)),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    pub(crate) async fn post_raw(&self, path: &str, body: impl Into<Vec<u8>>) -> Answer {
        send(self.client.post(self.url(path)).body(body.into())).await
    }

    /// POSTs `request` signed with the default project's key.
    pub(crate) async fn post_signed(&self, path: &str, request: &Value) -> Answer {
        let body = self.signer.sign_request_body(request).unwrap();
        self.post_raw(path, body).await
    }

    pub(crate) async fn payout(&self, payment_id: &str, number: &str) -> Answer {
        self.post_signed(PAYOUT_PATH, &payout_request(payment_id, number))
            .await
    }

    pub(crate) async fn status(&self, payment_id: &str) -> Answer {
        let request =
            json!({"general": {"project_id": DEFAULT_PROJECT_ID, "payment_id": payment_id}});
        self.post_signed(STATUS_PATH, &request).await
    }

    /// Waits until the status endpoint reports `status` for the payment.
    pub(crate) async fn wait_status(&self, payment_id: &str, status: &str) -> Answer {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let answer = self.status(payment_id).await;
            if answer.json["payment"]["status"] == status {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "payment {payment_id} never reached {status}: {:?}",
                answer.json
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub(crate) async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
    Answer {
        status,
        headers,
        json,
    }
}

/// A payout request for the default project (unsigned).
pub(crate) fn payout_request(payment_id: &str, number: &str) -> Value {
    json!({
        "general": {"project_id": DEFAULT_PROJECT_ID, "payment_id": payment_id},
        "customer": {"id": "customer-1", "ip_address": "198.51.100.7"},
        "account": {"number": number},
        "payment": {"amount": 150_000, "currency": "KZT", "description": "test payout"},
    })
}

/// Waits until `condition` holds (panics after [`PATIENCE`]).
pub(crate) async fn eventually(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "condition not met in {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
