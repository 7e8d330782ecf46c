//! `/webhooks`: the project's webhook endpoints (state, pending and failed deliveries, why one
//! was disabled) and, for `pay` operators, adding one (its signing secret shown once),
//! enabling, disabling and removing; `POST /payments/{payment_id}/webhooks/replay` sends a
//! payout's events again. Every change is logged with the operator's name; a replay is also
//! written into the payout's history.

use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Redirect, Response};
use maud::{Markup, html};
use rp_ledger::{DeliveryInfo, DeliveryState, WebhookEndpoint};
use serde::Deserialize;

use super::layout::{csrf_field, notice, page, payment_path, utc};
use super::payment::require_pay;
use super::{html, ledger_failed, problem};
use crate::{Desk, Me};

/// What the page says after an action (`?done=`): fixed texts only.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Done {
    done: Option<String>,
}

fn done_text(done: Option<&str>) -> Option<(&'static str, &'static str)> {
    Some(match done? {
        "enabled" => ("ok", "Enabled: what waited for it is being sent."),
        "disabled" => ("info", "Disabled: its deliveries are kept and wait."),
        "removed" => (
            "info",
            "Removed, with its pending deliveries and their log.",
        ),
        _ => return None,
    })
}

/// `/webhooks`.
pub(crate) async fn list(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    axum::extract::Query(done): axum::extract::Query<Done>,
) -> Response {
    let endpoints = match desk.webhooks().endpoints().await {
        Ok(endpoints) => endpoints,
        Err(error) => return ledger_failed(Some(&me), &error),
    };
    html(list_page(
        &me,
        &endpoints,
        done_text(done.done.as_deref()),
        None,
    ))
}

fn list_page(
    me: &Me,
    endpoints: &[WebhookEndpoint],
    done: Option<(&str, &str)>,
    form_error: Option<&str>,
) -> Markup {
    let body = html! {
        h1 { "Webhooks" }
        p.muted {
            "Every change of a payout's state is sent to each endpoint, signed (Standard Webhooks), "
            "retried for 3 days 15 hours, then the endpoint is disabled until enabled again."
        }
        @if let Some((kind, text)) = done { (notice(kind, text)) }
        @for endpoint in endpoints.iter().filter(|e| !e.enabled()) {
            (notice("error", &format!(
                "Endpoint {} is disabled: {}",
                endpoint.id,
                endpoint.disabled_reason.as_deref().unwrap_or("no reason given")
            )))
        }
        @if endpoints.is_empty() {
            p { "No endpoints yet." }
        } @else {
            table {
                thead { tr { th { "#" } th { "URL" } th { "State" } th { "Pending" } th { "Failed" } th { "Added (UTC)" } @if me.role.may_pay() { th { "" } } } }
                tbody {
                    @for endpoint in endpoints {
                        tr {
                            td { (endpoint.id) }
                            td { code { (crate::webhooks::shown_url(&endpoint.url, me.role.may_pay())) } }
                            td {
                                @if endpoint.enabled() { span.badge.good { "enabled" } }
                                @else { span.badge.bad { "disabled" } }
                            }
                            td { (endpoint.pending) }
                            td { (endpoint.failed) }
                            td { (utc(endpoint.created_at)) }
                            @if me.role.may_pay() {
                                td.actions {
                                    @let base = format!("/webhooks/{}", endpoint.id);
                                    @if endpoint.enabled() {
                                        form method="post" action={(base) "/disable"} {
                                            (csrf_field(me))
                                            button.secondary type="submit" { "Disable" }
                                        }
                                    } @else {
                                        form method="post" action={(base) "/enable"} {
                                            (csrf_field(me))
                                            button type="submit" { "Enable" }
                                        }
                                    }
                                    form method="post" action={(base) "/remove"} {
                                        (csrf_field(me))
                                        label { input type="checkbox" name="confirm" value="yes" required; " pending deliveries are dropped" }
                                        button.secondary type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if me.role.may_pay() {
            div.card {
                h2 { "Add an endpoint" }
                @if let Some(error) = form_error { (notice("error", error)) }
                form method="post" action="/webhooks" {
                    (csrf_field(me))
                    label for="url" { "URL" }
                    input #url type="url" name="url" required placeholder="https://shop.example/rp-webhooks";
                    label { input type="checkbox" name="allow_plain_http" value="yes"; " allow plain http to another machine (a private network you trust)" }
                    button type="submit" { "Add" }
                }
            }
        }
    };
    page("Webhooks", Some(me), "/webhooks", body)
}

/// The add form.
#[derive(Debug, Deserialize)]
pub(crate) struct AddForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    allow_plain_http: Option<String>,
}

/// `POST /webhooks`: adds an endpoint and shows its secret, once.
pub(crate) async fn add(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    Form(form): Form<AddForm>,
) -> Response {
    if let Err(response) = require_pay(&me) {
        return response;
    }
    let url = form.url.trim();
    if let Err(reason) = crate::webhooks::check_url(url, form.allow_plain_http.is_some()) {
        let endpoints = desk.webhooks().endpoints().await.unwrap_or_default();
        let mut response = html(list_page(&me, &endpoints, None, Some(&reason)));
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return response;
    }
    let secret = match crate::webhooks::new_secret() {
        Ok(secret) => secret,
        Err(reason) => return problem(StatusCode::INTERNAL_SERVER_ERROR, Some(&me), &reason),
    };
    let endpoint = match desk.webhooks().add_endpoint(url, &secret).await {
        Ok(endpoint) => endpoint,
        Err(error) => return ledger_failed(Some(&me), &error),
    };
    tracing::info!(operator = %me.name, endpoint = endpoint.id, "console: webhook endpoint added");
    let body = html! {
        h1 { "Endpoint " (endpoint.id) " added" }
        (notice("ok", "Every later change of a payout's state is sent to it."))
        div.card {
            dl.facts {
                dt { "URL" } dd { code { (endpoint.url) } }
                dt { "Signing secret" } dd { code #secret { (secret) } }
            }
            p {
                strong { "Copy the signing secret now: it is not shown again." }
                " Your receiver checks each request's webhook-signature with it (see the README's receivers)."
            }
            a href="/webhooks" { "Back to the webhooks" }
        }
    };
    html(page("Endpoint added", Some(&me), "/webhooks", body))
}

/// What a change of an endpoint does.
#[derive(Debug, Clone, Copy)]
enum Change {
    Enable,
    Disable,
    Remove,
}

/// The remove form's confirmation.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Confirm {
    #[serde(default)]
    confirm: Option<String>,
}

async fn change(desk: &Desk, me: &Me, id: &str, change: Change, confirmed: bool) -> Response {
    if let Err(response) = require_pay(me) {
        return response;
    }
    let Ok(number) = id.parse::<i64>() else {
        return problem(StatusCode::NOT_FOUND, Some(me), "No such endpoint.");
    };
    let hooks = desk.webhooks();
    let result = match change {
        Change::Enable => hooks.set_disabled(number, None).await,
        Change::Disable => {
            let reason = format!("disabled by {} in the console", me.name);
            hooks.set_disabled(number, Some(&reason)).await
        }
        Change::Remove if !confirmed => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(me),
                "Tick the box to confirm: removing an endpoint drops its pending deliveries.",
            );
        }
        Change::Remove => hooks.remove_endpoint(number).await,
    };
    match result {
        Ok(true) => {}
        Ok(false) => return problem(StatusCode::NOT_FOUND, Some(me), "No such endpoint."),
        Err(error) => return ledger_failed(Some(me), &error),
    }
    tracing::info!(operator = %me.name, endpoint = number, ?change, "console: webhook endpoint changed");
    if matches!(change, Change::Enable) {
        desk.wake_webhooks();
    }
    let done = match change {
        Change::Enable => "enabled",
        Change::Disable => "disabled",
        Change::Remove => "removed",
    };
    Redirect::to(&format!("/webhooks?done={done}")).into_response()
}

/// `POST /webhooks/{id}/enable`.
pub(crate) async fn enable(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
) -> Response {
    change(&desk, &me, &id, Change::Enable, false).await
}

/// `POST /webhooks/{id}/disable`.
pub(crate) async fn disable(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
) -> Response {
    change(&desk, &me, &id, Change::Disable, false).await
}

/// `POST /webhooks/{id}/remove` (with `confirm=yes`).
pub(crate) async fn remove(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    Form(form): Form<Confirm>,
) -> Response {
    let confirmed = form.confirm.as_deref() == Some("yes");
    change(&desk, &me, &id, Change::Remove, confirmed).await
}

/// The payment page's section: each event's delivery to each endpoint, and (for `pay`
/// operators) sending them again.
pub(crate) fn deliveries_part(me: &Me, path: &str, deliveries: &[DeliveryInfo]) -> Markup {
    html! {
        h2 { "Webhooks" }
        @if deliveries.is_empty() {
            p.muted { "No webhook deliveries (no endpoint when its changes were recorded)." }
        } @else {
            table {
                thead { tr { th { "Version" } th { "Endpoint" } th { "State" } th { "Attempts" } th { "Last answer" } } }
                tbody {
                    @for delivery in deliveries {
                        tr {
                            td { (delivery.key.version) }
                            td { code { (crate::webhooks::shown_url(&delivery.url, me.role.may_pay())) } }
                            td {
                                @match delivery.state {
                                    DeliveryState::Delivered => span.badge.good { "delivered" },
                                    DeliveryState::Failed => span.badge.bad { "failed" },
                                    _ => span.badge.wait { "pending" },
                                }
                                @if let Some(next) = delivery.next_attempt_at { " next " (utc(next)) }
                            }
                            td { (delivery.attempts.len()) }
                            td {
                                @if let Some(last) = delivery.attempts.last() {
                                    (utc(last.at)) " · "
                                    @if let Some(status) = last.status { "HTTP " (status) }
                                    @if let Some(error) = &last.error { " " (error) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if me.role.may_pay() {
            form method="post" action={(path) "/webhooks/replay"} {
                (csrf_field(me))
                button.secondary type="submit" { "Send its webhooks again" }
            }
        }
    }
}

/// `POST /payments/{payment_id}/webhooks/replay`: every state change of the payout sent again
/// to every endpoint (same `webhook-id`s), written into its history.
pub(crate) async fn replay(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    Path(text): Path<String>,
) -> Response {
    if let Err(response) = require_pay(&me) {
        return response;
    }
    let Ok(id) = rp_model::PaymentId::new(text) else {
        return problem(StatusCode::NOT_FOUND, Some(&me), "No such payout.");
    };
    match desk.client().store().get(&id).await {
        Ok(Some(_)) => {}
        Ok(None) => return problem(StatusCode::NOT_FOUND, Some(&me), "No such payout."),
        Err(error) => return ledger_failed(Some(&me), &error),
    }
    let queued = match desk.webhooks().replay(&id, None, None).await {
        Ok(queued) => queued,
        Err(error) => return ledger_failed(Some(&me), &error),
    };
    if queued == 0 {
        return problem(
            StatusCode::CONFLICT,
            Some(&me),
            "There is no webhook endpoint to send to: add one under Webhooks.",
        );
    }
    let note = format!("webhooks sent again from the console ({queued} deliveries)");
    if let Err(error) = desk.client().note(&id, me.source(), note).await {
        return ledger_failed(Some(&me), &error);
    }
    desk.wake_webhooks();
    Redirect::to(&format!("{}?done=replayed", payment_path(&id))).into_response()
}
