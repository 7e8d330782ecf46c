//! Mobile operators that receive payouts, and the prefix table that hints at them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::generated::prefixes::PREFIXES;

/// A mobile operator ID as the platform names it (`ACTIV`, `ALTEL`, `BEELINE`, `KCELL`, `TELE2`).
///
/// The platform may add operators: an ID this crate does not know is kept in
/// [`Operator::Other`], never rejected.
///
/// ```
/// use rp_model::Operator;
///
/// assert_eq!("KCELL".parse::<Operator>().unwrap(), Operator::Kcell);
/// assert_eq!(Operator::Tele2.id(), "TELE2");
/// assert_eq!("IZI".parse::<Operator>().unwrap(), Operator::Other("IZI".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Operator {
    /// Activ, a brand of Kcell JSC (`ACTIV`).
    Activ,
    /// Altel, a brand of Mobile Telecom-Service (`ALTEL`).
    Altel,
    /// Beeline Kazakhstan, KaR-Tel (`BEELINE`).
    Beeline,
    /// Kcell, Kcell JSC (`KCELL`).
    Kcell,
    /// Tele2, a brand of Mobile Telecom-Service (`TELE2`).
    Tele2,
    /// An operator ID this crate does not know, exactly as received.
    Other(String),
}

impl Operator {
    /// The five operators documented for Kazakhstan mobile payouts.
    pub const KNOWN: [Operator; 5] = [
        Operator::Activ,
        Operator::Altel,
        Operator::Beeline,
        Operator::Kcell,
        Operator::Tele2,
    ];

    /// The platform's ID, e.g. `"BEELINE"`.
    pub fn id(&self) -> &str {
        match self {
            Self::Activ => "ACTIV",
            Self::Altel => "ALTEL",
            Self::Beeline => "BEELINE",
            Self::Kcell => "KCELL",
            Self::Tele2 => "TELE2",
            Self::Other(id) => id,
        }
    }

    /// The brand as people write it, e.g. `"Beeline"`; the raw ID for unknown operators.
    pub fn name(&self) -> &str {
        match self {
            Self::Activ => "Activ",
            Self::Altel => "Altel",
            Self::Beeline => "Beeline",
            Self::Kcell => "Kcell",
            Self::Tele2 => "Tele2",
            Self::Other(id) => id,
        }
    }

    /// Maps an ID to an operator; known IDs match case-insensitively, anything else is kept.
    pub fn from_id(id: &str) -> Self {
        let trimmed = id.trim();
        Self::KNOWN
            .into_iter()
            .find(|known| known.id().eq_ignore_ascii_case(trimmed))
            .unwrap_or_else(|| Self::Other(id.to_owned()))
    }

    /// Whether this is one of the five documented operators.
    pub fn is_known(&self) -> bool {
        !matches!(self, Self::Other(_))
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for Operator {
    type Err = std::convert::Infallible;

    /// Never fails: unknown IDs become [`Operator::Other`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::from_id(s))
    }
}

impl Serialize for Operator {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

impl<'de> Deserialize<'de> for Operator {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = String::deserialize(deserializer)?;
        Ok(Self::from_id(&id))
    }
}

/// What the numbering plan says about a mobile prefix (DEF code).
///
/// Only a **hint**: mobile number portability has been in force in Kazakhstan since
/// 2016-01-01, so a subscriber may have moved to another operator. The platform reports the
/// real operator in the callback (`account.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixInfo {
    /// The three digits after the country code 7, e.g. `"701"`.
    pub prefix: &'static str,
    /// The payout operators that may hold numbers of this range (originally allocated).
    /// Empty for ranges of other networks (e.g. Kulan, Nursat).
    pub operators: &'static [Operator],
    /// The company that holds the range.
    pub company: &'static str,
}

impl PrefixInfo {
    /// Looks a three-digit DEF code up (`"701"`).
    pub fn lookup(prefix: &str) -> Option<&'static PrefixInfo> {
        PREFIXES.iter().find(|info| info.prefix == prefix)
    }

    /// Every KZ mobile prefix, sorted.
    pub fn all() -> &'static [PrefixInfo] {
        PREFIXES
    }
}
