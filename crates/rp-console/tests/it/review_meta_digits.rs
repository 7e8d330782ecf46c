//! Adversarial review of 66de2e2 ("numbers that would lose digits are refused (422)";
//! metadata numbers compared by value). The refusal covers only numbers past 2^53 that are
//! not 64-bit integers: a number below 2^53 with more digits than an f64 keeps (order
//! references with a decimal part, amounts with many decimals) is accepted, kept rounded, and
//! another such number that rounds to the same f64 is then taken for the same metadata.
//! (Fixed: metadata numbers are checked as written: more than 15 significant digits, or an
//! integer past 64 bits, is a 422.)

use reqwest::StatusCode;

use crate::review_meta::{post_raw, raw_payout};

/// `{"ref": 1234567890123456.7}` then `{"ref": 1234567890123456.8}` under one payment ID:
/// two different numbers, both below 2^53, both read as the f64 1234567890123456.75 (the
/// merchant's digits lost, not refused). The second call, with other metadata, must be a 409
/// (or the first refused, as 66de2e2 says of numbers that would lose digits); it is answered
/// as the same payout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_meta_digits_lost_below_2_53_take_other_metadata_for_the_same() {
    let server = crate::api::with_keys().await;
    let (first, text) = post_raw(
        &server,
        raw_payout("dig-1", r#"{"ref":1234567890123456.7}"#),
    )
    .await;
    if first == StatusCode::UNPROCESSABLE_ENTITY {
        server.stop().await;
        return;
    }
    assert_eq!(first, StatusCode::ACCEPTED, "{text}");
    let kept = text.clone();
    let (status, text) = post_raw(
        &server,
        raw_payout("dig-1", r#"{"ref":1234567890123456.8}"#),
    )
    .await;
    server.stop().await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "other metadata ({{\"ref\": 1234567890123456.8}}) under the payment ID of a payout made \
         with {{\"ref\": 1234567890123456.7}} answered as the same payout: {text}\n(first answer, \
         the metadata as kept: {kept})"
    );
}
