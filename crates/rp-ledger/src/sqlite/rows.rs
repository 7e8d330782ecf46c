//! Records and events to SQLite rows and back. Times are nanoseconds since the Unix epoch;
//! states are tagged JSON (never `Display`); the request is JSON with its SHA-256.

use rp_model::{PaymentId, ResponseCode, wire};
use rp_payout::{EventSource, PayoutEvent, PayoutRecord, PayoutState};
use rusqlite::Row;
use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, Type, Value, ValueRef};

use crate::stored::time;
pub(super) use crate::stored::{EVENT_COLUMNS, MUTABLE_COLUMNS, RECORD_COLUMNS, nanos, version};

/// The request as stored, and its SHA-256 in hex.
pub(super) fn request_text(request: &wire::PayoutRequest) -> rusqlite::Result<(String, String)> {
    crate::stored::request_text(request).map_err(to_sql_error)
}

/// A state as stored.
pub(super) fn state_text(state: &PayoutState) -> rusqlite::Result<String> {
    crate::stored::state_text(state).map_err(to_sql_error)
}

/// The values of the mutable columns of `record`, in the order of [`MUTABLE_COLUMNS`]:
/// `state, state_label, settled, updated_at, request_id, last_code, last_message, attention,
/// maybe_sent, claimed_by, attempts, lease_until, next_check_at`.
pub(super) fn mutable_values(record: &PayoutRecord) -> rusqlite::Result<Vec<Value>> {
    Ok(vec![
        Value::Text(state_text(&record.state)?),
        Value::Text(record.state.label().to_owned()),
        Value::Integer(i64::from(record.state.is_settled())),
        Value::Integer(nanos(record.updated_at)),
        optional(record.request_id.as_deref()),
        optional(record.last_code.as_ref().map(ResponseCode::as_str)),
        optional(record.last_message.as_deref()),
        optional(record.attention.as_deref()),
        Value::Integer(i64::from(record.maybe_sent)),
        optional(record.claimed_by.as_deref()),
        Value::Integer(i64::from(record.attempts)),
        record
            .lease_until
            .map_or(Value::Null, |until| Value::Integer(nanos(until))),
        record
            .next_check_at
            .map_or(Value::Null, |at| Value::Integer(nanos(at))),
    ])
}

/// The values of an event row after its key: `at, source, previous, state, code, message,
/// note, raw`.
pub(super) fn event_values(event: &PayoutEvent) -> rusqlite::Result<Vec<Value>> {
    Ok(vec![
        Value::Integer(nanos(event.at)),
        Value::Text(event.source.as_text()),
        match &event.previous {
            Some(previous) => Value::Text(state_text(previous)?),
            None => Value::Null,
        },
        Value::Text(state_text(&event.state)?),
        optional(event.code.as_ref().map(ResponseCode::as_str)),
        optional(event.message.as_deref()),
        optional(event.note.as_deref()),
        optional(event.raw.as_deref()),
    ])
}

fn optional(text: Option<&str>) -> Value {
    text.map_or(Value::Null, |t| Value::Text(t.to_owned()))
}

/// A record from a row of [`RECORD_COLUMNS`].
pub(super) fn record(row: &Row<'_>) -> rusqlite::Result<PayoutRecord> {
    let payment_id: String = row.get(0)?;
    let payment_id = PaymentId::new(payment_id).map_err(|e| from_sql_error(0, e))?;
    let request: String = row.get(1)?;
    let request: wire::PayoutRequest =
        serde_json::from_str(&request).map_err(|e| from_sql_error(1, e))?;
    let state: String = row.get(2)?;
    let state: PayoutState = serde_json::from_str(&state).map_err(|e| from_sql_error(2, e))?;
    let mut record = PayoutRecord::new(payment_id, request, time(row.get(4)?));
    record.state = state;
    record.version = u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0);
    record.updated_at = time(row.get(5)?);
    record.request_id = row.get(6)?;
    record.last_code = row.get::<_, Option<String>>(7)?.map(ResponseCode::new);
    record.last_message = row.get(8)?;
    record.attention = row.get(9)?;
    record.maybe_sent = row.get::<_, i64>(10)? != 0;
    record.claimed_by = row.get(11)?;
    record.attempts = u32::try_from(row.get::<_, i64>(12)?).unwrap_or(u32::MAX);
    record.lease_until = row.get::<_, Option<i64>>(13)?.map(time);
    record.next_check_at = row.get::<_, Option<i64>>(14)?.map(time);
    record.metadata = row.get(15)?;
    Ok(record)
}

/// A payment ID exactly as stored, whatever it holds (text that is not UTF-8, a BLOB: a
/// foreign write), as the keyset cursor of a walk that goes on after an unreadable record.
/// (`rusqlite`'s own `Value` panics on text that is not UTF-8.)
#[derive(Clone)]
pub(super) enum StoredKey {
    /// Text, as its bytes.
    Text(Vec<u8>),
    /// Anything else.
    Other(Value),
}

impl StoredKey {
    /// Column `index` of `row`.
    pub(super) fn read(row: &Row<'_>, index: usize) -> rusqlite::Result<StoredKey> {
        Ok(match row.get_ref(index)? {
            ValueRef::Text(bytes) => StoredKey::Text(bytes.to_vec()),
            other => StoredKey::Other(Value::from(other)),
        })
    }

    /// For a log line: the text (lossy), or what it is when it is not text.
    pub(super) fn describe(&self) -> String {
        match self {
            StoredKey::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            StoredKey::Other(Value::Blob(bytes)) => format!("(a BLOB of {} bytes)", bytes.len()),
            StoredKey::Other(Value::Integer(n)) => format!("(the number {n})"),
            StoredKey::Other(Value::Real(n)) => format!("(the number {n})"),
            StoredKey::Other(_) => "(NULL)".to_owned(),
        }
    }
}

impl ToSql for StoredKey {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            StoredKey::Text(bytes) => ValueRef::Text(bytes),
            StoredKey::Other(value) => ValueRef::from(value),
        }))
    }
}

/// An event from a row of [`EVENT_COLUMNS`].
pub(super) fn event(row: &Row<'_>) -> rusqlite::Result<PayoutEvent> {
    let source: String = row.get(1)?;
    let source = EventSource::from_text(&source)
        .ok_or_else(|| from_sql_error(1, format!("unknown event source {source:?}")))?;
    let state_at = |index: usize| -> rusqlite::Result<Option<PayoutState>> {
        row.get::<_, Option<String>>(index)?
            .map(|text| serde_json::from_str(&text).map_err(|e| from_sql_error(index, e)))
            .transpose()
    };
    let previous = state_at(2)?;
    let state = state_at(3)?.ok_or_else(|| from_sql_error(3, "no state"))?;
    Ok(PayoutEvent::new(time(row.get(0)?), source, previous, state)
        .with_code(
            row.get::<_, Option<String>>(4)?.map(ResponseCode::new),
            row.get(5)?,
        )
        .with_note(row.get(6)?)
        .with_raw(row.get(7)?))
}

fn to_sql_error(error: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(error))
}

fn from_sql_error(index: usize, error: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, error.to_string().into())
}
