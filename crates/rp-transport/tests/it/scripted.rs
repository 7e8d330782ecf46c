//! The scripted test transport plays its script in order and records what it received.

use std::sync::Arc;
use std::time::Duration;

use rp_transport::{
    Delivery, Headers, HttpRequest, HttpResponse, RetryAfter, ScriptedTransport, Transport,
    TransportError,
};

#[tokio::test]
async fn plays_the_script_in_order_and_records_requests() {
    let script = ScriptedTransport::new()
        .then_fail(TransportError::not_sent_connect("/a", "connection refused"))
        .then_fail(TransportError::maybe_sent_timeout(
            "/a",
            Duration::from_secs(30),
        ))
        .then_respond_with(HttpResponse::new(
            429,
            Headers::new().with("Retry-After", "2"),
            "{}",
        ))
        .then_respond(200, r#"{"status":"success"}"#);
    assert_eq!(script.remaining(), 4);
    let transport: Arc<dyn Transport> = Arc::new(script.clone());

    let mut outcomes = Vec::new();
    for i in 0..4 {
        let result = transport
            .post(HttpRequest::new("/a", format!("{{\"n\":{i}}}")))
            .await;
        outcomes.push(Delivery::of(&result));
        if i == 2 {
            assert_eq!(
                result.unwrap().retry_after(),
                Some(RetryAfter::Delay(Duration::from_secs(2)))
            );
        } else if i == 3 {
            let response = result.unwrap();
            assert_eq!(response.header("content-type"), Some("application/json"));
            assert_eq!(&response.body[..], br#"{"status":"success"}"#);
        }
    }
    assert_eq!(
        outcomes,
        [
            Delivery::NotSent,
            Delivery::MaybeSent,
            Delivery::Answered,
            Delivery::Answered
        ]
    );
    let bodies: Vec<_> = script.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies, ["{\"n\":0}", "{\"n\":1}", "{\"n\":2}", "{\"n\":3}"]);
    assert_eq!(script.remaining(), 0);
}

#[test]
fn an_exhausted_script_panics_naming_the_request() {
    let script = ScriptedTransport::new().then_respond(200, "{}");
    let handle = script.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        assert!(script.post(HttpRequest::new("/a", "{}")).await.is_ok());
    });
    let second = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(script.post(HttpRequest::new("/v2/payment/status", "{}")))
    }));
    let message = second.unwrap_err();
    let message = message.downcast_ref::<String>().unwrap();
    assert!(message.contains("the script ran out"), "{message}");
    assert!(
        message.contains("request 2 to /v2/payment/status"),
        "{message}"
    );
    assert_eq!(handle.overruns(), ["/v2/payment/status"]);
    assert_eq!(handle.requests().len(), 2);

    // A swallowed panic still fails the test: dropping the last clone panics again.
    drop(script);
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(handle)));
    let message = dropped.unwrap_err();
    let message = message.downcast_ref::<String>().unwrap();
    assert!(message.contains("after the script ran out"), "{message}");
}

#[tokio::test]
async fn a_swallowed_overrun_in_a_spawned_task_is_still_seen() {
    let script = ScriptedTransport::new();
    let transport: Arc<dyn Transport> = Arc::new(script.clone());
    let task = tokio::spawn(async move {
        let _ = transport.post(HttpRequest::new("/p", "{}")).await;
    });
    assert!(task.await.unwrap_err().is_panic());
    assert_eq!(script.overruns(), ["/p"]);
    // Forget the handle so the test itself does not panic on drop.
    std::mem::forget(script);
}

#[tokio::test]
async fn outcomes_can_be_pushed_through_a_shared_handle() {
    let script = ScriptedTransport::new();
    let handle = script.clone();
    handle.push(Err(TransportError::maybe_sent_interrupted("/p", "reset")));
    let error = script.post(HttpRequest::new("/p", "{}")).await.unwrap_err();
    assert_eq!(error, TransportError::maybe_sent_interrupted("/p", "reset"));
    assert_eq!(handle.requests()[0].path, "/p");
}
