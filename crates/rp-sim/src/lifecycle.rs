//! A payment's life after acceptance: processing, the final status, callbacks and retries.

use std::sync::Arc;
use std::time::Duration;

use rp_model::wire::{Account, Callback, CustomerRef, Extra, Operation, Payment, Sum};
use rp_model::{CodeInfo, OperationStatus, PaymentStatus, ResponseCode};
use rp_sign::{SecretKey, Signer};
use serde::Deserialize;
use serde_json::Value;

use crate::config::CLARIFICATION_TIMEOUT;
use crate::server::Shared;
use crate::state::{CallbackRecord, Key, SimOperation, SimPayment, now};
use crate::{Error, Magic};

/// The most delivery attempts of one callback (the platform: at most 120 within 11 days).
pub const MAX_CALLBACK_ATTEMPTS: u32 = 120;

/// The platform's retry schedule for a callback that was not answered with HTTP 200, in real
/// time (spec §3): the wait before attempt `attempt` (2..=120). Attempts 2 to 7 follow at
/// 10-second intervals; from attempt 8 the interval is `70 + 10·1.12^(n−4)` seconds, up to 4
/// hours; then every 4 hours. `None` for attempt 1 (sent at once) and beyond 120.
///
/// ```
/// use rp_sim::callback_retry_delay;
/// use std::time::Duration;
///
/// assert_eq!(callback_retry_delay(1), None);
/// assert_eq!(callback_retry_delay(2), Some(Duration::from_secs(10)));
/// assert_eq!(callback_retry_delay(7), Some(Duration::from_secs(10)));
/// assert_eq!(callback_retry_delay(8).unwrap().as_millis(), 85_735); // 70 + 10 * 1.12^4
/// assert_eq!(callback_retry_delay(120), Some(Duration::from_secs(4 * 3600)));
/// assert_eq!(callback_retry_delay(121), None);
/// ```
pub fn callback_retry_delay(attempt: u32) -> Option<Duration> {
    const CAP_MICROS: u128 = 4 * 3600 * 1_000_000;
    match attempt {
        2..=7 => Some(Duration::from_secs(10)),
        8..=MAX_CALLBACK_ATTEMPTS => {
            // 10·1.12^(n−4) seconds in exact integer steps (microseconds), capped.
            let mut growth: u128 = 10_000_000;
            for _ in 4..attempt {
                growth = growth * 112 / 100;
                if growth >= CAP_MICROS {
                    break;
                }
            }
            let micros = (70_000_000 + growth).min(CAP_MICROS);
            Some(Duration::from_micros(
                u64::try_from(micros).unwrap_or(u64::MAX),
            ))
        }
        _ => None,
    }
}

/// "Need clarification": the code of an `awaiting clarification` operation (magic `0008`) and of
/// its decline when no clarification comes.
const NEED_CLARIFICATION: u32 = 3191;

/// The payment status after a partial reversal (magic `0017`; not a named `PaymentStatus`).
const PARTIALLY_REVERSED: &str = "partially reversed";

/// The final outcome forced through `/_sim/payments/{id}/force` or
/// [`RunningSimulator::force`](crate::RunningSimulator::force).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// `success`, code `0`.
    Success,
    /// `decline` with a code (default 20000 General decline).
    Decline {
        /// The decline code.
        #[serde(default = "general_decline")]
        code: ResponseCode,
    },
}

fn general_decline() -> ResponseCode {
    ResponseCode::from_number(20000)
}

/// The final state a payment moves to.
#[derive(Clone, Debug)]
struct Final {
    payment: PaymentStatus,
    operation: OperationStatus,
    code: ResponseCode,
}

impl Final {
    fn success() -> Final {
        Final {
            payment: PaymentStatus::Success,
            operation: OperationStatus::Success,
            code: ResponseCode::from_number(0),
        }
    }

    fn decline(code: ResponseCode) -> Final {
        Final {
            payment: PaymentStatus::Decline,
            operation: OperationStatus::Decline,
            code,
        }
    }

    fn from_outcome(outcome: Outcome) -> Final {
        match outcome {
            Outcome::Success => Final::success(),
            Outcome::Decline { code } => Final::decline(code),
        }
    }

    /// What the magic value (and the attempt) decide.
    fn from_magic(magic: Option<Magic>, accepted_requests: u32) -> Final {
        match magic {
            Some(Magic::Error3062) if accepted_requests <= 1 => Final {
                payment: PaymentStatus::Error,
                operation: OperationStatus::Decline,
                code: ResponseCode::from_number(3062),
            },
            Some(magic) => match magic.decline_code() {
                Some(code) => Final::decline(ResponseCode::from_number(code)),
                None => Final::success(),
            },
            None => Final::success(),
        }
    }
}

/// The platform's message for a code.
pub(crate) fn code_message(code: &ResponseCode) -> String {
    if code.is(0) {
        return "Success".to_owned();
    }
    code.number()
        .and_then(CodeInfo::lookup)
        .map_or_else(|| format!("Code {code}"), |info| info.message.to_owned())
}

/// A callback to deliver: the payload (unsigned) and the status it reports.
#[derive(Clone, Debug)]
struct Job {
    key: Key,
    payload: Callback,
    status: PaymentStatus,
}

/// The callback payload for one operation of a payment.
fn callback_for(payment: &SimPayment, operation: &SimOperation) -> Callback {
    Callback {
        project_id: Some(payment.project_id),
        payment: Some(payment_object(payment, &operation.date)),
        account: Some(account_object(payment)),
        customer: Some(customer_object(payment)),
        operation: Some(operation_object(payment, operation)),
        errors: payment.errors(),
        signature: None,
        extra: Extra::new(),
    }
}

/// One operation as the platform shows it, in a callback's `operation` and in a status
/// response's `operations[]` alike.
pub(crate) fn operation_object(payment: &SimPayment, operation: &SimOperation) -> Operation {
    let sum = Sum {
        amount: operation.amount,
        currency: payment.currency.clone(),
    };
    // Converted on the platform side: what was asked, and the tenge paid out.
    let converted = match (
        payment.rate,
        rp_model::Currency::from_code(&payment.currency),
    ) {
        (Some(rate), Some(from)) => Sum {
            amount: rate.convert(operation.amount, from).unwrap_or(0),
            currency: rp_model::Currency::KZT.code().to_owned(),
        },
        _ => sum.clone(),
    };
    let mut provider = Extra::new();
    provider.insert("id".to_owned(), Value::from(payment.project_id));
    provider.insert(
        "payment_id".to_owned(),
        Value::from(if operation.status == OperationStatus::Success {
            format!("SIM-{}", operation.id)
        } else {
            String::new()
        }),
    );
    provider.insert("auth_code".to_owned(), Value::from(""));
    provider.insert("endpoint_id".to_owned(), Value::from(payment.project_id));
    provider.insert("date".to_owned(), Value::from(operation.date.as_str()));
    Operation {
        id: Some(operation.id),
        kind: Some(operation.kind.clone()),
        status: Some(operation.status.clone()),
        date: Some(operation.date.clone()),
        created_date: Some(operation.created_date.clone()),
        request_id: Some(operation.request_id.clone()),
        sum_initial: Some(sum),
        sum_converted: Some(converted),
        code: Some(operation.code.clone()),
        message: Some(operation.message.clone()),
        provider: Some(provider),
        extra: Extra::new(),
    }
}

pub(crate) fn payment_object(payment: &SimPayment, date: &rp_model::GateTime) -> Payment {
    Payment {
        id: Some(payment.payment_id.clone()),
        kind: Some("payout".to_owned()),
        status: Some(payment.status.clone()),
        date: Some(date.clone()),
        method: Some("mobile".to_owned()),
        sum: Some(Sum {
            amount: payment.amount,
            currency: payment.currency.clone(),
        }),
        description: Some(payment.description.clone()),
        extra: Extra::new(),
    }
}

pub(crate) fn account_object(payment: &SimPayment) -> Account {
    Account {
        number: Some(payment.phone.as_str().to_owned()),
        operator: Some(payment.operator.clone()),
        extra: Extra::new(),
    }
}

pub(crate) fn customer_object(payment: &SimPayment) -> CustomerRef {
    CustomerRef {
        id: Some(payment.customer_id.clone()),
        extra: Extra::new(),
    }
}

/// The payment and operation as a callback would show them now.
fn snapshot(shared: &Shared, key: &Key) -> Option<Job> {
    let state = shared.state();
    let payment = &state.get(key)?.payment;
    let operation = payment.last_operation()?;
    Some(Job {
        key: key.clone(),
        payload: callback_for(payment, operation),
        status: payment.status.clone(),
    })
}

/// Sets the final status of operation `operation` if it is still the processing one.
fn finish(
    shared: &Shared,
    key: &Key,
    operation: rp_model::OperationId,
    outcome: &Final,
) -> Option<Job> {
    conclude(shared, key, operation, &PaymentStatus::Processing, outcome)
}

/// Moves operation `operation` (the newest) and its payment from status `from` to `outcome`.
fn conclude(
    shared: &Shared,
    key: &Key,
    operation: rp_model::OperationId,
    from: &PaymentStatus,
    outcome: &Final,
) -> Option<Job> {
    {
        let mut state = shared.state();
        let entry = state.get_mut(key)?;
        let payment = &mut entry.payment;
        if payment.status != *from {
            return None;
        }
        let last = payment.operations.last_mut()?;
        if last.id != operation {
            return None;
        }
        last.status = outcome.operation.clone();
        last.code = outcome.code.clone();
        last.message = code_message(&outcome.code);
        last.date = now();
        payment.status = outcome.payment.clone();
    }
    tracing::info!(
        payment_id = %key.1,
        status = %outcome.payment,
        code = %outcome.code,
        "rp-sim payment final"
    );
    snapshot(shared, key)
}

/// Starts processing an accepted payout (operation `operation` of payment `key`).
pub(crate) fn spawn_processing(shared: &Arc<Shared>, key: Key, operation: rp_model::OperationId) {
    let task_shared = Arc::clone(shared);
    shared.spawn(async move { process(task_shared, key, operation).await });
}

async fn process(shared: Arc<Shared>, key: Key, operation: rp_model::OperationId) {
    if !shared.sleep(shared.processing_delay).await {
        return;
    }
    let Some((magic, accepted, delay)) = shared.state().get(&key).map(|entry| {
        (
            entry.payment.magic,
            entry.payment.accepted_requests,
            entry.callback_delay,
        )
    }) else {
        return;
    };
    if magic == Some(Magic::NoCallback) {
        return;
    }
    // The `processing` view, for the stale callback of magic 0012.
    let stale = snapshot(&shared, &key);
    let finished = match magic {
        Some(Magic::PartiallyPaidOut) => split(&shared, &key, operation),
        Some(Magic::AwaitingClarification) => finish(
            &shared,
            &key,
            operation,
            &Final {
                payment: PaymentStatus::AwaitingClarification,
                operation: OperationStatus::AwaitingClarification,
                code: ResponseCode::from_number(NEED_CLARIFICATION),
            },
        ),
        _ => finish(
            &shared,
            &key,
            operation,
            &Final::from_magic(magic, accepted),
        ),
    };
    let Some(job) = finished else {
        return;
    };
    // No clarification ever comes: the platform declines it 30 minutes later.
    let clarification_deadline =
        tokio::time::Instant::now() + shared.time_scale.apply(CLARIFICATION_TIMEOUT);
    if magic == Some(Magic::LostCallback) {
        return;
    }
    if !delay.is_zero() && !shared.sleep(shared.time_scale.apply(delay)).await {
        return;
    }
    match magic {
        Some(Magic::DuplicateCallback) => {
            deliver(&shared, &job, true).await;
            deliver(&shared, &job, true).await;
        }
        Some(Magic::OutOfOrderCallbacks) => {
            deliver(&shared, &job, true).await;
            if let Some(stale) = stale {
                deliver(&shared, &stale, true).await;
            }
        }
        Some(Magic::BadSignature) => deliver(&shared, &job, false).await,
        Some(Magic::LateCallback) => {
            if shared
                .sleep(shared.processing_delay.saturating_mul(9))
                .await
            {
                deliver(&shared, &job, true).await;
            }
        }
        Some(Magic::Reversed | Magic::PartiallyReversed) => {
            deliver(&shared, &job, true).await;
            let partial = magic == Some(Magic::PartiallyReversed);
            if shared.sleep(shared.processing_delay).await
                && let Some(reversal) = reverse(&shared, &key, partial)
            {
                deliver(&shared, &reversal, true).await;
            }
        }
        Some(Magic::AwaitingClarification) => {
            deliver(&shared, &job, true).await;
            let left =
                clarification_deadline.saturating_duration_since(tokio::time::Instant::now());
            if shared.sleep(left).await
                && let Some(decline) = conclude(
                    &shared,
                    &key,
                    operation,
                    &PaymentStatus::AwaitingClarification,
                    &Final::decline(ResponseCode::from_number(NEED_CLARIFICATION)),
                )
            {
                deliver(&shared, &decline, true).await;
            }
        }
        _ => deliver(&shared, &job, true).await,
    }
}

/// Splits a processing payout (magic `0007`): the first part (amount − amount/2) is paid by
/// operation `operation`, a second `payout` operation for the rest (amount/2) is declined
/// (code 20000), and the payment is `partially paid out`.
fn split(shared: &Shared, key: &Key, operation: rp_model::OperationId) -> Option<Job> {
    {
        let mut state = shared.state();
        let id = state.next_operation_id();
        let entry = state.get_mut(key)?;
        let payment = &mut entry.payment;
        if payment.status != PaymentStatus::Processing {
            return None;
        }
        let rest = payment.amount / 2;
        let at = now();
        let first = payment.operations.last_mut()?;
        if first.id != operation {
            return None;
        }
        first.status = OperationStatus::Success;
        first.code = ResponseCode::from_number(0);
        first.message = code_message(&first.code);
        first.amount = payment.amount - rest;
        first.date = at.clone();
        let request_id = first.request_id.clone();
        let declined = ResponseCode::from_number(20000);
        payment.operations.push(SimOperation {
            id,
            kind: "payout".to_owned(),
            status: OperationStatus::Decline,
            amount: rest,
            message: code_message(&declined),
            code: declined,
            request_id,
            created_date: at.clone(),
            date: at,
        });
        payment.status = PaymentStatus::PartiallyPaidOut;
    }
    tracing::info!(payment_id = %key.1, "rp-sim payment partially paid out");
    snapshot(shared, key)
}

/// Reverses a successful payout: in full (magic `0015`, status `reversed`) or half of it
/// (magic `0017`, status `partially reversed`), with a `reversal` operation.
fn reverse(shared: &Shared, key: &Key, partial: bool) -> Option<Job> {
    {
        let mut state = shared.state();
        let request_id = state.next_request_id();
        let id = state.next_operation_id();
        let entry = state.get_mut(key)?;
        if entry.payment.status != PaymentStatus::Success {
            return None;
        }
        let at = now();
        let amount = if partial {
            entry.payment.amount / 2
        } else {
            entry.payment.amount
        };
        entry.payment.operations.push(SimOperation {
            id,
            kind: "reversal".to_owned(),
            status: OperationStatus::Success,
            amount,
            code: ResponseCode::from_number(0),
            message: "Success".to_owned(),
            request_id,
            created_date: at.clone(),
            date: at,
        });
        entry.payment.status = if partial {
            PaymentStatus::parse(PARTIALLY_REVERSED)
        } else {
            PaymentStatus::Reversed
        };
    }
    tracing::info!(payment_id = %key.1, partial, "rp-sim payment reversed");
    snapshot(shared, key)
}

/// POSTs a callback until it is answered with HTTP 200, on the platform's schedule.
async fn deliver(shared: &Arc<Shared>, job: &Job, valid_signature: bool) {
    let Some((url, sequence)) = ({
        let mut state = shared.state();
        state.get_mut(&job.key).and_then(|entry| {
            if entry.callbacks_disabled {
                return None;
            }
            let url = entry.callback_url.clone()?;
            entry.payment.callbacks_sent = entry.payment.callbacks_sent.saturating_add(1);
            Some((url, entry.payment.callbacks_sent))
        })
    }) else {
        return;
    };
    let Some(project) = shared.projects.get(&job.key.0) else {
        return;
    };
    let signed = if valid_signature {
        project.signer.sign_callback_body(&job.payload)
    } else {
        // Signed with a key the merchant does not have: well-formed, but wrong.
        Signer::new(&SecretKey::from("rp-sim: not the project's key"))
            .sign_callback_body(&job.payload)
    };
    let body = match signed {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, payment_id = %job.key.1, "rp-sim could not sign a callback");
            return;
        }
    };
    for attempt in 1..=MAX_CALLBACK_ATTEMPTS {
        let answer = shared
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        let (http_status, error) = match answer {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(error) => (None, Some(error.to_string())),
        };
        tracing::info!(
            payment_id = %job.key.1,
            status = %job.status,
            attempt,
            http_status,
            "rp-sim callback attempt"
        );
        shared.state().callbacks.push(CallbackRecord {
            at: now(),
            project_id: job.key.0,
            payment_id: job.key.1.clone(),
            payment_status: job.status.clone(),
            url: url.clone(),
            sequence,
            attempt,
            http_status,
            error,
            signature_valid: valid_signature,
        });
        if http_status == Some(200) {
            return;
        }
        let Some(wait) = callback_retry_delay(attempt + 1) else {
            return;
        };
        if !shared.sleep(shared.time_scale.apply(wait)).await {
            return;
        }
    }
}

/// Forces the outcome of a `processing` payment and sends its callback.
pub(crate) fn force(
    shared: &Arc<Shared>,
    payment_id: &str,
    outcome: Outcome,
) -> Result<SimPayment, Error> {
    let (key, operation, magic) = {
        let state = shared.state();
        let entry = state
            .find(payment_id)
            .ok_or_else(|| Error::UnknownPayment {
                payment_id: payment_id.to_owned(),
            })?;
        let payment = &entry.payment;
        let operation = payment.last_operation().map(|op| op.id);
        match operation {
            Some(operation) if payment.status == PaymentStatus::Processing => (
                (payment.project_id, payment.payment_id.clone()),
                operation,
                payment.magic,
            ),
            _ => {
                return Err(Error::NotProcessing {
                    payment_id: payment_id.to_owned(),
                    status: payment.status.to_string(),
                });
            }
        }
    };
    let final_state = Final::from_outcome(outcome);
    let job =
        finish(shared, &key, operation, &final_state).ok_or_else(|| Error::NotProcessing {
            payment_id: payment_id.to_owned(),
            status: "changed while forcing".to_owned(),
        })?;
    // "No callback ever" and "lost callback" hold for forced results too: only the status
    // endpoint tells.
    if !matches!(magic, Some(Magic::NoCallback | Magic::LostCallback)) {
        let task_shared = Arc::clone(shared);
        shared.spawn(async move { deliver(&task_shared, &job, true).await });
    }
    shared
        .state()
        .get(&key)
        .map(|entry| entry.payment.clone())
        .ok_or_else(|| Error::UnknownPayment {
            payment_id: payment_id.to_owned(),
        })
}

/// Forgets everything and stops pending processing and callbacks.
pub(crate) fn reset(shared: &Shared) {
    shared.abort_tasks();
    shared.state().reset();
    tracing::info!("rp-sim reset");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_schedule_follows_the_platform() {
        assert_eq!(callback_retry_delay(0), None);
        assert_eq!(callback_retry_delay(1), None);
        for attempt in 2..=7 {
            assert_eq!(callback_retry_delay(attempt), Some(Duration::from_secs(10)));
        }
        let mut previous = Duration::ZERO;
        let mut total = Duration::ZERO;
        for attempt in 8..=MAX_CALLBACK_ATTEMPTS {
            let delay = callback_retry_delay(attempt).unwrap();
            assert!(delay >= previous, "attempt {attempt}");
            assert!(delay <= Duration::from_secs(4 * 3600));
            previous = delay;
            total += delay;
        }
        // 70 + 10 * 1.12^5 = 87.62 s
        assert_eq!(callback_retry_delay(9).unwrap().as_millis(), 87_623);
        // The whole schedule fits the platform's "120 attempts within 11 days".
        assert!(total < Duration::from_secs(11 * 86_400), "{total:?}");
        assert_eq!(callback_retry_delay(121), None);
    }

    #[test]
    fn outcomes_follow_the_magic_table() {
        let success = Final::from_magic(None, 1);
        assert_eq!(success.payment, PaymentStatus::Success);
        assert!(success.code.is(0));
        let decline = Final::from_magic(Some(Magic::Decline504), 1);
        assert_eq!(decline.payment, PaymentStatus::Decline);
        assert!(decline.code.is(504));
        let error = Final::from_magic(Some(Magic::Error3062), 1);
        assert_eq!(error.payment, PaymentStatus::Error);
        assert!(error.code.is(3062));
        assert_eq!(
            Final::from_magic(Some(Magic::Error3062), 2).payment,
            PaymentStatus::Success
        );
        assert_eq!(
            Final::from_magic(Some(Magic::SlowResponse), 1).payment,
            PaymentStatus::Success
        );
    }

    #[test]
    fn forced_outcomes_parse_from_json() {
        let success: Outcome = serde_json::from_str(r#"{"status":"success"}"#).unwrap();
        assert_eq!(success, Outcome::Success);
        let decline: Outcome =
            serde_json::from_str(r#"{"status":"decline","code":"20206"}"#).unwrap();
        assert_eq!(
            decline,
            Outcome::Decline {
                code: ResponseCode::new("20206")
            }
        );
        let default: Outcome = serde_json::from_str(r#"{"status":"decline"}"#).unwrap();
        assert_eq!(
            default,
            Outcome::Decline {
                code: ResponseCode::new("20000")
            }
        );
        assert!(serde_json::from_str::<Outcome>(r#"{"status":"pending"}"#).is_err());
        assert_eq!(
            code_message(&ResponseCode::new("20102")),
            "Incorrect account data entered"
        );
        assert_eq!(code_message(&ResponseCode::new("0")), "Success");
        assert_eq!(code_message(&ResponseCode::new("77777")), "Code 77777");
    }
}
