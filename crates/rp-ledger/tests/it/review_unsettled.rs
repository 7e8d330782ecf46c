//! Review of 52473b2 (`unsettled` leaves out the records it cannot read and fills the page
//! from the rows after them). SQLite only: PostgreSQL's `text` is always valid UTF-8, so its
//! payment ID column always reads as a `String`.

use std::sync::Arc;

use rp_payout::PayoutStore;

use crate::review_aside::{Place, insert};
use crate::unreadable::make_unreadable;

async fn store(name: &str, project: u64) -> (String, Arc<dyn PayoutStore>, rp_ledger::Ledger) {
    let url = Place::Sqlite.url(name);
    let ledger = rp_ledger::Ledger::open(&url).await.unwrap();
    let store = ledger.store(rp_model::ProjectId::new(project).unwrap());
    (url, store, ledger)
}

fn sql(url: &str, statement: &str) {
    let conn = rusqlite::Connection::open(url.replace("sqlite:", "")).unwrap();
    // The events keep the old ID: only the record's key is changed.
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    conn.execute(statement, []).unwrap();
}

fn ids(page: &[rp_payout::PayoutRecord]) -> Vec<&str> {
    page.iter().map(|r| r.payment_id.as_str()).collect()
}

/// A payment ID stored as text that is not UTF-8 (another writer, a hand repair, a
/// corruption): the record is as unreadable as one with a newer state, but `row.get(0)?`
/// fails the whole query, so every page that holds it fails, and reconcile stops there
/// again: the failure 52473b2 set out to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_id_that_is_not_utf8_stops_no_page() {
    let (url, store, _ledger) = store("review-unsettled-utf8", 7201).await;
    for id in ["r-1", "r-2", "r-3", "r-4"] {
        insert(&store, id).await;
    }
    // "r-3" becomes the bytes 72 2D 33 FF, still text, still between r-2 and r-4.
    sql(
        &url,
        "UPDATE payouts SET payment_id = CAST(X'722D33FF' AS TEXT) WHERE payment_id = 'r-3'",
    );
    let page = store
        .unsettled(None, 10)
        .await
        .expect("unsettled answers with what it could read");
    assert_eq!(ids(&page), ["r-1", "r-2", "r-4"]);
}

/// The same with a payment ID stored as a BLOB: SQLite sorts it after every text, so it is on
/// the last page, and the readable payouts on that page (here r-4) are never reconciled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_id_stored_as_a_blob_stops_no_page() {
    let (url, store, _ledger) = store("review-unsettled-blob", 7202).await;
    for id in ["r-1", "r-2", "r-3", "r-4"] {
        insert(&store, id).await;
    }
    sql(
        &url,
        "UPDATE payouts SET payment_id = X'722D30' WHERE payment_id = 'r-3'",
    );
    let first = store.unsettled(None, 2).await.unwrap();
    assert_eq!(ids(&first), ["r-1", "r-2"]);
    let last = store
        .unsettled(Some(first[1].payment_id.clone()), 2)
        .await
        .expect("the last page answers with what it could read");
    assert_eq!(ids(&last), ["r-4"]);
}

/// What held: limit 0, every row unreadable, unreadable rows at a page's end, a full page
/// whose last rows are unreadable (the next page starts after the last readable one and
/// skips them again), never more than `limit`, always in payment-ID order.
pub(crate) async fn edge_cases_that_hold_on(place: &Place, project: u64) {
    let url = place.url("review-unsettled-edges");
    let ledger = rp_ledger::Ledger::open(&url).await.unwrap();
    let store = ledger.store(rp_model::ProjectId::new(project).unwrap());
    let all: Vec<String> = (0..12).map(|n| format!("e-{n:02}")).collect();
    for id in &all {
        insert(&store, id).await;
    }
    assert!(store.unsettled(None, 0).await.unwrap().is_empty());
    for id in ["e-01", "e-02", "e-03", "e-07", "e-10", "e-11"] {
        make_unreadable(place, &url, project, id).await;
    }
    // Walk with every limit: the readable ones, once each, in order.
    let readable = ["e-00", "e-04", "e-05", "e-06", "e-08", "e-09"];
    for limit in 1..=8 {
        let (mut seen, mut after) = (Vec::new(), None);
        loop {
            let page = store.unsettled(after.take(), limit).await.unwrap();
            assert!(page.len() <= limit);
            let full = page.len() == limit;
            after = page.last().map(|r| r.payment_id.clone());
            seen.extend(page.iter().map(|r| r.payment_id.as_str().to_owned()));
            if !full || after.is_none() {
                break;
            }
        }
        assert_eq!(seen, readable, "limit {limit}");
    }
    // Every row unreadable: an empty page, at once.
    for id in readable {
        make_unreadable(place, &url, project, id).await;
    }
    assert!(store.unsettled(None, 3).await.unwrap().is_empty());
    assert!(store.unsettled(None, usize::MAX).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_cases_that_hold_on_sqlite() {
    edge_cases_that_hold_on(&Place::Sqlite, 7203).await;
}

/// The payments list (the console's, the API's `GET /api/v1/payouts`) over the same foreign
/// payment IDs: not UTF-8, a BLOB, and text this rp does not take as a payment ID (a control
/// character, from a newer rp's looser rules, say). Each is left out of its page and the
/// page filled from the rows after it, as `unsettled` does, rather than failing every page
/// that holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_payment_ids_stop_no_list_page() {
    let (url, store, _ledger) = store("review-list-foreign", 7203).await;
    let all: Vec<String> = (0..8).map(|n| format!("l-{n}")).collect();
    for id in &all {
        insert(&store, id).await;
        // Distinct creation times: the list's order is newest first.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    for statement in [
        "UPDATE payouts SET payment_id = CAST(X'6C2D36FF' AS TEXT) WHERE payment_id = 'l-6'",
        "UPDATE payouts SET payment_id = X'6C2D34' WHERE payment_id = 'l-4'",
        "UPDATE payouts SET payment_id = 'l-' || char(10) || '2' WHERE payment_id = 'l-2'",
    ] {
        sql(&url, statement);
    }
    let readable = ["l-7", "l-5", "l-3", "l-1", "l-0"];
    for size in 1..=6 {
        let mut query = rp_payout::PayoutQuery::new();
        query.limit = size;
        let mut seen = Vec::new();
        loop {
            let page = store
                .list(&query)
                .await
                .unwrap_or_else(|e| panic!("page size {size}: {e}"));
            assert!(page.len() <= size);
            seen.extend(page.iter().map(|r| r.payment_id.as_str().to_owned()));
            match page.last() {
                Some(last) if page.len() == size => {
                    query.after = Some((last.created_at, last.payment_id.clone()));
                }
                _ => break,
            }
        }
        assert_eq!(seen, readable, "page size {size}");
    }
}
