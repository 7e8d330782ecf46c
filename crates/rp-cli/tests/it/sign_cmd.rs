//! `rp sign` and `rp verify`, run as the built binary.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::{assert_fails, rp, stderr, stdout};

const KEY: &str = "secret";
const PAYOUT_SIGNATURE: &str =
    "UhlYVvTK4npMQEk9gjiehBbD08AInHEQoJltoOYE9sJXH/yybt/HYyzO4t4iQGkyGLsay2T6Cdfv4EsRJxVxPA==";

fn payout_request() -> Value {
    json!({
        "general": {"project_id": 1234, "payment_id": "payment_47"},
        "customer": {"id": "customer_123", "ip_address": "198.51.100.47", "first_name": "John",
                     "last_name": "Doe", "email": "johndoe@example.com"},
        "account": {"number": "71234567890"},
        "payment": {"currency": "KZT", "amount": 100000}
    })
}

/// A file with `contents` in the test's own temporary directory.
fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rp-cli-sign-cmd");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn sign_prints_the_signature_from_a_file() {
    let file = temp_file("payout.json", payout_request().to_string().as_bytes());
    let output = rp(&["sign", file.to_str().unwrap()], Some(KEY), b"");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("{PAYOUT_SIGNATURE}\n"));
}

#[test]
fn sign_reads_stdin_and_a_secret_file() {
    let key_file = temp_file("key-with-newline", b"secret\n");
    let output = rp(
        &["sign", "--secret-file", key_file.to_str().unwrap(), "-"],
        None,
        payout_request().to_string().as_bytes(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), PAYOUT_SIGNATURE);
}

#[test]
fn sign_ignores_an_old_general_signature() {
    let mut request = payout_request();
    request["general"]["signature"] = json!("old");
    let output = rp(&["sign"], Some(KEY), request.to_string().as_bytes());
    assert_eq!(stdout(&output).trim(), PAYOUT_SIGNATURE);
}

#[test]
fn sign_explain_shows_the_string_to_sign() {
    let output = rp(
        &["sign", "--explain"],
        Some(KEY),
        payout_request().to_string().as_bytes(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains(
            "string to sign: account:number:71234567890;customer:email:johndoe@example.com;"
        ),
        "{out}"
    );
    assert!(out.contains("  payment:currency:KZT\n"), "{out}");
    assert!(
        out.ends_with(&format!("signature: {PAYOUT_SIGNATURE}\n")),
        "{out}"
    );
    assert!(!out.contains(KEY), "the key must not be printed: {out}");
}

#[test]
fn sign_body_prints_the_signed_request() {
    let output = rp(
        &["sign", "--body"],
        Some(KEY),
        payout_request().to_string().as_bytes(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let body: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(body["general"]["signature"], PAYOUT_SIGNATURE);
    assert_eq!(body["payment"]["amount"], 100000);
}

#[test]
fn sign_errors_are_one_line_with_exit_2() {
    let request = payout_request().to_string();
    assert_fails(&rp(&["sign"], None, request.as_bytes()), 2, "RP_SECRET_KEY");
    assert_fails(&rp(&["sign"], Some(KEY), b"{not json"), 2, "not valid JSON");
    assert_fails(&rp(&["sign"], Some(KEY), b"[1,2]"), 2, "JSON object");
    assert_fails(
        &rp(
            &["sign", "--body"],
            Some(KEY),
            br#"{"payment":{"amount":1}}"#,
        ),
        2,
        "`general`",
    );
    assert_fails(
        &rp(&["sign", "/nonexistent/rp-payload.json"], Some(KEY), b""),
        2,
        "cannot read /nonexistent/rp-payload.json",
    );
    assert_fails(
        &rp(
            &["sign", "--secret-file", "/nonexistent/rp-key"],
            None,
            request.as_bytes(),
        ),
        2,
        "secret file",
    );
}

#[test]
fn the_key_is_never_a_flag_value() {
    let output = rp(&["sign", "--secret-key", KEY], None, b"{}");
    assert_eq!(output.status.code(), Some(2));
    let help = stdout(&rp(&["sign", "--help"], None, b""));
    assert!(!help.contains("--secret-key"), "{help}");
    assert!(
        help.contains("RP_SECRET_KEY") && help.contains("Examples:"),
        "{help}"
    );
}

/// A callback signed with `KEY` by the library's test helper.
fn signed_callback() -> Vec<u8> {
    rp_sign::testing::sign_callback(
        &json!({"project_id": 1234, "payment": {"id": "payment_47", "status": "success"}}),
        &KEY.into(),
    )
    .unwrap()
}

#[test]
fn verify_accepts_a_valid_callback() {
    let output = rp(&["verify"], Some(KEY), &signed_callback());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains("valid") && out.contains("php-natural"),
        "{out}"
    );
}

#[test]
fn verify_reports_another_sdks_order() {
    // `spec/gate-api.md` §1.5: the byte-order signature of an 11-element array.
    let callback = json!({
        "a": ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"],
        "signature": "ZNd/bZBTo7i6LyLGMUaI7QJpujcdppnOP63iMIlL0wLuS9SyvAVYO63659pFzHpr1m4kRIkx4iV3Wx3sxiizmA=="
    });
    let file = temp_file("byte-order-callback.json", callback.to_string().as_bytes());
    let output = rp(&["verify", file.to_str().unwrap()], Some(KEY), b"");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains("bytewise-by-path") && out.contains("note:"),
        "{out}"
    );
}

#[test]
fn verify_failures_have_distinct_exit_codes() {
    let tampered = String::from_utf8(signed_callback())
        .unwrap()
        .replace("success", "decline");
    assert_fails(
        &rp(&["verify"], Some(KEY), tampered.as_bytes()),
        6,
        "does not match",
    );
    assert_fails(
        &rp(&["verify"], Some("wrong"), &signed_callback()),
        6,
        "does not match",
    );
    assert_fails(
        &rp(&["verify"], Some(KEY), br#"{"payment":{}}"#),
        6,
        "not signed",
    );
    assert_fails(
        &rp(&["verify"], Some(KEY), br#"{"a":1,"signature":"abc"}"#),
        6,
        "malformed",
    );
    // A `;` in a value makes the signature ambiguous: refused even if it would match.
    let ambiguous = format!(
        r#"{{"payment":{{"description":"x;payment:status:success"}},"signature":"{}"}}"#,
        "A".repeat(86) + "=="
    );
    assert_fails(
        &rp(&["verify"], Some(KEY), ambiguous.as_bytes()),
        6,
        "`payment:description` contains `;`",
    );
    let explained = rp(&["sign", "--explain"], Some(KEY), br#"{"a":"x;y"}"#);
    assert_eq!(explained.status.code(), Some(2));
    assert!(
        stdout(&explained).contains("`a` contains `;`"),
        "{}",
        stdout(&explained)
    );
    assert!(
        stderr(&explained).contains("`a` contains `;`"),
        "{}",
        stderr(&explained)
    );
    assert_fails(&rp(&["verify"], Some(KEY), b"garbage"), 2, "not valid JSON");
    assert_fails(&rp(&["verify"], Some(KEY), b"42"), 2, "JSON object");
    assert_fails(
        &rp(&["verify"], None, &signed_callback()),
        2,
        "RP_SECRET_KEY",
    );
}

#[test]
fn verify_help_documents_exit_codes() {
    let output = rp(&["verify", "--help"], None, b"");
    assert!(output.status.success());
    let help = stdout(&output);
    for needle in [
        "Exit status:",
        "0  the signature is valid",
        "6  not trusted",
        "2  usage",
        "Examples:",
    ] {
        assert!(help.contains(needle), "{needle:?} not in {help}");
    }
}

#[test]
fn sign_and_verify_agree_on_minus_zero_and_keep_the_text() {
    let text = br#"{"general":{"project_id":1234},"payment":{"amount":-0,"rate":-0.0}}"#;
    let file = temp_file("minus-zero.json", text);
    let zero = temp_file(
        "zero.json",
        br#"{"general":{"project_id":1234},"payment":{"amount":0,"rate":-0.0}}"#,
    );
    let signature = rp(&["sign", file.to_str().unwrap()], Some(KEY), b"");
    assert!(signature.status.success(), "{}", stderr(&signature));
    let of_zero = rp(&["sign", zero.to_str().unwrap()], Some(KEY), b"");
    assert_eq!(stdout(&signature), stdout(&of_zero), "-0 signs as 0");

    let body = rp(&["sign", "--body", file.to_str().unwrap()], Some(KEY), b"");
    assert!(body.status.success(), "{}", stderr(&body));
    let body_text = stdout(&body);
    assert!(
        body_text.contains(r#""amount":-0,"rate":-0.0"#),
        "numbers kept as written: {body_text}"
    );
    let verify = rp(&["verify"], Some(KEY), body_text.trim().as_bytes());
    assert!(verify.status.success(), "{}", stderr(&verify));
    let explained = rp(
        &["sign", "--explain", file.to_str().unwrap()],
        Some(KEY),
        b"",
    );
    assert!(
        stdout(&explained).contains("payment:amount:0;payment:rate:-0"),
        "{}",
        stdout(&explained)
    );
}
