//! The documentation's worked example and the SDK test vectors of `spec/gate-api.md` §1.3–1.4
//! and `spec/signature.md` §6.

use rp_sign::{SortVariant, string_to_sign};
use serde_json::{Value, json};

use crate::signer;

fn check(key: &str, payload: &Value, expected_string: Option<&str>, expected_signature: &str) {
    if let Some(expected) = expected_string {
        assert_eq!(string_to_sign(payload).unwrap(), expected);
    }
    let signature = signer(key).sign_value(payload).unwrap();
    assert_eq!(
        signature.to_base64(),
        expected_signature,
        "payload {payload}"
    );
}

#[test]
fn documented_gate_purchase_example() {
    let request = json!({
        "general": {"project_id": 3254, "payment_id": "id_38202316"},
        "customer": {
            "id": "585741",
            "email": "johndoe@example.com",
            "first_name": "John",
            "last_name": "Doe",
            "address": "Downing str., 23",
            "identify": {"doc_number": "54122312544"},
            "ip_address": "198.51.100.47"
        },
        "payment": {"amount": 10800, "currency": "USD", "description": "Computer keyboards"},
        "receipt_data": {"positions": [
            {"quantity": "10", "amount": "108", "description": "Computer keyboard"}
        ]},
        "return_url": {
            "success": "https://paymentpage.example.com/complete-redirect?id=success",
            "decline": "https://paymentpage.example.com/complete-redirect?id=decline"
        }
    });
    let expected_signature =
        "lagSnuspAn+F6XkmQISqwtBg0PsiTy62fF9x33TM+278mnufIDZyi1yP0BQALuCxyikkIxIMbodBn2F8hMdRwA==";
    check(
        "secret",
        &request,
        Some(
            "customer:address:Downing str., 23;customer:email:johndoe@example.com;customer:first_name:John;customer:id:585741;customer:identify:doc_number:54122312544;customer:ip_address:198.51.100.47;customer:last_name:Doe;general:payment_id:id_38202316;general:project_id:3254;payment:amount:10800;payment:currency:USD;payment:description:Computer keyboards;receipt_data:positions:0:amount:108;receipt_data:positions:0:description:Computer keyboard;receipt_data:positions:0:quantity:10;return_url:decline:https://paymentpage.example.com/complete-redirect?id=decline;return_url:success:https://paymentpage.example.com/complete-redirect?id=success",
        ),
        expected_signature,
    );
    // And as a request body: the signature lands in `general.signature`.
    let body = signer("secret").sign_request(&request).unwrap();
    assert_eq!(body["general"]["signature"], expected_signature);
    // The same key with another case is another key.
    let other = signer("Secret").sign_value(&request).unwrap();
    assert_ne!(other.to_base64(), expected_signature);
}

#[test]
fn sdk_vectors_v1_to_v7() {
    // V1, PHP SignatureHandlerTest (frame_mode skipped, booleans as 1).
    check(
        "secret",
        &json!({"customer":{"project_id":0,"id":"sutm_id"},"card":{"pan":"4242424242424242","year":2020,"month":8,"card_holder":"John Smith","cvv":"123","save":true},"frame_mode":"popup"}),
        Some(
            "card:card_holder:John Smith;card:cvv:123;card:month:8;card:pan:4242424242424242;card:save:1;card:year:2020;customer:id:sutm_id;customer:project_id:0",
        ),
        "lY0LTSAzpR7zGce5qfYGacOuYlHGWqkMcQlqmjlsDDZI2gVcE1qVeWANnkIR7mdOqRXJnL1kO0lUmkQ0YYLWRg==",
    );
    // V2, Python test (its `signature` was removed).
    check(
        "qwerty",
        &json!({"payment":{"id":"test-payment","status":"success"},"some_bool_param":true,"frame_mode":"popup"}),
        Some("payment:id:test-payment;payment:status:success;some_bool_param:1"),
        "TZS0J65ReNUMgKzeXUey9xOGGyC7r4OhsFXt/3H8XZM2Le8Wot2E1NIjeSPOyV1F3sUU6F3kfo9om2dhbe3ieA==",
    );
    // V3, Python test with nested arrays.
    check(
        "qwerty",
        &json!({"payment":{"id":"test-payment"},"errors":[{"code":"123","message":"grand crash","description":["description-str",{"description1":1}]},{"code":"456","message":"minor crash"}]}),
        Some(
            "errors:0:code:123;errors:0:description:0:description-str;errors:0:description:1:description1:1;errors:0:message:grand crash;errors:1:code:456;errors:1:message:minor crash;payment:id:test-payment",
        ),
        "i6F9q/cfj8T+r/9z1U1f+WgGe0Y/2L2Ml7pp6x6GKLmS0SwbEzcD1/DJ2Hx4PwSgyD696SU19MjtHBF0gv+LKA==",
    );
    // V4, PHP tests/data/callback.php: verified as a callback with its root signature.
    let callback = br#"{"payment":{"id":"000049","status":"success"},"signature":"/3TrhHVz9BHaLfgLyhoxO7dsQNzbzZa/TdO3pxQocXWwgVM6tGlzMLVfpOxFNTnkR9iiFVK/77ZedMcbkCjmng=="}"#;
    let verified = signer("secret").verify_callback(callback).unwrap();
    assert_eq!(verified.variant(), SortVariant::PhpNatural);
    assert_eq!(
        string_to_sign(&verified.value().unwrap()).unwrap(),
        "payment:id:000049;payment:status:success"
    );
    // V5, Go test (string only).
    let v5: Value = serde_json::from_str(
        r#"{"a": {"b": 1111111111111111, "c": 2 }, "d": false, "f": [ "g", { "h": 7, "i": { "k": 8 } } ], "e": [ 4, 5 ]}"#,
    )
    .unwrap();
    assert_eq!(
        string_to_sign(&v5).unwrap(),
        "a:b:1111111111111111;a:c:2;d:0;e:0:4;e:1:5;f:0:g;f:1:h:7;f:1:i:k:8"
    );
    // V6, JS converter test (string only; null gives an empty value).
    let v6 = json!({"0": null, "a": {"b": 1, "c": 2}, "d": false, "f": ["g", {"h": 7, "i": {"k": 8}}], "e": [4, 5]});
    assert_eq!(
        string_to_sign(&v6).unwrap(),
        "0:;a:b:1;a:c:2;d:0;e:0:4;e:1:5;f:0:g;f:1:h:7;f:1:i:k:8"
    );
    // V7, Go test.
    check(
        "qwerty",
        &json!({"project_id":11,"payment_currency":"EUR","frame_mode":"popup","some_bool_param":true,"two_levels_param":{"param1":1,"param2":2}}),
        Some(
            "payment_currency:EUR;project_id:11;some_bool_param:1;two_levels_param:param1:1;two_levels_param:param2:2",
        ),
        "ehwG+e+Sq6b0QEek2hmHGUFzViX9/Xfcgnh0Ysn1+AqCY8BsKhC/Vcyr4XH8CKXW3iS0vW9S2mTwOt/0Ozf5pg==",
    );
}

#[test]
fn self_computed_vectors() {
    check(
        "secret",
        &json!({"general":{"project_id":3254,"payment_id":"id_38202316"}}),
        Some("general:payment_id:id_38202316;general:project_id:3254"),
        "mqnM0K9jLpAfXm9mYIleYqcY7kSt8tdx+wxXVVlwsUX8bsAEjd9zqV7289pL/lxMEmXF3S/iRfNWoY+ZKqnKMQ==",
    );
    // `general.signature` removed before signing (as verification does), all scalar kinds.
    let message = json!({"general":{"project_id":1,"payment_id":"p:1","signature":"ignored"},"flag_t":true,"flag_f":false,"nul":null,"empty_s":"","empty_a":[],"empty_o":{},"frame_mode":"iframe","txt":"Привет"});
    let mut unsigned = message;
    unsigned["general"]
        .as_object_mut()
        .unwrap()
        .remove("signature");
    check(
        "secret",
        &unsigned,
        Some(
            "empty_s:;flag_f:0;flag_t:1;general:payment_id:p:1;general:project_id:1;nul:;txt:Привет",
        ),
        "xrWsEkMu3CmJfVXoVwKiJTZhqoVSMCisPqhmYL/VRNGn7ceyHQ/77V9HAqaHMFCNoOi8tUqQYKe2tr2aOVE9Pw==",
    );
}

#[test]
fn more_sdk_vectors_from_signature_md() {
    // Python multilevel with null.
    check(
        "qwerty",
        &json!({"payment":{"id":"test-payment"},"errors":[{"code":"123","message":"grand crash","description":["description-str",{"description1":1}]},{"code":"456","message":"minor crash","description":null}]}),
        None,
        "dxjnun8oySSl0CWlhhjy/k1V9CZcCtaHvu/Y5qJQbWHq8wd6TqTUt4bIfHrlWxT8ba9NOJfkgGHrGc5OgyQVGA==",
    );
    // Python / Java callback: "123" and 123 sign the same.
    for project_id in [json!("123"), json!(123)] {
        check(
            "qwerty",
            &json!({"project_id":project_id,"recurring":{"id":321,"status":"active","type":"Y","currency":"EUR","exp_year":"2025","exp_month":"12","period":"D","time":"11"}}),
            None,
            "AThqkBCZ6WZtY3WrMV28o7SM/vq6OIVF9qiVbELN4e/Ux59Lb5LFFnEuTq6bHa5pRvaPIkQGABXdpIrNLaeJdQ==",
        );
    }
    // Java callbackDataWithArray.
    check(
        "qwerty",
        &json!({"errors":[{"message":"error1","code":1,"fail":true},{"message":"error2","code":2,"fail":false},{"message":"error3","code":3,"fail":{"sub-fail":{"test":1}}}],"sum_converted":{"amount":10000,"currency":"EUR"}}),
        None,
        "oXF9a0F80FBkT5plV1aVcQIVSWr3l07StkQ2izUKmy//H2S9gMX982Kgm4tXB4+Ze1S5E1jeKhwheIgYMZ4J+w==",
    );
}

#[test]
fn natural_versus_byte_order_example_of_gate_api_md() {
    let payload = json!({"a": (0..=10).map(|i| i.to_string()).collect::<Vec<_>>()});
    check(
        "secret",
        &payload,
        Some("a:0:0;a:1:1;a:2:2;a:3:3;a:4:4;a:5:5;a:6:6;a:7:7;a:8:8;a:9:9;a:10:10"),
        "vOFxinaXw+PNH0dmnmcaRjStMX2t0erFau2lci5omhb6PsB2AW4H42ZUcyQFONZPclWydWUKQ7T3aYpT6Rv9+Q==",
    );
    // The lexicographic signature from the same section verifies under the byte-order variant.
    let mut callback = payload;
    callback["signature"] = json!(
        "ZNd/bZBTo7i6LyLGMUaI7QJpujcdppnOP63iMIlL0wLuS9SyvAVYO63659pFzHpr1m4kRIkx4iV3Wx3sxiizmA=="
    );
    let verified = signer("secret").verify_value(&callback).unwrap();
    assert_eq!(verified.variant(), SortVariant::BytewiseByPath);
}
