//! A payout the ledger is slow to record: `POST /api/v1/payouts` answers 202 only once the
//! payout is recorded. Another process holds the SQLite ledger's write lock (a second `rp`
//! on the same file, a backup): past the ledger's own wait the payout is refused whole (503,
//! nothing recorded, nothing sent); past the answer's wait it says the payout may still be
//! recorded, and the same request again tells.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rp_console::Settings;

use crate::Server;
use crate::api::{PAY_KEY, add_keys, call, payout, post_payout};

/// A fresh SQLite ledger file: its URL and path.
pub(crate) fn ledger_file(name: &str) -> (String, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("rp-record-wait-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ledger.db");
    (format!("sqlite:{}", path.display()), path)
}

/// The ledger's write lock, held from another connection as another process would, until
/// [`Lock::release`] or `hold` has passed.
pub(crate) struct Lock {
    release: mpsc::Sender<()>,
    holder: std::thread::JoinHandle<()>,
}

impl Lock {
    /// Takes the lock; returns once it is held.
    pub(crate) fn take(path: &std::path::Path, hold: Duration) -> Lock {
        let (held_tx, held) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let path = path.to_owned();
        let holder = std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            held_tx.send(()).unwrap();
            let _ = released.recv_timeout(hold);
            conn.execute_batch("ROLLBACK").unwrap();
        });
        held.recv().unwrap();
        Lock { release, holder }
    }

    /// Releases it (at once, or when its time is up), and waits until it is released.
    pub(crate) fn release(self) {
        let _ = self.release.send(());
        self.holder.join().unwrap();
    }
}

/// `POST /api/v1/payouts` of 1,500 KZT under `id`, with the pay key.
async fn pay(server: &Server, id: &str) -> (StatusCode, String, serde_json::Value) {
    post_payout(server, payout(id, "1 500")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_the_ledger_could_not_record_is_not_answered_202() {
    let (url, path) = ledger_file("refused");
    let server = Server::start_settled(&url, Settings::default()).await;
    add_keys(&server).await;
    // Held until the answer came: longer than the SQLite ledger waits for a lock (10 s), so
    // the insert fails.
    let lock = Lock::take(&path, Duration::from_secs(120));
    let (status, kind, body) = pay(&server, "locked-1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(kind, "application/problem+json");
    lock.release();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _, found) = call(
        &server,
        "GET",
        "/api/v1/payouts/locked-1",
        Some(PAY_KEY),
        None,
    )
    .await;
    if body["type"] == "urn:rp:problem:ledger-unavailable" {
        // The default wait outlasts the ledger's own (15 s against 10 s): the answer is exact.
        // As answered: nothing recorded, nothing sent, now or later.
        assert_eq!(status, StatusCode::NOT_FOUND, "{found}");
        assert_eq!(server.sent("locked-1"), 0);
    } else {
        // A loaded machine oversleeps SQLite's waits (it counts them, not the clock): then the
        // answer said the payout may still be recorded, and the same request tells.
        assert_eq!(body["type"], "urn:rp:problem:not-yet-recorded", "{body}");
        eprintln!("the ledger's wait outlasted the answer's on this machine: {found}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_not_recorded_within_the_wait_is_said_to_be_pending() {
    let (url, path) = ledger_file("pending");
    let mut settings = Settings::default();
    settings.record_wait = Duration::from_secs(1);
    let server = Server::start_settled(&url, settings).await;
    add_keys(&server).await;
    let lock = Lock::take(&path, Duration::from_secs(60));
    let (status, kind, body) = pay(&server, "locked-2").await;
    // Not a 202: the payout is not recorded yet, and it may still be.
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(kind, "application/problem+json");
    assert_eq!(body["type"], "urn:rp:problem:not-yet-recorded", "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("may still"), "{detail}");
    assert!(detail.contains("same payout again"), "{detail}");
    lock.release();
    // Recorded once the lock went, and sent once; the same request again tells so.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.sent("locked-2") == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _, again) = pay(&server, "locked-2").await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["payment_id"], "locked-2");
    assert_eq!(server.sent("locked-2"), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_says_a_payout_not_recorded_yet_may_still_be() {
    let (url, path) = ledger_file("console");
    let mut settings = Settings::default();
    settings.record_wait = Duration::from_secs(1);
    let server = Server::start_settled(&url, settings).await;
    let anna = server.login(crate::PAY).await;
    let lock = Lock::take(&path, Duration::from_secs(60));
    let answer = server
        .post(
            &anna,
            "/payouts",
            &[
                ("step", "pay"),
                ("payment_id", "locked-3"),
                ("phone", "+77011234567"),
                ("amount", "10"),
                ("customer_id", "c"),
            ],
        )
        .await;
    // Not the redirect to the payout's page (which would not find it yet): the form again,
    // saying what happened and what to do.
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    let page = answer.text().await.unwrap();
    assert!(page.contains("may still record and send it"), "{page}");
    assert!(page.contains("same payout again"), "{page}");
    lock.release();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.sent("locked-3") == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.sent("locked-3"), 1);
    server.stop().await;
}

/// After a "not recorded yet" answer, an operator who starts over from "New payout" for the
/// same person (a new payment ID) is shown the first payout on the confirmation, while the
/// ledger still has not recorded it; once recorded, it is listed once, from the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_confirmation_names_a_payout_to_the_number_not_recorded_yet() {
    let (url, path) = ledger_file("unrecorded");
    let mut settings = Settings::default();
    settings.record_wait = Duration::from_secs(1);
    let server = Server::start_settled(&url, settings).await;
    let anna = server.login(crate::PAY).await;
    let lock = Lock::take(&path, Duration::from_secs(60));
    let fields = [
        ("step", "pay"),
        ("payment_id", "locked-4"),
        ("phone", "+77011234567"),
        ("amount", "10"),
        ("customer_id", "c"),
    ];
    let answer = server.post(&anna, "/payouts", &fields).await;
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    let again = server.review_payout(&anna, "8 (701) 123-45-67", "10").await;
    assert!(
        again.contains("This number was paid 1 time(s)")
            && again.contains("locked-4")
            && again.contains("not recorded yet"),
        "{again}"
    );
    assert!(
        !server
            .review_payout(&anna, "+7 701 123 45 68", "10")
            .await
            .contains("locked-4")
    );
    lock.release();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.sent("locked-4") == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Recorded now: listed once, as the ledger has it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let page = server.review_payout(&anna, "+7 701 123 45 67", "10").await;
        if !page.contains("not recorded yet") {
            assert!(
                page.contains("This number was paid 1 time(s)") && page.contains("locked-4"),
                "{page}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "still unrecorded: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}
