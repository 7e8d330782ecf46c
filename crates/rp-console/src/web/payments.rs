//! `/payments` (the list, filtered, counted, paged, live), `/payments.csv` (the filtered list
//! as CSV) and `/attention`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use rp_model::{Msisdn, PaymentId};
use rp_payout::{PayoutOrigin, PayoutQuery, PayoutRecord};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::layout::{amount, badge, masked_phone, notice, page, payment_path, url_encode, utc};
use super::{ChannelStream, html, ledger_failed};
use crate::batch_page::{BatchPage, batch_page};
use crate::{Desk, Me};

/// Payouts on one page of the list.
const PAGE: usize = 50;

/// Rows the export reads from the ledger at a time.
const EXPORT_PAGE: usize = 500;

/// The filters of the list, as the query string carries them.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct Filters {
    #[serde(default)]
    state: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    payment_id: String,
    /// Where the payouts came from: `api`, `console`, `batch`, `library`
    /// ([`PayoutOrigin`]).
    #[serde(default)]
    source: String,
    /// `YYYY-MM-DD`, UTC, from the start of that day.
    #[serde(default)]
    since: String,
    /// `YYYY-MM-DD`, UTC, to the end of that day.
    #[serde(default)]
    until: String,
    /// A batch ID: that batch's payouts, in file order (the other filters do not apply).
    #[serde(default)]
    batch: String,
    /// The cursor: `NANOS.PAYMENT_ID` of the last row of the previous page.
    #[serde(default)]
    after: String,
}

impl Filters {
    /// The ledger query, or what is wrong with a filter.
    fn query(&self, attention: bool) -> Result<PayoutQuery, String> {
        let mut query = PayoutQuery::new().limit(PAGE);
        if attention {
            query = query.attention();
        }
        let state = self.state.trim();
        if !state.is_empty() {
            if !state
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b' ')
            {
                return Err(format!("unknown state {state:?}"));
            }
            query = query.state(state);
        }
        let phone = self.phone.trim();
        if !phone.is_empty() {
            let digits = Msisdn::parse(phone)
                .map(|p| p.as_str().to_owned())
                .map_err(|e| format!("phone: {e}"))?;
            query = query.phone(digits);
        }
        let payment_id = self.payment_id.trim();
        if !payment_id.is_empty() {
            let id = PaymentId::new(payment_id).map_err(|e| format!("payment ID: {e}"))?;
            query = query.payment_id(id);
        }
        let source = self.source.trim();
        if !source.is_empty() {
            let origin: PayoutOrigin = source.parse().map_err(|e| format!("source: {e}"))?;
            query = query.source(origin);
        }
        let since = day(&self.since, "since", 0)?;
        let until = day(&self.until, "until", 1)?;
        query = query.between(since, until);
        if let Some((nanos, id)) = self.after.split_once('.') {
            let nanos: u64 = nanos.parse().map_err(|_| "a bad page cursor".to_owned())?;
            let id = PaymentId::new(id).map_err(|e| format!("page cursor: {e}"))?;
            query.after = Some((UNIX_EPOCH + Duration::from_nanos(nanos), id));
        }
        Ok(query)
    }

    /// The filters for a log line: the phone number masked.
    fn log_text(&self) -> String {
        let masked = Filters {
            phone: Msisdn::parse(self.phone.trim())
                .map(|p| p.masked())
                .unwrap_or_else(|_| super::layout::mask_digits(self.phone.trim())),
            after: String::new(),
            ..self.clone()
        };
        masked.query_string()
    }

    /// The query string of these filters (without the cursor), for links.
    fn query_string(&self) -> String {
        [
            ("state", &self.state),
            ("phone", &self.phone),
            ("payment_id", &self.payment_id),
            ("source", &self.source),
            ("since", &self.since),
            ("until", &self.until),
            ("batch", &self.batch),
        ]
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", url_encode(v.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// `YYYY-MM-DD` as the start of that day (+ `plus_days`), UTC; `None` when empty.
fn day(text: &str, name: &str, plus_days: u64) -> Result<Option<SystemTime>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || format!("{name}: write a date as 2026-11-27");
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shaped {
        return Err(bad());
    }
    let seconds = rp_model::GateTime::new(format!("{text}T00:00:00Z"))
        .unix_seconds()
        .ok()
        .and_then(|s| u64::try_from(s).ok())
        .ok_or_else(bad)?;
    Ok(Some(
        UNIX_EPOCH + Duration::from_secs(seconds + plus_days * 86_400),
    ))
}

/// The cursor after `record`.
fn cursor(record: &PayoutRecord) -> String {
    let nanos = record
        .created_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos}.{}", record.payment_id)
}

/// `/payments`: counts by state, the filters, a page of payouts (refreshed live).
pub(crate) async fn list(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    headers: HeaderMap,
    Query(filters): Query<Filters>,
) -> Response {
    listing(&desk, &me, &headers, &filters, false).await
}

/// `/attention`: the payouts a person must look at (conflicts, reversals, identity
/// mismatches, unknown statuses).
pub(crate) async fn attention(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    headers: HeaderMap,
    Query(filters): Query<Filters>,
) -> Response {
    listing(&desk, &me, &headers, &filters, true).await
}

async fn listing(
    desk: &Desk,
    me: &Me,
    headers: &HeaderMap,
    filters: &Filters,
    attention: bool,
) -> Response {
    let (path, title) = if attention {
        ("/attention", "Needs attention")
    } else {
        ("/payments", "Payments")
    };
    let store = desk.client().store();
    let (rows, next, error) = if filters.batch.trim().is_empty() {
        match filters.query(attention) {
            Err(error) => (Vec::new(), None, Some(error)),
            Ok(query) => {
                // A payment ID is one payout; the other filters still apply to it.
                match store.list(&query).await {
                    Ok(rows) => {
                        let next = (rows.len() == PAGE)
                            .then(|| rows.last().map(cursor))
                            .flatten();
                        (rows, next, None)
                    }
                    Err(error) => return ledger_failed(Some(me), &error),
                }
            }
        }
    } else {
        match batch_page(desk, &filters.batch, &filters.after, PAGE).await {
            Ok((rows, next)) => (rows, next, None),
            Err(BatchPage::Bad(error)) => (Vec::new(), None, Some(error)),
            Err(BatchPage::Ledger(error)) => return ledger_failed(Some(me), &error),
        }
    };
    // A filter that is wrong is the request's fault: 400, with the error beside the form.
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let table = table(&rows, filters, path, next.as_deref());
    if headers.contains_key("x-fragment") {
        return (status, html(table)).into_response();
    }
    let counts = match store.counts().await {
        Ok(counts) => counts,
        Err(error) => return ledger_failed(Some(me), &error),
    };
    let live = format!("{path}?{}", filters.query_string());
    // Webhook endpoints disabled after persistent failure need a person too.
    let disabled: Vec<String> = if attention {
        desk.webhooks()
            .endpoints()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|e| !e.enabled())
            .map(|e| {
                format!(
                    "Webhook endpoint {} ({}) is disabled: {}",
                    e.id,
                    e.url,
                    e.disabled_reason.unwrap_or_default()
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let body = html! {
        h1 { (title) }
        @for text in &disabled {
            p.notice.error role="alert" { (text) " " a href="/webhooks" { "Webhooks" } }
        }
        @if !attention {
            div.counts {
                a href="/payments" { "All " strong { (counts.total) } }
                @for (label, count) in &counts.by_state {
                    a href={"/payments?state=" (url_encode(label))} { (badge(label)) " " strong { (count) } }
                }
                a href="/attention" { "Needs attention " strong { (counts.attention) } }
            }
        }
        form.filters method="get" action=(path) {
            div { label for="state" { "State" } input #state name="state" value=(filters.state) placeholder="success"; }
            div { label for="phone" { "Phone" } input #phone name="phone" value=(filters.phone) inputmode="tel"; }
            div { label for="payment_id" { "Payment ID" } input #payment_id name="payment_id" value=(filters.payment_id); }
            div { label for="source" { "Source" } select #source name="source" {
                option value="" { "Any" }
                @for origin in PayoutOrigin::ALL {
                    option value=(origin.as_str()) selected[filters.source.trim() == origin.as_str()] { (origin_label(origin)) }
                }
            } }
            div { label for="since" { "From" } input #since name="since" type="date" value=(filters.since); }
            div { label for="until" { "To" } input #until name="until" type="date" value=(filters.until); }
            button type="submit" { "Filter" }
            a.button href={"/payments.csv?" (filters.query_string()) (if attention { "&attention=1" } else { "" })} { "Export CSV" }
        }
        @if attention {
            @let unknown = counts.get("unknown");
            @let not_registered = counts.get("not_registered");
            @if unknown > 0 {
                p { a href="/payments?state=unknown" { (unknown) " payout(s) with an unknown outcome" } ": the reconciler is asking the platform about them." }
            }
            @if not_registered > 0 {
                p { a href="/payments?state=not_registered" { (not_registered) " payout(s) the platform does not have" } ": the reconciler sends them again under their payment IDs." }
            }
        }
        @if !filters.batch.trim().is_empty() {
            p { "The payouts of batch " a href={"/batches/" (filters.batch.trim())} { code { (filters.batch.trim().get(..12).unwrap_or_default()) } } ", in file order." }
        }
        @if let Some(error) = &error { (notice("error", error)) }
        div #list data-refresh=(live) data-every="5000" { (table) }
    };
    (status, html(page(title, Some(me), path, body))).into_response()
}

/// How the source filter names an origin.
fn origin_label(origin: PayoutOrigin) -> &'static str {
    match origin {
        PayoutOrigin::Api => "API",
        PayoutOrigin::Console => "Console",
        PayoutOrigin::Batch => "Batch",
        PayoutOrigin::Library => "Library or CLI",
    }
}

/// A page with only `error` on it, answered 400.
fn problem_in_page(me: &Me, path: &str, title: &str, error: &str) -> Response {
    let shown = html(page(
        title,
        Some(me),
        path,
        html! { h1 { (title) } (notice("error", error)) },
    ));
    (StatusCode::BAD_REQUEST, shown).into_response()
}

/// The table of a page of payouts, with the link to the next page (`next`: its cursor).
fn table(rows: &[PayoutRecord], filters: &Filters, path: &str, next: Option<&str>) -> Markup {
    let next = next.map(|after| {
        let filters = filters.query_string();
        format!("{path}?{filters}&after={}", url_encode(after))
    });
    html! {
        @if rows.is_empty() {
            p.muted { "No payouts match." }
        } @else {
            div.table-wrap { table {
                thead { tr {
                    th { "Created (UTC)" } th { "Payment ID" } th { "Phone" } th.num { "Amount" }
                    th { "State" } th.optional { "Code" } th.optional { "Message" }
                } }
                tbody {
                    @for record in rows {
                        tr {
                            td { (utc(record.created_at)) }
                            td { a href=(payment_path(&record.payment_id)) { (record.payment_id) } }
                            td { (masked_phone(record)) }
                            td.num { (amount(record)) }
                            td { (badge(record.state.label())) @if record.attention.is_some() { " ⚠" } }
                            td.optional { (record.last_code.as_ref().map(ToString::to_string).unwrap_or_default()) }
                            td.optional { (record.last_message.as_deref().unwrap_or_default()) }
                        }
                    }
                }
            } }
        }
        @if let Some(next) = next {
            div.pager { a href=(next) { "Older →" } }
        }
    }
}

/// The query of `/payments.csv`: the list's filters, and `attention=1` for `/attention`'s.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ExportQuery {
    #[serde(flatten)]
    filters: Filters,
    #[serde(default)]
    attention: String,
}

/// `/payments.csv`: every payout the filters match (not only one page), newest first,
/// streamed a page at a time; phone numbers masked.
pub(crate) async fn export(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    Query(export): Query<ExportQuery>,
) -> Response {
    if let Ok(batch) = export.filters.batch.trim().parse::<rp_batch::BatchId>() {
        // A batch's payouts are its report, in file order.
        return axum::response::Redirect::to(&format!("/batches/{batch}/report.csv"))
            .into_response();
    }
    let attention = export.attention == "1";
    // Every filter applies, the source and a payment ID's too.
    let mut query = match export.filters.query(attention) {
        Ok(query) => query.limit(EXPORT_PAGE),
        Err(error) => return problem_in_page(&me, "/payments", "Payments", &error),
    };
    tracing::info!(operator = %me.name, filters = %export.filters.log_text(), "payments exported");
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let store = desk.client().store().clone();
    tokio::spawn(async move {
        let mut lines = csv_line(&[
            "created_at",
            "payment_id",
            "phone",
            "amount",
            "currency",
            "state",
            "code",
            "message",
            "request_id",
            "updated_at",
            "attention",
        ]);
        loop {
            let page = match store.list(&query).await {
                Ok(page) => page,
                Err(error) => {
                    // The client sees a truncated download, never a silently short file.
                    let _ = sender
                        .send(Err(std::io::Error::other(error.to_string())))
                        .await;
                    return;
                }
            };
            for record in &page {
                lines.push_str(&export_row(record));
            }
            if sender
                .send(Ok(Bytes::from(std::mem::take(&mut lines))))
                .await
                .is_err()
            {
                return;
            }
            match page.last() {
                Some(last) if page.len() == EXPORT_PAGE => {
                    query = query.after(last);
                }
                _ => return,
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"payments.csv\"",
            ),
        ],
        Body::from_stream(ChannelStream(receiver)),
    )
        .into_response()
}

fn export_row(record: &PayoutRecord) -> String {
    let payment = &record.request.payment;
    let decimal =
        super::layout::decimal_amount(record).unwrap_or_else(|| payment.amount.to_string());
    csv_line(&[
        &utc(record.created_at),
        record.payment_id.as_str(),
        &masked_phone(record),
        &decimal,
        &payment.currency,
        record.state.label(),
        &record
            .last_code
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        record.last_message.as_deref().unwrap_or_default(),
        record.request_id.as_deref().unwrap_or_default(),
        &utc(record.updated_at),
        record.attention.as_deref().unwrap_or_default(),
    ])
}

/// One CSV line: every cell quoted when it needs to be, and a cell that a spreadsheet would
/// run as a formula (`=`, `+`, `-`, `@` first) prefixed with `'`.
pub(crate) fn csv_line(cells: &[&str]) -> String {
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    let safe: Vec<String> = cells
        .iter()
        .map(|cell| {
            if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{cell}")
            } else {
                (*cell).to_owned()
            }
        })
        .collect();
    let _ = writer.write_record(&safe);
    writer
        .into_inner()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_filters() {
        assert_eq!(
            day("1970-01-02", "since", 0).unwrap(),
            Some(UNIX_EPOCH + Duration::from_secs(86_400))
        );
        assert_eq!(
            day("2026-11-27", "until", 1).unwrap(),
            Some(UNIX_EPOCH + Duration::from_secs(1_795_737_600 + 86_400))
        );
        for bad in ["2026-13-01", "27.11.2026", "2026-11", "x"] {
            assert!(day(bad, "since", 0).is_err(), "{bad}");
        }
        let filters = Filters {
            phone: "+7 (701) 123-45-67".to_owned(),
            state: "success".to_owned(),
            ..Filters::default()
        };
        let query = filters.query(false).unwrap();
        assert_eq!(query.phone.as_deref(), Some("77011234567"));
        assert_eq!(
            filters.query_string(),
            "state=success&phone=%2B7+%28701%29+123-45-67"
        );
        let spaced = Filters {
            state: "partially paid out".to_owned(),
            ..Filters::default()
        };
        assert!(spaced.query(false).is_ok(), "a platform status with spaces");
        let bad_state = Filters {
            state: "x' OR 1=1".to_owned(),
            ..Filters::default()
        };
        assert!(bad_state.query(false).is_err());
        let by_source = Filters {
            source: "batch".to_owned(),
            ..Filters::default()
        };
        assert_eq!(
            by_source.query(false).unwrap().source,
            Some(PayoutOrigin::Batch)
        );
        assert_eq!(by_source.query_string(), "source=batch");
        let bad_source = Filters {
            source: "fax".to_owned(),
            ..Filters::default()
        };
        let error = bad_source.query(false).unwrap_err();
        assert!(
            error.starts_with("source: unknown source \"fax\""),
            "{error}"
        );
    }

    #[test]
    fn csv_cells_never_run_as_formulas() {
        assert_eq!(
            csv_line(&["=HYPERLINK(1)", "a;b", "plain"]),
            "'=HYPERLINK(1),a;b,plain\n"
        );
        assert_eq!(
            csv_line(&["x,y", "say \"hi\""]),
            "\"x,y\",\"say \"\"hi\"\"\"\n"
        );
    }
}
