//! HTTP transport for the Rocketpay Gate API whose errors say what matters after a failure:
//! was the request **not sent**, **maybe sent**, or **answered**?
//!
//! Money moves on the far side of this layer. Sending a payout request twice could pay twice;
//! not sending it when it failed early leaves a customer unpaid. So every call to
//! [`Transport::post`] ends in exactly one of three [`Delivery`] outcomes:
//!
//! | Outcome | Returned as | Meaning | What the caller may do |
//! | --- | --- | --- | --- |
//! | [`Delivery::NotSent`] | `Err(TransportError)` | No byte left this process: bad URL or request, DNS failure, connection refused, TLS handshake failure, connect timeout | Send it again |
//! | [`Delivery::MaybeSent`] | `Err(TransportError)` | Bytes may have reached the server, but no complete response came back: attempt timeout, connection reset or closed mid-response, body cut off | Find out the outcome first (a status request with the **same** `payment_id`); never resend under a new id |
//! | [`Delivery::Answered`] | `Ok(HttpResponse)` | A complete HTTP response, **whatever its status** | Read it: the Gate answers malformed requests with non-200 and a JSON body |
//!
//! A 4xx or 5xx response is therefore `Ok`: the transport does not judge statuses, the Gate
//! client does (a 5xx may well mean "maybe processed"). `Err` is reserved for failures of the
//! transport itself, and the classification is conservative: only failures that provably
//! happened before any byte was written are `NotSent`. [`Delivery::of`] turns a result into its
//! outcome; [`TransportError::delivery`], [`TransportError::is_timeout`] and
//! [`TransportError::is_connect`] answer the same for an error.
//!
//! The pieces:
//!
//! - [`Transport`]: the object-safe trait (`Arc<dyn Transport>`), with its own small types
//!   [`HttpRequest`], [`HttpResponse`] and [`Headers`] and no reqwest type, so you can plug in
//!   your own HTTP client.
//! - [`ReqwestTransport`]: the shipped implementation (reqwest, HTTP/1.1, rustls with the aws-lc-rs
//!   provider, no OpenSSL), one pooled client, one attempt per call: no retries, no redirects.
//!   Retrying is the payout client's job.
//! - `ScriptedTransport` (feature `test-util`): scripted responses and errors that record the
//!   requests they get, for other crates' tests.
//!
//! Each request runs in a `rp_transport.post` tracing span with the path, status, duration and
//! outcome; bodies and headers are never recorded, and `Debug` of requests and responses shows
//! body lengths only.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use rp_transport::{Delivery, HttpRequest, ReqwestTransport, Transport};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # // A one-shot local server standing in for the Gate.
//! # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! # let base_url = format!("http://{}", listener.local_addr()?);
//! # std::thread::spawn(move || {
//! #     use std::io::{Read, Write};
//! #     let (mut stream, _) = listener.accept().unwrap();
//! #     let mut request = Vec::new();
//! #     let mut buf = [0u8; 4096];
//! #     while !request.ends_with(b"{}") {
//! #         let n = stream.read(&mut buf).unwrap();
//! #         if n == 0 { break; }
//! #         request.extend_from_slice(&buf[..n]);
//! #     }
//! #     let body = r#"{"status":"success"}"#;
//! #     write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
//! # });
//! // Production defaults: https://api.rocketpay.kz, 10 s connect, 30 s per attempt.
//! // Here: a local server standing in for the Gate.
//! let transport: Arc<dyn Transport> = Arc::new(
//!     ReqwestTransport::builder()
//!         .base_url(base_url)
//!         .attempt_timeout(Duration::from_secs(5))
//!         .user_agent_suffix("my-shop/1.0")
//!         .build()?,
//! );
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let result = transport.post(HttpRequest::new("/v2/payment/status", "{}")).await;
//! match Delivery::of(&result) {
//!     Delivery::Answered => {
//!         let response = result?;
//!         println!("HTTP {}: {} bytes", response.status, response.body.len());
//!         assert_eq!(response.status, 200);
//!     }
//!     Delivery::NotSent => println!("not sent, safe to send again: {}", result.unwrap_err()),
//!     Delivery::MaybeSent => println!("outcome unknown, ask for the status: {}", result.unwrap_err()),
//! }
//! # Ok::<(), rp_transport::TransportError>(())
//! # })?;
//! # Ok(())
//! # }
//! ```

mod error;
mod http;
mod reqwest_transport;
#[cfg(feature = "test-util")]
mod scripted;
mod transport;

pub use error::{Delivery, TransportError};
pub use http::{Headers, HttpRequest, HttpResponse, RetryAfter};
pub use reqwest_transport::{
    DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES,
    ReqwestTransport, ReqwestTransportBuilder, USER_AGENT,
};
#[cfg(feature = "test-util")]
pub use scripted::ScriptedTransport;
pub use transport::{BoxFuture, Transport};
