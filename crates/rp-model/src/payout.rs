//! A validated payout and the builder that makes one.

use std::fmt;
use std::net::IpAddr;

use serde_json::Value;

use crate::wire::{self, Extra, General};
use crate::{CustomerId, Error, Money, Msisdn, Operator, PaymentId, ProjectId};

/// A payout that is valid by construction: a payable KZ mobile number, a positive amount in
/// any currency of the table (`spec/currencies.tsv`; the platform converts to KZT and the
/// callback then carries `operation.sum_initial` and `sum_converted`),
/// a payment ID and a customer ID. Build one with [`Payout::builder`]; turn it into the wire
/// request with [`Payout::to_request`].
///
/// ```
/// use rp_model::{CustomerId, Money, Msisdn, PaymentId, Payout, ProjectId};
///
/// let payout = Payout::builder()
///     .payment_id(PaymentId::new("payout-47")?)
///     .phone(Msisdn::parse("+7 701 123 45 67")?)
///     .amount(Money::parse("1 500,00", rp_model::Currency::KZT)?)
///     .customer_id(CustomerId::new("customer-123")?)
///     .description("Cashback for May")
///     .build()?;
///
/// let request = payout.to_request(ProjectId::new(1234)?);
/// let json = serde_json::to_value(&request).unwrap();
/// assert_eq!(json["account"]["number"], "77011234567");
/// assert_eq!(json["payment"]["amount"], 150000);
/// assert_eq!(json["payment"]["currency"], "KZT");
/// assert_eq!(json["general"]["payment_id"], "payout-47");
/// # Ok::<(), rp_model::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Payout {
    payment_id: PaymentId,
    phone: Msisdn,
    amount: Money,
    customer: CustomerDetails,
    operator: Option<Operator>,
    description: Option<String>,
    params: Extra,
}

#[derive(Clone, PartialEq, Default)]
struct CustomerDetails {
    id: Option<CustomerId>,
    ip_address: Option<IpAddr>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
}

impl Payout {
    /// Starts a payout.
    pub fn builder() -> PayoutBuilder {
        PayoutBuilder::default()
    }

    /// The payment ID: the idempotency key of this payout.
    pub fn payment_id(&self) -> &PaymentId {
        &self.payment_id
    }

    /// The phone number to credit.
    pub fn phone(&self) -> Msisdn {
        self.phone
    }

    /// The amount as requested (always positive). In a currency other than KZT the platform
    /// converts it: the tenge paid out is `operation.sum_converted` of the callback.
    pub fn amount(&self) -> Money {
        self.amount
    }

    /// The customer ID.
    pub fn customer_id(&self) -> Option<&CustomerId> {
        self.customer.id.as_ref()
    }

    /// The operator the merchant named, if any.
    pub fn operator(&self) -> Option<&Operator> {
        self.operator.as_ref()
    }

    /// The description.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The wire request for `project` (unsigned: `rp-sign` adds `general.signature`).
    pub fn to_request(&self, project: ProjectId) -> wire::PayoutRequest {
        wire::PayoutRequest {
            general: General::new(project.get(), Some(self.payment_id.as_str().to_owned())),
            customer: wire::Customer {
                id: self
                    .customer
                    .id
                    .as_ref()
                    .map(|id| id.as_str().to_owned())
                    .unwrap_or_default(),
                ip_address: self.customer.ip_address.map(|ip| ip.to_string()),
                first_name: self.customer.first_name.clone(),
                last_name: self.customer.last_name.clone(),
                email: self.customer.email.clone(),
                extra: Extra::new(),
            },
            account: wire::PayoutAccount {
                number: self.phone.as_str().to_owned(),
                service_provider: self.operator.clone(),
                extra: Extra::new(),
            },
            payment: wire::PaymentAmount {
                amount: self.amount.minor_units(),
                currency: self.amount.currency().code().to_owned(),
                description: self.description.clone(),
                extra: Extra::new(),
            },
            extra: self.params.clone(),
        }
    }
}

/// Builds a [`Payout`]; [`PayoutBuilder::build`] checks everything at once and names every
/// missing or invalid field.
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until build() is called"]
pub struct PayoutBuilder {
    payment_id: Option<PaymentId>,
    phone: Option<Msisdn>,
    amount: Option<Money>,
    customer: CustomerDetails,
    operator: Option<Operator>,
    description: Option<String>,
    params: Extra,
    param_errors: Vec<Error>,
}

impl fmt::Debug for Payout {
    /// The phone is masked and the customer's personal data redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payout")
            .field("payment_id", &self.payment_id)
            .field("phone", &self.phone)
            .field("amount", &self.amount)
            .field("customer", &self.customer)
            .field("operator", &self.operator)
            .field("description", &self.description)
            .field("params", &self.params.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl fmt::Debug for CustomerDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |present: bool| if present { Some("***") } else { None };
        f.debug_struct("CustomerDetails")
            .field("id", &self.id)
            .field("ip_address", &redacted(self.ip_address.is_some()))
            .field("first_name", &redacted(self.first_name.is_some()))
            .field("last_name", &redacted(self.last_name.is_some()))
            .field("email", &redacted(self.email.is_some()))
            .finish()
    }
}

/// The largest integer every one of the platform's SDKs signs exactly (2^53 − 1): JavaScript
/// and Go round integers beyond it (`spec/signature.md` §3).
const MAX_EXACT_INTEGER: u64 = (1 << 53) - 1;

/// Top-level members the builder fills itself; `param` may not set them.
const RESERVED: [&str; 6] = [
    "general",
    "customer",
    "account",
    "payment",
    "signature",
    "frame_mode",
];

impl PayoutBuilder {
    /// The payment ID (required). Reuse it, never replace it, when retrying this payout.
    pub fn payment_id(mut self, id: PaymentId) -> Self {
        self.payment_id = Some(id);
        self
    }

    /// The phone number to credit (required).
    pub fn phone(mut self, phone: Msisdn) -> Self {
        self.phone = Some(phone);
        self
    }

    /// The amount (required): positive, in any currency of [`Currency`](crate::Currency)'s table. KZT is paid
    /// out as is; another currency is converted by the platform (its rate, its rounding), and
    /// the project must have that currency enabled (else code 3023).
    pub fn amount(mut self, amount: Money) -> Self {
        self.amount = Some(amount);
        self
    }

    /// The customer ID (required).
    pub fn customer_id(mut self, id: CustomerId) -> Self {
        self.customer.id = Some(id);
        self
    }

    /// The customer's IP address.
    pub fn customer_ip(mut self, ip: IpAddr) -> Self {
        self.customer.ip_address = Some(ip);
        self
    }

    /// The customer's first and last name.
    pub fn customer_name(mut self, first: impl Into<String>, last: impl Into<String>) -> Self {
        self.customer.first_name = Some(first.into());
        self.customer.last_name = Some(last.into());
        self
    }

    /// The customer's email address.
    pub fn customer_email(mut self, email: impl Into<String>) -> Self {
        self.customer.email = Some(email.into());
        self
    }

    /// The operator, when the merchant knows it. The number's prefix is only a hint (numbers
    /// are portable), so this is never filled in from the prefix.
    pub fn operator(mut self, operator: Operator) -> Self {
        self.operator = Some(operator);
        self
    }

    /// A description of the payout.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// An optional top-level parameter the API allows, e.g. `callback` with
    /// `{"delay": 60}`. Keys the builder fills itself (`general`, `customer`, `account`,
    /// `payment`), `signature` and `frame_mode` are refused, and so is anything the platform's
    /// SDKs sign differently (`spec/signature.md` §0): keys other than `[a-z_]+` (digits,
    /// upper case, `:`), `null`, floating-point numbers, integers beyond 2^53 − 1, arrays of
    /// more than 10 items, and `signature` at any depth.
    pub fn param(mut self, key: impl Into<String>, value: Value) -> Self {
        let key = key.into();
        match check_param(&key, &value) {
            Ok(()) => {
                self.params.insert(key, value);
            }
            Err(reason) => self.param_errors.push(Error::InvalidParam { key, reason }),
        }
        self
    }

    /// Checks the payout.
    ///
    /// # Errors
    /// [`Error::Invalid`] listing every problem: missing fields, an amount that is zero or
    /// above 2^53 − 1 minor units, refused parameters, a `;` in a text field ([`Error::SeparatorInValue`]).
    pub fn build(self) -> Result<Payout, Error> {
        let mut problems = self.param_errors;
        let missing = |field: &'static str| Error::MissingField { field };
        if self.payment_id.is_none() {
            problems.push(missing("payment_id"));
        }
        match (&self.phone, &self.operator) {
            (None, _) => problems.push(missing("phone")),
            // A range no payout operator serves (760 Kulan, 762 Nursat, …): refused here,
            // unless the merchant names the operator the number was moved to.
            (Some(phone), None) => {
                if let Some(info) = phone.operator_hint().filter(|i| i.operators.is_empty()) {
                    problems.push(Error::PhoneNoPayoutOperator {
                        masked: phone.masked(),
                        prefix: info.prefix.to_owned(),
                        company: info
                            .company
                            .trim_end_matches(" (not a payout operator)")
                            .to_owned(),
                    });
                }
            }
            (Some(_), Some(_)) => {}
        }
        if self.customer.id.is_none() {
            problems.push(missing("customer_id"));
        }
        match self.amount {
            None => problems.push(missing("amount")),
            Some(amount) if amount.is_zero() => problems.push(Error::ZeroAmount),
            Some(amount) if amount.minor_units() > MAX_EXACT_INTEGER => {
                problems.push(Error::InvalidAmount {
                    input: format!("{amount:#}"),
                    reason: "it is above 90 071 992 547 409,91 tenge (2^53 − 1 tiyn), which the platform's SDKs do not sign exactly",
                });
            }
            Some(_) => {}
        }
        let texts = [
            ("customer.first_name", &self.customer.first_name),
            ("customer.last_name", &self.customer.last_name),
            ("customer.email", &self.customer.email),
            ("description", &self.description),
        ];
        for (field, text) in texts {
            if text.as_deref().is_some_and(|t| t.contains(';')) {
                problems.push(Error::SeparatorInValue {
                    field: field.to_owned(),
                });
            }
        }
        match (self.payment_id, self.phone, self.amount, problems.len()) {
            (Some(payment_id), Some(phone), Some(amount), 0) => Ok(Payout {
                payment_id,
                phone,
                amount,
                customer: self.customer,
                operator: self.operator,
                description: self.description,
                params: self.params,
            }),
            _ => Err(if problems.len() == 1 {
                problems.remove(0)
            } else {
                Error::Invalid { problems }
            }),
        }
    }
}

fn check_param(key: &str, value: &Value) -> Result<(), &'static str> {
    if RESERVED.contains(&key) {
        return Err("it is set by the builder or the signer, not as a parameter");
    }
    check_key(key)?;
    check_value(value)
}

fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("the key is empty");
    }
    if !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return Err(
            "keys other than lower-case letters and `_` (digits, `:`, upper case) sign differently across the platform's SDKs",
        );
    }
    if key == "frame_mode" || key == "signature" {
        return Err("`frame_mode` and `signature` are never signed as parameters");
    }
    Ok(())
}

fn check_value(value: &Value) -> Result<(), &'static str> {
    match value {
        Value::Null => Err("null signs differently across the platform's SDKs; leave the key out"),
        Value::Number(n) if n.is_f64() => {
            Err("floating-point numbers sign differently across the platform's SDKs; send integers")
        }
        Value::Number(n)
            if n.as_u64()
                .or_else(|| n.as_i64().map(i64::unsigned_abs))
                .is_none_or(|v| v > MAX_EXACT_INTEGER) =>
        {
            Err(
                "integers beyond 2^53 − 1 sign differently across the platform's SDKs; send them as strings",
            )
        }
        Value::Array(items) if items.len() > 10 => {
            Err("arrays longer than 10 items sign differently across the platform's SDKs")
        }
        Value::Array(items) => items.iter().try_for_each(check_value),
        Value::Object(members) => members.iter().try_for_each(|(k, v)| {
            check_key(k)?;
            check_value(v)
        }),
        Value::String(text) if text.contains(';') => Err(
            "a `;` inside a value is the signature's line separator; remove it or write `,` instead",
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;
    use serde_json::json;

    fn base() -> PayoutBuilder {
        Payout::builder()
            .payment_id(PaymentId::new("p-1").unwrap())
            .phone(Msisdn::parse("87011234567").unwrap())
            .amount(Money::kzt(1500).unwrap())
            .customer_id(CustomerId::new("c-1").unwrap())
    }

    #[test]
    fn builds_the_wire_request() {
        let payout = base()
            .customer_ip("198.51.100.47".parse().unwrap())
            .customer_name("John", "Doe")
            .customer_email("johndoe@example.com")
            .operator(Operator::Kcell)
            .param("callback", json!({"delay": 60}))
            .build()
            .unwrap();
        let value = serde_json::to_value(payout.to_request(ProjectId::new(1234).unwrap())).unwrap();
        assert_eq!(
            value,
            json!({
                "general": {"project_id": 1234, "payment_id": "p-1"},
                "customer": {"id": "c-1", "ip_address": "198.51.100.47", "first_name": "John",
                             "last_name": "Doe", "email": "johndoe@example.com"},
                "account": {"number": "77011234567", "service_provider": "KCELL"},
                "payment": {"amount": 150000, "currency": "KZT"},
                "callback": {"delay": 60}
            })
        );
    }

    #[test]
    fn names_every_missing_field() {
        let error = Payout::builder().build().unwrap_err();
        assert_eq!(
            error.to_string(),
            "the payout is invalid: payment_id is required; phone is required; \
             customer_id is required; amount is required"
        );
    }

    #[test]
    fn debug_redacts_personal_data() {
        let payout = base()
            .customer_ip("198.51.100.47".parse().unwrap())
            .customer_name("John", "Doe")
            .customer_email("johndoe@example.com")
            .build()
            .unwrap();
        let debug = format!("{payout:?}");
        for secret in ["77011234567", "198.51.100.47", "John", "Doe", "johndoe"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(debug.contains("7701***4567"), "{debug}");
    }

    #[test]
    fn refuses_ranges_no_payout_operator_serves_unless_an_operator_is_named() {
        for prefix in ["760", "762", "763", "764", "785"] {
            let phone = Msisdn::parse(&format!("+7 {prefix} 123 45 67")).unwrap();
            let error = base().phone(phone).build().unwrap_err();
            let message = error.to_string();
            assert!(
                matches!(error, Error::PhoneNoPayoutOperator { .. }),
                "{prefix}: {message}"
            );
            assert!(
                message.starts_with(&format!(
                    "phone number 7{prefix}***4567 is in the {prefix} range of "
                )),
                "{message}"
            );
            assert!(message.contains("name that operator (ACTIV"), "{message}");
            assert!(!message.contains("1234567"), "{message}");
            // Named explicitly (a number moved to a payout operator): sent as asked.
            assert!(
                base()
                    .phone(phone)
                    .operator(Operator::Tele2)
                    .build()
                    .is_ok()
            );
        }
        let kulan = base()
            .phone(Msisdn::parse("87601234567").unwrap())
            .build()
            .unwrap_err();
        assert_eq!(
            kulan.to_string(),
            "phone number 7760***4567 is in the 760 range of Kulan, which no payout operator \
             serves; if the number was moved to one, name that operator (ACTIV, ALTEL, BEELINE, \
             KCELL, TELE2)"
        );
        // Every other range of the table has a payout operator.
        for info in crate::PrefixInfo::all() {
            let phone = Msisdn::parse(&format!("7{}1234567", info.prefix)).unwrap();
            assert_eq!(
                base().phone(phone).build().is_ok(),
                !info.operators.is_empty(),
                "{}",
                info.prefix
            );
        }
    }

    #[test]
    fn refuses_amounts_the_sdks_cannot_sign_exactly() {
        let error = base()
            .amount(Money::kzt_minor(MAX_EXACT_INTEGER + 1))
            .build()
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("above 90 071 992 547 409,91 tenge (2^53 − 1 tiyn)"),
            "{error}"
        );
        assert!(
            base()
                .amount(Money::kzt_minor(MAX_EXACT_INTEGER))
                .build()
                .is_ok()
        );
    }

    #[test]
    fn refuses_zero_and_accepts_other_currencies_for_conversion() {
        let zero = base().amount(Money::kzt_minor(0)).build().unwrap_err();
        assert_eq!(zero.to_string(), "the amount must be greater than zero");
        let usd = base()
            .amount(Money::from_minor(10_000, Currency::USD))
            .build()
            .unwrap();
        let request = serde_json::to_value(usd.to_request(ProjectId::new(1).unwrap())).unwrap();
        assert_eq!(request["payment"]["amount"], 10_000);
        assert_eq!(request["payment"]["currency"], "USD");
        let yen = base()
            .amount(Money::from_minor(0, Currency::JPY))
            .build()
            .unwrap_err();
        assert_eq!(yen.to_string(), "the amount must be greater than zero");
    }

    #[test]
    fn refuses_the_signature_separator_in_every_text_field() {
        let error = base()
            .description("refund; order 17")
            .customer_name("A;B", "C")
            .customer_email("x;y@example.com")
            .build()
            .unwrap_err()
            .to_string();
        for field in ["description", "customer.first_name", "customer.email"] {
            assert!(
                error.contains(&format!("{field} contains `;`")),
                "{field}: {error}"
            );
        }
        assert!(!error.contains("customer.last_name"), "{error}");
        let error = base()
            .customer_name("A", "B;")
            .build()
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "customer.last_name contains `;`, which the platform's signature uses as its line separator; remove it or write `,` instead"
        );
        // The same text with `,` is fine.
        assert!(base().description("refund, order 17").build().is_ok());
    }

    #[test]
    fn refuses_params_the_signature_cannot_carry() {
        let cases = [
            (
                "general",
                json!({}),
                "it is set by the builder or the signer",
            ),
            (
                "signature",
                json!("x"),
                "it is set by the builder or the signer",
            ),
            (
                "a:b",
                json!(1),
                "keys other than lower-case letters and `_`",
            ),
            (
                "line2",
                json!(1),
                "keys other than lower-case letters and `_`",
            ),
            (
                "Upper",
                json!(1),
                "keys other than lower-case letters and `_`",
            ),
            ("x", json!(null), "null signs differently"),
            (
                "x",
                json!({"y": 9_007_199_254_740_992_u64}),
                "integers beyond 2^53",
            ),
            ("x", json!({"signature": "s"}), "never signed as parameters"),
            ("", json!(1), "the key is empty"),
            ("x", json!(1.5), "floating-point numbers"),
            (
                "x",
                json!({"y": [1, {"z:w": 1}]}),
                "keys other than lower-case letters and `_`",
            ),
            (
                "x",
                json!([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
                "arrays longer than 10 items",
            ),
            ("x", json!({"y": ["a;b"]}), "the signature's line separator"),
        ];
        for (key, value, reason) in cases {
            let error = base().param(key, value).build().unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("parameter {key:?} is refused: ")),
                "{error}"
            );
            assert!(error.contains(reason), "{error}");
        }
    }
}
