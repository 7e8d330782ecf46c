//! The console's router: the public pages (login, assets, health; metrics with an API key),
//! the pages that need a signed-in operator, and the headers every answer carries.
//!
//! | Path | What |
//! | --- | --- |
//! | `/login`, `/logout` | signing in and out |
//! | `/payments`, `/payments.csv`, `/payments/{payment_id}` | the payments, their export, one payment |
//! | `/payouts/new` → `POST /payouts` | a single payout: form, confirmation, result |
//! | `/batches`, `/batches/new` → `POST /batches/upload` → `POST /batches/{id}/confirm`, `/batches/{id}`, `/batches/{id}/report.csv` | mass payouts: upload, check, confirm, progress, report |
//! | `/limits`, `/attention` | the limits and what they use; payouts that need a person |
//! | `/webhooks` → `POST /webhooks`, `/webhooks/{id}/enable`, `…/disable`, `…/remove`; `POST /payments/{payment_id}/webhooks/replay` | webhook endpoints; a payout's deliveries sent again |
//! | `/healthz`, `/readyz`; `/metrics` (with an API key) | for the orchestrator and Prometheus |

// Handlers stop early with a finished answer (`Err(Response)`): an error page is the normal
// way out of a page, and boxing every one would only add noise.
#![allow(clippy::result_large_err)]

pub(crate) mod batches;
pub(crate) mod layout;
mod login;
mod payment;
pub(crate) mod payments;
mod payout_form;
mod status;
pub(crate) mod upload;
mod webhooks;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::Desk;
use crate::auth::require_login;

/// The largest form body a console page accepts (a batch file is uploaded separately).
pub(crate) const MAX_FORM_BYTES: usize = 64 * 1024;

/// How long a form's body has to arrive once its head has (a client that sends a head and
/// never its body holds a connection; it is answered 408 and dropped).
pub(crate) const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long an upload may pause between two pieces of its body.
pub(crate) const UPLOAD_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The content security policy: nothing from elsewhere, no inline script or style, no
/// framing, forms only to this origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("../../assets/console.css");
const JS: &str = include_str!("../../assets/console.js");

/// The console, with health and metrics, on `desk`. The callback endpoint is mounted
/// beside it by [`crate::serve`].
pub fn router(desk: Desk) -> Router {
    let signed_in = Router::new()
        .route("/", get(|| async { Redirect::to("/payments") }))
        .route("/logout", post(login::logout))
        .route("/payments", get(payments::list))
        .route("/payments.csv", get(payments::export))
        .route("/payments/{payment_id}", get(payment::show))
        .route("/payments/{payment_id}/state", get(payment::state_fragment))
        .route("/payments/{payment_id}/check", post(payment::check))
        .route("/payments/{payment_id}/resend", post(payment::resend))
        .route("/payouts/new", get(payout_form::new))
        .route("/payouts", post(payout_form::submit))
        .route("/batches", get(batches::list))
        .route("/batches/new", get(upload::new))
        .route("/batches/{id}/confirm", post(upload::confirm))
        .route("/batches/{id}/resume", post(batches::resume))
        .route("/batches/{id}", get(batches::show))
        .route("/batches/{id}/progress", get(batches::progress_fragment))
        .route("/batches/{id}/report.csv", get(batches::report))
        .route("/limits", get(status::limits))
        .route("/attention", get(payments::attention))
        .route("/webhooks", get(webhooks::list).post(webhooks::add))
        .route("/webhooks/{id}/enable", post(webhooks::enable))
        .route("/webhooks/{id}/disable", post(webhooks::disable))
        .route("/webhooks/{id}/remove", post(webhooks::remove))
        .route(
            "/payments/{payment_id}/webhooks/replay",
            post(webhooks::replay),
        )
        .route_layer(middleware::from_fn_with_state(desk.clone(), require_login));
    Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route(
            "/assets/console.css",
            get(|| asset(CSS, "text/css; charset=utf-8")),
        )
        .route(
            "/assets/console.js",
            get(|| asset(JS, "text/javascript; charset=utf-8")),
        )
        .route("/healthz", get(status::health))
        .route("/readyz", get(status::ready))
        .route(
            "/metrics",
            get(status::metrics).route_layer(middleware::from_fn_with_state(
                desk.clone(),
                crate::api::require_key,
            )),
        )
        .merge(signed_in)
        .merge(crate::api::router(desk.clone()))
        .fallback(not_found)
        .layer(middleware::from_fn(read_form_in_time))
        .merge(upload_router(desk.clone()))
        .merge(crate::api::batch_upload_router(desk.clone()))
        .layer(middleware::from_fn(crate::api::problems_only))
        .layer(middleware::from_fn_with_state(
            desk.clone(),
            headers_and_timing,
        ))
        .with_state(desk)
}

/// The console's file upload, which streams to disk (each piece in time, up to the upload
/// limit): outside the layer that reads every other body whole within 64 KiB. Only a
/// `multipart/form-data` body is taken, refused before anything reads it otherwise (the
/// sign-in check would read a form's body for its token, with no time limit here).
fn upload_router(desk: Desk) -> Router<Desk> {
    let limit = desk.settings().max_upload_bytes.saturating_add(64 * 1024);
    Router::new()
        .route(
            "/batches/upload",
            post(upload::upload).layer(DefaultBodyLimit::max(limit)),
        )
        .route_layer(middleware::from_fn_with_state(desk, require_login))
        .route_layer(middleware::from_fn(multipart_only))
}

/// 415 for a request that is not `multipart/form-data`, before its body is read.
async fn multipart_only(request: Request, next: Next) -> Response {
    if crate::auth::is_multipart(request.headers()) {
        return next.run(request).await;
    }
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        [(header::CONNECTION, "close")],
        "send the file as multipart/form-data",
    )
        .into_response()
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return crate::api::problem(
            StatusCode::NOT_FOUND,
            "not-found",
            "No such API path.",
            None,
        );
    }
    (StatusCode::NOT_FOUND, "no such page").into_response()
}

/// A body that could not be read whole: 413 when it is over the limit it was read with,
/// otherwise 400 with the cause (the client broke its framing: bad chunks, a length it did not
/// send). `what` names the body ("the form"). Answer it with the connection closed: what
/// follows on it cannot be trusted to be a request.
pub(crate) fn unreadable(what: &str, error: &axum::Error) -> (StatusCode, String) {
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        if inner.is::<http_body_util::LengthLimitError>() {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("{what} is too large"),
            );
        }
        cause = inner.source();
    }
    (
        StatusCode::BAD_REQUEST,
        format!("{what} could not be read: {error}"),
    )
}

/// Reads the body of every request within [`BODY_READ_TIMEOUT`] and [`MAX_FORM_BYTES`],
/// before any handler: 408 or 413 otherwise, whatever its content type. (Uploads, which
/// stream, are routed around it: [`upload_router`], [`crate::api::batch_upload_router`].)
async fn read_form_in_time(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, MAX_FORM_BYTES);
    let bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(error)) => {
            let (status, text) = unreadable("the form", &error);
            return (status, [(header::CONNECTION, "close")], text).into_response();
        }
        Err(_) => {
            let mut response = (
                StatusCode::REQUEST_TIMEOUT,
                "the form did not arrive in time",
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// Security headers on every answer (pages are never cached: they show money and phone
/// numbers), and the request's time in the metrics.
async fn headers_and_timing(State(desk): State<Desk>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = match request.uri().path() {
        "/healthz" | "/readyz" | "/metrics" => "ops",
        path if path.starts_with("/assets/") => "assets",
        path if path.starts_with("/api/") => "api",
        _ => "console",
    };
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if route == "console" || route == "api" {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    desk.metrics().request(route, started.elapsed());
    response
}

/// An HTML answer.
pub(crate) fn html(markup: maud::Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A page saying something went wrong, with `status`.
pub(crate) fn problem(status: StatusCode, me: Option<&crate::Me>, text: &str) -> Response {
    let mut response = html(layout::page(
        "Problem",
        me,
        "",
        maud::html! { h1 { "Something went wrong" } (layout::notice("error", text)) },
    ));
    *response.status_mut() = status;
    response
}

/// The ledger failed: logged, answered 503 (the operator may try again).
pub(crate) fn ledger_failed(me: Option<&crate::Me>, error: &rp_payout::Error) -> Response {
    tracing::error!(%error, "console: the ledger failed");
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        me,
        &format!(
            "The ledger did not answer: {error}. Nothing was changed by this page; try again."
        ),
    )
}

/// A receiver of body chunks as a response body stream (an export or a report written a
/// page at a time).
pub(crate) struct ChannelStream(
    pub(crate) tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>,
);

impl futures_core::Stream for ChannelStream {
    type Item = Result<axum::body::Bytes, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
