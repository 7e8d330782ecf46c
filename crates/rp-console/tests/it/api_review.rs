//! A review of the JSON API as an attacker and as a crash would use it: each test here failed
//! when it was written, and names what it found.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use rp_ledger::{ApiKey, Role};
use serde_json::{Value, json};

use crate::Server;

const PAY_KEY: &str = "rpk_00000000000000000000000000000000000000000000000000000000000000a1";

async fn with_key() -> Server {
    let server = Server::start(None).await;
    let added = server
        .desk
        .access()
        .add_api_key(ApiKey::new(
            "review",
            rp_console::api_key_sha256(PAY_KEY),
            Role::Pay,
        ))
        .await
        .unwrap();
    assert!(added);
    server
}

/// `POST /api/v1/payouts` with `body` (sent as is): status, content type, body.
async fn post_raw(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    body: String,
) -> (StatusCode, String, Value) {
    let answer = http
        .post(format!("{base}{path}"))
        .header(AUTHORIZATION, format!("Bearer {PAY_KEY}"))
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    read(answer).await
}

async fn read(answer: reqwest::Response) -> (StatusCode, String, Value) {
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

async fn get(server: &Server, path: &str) -> (StatusCode, String, Value) {
    let answer = server
        .http
        .get(server.url(path))
        .header(AUTHORIZATION, format!("Bearer {PAY_KEY}"))
        .send()
        .await
        .unwrap();
    read(answer).await
}

fn payout(id: &str, amount_minor: u64) -> Value {
    json!({"payment_id": id, "phone": "+7 701 123 45 67", "amount_minor": amount_minor,
           "customer": {"id": "c-1"}})
}

/// Several backends (or one retrying with a bug) post *different* payouts under one payment ID
/// at the same moment. Exactly one is recorded; every other must be told 409. Found: a request
/// that read "no such payout" before the winner was recorded waits in `submit::submit` until a
/// record appears, and answers 202 with the *winner's* payout, as if its own (other phone,
/// other amount) had been accepted. Its own payout was refused as a conflict in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_different_payouts_under_one_id_get_409_not_202() {
    let server = with_key().await;
    let mut wrong = Vec::new();
    for round in 0..4 {
        let id = format!("race-{round}");
        let mut calls = tokio::task::JoinSet::new();
        for n in 1..=20u64 {
            let (http, base, body) = (
                server.http.clone(),
                server.base.clone(),
                payout(&id, 100 * n).to_string(),
            );
            calls.spawn(async move { (n, post_raw(&http, &base, "/api/v1/payouts", body).await) });
        }
        while let Some(done) = calls.join_next().await {
            let (n, (status, _, body)) = done.unwrap();
            if status.is_success() && body["amount_minor"] != 100 * n {
                wrong.push(format!(
                    "{id}: asked {} tiyn, answered {status} with {}",
                    100 * n,
                    body["amount_minor"]
                ));
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(server.sent(&id), 1, "{id} sent once");
    }
    assert!(
        wrong.is_empty(),
        "a different payout under a recorded payment ID was answered as accepted:\n{}",
        wrong.join("\n")
    );
    server.stop().await;
}

/// The same payout posted 30 times at once (a client retrying on a short timeout): one is
/// new (202), the rest are the payout as it stands (200), and the platform is asked once.
/// Found: every request that raced the first one answers 202 "recorded now", so a client
/// cannot tell which call created the payout (the documented 202/200 contract does not hold).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_posts_are_one_202_and_the_rest_200() {
    let server = with_key().await;
    let mut accepted = 0;
    for round in 0..3 {
        // 30 at once is within the key's burst; the bucket refills between rounds.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let id = format!("same-{round}");
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..30 {
            let (http, base, body) = (
                server.http.clone(),
                server.base.clone(),
                payout(&id, 1_500).to_string(),
            );
            calls.spawn(async move { post_raw(&http, &base, "/api/v1/payouts", body).await });
        }
        let mut statuses = Vec::new();
        while let Some(done) = calls.join_next().await {
            let (status, _, body) = done.unwrap();
            assert!(
                status == StatusCode::ACCEPTED || status == StatusCode::OK,
                "{status} {body}"
            );
            statuses.push(status);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(server.sent(&id), 1, "{id} sent once");
        accepted = statuses
            .iter()
            .filter(|s| **s == StatusCode::ACCEPTED)
            .count();
        if accepted != 1 {
            break;
        }
    }
    assert_eq!(
        accepted, 1,
        "one 202 for the payout that was recorded, 200 for the others"
    );
    server.stop().await;
}

/// `next_cursor` is an API-made cursor; following it must work. Found: the cursor is the
/// hex of `NANOS.PAYMENT_ID`, and `read_cursor` refuses anything over 512 hex digits, so a page
/// that ends on a payout whose payment ID is longer than about 235 bytes (IDs may have 255
/// characters, i.e. up to 1020 bytes of UTF-8) hands out a cursor the API then refuses (422
/// "not a cursor this API gave"): the list cannot be paged past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_cursor_after_a_long_payment_id_is_accepted() {
    let server = with_key().await;
    for n in 0..2 {
        let id = format!("{n}{}", "x".repeat(254));
        let (status, _, body) = post_raw(
            &server.http,
            &server.base,
            "/api/v1/payouts",
            payout(&id, 100).to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let (status, _, first) = get(&server, "/api/v1/payouts?limit=1").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (status, _, second) =
        get(&server, &format!("/api/v1/payouts?limit=1&cursor={cursor}")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the cursor the API gave ({} characters) is refused: {second}",
        cursor.len()
    );
    server.stop().await;
}

/// Every error under `/api/` is `application/problem+json` (the API's promise and the
/// `OpenAPI` document's only error schema). Found: a body over 64 KiB (413, "the form is too
/// large", text/plain, before the key is even looked at), a repeated query parameter (axum's
/// 400 text/plain "Failed to deserialize query string"), an undecodable path (400 text/plain)
/// and an unsupported method (405, empty body) are not problem details, and none of 400, 405,
/// 413 is in the document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_error_is_problem_json() {
    let server = with_key().await;
    let mut wrong = Vec::new();
    let big = json!({"payment_id": "big", "phone": "+77011234567", "amount_minor": 1,
                     "customer": {"id": "c"}, "description": "x".repeat(70 * 1024)});
    let answers = [
        (
            "a 70 KiB body",
            post_raw(
                &server.http,
                &server.base,
                "/api/v1/payouts",
                big.to_string(),
            )
            .await,
        ),
        (
            "?wait twice",
            post_raw(
                &server.http,
                &server.base,
                "/api/v1/payouts?wait=1&wait=2",
                payout("dup", 1).to_string(),
            )
            .await,
        ),
        (
            "?limit twice",
            get(&server, "/api/v1/payouts?limit=1&limit=2").await,
        ),
        (
            "a path of invalid UTF-8",
            get(&server, "/api/v1/payouts/%FF%FE").await,
        ),
        (
            "DELETE",
            read(
                server
                    .http
                    .delete(server.url("/api/v1/payouts/x"))
                    .header(AUTHORIZATION, format!("Bearer {PAY_KEY}"))
                    .send()
                    .await
                    .unwrap(),
            )
            .await,
        ),
    ];
    for (what, (status, kind, body)) in answers {
        assert!(!status.is_success(), "{what}: {status} {body}");
        if kind != "application/problem+json" || body.get("type").is_none() {
            wrong.push(format!("{what}: {status} {kind:?} {body}"));
        }
    }
    assert!(server.sent("big") + server.sent("dup") == 0);
    assert!(
        wrong.is_empty(),
        "not problem details:\n{}",
        wrong.join("\n")
    );
    server.stop().await;
}

/// RFC 9110 §11.1: the authentication scheme is case-insensitive, so `bearer KEY` (what some
/// HTTP libraries send) is the same credential. Found: only `Bearer ` with one space is read;
/// `bearer`, `BEARER` and `Bearer\tKEY` are 401 "send the API key as ...".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive() {
    let server = with_key().await;
    let mut refused = Vec::new();
    for header in [format!("bearer {PAY_KEY}"), format!("BEARER {PAY_KEY}")] {
        let answer = server
            .http
            .get(server.url("/api/v1/limits"))
            .header(AUTHORIZATION, &header)
            .send()
            .await
            .unwrap();
        if answer.status() != StatusCode::OK {
            refused.push(format!("{}: {}", &header[..6], answer.status()));
        }
    }
    assert!(refused.is_empty(), "{refused:?}");
    server.stop().await;
}

/// A 422 names the field at fault, and lists every problem at once. Found: the problems the
/// payout builder finds (`;` in description, names or email; a zero amount; a number of a
/// network no operator pays to) come back with `"field": ""`, and only once every other field
/// is valid, so a client fixes one error per round trip and cannot tell which field to show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builder_problems_name_their_field_and_come_with_the_rest() {
    let server = with_key().await;
    let body = json!({"payment_id": "semi", "phone": "+77011234567", "amount_minor": 100,
                      "customer": {"id": "c", "first_name": "A;B", "last_name": "C"},
                      "description": "order 1; gift"});
    let (status, kind, problem) = post_raw(
        &server.http,
        &server.base,
        "/api/v1/payouts",
        body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(kind, "application/problem+json");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(server.sent("semi"), 0, "a `;` is never sent");
    assert!(
        fields.contains(&"description") && fields.contains(&"customer.first_name"),
        "fields named: {fields:?} in {problem}"
    );
    // With another field's problem too, the `;` is reported in the same answer.
    let body = json!({"payment_id": "semi", "phone": "+77011234567", "amount_minor": 100,
                      "customer": {"id": "c"}, "description": "a;b", "colour": "red"});
    let (_, _, problem) = post_raw(
        &server.http,
        &server.base,
        "/api/v1/payouts",
        body.to_string(),
    )
    .await;
    assert!(
        problem.to_string().contains("description"),
        "the `;` is not reported with the other problem: {problem}"
    );
    server.stop().await;
}

/// `?wait=60` holds a connection for up to a minute, and one key may start 20 requests a
/// second (40 at once): 1,200 held connections a minute, where `rp serve` serves 256
/// connections at once (`ConnectionLimits::default()`), console, health checks and (on one
/// listener) the platform's callbacks included. Found: one pay key waiting on payouts that
/// are slow to settle (here the simulator's `0010`, never settled) within its rate locks
/// everyone else out: `/healthz` does not answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_posts_within_the_rate_do_not_lock_out_the_console() {
    let server = with_key().await;
    let mut waits = tokio::task::JoinSet::new();
    let started = tokio::time::Instant::now();
    let mut n = 0;
    // Within the key's rate: the burst, then 20 a second, until 270 are waiting.
    while n < 270 {
        let (http, base) = (server.http.clone(), server.base.clone());
        let body = json!({"payment_id": format!("slow-{n}"), "phone": "+7 701 123 0010",
                          "amount_minor": 100, "customer": {"id": "c"}});
        waits.spawn(async move {
            let _ = tokio::time::timeout(
                Duration::from_secs(70),
                http.post(format!("{base}/api/v1/payouts?wait=60"))
                    .header(AUTHORIZATION, format!("Bearer {PAY_KEY}"))
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.to_string())
                    .send(),
            )
            .await;
        });
        n += 1;
        if n >= rp_console::KEY_BURST as usize {
            tokio::time::sleep(Duration::from_millis(55)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(started.elapsed() < Duration::from_secs(30));
    let health = tokio::time::timeout(
        Duration::from_secs(3),
        reqwest::Client::new().get(server.url("/healthz")).send(),
    )
    .await;
    waits.abort_all();
    assert!(
        health.is_ok_and(|answer| answer.is_ok()),
        "270 ?wait=60 requests of one key (within its rate) left no connection for /healthz"
    );
    server.stop().await;
}

/// A body with a member twice (`{"payment_id": "a", …, "payment_id": "b"}`) means different
/// payouts to different readers: a gateway, an audit log or the client's own code may take
/// the first, `serde_json` takes the last. Found: it is accepted and the *last* one is paid
/// (here a new payout `dup-b` is sent while the sender's records say `dup-a`); it should be a
/// 422 naming the repeated member, nothing sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_given_twice_is_refused() {
    let server = with_key().await;
    let mut paid = Vec::new();
    for (id, body) in [
        (
            "dup-b",
            r#"{"payment_id":"dup-a","phone":"+77011234567","amount_minor":100,"customer":{"id":"c"},"payment_id":"dup-b"}"#,
        ),
        (
            "dup-c",
            r#"{"payment_id":"dup-c","phone":"+77011234567","amount_minor":100,"amount_minor":900000,"customer":{"id":"c"}}"#,
        ),
    ] {
        let (status, _, answer) = post_raw(
            &server.http,
            &server.base,
            "/api/v1/payouts",
            body.to_owned(),
        )
        .await;
        if status != StatusCode::UNPROCESSABLE_ENTITY {
            paid.push(format!("{status} {answer}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if server.sent(id) > 0 {
            paid.push(format!("{id} was sent to the platform"));
        }
    }
    assert!(paid.is_empty(), "{paid:#?}");
    server.stop().await;
}

/// The description refuses control characters; the other free texts that are signed, sent
/// and shown in the console do not. Found: a NUL and a line break in `customer.first_name`,
/// a CR LF in `customer.email` and a line break in `operator` (an unknown operator is kept
/// as it is, any length) are recorded and sent to the platform (a PostgreSQL ledger cannot
/// even store a NUL in text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_are_refused_in_every_text_field() {
    let server = with_key().await;
    let mut accepted = Vec::new();
    for (id, field, value) in [
        ("cc-1", "first_name", "A\u{0}\n"),
        ("cc-2", "email", "a@b.kz\r\nBcc: x@y"),
        ("cc-3", "operator", "KCELL\nX"),
    ] {
        let mut body = json!({"payment_id": id, "phone": "+77011234567", "amount_minor": 100,
                              "customer": {"id": "c"}});
        if field == "operator" {
            body["operator"] = json!(value);
        } else {
            body["customer"][field] = json!(value);
            body["customer"]["last_name"] = json!("B");
            body["customer"]["first_name"] = body["customer"]["first_name"]
                .as_str()
                .map_or(json!("A"), |v| json!(v));
        }
        let (status, _, answer) = post_raw(
            &server.http,
            &server.base,
            "/api/v1/payouts",
            body.to_string(),
        )
        .await;
        if status != StatusCode::UNPROCESSABLE_ENTITY {
            accepted.push(format!("{field} {value:?}: {status} {}", answer["state"]));
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        accepted.is_empty(),
        "control characters accepted (sent: {}): {accepted:#?}",
        ["cc-1", "cc-2", "cc-3"]
            .iter()
            .map(|id| server.sent(id))
            .sum::<usize>()
    );
    server.stop().await;
}
