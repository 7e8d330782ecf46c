//! Magic values: the last four digits of the phone number choose the outcome.

use serde::Serialize;

/// The magic-value table, as shown in `--help` and in the crate's README (a test keeps the
/// README in step with it).
pub const MAGIC_TABLE: &str = include_str!("magic_table.txt");

/// What a magic phone number (its last four digits) asks the simulator to do.
///
/// ```
/// use rp_sim::Magic;
///
/// assert_eq!(Magic::from_number("77011230001"), Some(Magic::Decline20000));
/// assert_eq!(Magic::from_number("77011234567"), None);
/// assert_eq!(Magic::ServerErrorAfterRecord.digits(), "0020");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Magic {
    /// `0001`: decline, code 20000 (General decline).
    Decline20000,
    /// `0002`: decline, code 20102 (Incorrect account data entered).
    Decline20102,
    /// `0003`: decline, code 20206 (Difficulties on the mobile operator side).
    Decline20206,
    /// `0004`: decline, code 504 (Insufficient funds on the balance).
    Decline504,
    /// `0005`: decline, code 3028 (Insufficient funds on merchant balance).
    Decline3028,
    /// `0006`: the payment ends in status `error` (code 3062); a resend with the same ID succeeds.
    Error3062,
    /// `0007`: final status `partially paid out`: the amount is split into two payout
    /// operations, the first part paid (`success`), the rest declined (code 20000).
    PartiallyPaidOut,
    /// `0008`: status `awaiting clarification` (code 3191, with a callback); no clarification
    /// comes, so after 30 minutes (× the time scale) it ends in `decline` (a second callback).
    AwaitingClarification,
    /// `0010`: no callback ever; the payment stays `processing` until forced.
    NoCallback,
    /// `0011`: the final callback is sent twice.
    DuplicateCallback,
    /// `0012`: the final callback first, then a stale `processing` callback.
    OutOfOrderCallbacks,
    /// `0013`: the callback carries a bad signature.
    BadSignature,
    /// `0014`: the callback comes 10 × the processing delay after acceptance.
    LateCallback,
    /// `0015`: success, then a second callback with status `reversed`.
    Reversed,
    /// `0016`: success after the processing delay, but the callback is lost (never sent).
    LostCallback,
    /// `0017`: success, then a second callback with status `partially reversed` (half the
    /// amount reversed).
    PartiallyReversed,
    /// `0020`: HTTP 500 after the payout was recorded (first attempt only).
    ServerErrorAfterRecord,
    /// `0021`: the connection is dropped after recording (first attempt only).
    DropConnection,
    /// `0022`: HTTP 429 with `Retry-After: 1`, not recorded (first attempt only).
    RateLimited,
    /// `0023`: recorded, the response is delayed by the slow delay (first attempt only).
    SlowResponse,
    /// `0024`: recorded, then HTTP 500 (first attempt); every later payout request with this
    /// payment ID is refused with 3028 instead of 3041, while the payment goes on to succeed.
    ResendRefused3028,
    /// `0025`: like `0024`, but the resend is refused with the limit code 3109.
    ResendRefused3109,
}

impl Magic {
    /// Every magic value, in table order.
    pub const ALL: [Magic; 22] = [
        Magic::Decline20000,
        Magic::Decline20102,
        Magic::Decline20206,
        Magic::Decline504,
        Magic::Decline3028,
        Magic::Error3062,
        Magic::PartiallyPaidOut,
        Magic::AwaitingClarification,
        Magic::NoCallback,
        Magic::DuplicateCallback,
        Magic::OutOfOrderCallbacks,
        Magic::BadSignature,
        Magic::LateCallback,
        Magic::Reversed,
        Magic::LostCallback,
        Magic::PartiallyReversed,
        Magic::ServerErrorAfterRecord,
        Magic::DropConnection,
        Magic::RateLimited,
        Magic::SlowResponse,
        Magic::ResendRefused3028,
        Magic::ResendRefused3109,
    ];

    /// The four digits that trigger it, e.g. `"0001"`.
    pub fn digits(self) -> &'static str {
        match self {
            Magic::Decline20000 => "0001",
            Magic::Decline20102 => "0002",
            Magic::Decline20206 => "0003",
            Magic::Decline504 => "0004",
            Magic::Decline3028 => "0005",
            Magic::Error3062 => "0006",
            Magic::PartiallyPaidOut => "0007",
            Magic::AwaitingClarification => "0008",
            Magic::NoCallback => "0010",
            Magic::DuplicateCallback => "0011",
            Magic::OutOfOrderCallbacks => "0012",
            Magic::BadSignature => "0013",
            Magic::LateCallback => "0014",
            Magic::Reversed => "0015",
            Magic::LostCallback => "0016",
            Magic::PartiallyReversed => "0017",
            Magic::ServerErrorAfterRecord => "0020",
            Magic::DropConnection => "0021",
            Magic::RateLimited => "0022",
            Magic::SlowResponse => "0023",
            Magic::ResendRefused3028 => "0024",
            Magic::ResendRefused3109 => "0025",
        }
    }

    /// The magic value of a phone number (its last four digits), if it has one.
    pub fn from_number(number: &str) -> Option<Magic> {
        let last4 = number.get(number.len().checked_sub(4)?..)?;
        Magic::ALL.into_iter().find(|magic| magic.digits() == last4)
    }

    /// The decline code of the `000x` declines.
    pub fn decline_code(self) -> Option<u32> {
        match self {
            Magic::Decline20000 => Some(20000),
            Magic::Decline20102 => Some(20102),
            Magic::Decline20206 => Some(20206),
            Magic::Decline504 => Some(504),
            Magic::Decline3028 => Some(3028),
            _ => None,
        }
    }

    /// The code that refuses a resend of an existing payment ID in place of 3041 (`0024`:
    /// 3028, `0025`: 3109).
    pub fn resend_refusal_code(self) -> Option<u32> {
        match self {
            Magic::ResendRefused3028 => Some(3028),
            Magic::ResendRefused3109 => Some(3109),
            _ => None,
        }
    }

    /// Whether the magic changes only the first payout request for a payment ID.
    pub fn first_attempt_only(self) -> bool {
        matches!(
            self,
            Magic::Error3062
                | Magic::ServerErrorAfterRecord
                | Magic::DropConnection
                | Magic::RateLimited
                | Magic::SlowResponse
                | Magic::ResendRefused3028
                | Magic::ResendRefused3109
        )
    }

    /// Whether the first payout request is recorded and then answered with HTTP 500.
    pub fn server_error_after_record(self) -> bool {
        matches!(
            self,
            Magic::ServerErrorAfterRecord | Magic::ResendRefused3028 | Magic::ResendRefused3109
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_magic_value_is_a_row_of_the_table_in_order() {
        let rows: Vec<&str> = MAGIC_TABLE.lines().skip(3).collect();
        assert_eq!(rows.len(), Magic::ALL.len());
        for (row, magic) in rows.iter().zip(Magic::ALL) {
            assert!(
                row.starts_with(&format!("| `{}` |", magic.digits())),
                "{row}"
            );
            if let Some(code) = magic.decline_code() {
                assert!(row.contains(&format!("code {code} ")), "{row}");
            }
        }
    }

    #[test]
    fn the_readme_shows_the_same_table() {
        let readme = include_str!("../README.md");
        assert!(
            readme.contains(MAGIC_TABLE),
            "README.md must contain MAGIC_TABLE verbatim"
        );
    }

    #[test]
    fn numbers_map_by_their_last_four_digits() {
        assert_eq!(Magic::from_number("77011230006"), Some(Magic::Error3062));
        assert_eq!(Magic::from_number("77011230023"), Some(Magic::SlowResponse));
        assert_eq!(
            Magic::from_number("77011230024"),
            Some(Magic::ResendRefused3028)
        );
        assert_eq!(Magic::from_number("77011230026"), None);
        assert_eq!(Magic::from_number("77011230009"), None);
        assert_eq!(Magic::from_number("001"), None);
        assert_eq!(Magic::from_number("0001"), Some(Magic::Decline20000));
        assert_eq!(Magic::from_number("7701123000\u{e9}"), None);
    }
}
