//! `Client::operators` over HTTP.

use rp_model::Operator;
use serde_json::json;

use crate::gate::{Gate, Reply, envelope};

#[tokio::test]
async fn the_contract_shape_over_http() {
    let gate = Gate::start().await;
    gate.on_operators(Reply::Json(
        200,
        json!({"project_id":1234,"operators":[{"id":"ACTIV","name":"Activ"},{"id":"NEWOP","name":"New"}]}),
    ));
    let (client, _clock, _store) = gate.client();
    let list = client.operators().await.unwrap();
    assert_eq!(
        list.operators,
        [Operator::Activ, Operator::Other("NEWOP".into())]
    );
    assert!(list.raw.contains("NEWOP"));
    let request = &gate.received()[0].body;
    assert_eq!(request["general"]["project_id"], 1234);
    assert!(request["general"].get("payment_id").is_none());
}

#[tokio::test]
async fn an_error_envelope_is_a_rejection_and_no_operators_is_unexpected() {
    let gate = Gate::start().await;
    gate.on_operators(envelope(403, "3261", "Invalid signature", None))
        .on_operators(Reply::Json(200, json!({"project_id": 1234})));
    let (client, _clock, _store) = gate.client();
    let error = client.operators().await.unwrap_err();
    assert!(error.is_rejected(), "{error}");
    let error = client.operators().await.unwrap_err().to_string();
    assert!(error.contains("no list of operators"), "{error}");
}
