//! What a delivery sends, following the Standard Webhooks specification: the signing secret
//! (`whsec_` and Base64), the message ID (stable per event), the JSON body, and the
//! `webhook-signature` header (`v1,` and the Base64 HMAC-SHA256 of `id.timestamp.body`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use rp_ledger::ClaimedDelivery;
use rp_model::ProjectId;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::api::rfc3339;
use crate::web::layout::{decimal_amount, masked_phone};

/// The prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a new signing secret.
const SECRET_BYTES: usize = 32;

/// A new signing secret: `whsec_` and 32 random bytes in Base64.
///
/// # Errors
///
/// The operating system's random source failed.
pub fn new_secret() -> Result<String, String> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a secret: {e}"))?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
}

/// The key bytes of a `whsec_…` secret.
fn secret_key(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD
        .decode(encoded)
        .map_err(|_| "the endpoint's signing secret is not whsec_ and Base64".to_owned())
}

/// The `webhook-signature` header of a message: `v1,` and the Base64 HMAC-SHA256, keyed by
/// the secret's bytes, of `{id}.{timestamp}.{body}`.
///
/// # Errors
///
/// The secret is not `whsec_` and Base64.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let key = secret_key(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key)
        .map_err(|_| "the endpoint's signing secret is unusable".to_owned())?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The message ID of an event: the same for every attempt and every endpoint, so a receiver
/// drops a duplicate by it. `msg_` and 32 hex digits of the SHA-256 of the project, the
/// payment ID and the event's version.
pub fn message_id(project: ProjectId, payment_id: &str, version: u64) -> String {
    let digest = Sha256::digest(format!("{}\n{payment_id}\n{version}", project.get()).as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

/// The event type of a state: `payout.` and the state's label, spaces as `_`
/// (`payout.success`, `payout.partially_paid_out`, `payout.created`).
pub fn event_type(label: &str) -> String {
    format!("payout.{}", label.replace(' ', "_"))
}

/// The event type of a change that kept the payout's state and marked it as needing
/// attention (part of the money came back, a contradicting report): its `data.note` says why.
pub const NEEDS_ATTENTION: &str = "payout.needs_attention";

/// The JSON body of a delivery. Built only from what never changes (the payout's request
/// and the event), so every attempt sends the same bytes. The phone number is masked.
pub fn body(delivery: &ClaimedDelivery) -> Vec<u8> {
    let event = &delivery.event;
    let payout = &delivery.payout;
    let request = &payout.request;
    let data = json!({
        "payment_id": payout.payment_id.as_str(),
        "version": delivery.key.version,
        "state": event.state.label(),
        "previous_state": event.previous.as_ref().map(|p| p.label().to_owned()),
        "settled": event.state.is_settled(),
        "source": event.source.as_text(),
        "code": event.code.as_ref().map(ToString::to_string),
        "message": event.message,
        "note": event.note,
        "phone": masked_phone(payout),
        "amount": decimal_amount(payout),
        "amount_minor": request.payment.amount,
        "currency": request.payment.currency,
        "customer_id": request.customer.id.to_string(),
        "description": request.payment.description,
        "created_at": rfc3339(payout.created_at),
        "metadata": crate::api::body::metadata_json(payout.metadata.as_deref()),
    });
    let value: Value = json!({
        "type": if event.previous.as_ref() == Some(&event.state) {
            NEEDS_ATTENTION.to_owned()
        } else {
            event_type(event.state.label())
        },
        "timestamp": rfc3339(event.at),
        "data": data,
    });
    value.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_the_specifications_example() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, id, 1_614_265_330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(signature("whsec_not base64!", id, 1, body).is_err());
    }

    #[test]
    fn secrets_are_random_and_message_ids_stable() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert!(a.starts_with(SECRET_PREFIX) && a != b);
        assert_eq!(secret_key(&a).unwrap().len(), SECRET_BYTES);
        let project = ProjectId::new(7).unwrap();
        assert_eq!(message_id(project, "p-1", 2), message_id(project, "p-1", 2));
        assert_ne!(message_id(project, "p-1", 2), message_id(project, "p-1", 3));
        assert_eq!(message_id(project, "p-1", 2).len(), 36);
        assert_eq!(
            event_type("partially paid out"),
            "payout.partially_paid_out"
        );
    }
}
