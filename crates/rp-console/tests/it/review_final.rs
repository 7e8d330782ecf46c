//! Final review of `submit::Unrecorded` (the confirmation's payouts not recorded yet).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rp_console::Settings;

use crate::Server;
use crate::record_wait::{Lock, ledger_file};

/// `Unrecorded` forgets a payment ID as soon as *one* of its submissions ends, keyed by the
/// payment ID alone. The "not yet recorded" page offers only "Pay" again under the same ID:
/// the operator presses it, a second submission waits behind the first in the ledger. The
/// first fails (SQLite's 10 s wait for the lock runs out): the entry is forgotten while the
/// second may still record and send the payout. Meanwhile a new payout to the same number is
/// confirmed without naming it, and the person is paid twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_final_a_payout_pending_again_stays_named_when_its_first_submission_failed() {
    let (url, path) = ledger_file("review-final-again");
    let mut settings = Settings::default();
    settings.record_wait = Duration::from_secs(1);
    let server = Server::start_settled(&url, settings).await;
    let anna = server.login(crate::PAY).await;
    let fields = [
        ("step", "pay"),
        ("payment_id", "locked-9"),
        ("phone", "+77011234567"),
        ("amount", "10"),
        ("customer_id", "c"),
    ];
    let lock = Lock::take(&path, Duration::from_secs(120));
    let started = Instant::now();
    let first = server.post(&anna, "/payouts", &fields).await;
    assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);
    // "Pay" again, as the page offers: the same payment ID and details.
    let second = server.post(&anna, "/payouts", &fields).await;
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The first submission's insert gives up after the ledger's 10 s; the second waits on.
    let until = started + Duration::from_secs(12);
    tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
    let review = [
        ("step", "review"),
        ("phone", "+77011234567"),
        ("amount", "10"),
        ("customer_id", "c"),
    ];
    let page = server.post(&anna, "/payouts", &review).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    lock.release();
    // The second submission records and sends it: it was pending while the page said nothing.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.sent("locked-9") == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = server.sent("locked-9");
    server.stop().await;
    assert_eq!(sent, 1, "the second submission did not send it");
    assert!(
        page.contains("locked-9"),
        "a payout still pending (then sent) is not named on the confirmation of another \
         payout to the same number: {page}"
    );
}
