//! The status endpoint: [`Client::status`] and [`StatusReport`]. A response that carries a
//! signature is verified; an unsigned one is shown but changes nothing unless the config
//! allows it ([`Client::trusted`]).

use rp_model::{PaymentId, PaymentStatus, ResponseCode, wire};
use rp_transport::{HttpRequest, HttpResponse};
use serde_json::Value;

use super::{Client, STATUS_PATH, rejection, unexpected};
use crate::Error;
use crate::error::mask_phone_numbers;

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
    /// store unless [`Config::with_unsigned_status`](crate::Config::with_unsigned_status) allows it.
    pub signature_verified: bool,
    /// The whole response.
    pub raw: wire::StatusResponse,
    /// The response body as received, which the signature covers: kept in the payout's
    /// history. Its `Debug` shows only its length (it holds the phone number).
    pub(crate) body: ReceivedBody,
}

/// A response body as received; `Debug` shows its length only.
#[derive(Clone, PartialEq)]
pub(crate) struct ReceivedBody(pub(crate) String);

impl std::fmt::Debug for ReceivedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
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

impl Client {
    /// The status of a payment (`POST /v2/payment/status`), with the response signature
    /// verified when present. An unsigned answer is returned with
    /// [`StatusReport::signature_verified`] false; payout calls and reconcile do not apply it
    /// unless [`Config::with_unsigned_status`](crate::Config::with_unsigned_status) allows it.
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
                    signature_verified: signed,
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
        // Platform messages may quote the phone number.
        let last_message = last_operation
            .and_then(|op| op.message.clone())
            .or_else(|| raw.errors.iter().find_map(|e| e.message.clone()))
            .map(|m| mask_phone_numbers(&m));
        Ok(StatusReport {
            payment_id: payment_id.clone(),
            status,
            operations: raw.operations.clone(),
            last_code,
            last_message,
            signature_verified: signed,
            raw,
            body: ReceivedBody(String::from_utf8_lossy(&response.body).into_owned()),
        })
    }

    /// The report, if it may change a recorded payout: signed, or unsigned with
    /// [`Config::with_unsigned_status`](crate::Config::with_unsigned_status); otherwise [`Error::UnsignedStatus`].
    pub(crate) fn trusted(&self, report: StatusReport) -> Result<StatusReport, Error> {
        if report.signature_verified || self.config.accept_unsigned_status {
            Ok(report)
        } else {
            tracing::warn!("unsigned status response; not applied");
            Err(Error::UnsignedStatus {
                payment_id: report.payment_id,
            })
        }
    }
}
