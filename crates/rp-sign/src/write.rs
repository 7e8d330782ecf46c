//! Writing a JSON tree back as compact text, numbers as they were written: the request body
//! of [`crate::Signer::sign_request_json`], with its new `general.signature`.

use crate::canonical::{GENERAL, JsonTree, Num, SIGNATURE, View};
use crate::error::Error;

/// Writes the root object `members` to `out`, with `general.signature` replaced by
/// `signature` (the last member of `general`). `general` must be an object (checked by the
/// caller).
pub(crate) fn write_request<'s, N: JsonTree<'s>>(
    members: N::Members,
    signature: &str,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    out.push(b'{');
    for (index, (key, value)) in members.enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_string(key, out)?;
        out.push(b':');
        match value.view() {
            View::Object(general) if key == GENERAL => {
                out.push(b'{');
                let mut first = true;
                for (key, value) in general.filter(|(key, _)| *key != SIGNATURE) {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    write_member(key, value, out)?;
                }
                if !first {
                    out.push(b',');
                }
                write_string(SIGNATURE, out)?;
                out.push(b':');
                write_string(signature, out)?;
                out.push(b'}');
            }
            view => write_value::<N>(view, out)?,
        }
    }
    out.push(b'}');
    Ok(())
}

fn write_member<'s, N: JsonTree<'s>>(key: &str, value: N, out: &mut Vec<u8>) -> Result<(), Error> {
    write_string(key, out)?;
    out.push(b':');
    write_value::<N>(value.view(), out)
}

fn write_value<'s, N: JsonTree<'s>>(value: View<'s, N>, out: &mut Vec<u8>) -> Result<(), Error> {
    match value {
        View::Object(members) => {
            out.push(b'{');
            for (index, (key, value)) in members.enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_member(key, value, out)?;
            }
            out.push(b'}');
        }
        View::Array(items) => {
            out.push(b'[');
            for (index, item) in items.enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value::<N>(item.view(), out)?;
            }
            out.push(b']');
        }
        View::String(s) => write_string(s, out)?,
        // The source text (already checked against the JSON grammar), so `-0` stays `-0`.
        View::Number(Num::Text(text)) => out.extend_from_slice(text.as_bytes()),
        View::Number(Num::Parsed(n)) => out.extend_from_slice(n.to_string().as_bytes()),
        View::Bool(true) => out.extend_from_slice(b"true"),
        View::Bool(false) => out.extend_from_slice(b"false"),
        View::Null => out.extend_from_slice(b"null"),
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) -> Result<(), Error> {
    serde_json::to_writer(out, s).map_err(Error::Serialize)
}
