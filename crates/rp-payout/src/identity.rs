//! "Is this our payout?": what the platform reports under a payment ID against what we sent
//! (invariant 10).
//!
//! Before a status is adopted (after an unknown outcome, a `3041`, or in reconcile) or a
//! callback is applied, the payment it describes must be the recorded payout: the same amount
//! and currency (`payment.sum`, required), the same phone number (`account.number`, when the
//! platform reports one; a masked number such as `7701***4567` is compared on its visible
//! digits) and the same customer (`customer.id`, when reported). A payment ID is the
//! merchant's key, but nothing stops the platform from holding another payment under it (made
//! in the Dashboard, by another system, or by an earlier bug): a mismatch is never applied,
//! it is surfaced.

use rp_model::{mask_phone, wire};

/// What the platform reported about a payment, borrowed from a callback or status response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reported<'a> {
    pub(crate) sum: Option<&'a wire::Sum>,
    pub(crate) account: Option<&'a wire::Account>,
    pub(crate) customer: Option<&'a wire::CustomerRef>,
}

impl<'a> Reported<'a> {
    pub(crate) fn from_callback(callback: &'a wire::Callback) -> Self {
        Reported {
            sum: callback.payment.as_ref().and_then(|p| p.sum.as_ref()),
            account: callback.account.as_ref(),
            customer: callback.customer.as_ref(),
        }
    }

    pub(crate) fn from_status(status: &'a wire::StatusResponse) -> Self {
        Reported {
            sum: status.payment.as_ref().and_then(|p| p.sum.as_ref()),
            account: status.account.as_ref(),
            customer: status.customer.as_ref(),
        }
    }
}

/// How the reported payment differs from `request`, or `None` when it is this payout. The
/// text masks phone numbers.
pub(crate) fn difference(request: &wire::PayoutRequest, reported: Reported<'_>) -> Option<String> {
    let mut problems = Vec::new();
    let expected = &request.payment;
    match reported.sum {
        None => problems.push(
            "the platform reports no payment.sum, so its amount cannot be matched".to_owned(),
        ),
        Some(sum)
            if sum.amount != expected.amount
                || !sum.currency.eq_ignore_ascii_case(&expected.currency) =>
        {
            problems.push(format!(
                "the platform reports {} {}, this payout is {} {} (minor units)",
                sum.amount,
                printable(&sum.currency),
                expected.amount,
                expected.currency
            ));
        }
        Some(_) => {}
    }
    if let Some(number) = reported.account.and_then(|a| a.number.as_deref())
        && !same_phone(number, &request.account.number)
    {
        problems.push(format!(
            "the platform reports account.number {}, this payout is to {}",
            mask_phone(&printable(number)),
            mask_phone(&request.account.number)
        ));
    }
    if let Some(id) = reported.customer.and_then(|c| c.id.as_deref())
        && id != request.customer.id
    {
        problems.push(format!(
            "the platform reports customer.id {:?}, this payout is for {:?}",
            printable(id),
            request.customer.id
        ));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// Whether a reported phone number is `ours` (11 digits). Separators (spaces, `-`, `(`, `)`,
/// `+`, `.`) are ignored; any other character stands for a masked digit (`*`, `x`, `•`, `#`,
/// …), and a masked number matches when its length and every visible digit (at least four)
/// do.
fn same_phone(reported: &str, ours: &str) -> bool {
    let is_separator = |c: char| c.is_whitespace() || matches!(c, '-' | '(' | ')' | '+' | '.');
    let reported: Vec<char> = reported.chars().filter(|c| !is_separator(*c)).collect();
    let ours: Vec<char> = ours.chars().filter(char::is_ascii_digit).collect();
    let visible = reported.iter().filter(|c| c.is_ascii_digit()).count();
    reported.len() == ours.len()
        && visible >= 4
        && reported
            .iter()
            .zip(&ours)
            .all(|(r, o)| !r.is_ascii_digit() || r == o)
}

/// At most 40 characters of a reported value, for a message.
fn printable(value: &str) -> String {
    value.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rp_model::{CustomerId, Money, Msisdn, Payout, ProjectId};

    fn request() -> wire::PayoutRequest {
        Payout::builder()
            .payment_id(rp_model::PaymentId::new("p-1").unwrap())
            .phone(Msisdn::parse("+7 701 123 45 67").unwrap())
            .amount(Money::kzt(1500).unwrap())
            .customer_id(CustomerId::new("c-1").unwrap())
            .build()
            .unwrap()
            .to_request(ProjectId::new(1).unwrap())
    }

    fn sum(amount: u64, currency: &str) -> wire::Sum {
        serde_json::from_value(serde_json::json!({"amount": amount, "currency": currency})).unwrap()
    }

    fn account(number: &str) -> wire::Account {
        serde_json::from_value(serde_json::json!({ "number": number })).unwrap()
    }

    fn customer(id: &str) -> wire::CustomerRef {
        serde_json::from_value(serde_json::json!({ "id": id })).unwrap()
    }

    fn check(
        sum: Option<&wire::Sum>,
        a: Option<&wire::Account>,
        c: Option<&wire::CustomerRef>,
    ) -> Option<String> {
        difference(
            &request(),
            Reported {
                sum,
                account: a,
                customer: c,
            },
        )
    }

    #[test]
    fn the_same_payout_matches() {
        let s = sum(150_000, "kzt");
        assert_eq!(check(Some(&s), None, None), None);
        for number in [
            "77011234567",
            "+7 (701) 123-45-67",
            "7701***4567",
            "7701XXXX567",
        ] {
            let a = account(number);
            assert_eq!(
                check(Some(&s), Some(&a), Some(&customer("c-1"))),
                None,
                "{number}"
            );
        }
    }

    #[test]
    fn every_difference_is_named_with_the_phone_masked() {
        let s = sum(150_000, "KZT");
        let other_sum = sum(150_001, "KZT");
        let other_currency = sum(150_000, "USD");
        assert!(check(None, None, None).unwrap().contains("no payment.sum"));
        assert!(
            check(Some(&other_sum), None, None)
                .unwrap()
                .contains("150001 KZT")
        );
        assert!(
            check(Some(&other_currency), None, None)
                .unwrap()
                .contains("USD")
        );
        let text = check(Some(&s), Some(&account("77019999999")), None).unwrap();
        assert!(
            text.contains("7701***9999") && text.contains("7701***4567"),
            "{text}"
        );
        assert!(
            !text.contains("77019999999") && !text.contains("77011234567"),
            "{text}"
        );
        for number in [
            "7701***4568",
            "701***4567",
            "*******4568",
            "**********7",
            "",
            "7701123456",
        ] {
            assert!(
                check(Some(&s), Some(&account(number)), None).is_some(),
                "{number}"
            );
        }
        let text = check(Some(&s), None, Some(&customer("c-2"))).unwrap();
        assert!(text.contains("customer.id \"c-2\""), "{text}");
        let all = check(
            Some(&other_sum),
            Some(&account("77019999999")),
            Some(&customer("c-2")),
        )
        .unwrap();
        assert_eq!(all.matches("; ").count(), 2, "{all}");
    }
}
