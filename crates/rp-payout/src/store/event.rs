//! [`PayoutEvent`]: one entry of a payout's history, written in the same atomic step as the
//! change it records.

use std::fmt;
use std::time::SystemTime;

use rp_model::ResponseCode;
use serde::{Deserialize, Serialize};

use super::PayoutState;

/// Where a change of a payout came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventSource {
    /// A payout call of this client: recorded, claimed for a resend, given up.
    Call,
    /// The platform's synchronous answer to a payout request.
    Answer,
    /// A verified callback.
    Callback,
    /// A status response.
    Status,
    /// Reconciliation.
    Reconcile,
    /// A person, by name (a console operator, an API key).
    Operator(String),
}

impl EventSource {
    /// The stable text form (`call`, `answer`, `callback`, `status`, `reconcile`,
    /// `operator:NAME`), for storage.
    pub fn as_text(&self) -> String {
        match self {
            Self::Call => "call".to_owned(),
            Self::Answer => "answer".to_owned(),
            Self::Callback => "callback".to_owned(),
            Self::Status => "status".to_owned(),
            Self::Reconcile => "reconcile".to_owned(),
            Self::Operator(name) => format!("operator:{name}"),
        }
    }

    /// Reads [`EventSource::as_text`]; `None` for anything else.
    pub fn from_text(text: &str) -> Option<Self> {
        Some(match text {
            "call" => Self::Call,
            "answer" => Self::Answer,
            "callback" => Self::Callback,
            "status" => Self::Status,
            "reconcile" => Self::Reconcile,
            other => Self::Operator(other.strip_prefix("operator:")?.to_owned()),
        })
    }
}

impl fmt::Display for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_text())
    }
}

impl Serialize for EventSource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.as_text())
    }
}

impl<'de> Deserialize<'de> for EventSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_text(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event source {text:?}")))
    }
}

/// One entry of a payout's history: what changed, when, from where, and what came with it.
///
/// `raw` keeps the signed body of a callback or status response as received, for audit and
/// replay: it holds the customer's phone number, so show it through
/// [`PayoutEvent::raw_masked`].
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PayoutEvent {
    /// When it happened (the client's clock).
    pub at: SystemTime,
    /// Where it came from.
    pub source: EventSource,
    /// The state before (`None` for the first event).
    pub previous: Option<PayoutState>,
    /// The state after.
    pub state: PayoutState,
    /// The platform code that came with it.
    pub code: Option<ResponseCode>,
    /// The platform message that came with it.
    pub message: Option<String>,
    /// A note: why a person should look, what differed, what was done.
    pub note: Option<String>,
    /// The raw signed body of a callback or status response.
    pub raw: Option<String>,
}

impl PayoutEvent {
    /// An event from `source` moving a payout from `previous` to `state` at `at`.
    pub fn new(
        at: SystemTime,
        source: EventSource,
        previous: Option<PayoutState>,
        state: PayoutState,
    ) -> Self {
        Self {
            at,
            source,
            previous,
            state,
            code: None,
            message: None,
            note: None,
            raw: None,
        }
    }

    /// With a platform code and message.
    #[must_use]
    pub fn with_code(mut self, code: Option<ResponseCode>, message: Option<String>) -> Self {
        self.code = code;
        self.message = message;
        self
    }

    /// With a note.
    #[must_use]
    pub fn with_note(mut self, note: Option<String>) -> Self {
        self.note = note;
        self
    }

    /// With the raw signed body it came in.
    #[must_use]
    pub fn with_raw(mut self, raw: Option<String>) -> Self {
        self.raw = raw;
        self
    }

    /// [`PayoutEvent::raw`] with every phone-number-like run of digits masked, for display.
    pub fn raw_masked(&self) -> Option<String> {
        self.raw.as_deref().map(crate::error::mask_phone_numbers)
    }
}

impl fmt::Debug for PayoutEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayoutEvent")
            .field("at", &self.at)
            .field("source", &self.source)
            .field("previous", &self.previous)
            .field("state", &self.state)
            .field("code", &self.code)
            .field("message", &self.message)
            .field("note", &self.note)
            .field("raw", &self.raw_masked())
            .finish()
    }
}
