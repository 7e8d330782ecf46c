//! `review_unsettled`'s edge cases on PostgreSQL.

use super::{Database, server};
use crate::review_aside::Place;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_unsettled_edge_cases_hold_on_postgres() {
    let Some(admin) = server("review_unsettled_edge_cases_hold_on_postgres") else {
        return;
    };
    let db = Database::fresh(&admin, "review_unsettled").await;
    crate::review_unsettled::edge_cases_that_hold_on(&Place::Postgres(db.url.clone()), 7203).await;
    db.remove().await;
}
