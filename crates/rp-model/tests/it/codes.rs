//! The generated code table.

use rp_model::{CodeCategory, CodeInfo, ResponseCode};

#[test]
fn the_table_has_every_platform_code_sorted() {
    let all = CodeInfo::all();
    assert_eq!(all.len(), 378);
    assert!(all.windows(2).all(|w| w[0].code < w[1].code));
}

#[test]
fn codes_the_payout_lifecycle_depends_on() {
    let cases = [
        (0, "Success", CodeCategory::Success),
        (2003, "Invalid JSON string", CodeCategory::CorrectRequest),
        (
            2004,
            "Required field not provided",
            CodeCategory::CorrectRequest,
        ),
        (
            3041,
            "Payment ID already exists",
            CodeCategory::CorrectRequest,
        ),
        (3061, "Transaction not found", CodeCategory::RetryLater),
        (3261, "Invalid signature", CodeCategory::CorrectRequest),
        (19999, "Awaiting processing", CodeCategory::Pending),
        (
            20206,
            "Difficulties on the mobile operator side",
            CodeCategory::RetryLater,
        ),
        (
            504,
            "Insufficient funds on the balance",
            CodeCategory::ContactSupport,
        ),
        (
            30000,
            "Operation was declined by merchant",
            CodeCategory::Declined,
        ),
    ];
    for (code, message, category) in cases {
        let info = CodeInfo::lookup(code).unwrap_or_else(|| panic!("code {code} missing"));
        assert_eq!(info.message, message, "code {code}");
        assert_eq!(info.category, category, "code {code}");
    }
    assert!(CodeInfo::lookup(1).is_none());
}

#[test]
fn response_codes_read_strings_and_numbers() {
    let from_string: ResponseCode = serde_json::from_str("\"3041\"").unwrap();
    let from_number: ResponseCode = serde_json::from_str("3041").unwrap();
    assert_eq!(from_string, from_number);
    assert_eq!(serde_json::to_string(&from_number).unwrap(), "\"3041\"");
    let odd: ResponseCode = serde_json::from_str("\"E-17\"").unwrap();
    assert_eq!(odd.number(), None);
    assert_eq!(odd.category(), None);
}
