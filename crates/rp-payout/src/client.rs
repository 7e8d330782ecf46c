//! [`Client`]: operators, payouts with the retry policy, status.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rp_model::{PaymentId, PaymentStatus, Payout, ProjectId, RequestStatus, ResponseCode, wire};
use rp_sign::Signer;
use rp_transport::{HttpRequest, HttpResponse, ReqwestTransport, RetryAfter, Transport};
use serde_json::Value;
use tracing::Instrument;

use crate::error::excerpt;
use crate::retry::{Jitter, Observation, RetryState, Step, decide};
use crate::store::{Inserted, PayoutRecord, PayoutState, PayoutStore, StatusChange, Updated};
use crate::{
    Clock, Config, Error, MemoryStore, OperatorList, PaymentIdGenerator, RandomPaymentIds,
    SystemClock,
};

pub use rp_model::wire::{OPERATORS_PATH, PAYOUT_PATH, STATUS_PATH};

/// How many times a compare-and-set on a record is retried after a conflict.
const MAX_CAS_TRIES: u32 = 8;

/// The payout client: one call to pay out ([`Client::payout`]), one to handle a callback
/// ([`Client::handle_callback`]), one to reconcile ([`Client::reconcile`]).
///
/// Cheap to share: wrap it in an `Arc`. See the crate docs for an example.
pub struct Client {
    pub(crate) config: Config,
    pub(crate) signer: Signer,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) store: Arc<dyn PayoutStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn PaymentIdGenerator>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("transport", &self.transport)
            .field("store", &self.store)
            .field("clock", &self.clock)
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`] with a pluggable transport, store, clock and ID generator.
#[must_use]
pub struct ClientBuilder {
    config: Config,
    transport: Option<Arc<dyn Transport>>,
    store: Option<Arc<dyn PayoutStore>>,
    clock: Option<Arc<dyn Clock>>,
    ids: Option<Arc<dyn PaymentIdGenerator>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The transport (default: a [`ReqwestTransport`] built from the config).
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The payout store (default: a [`MemoryStore`]; use a database in production).
    pub fn store(mut self, store: Arc<dyn PayoutStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The clock (default: [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The payment-ID generator behind [`Client::new_payment_id`] (default:
    /// [`RandomPaymentIds`]).
    pub fn payment_ids(mut self, ids: Arc<dyn PaymentIdGenerator>) -> Self {
        self.ids = Some(ids);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the default transport cannot be built from the config (base URL,
    /// timeouts, CA certificates).
    pub fn build(self) -> Result<Client, Error> {
        let transport = match self.transport {
            Some(transport) => transport,
            None => Arc::new(
                ReqwestTransport::builder()
                    .base_url(&self.config.base_url)
                    .connect_timeout(self.config.connect_timeout)
                    .attempt_timeout(self.config.attempt_timeout)
                    .build()
                    .map_err(|e| Error::Config {
                        setting: "transport",
                        reason: e.to_string(),
                    })?,
            ),
        };
        Ok(Client {
            signer: Signer::new(self.config.secret_key()),
            config: self.config,
            transport,
            store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            ids: self
                .ids
                .unwrap_or_else(|| Arc::new(RandomPaymentIds::default())),
        })
    }
}

/// How [`Client::payout`] knows the payout is with the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Acceptance {
    /// The platform answered "accepted for processing".
    Accepted,
    /// A resend was answered 3041 "payment ID already exists": an earlier attempt got through.
    FirstAttemptGotThrough,
    /// The status endpoint showed the payment, with this payout's amount and currency: after
    /// an unknown outcome, or after a 3041 "payment ID already exists" showed that an earlier
    /// attempt (another call, process or store) got through.
    FoundByStatus,
    /// The same payout was submitted before; nothing was sent this time. Also the answer while
    /// another call is still sending it (in flight: recorded as [`PayoutState::Created`] within
    /// [`Config::in_flight_window`]); its result is in that call, a callback or the store.
    AlreadyRecorded,
}

/// The result of [`Client::payout`] when the platform has (or had) the payout.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PayoutReceipt {
    /// The payment ID.
    pub payment_id: PaymentId,
    /// How the platform's acceptance is known.
    pub acceptance: Acceptance,
    /// The payout's state after the call (the result comes later, in a callback or status).
    pub state: PayoutState,
    /// The platform's request ID, when known.
    pub request_id: Option<String>,
    /// Payout requests sent by this call.
    pub attempts: u32,
}

/// The answer of the status endpoint for a payment it knows.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StatusReport {
    /// The payment ID.
    pub payment_id: PaymentId,
    /// The payment status.
    pub status: PaymentStatus,
    /// Every operation of the payment, oldest first.
    pub operations: Vec<wire::Operation>,
    /// The last code: the newest operation's, else the first error's.
    pub last_code: Option<ResponseCode>,
    /// The message that goes with `last_code`.
    pub last_message: Option<String>,
    /// True when the response was signed and the signature verified. An invalid signature is
    /// an error; an unsigned response is returned (for display) but is not applied to the
    /// store unless [`Config::with_unsigned_status`] allows it.
    pub signature_verified: bool,
    /// The whole response.
    pub raw: wire::StatusResponse,
}

impl StatusReport {
    /// The newest operation's request ID.
    pub fn request_id(&self) -> Option<&str> {
        self.operations
            .iter()
            .rev()
            .find_map(|op| op.request_id.as_deref())
    }
}

/// Where a payout call starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Send the payout request.
    Send,
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
    /// The status endpoint knows the payment.
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
    /// A client with the default transport, an in-memory store and the system clock.
    ///
    /// # Errors
    ///
    /// As [`ClientBuilder::build`].
    pub fn new(config: Config) -> Result<Client, Error> {
        Self::builder(config).build()
    }

    /// A client configured from `RP_PROJECT_ID`, `RP_SECRET_KEY` and `RP_BASE_URL`.
    ///
    /// # Errors
    ///
    /// As [`Config::from_env`] and [`ClientBuilder::build`].
    pub fn from_env() -> Result<Client, Error> {
        Self::new(Config::from_env()?)
    }

    /// A builder, to plug in a transport, store, clock or ID generator.
    pub fn builder(config: Config) -> ClientBuilder {
        ClientBuilder {
            config,
            transport: None,
            store: None,
            clock: None,
            ids: None,
        }
    }

    /// The project.
    pub fn project_id(&self) -> ProjectId {
        self.config.project_id
    }

    /// The configuration (its `Debug` hides the secret).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The payout store.
    pub fn store(&self) -> &Arc<dyn PayoutStore> {
        &self.store
    }

    /// Mints a new payment ID. Call it **once per payout**, before building it, and keep the
    /// ID with your order: retries reuse it, they never mint another.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRequest`] if the generator made an invalid ID.
    pub fn new_payment_id(&self) -> Result<PaymentId, Error> {
        Ok(PaymentId::new(self.ids.generate())?)
    }

    /// The recorded state of a payout.
    ///
    /// # Errors
    ///
    /// [`Error::Store`].
    pub async fn record(&self, payment_id: &PaymentId) -> Result<Option<PayoutRecord>, Error> {
        self.store.get(payment_id).await
    }

    /// The operators available to the project (`POST /v2/info/mobile/payout/list`).
    ///
    /// # Errors
    ///
    /// [`Error::Transport`], [`Error::Rejected`] for an error envelope, or
    /// [`Error::UnexpectedResponse`] for a body without recognisable operators.
    pub async fn operators(&self) -> Result<OperatorList, Error> {
        let request = wire::OperatorListRequest {
            general: wire::General::new(self.config.project_id.get(), None),
        };
        let body = self.sign("operator list", &request)?;
        let response = self
            .transport
            .post(HttpRequest::new(OPERATORS_PATH, body))
            .await
            .map_err(|source| Error::Transport {
                what: "operator list",
                source,
            })?;
        if let Ok(envelope) = serde_json::from_slice::<wire::GateResponse>(&response.body)
            && (envelope.status == Some(RequestStatus::Error) || !response.is_success())
            && let Some(error) = rejection("operator list", None, response.status, &envelope)
        {
            return Err(error);
        }
        if !response.is_success() {
            return Err(unexpected("operator list", &response, "not a 2xx status"));
        }
        OperatorList::parse(&response.body)
    }

    /// Pays out, at most once, whatever the network does.
    ///
    /// 1. Records the payout in the store before the first byte is sent. If its payment ID is
    ///    already recorded: with different details → [`Error::PaymentIdConflict`]; with the same
    ///    details → the recorded state, without sending (unless it is not registered on the
    ///    platform or ended in `error`: then it is resent under the same payment ID, and an
    ///    unknown outcome is first resolved through the status endpoint). A payout in
    ///    [`PayoutState::Created`] is *in flight* (another call is sending it) for
    ///    [`Config::in_flight_window`]: [`Acceptance::AlreadyRecorded`], nothing sent; older,
    ///    its sender stopped, and it is resolved like an unknown outcome (status first).
    /// 2. Sends it, following the retry rules of [`crate::retry`]. A `3041` "payment ID already
    ///    exists" is resolved through the status endpoint: the payment found there is adopted
    ///    ([`Acceptance::FoundByStatus`]) only if its amount and currency are this payout's.
    ///
    /// # Errors
    ///
    /// [`Error::Rejected`] (code and message; not registered), [`Error::OutcomeUnknown`]
    /// (recorded; reconcile), [`Error::NotSent`], [`Error::PaymentIdConflict`] (a different
    /// payout is recorded, or found on the platform, under this payment ID), [`Error::Store`],
    /// [`Error::Sign`].
    pub async fn payout(&self, payout: &Payout) -> Result<PayoutReceipt, Error> {
        let payment_id = payout.payment_id().clone();
        let span = tracing::info_span!(
            "rp_payout.payout",
            payment_id = %payment_id,
            phone = %payout.phone(),
            amount = %payout.amount(),
        );
        async move {
            let request = payout.to_request(self.config.project_id);
            let body = self.sign("payout", &request)?;
            let record = PayoutRecord::new(payment_id.clone(), request, self.clock.now());
            match self.store.insert(record).await? {
                Inserted::New(record) => {
                    tracing::info!("payout recorded; sending");
                    self.drive(record, body, Start::Send).await
                }
                Inserted::Existing(existing) => {
                    if existing.request != payout.to_request(self.config.project_id) {
                        tracing::warn!("payment ID already recorded with different details");
                        return Err(Error::PaymentIdConflict {
                            payment_id,
                            platform: None,
                        });
                    }
                    self.resubmit(existing, body).await
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Submits a recorded payout again by its payment ID (e.g. one that reconcile found not
    /// registered): same rules as submitting the same [`Payout`] to [`Client::payout`] again.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the store has no such payout (nothing was sent), otherwise as
    /// [`Client::payout`].
    pub async fn resume(&self, payment_id: &PaymentId) -> Result<PayoutReceipt, Error> {
        let span = tracing::info_span!("rp_payout.resume", payment_id = %payment_id);
        async move {
            let record =
                self.store.get(payment_id).await?.ok_or_else(|| {
                    Error::store(format!("find payout {payment_id}"), "not recorded")
                })?;
            let body = self.sign("payout", &record.request)?;
            self.resubmit(record, body).await
        }
        .instrument(span)
        .await
    }

    /// Whether a call may still be sending this payout: recorded as `Created` and changed
    /// within [`Config::in_flight_window`].
    pub(crate) fn in_flight(&self, record: &PayoutRecord) -> bool {
        let age = elapsed(self.clock.now(), record.updated_at);
        record.state == PayoutState::Created && age < self.config.in_flight_window()
    }

    /// The same payout again: send only what is safe to send.
    async fn resubmit(
        &self,
        existing: PayoutRecord,
        body: Vec<u8>,
    ) -> Result<PayoutReceipt, Error> {
        let start = match &existing.state {
            PayoutState::Rejected { code, message } => {
                return Err(Error::Rejected {
                    what: "payout",
                    payment_id: Some(existing.payment_id.clone()),
                    http_status: None,
                    code: code.clone(),
                    message: message.clone(),
                    field: None,
                });
            }
            PayoutState::PaymentIdTaken => {
                return Err(Error::PaymentIdConflict {
                    payment_id: existing.payment_id.clone(),
                    platform: Some(existing.last_message.clone().unwrap_or_else(|| {
                        "the platform has a different payout under it".to_owned()
                    })),
                });
            }
            state if state.is_resendable() => Start::Send,
            PayoutState::Unknown => Start::CheckStatus,
            PayoutState::Created if !self.in_flight(&existing) => {
                tracing::warn!(
                    since = ?existing.updated_at,
                    "payout recorded but left unsent or unresolved (the sender stopped); asking the status first"
                );
                Start::CheckStatus
            }
            PayoutState::Created => {
                tracing::info!("payout in flight (another call is sending it); not sending");
                return Ok(receipt(&existing, Acceptance::AlreadyRecorded, 0));
            }
            _ => {
                tracing::info!(state = %existing.state, "payout already recorded; not sending");
                return Ok(receipt(&existing, Acceptance::AlreadyRecorded, 0));
            }
        };
        // Claim the payout (compare-and-set back to `Created`) so two callers cannot both send.
        let mut claimed = existing.clone();
        claimed.state = PayoutState::Created;
        claimed.updated_at = self.clock.now();
        match self.store.update(existing.version, claimed).await? {
            Updated::Done(record) => {
                tracing::info!(previous = %existing.state, "sending the recorded payout again under the same payment ID");
                self.drive(record, body, start).await
            }
            Updated::Conflict(current) => {
                let current = current.unwrap_or(existing);
                Ok(receipt(&current, Acceptance::AlreadyRecorded, 0))
            }
        }
    }

    /// Runs the retry loop for a recorded payout and records the result.
    async fn drive(
        &self,
        record: PayoutRecord,
        body: Vec<u8>,
        start: Start,
    ) -> Result<PayoutReceipt, Error> {
        let policy = &self.config.retry;
        let started = self.clock.now();
        let payment_id = record.payment_id.clone();
        let mut state = RetryState {
            maybe_sent: start == Start::CheckStatus,
            ..RetryState::default()
        };
        let mut next = match start {
            Start::Send => Next::Send(Duration::ZERO),
            Start::CheckStatus => Next::CheckStatus(Duration::ZERO),
        };
        let mut last = String::from("no answer yet");
        let (step, answer) = loop {
            let (observation, answer) = match next {
                Next::Send(after) => {
                    self.clock.sleep(after).await;
                    state.attempts += 1;
                    tracing::debug!(attempt = state.attempts, "sending payout request");
                    self.attempt(&payment_id, &body, &mut last).await
                }
                Next::CheckStatus(after) => {
                    self.clock.sleep(after).await;
                    state.status_checks += 1;
                    tracing::debug!(check = state.status_checks, "asking the status");
                    self.check(&payment_id, &mut last).await
                }
            };
            state.elapsed = elapsed(self.clock.now(), started);
            let jitter = Jitter::from_random(random_bits());
            let step = decide(policy, &state, &observation, jitter);
            state.observe(&observation);
            tracing::debug!(?observation, ?step, "retry decision");
            next = match step {
                Step::Send { after } => Next::Send(after),
                Step::CheckStatus { after } => Next::CheckStatus(after),
                done => break (done, answer),
            };
        };

        let attempts = state.attempts;
        match (step, answer) {
            (Step::Accepted | Step::FirstAttemptGotThrough, answer) => {
                let acceptance = if step == Step::Accepted {
                    Acceptance::Accepted
                } else {
                    Acceptance::FirstAttemptGotThrough
                };
                let request_id = match answer {
                    Answer::Accepted { request_id } => request_id,
                    _ => None,
                };
                tracing::info!(?acceptance, attempts, "payout accepted for processing");
                let stored = self
                    .change(&payment_id, |current| {
                        let newer_request =
                            request_id.is_some() && current.request_id != request_id;
                        let advance = match &current.state {
                            PayoutState::Created
                            | PayoutState::Unknown
                            | PayoutState::NotRegistered => true,
                            // An `error` reported for an earlier request: this resend was accepted.
                            PayoutState::Status(PaymentStatus::Error) => newer_request,
                            // A callback got there first: it is at least as advanced.
                            _ => false,
                        };
                        let fill_request = current.request_id.is_none() && request_id.is_some();
                        if !advance && !fill_request {
                            return (None, ());
                        }
                        let mut next = current.clone();
                        if advance {
                            next.state = PayoutState::Accepted;
                        }
                        if request_id.is_some() {
                            next.request_id.clone_from(&request_id);
                        }
                        (Some(next), ())
                    })
                    .await?
                    .0;
                Ok(receipt(&stored, acceptance, attempts))
            }
            (Step::Registered, Answer::Found(report)) => {
                tracing::info!(status = %report.status, attempts, "the platform has the payout");
                let stored = self.apply_found(&payment_id, *report).await?.0;
                Ok(receipt(&stored, Acceptance::FoundByStatus, attempts))
            }
            (Step::Rejected, Answer::Rejected(error)) => {
                tracing::warn!(%error, "payout rejected");
                if let Error::Rejected { code, message, .. } = &error {
                    let state = PayoutState::Rejected {
                        code: code.clone(),
                        message: message.clone(),
                    };
                    self.settle_if_created(
                        &payment_id,
                        state,
                        Some(code.clone()),
                        Some(message.clone()),
                    )
                    .await?;
                }
                Err(error)
            }
            (Step::GiveUpNotSent, _) => {
                tracing::warn!(attempts, %last, "payout not sent; budget exhausted");
                self.settle_if_created(&payment_id, PayoutState::NotRegistered, None, None)
                    .await?;
                Err(Error::NotSent {
                    payment_id,
                    attempts,
                    last,
                })
            }
            _ => Err(self.unknown(&payment_id, attempts, last).await),
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
    /// describes a failure in `last`.
    async fn check(&self, payment_id: &PaymentId, last: &mut String) -> (Observation, Answer) {
        match self
            .status(payment_id)
            .await
            .and_then(|report| self.trusted(report))
        {
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

    /// The report, if it may change a recorded payout: signed, or unsigned with
    /// [`Config::with_unsigned_status`]; otherwise [`Error::UnsignedStatus`].
    fn trusted(&self, report: StatusReport) -> Result<StatusReport, Error> {
        if report.signature_verified || self.config.accept_unsigned_status {
            Ok(report)
        } else {
            tracing::warn!("unsigned status response; not applied");
            Err(Error::UnsignedStatus {
                payment_id: report.payment_id,
            })
        }
    }

    /// Applies the status of a payment the platform has, after checking it is this payout:
    /// a different amount or currency under the same payment ID marks the record
    /// [`PayoutState::PaymentIdTaken`] and is [`Error::PaymentIdConflict`]. An unsigned report
    /// is [`Error::UnsignedStatus`] unless the config accepts it.
    pub(crate) async fn apply_found(
        &self,
        payment_id: &PaymentId,
        report: StatusReport,
    ) -> Result<(PayoutRecord, StatusChange, PayoutState), Error> {
        let report = self.trusted(report)?;
        let record =
            self.store.get(payment_id).await?.ok_or_else(|| {
                Error::store(format!("update payout {payment_id}"), "not recorded")
            })?;
        if let Some(difference) = platform_difference(&record.request, &report) {
            tracing::warn!(%difference, "the platform has a different payout under this payment ID; not adopting it");
            self.change(payment_id, |current| {
                if current.state == PayoutState::PaymentIdTaken {
                    return (None, ());
                }
                let mut next = current.clone();
                next.state = PayoutState::PaymentIdTaken;
                next.last_code = None;
                next.last_message = Some(difference.clone());
                (Some(next), ())
            })
            .await?;
            return Err(Error::PaymentIdConflict {
                payment_id: payment_id.clone(),
                platform: Some(difference),
            });
        }
        self.apply_report(payment_id, &report).await
    }

    /// Records an unknown outcome and builds its error.
    async fn unknown(&self, payment_id: &PaymentId, attempts: u32, last: String) -> Error {
        tracing::warn!(attempts, %last, "payout outcome unknown; it will be reconciled");
        if let Err(error) = self
            .settle_if_created(payment_id, PayoutState::Unknown, None, None)
            .await
        {
            tracing::error!(%error, "could not record the unknown outcome; the record stays `created` and reconcile will resolve it");
        }
        Error::OutcomeUnknown {
            payment_id: payment_id.clone(),
            attempts,
            last,
        }
    }

    /// Moves a payout still in `Created` to `state` (a callback may have moved it already).
    async fn settle_if_created(
        &self,
        payment_id: &PaymentId,
        state: PayoutState,
        code: Option<ResponseCode>,
        message: Option<String>,
    ) -> Result<PayoutRecord, Error> {
        Ok(self
            .change(payment_id, |current| {
                if current.state != PayoutState::Created {
                    return (None, ());
                }
                let mut next = current.clone();
                next.state = state.clone();
                if code.is_some() {
                    next.last_code.clone_from(&code);
                    next.last_message.clone_from(&message);
                }
                (Some(next), ())
            })
            .await?
            .0)
    }

    /// Applies a status report to the record, by the state rules.
    async fn apply_report(
        &self,
        payment_id: &PaymentId,
        report: &StatusReport,
    ) -> Result<(PayoutRecord, StatusChange, PayoutState), Error> {
        let request_id = report.request_id().map(str::to_owned);
        self.apply_status(
            payment_id,
            &report.status,
            request_id,
            report.last_code.clone(),
            report.last_message.clone(),
            false,
        )
        .await
    }

    /// Applies a reported payment status; returns the stored record, the change and the
    /// previous state.
    ///
    /// With `earlier_error_is_stale` (callbacks), an `error` reported for a request other than
    /// the recorded one (both request IDs known) is [`StatusChange::Stale`]: the payout was
    /// resent since, and a late or redelivered `error` of the earlier request must not undo it.
    pub(crate) async fn apply_status(
        &self,
        payment_id: &PaymentId,
        status: &PaymentStatus,
        request_id: Option<String>,
        code: Option<ResponseCode>,
        message: Option<String>,
        earlier_error_is_stale: bool,
    ) -> Result<(PayoutRecord, StatusChange, PayoutState), Error> {
        let (record, (change, previous)) = self
            .change(payment_id, |current| {
                let earlier_error = earlier_error_is_stale
                    && *status == PaymentStatus::Error
                    && request_id.is_some()
                    && current.request_id.is_some()
                    && request_id != current.request_id;
                let change = if earlier_error {
                    StatusChange::Stale
                } else {
                    current.state.on_status(status)
                };
                let previous = current.state.clone();
                if !matches!(change, StatusChange::Apply | StatusChange::Reversal) {
                    return (None, (change, previous));
                }
                let mut next = current.clone();
                next.state = PayoutState::Status(status.clone());
                if request_id.is_some() {
                    next.request_id.clone_from(&request_id);
                }
                if code.is_some() {
                    next.last_code.clone_from(&code);
                    next.last_message.clone_from(&message);
                }
                (Some(next), (change, previous))
            })
            .await?;
        Ok((record, change, previous))
    }

    /// Compare-and-set with retries: `f` maps the current record to the new one (or `None` to
    /// leave it) and a value to return.
    pub(crate) async fn change<T>(
        &self,
        payment_id: &PaymentId,
        f: impl Fn(&PayoutRecord) -> (Option<PayoutRecord>, T),
    ) -> Result<(PayoutRecord, T), Error> {
        let mut current =
            self.store.get(payment_id).await?.ok_or_else(|| {
                Error::store(format!("update payout {payment_id}"), "not recorded")
            })?;
        for _ in 0..MAX_CAS_TRIES {
            let (next, value) = f(&current);
            let Some(mut next) = next else {
                return Ok((current, value));
            };
            next.updated_at = self.clock.now();
            match self.store.update(current.version, next).await? {
                Updated::Done(stored) => return Ok((stored, value)),
                Updated::Conflict(Some(fresh)) => current = fresh,
                Updated::Conflict(None) => {
                    return Err(Error::store(
                        format!("update payout {payment_id}"),
                        "the record disappeared",
                    ));
                }
            }
        }
        Err(Error::store(
            format!("update payout {payment_id}"),
            format!("still conflicting after {MAX_CAS_TRIES} tries"),
        ))
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

    /// The status of a payment (`POST /v2/payment/status`), with the response signature
    /// verified when present. An unsigned answer is returned with
    /// [`StatusReport::signature_verified`] false; payout calls and reconcile do not apply it
    /// unless [`Config::with_unsigned_status`] allows it.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for 3061, [`Error::InvalidResponseSignature`] for a signature that
    /// does not verify, [`Error::Rejected`] for another error code, [`Error::Transport`], or
    /// [`Error::UnexpectedResponse`].
    pub async fn status(&self, payment_id: &PaymentId) -> Result<StatusReport, Error> {
        let request = wire::StatusRequest {
            general: wire::General::new(
                self.config.project_id.get(),
                Some(payment_id.as_str().to_owned()),
            ),
        };
        let body = self.sign("status", &request)?;
        let response = self
            .transport
            .post(HttpRequest::new(STATUS_PATH, body))
            .await
            .map_err(|source| Error::Transport {
                what: "status",
                source,
            })?;
        self.read_status(payment_id, &response)
    }

    fn read_status(
        &self,
        payment_id: &PaymentId,
        response: &HttpResponse,
    ) -> Result<StatusReport, Error> {
        let value: Value = serde_json::from_slice(&response.body)
            .map_err(|e| unexpected("status", response, &format!("not JSON ({e})")))?;
        let signed = value.get("signature").is_some()
            || value
                .get("general")
                .and_then(|g| g.get("signature"))
                .is_some();
        if signed {
            self.signer
                .verify_value(&value)
                .map_err(|source| Error::InvalidResponseSignature {
                    what: "status",
                    source,
                })?;
        }
        let raw: wire::StatusResponse = serde_json::from_value(value)
            .map_err(|e| unexpected("status", response, &format!("not a status response ({e})")))?;
        let status = raw.payment.as_ref().and_then(|p| p.status.clone());
        let Some(status) = status else {
            if raw
                .first_code()
                .is_some_and(|c| c.is(ResponseCode::TRANSACTION_NOT_FOUND))
            {
                return Err(Error::NotFound {
                    payment_id: payment_id.clone(),
                });
            }
            let envelope = wire::GateResponse {
                code: raw.code,
                message: raw.message,
                errors: raw.errors,
                ..wire::GateResponse::default()
            };
            return Err(
                rejection("status", Some(payment_id), response.status, &envelope)
                    .unwrap_or_else(|| unexpected("status", response, "no payment.status")),
            );
        };
        if raw
            .project_id
            .is_some_and(|p| p != self.config.project_id.get())
        {
            return Err(unexpected("status", response, "the project_id is not ours"));
        }
        if raw
            .payment
            .as_ref()
            .and_then(|p| p.id.as_deref())
            .is_some_and(|id| id != payment_id.as_str())
        {
            return Err(unexpected(
                "status",
                response,
                "the payment.id is not the one asked for",
            ));
        }
        let last_operation = raw.last_operation();
        let last_code = last_operation
            .and_then(|op| op.code.clone())
            .or_else(|| raw.first_code().cloned());
        let last_message = last_operation
            .and_then(|op| op.message.clone())
            .or_else(|| raw.errors.iter().find_map(|e| e.message.clone()));
        Ok(StatusReport {
            payment_id: payment_id.clone(),
            status,
            operations: raw.operations.clone(),
            last_code,
            last_message,
            signature_verified: signed,
            raw,
        })
    }

    fn sign<T: serde::Serialize>(&self, what: &'static str, request: &T) -> Result<Vec<u8>, Error> {
        self.signer
            .sign_request_body(request)
            .map_err(|source| Error::Sign { what, source })
    }
}

/// A receipt for a record.
fn receipt(record: &PayoutRecord, acceptance: Acceptance, attempts: u32) -> PayoutReceipt {
    PayoutReceipt {
        payment_id: record.payment_id.clone(),
        acceptance,
        state: record.state.clone(),
        request_id: record.request_id.clone(),
        attempts,
    }
}

/// [`Error::Rejected`] from an error envelope, when it has a code.
fn rejection(
    what: &'static str,
    payment_id: Option<&PaymentId>,
    http_status: u16,
    envelope: &wire::GateResponse,
) -> Option<Error> {
    let code = envelope.first_code()?;
    Some(coded_rejection(
        what,
        payment_id,
        http_status,
        code,
        envelope,
    ))
}

/// [`Error::Rejected`] from an error envelope and its (first) code.
fn coded_rejection(
    what: &'static str,
    payment_id: Option<&PaymentId>,
    http_status: u16,
    code: &ResponseCode,
    envelope: &wire::GateResponse,
) -> Error {
    let message = envelope
        .first_message()
        .map(str::to_owned)
        .or_else(|| code.message().map(str::to_owned))
        .unwrap_or_else(|| "no message".to_owned());
    let field = envelope.errors.iter().find_map(|e| e.field.clone());
    Error::Rejected {
        what,
        payment_id: payment_id.cloned(),
        http_status: Some(http_status),
        code: code.clone(),
        message,
        field,
    }
}

/// How the payment the platform reports under this payout's ID differs from it (amount or
/// currency), if it does. Without `payment.sum` in the report there is nothing to compare.
fn platform_difference(request: &wire::PayoutRequest, report: &StatusReport) -> Option<String> {
    let sum = report.raw.payment.as_ref()?.sum.as_ref()?;
    let expected = &request.payment;
    if sum.amount == expected.amount && sum.currency.eq_ignore_ascii_case(&expected.currency) {
        return None;
    }
    Some(format!(
        "the platform has {} {} under it, this payout is {} {} (minor units)",
        sum.amount,
        excerpt(sum.currency.as_bytes()),
        expected.amount,
        expected.currency
    ))
}

fn unexpected(what: &'static str, response: &HttpResponse, reason: &str) -> Error {
    Error::UnexpectedResponse {
        what,
        http_status: response.status,
        reason: reason.to_owned(),
        body: excerpt(&response.body),
    }
}

fn elapsed(now: SystemTime, started: SystemTime) -> Duration {
    now.duration_since(started).unwrap_or_default()
}

/// 64 random bits for the backoff jitter.
fn random_bits() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish()
}
