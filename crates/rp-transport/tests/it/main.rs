//! Integration tests for rp-transport: the reqwest transport against real servers on
//! 127.0.0.1:0 (raw HTTP/1.1, so stalls and cut-offs are under the test's control), and the
//! scripted test transport.

// Test helpers outside `#[test]` functions may unwrap too: a panic there is a failed test
// (the same rule clippy.toml sets for test functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod headers;
mod large;
mod outcomes;
mod scripted;
mod server;
mod tracing_spans;

use std::io;
use std::sync::{Mutex, Once};
use std::time::Duration;

use rp_transport::ReqwestTransport;

/// Short timeouts keep the failure tests fast. The connect timeout is the shorter one, as in
/// production, so that a slow connect is reported as a connect timeout (not sent).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(400);

/// A transport to `base_url` with the short test timeouts.
fn transport(base_url: &str) -> ReqwestTransport {
    init_tracing();
    ReqwestTransport::builder()
        .base_url(base_url)
        .connect_timeout(CONNECT_TIMEOUT)
        .attempt_timeout(ATTEMPT_TIMEOUT)
        .build()
        .unwrap()
}

/// Everything traced by this test binary (see [`init_tracing`]).
static TRACES: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Installs one global subscriber writing into [`TRACES`], before any request is made.
///
/// A global subscriber set once, before any callsite is hit, avoids tracing's race between a
/// thread-local (`set_default`) subscriber in one test and callsites first hit by other tests
/// running in parallel, which can leave a callsite disabled.
fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| TraceWriter)
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

/// All traces so far, as text.
fn traces() -> String {
    String::from_utf8_lossy(&TRACES.lock().unwrap()).into_owned()
}

struct TraceWriter;

impl io::Write for TraceWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        TRACES.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
