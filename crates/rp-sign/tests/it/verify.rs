//! Verification outcomes: each failure is its own error, and errors never show the key.

use rp_sign::{Error, SecretKey, SignatureLocation, SignatureProblem, Signer, SortVariant};
use serde_json::json;

use crate::signer;

const KEY: &str = "s3cr3t-key-value";

/// Whether an error is the one a case expects.
type IsExpected = fn(&Error) -> bool;

fn signed_callback() -> Vec<u8> {
    rp_sign::testing::sign_callback(
        &json!({"project_id": 1234, "payment": {"id": "p1", "status": "success"}}),
        &SecretKey::from(KEY),
    )
    .unwrap()
}

#[test]
fn a_signed_callback_verifies_and_loses_its_signature() {
    let body = signed_callback();
    let verified = signer(KEY).verify_callback(&body).unwrap();
    assert_eq!(verified.variant(), SortVariant::PhpNatural);
    assert_eq!(verified.location(), SignatureLocation::Root);
    assert_eq!(
        verified.value().unwrap(),
        json!({"project_id": 1234, "payment": {"id": "p1", "status": "success"}})
    );
}

#[test]
fn each_failure_is_a_distinct_error() {
    let s = signer(KEY);
    let cases: Vec<(&[u8], IsExpected)> = vec![
        (b"not json", |e| matches!(e, Error::InvalidJson(_))),
        (b"\xff\xfe", |e| matches!(e, Error::InvalidJson(_))),
        (b"[1,2]", |e| matches!(e, Error::NotAnObject { found: "array" })),
        (b"\"text\"", |e| matches!(e, Error::NotAnObject { found: "string" })),
        (br#"{"payment":{"id":"p1"}}"#, |e| matches!(e, Error::MissingSignature)),
        (br#"{"general":{"project_id":1}}"#, |e| matches!(e, Error::MissingSignature)),
        (br#"{"a":1,"signature":"***not base64***"}"#, |e| {
            matches!(
                e,
                Error::MalformedSignature { location: SignatureLocation::Root, problem: SignatureProblem::NotBase64 }
            )
        }),
        // The placeholder of the Rocketpay callback page (65 characters: not even Base64).
        (
            br#"{"a":1,"signature":"U7HQO7ToISZhMPKdM4Xr4DSX2UuHp99rHrtaxkUKQtoYzFvoB3cs9CRd4xeYG2Q=="}"#,
            |e| matches!(e, Error::MalformedSignature { problem: SignatureProblem::NotBase64, .. }),
        ),
        // Valid Base64 of 32 bytes, not 64.
        (
            br#"{"a":1,"signature":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}"#,
            |e| {
                matches!(
                    e,
                    Error::MalformedSignature { problem: SignatureProblem::WrongLength { bytes: 32 }, .. }
                )
            },
        ),
        (br#"{"a":1,"signature":12}"#, |e| {
            matches!(
                e,
                Error::MalformedSignature { problem: SignatureProblem::NotAString { found: "number" }, .. }
            )
        }),
        (
            br#"{"general":{"project_id":1,"signature":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}}"#,
            |e| matches!(e, Error::InvalidSignature { location: SignatureLocation::General }),
        ),
    ];
    for (body, expected) in cases {
        let err = s.verify_callback(body).unwrap_err();
        assert!(
            expected(&err),
            "{}: got {err:?}",
            String::from_utf8_lossy(body)
        );
        let message = err.to_string();
        assert!(!message.contains(KEY), "key leaked: {message}");
        assert!(!message.is_empty());
    }
}

#[test]
fn wrong_key_and_tampering_are_invalid_signatures() {
    let body = signed_callback();
    let err = signer("another-key").verify_callback(&body).unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidSignature {
            location: SignatureLocation::Root
        }
    ));
    assert!(err.to_string().contains("`signature`"), "{err}");

    let tampered = String::from_utf8(body).unwrap().replace("1234", "1235");
    let err = signer(KEY)
        .verify_callback(tampered.as_bytes())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidSignature { .. }), "{err}");
}

#[test]
fn general_signature_is_used_when_there_is_no_root_one() {
    let s = signer(KEY);
    let request = s
        .sign_request(
            &json!({"general": {"project_id": 1, "payment_id": "p"}, "payment": {"amount": 5}}),
        )
        .unwrap();
    let verified = s.verify_value(&request).unwrap();
    assert_eq!(verified.location(), SignatureLocation::General);
    assert_eq!(
        verified.value().unwrap(),
        json!({"general": {"project_id": 1, "payment_id": "p"}, "payment": {"amount": 5}})
    );
    // A signed status response whose `general` only carried the signature.
    let mut response = json!({"payment": {"id": "p", "status": "success"}, "general": {}});
    let signature = s.sign_value(&response).unwrap();
    response["general"]["signature"] = json!(signature.to_string());
    let verified = s.verify_value(&response).unwrap();
    assert_eq!(
        verified.value().unwrap(),
        json!({"payment": {"id": "p", "status": "success"}})
    );
}

#[test]
fn the_root_signature_wins_over_general_signature() {
    // With both present, the root one is checked and `general.signature` is signed as data.
    let s = signer(KEY);
    let body = s
        .sign_callback_body(&json!({"general": {"signature": "inner"}, "a": 1}))
        .unwrap();
    let verified = s.verify_callback(&body).unwrap();
    assert_eq!(verified.location(), SignatureLocation::Root);
    assert_eq!(
        verified.value().unwrap(),
        json!({"general": {"signature": "inner"}, "a": 1})
    );
}

#[test]
fn secret_key_and_signer_never_show_the_key() {
    let key = SecretKey::from(KEY);
    let signer = Signer::new(&key);
    let shown = format!("{key:?} {signer:?} {signer:#?}");
    assert!(!shown.contains(KEY), "{shown}");
}

#[test]
fn empty_key_signs_like_the_platform() {
    let signature = signer("")
        .sign_value(&json!({"general": {"project_id": 1234}}))
        .unwrap();
    assert_eq!(
        signature.to_base64(),
        "zEf9xBZObl92ezHUCy1TbVSzPKO1+Uax1iittyScxQJbbHkf8rICmNPlHZF3srdhJDJMLcSOHE4OuN3A+rCCAg=="
    );
}
