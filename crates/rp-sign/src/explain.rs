//! Showing what is signed, for debugging "invalid signature" (platform code 3261).

use std::fmt;

use serde_json::Value;

use crate::canonical::{JsonTree as _, Lines, SortVariant, Strip, View, value_members};
use crate::error::{Error, SignatureLocation};
use crate::signer::{as_object, parse_document};

/// The string to sign of `payload` (`spec/signature.md` §2): one `path:value` line per scalar
/// leaf, sorted by path in PHP natural order, joined with `;`. No key is involved.
///
/// The payload is taken exactly as given: remove a `signature` member first if it should not
/// be signed.
///
/// # Errors
///
/// [`Error::NotAnObject`] if `payload` is not a JSON object.
pub fn string_to_sign(payload: &Value) -> Result<String, Error> {
    let mut lines = Lines::flatten(value_members(as_object(payload)?), Strip::Nothing);
    lines.sort(SortVariant::PhpNatural);
    Ok(lines.joined())
}

/// What [`explain`] found: the string to sign, its lines, and notes on every feature of the
/// payload on which the vendor SDKs disagree. `Display` writes a readable report.
#[derive(Debug, Clone)]
pub struct Explanation {
    string_to_sign: String,
    lines: Vec<String>,
    notes: Vec<String>,
}

impl Explanation {
    /// The exact string that is HMAC'd.
    pub fn string_to_sign(&self) -> &str {
        &self.string_to_sign
    }

    /// The `path:value` lines in signing order.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Human-readable notes on contested features (long arrays, digits or `:` in keys, floats,
    /// orders that other SDKs would produce). Empty for a realistic Gate request.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "string to sign: {}", self.string_to_sign)?;
        writeln!(
            f,
            "{} line(s), sorted by path in PHP natural order, joined with ';':",
            self.lines.len()
        )?;
        for line in &self.lines {
            writeln!(f, "  {line}")?;
        }
        if self.notes.is_empty() {
            write!(
                f,
                "notes: none (every vendor SDK builds the same string for this payload)"
            )
        } else {
            write!(f, "notes:")?;
            for note in &self.notes {
                write!(f, "\n  - {note}")?;
            }
            Ok(())
        }
    }
}

/// Explains how `payload` is signed, without any key (see [`Explanation`]).
///
/// The explanation holds the payload's values as they are signed (a phone number, names): show
/// it to the person debugging, do not write it to logs.
///
/// # Errors
///
/// [`Error::NotAnObject`] if `payload` is not a JSON object.
pub fn explain(payload: &Value) -> Result<Explanation, Error> {
    let mut notes = Vec::new();
    let lines = Lines::flatten_with_notes(
        value_members(as_object(payload)?),
        Strip::Nothing,
        &mut notes,
    );
    Ok(explain_lines(lines, notes))
}

/// Explains how the JSON `text` is signed, numbers read from their text as
/// [`crate::Signer::sign_json`] and [`crate::Signer::verify_callback`] read them. With
/// `leave_out`, that signature member is not part of the string (as when a request is signed
/// again, or a callback verified).
///
/// # Errors
///
/// [`Error::InvalidJson`], [`Error::NotAnObject`].
pub fn explain_json(
    text: &[u8],
    leave_out: Option<SignatureLocation>,
) -> Result<Explanation, Error> {
    let document = parse_document(text)?;
    let View::Object(members) = document.root().view() else {
        return Err(Error::NotAnObject {
            found: document.root().view().type_name(),
        });
    };
    let strip = match leave_out {
        None => Strip::Nothing,
        Some(SignatureLocation::Root) => Strip::Root,
        Some(SignatureLocation::General) => Strip::General,
    };
    let mut notes = Vec::new();
    let lines = Lines::flatten_with_notes(members, strip, &mut notes);
    Ok(explain_lines(lines, notes))
}

fn explain_lines(mut lines: Lines, mut notes: Vec<String>) -> Explanation {
    lines.sort(SortVariant::PhpNatural);
    let canonical = lines.clone();
    for variant in [SortVariant::BytewiseByPath, SortVariant::BytewiseByLine] {
        lines.sort(variant);
        if !lines.same_order(&canonical) {
            notes.push(format!(
                "sorting {} ({variant}, as {}) gives a different string: {}",
                match variant {
                    SortVariant::BytewiseByPath => "by path in byte order",
                    _ => "whole lines in byte order",
                },
                variant.used_by(),
                lines.joined()
            ));
        }
    }
    Explanation {
        string_to_sign: canonical.joined(),
        lines: canonical.iter().map(str::to_owned).collect(),
        notes,
    }
}

/// The string to sign under a non-canonical sort order (for tests comparing with other SDKs).
#[cfg(test)]
pub(crate) fn string_to_sign_with(payload: &Value, variant: SortVariant) -> String {
    let Value::Object(map) = payload else {
        return String::new();
    };
    let mut lines = Lines::flatten(value_members(map), Strip::Nothing);
    lines.sort(SortVariant::PhpNatural);
    lines.sort(variant);
    lines.joined()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn realistic_request_has_no_notes() {
        let explanation =
            explain(&json!({"general": {"project_id": 1, "payment_id": "p"}})).unwrap();
        assert_eq!(
            explanation.string_to_sign(),
            "general:payment_id:p;general:project_id:1"
        );
        assert_eq!(explanation.lines().len(), 2);
        assert!(explanation.notes().is_empty(), "{explanation}");
        assert!(explanation.to_string().contains("notes: none"));
    }

    #[test]
    fn contested_features_are_noted() {
        let payload = json!({
            "items": (0..11).collect::<Vec<_>>(),
            "customer": {"address": "a", "address2": "b", "x:y": "c"},
            "rate": 1.5,
        });
        let explanation = explain(&payload).unwrap();
        let notes = explanation.notes().join("\n");
        for expected in [
            "array `items` has 11 elements",
            "key in `customer:address2` contains digits",
            "contains `:`",
            "`rate` is a float",
            "bytewise-by-path",
            "bytewise-by-line",
        ] {
            assert!(
                notes.contains(expected),
                "missing {expected:?} in:\n{notes}"
            );
        }
    }

    #[test]
    fn variants_reorder_lines() {
        let payload = json!({"customer": {"address": "a", "address2": "b"}});
        assert_eq!(
            string_to_sign_with(&payload, SortVariant::BytewiseByLine),
            "customer:address2:b;customer:address:a"
        );
        assert_eq!(
            string_to_sign_with(&payload, SortVariant::BytewiseByPath),
            "customer:address:a;customer:address2:b"
        );
    }

    /// The byte-order variants reproduce the exact strings the Python and Go SDKs fed to HMAC
    /// (`sdk_strings` of `spec/signature-vectors.json`) wherever those SDKs differ from PHP only
    /// in sort order.
    #[test]
    fn variants_reproduce_other_sdks_strings() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../spec/signature-vectors.json"
        );
        let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut python_matches = Vec::new();
        let mut go_matches = Vec::new();
        for v in file["vectors"].as_array().unwrap() {
            if v["agree"] == true || v["signature"].is_null() {
                continue;
            }
            let name = v["name"].as_str().unwrap();
            let payload: Value = serde_json::from_str(v["payload_text"].as_str().unwrap()).unwrap();
            let strings = &v["sdk_strings"];
            if strings["python"] == string_to_sign_with(&payload, SortVariant::BytewiseByPath) {
                python_matches.push(name);
            }
            if strings["go"] == string_to_sign_with(&payload, SortVariant::BytewiseByLine) {
                go_matches.push(name);
            }
        }
        for required in [
            "array_11_elements",
            "receipt_12_positions",
            "key_prefix_then_digit",
            "numeric_keys_in_object",
            "natural_sort_digits_in_keys",
            "natural_sort_whitespace_tie_ba",
        ] {
            assert!(
                python_matches.contains(&required),
                "python: {required} in {python_matches:?}"
            );
            assert!(
                go_matches.contains(&required),
                "go: {required} in {go_matches:?}"
            );
        }
    }
}
