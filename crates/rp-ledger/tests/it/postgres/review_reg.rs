//! Adversarial review of 1b20aee on PostgreSQL: registrations of a project take turns on a
//! transaction-level advisory lock. Two handles (two processes' pools) racing; the lock let
//! go after a registration that fails, clashes, finds its batch registered, or is abandoned
//! while it waits; claims and payouts never wait for it.

use std::time::{Duration, Instant};

use rp_ledger::{Ledger, NewBatchRow, Registered, RowSource};

use super::{Database, project, server};
use crate::batches::batch_id;
use crate::review_reg::{pay, rows, sized};

/// A registration may take this long here (2 cores, a debug build), no more.
const QUICK: Duration = Duration::from_secs(20);

/// `n` rows of `prefix`, the last paying `shared` with request `hash`.
fn with_shared(prefix: &str, n: u64, shared: &str, hash: &str) -> RowSource {
    let (shared, hash) = (shared.to_owned(), hash.to_owned());
    Box::new(
        rows(prefix, 1, n - 1, "h", None).chain(std::iter::once(Ok(NewBatchRow {
            row: n,
            line: n + 1,
            payment_id: Some(shared),
            request_sha256: Some(hash),
            valid: true,
            cells: b"77012345678;100;c".to_vec(),
            problems: None,
        }))),
    )
}

/// Rows that take `pause` to read after row 1,500 (a slow disk): the registration holds the
/// project's lock meanwhile.
fn slow(prefix: &str, n: u64, pause: Duration) -> RowSource {
    Box::new(rows(prefix, 1, n, "h", None).inspect(move |row| {
        if row.as_ref().is_ok_and(|r| r.row == 1_500) {
            std::thread::sleep(pause);
        }
    }))
}

async fn register_quickly(ledger: &Ledger, id: &str, source: RowSource, n: u64) -> Registered {
    let store = ledger.batches(project(77));
    tokio::time::timeout(QUICK, store.register(sized(id, n), source))
        .await
        .unwrap_or_else(|_| panic!("registration of {id} still waiting after {QUICK:?}"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_reg_postgres_registrations_take_turns_and_let_go() {
    let Some(admin) = server("review_reg_postgres_registrations_take_turns_and_let_go") else {
        return;
    };
    let db = Database::fresh(&admin, "review_reg_turns").await;
    let (a, b) = (db.open().await, db.open().await);

    // Two handles race, each with 3,000 rows and one shared ID for two payouts: one wins.
    for round in 0..4u8 {
        let (x, y) = (batch_id(0x20 + 2 * round), batch_id(0x21 + 2 * round));
        let shared = format!("shared-{round}");
        let (first, second) = tokio::join!(
            register_quickly(
                &a,
                &x,
                with_shared(&format!("a{round}"), 3_000, &shared, "one"),
                3_000
            ),
            register_quickly(
                &b,
                &y,
                with_shared(&format!("b{round}"), 3_000, &shared, "two"),
                3_000
            ),
        );
        let news = [&first, &second]
            .iter()
            .filter(|r| ***r == Registered::New)
            .count();
        let clashes = [&first, &second]
            .iter()
            .filter(|r| matches!(r, Registered::Clashes(c) if c.len() == 1 && c[0].payment_id == shared))
            .count();
        assert_eq!(
            (news, clashes),
            (1, 1),
            "round {round}: {first:?} {second:?}"
        );
    }

    // A registration whose rows fail midway (after two chunks went in): the lock is let go.
    let failing = batch_id(0x40);
    let answer = a
        .batches(project(77))
        .register(
            sized(&failing, 3_000),
            rows("f", 1, 3_000, "h", Some(2_500)),
        )
        .await;
    assert!(answer.is_err(), "{answer:?}");
    let after = register_quickly(&b, &batch_id(0x41), rows("g", 1, 100, "h", None), 100).await;
    assert_eq!(after, Registered::New);
    assert!(
        a.batches(project(77))
            .info(&failing)
            .await
            .unwrap()
            .is_none()
    );

    // Existing and a clash: the lock is let go.
    let again = register_quickly(&a, &batch_id(0x41), rows("g", 1, 100, "h", None), 100).await;
    assert_eq!(again, Registered::Existing);
    let clash = register_quickly(&a, &batch_id(0x42), rows("g", 1, 100, "other", None), 100).await;
    assert!(matches!(clash, Registered::Clashes(_)), "{clash:?}");
    let after = register_quickly(&b, &batch_id(0x43), rows("k", 1, 100, "h", None), 100).await;
    assert_eq!(after, Registered::New);

    // A slow registration holds the lock: a claim and a payout on the other handle do not
    // wait for it; a registration abandoned while it waits leaves nothing behind.
    let held = batch_id(0x44);
    let slow_one = {
        let a = a.clone();
        let held = held.clone();
        tokio::spawn(async move {
            a.batches(project(77))
                .register(
                    sized(&held, 3_000),
                    slow("s", 3_000, Duration::from_secs(4)),
                )
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let started = Instant::now();
    let claimed = b
        .batches(project(77))
        .claim(&batch_id(0x43), "w", Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 10);
    pay(b.store(project(77)).as_ref(), "during-lock").await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "a claim and a payout waited {took:?}"
    );
    let abandoned = batch_id(0x45);
    let waited = tokio::time::timeout(
        Duration::from_millis(500),
        b.batches(project(77))
            .register(sized(&abandoned, 10), rows("ab", 1, 10, "h", None)),
    )
    .await;
    assert!(waited.is_err(), "it waits for the lock: {waited:?}");
    assert_eq!(slow_one.await.unwrap(), Registered::New);
    let after = register_quickly(&b, &batch_id(0x46), rows("m", 1, 100, "h", None), 100).await;
    assert_eq!(after, Registered::New);
    let after = register_quickly(&a, &batch_id(0x47), rows("n", 1, 100, "h", None), 100).await;
    assert_eq!(after, Registered::New);
    assert!(
        b.batches(project(77))
            .info(&abandoned)
            .await
            .unwrap()
            .is_none()
    );
    drop((a, b));
    db.remove().await;
}

/// Registrations queued behind a slow one (here 20, more than the pool's 16 connections) wait
/// for the project's lock without holding a connection: a payout on the same handle goes
/// through meanwhile, and every one of them is registered once the slow one is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_waiting_for_their_turn_leave_the_pool_to_payouts() {
    let Some(admin) = server("registrations_waiting_for_their_turn_leave_the_pool_to_payouts")
    else {
        return;
    };
    let db = Database::fresh(&admin, "review_reg_pool").await;
    let ledger = db.open().await;
    let slow_one = {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            ledger
                .batches(project(77))
                .register(
                    sized(&batch_id(0x60), 3_000),
                    slow("p", 3_000, Duration::from_secs(6)),
                )
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let mut queued = Vec::new();
    for n in 0..20u8 {
        let ledger = ledger.clone();
        queued.push(tokio::spawn(async move {
            ledger
                .batches(project(77))
                .register(
                    sized(&batch_id(0x61 + n), 10),
                    rows(&format!("q{n}"), 1, 10, "h", None),
                )
                .await
                .unwrap()
        }));
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let paid = tokio::time::timeout(
        Duration::from_secs(4),
        pay(ledger.store(project(77)).as_ref(), "beside-the-queue"),
    )
    .await;
    assert!(
        paid.is_ok(),
        "a payout waited for a connection behind registrations waiting for their turn"
    );
    assert_eq!(slow_one.await.unwrap(), Registered::New);
    for registration in queued {
        assert_eq!(registration.await.unwrap(), Registered::New);
    }
    drop(ledger);
    db.remove().await;
}
