//! Review of 7a317eb: a payment ID recorded with the merchant's metadata is another payout's
//! for a call with other metadata or none. Each test here fails on 7a317eb.

use rp_payout::Error;

use crate::gate::{Gate, accepted, payout};

/// A payout recorded by the API with the merchant's metadata, then `rp payout` (or a batch
/// row) with exactly the same phone, amount and customer under its payment ID: refused as a
/// conflict (7a317eb), but the error says the details differ ("phone, amount, customer or
/// parameters differ") and that "a new payout needs a new payment ID". Nothing differs but
/// the metadata, and the payee was paid under this ID: an operator following the advice pays
/// the same person twice. The batch report's `conflict` row says the same ("not paid ... give
/// this row a new payment ID"). The message must not claim the details differ.
#[tokio::test]
async fn review_meta_conflict_over_metadata_alone_says_the_details_differ() {
    let gate = Gate::start().await;
    gate.on_payout(accepted("p-meta", "r-1"));
    let (client, _clock, _store) = gate.client();
    client
        .payout_reporting(
            &payout("p-meta"),
            rp_payout::EventSource::Call,
            Some(r#"{"order":7}"#.to_owned()),
            None,
        )
        .await
        .unwrap();
    let error = client.payout(&payout("p-meta")).await.unwrap_err();
    assert!(matches!(error, Error::PaymentIdConflict { .. }), "{error}");
    assert_eq!(gate.calls(), ["payout"], "nothing sent again");
    let message = error.to_string();
    assert!(
        !message.contains("differ") && !message.contains("new payment ID"),
        "the same phone, amount and customer, paid under this ID; only the metadata differs, \
         yet: {message}"
    );
}
