//! `/payments/{payment_id}`: one payout (the request, its state live, the event timeline
//! with the raw signed bodies on demand) and the actions that are safe: ask the status now;
//! send again under the same payment ID when the platform does not have it or it ended in
//! `error`. No action mints a new payment ID for an existing payout.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use rp_model::PaymentId;
use rp_payout::{PayoutEvent, PayoutRecord, ReconcileResult};
use serde::Deserialize;

use super::layout::{
    amount, badge, csrf_field, masked_phone, notice, page, payment_path, raw_body, utc,
};
use super::{html, ledger_failed, problem};
use crate::{Desk, Me};

/// What the page says after an action (`?done=`): fixed texts, so a link cannot put words
/// of its own on the page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Done {
    done: Option<String>,
}

fn done_text(done: Option<&str>) -> Option<(&'static str, &'static str)> {
    Some(match done? {
        "sent" => (
            "ok",
            "Recorded and being sent. The state below updates by itself.",
        ),
        "checked" => ("ok", "The platform was asked; its answer is applied below."),
        "unchanged" => ("info", "The platform was asked; nothing changed."),
        "check-failed" => (
            "error",
            "The status request failed; the payout is asked about again by the reconciler.",
        ),
        "resent" => ("ok", "Sent again under the same payment ID."),
        "replayed" => (
            "ok",
            "Its webhooks are being sent again (same webhook-ids).",
        ),
        _ => return None,
    })
}

/// The payment ID of the path, or a 404 page.
fn payment_id(me: &Me, text: &str) -> Result<PaymentId, Response> {
    PaymentId::new(text).map_err(|e| problem(StatusCode::NOT_FOUND, Some(me), &e.to_string()))
}

async fn record(desk: &Desk, me: &Me, id: &PaymentId) -> Result<PayoutRecord, Response> {
    match desk.client().store().get(id).await {
        Ok(Some(record)) => Ok(record),
        Ok(None) => Err(problem(
            StatusCode::NOT_FOUND,
            Some(me),
            &format!("No payout {id} in the ledger."),
        )),
        Err(error) => Err(ledger_failed(Some(me), &error)),
    }
}

/// `/payments/{payment_id}`.
pub(crate) async fn show(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let id = match payment_id(&me, &id) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let record = match record(&desk, &me, &id).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let events = match desk.client().store().events(&id).await {
        Ok(events) => events,
        Err(error) => return ledger_failed(Some(&me), &error),
    };
    let deliveries = match desk.webhooks().deliveries(&id).await {
        Ok(deliveries) => deliveries,
        Err(error) => return ledger_failed(Some(&me), &error),
    };
    let request = &record.request;
    let path = payment_path(&id);
    let body = html! {
        h1 { "Payment " (id) }
        @if let Some((kind, text)) = done_text(done.done.as_deref()) { (notice(kind, text)) }
        div.card {
            div #state data-refresh={(path) "/state"} data-every="1000" { (state_part(&record)) }
        }
        div.card {
            h2 { "Request" }
            dl.facts {
                dt { "Phone" } dd { (masked_phone(&record)) }
                dt { "Amount" } dd { (amount(&record)) }
                dt { "Customer" } dd { (request.customer.id) }
                @if let Some(description) = &request.payment.description { dt { "Description" } dd { (description) } }
                dt { "Created (UTC)" } dd { (utc(record.created_at)) }
                dt { "Attempts sent" } dd { (record.attempts) }
            }
        }
        @if me.role.may_pay() {
            div.card.actions {
                form method="post" action={(path) "/check"} {
                    (csrf_field(&me))
                    button.secondary type="submit" { "Ask the status now" }
                }
                @if record.state.is_resendable() {
                    form method="post" action={(path) "/resend"} {
                        (csrf_field(&me))
                        button type="submit" { "Send again under the same payment ID" }
                    }
                }
            }
        }
        h2 { "History" }
        ol.timeline { @for event in &events { (event_item(event)) } }
        (super::webhooks::deliveries_part(&me, &path, &deliveries))
    };
    html(page(&format!("Payment {id}"), Some(&me), "/payments", body))
}

/// The live part of the page: the state, the last answer, attention. Marked final once the
/// payout is settled, so the page stops asking.
fn state_part(record: &PayoutRecord) -> Markup {
    html! {
        dl.facts {
            dt { "State" }
            dd {
                (badge(record.state.label()))
                @if record.state.is_settled() { span data-final="1" {} }
            }
            @if let Some(code) = &record.last_code { dt { "Code" } dd { (code) } }
            @if let Some(message) = &record.last_message { dt { "Message" } dd { (message) } }
            @if let Some(request_id) = &record.request_id { dt { "Request ID" } dd { (request_id) } }
            dt { "Updated (UTC)" } dd { (utc(record.updated_at)) }
            @if let Some(attention) = &record.attention { dt { "Needs attention" } dd.error-text { (attention) } }
        }
    }
}

fn event_item(event: &PayoutEvent) -> Markup {
    html! {
        li {
            strong { (utc(event.at)) } " · " (event.source) " · "
            @if let Some(previous) = &event.previous { (previous.label()) " → " }
            (badge(event.state.label()))
            @if let Some(code) = &event.code { " · code " (code) }
            @if let Some(message) = &event.message { " · " (message) }
            @if let Some(note) = &event.note { br; span.muted { (note) } }
            @if let Some(raw) = &event.raw {
                details { summary { "Signed body" } (raw_body(raw)) }
            }
        }
    }
}

/// `/payments/{payment_id}/state`: the live part alone.
pub(crate) async fn state_fragment(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
) -> Response {
    let id = match payment_id(&me, &id) {
        Ok(id) => id,
        Err(response) => return response,
    };
    match record(&desk, &me, &id).await {
        Ok(record) => html(state_part(&record)),
        Err(response) => response,
    }
}

/// A 403 page unless the operator may pay.
pub(crate) fn require_pay(me: &Me) -> Result<(), Response> {
    if me.role.may_pay() {
        return Ok(());
    }
    tracing::warn!(operator = %me.name, "refused: a view operator tried to pay");
    Err(problem(
        StatusCode::FORBIDDEN,
        Some(me),
        "Your role is \"view\": you can see payouts, not make them.",
    ))
}

/// The payout an action of `me` is about: only for a `pay` operator, and a payout the ledger
/// holds.
async fn acting_on(
    desk: &Desk,
    me: &Me,
    text: &str,
) -> Result<(PaymentId, PayoutRecord), Response> {
    require_pay(me)?;
    let id = payment_id(me, text)?;
    let record = record(desk, me, &id).await?;
    Ok((id, record))
}

/// `POST /payments/{payment_id}/check`: asks the platform now (written into the history with
/// the operator's name first).
pub(crate) async fn check(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    Path(text): Path<String>,
) -> Response {
    let id = match acting_on(&desk, &me, &text).await {
        Ok((id, _)) => id,
        Err(response) => return response,
    };
    if let Err(error) = desk
        .client()
        .note(&id, me.source(), "asked for the status from the console")
        .await
    {
        return ledger_failed(Some(&me), &error);
    }
    let done = match desk.client().check_now(&id).await {
        Ok(ReconcileResult::Unchanged(_)) => "unchanged",
        Ok(ReconcileResult::Failed(error)) => {
            tracing::warn!(payment_id = %id, %error, "status check from the console failed");
            "check-failed"
        }
        Ok(_) => "checked",
        Err(error) => return ledger_failed(Some(&me), &error),
    };
    Redirect::to(&format!("{}?done={done}", payment_path(&id))).into_response()
}

/// `POST /payments/{payment_id}/resend`: only for a payout the platform does not have or
/// that ended in `error`; sent under its own payment ID, in the background.
pub(crate) async fn resend(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    Path(text): Path<String>,
) -> Response {
    let (id, record) = match acting_on(&desk, &me, &text).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if !record.state.is_resendable() {
        return problem(
            StatusCode::CONFLICT,
            Some(&me),
            &format!(
                "Payout {id} is {}: only a payout the platform does not have, or one that ended in error, is sent again.",
                record.state.label()
            ),
        );
    }
    if let Err(error) = desk
        .client()
        .note(&id, me.source(), "sent again from the console")
        .await
    {
        return ledger_failed(Some(&me), &error);
    }
    let client = desk.client().clone();
    let resent = id.clone();
    desk.run_in_background(async move {
        if let Err(error) = client.resume(&resent).await {
            tracing::warn!(payment_id = %resent, %error, "resend from the console failed");
        }
    });
    Redirect::to(&format!("{}?done=resent", payment_path(&id))).into_response()
}
