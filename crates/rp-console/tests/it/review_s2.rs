//! Adversarial review (s2) of the API's payout submission: each test here failed when it was
//! written, and says what it found.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::api::with_keys;

/// "Metadata numbers `serde_json` does not read exactly are refused (send them as strings)":
/// `6.854443151e75` is refused. Found: `exact()` checks the literal as written, but what is
/// kept is `serde_json`'s shortest rewriting of it, which is read back another way. The same
/// number with a trailing zero, `6.8544431510e75`, is read exactly (so accepted, 202), kept
/// as `6.854443151e+75`, and shown by the API (and sent in webhooks) as
/// `6.854443150999999e75`: not the number sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_s2_a_metadata_number_with_a_trailing_zero_is_kept_as_sent() {
    let server = with_keys().await;
    let mut changed = Vec::new();
    for (n, number) in ["6.8544431510e75", "68544431510e65", "6.85444315100e+75"]
        .into_iter()
        .enumerate()
    {
        let body = format!(
            r#"{{"payment_id": "s2-float-{n}", "phone": "+77011234567", "amount_minor": 100,
                "customer": {{"id": "c"}}, "metadata": {{"x": {number}}}}}"#
        );
        let (status, text) = crate::api::post_text(&server, "/api/v1/payouts", body).await;
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            let problem: Value = serde_json::from_str(&text).unwrap();
            assert!(problem.to_string().contains("metadata"), "{problem}");
            continue;
        }
        assert_eq!(status, StatusCode::ACCEPTED, "{text}");
        let start = text.find(r#""metadata":{"x":"#).unwrap() + r#""metadata":{"x":"#.len();
        let literal = &text[start..start + text[start..].find('}').unwrap()];
        if literal.parse::<f64>().unwrap().to_bits() != number.parse::<f64>().unwrap().to_bits() {
            changed.push(format!("{number} accepted (202) and kept as {literal}"));
        }
    }
    assert!(changed.is_empty(), "{changed:?}");
    server.stop().await;
}

/// "A 422 names the builder's refusals beside every other problem, each field once". Found:
/// the builder's own "missing" and "zero" problems come back under the builder's names, not
/// the API's, so a body with an empty customer and `amount_minor: 0` is answered with
/// `customer.id` *and* `customer_id` (a field the API does not have), `amount_minor` *and*
/// `amount` (which was not sent): the same two problems named twice, once under a wrong name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_s2_a_422_names_each_problem_once_under_the_apis_field_names() {
    let server = with_keys().await;
    let mut wrong = Vec::new();
    for (body, expected) in [
        (
            serde_json::json!({"payment_id": "s2-422-a", "phone": "+77011234567",
                               "amount_minor": 0, "customer": {}}),
            vec!["amount_minor", "customer.id"],
        ),
        (
            serde_json::json!({"payment_id": "s2-422-b", "phone": "+77011234567",
                               "amount_minor": -5, "customer": {"id": "c"}}),
            vec!["amount_minor"],
        ),
    ] {
        let (status, _, problem) = crate::api::post_payout(&server, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        let mut named: Vec<String> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
            .collect();
        named.sort();
        if named != expected {
            wrong.push(format!(
                "{body} named {named:?}, not {expected:?}: {problem}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    server.stop().await;
}

/// The console's payout form, when the ledger has not recorded the payout within the wait,
/// says "it may still record and send it. Send the same payout again (same payment ID and
/// details) to learn whether it is recorded: it is never paid twice". Found: the page it
/// shows is the *new payout* form, which carries no payment ID: its only button, "Review",
/// draws a new payment ID, so the operator who does what the page says (send the same payout
/// again) pays a second payout under another ID, while the first is recorded and sent once
/// the ledger is free: the customer is paid twice. Now the page is the confirmation again,
/// under the same payment ID, without "Change".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_s2_the_consoles_not_yet_recorded_page_resends_under_the_same_id() {
    let dir = std::env::temp_dir().join(format!("rp-review-s2-{}-console", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ledger.db");
    let url = format!("sqlite:{}", path.display());
    let mut settings = rp_console::Settings::default();
    settings.record_wait = Duration::from_secs(1);
    let server = crate::Server::start_settled(&url, settings).await;
    let anna = server.login(crate::PAY).await;
    // Another process holds the ledger's write lock for a few seconds (a backup, say).
    let (held_tx, held) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = {
        let path = path.clone();
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            held_tx.send(()).unwrap();
            let _ = released.recv_timeout(Duration::from_secs(60));
            conn.execute_batch("ROLLBACK").unwrap();
        })
    };
    held.recv().unwrap();
    let fields = [
        ("phone", "+77011234567"),
        ("amount", "10"),
        ("customer_id", "c"),
    ];
    let mut first = vec![("step", "pay"), ("payment_id", "s2-console-1")];
    first.extend(fields);
    let answer = server.post(&anna, "/payouts", &first).await;
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    let page = answer.text().await.unwrap();
    assert!(page.contains("same payout again"), "{page}");
    release.send(()).unwrap();
    holder.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.sent("s2-console-1") == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        server.sent("s2-console-1"),
        1,
        "the first payout is recorded and sent"
    );
    // The page shown is the confirmation again, under the same payment ID, with no way to
    // draw a new one ("Change" leads to the review, which does): its "Pay" sends the same
    // payout, answered as it stands, never a second one.
    assert!(
        page.contains(r#"name="payment_id" value="s2-console-1""#)
            && page.contains(r#"name="step" value="pay""#),
        "{page}"
    );
    assert!(
        !page.contains(r#"name="step" value="edit""#)
            && !page.contains(r#"name="step" value="review""#),
        "{page}"
    );
    let again = server.post(&anna, "/payouts", &first).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(server.sent("s2-console-1"), 1, "the customer is paid once");
    assert_eq!(
        server.sim.requests().len(),
        1,
        "{:?}",
        server.sim.requests()
    );
    server.stop().await;
}
