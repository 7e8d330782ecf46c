//! What goes on the wire: method, path, headers, body; and connection reuse.

use rp_transport::{HttpRequest, ReqwestTransport, Transport};

use crate::server::{Reply, Server, json};
use crate::transport;

#[tokio::test]
async fn sends_a_json_post_with_the_agreed_headers() {
    let server = Server::start(|_| Reply::Send(json(200, "{}"))).await;
    let body = r#"{"general":{"project_id":1}}"#;
    transport(&server.base_url)
        .post(HttpRequest::new("/v2/payment/status", body))
        .await
        .unwrap();
    let requests = server.requests();
    let [seen] = requests.as_slice() else {
        panic!("expected one request, got {requests:?}")
    };
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v2/payment/status");
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("accept"), Some("application/json"));
    assert_eq!(seen.header("user-agent"), Some("rp-transport/0.1.0"));
    assert_eq!(
        seen.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(seen.body, body.as_bytes());
    assert_eq!(seen.header("referer"), None);
}

#[tokio::test]
async fn user_agent_suffix_and_base_path_prefix_are_used() {
    let server = Server::start(|_| Reply::Send(json(200, "{}"))).await;
    let transport = ReqwestTransport::builder()
        .base_url(format!("{}/gate/", server.base_url))
        .user_agent_suffix("my-shop/2.3")
        .build()
        .unwrap();
    transport
        .post(HttpRequest::new("/v2/info/mobile/payout/list", "{}"))
        .await
        .unwrap();
    let seen = &server.requests()[0];
    assert_eq!(seen.path, "/gate/v2/info/mobile/payout/list");
    assert_eq!(
        seen.header("user-agent"),
        Some("rp-transport/0.1.0 my-shop/2.3")
    );
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let server = Server::start(|_| Reply::Send(json(200, "{}"))).await;
    let transport = transport(&server.base_url);
    for _ in 0..2 {
        let response = transport
            .post(HttpRequest::new("/v2/payment/status", "{}"))
            .await
            .unwrap();
        assert_eq!(response.status, 200);
    }
    // A clone shares the pool too.
    transport
        .clone()
        .post(HttpRequest::new("/v2/payment/status", "{}"))
        .await
        .unwrap();
    assert_eq!(server.requests().len(), 3);
    assert_eq!(
        server.accepted(),
        1,
        "connections must be pooled and reused"
    );
}
