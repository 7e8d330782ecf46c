//! The retry loop of one payout call: send, ask the status, follow [`decide`], and record the
//! result. Every store failure after the first byte may have left becomes
//! [`Error::RecordFailed`], never an error that reads as "nothing was sent".

use std::time::Duration;

use rp_model::{PaymentId, RequestStatus, ResponseCode, wire};
use rp_transport::{HttpRequest, RetryAfter};

use super::{Acceptance, Client, PAYOUT_PATH, PayoutReceipt, StatusReport, coded_rejection};
use super::{elapsed, receipt};
use crate::Error;
use crate::error::excerpt;
use crate::identity::{self, Reported};
use crate::retry::{Jitter, Observation, RetryState, Step, decide};
use crate::store::{PayoutRecord, PayoutState};

/// Where a payout call starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// Send the payout request. `maybe_sent`: an earlier call's attempt reached, or may have
    /// reached, the platform (so a refusal of this one is not final).
    Send { maybe_sent: bool },
    /// The outcome of an earlier attempt is unknown: ask the status first.
    CheckStatus,
}

/// The next request of a payout call, and how long to wait before it.
#[derive(Debug, Clone, Copy)]
enum Next {
    Send(Duration),
    CheckStatus(Duration),
}

/// The details of one answer that the final result of a payout call needs.
enum Answer {
    /// The payout request was accepted.
    Accepted { request_id: Option<String> },
    /// The payout request was refused ([`Error::Rejected`]).
    Rejected(Error),
    /// The status endpoint knows the payment (signed, or unsigned where the config allows).
    Found(Box<StatusReport>),
    /// Nothing the result needs.
    Nothing,
}

/// What one payout request produced, with the details the final result needs.
enum SendResult {
    Accepted {
        request_id: Option<String>,
    },
    Rejected {
        http_status: u16,
        code: ResponseCode,
        error: Error,
    },
    RateLimited {
        retry_after: Option<Duration>,
    },
    NotSent(String),
    MaybeSent(String),
}

impl Client {
    /// Runs the retry loop for a recorded payout and records the result.
    pub(super) async fn drive(
        &self,
        record: PayoutRecord,
        body: Vec<u8>,
        start: Start,
    ) -> Result<PayoutReceipt, Error> {
        let policy = &self.config.retry;
        let started = self.clock.now();
        let payment_id = record.payment_id.clone();
        let (mut state, mut next) = match start {
            Start::Send { maybe_sent } => (
                RetryState {
                    maybe_sent,
                    ..RetryState::default()
                },
                Next::Send(Duration::ZERO),
            ),
            Start::CheckStatus => (
                RetryState {
                    maybe_sent: true,
                    ..RetryState::default()
                },
                Next::CheckStatus(Duration::ZERO),
            ),
        };
        let mut last = String::from("no answer yet");
        // The record as this call last wrote it: the next write starts from it.
        let mut known = Some(record.clone());
        // A refused resend after a maybe-sent attempt, kept for the final message.
        let mut refusal = None;
        let (step, answer) = loop {
            let (observation, answer) = match next {
                Next::Send(after) => {
                    self.clock.sleep(after).await;
                    // Counted before it is sent: a crash from here on leaves a record that
                    // says this request may have gone.
                    match self.log_attempt(&payment_id, known.take()).await {
                        Ok(logged) => known = Some(logged),
                        Err(error) => {
                            tracing::error!(%error, "cannot log the attempt; not sending");
                            return Err(if state.maybe_sent {
                                record_failed(
                                    &payment_id,
                                    "an earlier attempt may have reached the platform",
                                    error,
                                )
                            } else {
                                error
                            });
                        }
                    }
                    state.attempts += 1;
                    tracing::debug!(attempt = state.attempts, "sending payout request");
                    let answered = self.attempt(&payment_id, &body, &mut last).await;
                    crate::failpoint::hit("payout-answered");
                    answered
                }
                Next::CheckStatus(after) => {
                    self.clock.sleep(after).await;
                    state.status_checks += 1;
                    tracing::debug!(check = state.status_checks, "asking the status");
                    self.check(&payment_id, &record.request, &mut last).await
                }
            };
            state.elapsed = elapsed(self.clock.now(), started);
            let jitter = Jitter::from_random(random_bits());
            let step = decide(policy, &state, &observation, jitter);
            if let Observation::Rejected { code } = &observation
                && state.maybe_sent
                && !code.is(ResponseCode::PAYMENT_ID_EXISTS)
            {
                refusal = Some(format!(
                    "a resend was refused with code {code}, but an earlier attempt may have reached the platform, so only the status can tell"
                ));
            }
            state.observe(&observation);
            tracing::debug!(?observation, ?step, "retry decision");
            next = match step {
                Step::Send { after } => Next::Send(after),
                Step::CheckStatus { after } => Next::CheckStatus(after),
                done => break (done, answer),
            };
        };
        if let (Step::GiveUpUnknown, Some(refusal)) = (step, refusal) {
            last = format!("{last}; {refusal}");
        }
        self.finish(&payment_id, known, step, answer, state.attempts, last)
            .await
    }

    /// Records the end of a payout call and builds its result.
    async fn finish(
        &self,
        payment_id: &PaymentId,
        known: Option<PayoutRecord>,
        step: Step,
        answer: Answer,
        attempts: u32,
        last: String,
    ) -> Result<PayoutReceipt, Error> {
        match (step, answer) {
            (Step::Accepted, answer) => {
                let request_id = match answer {
                    Answer::Accepted { request_id } => request_id,
                    _ => None,
                };
                tracing::info!(attempts, "payout accepted for processing");
                let stored = self
                    .record_accepted(payment_id, known, request_id)
                    .await
                    .map_err(|e| record_failed(payment_id, "the platform accepted it", e))?;
                Ok(receipt(&stored, Acceptance::Accepted, attempts))
            }
            // `apply_found` checks the identity again: a payment that is not ours marks the
            // record `PaymentIdTaken` and is `PaymentIdConflict`.
            (Step::Registered | Step::NotOurs, Answer::Found(report)) => {
                tracing::info!(status = %report.status, attempts, "the platform has the payout");
                let said = format!("the platform reports status `{}`", report.status);
                let stored = self
                    .apply_found(payment_id, *report)
                    .await
                    .map_err(|e| record_failed(payment_id, &said, e))?
                    .0;
                Ok(receipt(&stored, Acceptance::FoundByStatus, attempts))
            }
            (Step::Rejected, Answer::Rejected(error)) => {
                tracing::warn!(%error, "payout rejected");
                if let Error::Rejected { code, message, .. } = &error {
                    let state = PayoutState::Rejected {
                        code: code.clone(),
                        message: message.clone(),
                    };
                    let said = format!("the platform refused it with code {code} (not registered)");
                    self.settle_if_created(
                        payment_id,
                        state,
                        Some(code.clone()),
                        Some(message.clone()),
                    )
                    .await
                    .map_err(|e| record_failed(payment_id, &said, e))?;
                }
                Err(error)
            }
            (Step::GiveUpNotSent, _) => {
                tracing::warn!(attempts, %last, "payout not sent; budget exhausted");
                // Nothing reached the platform: a store error here truly means nothing sent.
                self.settle_if_created(payment_id, PayoutState::NotRegistered, None, None)
                    .await?;
                Err(Error::NotSent {
                    payment_id: payment_id.clone(),
                    attempts,
                    last,
                })
            }
            _ => Err(self.unknown(payment_id, attempts, last).await),
        }
    }

    /// Sends one payout request; returns what the retry policy observes and the details the
    /// result needs, and describes a failure in `last`.
    async fn attempt(
        &self,
        payment_id: &PaymentId,
        body: &[u8],
        last: &mut String,
    ) -> (Observation, Answer) {
        match self.send_payout(payment_id, body).await {
            SendResult::Accepted { request_id } => {
                (Observation::Accepted, Answer::Accepted { request_id })
            }
            SendResult::Rejected {
                http_status,
                code,
                error,
            } => {
                *last = format!("HTTP {http_status}, code {code}");
                (Observation::Rejected { code }, Answer::Rejected(error))
            }
            SendResult::RateLimited { retry_after } => {
                "HTTP 429 rate limited".clone_into(last);
                (Observation::RateLimited { retry_after }, Answer::Nothing)
            }
            SendResult::NotSent(reason) => {
                *last = reason;
                (Observation::NotSent, Answer::Nothing)
            }
            SendResult::MaybeSent(reason) => {
                *last = reason;
                (Observation::MaybeSent, Answer::Nothing)
            }
        }
    }

    /// Asks the status once; returns what the retry policy observes and the report, and
    /// describes a failure in `last`. Only a report that may change the record counts as
    /// found: signed (or unsigned where the config allows it).
    async fn check(
        &self,
        payment_id: &PaymentId,
        request: &wire::PayoutRequest,
        last: &mut String,
    ) -> (Observation, Answer) {
        match self
            .status(payment_id)
            .await
            .and_then(|report| self.trusted(report))
        {
            // Identity first: a payment that is not this payout is never resent over, even in
            // `error` (a resend would revive the other payout).
            Ok(report)
                if identity::difference(request, Reported::from_status(&report.raw)).is_some() =>
            {
                "status: the platform holds another payout under this payment ID".clone_into(last);
                (Observation::StatusNotOurs, Answer::Found(Box::new(report)))
            }
            Ok(report) => {
                let status = report.status.clone();
                (
                    Observation::StatusFound(status),
                    Answer::Found(Box::new(report)),
                )
            }
            Err(Error::NotFound { .. }) => {
                "status: payment not found (3061)".clone_into(last);
                (Observation::StatusNotFound, Answer::Nothing)
            }
            Err(error) => {
                *last = format!("status request failed: {error}");
                (Observation::StatusUnavailable, Answer::Nothing)
            }
        }
    }

    /// Sends one payout request and classifies the answer.
    async fn send_payout(&self, payment_id: &PaymentId, body: &[u8]) -> SendResult {
        let response = match self
            .transport
            .post(HttpRequest::new(PAYOUT_PATH, body.to_vec()))
            .await
        {
            Ok(response) => response,
            Err(error) if error.is_not_sent() => return SendResult::NotSent(error.to_string()),
            Err(error) => return SendResult::MaybeSent(error.to_string()),
        };
        let status = response.status;
        if status == 429 {
            let retry_after = match response.retry_after() {
                Some(RetryAfter::Delay(delay)) => Some(delay),
                _ => None,
            };
            return SendResult::RateLimited { retry_after };
        }
        if status >= 500 {
            return SendResult::MaybeSent(format!("HTTP {status}: {}", excerpt(&response.body)));
        }
        let Ok(envelope) = serde_json::from_slice::<wire::GateResponse>(&response.body) else {
            return SendResult::MaybeSent(format!(
                "HTTP {status} with a body that is not a Gate response: {}",
                excerpt(&response.body)
            ));
        };
        if envelope.status == Some(RequestStatus::Success) && response.is_success() {
            return SendResult::Accepted {
                request_id: envelope.request_id,
            };
        }
        let refused = !response.is_success() || envelope.status == Some(RequestStatus::Error);
        match envelope.first_code() {
            Some(code) if refused => SendResult::Rejected {
                http_status: status,
                code: code.clone(),
                error: coded_rejection("payout", Some(payment_id), status, code, &envelope),
            },
            _ => SendResult::MaybeSent(format!(
                "HTTP {status} with an unexpected body: {}",
                excerpt(&response.body)
            )),
        }
    }
}

/// After the request may have reached the platform, a store failure must not read as "not
/// sent": [`Error::Store`] becomes [`Error::RecordFailed`] with what the platform said.
fn record_failed(payment_id: &PaymentId, platform: &str, error: Error) -> Error {
    match error {
        Error::Store { operation, reason } => {
            tracing::error!(%operation, %reason, platform, "the store failed after the payout request was sent");
            Error::RecordFailed {
                payment_id: payment_id.clone(),
                platform: platform.to_owned(),
                reason: format!("{operation}: {reason}"),
            }
        }
        other => other,
    }
}

/// 64 random bits for the backoff jitter.
fn random_bits() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish()
}
