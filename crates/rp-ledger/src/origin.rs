//! Where a payout came from ([`PayoutOrigin`]) in SQL, the same for SQLite and PostgreSQL: its
//! first event's source; a batch is decided by the batch rows first (each backend's own SQL).

use rp_payout::{API_SOURCE_PREFIX, OPERATOR_SOURCE_PREFIX, PayoutOrigin};

/// The condition on `first` (an SQL expression: the source of the payout's version-0 event)
/// for `origin`, once a batch's payouts are set apart; `None` for [`PayoutOrigin::Batch`],
/// which only the batch rows decide. A payout without a first event is the library's, as in
/// the memory store.
pub(crate) fn first_source_sql(origin: PayoutOrigin, first: &str) -> Option<String> {
    let starts = |prefix: &str, op: &str| {
        // The prefixes are constants of ASCII without quotes: safe as literals.
        format!(
            "substr(COALESCE({first}, ''), 1, {}) {op} '{prefix}'",
            prefix.len()
        )
    };
    match origin {
        PayoutOrigin::Batch => None,
        PayoutOrigin::Api => Some(starts(API_SOURCE_PREFIX, "=")),
        PayoutOrigin::Console => Some(format!(
            "{} AND {}",
            starts(OPERATOR_SOURCE_PREFIX, "="),
            starts(API_SOURCE_PREFIX, "<>")
        )),
        PayoutOrigin::Library => Some(starts(OPERATOR_SOURCE_PREFIX, "<>")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_name_the_prefixes() {
        assert_eq!(first_source_sql(PayoutOrigin::Batch, "F"), None);
        assert_eq!(
            first_source_sql(PayoutOrigin::Api, "F").as_deref(),
            Some("substr(COALESCE(F, ''), 1, 13) = 'operator:api:'")
        );
        assert_eq!(
            first_source_sql(PayoutOrigin::Library, "F").as_deref(),
            Some("substr(COALESCE(F, ''), 1, 9) <> 'operator:'")
        );
    }
}
