//! `/limits` (the configured limits and how much of each rolling window is used), and the
//! operations endpoints: `/healthz` (the process answers), `/readyz` (the ledger answers),
//! `/metrics` (Prometheus; it asks for an API key, `crate::api::require_key`).

use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use rp_model::{LimitKind, Money};

use super::layout::{notice, page};
use super::{html, ledger_failed};
use crate::{Desk, Me};

/// `/healthz`: the process is up.
pub(crate) async fn health() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// `/readyz`: the ledger answers a read (else 503: take this instance out of rotation).
pub(crate) async fn ready(State(desk): State<Desk>) -> Response {
    match desk.client().store().counts().await {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(error) => {
            tracing::warn!(%error, "not ready: the ledger does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the ledger does not answer\n",
            )
                .into_response()
        }
    }
}

/// `/metrics` (behind an API key of either role).
pub(crate) async fn metrics(State(desk): State<Desk>) -> Response {
    match desk.client().store().counts().await {
        Ok(counts) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            desk.metrics().render(&counts),
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(%error, "metrics: the ledger does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the ledger does not answer\n",
            )
                .into_response()
        }
    }
}

/// `/limits`.
pub(crate) async fn limits(State(desk): State<Desk>, Extension(me): Extension<Me>) -> Response {
    let limits = desk.client().config().limits;
    let usage = match desk.client().store().usage(limits.currency).await {
        Ok(usage) => usage,
        Err(error) => return ledger_failed(Some(&me), &error),
    };
    let shown = |kind: LimitKind, value: u64| -> String {
        if kind.is_count() {
            value.to_string()
        } else {
            Money::from_minor(value, limits.currency).to_string()
        }
    };
    let body = html! {
        h1 { "Limits" }
        @if limits.is_empty() {
            (notice("info", "No limits are configured: rp applies none of its own (the platform still applies the project's). Start rp serve with --limits FILE or the --limit-* flags."))
        }
        div.table-wrap { table {
            thead { tr { th { "Limit" } th.num { "Configured" } th.num { "Used now" } th.num { "Left" } } }
            tbody {
                @for kind in LimitKind::ALL {
                    @let configured = limits.get(kind);
                    @let used = kind.period().map(|_| usage.of(kind));
                    tr {
                        td { (kind.label()) }
                        td.num { (configured.map_or_else(|| "—".to_owned(), |v| shown(kind, v))) }
                        td.num { (used.map_or_else(|| "per payout".to_owned(), |v| shown(kind, v))) }
                        td.num {
                            @match (configured, used) {
                                (Some(limit), Some(used)) => (shown(kind, limit.saturating_sub(used))),
                                _ => "—",
                            }
                        }
                    }
                }
            }
        } }
        p.muted { "Windows are rolling, counted in whole hours on the ledger's clock: a day is the last 24 hours, a week 7 days, a month 31 days. A payout counts from when it is recorded until it is declined or refused." }
    };
    html(page("Limits", Some(&me), "/limits", body))
}
