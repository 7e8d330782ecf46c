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
fn both_a_root_signature_and_general_signature_are_refused() {
    // The root one would be checked, and `general.signature` would be unsigned data for the
    // vendor SDKs (which delete it): refused (spec/signature.md §2 step 0).
    let s = signer(KEY);
    let body = s
        .sign_callback_body(&json!({"general": {"signature": "inner"}, "a": 1}))
        .unwrap();
    let error = s.verify_callback(&body).unwrap_err();
    assert!(
        matches!(&error, Error::ExtraSignature { location: SignatureLocation::Root, path } if path == "general:signature"),
        "{error:?}"
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

#[test]
fn malformed_bodies_are_invalid_json() {
    let deep = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n), "]".repeat(n));
    let cases: Vec<(String, Vec<u8>)> = vec![
        ("truncated".into(), br#"{"a":"x","signature":"abc"#.to_vec()),
        ("truncated escape".into(), br#"{"a":"\u00"#.to_vec()),
        ("bad escape".into(), br#"{"a":"\q"}"#.to_vec()),
        ("bad hex".into(), br#"{"a":"\u00zz"}"#.to_vec()),
        ("lone high surrogate".into(), br#"{"a":"\ud800"}"#.to_vec()),
        ("lone low surrogate".into(), br#"{"a":"\udc00"}"#.to_vec()),
        (
            "high then not low".into(),
            br#"{"a":"\ud800\u0041"}"#.to_vec(),
        ),
        ("invalid UTF-8".into(), b"{\"a\":\"\xc3\x28\"}".to_vec()),
        (
            "UTF-8 surrogate".into(),
            b"{\"a\":\"\xed\xa0\x80\"}".to_vec(),
        ),
        (
            "raw control character".into(),
            b"{\"a\":\"x\x01y\"}".to_vec(),
        ),
        ("trailing garbage".into(), br#"{"a":1} x"#.to_vec()),
        ("two values".into(), br#"{"a":1}{}"#.to_vec()),
        ("byte order mark".into(), b"\xef\xbb\xbf{\"a\":1}".to_vec()),
        ("trailing comma".into(), br#"{"a":1,}"#.to_vec()),
        ("leading zero".into(), br#"{"a":01}"#.to_vec()),
        ("number out of range".into(), br#"{"a":1e400}"#.to_vec()),
        ("single quotes".into(), b"{'a':1}".to_vec()),
        ("empty".into(), Vec::new()),
        (
            "127 nested arrays in an object".into(),
            deep(127).into_bytes(),
        ),
        (
            "100000 nested arrays".into(),
            "[".repeat(100_000).into_bytes(),
        ),
    ];
    for (what, body) in cases {
        assert!(
            serde_json::from_slice::<serde_json::Value>(&body).is_err(),
            "{what}: serde_json accepts it"
        );
        let err = signer(KEY).verify_callback(&body).unwrap_err();
        assert!(matches!(err, Error::InvalidJson(_)), "{what}: {err}");
        assert!(err.to_string().contains("line"), "{what}: {err}");
    }
    // One level less is accepted (and then only lacks a signature).
    let err = signer(KEY)
        .verify_callback(deep(126).as_bytes())
        .unwrap_err();
    assert!(matches!(err, Error::MissingSignature), "{err}");
}

#[test]
fn integer_minus_zero_signs_as_zero_from_bytes() {
    let s = signer(KEY);
    // PHP reads `-0` as the integer 0: the string to sign is `y:0`.
    let signature = s.sign_value(&json!({"y": 0})).unwrap().to_base64();
    let body = format!(r#"{{"signature":"{signature}","y":-0}}"#);
    let verified = s.verify_callback(body.as_bytes()).unwrap();
    assert_eq!(verified.variant(), SortVariant::PhpNatural);
    // The float `-0.0` stays `-0`, as in PHP.
    let signature = s.sign_value(&json!({"y": -0.0})).unwrap().to_base64();
    let body = format!(r#"{{"signature":"{signature}","y":-0.0}}"#);
    assert!(s.verify_callback(body.as_bytes()).is_ok());
    // A parsed `Value` can only follow serde_json, which reads `-0` as `-0.0`.
    let parsed: serde_json::Value = serde_json::from_str(r#"{"y":-0}"#).unwrap();
    assert_eq!(rp_sign::string_to_sign(&parsed).unwrap(), "y:-0");
}

#[test]
fn deserialize_reads_the_verified_bytes_with_the_signature() {
    #[derive(serde::Deserialize)]
    struct Callback {
        project_id: u64,
        payment: serde_json::Value,
        signature: Option<String>,
    }
    let body = signed_callback();
    let verified = signer(KEY).verify_callback(&body).unwrap();
    let callback: Callback = verified.deserialize().unwrap();
    assert_eq!(callback.project_id, 1234);
    assert_eq!(callback.payment["status"], "success");
    assert_eq!(callback.signature.as_deref().map(str::len), Some(88));
    assert_eq!(verified.body(), Some(&body[..]));
    // The wrong shape is its own error.
    let err = verified.deserialize::<Vec<u8>>().unwrap_err();
    assert!(matches!(err, Error::Deserialize(_)), "{err}");
    // The same from a verified `Value`.
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let verified = signer(KEY).verify_value(&value).unwrap();
    assert_eq!(verified.body(), None);
    let callback: Callback = verified.deserialize().unwrap();
    assert_eq!(callback.project_id, 1234);
}

#[test]
fn duplicate_keys_last_wins_in_first_position_from_bytes() {
    let s = signer(KEY);
    // Last value wins; `frame_mode` and the signature are found after de-duplication.
    let signature = s
        .sign_value(&json!({"a": "second", "b": "x"}))
        .unwrap()
        .to_base64();
    let body = format!(
        r#"{{"a":"first","signature":"{signature}","b":"x","a":"second","frame_mode":1,"frame_mode":{{"z":1}}}}"#
    );
    let verified = s.verify_callback(body.as_bytes()).unwrap();
    assert_eq!(
        verified.value().unwrap(),
        json!({"a": "second", "b": "x", "frame_mode": {"z": 1}})
    );
    // A later root `signature` replaces an earlier one.
    let body = format!(r#"{{"signature":"bogus","a":"second","b":"x","signature":"{signature}"}}"#);
    assert!(s.verify_callback(body.as_bytes()).is_ok());
}

/// A forgery from one genuine signed body, without the key: the string to sign joins lines
/// with `;` and escapes nothing, so a value holding `;` (here a customer's name, echoed by the
/// platform) lets anyone regroup the lines into a callback saying `decline` for a paid payout.
/// Both bodies have the same string to sign and so the same signature; both are refused.
#[test]
fn a_body_reshaped_around_a_separator_is_refused_not_accepted() {
    use base64::Engine as _;
    use hmac::{KeyInit as _, Mac as _};
    let genuine = json!({
        "customer": {"first_name": "x;payment:id:p1;payment:status:decline;project_id:1;zz:"},
        "payment": {"id": "p1", "status": "success"},
        "project_id": 1,
    });
    let forged = json!({
        "customer": {"first_name": "x"},
        "payment": {"id": "p1", "status": "decline"},
        "project_id": 1,
        "zz": ";payment:id:p1;payment:status:success;project_id:1",
    });
    let string = rp_sign::string_to_sign(&genuine).unwrap();
    assert_eq!(rp_sign::string_to_sign(&forged).unwrap(), string);
    // What the platform would have signed (it refuses nothing).
    let mut mac = hmac::Hmac::<sha2::Sha512>::new_from_slice(b"k").unwrap();
    mac.update(string.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    for (body, path) in [(genuine, "customer:first_name"), (forged, "zz")] {
        let mut body = body;
        body["signature"] = signature.clone().into();
        let bytes = serde_json::to_vec(&body).unwrap();
        let err = signer("k").verify_callback(&bytes).unwrap_err();
        assert!(
            matches!(&err, Error::AmbiguousValue { path: p, signing: false } if p == path),
            "{err:?}"
        );
    }
}
