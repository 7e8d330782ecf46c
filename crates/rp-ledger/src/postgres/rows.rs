//! Records and events to PostgreSQL rows and back, in the SQLite ledger's stored forms: times
//! as nanoseconds since the Unix epoch (`BIGINT`, exact), versions as `BIGINT`, states as
//! tagged JSON (never `Display`), the request as JSON with its SHA-256 in hex.

use rp_model::{PaymentId, ResponseCode, wire};
use rp_payout::{EventSource, PayoutEvent, PayoutRecord, PayoutState};
use tokio_postgres::Row;

use crate::stored::time;
pub(super) use crate::stored::{EVENT_COLUMNS, MUTABLE_COLUMNS, RECORD_COLUMNS, nanos, version};

/// The request as stored, and its SHA-256 in hex.
pub(super) fn request_text(request: &wire::PayoutRequest) -> Result<(String, String), String> {
    crate::stored::request_text(request).map_err(|e| format!("the request as JSON: {e}"))
}

/// A state as stored.
pub(super) fn state_text(state: &PayoutState) -> Result<String, String> {
    crate::stored::state_text(state).map_err(|e| format!("the state as JSON: {e}"))
}

/// The mutable columns of a record, in the order of [`MUTABLE_COLUMNS`].
#[derive(Debug)]
pub(super) struct Mutable {
    pub(super) state: String,
    pub(super) state_label: String,
    pub(super) settled: bool,
    pub(super) updated_at: i64,
    pub(super) request_id: Option<String>,
    pub(super) last_code: Option<String>,
    pub(super) last_message: Option<String>,
    pub(super) attention: Option<String>,
    pub(super) maybe_sent: bool,
    pub(super) claimed_by: Option<String>,
    pub(super) attempts: i64,
    pub(super) lease_until: Option<i64>,
    pub(super) next_check_at: Option<i64>,
}

impl Mutable {
    /// The mutable columns of `record`.
    pub(super) fn of(record: &PayoutRecord) -> Result<Mutable, String> {
        Ok(Mutable {
            state: state_text(&record.state)?,
            state_label: record.state.label().to_owned(),
            settled: record.state.is_settled(),
            updated_at: nanos(record.updated_at),
            request_id: record.request_id.clone(),
            last_code: record.last_code.as_ref().map(|c| c.as_str().to_owned()),
            last_message: record.last_message.clone(),
            attention: record.attention.clone(),
            maybe_sent: record.maybe_sent,
            claimed_by: record.claimed_by.clone(),
            attempts: i64::from(record.attempts),
            lease_until: record.lease_until.map(nanos),
            next_check_at: record.next_check_at.map(nanos),
        })
    }

    /// The values as query parameters, in the order of [`MUTABLE_COLUMNS`].
    pub(super) fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 13] {
        [
            &self.state,
            &self.state_label,
            &self.settled,
            &self.updated_at,
            &self.request_id,
            &self.last_code,
            &self.last_message,
            &self.attention,
            &self.maybe_sent,
            &self.claimed_by,
            &self.attempts,
            &self.lease_until,
            &self.next_check_at,
        ]
    }
}

/// The columns of an event row after its key, in the order of [`EVENT_COLUMNS`].
#[derive(Debug)]
pub(super) struct EventRow {
    pub(super) at: i64,
    pub(super) source: String,
    pub(super) previous: Option<String>,
    pub(super) state: String,
    pub(super) code: Option<String>,
    pub(super) message: Option<String>,
    pub(super) note: Option<String>,
    pub(super) raw: Option<String>,
}

impl EventRow {
    /// The row of `event`.
    pub(super) fn of(event: &PayoutEvent) -> Result<EventRow, String> {
        Ok(EventRow {
            at: nanos(event.at),
            source: event.source.as_text(),
            previous: event.previous.as_ref().map(state_text).transpose()?,
            state: state_text(&event.state)?,
            code: event.code.as_ref().map(|c| c.as_str().to_owned()),
            message: event.message.clone(),
            note: event.note.clone(),
            raw: event.raw.clone(),
        })
    }

    /// The values as query parameters, in the order of [`EVENT_COLUMNS`].
    pub(super) fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 8] {
        [
            &self.at,
            &self.source,
            &self.previous,
            &self.state,
            &self.code,
            &self.message,
            &self.note,
            &self.raw,
        ]
    }
}

/// A record from a row of [`RECORD_COLUMNS`].
pub(super) fn record(row: &Row) -> Result<PayoutRecord, String> {
    record_at(row, 0)
}

/// A record from the columns of [`RECORD_COLUMNS`] that start at column `first` of `row`.
pub(super) fn record_at(row: &Row, first: usize) -> Result<PayoutRecord, String> {
    let at = |index: usize| first + index;
    let payment_id: String = column(row, at(0))?;
    let payment_id = PaymentId::new(payment_id).map_err(|e| format!("column payment_id: {e}"))?;
    let request: String = column(row, at(1))?;
    let request: wire::PayoutRequest =
        serde_json::from_str(&request).map_err(|e| format!("column request: {e}"))?;
    let state: String = column(row, at(2))?;
    let state: PayoutState =
        serde_json::from_str(&state).map_err(|e| format!("column state: {e}"))?;
    let mut record = PayoutRecord::new(payment_id, request, time(column(row, at(4))?));
    record.state = state;
    record.version = u64::try_from(column::<i64>(row, at(3))?).unwrap_or(0);
    record.updated_at = time(column(row, at(5))?);
    record.request_id = column(row, at(6))?;
    record.last_code = column::<Option<String>>(row, at(7))?.map(ResponseCode::new);
    record.last_message = column(row, at(8))?;
    record.attention = column(row, at(9))?;
    record.maybe_sent = column(row, at(10))?;
    record.claimed_by = column(row, at(11))?;
    record.attempts = u32::try_from(column::<i64>(row, at(12))?).unwrap_or(u32::MAX);
    record.lease_until = column::<Option<i64>>(row, at(13))?.map(time);
    record.next_check_at = column::<Option<i64>>(row, at(14))?.map(time);
    record.metadata = column(row, at(15))?;
    Ok(record)
}

/// An event from a row of [`EVENT_COLUMNS`].
pub(super) fn event(row: &Row) -> Result<PayoutEvent, String> {
    event_at(row, 0)
}

/// An event from the columns of [`EVENT_COLUMNS`] that start at column `first` of `row`.
pub(super) fn event_at(row: &Row, first: usize) -> Result<PayoutEvent, String> {
    let at = |index: usize| first + index;
    let source: String = column(row, at(1))?;
    let source = EventSource::from_text(&source)
        .ok_or_else(|| format!("column source: unknown event source {source:?}"))?;
    let state_at = |index: usize| -> Result<Option<PayoutState>, String> {
        column::<Option<String>>(row, at(index))?
            .map(|text| serde_json::from_str(&text).map_err(|e| format!("column {index}: {e}")))
            .transpose()
    };
    let previous = state_at(2)?;
    let state = state_at(3)?.ok_or_else(|| "column state: no state".to_owned())?;
    Ok(
        PayoutEvent::new(time(column(row, at(0))?), source, previous, state)
            .with_code(
                column::<Option<String>>(row, at(4))?.map(ResponseCode::new),
                column(row, at(5))?,
            )
            .with_note(column(row, at(6))?)
            .with_raw(column(row, at(7))?),
    )
}

/// The `columns` (as [`RECORD_COLUMNS`] lists them) of the table or subquery `alias`.
pub(super) fn qualified(columns: &str, alias: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Column `index` of `row`, or what is wrong with it.
fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: usize,
) -> Result<T, String> {
    row.try_get(index).map_err(|e| {
        let name = row.columns().get(index).map_or("?", |c| c.name());
        format!("column {name}: {e}")
    })
}
