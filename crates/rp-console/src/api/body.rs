//! Reading the body of `POST /api/v1/payouts`: strict JSON (a member given twice is refused),
//! every field's problem at once, the phone and the amount as people write them, and the
//! merchant's `metadata` (checked, kept as compact JSON).

use std::net::IpAddr;

use rp_model::{Currency, CustomerId, Money, Msisdn, Operator, PaymentId, Payout};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The members `POST /api/v1/payouts` takes; `metadata` last (a JSON batch's payouts take
/// the others).
pub(crate) const FIELDS: [&str; 9] = [
    "payment_id",
    "phone",
    "amount",
    "amount_minor",
    "currency",
    "customer",
    "description",
    "operator",
    "metadata",
];

/// JSON read as a [`Value`], refusing an object with a member given twice (a gateway, a log
/// or the sender's own code could read the first where `serde_json` keeps the last).
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if members.insert(key.clone(), value).is_some() {
                return Err(serde::de::Error::custom(format!(
                    "member {key:?} given twice"
                )));
            }
        }
        Ok(Value::Object(members))
    }
}

/// A field's problem.
pub(crate) fn field_error(field: &str, message: impl Into<String>) -> Value {
    json!({"field": field, "message": message.into()})
}

/// The payout a request body describes, or every field's problem (422).
pub(crate) fn read_payout(body: &[u8]) -> Result<(Payout, Option<String>), Vec<Value>> {
    let Strict(value) = serde_json::from_slice(body)
        .map_err(|e| vec![field_error("", format!("not JSON: {e}"))])?;
    let Some(object) = value.as_object() else {
        return Err(vec![field_error("", "the body is a JSON object")]);
    };
    let mut errors = Vec::new();
    for key in object.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        errors.push(field_error(key, "unknown member"));
    }
    let text = |name: &str, errors: &mut Vec<Value>| -> Option<String> {
        checked_text(name, object.get(name), errors)
    };
    let payment_id = match text("payment_id", &mut errors) {
        None => {
            errors.push(field_error(
                "payment_id",
                "required: your ID of this payout (the idempotency key)",
            ));
            None
        }
        Some(id) => PaymentId::new(id)
            .map_err(|e| errors.push(field_error("payment_id", e.to_string())))
            .ok(),
    };
    let phone = match text("phone", &mut errors) {
        None => {
            errors.push(field_error("phone", "required"));
            None
        }
        Some(phone) => Msisdn::parse(&phone)
            .map_err(|e| errors.push(field_error("phone", e.to_string())))
            .ok(),
    };
    let currency = match text("currency", &mut errors) {
        None => Some(Currency::KZT),
        Some(code) => {
            let found = Currency::from_code(code.trim());
            if found.is_none() {
                errors.push(field_error(
                    "currency",
                    format!("unknown currency {code:?}"),
                ));
            }
            found
        }
    };
    let amount = match (object.get("amount"), object.get("amount_minor"), currency) {
        (Some(_), Some(_), _) => {
            errors.push(field_error(
                "amount",
                "give amount or amount_minor, not both",
            ));
            None
        }
        (None, None, _) => {
            errors.push(field_error(
                "amount",
                "required: amount (\"1 500,00\") or amount_minor (150000)",
            ));
            None
        }
        (_, _, None) => None,
        (Some(Value::String(text)), None, Some(currency)) => Money::parse(text, currency)
            .map_err(|e| errors.push(field_error("amount", e.to_string())))
            .ok(),
        (Some(_), None, _) => {
            errors.push(field_error(
                "amount",
                "a string as people write it, e.g. \"1 500,50\"; or use amount_minor",
            ));
            None
        }
        (None, Some(minor), Some(currency)) => match minor.as_u64() {
            Some(minor) => Some(Money::from_minor(minor, currency)),
            None => {
                errors.push(field_error(
                    "amount_minor",
                    "a whole number of minor units, 1 or more",
                ));
                None
            }
        },
    };
    let mut builder = Payout::builder();
    match object.get("customer") {
        Some(Value::Object(customer)) => {
            for key in customer
                .keys()
                .filter(|k| !["id", "first_name", "last_name", "email", "ip"].contains(&k.as_str()))
            {
                errors.push(field_error(&format!("customer.{key}"), "unknown member"));
            }
            let part = |name: &str, errors: &mut Vec<Value>| -> Option<String> {
                checked_text(&format!("customer.{name}"), customer.get(name), errors)
            };
            match part("id", &mut errors) {
                Some(id) => match CustomerId::new(id) {
                    Ok(id) => builder = builder.customer_id(id),
                    Err(e) => errors.push(field_error("customer.id", e.to_string())),
                },
                None => errors.push(field_error(
                    "customer.id",
                    "required: the customer's ID in your system",
                )),
            }
            match (
                part("first_name", &mut errors),
                part("last_name", &mut errors),
            ) {
                (Some(first), Some(last)) => builder = builder.customer_name(first, last),
                (None, None) => {}
                _ => errors.push(field_error(
                    "customer.last_name",
                    "first_name and last_name go together",
                )),
            }
            if let Some(email) = part("email", &mut errors) {
                builder = builder.customer_email(email);
            }
            if let Some(ip) = part("ip", &mut errors) {
                match ip.parse::<IpAddr>() {
                    Ok(ip) => builder = builder.customer_ip(ip),
                    Err(_) => errors.push(field_error("customer.ip", "an IPv4 or IPv6 address")),
                }
            }
        }
        None | Some(Value::Null) => errors.push(field_error(
            "customer.id",
            "required: customer.id, the customer's ID in your system",
        )),
        Some(_) => errors.push(field_error("customer", "an object: {\"id\": …}")),
    }
    if let Some(description) = text("description", &mut errors) {
        builder = builder.description(description);
    }
    if let Some(operator) = text("operator", &mut errors) {
        let known = (1..=32).contains(&operator.len())
            && operator
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if known {
            builder = builder.operator(
                operator
                    .parse::<Operator>()
                    .unwrap_or_else(|never| match never {}),
            );
        } else {
            errors.push(field_error(
                "operator",
                "an operator's ID: 1 to 32 letters, digits, _ and -",
            ));
        }
    }
    // What the builder would refuse, named by field, with the rest.
    let customer = object.get("customer");
    for (field, value) in [
        ("description", object.get("description")),
        (
            "customer.first_name",
            customer.and_then(|c| c.get("first_name")),
        ),
        (
            "customer.last_name",
            customer.and_then(|c| c.get("last_name")),
        ),
        ("customer.email", customer.and_then(|c| c.get("email"))),
    ] {
        if value
            .and_then(Value::as_str)
            .is_some_and(|t| t.contains(';'))
        {
            errors.push(field_error(
                field,
                "no ';' (the platform's signature cannot tell it from its separator)",
            ));
        }
    }
    if amount.is_some_and(Money::is_zero) {
        let field = if object.contains_key("amount") {
            "amount"
        } else {
            "amount_minor"
        };
        errors.push(field_error(field, "more than zero"));
    }
    let metadata = checked_metadata(object.get("metadata"), body, &mut errors);
    // The builder's own rules (a phone no payout operator serves, an amount past what can be
    // signed exactly) are named beside every other problem, each field once.
    if let Some(payment_id) = payment_id {
        builder = builder.payment_id(payment_id);
    }
    if let Some(phone) = phone {
        builder = builder.phone(phone);
    }
    if let Some(amount) = amount {
        builder = builder.amount(amount);
    }
    match builder.build() {
        Ok(payout) if errors.is_empty() => Ok((payout, metadata)),
        Ok(_) => Err(errors),
        Err(error) => {
            // What this reader checks itself (a missing field, a zero amount, a `;`) is named
            // already, under the API's field names; the builder's other rules are added.
            let amount_field = if object.contains_key("amount") {
                "amount"
            } else {
                "amount_minor"
            };
            let checked_here = !errors.is_empty();
            for problem in builder_errors(&error, amount_field, checked_here) {
                if !errors.iter().any(|e| e["field"] == problem["field"]) {
                    errors.push(problem);
                }
            }
            Err(errors)
        }
    }
}

/// Members of `metadata`, at most.
pub(crate) const MAX_METADATA_KEYS: usize = 50;

/// The longest metadata key, in characters.
pub(crate) const MAX_METADATA_KEY: usize = 40;

/// The most bytes `metadata` takes as compact JSON.
pub(crate) const MAX_METADATA_BYTES: usize = 4096;

/// How deep `metadata` nests, at most (itself 1): well within what JSON readers take in a
/// webhook's body (`serde_json` stops at 128 levels).
pub(crate) const MAX_METADATA_DEPTH: usize = 32;

/// How deep `value` nests: 0 for a scalar, 1 for a flat object or array.
fn depth(value: Option<&Value>) -> usize {
    match value {
        Some(Value::Object(members)) => {
            1 + members.values().map(|v| depth(Some(v))).max().unwrap_or(0)
        }
        Some(Value::Array(items)) => 1 + items.iter().map(|v| depth(Some(v))).max().unwrap_or(0),
        _ => 0,
    }
}

/// `metadata` as it is kept (compact JSON text), or its problems: a JSON object of at most
/// [`MAX_METADATA_KEYS`] members, keys of 1 to [`MAX_METADATA_KEY`] characters, at most
/// [`MAX_METADATA_BYTES`] bytes in all, nested at most [`MAX_METADATA_DEPTH`] levels.
fn checked_metadata(value: Option<&Value>, body: &[u8], errors: &mut Vec<Value>) -> Option<String> {
    let members = match value {
        None | Some(Value::Null) => return None,
        Some(Value::Object(members)) => members,
        Some(_) => {
            errors.push(field_error(
                "metadata",
                "a JSON object (your own keys and values)",
            ));
            return None;
        }
    };
    let before = errors.len();
    if members.len() > MAX_METADATA_KEYS {
        errors.push(field_error(
            "metadata",
            format!("at most {MAX_METADATA_KEYS} members"),
        ));
    }
    for key in members.keys() {
        let length = key.chars().count();
        if length == 0 || length > MAX_METADATA_KEY {
            errors.push(field_error(
                &format!("metadata.{key}"),
                format!("a key of 1 to {MAX_METADATA_KEY} characters"),
            ));
        }
    }
    if depth(value) > MAX_METADATA_DEPTH {
        errors.push(field_error(
            "metadata",
            format!("nested at most {MAX_METADATA_DEPTH} levels deep"),
        ));
    }
    for number in inexact_numbers(body) {
        errors.push(field_error(
            "metadata",
            format!("the number {number} is not kept exactly (at most 15 significant digits that a double holds, or a 64-bit integer): send it as a string"),
        ));
    }
    let text = serde_json::to_string(members).unwrap_or_default();
    if text.len() > MAX_METADATA_BYTES {
        errors.push(field_error(
            "metadata",
            format!("at most {MAX_METADATA_BYTES} bytes as JSON"),
        ));
    }
    (errors.len() == before).then_some(text)
}

/// The number literals of the `metadata` member of `body`, as written, whose value would not
/// be kept exactly ([`exact`]).
fn inexact_numbers(body: &[u8]) -> Vec<String> {
    #[derive(Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        metadata: Option<&'a serde_json::value::RawValue>,
    }
    let Ok(Raw {
        metadata: Some(raw),
    }) = serde_json::from_slice::<Raw<'_>>(body)
    else {
        return Vec::new();
    };
    number_literals(raw.get())
        .into_iter()
        .filter(|literal| !exact(literal))
        .map(str::to_owned)
        .collect()
}

/// The number literals of JSON text `json` (outside its strings).
fn number_literals(json: &str) -> Vec<&str> {
    let bytes = json.as_bytes();
    let (mut found, mut i, mut in_string) = (Vec::new(), 0, false);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
        } else if b == b'"' {
            in_string = true;
            i += 1;
        } else if b == b'-' || b.is_ascii_digit() {
            let start = i;
            while i < bytes.len()
                && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                i += 1;
            }
            found.extend(json.get(start..i));
        } else {
            i += 1;
        }
    }
    found
}

/// Whether a number literal's value is kept exactly: a 64-bit integer, or at most 15
/// significant digits whose double is the nearest to them both as `serde_json` reads the
/// literal and as it reads the text it keeps (its shortest form of that double): it is one
/// unit in the last place off for some, such as `6.854443151e75` (also when written
/// `6.8544431510e75`); and neither zero nor infinite unless written so (`1e-400` would be kept
/// as `0`).
fn exact(literal: &str) -> bool {
    if !literal.contains(['.', 'e', 'E']) {
        return literal.parse::<i64>().is_ok() || literal.parse::<u64>().is_ok();
    }
    let mantissa = literal.split(['e', 'E']).next().unwrap_or_default();
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0');
    let (Ok(nearest), Ok(read)) = (literal.parse::<f64>(), serde_json::from_str::<f64>(literal))
    else {
        return false;
    };
    let kept = serde_json::to_string(&read)
        .ok()
        .and_then(|text| serde_json::from_str::<f64>(&text).ok());
    significant.len() <= 15
        && nearest.is_finite()
        && nearest.to_bits() == read.to_bits()
        && kept.is_some_and(|kept| kept.to_bits() == nearest.to_bits())
        && (nearest != 0.0 || significant.is_empty())
}

/// Kept metadata as JSON (`null` when none, or when what is kept does not read as JSON).
pub(crate) fn metadata_json(metadata: Option<&str>) -> Value {
    metadata
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null)
}

/// A text member: a string without control characters, or its problem.
fn checked_text(field: &str, value: Option<&Value>, errors: &mut Vec<Value>) -> Option<String> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.chars().any(char::is_control) => {
            errors.push(field_error(
                field,
                "one line of text, without control characters",
            ));
            None
        }
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            errors.push(field_error(field, "a string"));
            None
        }
    }
}

/// The builder's problems, each named by its field (`amount_field`: the amount's, as sent);
/// without those this reader checks itself when `checked_here` (they are named already).
fn builder_errors(error: &rp_model::Error, amount_field: &str, checked_here: bool) -> Vec<Value> {
    use rp_model::Error as E;
    match error {
        E::Invalid { problems } => problems
            .iter()
            .flat_map(|p| builder_errors(p, amount_field, checked_here))
            .collect(),
        E::MissingField { .. } | E::ZeroAmount | E::SeparatorInValue { .. } if checked_here => {
            Vec::new()
        }
        E::SeparatorInValue { field } => vec![field_error(field, error.to_string())],
        E::ZeroAmount | E::InvalidAmount { .. } | E::AmountOverflow { .. } => {
            vec![field_error(amount_field, error.to_string())]
        }
        E::PhoneNoPayoutOperator { .. } => vec![field_error("phone", error.to_string())],
        E::MissingField { field } => vec![field_error(field, error.to_string())],
        other => vec![field_error("", other.to_string())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_error_is_reported_at_once() {
        let errors = read_payout(
            br#"{"phone": "+7 999 123 45 67", "amount": 5, "customer": {}, "extra": 1}"#,
        )
        .unwrap_err();
        let fields: Vec<&str> = errors
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        for field in ["extra", "payment_id", "phone", "amount", "customer.id"] {
            assert!(fields.contains(&field), "{field} in {fields:?}");
        }
        assert!(read_payout(b"[1]").is_err());
        assert!(read_payout(b"\xff").is_err());
        let (payout, metadata) = read_payout(br#"{"payment_id": "o-1", "phone": "8 701 123 45 67", "amount_minor": 150000, "customer": {"id": "c-1"}}"#).unwrap();
        assert_eq!(payout.amount().minor_units(), 150_000);
        assert_eq!(metadata, None);
        let (payout, metadata) = read_payout(br#"{"payment_id": "o-1", "phone": "+77011234567", "amount": "1 500,50", "currency": "KZT", "customer": {"id": "c-1", "ip": "198.51.100.4"}, "metadata": {"order": 42, "tags": ["a"]}}"#).unwrap();
        assert_eq!(payout.amount().minor_units(), 150_050);
        // Kept as compact JSON (compared with a repeat's by rp-payout, member order aside).
        assert_eq!(metadata.as_deref(), Some(r#"{"order":42,"tags":["a"]}"#));
        let both = read_payout(br#"{"payment_id": "o-1", "phone": "+77011234567", "amount": "1", "amount_minor": 1, "customer": {"id": "c"}}"#).unwrap_err();
        assert_eq!(both[0]["field"], "amount");
    }

    #[test]
    fn metadata_is_an_object_of_bounded_size() {
        let with = |metadata: &str| {
            read_payout(format!(r#"{{"payment_id": "o-1", "phone": "+77011234567", "amount": "1", "customer": {{"id": "c"}}, "metadata": {metadata}}}"#).as_bytes())
        };
        assert!(with("null").unwrap().1.is_none());
        for bad in ["[1]", "\"order 1\"", "5"] {
            let errors = with(bad).unwrap_err();
            assert_eq!(errors[0]["field"], "metadata", "{bad}");
        }
        let long_key = format!(r#"{{"{}": 1}}"#, "k".repeat(41));
        assert_eq!(
            with(&long_key).unwrap_err()[0]["field"],
            format!("metadata.{}", "k".repeat(41))
        );
        let many: Vec<String> = (0..51).map(|i| format!(r#""k{i}": 1"#)).collect();
        assert!(with(&format!("{{{}}}", many.join(", "))).is_err());
        let big = format!(r#"{{"note": "{}"}}"#, "x".repeat(4100));
        assert!(
            with(&big).unwrap_err()[0]["message"]
                .as_str()
                .unwrap()
                .contains("4096")
        );
        // Numbers that would not be kept as written are refused, named as written.
        let errors = with(
            r#"{"order": 100000000000000000001, "n": [1, {"x": 1234567890123456.7}], "s": "1234567890123456.7"}"#,
        )
        .unwrap_err();
        let mut messages: Vec<&str> = errors
            .iter()
            .map(|e| e["message"].as_str().unwrap())
            .collect();
        messages.sort_unstable();
        assert_eq!(messages.len(), 2, "{errors:?}");
        assert!(messages[0].contains("100000000000000000001"), "{errors:?}");
        assert!(messages[1].contains("1234567890123456.7"), "{errors:?}");
        assert!(errors.iter().all(|e| e["field"] == "metadata"));
        assert!(
            with(r#"{"max": 18446744073709551615, "min": -9223372036854775808, "f": 0.5, "e": 1e300, "z": 1.50000000000000000000, "d": 12345678901234.5}"#)
                .is_ok()
        );
        // Nested at most MAX_METADATA_DEPTH levels (the object itself is one).
        let nested = |levels: usize| {
            format!(
                "{{\"a\": {}1{}}}",
                "[".repeat(levels - 1),
                "]".repeat(levels - 1)
            )
        };
        assert!(with(&nested(MAX_METADATA_DEPTH)).is_ok());
        let errors = with(&nested(MAX_METADATA_DEPTH + 1)).unwrap_err();
        assert!(
            errors[0]["message"].as_str().unwrap().contains("nested"),
            "{errors:?}"
        );
    }
}
