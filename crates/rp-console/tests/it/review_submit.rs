//! An adversarial review of exactly-once `POST /api/v1/payouts` after `Recorded` began to
//! carry the record (9fee311): the 202 is answered from the inserted record, and the metadata
//! of a payout recorded meanwhile is compared from the record the insert found.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use rp_model::Limits;
use serde_json::{Value, json};

use crate::Server;
use crate::api::{PAY_KEY, READ_KEY, call, with_keys};

async fn post(http: reqwest::Client, url: String, body: Value) -> (StatusCode, Value) {
    let answer = http
        .post(url)
        .header(AUTHORIZATION, format!("Bearer {PAY_KEY}"))
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let text = answer.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn body(id: &str, amount_minor: u64, metadata: Option<Value>) -> Value {
    let mut b = json!({"payment_id": id, "phone": "+7 701 123 45 67", "amount_minor": amount_minor,
        "customer": {"id": "c-1"}, "description": "review"});
    if let Some(m) = metadata {
        b["metadata"] = m;
    }
    b
}

/// The fields of a payout that a later `GET` must agree on with the 202.
const STABLE: [&str; 10] = [
    "payment_id",
    "phone",
    "amount",
    "amount_minor",
    "currency",
    "customer_id",
    "description",
    "metadata",
    "created_at",
    "settled",
];

/// Posts every `(amount, metadata)` under `id` at once, and says what is wrong with the
/// answers: not exactly one 202; a 202 or 200 that is not the recorded payout (its amount and
/// metadata as posted); a 409 for a post that is the recorded payout; any other answer; the
/// payout not sent exactly once.
async fn race(server: &Server, id: &str, posts: Vec<(u64, Value)>) -> Vec<String> {
    let mut calls = tokio::task::JoinSet::new();
    for (n, (amount, metadata)) in posts.into_iter().enumerate() {
        let asked = body(id, amount, Some(metadata.clone()));
        let (http, url) = (server.http.clone(), server.url("/api/v1/payouts"));
        calls.spawn(async move { (n, amount, metadata, post(http, url, asked).await) });
    }
    let mut answers = Vec::new();
    while let Some(done) = calls.join_next().await {
        answers.push(done.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let path = format!("/api/v1/payouts/{id}");
    let (_, _, recorded) = call(server, "GET", &path, Some(READ_KEY), None).await;
    let mut wrong = Vec::new();
    let accepted = answers
        .iter()
        .filter(|a| a.3.0 == StatusCode::ACCEPTED)
        .count();
    if accepted != 1 {
        wrong.push(format!("{id}: {accepted} answers 202"));
    }
    for (n, amount, metadata, (status, answer)) in &answers {
        let same = recorded["amount_minor"] == json!(amount) && recorded["metadata"] == *metadata;
        let ok = match *status {
            StatusCode::ACCEPTED | StatusCode::OK => {
                same && answer["amount_minor"] == json!(amount) && answer["metadata"] == *metadata
            }
            StatusCode::CONFLICT => !same,
            _ => false,
        };
        if !ok {
            wrong.push(format!(
                "{id} #{n} (amount {amount}, metadata {metadata}): {status} {answer}; recorded {recorded}"
            ));
        }
    }
    let sent = server.sent(id);
    if sent != 1 {
        wrong.push(format!("{id}: sent {sent} times"));
    }
    wrong
}

/// The 202 is the payout as recorded: its state, amounts, metadata, and what `GET` shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_submit_a_new_payout_is_answered_as_recorded() {
    let server = with_keys().await;
    let metadata = json!({"order": "A-17", "n": 1.5, "nested": {"b": [1, 2], "a": null}});
    let asked = json!({"payment_id": "rs-new-1", "phone": "8 701 123 45 67", "amount": "1 500,50",
        "currency": "KZT", "customer": {"id": "c-9"}, "description": "first", "metadata": metadata});
    let (status, _, created) = call(
        &server,
        "POST",
        "/api/v1/payouts",
        Some(PAY_KEY),
        Some(asked.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    assert_eq!(created["payment_id"], "rs-new-1");
    assert_eq!(created["state"], "created", "{created}");
    assert_eq!(created["settled"], false);
    assert_eq!(created["amount_minor"], 150_050);
    assert_eq!(created["amount"], "1500.50", "{created}");
    assert_eq!(created["currency"], "KZT");
    assert!(
        created["phone"].as_str().unwrap().ends_with("77011234567"),
        "{created}"
    );
    assert_eq!(created["customer_id"], "c-9");
    assert_eq!(created["description"], "first");
    assert_eq!(created["metadata"], metadata);
    assert_eq!(created["attention"], Value::Null);
    let (_, _, shown) = call(
        &server,
        "GET",
        "/api/v1/payouts/rs-new-1",
        Some(READ_KEY),
        None,
    )
    .await;
    for field in STABLE {
        if field != "settled" {
            assert_eq!(
                created[field], shown[field],
                "{field}: 202 {created} vs GET {shown}"
            );
        }
    }
    // The same again: 200, as it stands; other metadata: 409, nothing changed.
    let (status, _, again) = call(
        &server,
        "POST",
        "/api/v1/payouts?wait=15",
        Some(PAY_KEY),
        Some(asked.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["settled"], true, "?wait= waits: {again}");
    let mut other = asked.clone();
    other["metadata"] = json!({"order": "A-18"});
    let before = server
        .desk
        .client()
        .store()
        .events(&rp_model::PaymentId::new("rs-new-1").unwrap())
        .await
        .unwrap()
        .len();
    let (status, _, conflict) = call(
        &server,
        "POST",
        "/api/v1/payouts",
        Some(PAY_KEY),
        Some(other),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    let mut none = asked.clone();
    none.as_object_mut().unwrap().remove("metadata");
    let (status, _, conflict) = call(
        &server,
        "POST",
        "/api/v1/payouts",
        Some(PAY_KEY),
        Some(none),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "no metadata is other metadata: {conflict}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = server
        .desk
        .client()
        .store()
        .events(&rp_model::PaymentId::new("rs-new-1").unwrap())
        .await
        .unwrap()
        .len();
    assert_eq!(before, after, "a 409 changes nothing");
    assert_eq!(server.sent("rs-new-1"), 1);
    server.stop().await;
}

/// Many posts under one payment ID at once, some the same, some with other metadata, some
/// with another amount: one 202; every 200 is the poster's own payout and metadata; every
/// other answer is 409; one payout recorded and sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_submit_mixed_concurrent_posts_are_one_202_and_the_rest_by_their_content() {
    let server = with_keys().await;
    let mut wrong = Vec::new();
    for round in 0..4 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let id = format!("rs-mix-{round}");
        // 0..12: same as each other; 12..18: other metadata (each different);
        // 18..24: another amount, the same metadata as the first group.
        let posts = (0..24u64)
            .map(|n| match n {
                0..12 => (1_000, json!({"k": "same"})),
                12..18 => (1_000, json!({"k": format!("other-{n}")})),
                _ => (1_000 + n, json!({"k": "same"})),
            })
            .collect();
        wrong.extend(race(&server, &id, posts).await);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    server.stop().await;
}

/// Under limits (the insert reads the usage in the writer's transaction): over the limit is
/// 422 over-limit with nothing recorded; concurrent posts under one ID, some with other
/// metadata, still give one 202 (the insert finds the record first when limits are set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_submit_under_limits_over_is_422_and_races_are_by_content() {
    let mut limits = Limits::NONE;
    limits.max_amount = Some(100_000);
    limits.daily_count = Some(3);
    let server = Server::start_limited(limits).await;
    crate::api::add_keys(&server).await;
    let (status, _, over) = call(
        &server,
        "POST",
        "/api/v1/payouts",
        Some(PAY_KEY),
        Some(body("rs-lim-big", 100_001, None)),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{over}");
    assert_eq!(over["type"], "urn:rp:problem:over-limit", "{over}");
    let (status, _, _) = call(
        &server,
        "GET",
        "/api/v1/payouts/rs-lim-big",
        Some(READ_KEY),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing recorded");
    let mut wrong = Vec::new();
    for round in 0..3 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let id = format!("rs-lim-{round}");
        let posts = (0..20u64)
            .map(|n| (500, json!({"k": if n % 2 == 0 { "a" } else { "b" }})))
            .collect();
        wrong.extend(race(&server, &id, posts).await);
    }
    // The daily count (3) is used up: the next is over the limit.
    let (status, _, over) = call(
        &server,
        "POST",
        "/api/v1/payouts",
        Some(PAY_KEY),
        Some(body("rs-lim-4th", 500, None)),
    )
    .await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{over}");
    assert_eq!(over["type"], "urn:rp:problem:over-limit", "{over}");
    server.stop().await;
}
