//! Adversarial review of the ledger work in rp-payout (`Client::abandon`, every change with its
//! event). Each test failed on the code it was written against.

use std::time::Duration;

use rp_payout::{Error, PayoutState, PayoutStore};

use crate::gate::{Gate, Reply, accepted, config, envelope, not_found, payout, pid};

/// `Client::abandon(id)` turns *any* `Created` record into `Unknown`: it does not know whether
/// the caller is the one sending it. `rp payout` calls it on SIGINT/SIGTERM for its ID even when
/// its own call was only a second submission of a payout that another process is sending
/// (a supervisor stopping a process group, `timeout`, Ctrl-C to a script running several), and
/// a library user shutting down a worker does the same.
///
/// What follows: the sender's definitive refusal (here 3028 on its first and only attempt,
/// nothing registered) is told to its caller as `Error::Rejected` ("refused, nothing was
/// paid", `may_have_reached_platform() == false`), but `settle_if_created` no longer finds
/// `Created` and records nothing: the ledger keeps `Unknown`. Reconcile then gets 3061 from
/// the platform, marks it `NotRegistered`, and `reconcile_and_resume` sends it again, hours
/// later perhaps, when the balance is back. A merchant who was told "refused" and paid the
/// customer another way (or under a new payment ID) has now paid twice.
#[tokio::test]
async fn review_abandon_by_a_caller_that_is_not_sending_does_not_revive_a_refused_payout() {
    let gate = Gate::start().await;
    let (sender, clock, store) =
        gate.client_from(config().with_overdue_after(Duration::from_secs(1)));
    let other = gate
        .client_builder(config().with_overdue_after(Duration::from_secs(1)))
        .store(store.clone())
        .build()
        .unwrap();

    // The platform refuses the first (and only) attempt, a little later.
    gate.on_payout(Reply::Delayed(
        Duration::from_millis(150),
        Box::new(envelope(
            400,
            "3028",
            "Insufficient funds on the balance",
            None,
        )),
    ));
    let p = payout("review-abandon");
    let (sent, abandoned) = tokio::join!(sender.payout(&p), async {
        // While the sender waits for its answer, another caller gives up on the same ID.
        tokio::time::sleep(Duration::from_millis(50)).await;
        other.abandon(&pid("review-abandon")).await
    });
    let error = sent.unwrap_err();
    assert!(matches!(error, Error::Rejected { .. }), "{error}");
    assert!(
        !error.may_have_reached_platform(),
        "the caller is told nothing was paid: {error}"
    );
    let abandoned = abandoned.unwrap();

    let recorded = store.get(&pid("review-abandon")).await.unwrap().unwrap();
    // Whatever the ledger says, it must not leave a payout that its caller was told is refused
    // open for reconcile to send again.
    gate.on_status(not_found());
    gate.on_payout(accepted("review-abandon", "r-2"));
    clock.advance(Duration::from_secs(3600));
    let report = sender.reconcile_and_resume().await.unwrap();
    let payouts_sent = gate.calls().iter().filter(|c| **c == "payout").count();
    assert_eq!(
        payouts_sent, 1,
        "refused payout sent again by reconcile: abandon by another caller left {:?}; \
         ledger after the refusal: {:?}; reconcile: {report:?}",
        abandoned.state, recorded.state
    );
    assert!(
        matches!(recorded.state, PayoutState::Rejected { .. }),
        "{:?}",
        recorded.state
    );
}
