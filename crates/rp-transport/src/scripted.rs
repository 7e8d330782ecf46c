//! [`ScriptedTransport`]: a [`Transport`] that plays a script, for tests (feature `test-util`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

use crate::{BoxFuture, Headers, HttpRequest, HttpResponse, Transport, TransportError};

/// A [`Transport`] that answers each request with the next scripted response or error, and
/// records every request it receives.
///
/// Clones share the script and the record, so a test can keep one clone and hand another to
/// the code under test as an `Arc<dyn Transport>`.
///
/// **A request after the script has run out fails the test loudly**: `post` panics, naming
/// the request's path and how many requests the script answered. It never invents an
/// answer: a made-up "not sent" could let a retry test pass by accident. If the code under
/// test swallows that panic (e.g. a spawned task whose `JoinError` is ignored), dropping the
/// last clone of the transport panics again, so the test still fails. Check
/// [`ScriptedTransport::overruns`] to assert on it without panicking first.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use rp_transport::{Delivery, HttpRequest, ScriptedTransport, Transport, TransportError};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let script = ScriptedTransport::new()
///     .then_fail(TransportError::maybe_sent_timeout("/v2/payment/status", Duration::from_secs(30)))
///     .then_respond(200, r#"{"status":"success"}"#);
/// let transport: Arc<dyn Transport> = Arc::new(script.clone());
///
/// let first = transport.post(HttpRequest::new("/v2/payment/status", "{}")).await;
/// assert_eq!(Delivery::of(&first), Delivery::MaybeSent);
/// let second = transport.post(HttpRequest::new("/v2/payment/status", "{}")).await.unwrap();
/// assert_eq!(second.status, 200);
/// assert_eq!(script.requests().len(), 2);
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct ScriptedTransport {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    script: VecDeque<Result<HttpResponse, TransportError>>,
    requests: Vec<HttpRequest>,
    /// Paths of the requests that arrived after the script ran out.
    overruns: Vec<String>,
}

// A test double: failing the test is its job, so it may panic (never library code).
#[allow(clippy::panic)]
impl Drop for State {
    fn drop(&mut self) {
        if !self.overruns.is_empty() && !std::thread::panicking() {
            panic!(
                "ScriptedTransport: {} request(s) arrived after the script ran out ({}); the panic at the time may have been swallowed",
                self.overruns.len(),
                self.overruns.join(", ")
            );
        }
    }
}

impl ScriptedTransport {
    /// An empty script.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a response with `status` and `body` and a `Content-Type: application/json` header.
    #[must_use]
    pub fn then_respond(self, status: u16, body: impl Into<Bytes>) -> Self {
        let headers = Headers::new().with("content-type", "application/json");
        self.then_respond_with(HttpResponse::new(status, headers, body))
    }

    /// Adds a response given in full (e.g. with a `Retry-After` header).
    #[must_use]
    pub fn then_respond_with(self, response: HttpResponse) -> Self {
        self.push(Ok(response));
        self
    }

    /// Adds an error (build one with the `TransportError::not_sent_*` / `maybe_sent_*`
    /// constructors).
    #[must_use]
    pub fn then_fail(self, error: TransportError) -> Self {
        self.push(Err(error));
        self
    }

    /// Adds the next outcome through a shared handle (e.g. while a test runs).
    pub fn push(&self, outcome: Result<HttpResponse, TransportError>) {
        self.lock().script.push_back(outcome);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.lock().requests.clone()
    }

    /// How many scripted outcomes are left.
    pub fn remaining(&self) -> usize {
        self.lock().script.len()
    }

    /// The paths of the requests that arrived after the script ran out (each one also
    /// panicked in [`Transport::post`]).
    pub fn overruns(&self) -> Vec<String> {
        self.lock().overruns.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// A test double: an exhausted script must fail the test, never answer for it.
#[allow(clippy::panic)]
impl Transport for ScriptedTransport {
    fn post(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        let outcome = {
            let mut state = self.lock();
            let path = request.path.clone();
            state.requests.push(request);
            match state.script.pop_front() {
                Some(outcome) => outcome,
                None => {
                    let answered = state.requests.len() - 1;
                    state.overruns.push(path.clone());
                    drop(state);
                    panic!(
                        "ScriptedTransport: the script ran out: request {} to {path} has no scripted outcome ({answered} answered); script one more outcome, or the code under test sent a request it should not have",
                        answered + 1
                    );
                }
            }
        };
        Box::pin(async move { outcome })
    }
}
