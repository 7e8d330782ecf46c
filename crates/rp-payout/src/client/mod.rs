//! [`Client`]: construction, configuration and the operator list; the payout phases live in
//! the submodules, one phase a file:
//!
//! - `submit.rs`: [`Client::payout`] and [`Client::resume`]: record, or decide what is safe
//!   to send for a payout already recorded.
//! - `attempts.rs`: the retry loop of one call (send, ask the status, follow
//!   [`crate::retry::decide`]) and how its result is recorded.
//! - `status.rs`: [`Client::status`] and [`StatusReport`]: the status endpoint, its signature.
//! - `record.rs`: every change to a recorded payout (compare-and-set), adoption of what the
//!   platform reports after the identity check (`identity.rs`).

mod attempts;
mod record;
mod status;
mod submit;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rp_model::{PaymentId, ProjectId, RequestStatus, ResponseCode, wire};
use rp_sign::Signer;
use rp_transport::{HttpRequest, HttpResponse, Transport};

use crate::error::{excerpt, mask_phone_numbers};
use crate::owner::Owner;
use crate::store::{PayoutRecord, PayoutState, PayoutStore};
use crate::{
    Clock, Config, Error, MemoryStore, OperatorList, PaymentIdGenerator, RandomPaymentIds,
    SystemClock,
};

pub(crate) use record::{Origin, StatusUpdate};
pub use rp_model::wire::{OPERATORS_PATH, PAYOUT_PATH, STATUS_PATH};
pub use status::StatusReport;
pub use submit::Recorded;

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
    /// This process, as it claims payouts to send them.
    pub(crate) owner: Owner,
    /// Who [`Client::payout`] records a new payout as coming from (default
    /// [`EventSource::Call`]; see [`Client::recording_as`]).
    pub(crate) source: crate::EventSource,
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
    /// The transport (default: [`Config::default_transport`](crate::Config::default_transport)).
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
            None => Arc::new(self.config.default_transport()?),
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
            owner: Owner::new_client(),
            source: crate::EventSource::Call,
        })
    }
}

/// How [`Client::payout`] knows the payout is with the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Acceptance {
    /// The platform answered "accepted for processing".
    Accepted,
    /// The status endpoint showed the payment, signed and matching this payout (amount,
    /// currency, phone number, customer): after an unknown outcome, or after a `3041`
    /// "payment ID already exists" showed that an earlier attempt (this call's, or another
    /// call's, process's or store's) got through.
    FoundByStatus,
    /// The same payout was submitted before and the platform has it (or it is settled);
    /// nothing was sent this time.
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

    /// The same client (transport, store, clock, payment IDs, owner) applying `limits`
    /// instead of its configuration's: e.g. a batch's worker applies the stricter of the
    /// project's limits and those the batch was confirmed with.
    pub fn with_limits(&self, limits: rp_model::Limits) -> Client {
        Client {
            config: self.config.clone().with_limits(limits),
            signer: self.signer.clone(),
            transport: Arc::clone(&self.transport),
            store: Arc::clone(&self.store),
            clock: Arc::clone(&self.clock),
            ids: Arc::clone(&self.ids),
            owner: self.owner.clone(),
            source: self.source.clone(),
        }
    }

    /// The same client, recording the payouts [`Client::payout`] makes as coming from
    /// `source` (e.g. the console operator who confirmed a batch, whose rows it pays): the
    /// first event of each one's history says who.
    #[must_use]
    pub fn recording_as(mut self, source: crate::EventSource) -> Client {
        self.source = source;
        self
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

    pub(crate) fn sign<T: serde::Serialize>(
        &self,
        what: &'static str,
        request: &T,
    ) -> Result<Vec<u8>, Error> {
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
    // The platform's message may quote the phone number (it is logged, stored and shown).
    let message = envelope
        .first_message()
        .map(mask_phone_numbers)
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

fn unexpected(what: &'static str, response: &HttpResponse, reason: &str) -> Error {
    Error::UnexpectedResponse {
        what,
        http_status: response.status,
        // A parser's reason can quote a value of the body, such as the phone number.
        reason: mask_phone_numbers(reason),
        body: excerpt(&response.body),
    }
}

fn elapsed(now: SystemTime, started: SystemTime) -> Duration {
    now.duration_since(started).unwrap_or_default()
}
