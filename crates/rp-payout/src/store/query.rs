//! [`PayoutQuery`]: which payouts to list, a page at a time; [`PayoutOrigin`]: where a payout
//! came from; [`StateCount`]: how many in each state.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use rp_model::PaymentId;

use super::{EventSource, PayoutRecord};

/// Where a payout came from, as its history and the batches tell it (no column of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayoutOrigin {
    /// The JSON API: its first event is an API key's (`operator:api:KEY`), and no batch has it.
    Api,
    /// A console operator's form: its first event is an operator's (`operator:NAME`, not an
    /// API key's), and no batch has it.
    Console,
    /// A row of a batch of the same project (whoever recorded it: `rp batch run`, a console
    /// upload, the batch worker).
    Batch,
    /// The library or the command line (`call`), and no batch has it.
    Library,
}

impl PayoutOrigin {
    /// Every origin, in the order a form lists them.
    pub const ALL: [PayoutOrigin; 4] = [Self::Api, Self::Console, Self::Batch, Self::Library];

    /// The stable text form: `api`, `console`, `batch`, `library`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Console => "console",
            Self::Batch => "batch",
            Self::Library => "library",
        }
    }

    /// The origin of a payout whose first event came from `first` and which a batch of its
    /// project has (`in_batch`) or not: the reference every store implements.
    pub fn of(first: &EventSource, in_batch: bool) -> PayoutOrigin {
        match first {
            _ if in_batch => Self::Batch,
            EventSource::Operator(name) if name.starts_with(API_PREFIX) => Self::Api,
            EventSource::Operator(_) => Self::Console,
            _ => Self::Library,
        }
    }
}

/// What an API key's name is prefixed with in [`EventSource::Operator`] (`operator:api:KEY`).
const API_PREFIX: &str = "api:";

/// The text of a first event's source ([`EventSource::as_text`]) an API key's starts with.
pub const API_SOURCE_PREFIX: &str = "operator:api:";

/// The text of a first event's source ([`EventSource::as_text`]) an operator's starts with.
pub const OPERATOR_SOURCE_PREFIX: &str = "operator:";

impl fmt::Display for PayoutOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that is not an origin's ([`PayoutOrigin::as_str`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOrigin(pub String);

impl fmt::Display for UnknownOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown source {:?}: one of api, console, batch, library",
            self.0
        )
    }
}

impl std::error::Error for UnknownOrigin {}

impl FromStr for PayoutOrigin {
    type Err = UnknownOrigin;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|origin| origin.as_str() == text)
            .ok_or_else(|| UnknownOrigin(text.to_owned()))
    }
}

/// The most records one page holds, whatever [`PayoutQuery::limit`] asks.
pub const MAX_PAGE: usize = 1000;

/// Which payouts to list ([`PayoutStore::list`](super::PayoutStore::list)), newest first, one
/// keyset page at a time. Filters combine with "and".
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PayoutQuery {
    /// Only this state ([`PayoutState::label`](super::PayoutState::label), e.g. `success`,
    /// `unknown`).
    pub state: Option<String>,
    /// Only payouts that need attention ([`PayoutRecord::attention`]).
    pub attention: bool,
    /// Only payouts recorded at or after this time.
    pub since: Option<SystemTime>,
    /// Only payouts recorded before this time.
    pub until: Option<SystemTime>,
    /// Only payouts to this phone number (11 digits, as in the request's `account.number`).
    pub phone: Option<String>,
    /// Only the payout with this payment ID (the other filters still apply).
    pub payment_id: Option<PaymentId>,
    /// Only payouts that came from there ([`PayoutOrigin::of`]).
    pub source: Option<PayoutOrigin>,
    /// Start after this record (the last of the previous page): its `created_at` and payment ID.
    pub after: Option<(SystemTime, PaymentId)>,
    /// Records per page (1 to [`MAX_PAGE`]; default 100).
    pub limit: usize,
}

impl Default for PayoutQuery {
    fn default() -> Self {
        Self {
            state: None,
            attention: false,
            since: None,
            until: None,
            phone: None,
            payment_id: None,
            source: None,
            after: None,
            limit: 100,
        }
    }
}

impl PayoutQuery {
    /// Every payout, 100 a page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only this state (its [`label`](super::PayoutState::label)).
    #[must_use]
    pub fn state(mut self, label: impl Into<String>) -> Self {
        self.state = Some(label.into());
        self
    }

    /// Only payouts that need attention.
    #[must_use]
    pub fn attention(mut self) -> Self {
        self.attention = true;
        self
    }

    /// Only payouts recorded in `[since, until)`.
    #[must_use]
    pub fn between(mut self, since: Option<SystemTime>, until: Option<SystemTime>) -> Self {
        self.since = since;
        self.until = until;
        self
    }

    /// Only payouts to this phone number (11 digits).
    #[must_use]
    pub fn phone(mut self, digits: impl Into<String>) -> Self {
        self.phone = Some(digits.into());
        self
    }

    /// Only the payout with this payment ID.
    #[must_use]
    pub fn payment_id(mut self, payment_id: PaymentId) -> Self {
        self.payment_id = Some(payment_id);
        self
    }

    /// Only payouts that came from `origin`.
    #[must_use]
    pub fn source(mut self, origin: PayoutOrigin) -> Self {
        self.source = Some(origin);
        self
    }

    /// Records per page (clamped to 1..=[`MAX_PAGE`]).
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The next page: the records after `last`, the last record of this page.
    #[must_use]
    pub fn after(mut self, last: &PayoutRecord) -> Self {
        self.after = Some((last.created_at, last.payment_id.clone()));
        self
    }

    /// The page size to use: [`PayoutQuery::limit`] clamped to 1..=[`MAX_PAGE`].
    pub fn page_size(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE)
    }

    /// Whether `record` passes the filters that its record alone decides (all but
    /// [`PayoutQuery::source`], and not the page position): the reference semantics that every
    /// store implements.
    pub fn matches(&self, record: &PayoutRecord) -> bool {
        self.state
            .as_deref()
            .is_none_or(|label| record.state.label() == label)
            && (!self.attention || record.attention.is_some())
            && self.since.is_none_or(|since| record.created_at >= since)
            && self.until.is_none_or(|until| record.created_at < until)
            && self
                .phone
                .as_deref()
                .is_none_or(|phone| record.request.account.number == phone)
            && self
                .payment_id
                .as_ref()
                .is_none_or(|id| record.payment_id == *id)
    }

    /// Whether a payout from `origin` passes [`PayoutQuery::source`].
    pub fn matches_origin(&self, origin: PayoutOrigin) -> bool {
        self.source.is_none_or(|wanted| wanted == origin)
    }

    /// Whether `record` comes after the cursor, newest first: older, or as old with a smaller
    /// payment ID.
    pub fn is_after_cursor(&self, record: &PayoutRecord) -> bool {
        self.after.as_ref().is_none_or(|(at, id)| {
            record.created_at < *at || (record.created_at == *at && record.payment_id < *id)
        })
    }
}

/// How many payouts are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateCount {
    /// `(label, count)` for every state present, most first (ties by label).
    pub by_state: Vec<(String, u64)>,
    /// How many need attention.
    pub attention: u64,
    /// How many in all.
    pub total: u64,
}

impl StateCount {
    /// Builds the counts from `(label, count, attention)` rows, in any order.
    pub fn from_rows(rows: impl IntoIterator<Item = (String, u64, u64)>) -> Self {
        let mut counts = StateCount::default();
        for (label, count, attention) in rows {
            counts.total += count;
            counts.attention += attention;
            match counts.by_state.iter_mut().find(|(l, _)| *l == label) {
                Some((_, n)) => *n += count,
                None => counts.by_state.push((label, count)),
            }
        }
        counts
            .by_state
            .sort_by(|(la, a), (lb, b)| b.cmp(a).then_with(|| la.cmp(lb)));
        counts
    }

    /// The count for a state label (0 when none).
    pub fn get(&self, label: &str) -> u64 {
        self.by_state
            .iter()
            .find(|(l, _)| l == label)
            .map_or(0, |(_, n)| *n)
    }
}
