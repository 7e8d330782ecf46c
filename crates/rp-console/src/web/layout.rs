//! The page shell (title bar, navigation, the operator and the logout form) and the small
//! formatters every page uses: money in Kazakh formatting, times in UTC, masked phone numbers,
//! state badges.

use std::time::{SystemTime, UNIX_EPOCH};

use maud::{DOCTYPE, Markup, html};
use rp_model::{Currency, GateTime, Money, Msisdn};
use rp_payout::PayoutRecord;

use crate::auth::Me;

/// The sections of the navigation: `(path, label)`.
const SECTIONS: [(&str, &str); 6] = [
    ("/payments", "Payments"),
    ("/payouts/new", "Manual payments"),
    ("/batches", "Mass payouts"),
    ("/limits", "Limits"),
    ("/attention", "Needs attention"),
    ("/webhooks", "Webhooks"),
];

/// A whole page: `title`, the navigation with `current` marked, and `body`.
pub(crate) fn page(title: &str, me: Option<&Me>, current: &str, body: impl maud::Render) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · rp" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/payments" { "rp" span.muted { " payout desk" } }
                    @if let Some(me) = me {
                        nav {
                            @for (path, label) in SECTIONS {
                                a href=(path) aria-current=[(path == current).then_some("page")] { (label) }
                            }
                        }
                        form.logout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(me.csrf);
                            span.who { (me.name) " · " (me.role.as_str()) }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The hidden CSRF field every form of a signed-in page carries.
pub(crate) fn csrf_field(me: &Me) -> Markup {
    html! { input type="hidden" name="csrf" value=(me.csrf); }
}

/// A payout's amount in Kazakh formatting (`1 500,00 ₸`), or minor units and the code for a
/// currency not in our table.
pub(crate) fn amount(record: &PayoutRecord) -> String {
    let payment = &record.request.payment;
    Currency::from_code(&payment.currency).map_or_else(
        || format!("{} {} (minor units)", payment.amount, payment.currency),
        |currency| Money::from_minor(payment.amount, currency).to_string(),
    )
}

/// A payout's amount as an exact decimal in major units (`1500.00`); `None` for a currency
/// not in our table.
pub(crate) fn decimal_amount(record: &PayoutRecord) -> Option<String> {
    let payment = &record.request.payment;
    Currency::from_code(&payment.currency)
        .map(|currency| Money::from_minor(payment.amount, currency).decimal())
}

/// The phone number of a payout, masked (`7701***4567`); what was recorded, masked by
/// position, when it does not parse.
pub(crate) fn masked_phone(record: &PayoutRecord) -> String {
    let number = &record.request.account.number;
    Msisdn::parse(number).map_or_else(|_| mask_digits(number), |phone| phone.masked())
}

/// Keeps the first 4 and last 4 characters of a text, stars between.
pub(crate) fn mask_digits(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}***{tail}")
}

/// `YYYY-MM-DD HH:MM:SS` UTC.
pub(crate) fn utc(time: SystemTime) -> String {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let gate = GateTime::from_unix_seconds(i64::try_from(seconds).unwrap_or(0));
    gate.as_str()
        .trim_end_matches("+0000")
        .replacen('T', " ", 1)
}

/// A state label as a badge, coloured by what it means.
pub(crate) fn badge(label: &str) -> Markup {
    let kind = match label {
        "success" => "good",
        "decline" | "rejected" | "error" | "payment_id_taken" | "reversed" | "refunded" => "bad",
        "created" | "accepted" | "processing" | "awaiting" => "wait",
        _ => "other",
    };
    html! { span class={"badge " (kind)} { (label) } }
}

/// A path segment, percent-encoded (RFC 3986: every byte but the unreserved `A-Z a-z 0-9 -
/// . _ ~`), so that a payment ID with a space, `+`, `/`, `?` or `#` links to itself.
pub(crate) fn path_segment(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The console's path of a payout.
pub(crate) fn payment_path(id: &rp_model::PaymentId) -> String {
    format!("/payments/{}", path_segment(id.as_str()))
}

/// A query-string value, percent-encoded.
pub(crate) fn url_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A message box: `kind` is `error`, `ok` or `info`.
pub(crate) fn notice(kind: &str, text: &str) -> Markup {
    html! { p class={"notice " (kind)} role=(if kind == "error" { "alert" } else { "status" }) { (text) } }
}

/// Text shown as it is, for bodies kept verbatim (pretty-printed when it is JSON, phone
/// numbers masked).
pub(crate) fn raw_body(raw: &str) -> Markup {
    let shown = serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|mut value| {
            mask_numbers(&mut value);
            serde_json::to_string_pretty(&value).ok()
        })
        .unwrap_or_else(|| "(not JSON; not shown)".to_owned());
    html! { pre.raw { (shown) } }
}

/// Masks every `number` member (the account number) of a signed body for display.
fn mask_numbers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(members) => {
            for (key, member) in members.iter_mut() {
                if key == "number" {
                    if let Some(text) = member.as_str() {
                        *member = serde_json::Value::String(mask_digits(text));
                    }
                } else {
                    mask_numbers(member);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_numbers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_formats() {
        assert_eq!(mask_digits("77011234567"), "7701***4567");
        assert_eq!(mask_digits("123"), "***");
        assert_eq!(
            utc(UNIX_EPOCH + std::time::Duration::from_secs(86_400)),
            "1970-01-02 00:00:00"
        );
        assert_eq!(
            path_segment("order 42+1/x?#%"),
            "order%2042%2B1%2Fx%3F%23%25"
        );
        assert_eq!(path_segment("rp-a_b.c~"), "rp-a_b.c~");
        assert_eq!(
            url_encode("/payments?state=a b"),
            "%2Fpayments%3Fstate%3Da+b"
        );
        let body =
            raw_body(r#"{"account":{"number":"77011234567"},"x":[{"number":"77011234567"}]}"#);
        let text = body.into_string();
        assert!(!text.contains("77011234567"), "{text}");
        assert!(text.contains("7701***4567"));
        assert!(raw_body("<script>").into_string().contains("not JSON"));
    }

    #[test]
    fn text_is_escaped() {
        let shown = page(
            "<b>",
            None,
            "",
            html! { (String::from("<script>alert(1)</script>")) },
        )
        .into_string();
        assert!(!shown.contains("<script>alert"), "{shown}");
        assert!(shown.contains("&lt;script&gt;"));
    }
}
