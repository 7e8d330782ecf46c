//! The batch worker of `serve`: a batch registered (as `rp batch run` does) and left stopped
//! is resumed and paid once, shown on `/batches`, and its report downloads.

use rp_batch::check_file;
use rp_model::Limits;

use crate::{PAY, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_batch_is_resumed_shown_and_reported() {
    let dir = crate::scratch("batch-worker");
    let server = Server::start(None).await;
    let file = dir.join("payouts.csv");
    std::fs::write(
        &file,
        "phone;amount;customer_id\n+7 701 123 45 67;1 000;c-1\n8 705 765 43 21;2 500,50;c-2\nbad;1;c-3\n",
    )
    .unwrap();
    let report = check_file(&file, &Limits::NONE, |_| {}).unwrap();
    let project = server.desk.client().project_id();
    rp_batch::run::register(
        &file,
        &report,
        server.desk.batches().as_ref(),
        project,
        Limits::NONE,
        rp_ledger::OnClash::Refuse,
    )
    .await
    .unwrap();
    let id = report.batch.to_string();
    let anna = server.login(PAY).await;

    // Nobody ran it: the worker of `serve` picks it up and pays the two valid rows.
    let page = server
        .wait_for(&anna, &format!("/batches/{id}/progress"), "data-final")
        .await;
    assert!(page.contains("2 of 2 valid rows final"), "{page}");
    let payouts: Vec<_> = server
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("payout"))
        .collect();
    assert_eq!(payouts.len(), 2, "each row paid once: {payouts:?}");
    let list = server.get_with(&anna.cookie, "/batches").await.1;
    assert!(
        list.contains("payouts.csv") && list.contains(&id[..12]),
        "{list}"
    );
    // Its payouts in the payments list, filtered by the batch.
    let own = server
        .get_with(&anna.cookie, &format!("/payments?batch={id}"))
        .await
        .1;
    for payment in server.sim.payments() {
        assert!(own.contains(&payment.payment_id), "{own}");
    }
    let bad = server
        .get_with(&anna.cookie, "/payments?batch=nope")
        .await
        .1;
    assert!(bad.contains("64 hex digits"), "{bad}");
    assert!(list.contains("3\u{a0}500,50\u{a0}₸"), "{list}");

    let csv = server
        .http
        .get(server.url(&format!("/batches/{id}/report.csv")))
        .header(reqwest::header::COOKIE, &anna.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(
        lines[1].contains("success") && lines[2].contains("success"),
        "{csv}"
    );
    assert!(lines[3].contains("invalid"), "{csv}");
    // Every paid row's payout is the simulator's.
    for payment in server.sim.payments() {
        assert!(csv.contains(&payment.payment_id), "{csv}");
    }
    server.stop().await;
}

/// Uploads `content` as `name` to `/batches/upload` with the CSRF token `csrf` in the query.
pub(crate) async fn upload(
    server: &Server,
    cookie: &str,
    csrf: &str,
    name: &str,
    content: &str,
) -> reqwest::Response {
    let boundary = "----rp-test-boundary-7MA4YWxkTrZu0gW";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n{content}\r\n--{boundary}--\r\n"
    );
    server
        .http
        .post(server.url(&format!("/batches/upload?csrf={csrf}")))
        .header(reqwest::header::COOKIE, cookie)
        .header(
            reqwest::header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_file_is_checked_confirmed_paid_once_and_reported() {
    let server = Server::start(None).await;
    let anna = server.login(PAY).await;
    let bad = "phone;amount;customer_id\n+7 701 123 45 67;1 000;c-1\n+7 999 111 22 33;50;c-2\n";
    // Without the session's token, nothing is even read.
    assert_eq!(
        upload(&server, &anna.cookie, "wrong", "bad.csv", bad)
            .await
            .status(),
        reqwest::StatusCode::FORBIDDEN
    );
    let checked = upload(&server, &anna.cookie, &anna.csrf, "bad.csv", bad).await;
    assert_eq!(checked.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    let page = checked.text().await.unwrap();
    assert!(
        page.contains("line 3, column phone"),
        "the bad row's error with its line: {page}"
    );
    assert!(!page.contains("Confirm and pay"), "{page}");
    assert!(
        !page.contains("79991112233"),
        "phone numbers masked: {page}"
    );

    let good = "phone;amount;customer_id\n+7 701 123 45 67;1 000;c-1\n+7 705 111 22 33;50;c-2\n+7 747 000 11 22;7,5;c-3\n";
    let checked = upload(&server, &anna.cookie, &anna.csrf, "good.csv", good).await;
    assert_eq!(checked.status(), reqwest::StatusCode::OK);
    let page = checked.text().await.unwrap();
    assert!(page.contains("Confirm and pay"), "{page}");
    assert!(page.contains("3 payouts"), "{page}");
    assert!(page.contains("1\u{a0}057,50\u{a0}₸"), "the total: {page}");
    let start = page.find("/batches/").unwrap() + "/batches/".len();
    let id = page[start..start + 64].to_owned();
    assert!(
        server.sim.requests().is_empty(),
        "nothing sent before the confirmation"
    );

    let confirmed = server
        .post(&anna, &format!("/batches/{id}/confirm"), &[])
        .await;
    assert_eq!(confirmed.status(), reqwest::StatusCode::SEE_OTHER);
    assert_eq!(crate::location(&confirmed), format!("/batches/{id}"));
    let progress = server
        .wait_for(&anna, &format!("/batches/{id}/progress"), "data-final")
        .await;
    assert!(progress.contains("3 of 3 valid rows final"), "{progress}");

    // Confirmed again, uploaded and confirmed again: the same batch, never paid twice.
    let again = server
        .post(&anna, &format!("/batches/{id}/confirm"), &[])
        .await;
    assert_eq!(crate::location(&again), format!("/batches/{id}"));
    let reuploaded = upload(&server, &anna.cookie, &anna.csrf, "good.csv", good).await;
    assert_eq!(reuploaded.status(), reqwest::StatusCode::OK);
    let again = server
        .post(&anna, &format!("/batches/{id}/confirm"), &[])
        .await;
    assert_eq!(crate::location(&again), format!("/batches/{id}"));
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let sent = server
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("payout"))
        .count();
    assert_eq!(sent, 3, "each row paid once");

    let csv = server
        .http
        .get(server.url(&format!("/batches/{id}/report.csv")))
        .header(reqwest::header::COOKIE, &anna.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert_eq!(csv.matches(";success;").count(), 3, "{csv}");
    // Each row's payout is recorded as the confirming operator's.
    let payment = &server.sim.payments()[0];
    let history = server
        .get_with(&anna.cookie, &format!("/payments/{}", payment.payment_id))
        .await
        .1;
    assert!(history.contains("operator:anna"), "{history}");

    // A view operator sees the batch but cannot upload or confirm.
    let victor = server.login(crate::VIEW).await;
    assert_eq!(
        upload(&server, &victor.cookie, &victor.csrf, "good.csv", good)
            .await
            .status(),
        reqwest::StatusCode::FORBIDDEN
    );
    assert_eq!(
        server
            .post(&victor, &format!("/batches/{id}/confirm"), &[])
            .await
            .status(),
        reqwest::StatusCode::FORBIDDEN
    );
    server.stop().await;
}
