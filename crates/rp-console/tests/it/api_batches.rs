//! Batches through the JSON API against a real `serve` and simulator: every row checked
//! before anything is sent, the same file never paid twice, a JSON array as good as a file,
//! the report, and the roles.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::Server;
use crate::api::{PAY_KEY, READ_KEY, with_keys};

/// `POST /api/v1/batches{query}` with `body` of `kind`: status and JSON.
pub(crate) async fn post_batch(
    server: &Server,
    key: &str,
    query: &str,
    kind: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let answer = server
        .http
        .post(server.url(&format!("/api/v1/batches{query}")))
        .header(AUTHORIZATION, format!("Bearer {key}"))
        .header(CONTENT_TYPE, kind)
        .body(body)
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

async fn get(server: &Server, path: &str) -> (StatusCode, String) {
    let answer = server
        .http
        .get(server.url(path))
        .header(AUTHORIZATION, format!("Bearer {READ_KEY}"))
        .send()
        .await
        .unwrap();
    (answer.status(), answer.text().await.unwrap())
}

/// Polls the batch until every row's payout is final.
pub(crate) async fn until_done(server: &Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, text) = get(server, &format!("/api/v1/batches/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let batch: Value = serde_json::from_str(&text).unwrap();
        if batch["state"] == "done" {
            return batch;
        }
        assert!(Instant::now() < deadline, "never done: {batch}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_through_the_api_is_checked_whole_and_paid_once() {
    let server = with_keys().await;
    let bad = "phone;amount;customer_id;payment_id\n\
               +7 701 510 20 01;1 500;c-1;api-b-1\n\
               +7 703 000 00 00;abc;c-2;api-b-2\n";
    let (status, problem) = post_batch(&server, PAY_KEY, "", "text/csv", bad.into()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["type"], "urn:rp:problem:invalid-rows");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"line 3, column phone"), "{fields:?}");
    assert!(fields.contains(&"line 3, column amount"), "{fields:?}");
    assert!(server.sim.requests().is_empty(), "nothing sent");
    assert!(
        server
            .desk
            .batches()
            .list(None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A read key may not pay; another content type is refused.
    let good = "phone;amount;customer_id;payment_id\n\
                +7 701 510 20 01;1 500;c-1;api-b-1\n\
                +7 701 510 20 02;2 000,50;c-2;api-b-2\n";
    let (status, _) = post_batch(&server, READ_KEY, "", "text/csv", good.into()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post_batch(&server, PAY_KEY, "", "application/xml", good.into()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // check_only: the summary, nothing registered.
    let (status, summary) = post_batch(
        &server,
        PAY_KEY,
        "?check_only=true",
        "text/csv",
        good.into(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["valid_rows"], 2);
    assert_eq!(summary["totals"][0]["amount_minor"], 350_050);
    assert!(
        server
            .desk
            .batches()
            .list(None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let (status, batch) = post_batch(
        &server,
        PAY_KEY,
        "?file_name=june.csv",
        "text/csv",
        good.into(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{batch}");
    let id = batch["id"].as_str().unwrap().to_owned();
    assert_eq!(id, summary["id"], "the ID is the file's SHA-256");
    assert_eq!(batch["file_name"], "june.csv");
    let done = until_done(&server, &id).await;
    assert_eq!(done["by_state"]["success"], 2, "{done}");
    // The same file again: the batch as it stands, nothing paid again.
    let (status, again) = post_batch(&server, PAY_KEY, "", "text/csv", good.into()).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], id.as_str());
    for payment in ["api-b-1", "api-b-2"] {
        let sent = server
            .sim
            .requests()
            .iter()
            .filter(|r| r.path.contains("payout") && r.payment_id.as_deref() == Some(payment))
            .count();
        assert_eq!(sent, 1, "{payment} paid once");
    }
    // The report: every row with its outcome, phones masked.
    let (status, report) = get(&server, &format!("/api/v1/batches/{id}/report.csv")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report.matches(";success;success;").count(), 2, "{report}");
    assert!(
        !report.contains("510 20 01") && !report.contains("77015102001"),
        "{report}"
    );
    let (status, _) = get(&server, &format!("/api/v1/batches/{}", "0".repeat(64))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&server, "/api/v1/batches/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The batch's payouts through the payouts list: in file order, phones masked; other
    // filters do not apply to it; by source.
    let (status, listed) = get(&server, &format!("/api/v1/payouts?batch={id}")).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["payment_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["api-b-1", "api-b-2"]);
    let (status, _) = get(
        &server,
        &format!("/api/v1/payouts?batch={id}&state=success"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, by_source) = get(&server, "/api/v1/payouts?source=batch").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        by_source.contains("api-b-1") && by_source.contains("api-b-2"),
        "{by_source}"
    );
    let (status, _) = get(&server, "/api/v1/payouts?source=fax").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // A payment ID the ledger holds for another payout: 409, nothing sent.
    let clash = "phone;amount;customer_id;payment_id\n+7 701 510 20 03;99;c-3;api-b-1\n";
    let (status, conflict) = post_batch(&server, PAY_KEY, "", "text/csv", clash.into()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    assert_eq!(conflict["errors"][0]["field"], "line 2, column payment_id");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_array_is_a_batch_too() {
    let server = with_keys().await;
    let items = json!([
        {"payment_id": "api-j-1", "phone": "+7 701 510 30 01", "amount": "100", "customer": {"id": "c-1"}},
        {"payment_id": "api-j-2", "phone": "8 701 510 30 02", "amount_minor": 20_050, "customer": {"id": "c-2"}, "description": "bonus"}
    ]);
    let bad = json!([{"payment_id": "x", "phone": "+7 701 510 30 01", "amount": "0", "customer": {"id": "c-1"}}]);
    let (status, problem) = post_batch(
        &server,
        PAY_KEY,
        "",
        "application/json",
        bad.to_string().into(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "[0].amount", "{problem}");
    let (status, batch) = post_batch(
        &server,
        PAY_KEY,
        "",
        "application/json",
        items.to_string().into(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{batch}");
    assert_eq!(batch["totals"][0]["amount"], "300.50");
    let done = until_done(&server, batch["id"].as_str().unwrap()).await;
    assert_eq!(done["by_state"]["success"], 2, "{done}");
    // Paid as the key: the history says who.
    let (_, events) = get(&server, "/api/v1/payouts/api-j-2/events").await;
    assert!(events.contains("operator:api:backend"), "{events}");
    server.stop().await;
}

/// A file larger than a form (64 KiB) is a batch all the same: the API reads it in its own
/// time, up to the upload size; a small request to any other path is still read whole first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_larger_than_a_form_is_read_whole() {
    let server = with_keys().await;
    let mut csv = String::from("phone;amount;customer_id;payment_id;description\n");
    let mut rows = 0;
    while csv.len() < 200 * 1024 {
        rows += 1;
        csv.push_str(&format!(
            "+7 701 {:03} {:02} {:02};100;c-{rows};big-{rows};{}\n",
            rows / 10_000 % 1000,
            rows / 100 % 100,
            rows % 100,
            "x".repeat(40)
        ));
    }
    let (status, summary) =
        post_batch(&server, PAY_KEY, "?check_only=true", "text/csv", csv.into()).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["valid_rows"], rows, "{summary}");
    server.stop().await;
}

/// Sends `POST path` with `headers` and a chunked body whose second chunk is malformed
/// (its size is not hexadecimal), and reads the answer's status line and body.
async fn post_broken_chunks(server: &Server, path: &str, headers: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\n{headers}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// A body that cannot be read (here, broken chunked encoding) is the client's error, 400,
/// saying so; not 413 "too large" (what every read error was answered, misleading whoever
/// sent a small file), on the API's batches, the API's other routes and the console's forms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_body_is_400_not_413() {
    let server = with_keys().await;
    let auth = format!("Authorization: Bearer {PAY_KEY}\r\nContent-Type: text/csv\r\n");
    let json = format!("Authorization: Bearer {PAY_KEY}\r\nContent-Type: application/json\r\n");
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    let mut wrong = Vec::new();
    for (path, headers) in [
        ("/api/v1/batches", auth.as_str()),
        ("/api/v1/payouts", json.as_str()),
        ("/login", form),
    ] {
        let answer = post_broken_chunks(&server, path, headers).await;
        let readable = answer.contains("could not be read");
        if !answer.starts_with("HTTP/1.1 400") || !readable {
            wrong.push(format!("{path}: {answer}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n---\n"));
    server.stop().await;
}

/// Registers `csv` as a batch in the server's ledger without paying it (a batch whose worker
/// has not reached it yet, or whose process stopped right after registering): its ID.
pub(crate) async fn register_unpaid(server: &Server, name: &str, csv: &str) -> String {
    let dir = std::env::temp_dir().join(format!("rp-unpaid-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, csv).unwrap();
    let limits = rp_model::Limits::NONE;
    let report = rp_batch::check_file(&path, &limits, |_| {}).unwrap();
    let project = server.desk.client().project_id();
    rp_batch::run::register(
        &path,
        &report,
        server.desk.batches().as_ref(),
        project,
        limits,
        rp_ledger::OnClash::Refuse,
    )
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    report.batch.to_string()
}

/// A payment ID that another batch, not paid yet, holds for a different payout is a clash
/// found at upload: 409 naming that batch and its line, nothing recorded. Before, only the
/// ledger's payouts were looked at, so both batches were accepted and the clash came out late,
/// as a `conflict` row of whichever batch paid second. The same payout in both files is no
/// clash (it is paid once, by whichever pays first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_id_another_unpaid_batch_holds_is_a_clash_at_upload() {
    // The batch worker does not look for the unpaid batch during the test.
    let server = Server::start_with("sqlite::memory:", None, Duration::from_secs(3600)).await;
    crate::api::add_keys(&server).await;
    let first = "phone;amount;customer_id;payment_id\n\
                 +7 701 510 40 01;100;c-1;held-1\n+7 701 510 40 02;200;c-2;held-2\n";
    let held_by = register_unpaid(&server, "first.csv", first).await;

    // held-1 for another amount: a clash with the first batch's line 2.
    let other = "phone;amount;customer_id;payment_id\n+7 701 510 40 01;150;c-1;held-1\n";
    let (status, conflict) = post_batch(&server, PAY_KEY, "", "text/csv", other.into()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    assert_eq!(conflict["errors"][0]["field"], "line 2, column payment_id");
    let message = conflict["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains(&held_by[..12]) && message.contains("line 2"),
        "the message names neither the batch nor its line: {message}"
    );
    assert_eq!(server.desk.batches().list(None, 10).await.unwrap().len(), 1);

    // The same payout as the first batch's (and a new one): accepted.
    let same = "phone;amount;customer_id;payment_id\n\
                +7 701 510 40 02;200;c-2;held-2\n+7 701 510 40 03;300;c-3;new-3\n";
    let (status, accepted) = post_batch(&server, PAY_KEY, "", "text/csv", same.into()).await;
    assert!(status.is_success(), "{status} {accepted}");
    server.stop().await;
}
