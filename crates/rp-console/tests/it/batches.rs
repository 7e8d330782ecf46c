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
