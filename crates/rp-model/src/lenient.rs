//! Lenient serde helpers for values the platform sends in more than one JSON type.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, Visitor};

/// A value that may arrive as a JSON string or a JSON number; kept as its text.
pub(crate) struct StringOrNumber(pub(crate) String);

impl<'de> serde::Deserialize<'de> for StringOrNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StringOrNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StringOrNumber(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(StringOrNumber(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(StringOrNumber(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(StringOrNumber(v.to_string()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// An unsigned integer that may arrive as a JSON number or as a string of digits.
pub(crate) struct LenientU64(pub(crate) u64);

impl<'de> serde::Deserialize<'de> for LenientU64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LenientU64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer (as a number or a string of digits)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(LenientU64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v).map(LenientU64).map_err(|_| {
                    E::custom(format_args!("expected a non-negative integer, found {v}"))
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let t = v.trim();
                if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(E::custom(format_args!(
                        "expected a non-negative integer, found the string {v:?}"
                    )));
                }
                t.parse()
                    .map(LenientU64)
                    .map_err(|_| E::custom(format_args!("integer {v:?} does not fit in 64 bits")))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// `#[serde(with = "lenient_u64")]` for `u64` fields.
pub(crate) mod lenient_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        super::LenientU64::deserialize(d).map(|v| v.0)
    }
}

/// `#[serde(with = "lenient_opt_u64")]` for `Option<u64>` fields.
pub(crate) mod lenient_opt_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_u64(*v),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Option::<super::LenientU64>::deserialize(d).map(|v| v.map(|v| v.0))
    }
}
