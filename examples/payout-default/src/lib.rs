//! What a merchant writes first with `rp-payout` (default features, no `axum`): a payout from
//! what people type, the outcome classes a caller must tell apart, and the callback handler.
//! Every item here is named in the README; this crate proves it builds and documents outside
//! the workspace against our path dependencies.

use rp_model::{Currency, CustomerId, Money, Msisdn, Payout};
use rp_payout::{Client, Error};

/// What the caller should do after [`pay`].
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// The platform registered the payout; its result comes in the callback.
    Wait,
    /// It may have been paid: never pay it again under a new payment ID; reconcile resolves it.
    Reconcile,
    /// Nothing was paid (refused, or never sent).
    Fix,
}

/// A payout from the phone number and the amount as people write them.
///
/// # Errors
/// [`rp_model::Error`] naming the phone number, the amount or the ID that is wrong.
pub fn payout_from_text(
    payment_id: rp_model::PaymentId,
    phone: &str,
    amount: &str,
    customer: &str,
) -> Result<Payout, rp_model::Error> {
    Payout::builder()
        .payment_id(payment_id)
        .phone(Msisdn::parse(phone)?)
        .amount(Money::parse(amount, Currency::KZT)?)
        .customer_id(CustomerId::new(customer)?)
        .build()
}

/// Sends `payout` once and says what to do next.
pub async fn pay(client: &Client, payout: &Payout) -> Next {
    match client.payout(payout).await {
        Ok(_) => Next::Wait,
        Err(error) => next_after(&error),
    }
}

/// What to do after a failed payout call.
pub fn next_after(error: &Error) -> Next {
    if error.may_have_reached_platform() {
        Next::Reconcile
    } else {
        Next::Fix
    }
}

/// The callback handler of any web stack: the raw body in, the HTTP status and body out.
pub async fn on_callback(client: &Client, body: &[u8]) -> (u16, &'static str) {
    let outcome = client.handle_callback(body).await;
    (outcome.http_status(), outcome.body())
}
