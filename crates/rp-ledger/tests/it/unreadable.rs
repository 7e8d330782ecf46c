//! A claimed delivery whose payout cannot be read (its state written by a newer rp, say, in a
//! rolling upgrade) holds up no other delivery: the claim answers with the others, and that
//! one stays claimed until its lease ends (then it is tried again), on SQLite and PostgreSQL.

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
    let sql = "UPDATE {payouts} SET state = $state WHERE project_id = $project \
               AND payment_id = 'u-newer'";
    match place {
        Place::Sqlite => {
            let path = url.replace("sqlite:", "");
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.execute(
                &sql.replace("{payouts}", "payouts")
                    .replace("$state", "?1")
                    .replace("$project", "?2"),
                rusqlite::params![NEWER_STATE, project],
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
                        .replace("$project", "$2"),
                    &[&NEWER_STATE, &project],
                )
                .await
                .unwrap();
        }
    }

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
