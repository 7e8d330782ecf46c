//! A fake Gate that speaks the sim contract, with scripted answers per test, and helpers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rp_model::{CustomerId, Money, Msisdn, PaymentId, Payout, ProjectId};
use rp_payout::{Client, Config, ManualClock, MemoryStore, RetryPolicy};
use rp_sign::{SecretKey, Signer};
use serde_json::{Value, json};

pub(crate) const PROJECT: u64 = 1234;
pub(crate) const SECRET: &str = "test-secret-key";

pub(crate) fn key() -> SecretKey {
    SecretKey::from(SECRET)
}

/// One scripted answer.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    /// A JSON body with a status.
    Json(u16, Value),
    /// A JSON body with a status and one extra header.
    WithHeader(u16, &'static str, &'static str, Value),
    /// A signed status response (root `signature`).
    Signed(Value),
    /// Answer after a delay (longer than the client's attempt timeout: a timeout).
    Delayed(Duration, Box<Reply>),
}

/// The contract's answers.
pub(crate) fn accepted(payment_id: &str, request_id: &str) -> Reply {
    Reply::Json(
        200,
        json!({"status":"success","request_id":request_id,"project_id":PROJECT,"payment_id":payment_id}),
    )
}

pub(crate) fn envelope(http: u16, code: &str, message: &str, field: Option<&str>) -> Reply {
    let mut item = json!({"code": code, "message": message});
    if let Some(field) = field {
        item["field"] = json!(field);
    }
    Reply::Json(
        http,
        json!({"status":"error","project_id":PROJECT,"code":code,"message":message,"errors":[item]}),
    )
}

/// 3061 as the platform answers it: HTTP 200 with a signed body.
pub(crate) fn not_found() -> Reply {
    Reply::Signed(json!({
        "status": "error", "project_id": PROJECT, "code": "3061",
        "message": "Transaction not found",
        "errors": [{"code": "3061", "message": "Transaction not found"}]
    }))
}

/// 3061 as an unsigned 404 envelope (the simulator's `--not-found-404`).
pub(crate) fn unsigned_not_found() -> Reply {
    envelope(404, "3061", "Transaction not found", None)
}

pub(crate) fn server_error() -> Reply {
    Reply::Json(
        500,
        json!({"status":"error","message":"Internal server error"}),
    )
}

/// A signed status response for `payment_id` in `status`.
pub(crate) fn status_body(payment_id: &str, status: &str) -> Value {
    let (op_status, code, message) = match status {
        "success" => ("success", "0", "Success"),
        "decline" => ("decline", "20000", "General decline"),
        "error" => ("decline", "3062", "Payment details not received"),
        _ => ("processing", "19999", "Awaiting processing"),
    };
    json!({
        "project_id": PROJECT,
        "payment": {"id": payment_id, "type": "payout", "status": status,
                    "date": "2024-05-14T10:21:33+0000", "method": "mobile",
                    "sum": {"amount": 150000, "currency": "KZT"}, "description": ""},
        "account": {"number": "77011234567", "type": "KCELL"},
        "customer": {"id": "customer-1"},
        "operations": [{"id": 1000000012345u64, "type": "payout", "status": op_status,
                        "request_id": "r-1", "code": code, "message": message}]
    })
}

pub(crate) fn status_reply(payment_id: &str, status: &str) -> Reply {
    Reply::Signed(status_body(payment_id, status))
}

/// A request the fake Gate received.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) body: Value,
}

impl Received {
    pub(crate) fn payment_id(&self) -> Option<&str> {
        self.body["general"]["payment_id"].as_str()
    }
}

#[derive(Default)]
struct Script {
    payout: VecDeque<Reply>,
    status: VecDeque<Reply>,
    operators: VecDeque<Reply>,
    received: Vec<Received>,
}

/// The fake Gate: verifies every request's signature (3261 if wrong), records it, and plays
/// the script for its path (500 "script exhausted" when the script runs out).
#[derive(Clone)]
pub(crate) struct Gate {
    script: Arc<Mutex<Script>>,
    pub(crate) url: String,
}

impl Gate {
    pub(crate) async fn start() -> Gate {
        let script = Arc::new(Mutex::new(Script::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(script.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Gate { script, url }
    }

    pub(crate) fn on_payout(&self, reply: Reply) -> &Self {
        self.script.lock().unwrap().payout.push_back(reply);
        self
    }

    pub(crate) fn on_status(&self, reply: Reply) -> &Self {
        self.script.lock().unwrap().status.push_back(reply);
        self
    }

    pub(crate) fn on_operators(&self, reply: Reply) -> &Self {
        self.script.lock().unwrap().operators.push_back(reply);
        self
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    /// The paths received, in order, shortened to `payout` / `status` / `operators`.
    pub(crate) fn calls(&self) -> Vec<&'static str> {
        self.received()
            .iter()
            .map(|r| match r.path.as_str() {
                rp_payout::PAYOUT_PATH => "payout",
                rp_payout::STATUS_PATH => "status",
                rp_payout::OPERATORS_PATH => "operators",
                _ => "other",
            })
            .collect()
    }

    /// A client for this Gate: manual clock, memory store, short timeouts.
    pub(crate) fn client(&self) -> (Client, ManualClock, Arc<MemoryStore>) {
        self.client_with(RetryPolicy::default())
    }

    pub(crate) fn client_with(
        &self,
        retry: RetryPolicy,
    ) -> (Client, ManualClock, Arc<MemoryStore>) {
        self.client_from(config().with_retry(retry))
    }

    /// A client for this Gate with `config` (its base URL and timeouts are replaced).
    pub(crate) fn client_from(&self, config: Config) -> (Client, ManualClock, Arc<MemoryStore>) {
        let clock = ManualClock::new();
        let store = Arc::new(MemoryStore::new());
        let client = self
            .client_builder(config)
            .clock(Arc::new(clock.clone()))
            .store(store.clone())
            .build()
            .unwrap();
        (client, clock, store)
    }

    /// A client builder for this Gate with `config` (its base URL and timeouts replaced) and
    /// a manual clock; the store is the caller's.
    pub(crate) fn client_builder(&self, config: Config) -> rp_payout::ClientBuilder {
        let config = config
            .with_base_url(&self.url)
            .with_timeouts(Duration::from_millis(200), Duration::from_millis(300));
        Client::builder(config).clock(Arc::new(ManualClock::new()))
    }
}

async fn handle(State(script): State<Arc<Mutex<Script>>>, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return reply(envelope(400, "2003", "Invalid JSON string", None)).await;
    };
    let signed = Signer::new(&key()).verify_value(&value).is_ok();
    let next = {
        let mut script = script.lock().unwrap();
        script.received.push(Received {
            path: path.clone(),
            body: value,
        });
        if !signed {
            Some(envelope(403, "3261", "Invalid signature", None))
        } else {
            match path.as_str() {
                rp_payout::PAYOUT_PATH => script.payout.pop_front(),
                rp_payout::STATUS_PATH => script.status.pop_front(),
                rp_payout::OPERATORS_PATH => script.operators.pop_front(),
                _ => None,
            }
        }
    };
    reply(next.unwrap_or_else(|| {
        Reply::Json(500, json!({"status":"error","message":"script exhausted"}))
    }))
    .await
}

async fn reply(reply: Reply) -> Response {
    let mut reply = reply;
    while let Reply::Delayed(delay, inner) = reply {
        tokio::time::sleep(delay).await;
        reply = *inner;
    }
    let status = |code: u16| StatusCode::from_u16(code).unwrap();
    match reply {
        Reply::Json(code, body) => (status(code), axum::Json(body)).into_response(),
        Reply::WithHeader(code, name, value, body) => {
            (status(code), [(name, value)], axum::Json(body)).into_response()
        }
        Reply::Signed(body) => {
            let signed = Signer::new(&key()).sign_callback(&body).unwrap();
            (StatusCode::OK, axum::Json(signed)).into_response()
        }
        Reply::Delayed(..) => unreachable!(),
    }
}

pub(crate) fn config() -> Config {
    Config::new(ProjectId::new(PROJECT).unwrap(), key())
}

pub(crate) fn payout(payment_id: &str) -> Payout {
    Payout::builder()
        .payment_id(PaymentId::new(payment_id).unwrap())
        .phone(Msisdn::parse("+7 701 123 45 67").unwrap())
        .amount(Money::kzt(1500).unwrap())
        .customer_id(CustomerId::new("customer-1").unwrap())
        .build()
        .unwrap()
}

/// The event a test writes with a record it changes behind the client's back.
pub(crate) fn test_event(record: &rp_payout::PayoutRecord) -> rp_payout::PayoutEvent {
    rp_payout::PayoutEvent::new(
        record.updated_at,
        rp_payout::EventSource::Operator("test".to_owned()),
        None,
        record.state.clone(),
    )
}

pub(crate) fn pid(id: &str) -> PaymentId {
    PaymentId::new(id).unwrap()
}

/// A fast retry policy (ms backoff), keeping the platform's 10 s status delay: the manual
/// clock makes it free.
pub(crate) fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        ..RetryPolicy::default()
    }
}
