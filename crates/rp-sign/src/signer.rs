//! Signing requests and callbacks, verifying callbacks and signed responses.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::digest::Key;
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha512};
use zeroize::Zeroize as _;

use crate::canonical::{
    GENERAL, JsonTree, Lines, SIGNATURE, SortVariant, Strip, View, value_members,
};
use crate::error::{Error, SignatureLocation, SignatureProblem, json_type};
use crate::key::SecretKey;
use crate::plain;
use crate::raw::{Document, RawRef};
use crate::sink::Sink;
use crate::stream;
use crate::tape;
use crate::write::write_request;

type HmacSha512 = Hmac<Sha512>;

/// Length of an HMAC-SHA512 output in bytes.
const SIGNATURE_LEN: usize = 64;

/// Signs and verifies Gate messages with one project's secret key.
///
/// It keeps the HMAC state already keyed (the key's inner and outer pad hashed once), so each
/// message costs only the hashing of its own string to sign. Cloning is cheap (a few hundred
/// bytes, no allocation) and the keyed state is wiped on drop. `Debug` never shows the key.
#[derive(Clone)]
pub struct Signer {
    keyed: HmacSha512,
}

/// An HMAC-SHA512 signature (64 bytes). `Display` writes it as standard Base64 (88 characters),
/// the form that goes into `general.signature`.
///
/// It deliberately has no `PartialEq`: check signatures with [`Signer::verify_value`] or
/// [`Signer::verify_callback`], which compare in constant time.
#[derive(Clone, Copy)]
pub struct Signature([u8; SIGNATURE_LEN]);

impl Signature {
    /// The raw 64 bytes.
    pub fn as_bytes(&self) -> &[u8; SIGNATURE_LEN] {
        &self.0
    }

    /// Standard padded Base64, as the platform writes it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({})", self.to_base64())
    }
}

/// A request signed from its JSON text by [`Signer::sign_request_json`].
#[derive(Debug, Clone)]
pub struct SignedRequest {
    signature: Signature,
    body: Vec<u8>,
}

impl SignedRequest {
    /// The signature now in `general.signature`.
    pub fn signature(&self) -> Signature {
        self.signature
    }

    /// The body to POST.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body to POST, owned.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

/// A message whose signature checked out, borrowed from what was verified.
///
/// Verifying does not build a `serde_json::Value`: read the message with
/// [`VerifiedCallback::deserialize`] (straight from the verified bytes) or
/// [`VerifiedCallback::value`] (a `Value` without the signature) only when needed.
#[derive(Clone, Copy)]
pub struct VerifiedCallback<'a> {
    message: Message<'a>,
    variant: SortVariant,
    location: SignatureLocation,
}

/// What was verified.
#[derive(Clone, Copy)]
enum Message<'a> {
    /// A body, by [`Signer::verify_callback`].
    Bytes(&'a [u8]),
    /// A parsed message, by [`Signer::verify_value`].
    Value(&'a Value),
}

impl<'a> VerifiedCallback<'a> {
    /// The sort order under which the signature matched; anything but
    /// [`SortVariant::PhpNatural`] is worth logging, it tells which rule the platform uses.
    pub fn variant(&self) -> SortVariant {
        self.variant
    }

    /// Where the signature was found.
    pub fn location(&self) -> SignatureLocation {
        self.location
    }

    /// The verified bytes, signature included, when verified by [`Signer::verify_callback`]
    /// (`None` after [`Signer::verify_value`]).
    pub fn body(&self) -> Option<&'a [u8]> {
        match self.message {
            Message::Bytes(body) => Some(body),
            Message::Value(_) => None,
        }
    }

    /// The message as a `Value` without its signature member. If the signature was
    /// `general.signature` and `general` is left empty, `general` is removed too, as the
    /// vendor's `WooCommerce` plugin does (this does not change the string to sign: an empty
    /// object yields no line). Parses the body again (or clones the verified `Value`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidJson`] if `serde_json` refuses the verified bytes (never expected: the
    /// verifier reads exactly the JSON that `serde_json` reads).
    pub fn value(&self) -> Result<Value, Error> {
        let mut value = match self.message {
            Message::Bytes(body) => serde_json::from_slice(body).map_err(Error::InvalidJson)?,
            Message::Value(value) => value.clone(),
        };
        remove_signature(&mut value, self.location);
        Ok(value)
    }

    /// The message deserialised into `T`, straight from the verified bytes (or `Value`).
    ///
    /// The input is the whole message **with** its signature member, as received: give `T`
    /// a `signature` field or let it ignore unknown fields. As with any
    /// `serde_json::from_slice` into a struct, a key that appears twice in the body is an
    /// error when it names a field of `T` (the signature covered the last value).
    ///
    /// # Errors
    ///
    /// [`Error::Deserialize`] if the message does not have the shape of `T`.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, Error> {
        match self.message {
            Message::Bytes(body) => serde_json::from_slice(body),
            Message::Value(value) => T::deserialize(value),
        }
        .map_err(Error::Deserialize)
    }
}

impl std::fmt::Debug for VerifiedCallback<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, len) = match self.message {
            Message::Bytes(body) => ("bytes", body.len()),
            Message::Value(_) => ("value", 0),
        };
        f.debug_struct("VerifiedCallback")
            .field("variant", &self.variant)
            .field("location", &self.location)
            .field("message", &kind)
            .field("body_len", &len)
            .finish()
    }
}

impl Signer {
    /// A signer for `key`.
    pub fn new(key: &SecretKey) -> Signer {
        // HMAC first brings the key to one hash block: hashed if longer, zero-padded otherwise
        // (RFC 2104). Doing it here makes construction infallible for any key length.
        let secret = key.bytes();
        let mut block = Key::<HmacSha512>::default();
        if secret.len() > block.len() {
            let mut digest = Sha512::digest(secret);
            copy_prefix(&mut block, &digest);
            digest.as_mut_slice().zeroize();
        } else {
            copy_prefix(&mut block, secret);
        }
        let keyed = HmacSha512::new(&block);
        block.as_mut_slice().zeroize();
        Signer { keyed }
    }

    /// The signature of `payload` exactly as given (a `signature` member still in it is
    /// signed like any other field, as the vendor SDKs' `sign()` does).
    ///
    /// # Errors
    ///
    /// [`Error::NotAnObject`] if `payload` is not a JSON object, [`Error::AmbiguousValue`] if a
    /// key or string value contains `;`.
    pub fn sign_value(&self, payload: &Value) -> Result<Signature, Error> {
        self.sign_map(as_object(payload)?, Strip::Nothing)
    }

    /// The signature of any serialisable payload (see [`Signer::sign_value`]).
    ///
    /// # Errors
    ///
    /// [`Error::Serialize`] if serialisation fails, [`Error::NotAnObject`] if the payload is
    /// not a JSON object, [`Error::AmbiguousValue`] if a key or string value contains `;`.
    pub fn sign<T: Serialize + ?Sized>(&self, payload: &T) -> Result<Signature, Error> {
        self.sign_value(&to_value(payload)?)
    }

    /// A Gate request body with `general.signature` set: any old `general.signature` is
    /// removed, the rest is signed, and the signature is added as the last member of
    /// `general`.
    ///
    /// # Errors
    ///
    /// [`Error::Serialize`], [`Error::NotAnObject`], [`Error::MissingGeneral`] if there is
    /// no `general` object (a Gate request always has one), or [`Error::AmbiguousValue`] if a
    /// key or string value contains `;`.
    pub fn sign_request<T: Serialize + ?Sized>(&self, request: &T) -> Result<Value, Error> {
        let mut value = to_value(request)?;
        let map = as_object_mut(&mut value)?;
        match map.get_mut(GENERAL) {
            Some(Value::Object(general)) => {
                remove_member(general, SIGNATURE);
            }
            Some(other) => {
                return Err(Error::MissingGeneral {
                    found: json_type(other),
                });
            }
            None => return Err(Error::MissingGeneral { found: "nothing" }),
        }
        let signature = self.sign_map(map, Strip::Nothing)?;
        if let Some(Value::Object(general)) = map.get_mut(GENERAL) {
            general.insert(SIGNATURE.to_owned(), Value::String(signature.to_base64()));
        }
        Ok(value)
    }

    /// [`Signer::sign_request`] serialised: the bytes to POST.
    ///
    /// # Errors
    ///
    /// As [`Signer::sign_request`].
    pub fn sign_request_body<T: Serialize + ?Sized>(&self, request: &T) -> Result<Vec<u8>, Error> {
        to_vec(&self.sign_request(request)?)
    }

    /// The signature of a JSON text exactly as given (see [`Signer::sign_value`]), with its
    /// numbers read from their text as PHP reads them: the integer `-0` signs as `0` (as in
    /// every vendor SDK), `-0.0` as `-0` (PHP), `1.0` as `1`. This is what [`Signer::verify_callback`]
    /// computes for a body, so signing a text and verifying it always agree.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidJson`], [`Error::NotAnObject`], [`Error::AmbiguousValue`].
    pub fn sign_json(&self, text: &[u8]) -> Result<Signature, Error> {
        let document = parse_document(text)?;
        let View::Object(members) = document.root().view() else {
            return Err(Error::NotAnObject {
                found: document.root().view().type_name(),
            });
        };
        self.sign_lines(Lines::flatten(members, Strip::Nothing))
    }

    /// A Gate request signed from its JSON text: any old `general.signature` is left out,
    /// the rest signed as [`Signer::sign_json`] signs it, and the body written back (compact,
    /// numbers exactly as written, `general.signature` the last member of `general`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidJson`], [`Error::NotAnObject`], [`Error::MissingGeneral`],
    /// [`Error::AmbiguousValue`].
    pub fn sign_request_json(&self, text: &[u8]) -> Result<SignedRequest, Error> {
        let document = parse_document(text)?;
        let root = document.root();
        let View::Object(members) = root.view() else {
            return Err(Error::NotAnObject {
                found: root.view().type_name(),
            });
        };
        let general = members
            .clone()
            .filter(|(key, _)| *key == GENERAL)
            .map(|(_, value)| value.view())
            .next();
        match general {
            Some(View::Object(_)) => {}
            Some(other) => {
                return Err(Error::MissingGeneral {
                    found: other.type_name(),
                });
            }
            None => return Err(Error::MissingGeneral { found: "nothing" }),
        }
        let signature = self.sign_lines(Lines::flatten(members.clone(), Strip::General))?;
        let mut body = Vec::with_capacity(text.len() + 110);
        write_request::<RawRef<'_>>(members, &signature.to_base64(), &mut body)?;
        Ok(SignedRequest { signature, body })
    }

    /// A callback with a root `signature` (replacing any old one), as the platform sends it.
    /// For simulators and merchants' tests; see also [`crate::testing`].
    ///
    /// # Errors
    ///
    /// [`Error::Serialize`], [`Error::NotAnObject`] if the payload is not a JSON object, or
    /// [`Error::AmbiguousValue`] if a key or string value contains `;`.
    pub fn sign_callback<T: Serialize + ?Sized>(&self, callback: &T) -> Result<Value, Error> {
        let mut value = to_value(callback)?;
        let map = as_object_mut(&mut value)?;
        remove_member(map, SIGNATURE);
        let signature = self.sign_map(map, Strip::Nothing)?;
        map.insert(SIGNATURE.to_owned(), Value::String(signature.to_base64()));
        Ok(value)
    }

    /// [`Signer::sign_callback`] serialised: a callback body as the platform POSTs it.
    ///
    /// # Errors
    ///
    /// As [`Signer::sign_callback`].
    pub fn sign_callback_body<T: Serialize + ?Sized>(
        &self,
        callback: &T,
    ) -> Result<Vec<u8>, Error> {
        to_vec(&self.sign_callback(callback)?)
    }

    /// Verifies a callback from the raw bytes of its body.
    ///
    /// The signature is the root `signature`, or else `general.signature`. It is left out,
    /// the rest is canonicalised and the HMAC compared in constant time with the decoded
    /// signature. If that fails and another vendor SDK's sort order gives a different string,
    /// that order is tried too (see [`SortVariant`]); all orders use the same key, so this
    /// does not let anyone without the key forge a callback.
    ///
    /// The body is read by a borrowed reader that accepts exactly the JSON `serde_json`
    /// accepts, but reads numbers by their text as PHP does (the integer `-0` signs as `0`).
    /// No `serde_json::Value` is built: see [`VerifiedCallback`] to read the message.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidJson`], [`Error::NotAnObject`], [`Error::MissingSignature`],
    /// [`Error::MalformedSignature`], [`Error::AmbiguousValue`] (a key or string value holds
    /// `;`: refused before the signature is even compared) or [`Error::InvalidSignature`]:
    /// each a distinct case.
    pub fn verify_callback<'a>(&self, body: &'a [u8]) -> Result<VerifiedCallback<'a>, Error> {
        if let Some(location) = self.verify_in_one_pass(body) {
            return Ok(VerifiedCallback {
                message: Message::Bytes(body),
                variant: SortVariant::PhpNatural,
                location,
            });
        }
        let document = parse_document(body)?;
        let (location, variant) = self.check(document.root())?;
        Ok(VerifiedCallback {
            message: Message::Bytes(body),
            variant,
            location,
        })
    }

    /// Verifies an already parsed message (a callback, or a signed status response). See
    /// [`Signer::verify_callback`]; here numbers are read as `serde_json` parsed them.
    ///
    /// # Errors
    ///
    /// As [`Signer::verify_callback`], except [`Error::InvalidJson`].
    pub fn verify_value<'a>(&self, message: &'a Value) -> Result<VerifiedCallback<'a>, Error> {
        let (location, variant) = self.check(message)?;
        Ok(VerifiedCallback {
            message: Message::Value(message),
            variant,
            location,
        })
    }

    /// The fast paths of [`Signer::verify_callback`]: a plain callback read into member
    /// records and written straight into the HMAC (see [`crate::tape`]), else the usual
    /// callback read and flattened in one pass (see [`crate::stream`]), whose signature
    /// matches in the canonical order. `None` for anything else, which the general path then
    /// checks (and explains).
    fn verify_in_one_pass(&self, body: &[u8]) -> Option<SignatureLocation> {
        if let Some(tape) = tape::read_callback(body) {
            let expected = decode_signature_text(&tape.signature).ok()?;
            let mut mac = self.keyed.clone();
            tape.write(|chunk| mac.update(chunk));
            return mac.verify_slice(&expected).is_ok().then_some(tape.location);
        }
        let mut streamed = stream::read_callback(body)?;
        let expected = decode_signature_text(&streamed.signature).ok()?;
        if !streamed.sorted {
            streamed.lines.sort(SortVariant::PhpNatural);
        }
        self.matches(&streamed.lines, &expected)
            .then_some(streamed.location)
    }

    /// Finds, decodes and checks the signature of the message `root`.
    fn check<'s, N: JsonTree<'s>>(
        &self,
        root: N,
    ) -> Result<(SignatureLocation, SortVariant), Error> {
        let View::Object(members) = root.view() else {
            return Err(Error::NotAnObject {
                found: root.view().type_name(),
            });
        };
        let (location, member) = find_signature::<N>(members).ok_or(Error::MissingSignature)?;
        let expected = decode_signature(&member.view())
            .map_err(|problem| Error::MalformedSignature { location, problem })?;
        let strip = match location {
            SignatureLocation::Root => Strip::Root,
            SignatureLocation::General => Strip::General,
        };
        let View::Object(members) = root.view() else {
            return Err(Error::NotAnObject {
                found: root.view().type_name(),
            });
        };
        let mut lines = Lines::flatten(members, strip);
        if let Some(path) = lines.ambiguity() {
            return Err(Error::AmbiguousValue {
                path: path.to_owned(),
                signing: false,
            });
        }
        if let Some(path) = lines.extra_signature() {
            return Err(Error::ExtraSignature {
                location,
                path: path.to_owned(),
            });
        }
        lines.sort(SortVariant::PhpNatural);
        if self.matches(&lines, &expected) {
            return Ok((location, SortVariant::PhpNatural));
        }
        let canonical = lines.clone();
        for variant in [SortVariant::BytewiseByPath, SortVariant::BytewiseByLine] {
            lines.sort(variant);
            if !lines.same_order(&canonical) && self.matches(&lines, &expected) {
                return Ok((location, variant));
            }
        }
        Err(Error::InvalidSignature { location })
    }

    /// Constant-time check of the HMAC of `lines` against `expected`.
    fn matches(&self, lines: &Lines, expected: &[u8; SIGNATURE_LEN]) -> bool {
        self.mac(lines).verify_slice(expected).is_ok()
    }

    /// The keyed HMAC fed with the joined lines (each line with the `;` before it), through
    /// a stack buffer that hands them on in a few large chunks.
    fn mac(&self, lines: &Lines) -> HmacSha512 {
        let mut mac = self.keyed.clone();
        let mut sink = Sink::new(|chunk: &[u8]| mac.update(chunk));
        lines.for_each_piece(|piece| sink.write(piece));
        sink.finish();
        mac
    }

    fn sign_map(&self, map: &Map<String, Value>, strip: Strip) -> Result<Signature, Error> {
        // The fast path for plain payloads (see `crate::plain`); anything else, and every
        // error, through the general one.
        if strip == Strip::Nothing {
            let mut mac = self.keyed.clone();
            if plain::write_string_to_sign(map, |piece| mac.update(piece)).is_some() {
                return Ok(Signature(mac.finalize().into_bytes().into()));
            }
        }
        self.sign_lines(Lines::flatten(value_members(map), strip))
    }

    fn sign_lines(&self, mut lines: Lines) -> Result<Signature, Error> {
        if let Some(path) = lines.ambiguity() {
            return Err(Error::AmbiguousValue {
                path: path.to_owned(),
                signing: true,
            });
        }
        lines.sort(SortVariant::PhpNatural);
        Ok(Signature(self.mac(&lines).finalize().into_bytes().into()))
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer { key: *** }")
    }
}

/// Reads `text` with the borrowed reader (numbers kept as text).
pub(crate) fn parse_document(text: &[u8]) -> Result<Document<'_>, Error> {
    Document::parse(text).map_err(|e| {
        Error::InvalidJson(<serde_json::Error as serde::de::Error>::custom(
            e.describe(text),
        ))
    })
}

/// Copies `src` to the start of `dst` (`src` is never longer here).
fn copy_prefix(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// The root `signature`, or else `general.signature`, among the root `members`.
pub(crate) fn find_signature<'s, N: JsonTree<'s>>(
    members: N::Members,
) -> Option<(SignatureLocation, N)> {
    let mut general = None;
    for (key, value) in members {
        if key == SIGNATURE {
            return Some((SignatureLocation::Root, value));
        }
        if key == GENERAL {
            general = Some(value);
        }
    }
    let View::Object(members) = general?.view() else {
        return None;
    };
    members
        .filter(|(key, _)| *key == SIGNATURE)
        .map(|(_, value)| (SignatureLocation::General, value))
        .next()
}

/// The 64 bytes of a signature member (standard padded Base64 of an HMAC-SHA512).
fn decode_signature<'s, N: JsonTree<'s>>(
    member: &View<'s, N>,
) -> Result<[u8; SIGNATURE_LEN], SignatureProblem> {
    let &View::String(text) = member else {
        return Err(SignatureProblem::NotAString {
            found: member.type_name(),
        });
    };
    decode_signature_text(text)
}

/// The 64 bytes of a signature's text (standard padded Base64 of an HMAC-SHA512).
fn decode_signature_text(text: &str) -> Result<[u8; SIGNATURE_LEN], SignatureProblem> {
    // The usual 88 characters decode into a buffer on the stack (room for 66 bytes, what
    // `decode_slice` asks for 88 characters); anything else, or any error, is decoded again
    // below to say what is wrong.
    let mut decoded = [0u8; SIGNATURE_LEN + 2];
    if text.len() == 88
        && let Ok(SIGNATURE_LEN) = STANDARD.decode_slice(text, &mut decoded)
        && let Some(bytes) = decoded.first_chunk::<SIGNATURE_LEN>()
    {
        return Ok(*bytes);
    }
    let bytes = STANDARD
        .decode(text)
        .map_err(|_| SignatureProblem::NotBase64)?;
    <[u8; SIGNATURE_LEN]>::try_from(bytes.as_slice())
        .map_err(|_| SignatureProblem::WrongLength { bytes: bytes.len() })
}

/// Removes the signature member found at `location`; an emptied `general` goes too.
fn remove_signature(value: &mut Value, location: SignatureLocation) {
    let Value::Object(map) = value else { return };
    match location {
        SignatureLocation::Root => {
            remove_member(map, SIGNATURE);
        }
        SignatureLocation::General => {
            let emptied = match map.get_mut(GENERAL) {
                Some(Value::Object(general)) => {
                    remove_member(general, SIGNATURE);
                    general.is_empty()
                }
                _ => false,
            };
            if emptied {
                remove_member(map, GENERAL);
            }
        }
    }
}

/// Removes the member `key`, keeping the order of the others (whether or not the program
/// enables `serde_json`'s `preserve_order`; `Map::remove` would swap the last member in).
fn remove_member(map: &mut Map<String, Value>, key: &str) {
    if map.contains_key(key) {
        map.retain(|k, _| k != key);
    }
}

pub(crate) fn as_object(value: &Value) -> Result<&Map<String, Value>, Error> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(Error::NotAnObject {
            found: json_type(other),
        }),
    }
}

fn as_object_mut(value: &mut Value) -> Result<&mut Map<String, Value>, Error> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(Error::NotAnObject {
            found: json_type(other),
        }),
    }
}

fn to_value<T: Serialize + ?Sized>(payload: &T) -> Result<Value, Error> {
    serde_json::to_value(payload).map_err(Error::Serialize)
}

fn to_vec(value: &Value) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(Error::Serialize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn signer() -> Signer {
        Signer::new(&SecretKey::from("secret"))
    }

    #[test]
    fn operator_list_request_from_the_spec() {
        let signature = signer()
            .sign_value(&json!({"general": {"project_id": 1234}}))
            .unwrap();
        assert_eq!(
            signature.to_base64(),
            "//glFbFIXgae9orgS/wOB5QB0GV9OaA8AmASQqn9Dtkddt9u1Gtt4mc8g3WqtPeyPb9g/e7TMiaRvMdkeARqfw=="
        );
    }

    #[test]
    fn long_keys_are_hashed_first() {
        // A 200-byte key must equal HMAC with its SHA-512 as the key (RFC 2104).
        let long = "k".repeat(200);
        let hashed = Sha512::digest(long.as_bytes());
        let mut direct = HmacSha512::new_from_slice(&hashed).unwrap();
        direct.update(b"a:1");
        let expected = STANDARD.encode(direct.finalize().into_bytes());
        let ours = Signer::new(&SecretKey::from(long))
            .sign_value(&json!({"a": 1}))
            .unwrap();
        assert_eq!(ours.to_base64(), expected);
    }

    #[test]
    fn request_signature_replaces_an_old_one() {
        let request = json!({"general": {"project_id": 1, "signature": "old"}, "x": "y"});
        let signed = signer().sign_request(&request).unwrap();
        let fresh = signer()
            .sign_value(&json!({"general": {"project_id": 1}, "x": "y"}))
            .unwrap();
        assert_eq!(signed["general"]["signature"], fresh.to_base64());
        assert_eq!(
            signer().verify_value(&signed).unwrap().value().unwrap(),
            json!({"general": {"project_id": 1}, "x": "y"})
        );
    }

    #[test]
    fn request_without_general_is_rejected() {
        let err = signer().sign_request(&json!({"payment": {}})).unwrap_err();
        assert!(
            matches!(err, Error::MissingGeneral { found: "nothing" }),
            "{err}"
        );
        let err = signer().sign_request(&json!({"general": 1})).unwrap_err();
        assert!(
            matches!(err, Error::MissingGeneral { found: "number" }),
            "{err}"
        );
        let err = signer().sign_request(&json!([1])).unwrap_err();
        assert!(
            matches!(err, Error::NotAnObject { found: "array" }),
            "{err}"
        );
    }

    #[test]
    fn general_emptied_by_removing_its_signature_is_dropped() {
        let mut message = json!({"payment": {"id": "p"}, "general": {}});
        let signature = signer().sign_value(&message).unwrap();
        message["general"]["signature"] = json!(signature.to_base64());
        let verified = signer().verify_value(&message).unwrap();
        assert_eq!(verified.location(), SignatureLocation::General);
        assert_eq!(verified.value().unwrap(), json!({"payment": {"id": "p"}}));
        // The same from bytes.
        let body = serde_json::to_vec(&message).unwrap();
        let verified = signer().verify_callback(&body).unwrap();
        assert_eq!(verified.location(), SignatureLocation::General);
        assert_eq!(verified.body(), Some(&body[..]));
        assert_eq!(verified.value().unwrap(), json!({"payment": {"id": "p"}}));
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(format!("{:?}", signer()), "Signer { key: *** }");
    }
}
