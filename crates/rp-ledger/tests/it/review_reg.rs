//! Adversarial review of 1b20aee ("registration checks the batch's payment IDs in its own
//! transaction"): what a clashing or failed registration leaves behind, what the next writes
//! on the same writer see, and how long the check holds the single SQLite writer.

use std::time::Duration;

use rp_ledger::{Ledger, NewBatch, NewBatchRow, Registered, RowSource};
use rp_model::{Limits, ProjectId};
use rp_payout::conformance::record;
use rp_payout::{EventSource, Inserted, PayoutEvent, PayoutState, PayoutStore};

use crate::batches::{batch_id, new_batch};

const LEASE: Duration = Duration::from_secs(60);

fn project(id: u64) -> ProjectId {
    ProjectId::new(id).unwrap()
}

fn url(path: &std::path::Path) -> String {
    format!("sqlite:{}", path.display())
}

/// Valid rows `prefix-<from>..prefix-<from+n-1>`, each paying request hash `hash-<k>`, but
/// the rows whose number is in `bad` are an error of the source (a file that fails midway).
pub(crate) fn rows(prefix: &str, from: u64, n: u64, hash: &str, bad: Option<u64>) -> RowSource {
    let (prefix, hash) = (prefix.to_owned(), hash.to_owned());
    Box::new((1..=n).map(move |row| {
        if Some(row) == bad {
            return Err(format!("row {row}: the file changed under us"));
        }
        let k = from + row - 1;
        Ok(NewBatchRow {
            row,
            line: row + 1,
            payment_id: Some(format!("{prefix}-{k}")),
            request_sha256: Some(format!("{hash}-{k}")),
            valid: true,
            cells: format!("7701{k:07};100;c{k}").into_bytes(),
            problems: None,
        })
    }))
}

pub(crate) fn sized(id: &str, n: u64) -> NewBatch {
    new_batch(id, n, &[])
}

pub(crate) async fn pay(store: &dyn PayoutStore, id: &str) {
    let r = record(id, "77011234567", 100, 0);
    let event = PayoutEvent::new(r.created_at, EventSource::Call, None, PayoutState::Created);
    let inserted = store.insert(r, event, Limits::NONE).await.unwrap();
    assert!(matches!(inserted, Inserted::New(_)), "{id}");
}

/// After a registration that clashes (and one whose rows fail midway), the writer goes on:
/// payouts, another registration, claims and finishing rows all commit and survive a reopen;
/// nothing of the refused batches is left (header, rows, holding of IDs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_reg_the_writer_goes_on_after_a_refused_registration() {
    let dir = crate::scratch("review_reg_writer_goes_on");
    let path = dir.join("ledger.db");
    let (a, b, c, d) = (
        batch_id(0xa1),
        batch_id(0xb1),
        batch_id(0xc1),
        batch_id(0xd1),
    );
    {
        let ledger = Ledger::open(&url(&path)).await.unwrap();
        let batches = ledger.batches(project(7));
        let store = ledger.store(project(7));
        let reg = batches.register(sized(&a, 10), rows("x", 1, 10, "h", None));
        assert_eq!(reg.await.unwrap(), Registered::New);
        // b: rows 1..10 are new, row 11.. hold a's IDs for other requests.
        let clashing: RowSource = Box::new(rows("y", 1, 10, "h", None).chain(
            rows("x", 1, 3, "other", None).map(|r| {
                r.map(|mut r| {
                    r.row += 10;
                    r.line += 10;
                    r
                })
            }),
        ));
        let answer = batches.register(sized(&b, 13), clashing).await.unwrap();
        let Registered::Clashes(found) = answer else {
            panic!("{answer:?}")
        };
        assert_eq!(found.len(), 3, "{found:?}");
        // Straight after, on the same writer: a payout, a registration, claims.
        pay(store.as_ref(), "after-clash-1").await;
        // The refused batch's own new IDs are not held: a third batch may use them for
        // another payout.
        let reg = batches.register(sized(&c, 10), rows("y", 1, 10, "third", None));
        assert_eq!(
            reg.await.unwrap(),
            Registered::New,
            "b's IDs held by nothing"
        );
        let claimed = batches.claim(&c, "w1", LEASE, 5).await.unwrap();
        assert_eq!(claimed.len(), 5);
        // A registration whose rows fail midway: an error, nothing written.
        let failing = batches
            .register(sized(&d, 10), rows("z", 1, 10, "h", Some(7)))
            .await;
        assert!(failing.is_err(), "{failing:?}");
        pay(store.as_ref(), "after-error-1").await;
        let reg = batches.register(sized(&d, 10), rows("z", 1, 10, "h", None));
        assert_eq!(
            reg.await.unwrap(),
            Registered::New,
            "d registers after its failure"
        );
        assert!(batches.progress(&b).await.unwrap().is_none());
        let listed = batches.list(None, 100).await.unwrap();
        let ids: Vec<&str> = listed.iter().map(|p| p.info.batch.id.as_str()).collect();
        assert!(!ids.contains(&b.as_str()), "{ids:?}");
    }
    // Everything after the refusals was committed.
    let ledger = Ledger::open(&url(&path)).await.unwrap();
    let store = ledger.store(project(7));
    for id in ["after-clash-1", "after-error-1"] {
        let id = rp_model::PaymentId::new(id.to_owned()).unwrap();
        assert!(store.get(&id).await.unwrap().is_some(), "{id} survives");
    }
    let batches = ledger.batches(project(7));
    for id in [&a, &c, &d] {
        assert!(batches.progress(id).await.unwrap().is_some());
    }
    assert!(batches.progress(&b).await.unwrap().is_none());
}
