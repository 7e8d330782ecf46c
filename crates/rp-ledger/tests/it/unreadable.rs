//! A payout record this rp cannot read (its state written by a newer rp, say, in a rolling
//! upgrade) holds up nothing else, on SQLite and PostgreSQL:
//! - a claimed delivery of it: the claim answers with the others, and that one stays claimed
//!   until its lease ends (then it is tried again);
//! - reconcile's walk over the unsettled payouts, and the lists of the console and the API:
//!   it is left out, and each page is filled from the payouts after it.

use std::time::Duration;

use crate::review_aside::{Place, insert};

const LEASE: Duration = Duration::from_secs(600);

/// What a newer rp might write as a state: valid JSON, no state this rp knows.
const NEWER_STATE: &str = r#"{"kind":"state_of_a_newer_rp"}"#;

/// The scenario on `place`, in project `project`.
pub(crate) async fn an_unreadable_delivery_holds_up_no_other(place: &Place, project: u64) {
    let url = place.url("unreadable");
    let ledger = rp_ledger::Ledger::open(&url).await.unwrap();
    let project_id = rp_model::ProjectId::new(project).unwrap();
    let (store, hooks) = (ledger.store(project_id), ledger.webhooks(project_id));
    hooks
        .add_endpoint("https://merchant.example/u", "whsec_dQ==")
        .await
        .unwrap();
    for id in ["u-ok-1", "u-newer", "u-ok-2"] {
        insert(&store, id).await;
    }
    make_unreadable(place, &url, project, "u-newer").await;

    let claimed = hooks
        .claim_due("w", LEASE, 10)
        .await
        .expect("the claim answers with what it could read");
    let mut ids: Vec<&str> = claimed.iter().map(|c| c.key.payment_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["u-ok-1", "u-ok-2"]);
    // The unreadable one is held until its lease ends, not claimed again at once.
    let again = hooks.claim_due("w", LEASE, 10).await.unwrap();
    assert!(
        again.is_empty(),
        "{:?}",
        again.iter().map(|c| &c.key).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_delivery_holds_up_no_other_on_sqlite() {
    an_unreadable_delivery_holds_up_no_other(&Place::Sqlite, 7101).await;
}

/// Writes a state no rp knows into the record of `payment_id`.
pub(crate) async fn make_unreadable(place: &Place, url: &str, project: u64, payment_id: &str) {
    let sql = "UPDATE {payouts} SET state = $state WHERE project_id = $project \
               AND payment_id = $id";
    match place {
        Place::Sqlite => {
            let path = url.replace("sqlite:", "");
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.execute(
                &sql.replace("{payouts}", "payouts")
                    .replace("$state", "?1")
                    .replace("$project", "?2")
                    .replace("$id", "?3"),
                rusqlite::params![NEWER_STATE, project, payment_id],
            )
            .unwrap();
        }
        #[cfg(feature = "postgres")]
        Place::Postgres(url) => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            let project = i64::try_from(project).unwrap();
            client
                .execute(
                    &sql.replace("{payouts}", "rp_ledger.payouts")
                        .replace("$state", "$1")
                        .replace("$project", "$2")
                        .replace("$id", "$3"),
                    &[&NEWER_STATE, &project, &payment_id],
                )
                .await
                .unwrap();
        }
    }
}

/// Reconcile's walk and the lists: `unsettled` and `list` leave the unreadable records out
/// and fill their pages from the records after them, so that a short page still means the
/// end.
pub(crate) async fn unreadable_records_stop_no_walk(place: &Place, project: u64) {
    let url = place.url("unreadable-unsettled");
    let ledger = rp_ledger::Ledger::open(&url).await.unwrap();
    let store = ledger.store(rp_model::ProjectId::new(project).unwrap());
    for id in ["r-1", "r-2", "r-3", "r-4", "r-5"] {
        insert(&store, id).await;
    }
    for id in ["r-2", "r-3"] {
        make_unreadable(place, &url, project, id).await;
    }
    let ids = |page: Vec<rp_payout::PayoutRecord>| -> Vec<String> {
        page.into_iter()
            .map(|r| r.payment_id.as_str().to_owned())
            .collect()
    };
    let page = |after: Option<&str>, limit| {
        let store = std::sync::Arc::clone(&store);
        let after = after.map(|id| rp_model::PaymentId::new(id).unwrap());
        async move {
            store
                .unsettled(after, limit)
                .await
                .expect("unsettled answers with what it could read")
        }
    };
    assert_eq!(ids(page(None, 10).await), ["r-1", "r-4", "r-5"]);
    // Full pages, filled past the unreadable ones, then a short one at the end.
    assert_eq!(ids(page(None, 2).await), ["r-1", "r-4"]);
    assert_eq!(ids(page(Some("r-1"), 1).await), ["r-4"]);
    assert_eq!(ids(page(Some("r-4"), 2).await), ["r-5"]);
    assert!(page(Some("r-5"), 2).await.is_empty());
    // Before the fix: one unreadable record failed every page that held it.
    assert_eq!(ids(page(Some("r-1"), 2).await), ["r-4", "r-5"]);

    // The lists, newest first (the same time: by payment ID, descending).
    let list = |after: Option<&rp_payout::PayoutRecord>, limit| {
        let store = std::sync::Arc::clone(&store);
        let mut query = rp_payout::PayoutQuery::default();
        query.after = after.map(|r| (r.created_at, r.payment_id.clone()));
        query.limit = limit;
        async move {
            store
                .list(&query)
                .await
                .expect("the list answers with what it could read")
        }
    };
    assert_eq!(ids(list(None, 10).await), ["r-5", "r-4", "r-1"]);
    let first = list(None, 2).await;
    let last = first.last().cloned();
    assert_eq!(ids(first), ["r-5", "r-4"]);
    let second = list(last.as_ref(), 2).await;
    let last = second.last().cloned();
    assert_eq!(ids(second), ["r-1"]);
    assert!(list(last.as_ref(), 2).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_records_stop_no_walk_on_sqlite() {
    unreadable_records_stop_no_walk(&Place::Sqlite, 7102).await;
}
