//! The [`Transport`] trait: the service boundary between the Gate client and an HTTP client.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::{HttpRequest, HttpResponse, TransportError};

/// A boxed, `Send` future: what [`Transport::post`] returns, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Sends one JSON `POST` and returns the complete response.
///
/// Implement it to plug in your own HTTP client; [`ReqwestTransport`](crate::ReqwestTransport) is
/// the one shipped. The trait is object-safe: the Gate client holds an `Arc<dyn Transport>`.
///
/// # Contract
///
/// - Send `request.body` as is, with `Content-Type: application/json` and
///   `Accept: application/json`, as a `POST` to the base URL joined with `request.path`.
/// - Make **one** attempt: no retries and no redirects (a retried payout could pay twice; retrying
///   is the caller's decision).
/// - Return `Ok` for every complete HTTP response, whatever its status (the Gate answers
///   malformed requests with a non-200 status and a JSON body the caller must read).
/// - Return `Err` only when no complete response arrived, and classify it honestly: a
///   [`Delivery::NotSent`](crate::Delivery::NotSent) error only when no byte of the request can
///   have left the process; anything else is
///   [`Delivery::MaybeSent`](crate::Delivery::MaybeSent).
pub trait Transport: Send + Sync + fmt::Debug {
    /// Sends `request` once and returns the complete response, or why there is none.
    ///
    /// # Errors
    ///
    /// A [`TransportError`] when no complete response arrived; its
    /// [`delivery`](TransportError::delivery) says whether the request was not sent or may have
    /// been sent.
    fn post(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>>;
}

impl<T: Transport + ?Sized> Transport for Arc<T> {
    fn post(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        (**self).post(request)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn post(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        (**self).post(request)
    }
}
