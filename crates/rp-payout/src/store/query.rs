//! [`PayoutQuery`]: which payouts to list, a page at a time; [`StateCount`]: how many in each
//! state.

use std::time::SystemTime;

use rp_model::PaymentId;

use super::PayoutRecord;

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

    /// Whether `record` passes the filters (not the page position): the reference semantics
    /// that every store implements.
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
