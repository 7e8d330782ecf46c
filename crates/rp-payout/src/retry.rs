//! The retry policy as a pure function: [`decide`] maps what happened to what to do next.
//!
//! No I/O, no clock, no randomness: the caller passes the elapsed time and a jitter sample,
//! so every branch is a plain unit test. The rules (invariants 5 and 9):
//!
//! | Observation | Next step |
//! | --- | --- |
//! | payout accepted | [`Step::Accepted`] |
//! | rejected with `3041` "payment ID already exists" | ask the status after [`RetryPolicy::status_delay`]: the platform has a payment under this ID, adopted only if a signed status shows it is this payout |
//! | rejected with any other code, no attempt may have reached the platform | [`Step::Rejected`]: never resent |
//! | rejected with any other code **after an attempt that may have reached the platform** | ask the status after [`RetryPolicy::status_delay`]: the refusal may be caused by that attempt (e.g. 3028, a limit), so it says nothing about this payment |
//! | `429` | resend the same request after `Retry-After` (else backoff) |
//! | not sent (connect failure) | resend the same request after backoff |
//! | maybe sent (timeout, dropped connection, 5xx, unreadable answer) | ask the status after [`RetryPolicy::status_delay`] |
//! | status: `3061` not found, after a `3041` | ask again after [`RetryPolicy::status_delay`] (the status lags; resending would only get `3041` again) |
//! | status: `3061` not found, otherwise | resend the same request (same payment ID) after backoff |
//! | status: `error` | resend the same request (same payment ID) after backoff |
//! | status: any other status | [`Step::Registered`]: never resent, follow the status |
//! | status: a payment that is not this payout (checked by the caller before [`decide`]) | [`Step::NotOurs`]: never resent, whatever its status (even `error`) |
//! | status request failed | ask again after backoff |
//!
//! Every wait must fit the budget ([`RetryPolicy::max_attempts`],
//! [`RetryPolicy::max_status_checks`], [`RetryPolicy::max_elapsed`]); when it does not, the
//! result is [`Step::GiveUpUnknown`] if any attempt may have reached the platform, else
//! [`Step::GiveUpNotSent`]. A new payment ID is never an option.
//!
//! **Maybe-sent is sticky.** Once any attempt may have reached the platform
//! ([`RetryState::maybe_sent`], also set by the caller when an earlier call left the outcome
//! unknown), only a signed answer about *this* payment settles the call: a status found, or
//! the budget running out as [`Step::GiveUpUnknown`]. A refusal of a later resend never ends
//! it as [`Step::Rejected`]. After [`decide`], record the observation with
//! [`RetryState::observe`].

use std::time::Duration;

use rp_model::{PaymentStatus, ResponseCode};

/// The retry budget and timing of one payout call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Payout requests sent at most (the first one included). Default 4.
    pub max_attempts: u32,
    /// Status requests made at most while resolving an unknown outcome. Default 4.
    pub max_status_checks: u32,
    /// Total time one call may take, waits included. Default 120 s.
    pub max_elapsed: Duration,
    /// First backoff delay; it doubles per retry. Default 500 ms.
    pub initial_backoff: Duration,
    /// Largest backoff delay. Default 30 s.
    pub max_backoff: Duration,
    /// Wait before asking the status after an attempt that may have reached the platform.
    /// The platform asks for at least 10 s (an earlier status request may answer "not found");
    /// default 10 s. Tests use milliseconds.
    pub status_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            max_status_checks: 4,
            max_elapsed: Duration::from_secs(120),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            status_delay: Duration::from_secs(10),
        }
    }
}

/// What one step of a payout call observed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Observation {
    /// The payout request was accepted for processing.
    Accepted,
    /// The payout request was refused with a code (a definite answer: not registered, except
    /// for `3041`, which says the payment ID is already registered).
    Rejected {
        /// The platform code.
        code: ResponseCode,
    },
    /// HTTP 429: not processed; the same request may be sent again later.
    RateLimited {
        /// The `Retry-After` delay, if the answer had one in seconds.
        retry_after: Option<Duration>,
    },
    /// The request provably never left this process.
    NotSent,
    /// The request may have reached the platform, but the outcome is unknown (timeout, dropped
    /// connection, 5xx, an answer the client cannot read).
    MaybeSent,
    /// The status endpoint does not know the payment (3061).
    StatusNotFound,
    /// The status endpoint knows the payment, and it is this payout.
    StatusFound(PaymentStatus),
    /// The status endpoint knows a payment under this ID that is **not** this payout (another
    /// amount, currency, phone number or customer): never resent over, whatever its status.
    StatusNotOurs,
    /// The status request failed (transport error, 5xx, unreadable answer).
    StatusUnavailable,
}

/// What a payout call has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryState {
    /// Payout requests sent so far.
    pub attempts: u32,
    /// Status requests made so far.
    pub status_checks: u32,
    /// Time since the call started.
    pub elapsed: Duration,
    /// Whether an earlier payout request may have reached the platform (or, after a `3041`,
    /// did). Set it when the call starts from an unknown outcome; never cleared.
    pub maybe_sent: bool,
    /// Whether the platform answered `3041` "payment ID already exists" during this call.
    pub payment_id_exists: bool,
}

impl RetryState {
    /// Records what `observation` says about the platform, after [`decide`] was called for
    /// it: an answer that may have come from a registered request (a maybe-sent outcome, or
    /// `3041` "payment ID already exists") sets [`RetryState::maybe_sent`], so a later refusal
    /// is not taken as final and running out of budget is [`Step::GiveUpUnknown`].
    pub fn observe(&mut self, observation: &Observation) {
        if observation.may_be_registered() {
            self.maybe_sent = true;
        }
        if observation.is_payment_id_exists() {
            self.payment_id_exists = true;
        }
    }
}

impl Observation {
    /// Whether the observation says the payout may be registered on the platform.
    fn may_be_registered(&self) -> bool {
        matches!(self, Observation::MaybeSent) || self.is_payment_id_exists()
    }

    /// Whether it is the refusal `3041` "payment ID already exists".
    fn is_payment_id_exists(&self) -> bool {
        matches!(self, Observation::Rejected { code } if code.is(ResponseCode::PAYMENT_ID_EXISTS))
    }
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Send the same payout request (same payment ID, same body) after waiting.
    Send {
        /// How long to wait first.
        after: Duration,
    },
    /// Ask the status endpoint after waiting.
    CheckStatus {
        /// How long to wait first.
        after: Duration,
    },
    /// Done: the payout was accepted.
    Accepted,
    /// Done: the status endpoint knows the payment; follow its status, do not resend.
    Registered,
    /// Done: the platform holds another payout under this payment ID; do not resend.
    NotOurs,
    /// Done: the platform refused the payout and no attempt may have reached it: it was not
    /// registered. Do not resend.
    Rejected,
    /// Done: the budget ran out and an attempt may have reached the platform; reconcile.
    GiveUpUnknown,
    /// Done: the budget ran out and nothing reached the platform.
    GiveUpNotSent,
}

/// A jitter sample in `0..=1000` (per mille of the second half of a backoff delay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jitter(u16);

impl Jitter {
    /// No jitter: the shortest delay.
    pub const NONE: Jitter = Jitter(0);
    /// Full jitter: the longest delay.
    pub const FULL: Jitter = Jitter(1000);

    /// A sample; values above 1000 count as 1000.
    pub fn per_mille(value: u16) -> Jitter {
        Jitter(value.min(1000))
    }

    /// A sample from 64 random bits.
    pub fn from_random(bits: u64) -> Jitter {
        Jitter(u16::try_from(bits % 1001).unwrap_or(1000))
    }
}

/// The backoff before retry number `retry` (1 for the first retry): `initial · 2^(retry−1)`,
/// capped at `max_backoff`, with "equal jitter" (half fixed, half scaled by `jitter`).
pub fn backoff(policy: &RetryPolicy, retry: u32, jitter: Jitter) -> Duration {
    let exponent = retry.saturating_sub(1).min(31);
    let base = policy
        .initial_backoff
        .saturating_mul(1u32 << exponent)
        .min(policy.max_backoff);
    let half = base / 2;
    half + (base - half) * u32::from(jitter.0) / 1000
}

/// The next step of a payout call after `observation`, given the `state` *before* it was
/// recorded (its counters already include the request that produced the observation).
pub fn decide(
    policy: &RetryPolicy,
    state: &RetryState,
    observation: &Observation,
    jitter: Jitter,
) -> Step {
    let maybe_sent = state.maybe_sent || observation.may_be_registered();
    let give_up = if maybe_sent {
        Step::GiveUpUnknown
    } else {
        Step::GiveUpNotSent
    };
    let fits = |after: Duration| state.elapsed.saturating_add(after) <= policy.max_elapsed;
    let send = |after: Duration| {
        if state.attempts < policy.max_attempts && fits(after) {
            Step::Send { after }
        } else {
            give_up
        }
    };
    let check = |after: Duration| {
        if state.status_checks < policy.max_status_checks && fits(after) {
            Step::CheckStatus { after }
        } else {
            give_up
        }
    };
    match observation {
        Observation::Accepted => Step::Accepted,
        // The platform has a payment under this ID: whose it is, only a signed status tells,
        // and not before the platform's delay.
        Observation::Rejected { .. } if observation.is_payment_id_exists() => {
            check(policy.status_delay)
        }
        // Maybe-sent is sticky: a refused resend may be caused by the attempt that got
        // through (3028 balance, a limit code), so it says nothing about this payment.
        Observation::Rejected { .. } if state.maybe_sent => check(policy.status_delay),
        Observation::Rejected { .. } => Step::Rejected,
        Observation::RateLimited { retry_after } => {
            send(retry_after.unwrap_or_else(|| backoff(policy, state.attempts, jitter)))
        }
        // The platform said the ID exists; its status endpoint lags behind (10 s and more).
        Observation::StatusNotFound if state.payment_id_exists => check(policy.status_delay),
        Observation::NotSent | Observation::StatusNotFound => {
            send(backoff(policy, state.attempts, jitter))
        }
        Observation::StatusFound(status) if *status == PaymentStatus::Error => {
            send(backoff(policy, state.attempts, jitter))
        }
        Observation::StatusFound(_) => Step::Registered,
        Observation::StatusNotOurs => Step::NotOurs,
        Observation::MaybeSent => check(policy.status_delay),
        Observation::StatusUnavailable => check(backoff(policy, state.status_checks, jitter)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            max_status_checks: 2,
            max_elapsed: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            status_delay: Duration::from_secs(10),
        }
    }

    fn after_first_send() -> RetryState {
        RetryState {
            attempts: 1,
            ..RetryState::default()
        }
    }

    fn decide_now(state: RetryState, observation: &Observation) -> Step {
        decide(&policy(), &state, observation, Jitter::NONE)
    }

    #[test]
    fn accepted_is_done() {
        assert_eq!(
            decide_now(after_first_send(), &Observation::Accepted),
            Step::Accepted
        );
    }

    #[test]
    fn a_coded_rejection_is_never_retried() {
        for code in ["2004", "3261", "20102", "3023"] {
            let observation = Observation::Rejected {
                code: ResponseCode::new(code),
            };
            assert_eq!(
                decide_now(after_first_send(), &observation),
                Step::Rejected,
                "{code}"
            );
        }
    }

    fn payment_id_exists() -> Observation {
        Observation::Rejected {
            code: ResponseCode::new("3041"),
        }
    }

    #[test]
    fn payment_id_exists_asks_the_status_after_the_platforms_delay() {
        // Never at once: the platform may answer 3061 for 10 s and more.
        assert_eq!(
            decide_now(after_first_send(), &payment_id_exists()),
            Step::CheckStatus {
                after: Duration::from_secs(10)
            }
        );
        // Also on a resend after an attempt that may have got through: never adopted
        // without a signed status.
        let resent = RetryState {
            attempts: 2,
            status_checks: 1,
            maybe_sent: true,
            ..RetryState::default()
        };
        assert_eq!(
            decide_now(resent, &payment_id_exists()),
            Step::CheckStatus {
                after: Duration::from_secs(10)
            }
        );
    }

    #[test]
    fn payment_id_exists_without_status_budget_is_unknown_never_not_sent() {
        let spent = RetryState {
            attempts: 1,
            status_checks: 2,
            ..RetryState::default()
        };
        assert_eq!(decide_now(spent, &payment_id_exists()), Step::GiveUpUnknown);
    }

    #[test]
    fn after_a_3041_not_found_asks_again_and_a_second_3041_still_adopts_nothing() {
        let mut state = after_first_send();
        state.observe(&payment_id_exists());
        assert!(state.maybe_sent && state.payment_id_exists);
        state.status_checks = 1;
        // The status does not know it yet (it lags): ask again later, do not resend.
        assert_eq!(
            decide_now(state, &Observation::StatusNotFound),
            Step::CheckStatus {
                after: Duration::from_secs(10)
            }
        );
        // Out of status checks: unknown, never "got through" without a status.
        state.status_checks = 2;
        assert_eq!(
            decide_now(state, &Observation::StatusNotFound),
            Step::GiveUpUnknown
        );
        assert_eq!(decide_now(state, &payment_id_exists()), Step::GiveUpUnknown);
    }

    #[test]
    fn after_a_3041_a_found_status_is_registered() {
        let mut state = after_first_send();
        state.observe(&payment_id_exists());
        state.status_checks = 1;
        assert_eq!(
            decide_now(state, &Observation::StatusFound(PaymentStatus::Processing)),
            Step::Registered
        );
    }

    #[test]
    fn observe_marks_only_what_may_be_registered() {
        for (observation, marks) in [
            (Observation::MaybeSent, true),
            (payment_id_exists(), true),
            (Observation::NotSent, false),
            (Observation::Accepted, false),
            (Observation::StatusNotFound, false),
            (
                Observation::Rejected {
                    code: ResponseCode::new("2004"),
                },
                false,
            ),
        ] {
            let mut state = RetryState::default();
            state.observe(&observation);
            assert_eq!(state.maybe_sent, marks, "{observation:?}");
        }
    }

    /// Defect: first attempt maybe sent, status 3061 (the platform's lag), resend refused
    /// with 3028 (caused by the first attempt): it was recorded as a final rejection.
    #[test]
    fn a_refused_resend_after_a_maybe_sent_attempt_is_never_a_rejection() {
        let state = RetryState {
            attempts: 2,
            status_checks: 1,
            maybe_sent: true,
            ..RetryState::default()
        };
        for code in ["3028", "3109", "3104", "2004"] {
            let observation = Observation::Rejected {
                code: ResponseCode::new(code),
            };
            assert_eq!(
                decide_now(state, &observation),
                Step::CheckStatus {
                    after: Duration::from_secs(10)
                },
                "{code}"
            );
            // Out of budget it is unknown (reconcile keeps asking), never rejected.
            let spent = RetryState {
                status_checks: 2,
                ..state
            };
            assert_eq!(
                decide_now(spent, &observation),
                Step::GiveUpUnknown,
                "{code}"
            );
        }
    }

    #[test]
    fn rate_limit_honours_retry_after() {
        let observation = Observation::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(
            decide_now(after_first_send(), &observation),
            Step::Send {
                after: Duration::from_secs(7)
            }
        );
    }

    #[test]
    fn rate_limit_without_retry_after_backs_off() {
        let observation = Observation::RateLimited { retry_after: None };
        assert_eq!(
            decide_now(after_first_send(), &observation),
            Step::Send {
                after: Duration::from_millis(50)
            }
        );
    }

    #[test]
    fn rate_limit_beyond_the_time_budget_gives_up_as_not_sent() {
        let observation = Observation::RateLimited {
            retry_after: Some(Duration::from_secs(3600)),
        };
        assert_eq!(
            decide_now(after_first_send(), &observation),
            Step::GiveUpNotSent
        );
    }

    #[test]
    fn not_sent_is_resent_after_backoff() {
        assert_eq!(
            decide_now(after_first_send(), &Observation::NotSent),
            Step::Send {
                after: Duration::from_millis(50)
            }
        );
    }

    #[test]
    fn not_sent_out_of_attempts_gives_up_as_not_sent() {
        let state = RetryState {
            attempts: 3,
            ..RetryState::default()
        };
        assert_eq!(
            decide_now(state, &Observation::NotSent),
            Step::GiveUpNotSent
        );
    }

    #[test]
    fn not_sent_after_an_earlier_maybe_sent_gives_up_as_unknown() {
        let state = RetryState {
            attempts: 3,
            maybe_sent: true,
            ..RetryState::default()
        };
        assert_eq!(
            decide_now(state, &Observation::NotSent),
            Step::GiveUpUnknown
        );
    }

    #[test]
    fn maybe_sent_asks_the_status_after_the_status_delay() {
        assert_eq!(
            decide_now(after_first_send(), &Observation::MaybeSent),
            Step::CheckStatus {
                after: Duration::from_secs(10)
            }
        );
    }

    #[test]
    fn maybe_sent_without_budget_is_unknown_never_not_sent() {
        let late = RetryState {
            attempts: 1,
            elapsed: Duration::from_secs(55),
            ..RetryState::default()
        };
        assert_eq!(
            decide_now(late, &Observation::MaybeSent),
            Step::GiveUpUnknown
        );
        let checked = RetryState {
            attempts: 1,
            status_checks: 2,
            ..RetryState::default()
        };
        assert_eq!(
            decide_now(checked, &Observation::MaybeSent),
            Step::GiveUpUnknown
        );
    }

    #[test]
    fn status_not_found_resends_the_same_request() {
        let state = RetryState {
            attempts: 1,
            status_checks: 1,
            maybe_sent: true,
            ..RetryState::default()
        };
        assert_eq!(
            decide_now(state, &Observation::StatusNotFound),
            Step::Send {
                after: Duration::from_millis(50)
            }
        );
    }

    #[test]
    fn status_not_found_out_of_attempts_is_unknown() {
        let state = RetryState {
            attempts: 3,
            status_checks: 1,
            maybe_sent: true,
            ..RetryState::default()
        };
        assert_eq!(
            decide_now(state, &Observation::StatusNotFound),
            Step::GiveUpUnknown
        );
    }

    #[test]
    fn status_error_resends_the_same_request() {
        let state = RetryState {
            attempts: 1,
            status_checks: 1,
            maybe_sent: true,
            ..RetryState::default()
        };
        assert!(matches!(
            decide_now(state, &Observation::StatusFound(PaymentStatus::Error)),
            Step::Send { .. }
        ));
    }

    #[test]
    fn any_other_status_means_registered_and_no_resend() {
        let state = RetryState {
            attempts: 1,
            status_checks: 1,
            maybe_sent: true,
            ..RetryState::default()
        };
        for status in [
            PaymentStatus::Processing,
            PaymentStatus::Success,
            PaymentStatus::Decline,
            PaymentStatus::AwaitingClarification,
            PaymentStatus::Other("new status".into()),
        ] {
            assert_eq!(
                decide_now(state, &Observation::StatusFound(status.clone())),
                Step::Registered,
                "{status}"
            );
        }
    }

    #[test]
    fn a_payment_that_is_not_ours_is_never_resent_over() {
        let state = RetryState {
            attempts: 1,
            status_checks: 1,
            maybe_sent: true,
            payment_id_exists: true,
            ..RetryState::default()
        };
        assert_eq!(
            decide_now(state, &Observation::StatusNotOurs),
            Step::NotOurs
        );
    }

    #[test]
    fn status_unavailable_asks_again_then_gives_up_as_unknown() {
        let first = RetryState {
            attempts: 1,
            status_checks: 1,
            maybe_sent: true,
            ..RetryState::default()
        };
        assert_eq!(
            decide_now(first, &Observation::StatusUnavailable),
            Step::CheckStatus {
                after: Duration::from_millis(50)
            }
        );
        let spent = RetryState {
            status_checks: 2,
            ..first
        };
        assert_eq!(
            decide_now(spent, &Observation::StatusUnavailable),
            Step::GiveUpUnknown
        );
    }

    #[test]
    fn backoff_doubles_jitters_and_caps() {
        let p = policy();
        assert_eq!(backoff(&p, 1, Jitter::NONE), Duration::from_millis(50));
        assert_eq!(backoff(&p, 1, Jitter::FULL), Duration::from_millis(100));
        assert_eq!(backoff(&p, 2, Jitter::FULL), Duration::from_millis(200));
        assert_eq!(
            backoff(&p, 3, Jitter::per_mille(500)),
            Duration::from_millis(300)
        );
        assert_eq!(backoff(&p, 10, Jitter::FULL), Duration::from_secs(1));
        assert_eq!(backoff(&p, u32::MAX, Jitter::FULL), Duration::from_secs(1));
        assert_eq!(backoff(&p, 0, Jitter::FULL), Duration::from_millis(100));
        assert_eq!(Jitter::per_mille(5000), Jitter::FULL);
        assert!(Jitter::from_random(u64::MAX).0 <= 1000);
    }

    #[test]
    fn the_time_budget_counts_the_wait() {
        let state = RetryState {
            attempts: 1,
            elapsed: Duration::from_millis(59_960),
            ..RetryState::default()
        };
        assert_eq!(
            decide_now(state, &Observation::NotSent),
            Step::GiveUpNotSent
        );
        let earlier = RetryState {
            elapsed: Duration::from_millis(59_950),
            ..state
        };
        assert!(matches!(
            decide_now(earlier, &Observation::NotSent),
            Step::Send { .. }
        ));
    }
}
