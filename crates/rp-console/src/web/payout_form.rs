//! Manual payments: `/payouts/new` (the form) → `POST /payouts` with `step=review` (every
//! field checked, errors beside their field; else the confirmation: masked phone, operator
//! hint, amount, and the payment ID minted for it) → `POST /payouts` with `step=pay`
//! (recorded under that payment ID, sent in the background, then its page shows the result
//! live).
//!
//! The payment ID is minted at the confirmation, before anything is recorded, and carried
//! by the form: pressing "Pay" twice, or reloading the answer, submits the same payout under
//! the same ID, which the client records once and sends once.

use std::time::{Duration, SystemTime};

use axum::Extension;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use rp_model::{Currency, CustomerId, Money, Msisdn, PaymentId, Payout};
use rp_payout::{PayoutQuery, PayoutRecord};
use serde::Deserialize;

use super::layout::{amount, csrf_field, notice, page, payment_path, utc};
use super::payment::require_pay;
use super::{html, ledger_failed};
use crate::submit::{self, NotSubmitted, Pending};
use crate::{Desk, Me};

/// The longest description the form takes, in characters.
const MAX_DESCRIPTION: usize = 255;

/// The form's fields, as typed.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct PayoutForm {
    #[serde(default)]
    phone: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    customer_id: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    payment_id: String,
    #[serde(default)]
    step: String,
}

/// A field's problem: `(field, message)`.
type FieldError = (&'static str, String);

/// The payout the form describes, or every field's problem.
fn check(form: &PayoutForm, payment_id: PaymentId) -> Result<Payout, Vec<FieldError>> {
    let mut errors = Vec::new();
    let phone = Msisdn::parse(form.phone.trim())
        .map_err(|e| errors.push(("phone", e.to_string())))
        .ok();
    let amount = Money::parse(form.amount.trim(), Currency::KZT)
        .map_err(|e| errors.push(("amount", e.to_string())))
        .ok();
    let customer = match form.customer_id.trim() {
        "" => {
            errors.push((
                "customer_id",
                "the customer's ID in your system is required (the platform asks for it)"
                    .to_owned(),
            ));
            None
        }
        id => CustomerId::new(id)
            .map_err(|e| errors.push(("customer_id", e.to_string())))
            .ok(),
    };
    let description = form.description.trim();
    if description.chars().any(char::is_control) {
        errors.push((
            "description",
            "one line of text, without tabs or control characters".to_owned(),
        ));
    } else if description.chars().count() > MAX_DESCRIPTION {
        errors.push((
            "description",
            format!("at most {MAX_DESCRIPTION} characters"),
        ));
    }
    let (Some(phone), Some(amount), Some(customer)) = (phone, amount, customer) else {
        return Err(errors);
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut builder = Payout::builder()
        .payment_id(payment_id)
        .phone(phone)
        .amount(amount)
        .customer_id(customer);
    if !description.is_empty() {
        builder = builder.description(description);
    }
    builder.build().map_err(|e| {
        let text = e.to_string();
        let field = if text.contains("phone") {
            "phone"
        } else if text.contains("amount") {
            "amount"
        } else if text.contains("description") {
            "description"
        } else {
            "form"
        };
        vec![(field, text)]
    })
}

/// `/payouts/new`.
pub(crate) async fn new(Extension(me): Extension<Me>) -> Response {
    html(form_page(&me, &PayoutForm::default(), &[], None))
}

fn form_page(me: &Me, form: &PayoutForm, errors: &[FieldError], top: Option<&str>) -> Markup {
    let error_of = |field: &str| -> Markup {
        html! {
            @for (_, message) in errors.iter().filter(|(f, _)| *f == field) {
                p.error id={(field) "-error"} { (message) }
            }
        }
    };
    let invalid = |field: &str| errors.iter().any(|(f, _)| *f == field).then_some("true");
    let body = html! {
        h1 { "New payout" }
        @if !me.role.may_pay() {
            (notice("error", "Your role is \"view\": you can see payouts, not make them."))
        } @else {
            @if let Some(top) = top { (notice("error", top)) }
            (error_of("form"))
            form.card method="post" action="/payouts" novalidate {
                (csrf_field(me))
                input type="hidden" name="step" value="review";
                div.field {
                    label for="phone" { "Phone number (any written form: +7 701 123 45 67, 8 701 …)" }
                    input #phone name="phone" value=(form.phone) inputmode="tel" autocomplete="off" required aria-invalid=[invalid("phone")];
                    (error_of("phone"))
                }
                div.field {
                    label for="amount" { "Amount, ₸ (1 500, 1500,50, 1500.50)" }
                    input #amount name="amount" value=(form.amount) inputmode="decimal" autocomplete="off" required aria-invalid=[invalid("amount")];
                    (error_of("amount"))
                }
                div.field {
                    label for="customer_id" { "Customer ID (yours)" }
                    input #customer_id name="customer_id" value=(form.customer_id) required aria-invalid=[invalid("customer_id")];
                    (error_of("customer_id"))
                }
                div.field {
                    label for="description" { "Description (optional)" }
                    input #description name="description" value=(form.description) maxlength="255" aria-invalid=[invalid("description")];
                    (error_of("description"))
                }
                button type="submit" { "Review" }
            }
        }
    };
    page("New payout", Some(me), "/payouts/new", body)
}

/// `POST /payouts`: review, or pay.
pub(crate) async fn submit(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    Form(form): Form<PayoutForm>,
) -> Response {
    if let Err(response) = require_pay(&me) {
        return response;
    }
    match form.step.as_str() {
        "pay" => pay(&desk, &me, &form).await,
        "edit" => html(form_page(&me, &form, &[], None)),
        _ => review(&desk, &me, &form).await,
    }
}

/// How far back the confirmation looks for payouts to the same phone number.
const RECENT: Duration = Duration::from_secs(24 * 3600);

/// What the confirmation shows of the payouts to `phone` recorded in the last [`RECENT`]
/// (paying one of them again pays the person twice): at most 5, newest first; `Err` when the
/// ledger could not be asked.
async fn recent_to(desk: &Desk, phone: Msisdn) -> Result<Vec<PayoutRecord>, ()> {
    let mut query = PayoutQuery::new()
        .phone(phone.as_str())
        .between(SystemTime::now().checked_sub(RECENT), None);
    query.limit = 5;
    desk.client().store().list(&query).await.map_err(|error| {
        tracing::warn!(%error, "console: could not look for recent payouts to a number");
    })
}

async fn review(desk: &Desk, me: &Me, form: &PayoutForm) -> Response {
    let payment_id = match desk.client().new_payment_id() {
        Ok(id) => id,
        Err(error) => return ledger_failed(Some(me), &error),
    };
    let payout = match check(form, payment_id) {
        Ok(payout) => payout,
        Err(errors) => {
            let mut response = html(form_page(me, form, &errors, None));
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return response;
        }
    };
    // Those not recorded yet first: one recorded meanwhile is then in `recent`, not lost
    // between the two.
    let unrecorded = desk.unrecorded().to(payout.phone());
    let recent = recent_to(desk, payout.phone()).await;
    html(confirm_page(
        me,
        form,
        &payout,
        None,
        recent.as_deref(),
        &unrecorded,
    ))
}

/// The confirmation of `payout` (its payment ID drawn by the review): "Pay", or "Change"
/// (which draws a new ID), with the `recent` payouts to the same number and those submitted
/// here to it that the ledger has not recorded yet (`unrecorded`: they may still be, and
/// sent). With `pending` (the ledger had not recorded this one in time), only "Pay" again
/// under the same payment ID, never a new one.
fn confirm_page(
    me: &Me,
    form: &PayoutForm,
    payout: &Payout,
    pending: Option<&str>,
    recent: Result<&[PayoutRecord], &()>,
    unrecorded: &[Pending],
) -> Markup {
    // One that was recorded meanwhile is in `recent`; this payout itself is not another.
    let unrecorded: Vec<&Pending> = unrecorded
        .iter()
        .filter(|p| &p.payment_id != payout.payment_id())
        .filter(|p| {
            recent.as_ref().map_or(true, |recent| {
                recent.iter().all(|r| r.payment_id != p.payment_id)
            })
        })
        .collect();
    let phone = payout.phone();
    let hint = phone.operator_hint().map_or_else(
        || "unknown range".to_owned(),
        |info| {
            let operators: Vec<String> = info.operators.iter().map(ToString::to_string).collect();
            format!(
                "{} ({}; numbers are portable)",
                info.company,
                operators.join(", ")
            )
        },
    );
    let hidden =
        |name: &'static str, value: &str| html! { input type="hidden" name=(name) value=(value); };
    let body = html! {
        h1 { "Confirm the payout" }
        @if let Some(text) = pending { (notice("error", text)) }
        @let paid = recent.map_or(0, <[PayoutRecord]>::len) + unrecorded.len();
        @if paid > 0 {
            (notice("error", &format!(
                "This number was paid {paid} time(s) in the last 24 hours: paying the same again pays this person twice. Check these first."
            )))
            table {
                thead { tr { th { "Payment ID" } th { "Amount" } th { "State" } th { "Recorded (UTC)" } } }
                tbody {
                    @for record in recent.unwrap_or_default() {
                        tr {
                            td { a href=(payment_path(&record.payment_id)) { (record.payment_id) } }
                            td { (amount(record)) }
                            td { (record.state.label()) }
                            td { (utc(record.created_at)) }
                        }
                    }
                    @for pending in &unrecorded {
                        tr {
                            td { (pending.payment_id) }
                            td { (pending.amount) }
                            td { "not recorded yet: it may still be, and sent" }
                            td { "submitted " (utc(pending.since)) }
                        }
                    }
                }
            }
        }
        @if recent.is_err() {
            p.muted { "Could not look for recent payouts to this number (the ledger did not answer)." }
        }
        div.card {
            dl.facts {
                dt { "Phone" } dd { (phone.masked()) }
                dt { "Operator" } dd { (hint) }
                dt { "Amount" } dd { strong { (payout.amount()) } }
                dt { "Customer" } dd { (form.customer_id.trim()) }
                @if !form.description.trim().is_empty() { dt { "Description" } dd { (form.description.trim()) } }
                dt { "Payment ID" } dd { (payout.payment_id()) }
            }
        }
        div.actions {
            form method="post" action="/payouts" {
                (csrf_field(me))
                (hidden("step", "pay"))
                (hidden("payment_id", payout.payment_id().as_str()))
                (hidden("phone", &form.phone)) (hidden("amount", &form.amount))
                (hidden("customer_id", &form.customer_id)) (hidden("description", &form.description))
                button type="submit" { "Pay " (payout.amount()) }
            }
            @if pending.is_some() {
                a href=(payment_path(payout.payment_id())) { "The payment's page" }
            } @else {
                form method="post" action="/payouts" {
                    (csrf_field(me))
                    (hidden("step", "edit"))
                    (hidden("phone", &form.phone)) (hidden("amount", &form.amount))
                    (hidden("customer_id", &form.customer_id)) (hidden("description", &form.description))
                    button.secondary type="submit" { "Change" }
                }
            }
        }
    };
    page("Confirm the payout", Some(me), "/payouts/new", body)
}

async fn pay(desk: &Desk, me: &Me, form: &PayoutForm) -> Response {
    // Everything is checked again: the confirmation's hidden fields are input too.
    let payment_id = match PaymentId::new(form.payment_id.trim()) {
        Ok(id) => id,
        Err(e) => {
            let top = format!("The confirmation carried no valid payment ID ({e}); review again.");
            return html(form_page(me, form, &[], Some(&top)));
        }
    };
    let payout = match check(form, payment_id.clone()) {
        Ok(payout) => payout,
        Err(errors) => {
            let mut response = html(form_page(me, form, &errors, None));
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return response;
        }
    };
    let page_of = format!("{}?done=sent", payment_path(&payment_id));
    tracing::info!(operator = %me.name, payment_id = %payment_id, phone = %payout.phone(), amount = %payout.amount(), "payout from the console");
    // Pressed twice, or the answer reloaded: the same payout, never sent again from here.
    match submit::submit(desk, payout.clone(), me.source(), None).await {
        Ok(_) => Redirect::to(&page_of).into_response(),
        Err(NotSubmitted::Conflict(rp_batch::run::Holder::Payout)) => {
            let top = format!(
                "Payment ID {payment_id} is already recorded for another payout; nothing was sent. Review again for a new ID."
            );
            html(form_page(me, form, &[], Some(&top)))
        }
        Err(NotSubmitted::Conflict(holder)) => {
            let top = capitalized(&submit::held(&holder, &payment_id));
            html(form_page(me, form, &[], Some(&top)))
        }
        Err(NotSubmitted::Held(error)) => {
            let top = capitalized(&error.to_string());
            html(form_page(me, form, &[], Some(&top)))
        }
        Err(NotSubmitted::Refused(error)) => {
            let top = submit::refusal(&error);
            html(form_page(me, form, &[], Some(&top)))
        }
        Err(NotSubmitted::Ledger(error)) => ledger_failed(Some(me), &error),
        // The confirmation again, under the same payment ID: "Pay" sends the same payout
        // (answered as it stands once recorded), never another one.
        Err(NotSubmitted::NotYetRecorded(wait)) => {
            let top = capitalized(&submit::not_yet_recorded(&payment_id, wait));
            let unrecorded = desk.unrecorded().to(payout.phone());
            let mut response = html(confirm_page(
                me,
                form,
                &payout,
                Some(&top),
                Ok(&[]),
                &unrecorded,
            ));
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            response
        }
    }
}

/// `text` with its first letter a capital.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(phone: &str, amount: &str, customer: &str) -> PayoutForm {
        PayoutForm {
            phone: phone.to_owned(),
            amount: amount.to_owned(),
            customer_id: customer.to_owned(),
            ..PayoutForm::default()
        }
    }

    #[test]
    fn every_field_error_is_named() {
        let id = PaymentId::new("p-1").unwrap();
        let errors = check(&form("+7 999 123 45 67", "abc", ""), id.clone()).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["phone", "amount", "customer_id"], "{errors:?}");
        let payout = check(&form("8 (701) 123-45-67", "1 500,50", "c-1"), id.clone()).unwrap();
        assert_eq!(payout.amount().minor_units(), 150_050);
        let mut long = form("87011234567", "1", "c");
        long.description = "я".repeat(256);
        assert_eq!(check(&long, id.clone()).unwrap_err()[0].0, "description");
        let mut semicolon = form("87011234567", "1", "c");
        semicolon.description = "a;b".to_owned();
        assert_eq!(check(&semicolon, id).unwrap_err()[0].0, "description");
    }
}
