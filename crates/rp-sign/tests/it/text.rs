//! Signing from JSON text: numbers read by their text (`-0` signs as `0`), the same string
//! as verification, and a second `signature` member refused when verifying.

use rp_sign::{Error, SignatureLocation, explain_json, string_to_sign};
use serde_json::{Value, json};

use crate::signer;

#[test]
fn integer_minus_zero_signs_as_zero_on_every_path() {
    let s = signer("secret");
    let zero = s.sign_json(br#"{"a":0}"#).unwrap().to_base64();
    assert_eq!(s.sign_json(br#"{"a":-0}"#).unwrap().to_base64(), zero);
    // A `serde_json::Value` holds `-0` as the float `-0.0`: only the text path can tell.
    let parsed: Value = serde_json::from_str(r#"{"a":-0}"#).unwrap();
    assert_eq!(string_to_sign(&parsed).unwrap(), "a:-0");
    // The float `-0.0` read from text is PHP's `-0`; other floats as PHP renders them.
    let explained = explain_json(br#"{"a":-0,"b":-0.0,"c":1.0,"d":1e20}"#, None).unwrap();
    assert_eq!(explained.string_to_sign(), "a:0;b:-0;c:1;d:1.0E+20");
}

#[test]
fn a_request_signed_from_text_keeps_its_numbers_and_verifies() {
    let s = signer("secret");
    let text = br#"{"general":{"project_id":1234,"signature":"old"},"x":-0,"y":-0.0,"z":"\u0410"}"#;
    let signed = s.sign_request_json(text).unwrap();
    let body = std::str::from_utf8(signed.body()).unwrap();
    assert!(
        body.starts_with(r#"{"general":{"project_id":1234,"signature":""#),
        "{body}"
    );
    assert!(body.ends_with(r#""},"x":-0,"y":-0.0,"z":"А"}"#), "{body}");
    let verified = s.verify_callback(signed.body()).unwrap();
    assert_eq!(verified.location(), SignatureLocation::General);
    // The same signature as the request without the old one, signed from text.
    let without = r#"{"general":{"project_id":1234},"x":0,"y":-0.0,"z":"А"}"#;
    assert_eq!(
        s.sign_json(without.as_bytes()).unwrap().to_base64(),
        signed.signature().to_base64()
    );
}

#[test]
fn a_request_from_text_needs_a_general_object() {
    let s = signer("secret");
    assert!(matches!(
        s.sign_request_json(br#"{"payment":{}}"#),
        Err(Error::MissingGeneral { found: "nothing" })
    ));
    assert!(matches!(
        s.sign_request_json(br#"{"general":[1]}"#),
        Err(Error::MissingGeneral { found: "array" })
    ));
    assert!(matches!(
        s.sign_request_json(b"[1]"),
        Err(Error::NotAnObject { found: "array" })
    ));
    assert!(matches!(
        s.sign_request_json(b"{"),
        Err(Error::InvalidJson(_))
    ));
    assert!(matches!(
        s.sign_request_json(br#"{"general":{"a":"x;y"}}"#),
        Err(Error::AmbiguousValue { signing: true, .. })
    ));
}

#[test]
fn a_second_signature_member_is_refused_when_verifying() {
    let s = signer("secret");
    // Signed over everything, the nested one included: still refused, it is not the
    // platform's form and the SDKs would delete it before checking.
    for payload in [
        json!({"payment": {"id": "p", "signature": "nested"}}),
        json!({"general": {"signature": "inner"}, "payment": {"id": "p"}}),
        json!({"items": [{"signature": "in an array"}]}),
    ] {
        let body = s.sign_callback_body(&payload).unwrap();
        match s.verify_callback(&body) {
            Err(Error::ExtraSignature { location, path }) => {
                assert_eq!(location, SignatureLocation::Root);
                assert!(path.ends_with("signature"), "{path}");
            }
            other => panic!("{payload}: {other:?}"),
        }
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert!(matches!(
            s.verify_value(&value),
            Err(Error::ExtraSignature { .. })
        ));
    }
    // Signing signs a nested `signature` like any other member (as the SDKs' sign() does).
    let payload = json!({"payment": {"signature": "data"}});
    assert_eq!(string_to_sign(&payload).unwrap(), "payment:signature:data");
}
