//! The JSON API against a real `serve` and simulator: exactly once by payment ID (202, then
//! 200 as it stands, 409 for other details), every field's problem at once (422), keys with
//! roles, revocation and a rate, keyset pages, the `OpenAPI` document, and the README's Python
//! and Node examples run as they are.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use rp_ledger::{ApiKey, Role};
use serde_json::{Value, json};

use crate::Server;

pub(crate) const PAY_KEY: &str =
    "rpk_0000000000000000000000000000000000000000000000000000000000000001";
pub(crate) const READ_KEY: &str =
    "rpk_0000000000000000000000000000000000000000000000000000000000000002";

pub(crate) async fn with_keys() -> Server {
    let server = Server::start(None).await;
    add_keys(&server).await;
    server
}

/// Adds the pay key [`PAY_KEY`] and the read key [`READ_KEY`] to `server`.
pub(crate) async fn add_keys(server: &Server) {
    for (name, key, role) in [
        ("backend", PAY_KEY, Role::Pay),
        ("reports", READ_KEY, Role::View),
    ] {
        let added = server
            .desk
            .access()
            .add_api_key(ApiKey::new(name, rp_console::api_key_sha256(key), role))
            .await
            .unwrap();
        assert!(added);
    }
}

/// `method path` with `key` and a JSON body: status, content type and body.
pub(crate) async fn call(
    server: &Server,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, String, Value) {
    let url = server.url(path);
    let mut request = match method {
        "POST" => server.http.post(url),
        _ => server.http.get(url),
    };
    if let Some(key) = key {
        request = request.header(AUTHORIZATION, format!("Bearer {key}"));
    }
    if let Some(body) = body {
        request = request
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    let kind = answer
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = answer.text().await.unwrap();
    (
        status,
        kind,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `POST path` with the pay key and the JSON text `body` as written (its numbers as they are,
/// which a `Value` would rewrite): status and the answer's text.
pub(crate) async fn post_text(server: &Server, path: &str, body: String) -> (StatusCode, String) {
    let answer = server
        .http
        .post(server.url(path))
        .header(AUTHORIZATION, format!("Bearer {PAY_KEY}"))
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    (status, answer.text().await.unwrap())
}

/// `POST /api/v1/payouts` of `body` with the pay key: status, content type and body.
pub(crate) async fn post_payout(server: &Server, body: Value) -> (StatusCode, String, Value) {
    call(server, "POST", "/api/v1/payouts", Some(PAY_KEY), Some(body)).await
}

pub(crate) fn payout(id: &str, amount: &str) -> Value {
    json!({"payment_id": id, "phone": "+7 701 123 45 67", "amount": amount, "customer": {"id": "c-1"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_through_the_api_is_paid_exactly_once() {
    let server = with_keys().await;
    let (status, _, body) = call(
        &server,
        "POST",
        "/api/v1/payouts",
        Some(PAY_KEY),
        Some(payout("api-1", "1 500")),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["payment_id"], "api-1");
    assert_eq!(body["amount_minor"], 150_000);
    // The same request again (a retry after a timeout): the payout as it stands, not sent again.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, _, again) = call(
        &server,
        "POST",
        "/api/v1/payouts",
        Some(PAY_KEY),
        Some(payout("api-1", "1 500")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    // The same ID, other details: 409, nothing changed.
    let (status, kind, conflict) = call(
        &server,
        "POST",
        "/api/v1/payouts",
        Some(PAY_KEY),
        Some(payout("api-1", "2 000")),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    assert_eq!(kind, "application/problem+json");
    assert_eq!(conflict["type"], "urn:rp:problem:payment-id-conflict");
    // ?wait holds the answer until the payout is final.
    let (status, _, waited) = call(
        &server,
        "POST",
        "/api/v1/payouts?wait=15",
        Some(PAY_KEY),
        Some(payout("api-2", "10")),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{waited}");
    assert_eq!(waited["state"], "success", "{waited}");
    assert_eq!(waited["settled"], true);
    // The first one settles too; its history names the key.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, one) = call(
            &server,
            "GET",
            "/api/v1/payouts/api-1",
            Some(READ_KEY),
            None,
        )
        .await;
        if one["state"] == "success" {
            assert_eq!(
                one["phone"], "77011234567",
                "the single payout shows its number"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{one}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, _, events) = call(
        &server,
        "GET",
        "/api/v1/payouts/api-1/events",
        Some(READ_KEY),
        None,
    )
    .await;
    assert_eq!(
        events["data"][0]["source"], "operator:api:backend",
        "{events}"
    );
    let sent = server
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("payout") && r.payment_id.as_deref() == Some("api-1"))
        .count();
    assert_eq!(sent, 1, "one payout request for api-1");
    assert_eq!(server.sim.payment("api-1").unwrap().amount, 150_000);
    let (status, _, missing) =
        call(&server, "GET", "/api/v1/payouts/nope", Some(READ_KEY), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_payouts_get_every_fields_problem_and_nothing_is_sent() {
    let server = with_keys().await;
    let bad = json!({"phone": "+7 999 123 45 67", "amount": "12,345", "customer": {"ip": "x"}, "colour": "red"});
    let (status, kind, problem) =
        call(&server, "POST", "/api/v1/payouts", Some(PAY_KEY), Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(kind, "application/problem+json");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for field in [
        "colour",
        "payment_id",
        "phone",
        "amount",
        "customer.id",
        "customer.ip",
    ] {
        assert!(fields.contains(&field), "{field} missing in {problem}");
    }
    for body in [json!([1]), json!({"payment_id": 5}), json!(null)] {
        let (status, _, _) = call(
            &server,
            "POST",
            "/api/v1/payouts",
            Some(PAY_KEY),
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (status, _, _) = call(
        &server,
        "POST",
        "/api/v1/payouts?wait=999",
        Some(PAY_KEY),
        Some(payout("w", "1")),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(server.sim.requests().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_have_roles_can_be_revoked_and_are_rate_limited() {
    let server = with_keys().await;
    let answer = server
        .http
        .get(server.url("/api/v1/payouts"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert!(answer.headers().contains_key("www-authenticate"));
    let (status, _, _) = call(&server, "GET", "/api/v1/payouts", Some("rpk_wrong"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, problem) = call(
        &server,
        "POST",
        "/api/v1/payouts",
        Some(READ_KEY),
        Some(payout("r-1", "1")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    let (status, _, _) = call(&server, "GET", "/api/v1/limits", Some(READ_KEY), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        server
            .desk
            .access()
            .revoke_api_key("reports", std::time::SystemTime::now())
            .await
            .unwrap()
    );
    let (status, _, problem) = call(&server, "GET", "/api/v1/payouts", Some(READ_KEY), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(problem["detail"].as_str().unwrap().contains("revoked"));
    // Past the burst, 429 with Retry-After; other keys are not slowed.
    let mut limited = None;
    for _ in 0..(rp_console::KEY_BURST * 2) {
        let answer = server
            .http
            .get(server.url("/api/v1/limits"))
            .header(AUTHORIZATION, format!("Bearer {PAY_KEY}"))
            .send()
            .await
            .unwrap();
        if answer.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.expect("the rate is enforced");
    assert!(limited.headers().contains_key("retry-after"));
    assert!(server.sim.requests().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_cursors_and_mask_phones() {
    let server = with_keys().await;
    for n in 0..3 {
        let (status, _, body) = call(
            &server,
            "POST",
            "/api/v1/payouts",
            Some(PAY_KEY),
            Some(payout(&format!("page-{n}"), "1")),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let (status, _, first) = call(
        &server,
        "GET",
        "/api/v1/payouts?limit=2",
        Some(PAY_KEY),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    assert_eq!(first["data"][0]["phone"], "7701***4567");
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, _, second) = call(
        &server,
        "GET",
        &format!("/api/v1/payouts?limit=2&cursor={cursor}"),
        Some(PAY_KEY),
        None,
    )
    .await;
    assert_eq!(second["data"].as_array().unwrap().len(), 1, "{second}");
    assert!(second["next_cursor"].is_null());
    let mut seen: Vec<String> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|p| p["payment_id"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    assert_eq!(seen, ["page-0", "page-1", "page-2"]);
    for bad in ["cursor=zz", "limit=0", "since=yesterday"] {
        let (status, _, _) = call(
            &server,
            "GET",
            &format!("/api/v1/payouts?{bad}"),
            Some(PAY_KEY),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    // The OpenAPI document is public and is the committed one.
    let (status, _, document) = call(&server, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document, rp_console::openapi_document());
    server.stop().await;
}

/// The README's examples, run as they are (`examples/api/pay.py`, `pay.mjs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_and_node_examples_pay_once() {
    let server = with_keys().await;
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/api");
    for (program, script, id) in [("python3", "pay.py", "py-1"), ("node", "pay.mjs", "node-1")] {
        if !crate::installed(program) {
            crate::skip(
                &format!("the {script} example"),
                &format!("{program} is not installed"),
            );
            continue;
        }
        for round in 0..2 {
            let output = tokio::process::Command::new(program)
                .arg(examples.join(script))
                .args([id, "+7 701 123 45 67", "1 500"])
                .env("RP_API_URL", &server.base)
                .env("RP_API_KEY", PAY_KEY)
                .output()
                .await
                .unwrap();
            let out = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "{script}: {out}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let expected = if round == 0 { "202" } else { "200" };
            assert_eq!(
                out.trim(),
                format!("{expected} {id} success"),
                "{script} round {round}"
            );
        }
        let sent = server
            .sim
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("payout") && r.payment_id.as_deref() == Some(id))
            .count();
        assert_eq!(sent, 1, "{script}: paid once");
    }
    server.stop().await;
}

/// `metadata`: kept with the payout (in its record's own write), shown with it and in its
/// webhooks, never sent to the platform, and part of the payout for idempotency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_kept_shown_and_part_of_the_payout() {
    let (server, receiver, _endpoint) = crate::webhooks::serve_with_receiver(false).await;
    let mut body = payout("meta-1", "10");
    body["metadata"] = json!({"order": "A-17", "lines": [1, 2]});
    let (status, _, created) = call(
        &server,
        "POST",
        "/api/v1/payouts?wait=15",
        Some(PAY_KEY),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    assert_eq!(created["metadata"]["order"], "A-17");
    // The same payout, its metadata's members in another order: the same payout.
    let mut again = payout("meta-1", "10");
    again["metadata"] = json!({"lines": [1, 2], "order": "A-17"});
    let (status, _, same) = call(
        &server,
        "POST",
        "/api/v1/payouts",
        Some(PAY_KEY),
        Some(again),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{same}");
    // Other metadata under the same payment ID: a conflict, nothing changed.
    let mut other = payout("meta-1", "10");
    other["metadata"] = json!({"order": "B-1"});
    let (status, _, conflict) = call(
        &server,
        "POST",
        "/api/v1/payouts",
        Some(PAY_KEY),
        Some(other),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    let (_, _, shown) = call(
        &server,
        "GET",
        "/api/v1/payouts/meta-1",
        Some(READ_KEY),
        None,
    )
    .await;
    assert_eq!(shown["metadata"], json!({"order": "A-17", "lines": [1, 2]}));
    // Never sent to the platform: not in the request that is signed and sent.
    let record = server
        .desk
        .client()
        .store()
        .get(&rp_model::PaymentId::new("meta-1").unwrap())
        .await
        .unwrap()
        .unwrap();
    let request = serde_json::to_string(&record.request).unwrap();
    assert!(!request.contains("A-17"), "{request}");
    assert!(record.metadata.as_deref().unwrap().contains("A-17"));
    // In every webhook of the payout.
    receiver
        .wait_for("meta-1", "success", Duration::from_secs(15))
        .await;
    for message in receiver.accepted_for("meta-1") {
        assert_eq!(message.body["data"]["metadata"]["order"], "A-17");
    }
    server.stop().await;
}
