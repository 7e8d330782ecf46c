//! The conformance suite every [`PayoutStore`] must pass (feature `test-util`): the same
//! assertions for [`MemoryStore`](crate::MemoryStore), `rp-ledger`'s SQLite and PostgreSQL
//! ledgers, and yours.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use rp_payout::{MemoryStore, PayoutStore};
//!
//! rp_payout::conformance::run_all(|| async {
//!     let store: Arc<dyn PayoutStore> = Arc::new(MemoryStore::new());
//!     store
//! })
//! .await;
//! # });
//! ```
//!
//! Each check panics with its name and what failed; [`run_all`] gives every check a fresh,
//! empty store. [`projects_are_apart`] needs two stores of two projects on one backend.

// Test support: a failed check panics, as a failed assertion does.
#![allow(clippy::panic)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rp_model::{
    Currency, CustomerId, LimitKind, Limits, Money, Msisdn, PaymentId, PaymentStatus, Payout,
    ProjectId, ResponseCode, Usage,
};

use crate::store::{
    EventSource, Inserted, PayoutEvent, PayoutOrigin, PayoutQuery, PayoutRecord, PayoutState,
    PayoutStore, Updated,
};

/// How many payouts [`pages_cover_everything_once`] records (the issue's 10,000).
pub const MANY: usize = 10_000;

/// Runs every check, each on a fresh store from `make`.
///
/// # Panics
///
/// When a check fails, with its name and what it saw.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn PayoutStore>>,
{
    insert_is_once_per_payment_id(make().await.as_ref()).await;
    update_is_compare_and_set(make().await.as_ref()).await;
    events_are_written_with_their_change_in_order(make().await.as_ref()).await;
    records_round_trip(make().await.as_ref()).await;
    unsettled_pages_walk_every_open_payout(make().await.as_ref()).await;
    list_filters_and_orders(make().await.as_ref()).await;
    list_filters_by_origin(make().await.as_ref()).await;
    counts_by_state(make().await.as_ref()).await;
    concurrent_inserts_make_one_record(make().await).await;
    concurrent_updates_never_lose_a_change(make().await).await;
    limits_are_reserved_with_the_insert(make().await.as_ref()).await;
    concurrent_reservations_never_overshoot(make().await).await;
    usage_is_counted_on_the_stores_clock(make().await.as_ref()).await;
}

/// A payout record `id` to `phone` (11 digits) of `tenge`, recorded at `at` seconds.
pub fn record(id: &str, phone: &str, tenge: u64, at: u64) -> PayoutRecord {
    let payout = Payout::builder()
        .payment_id(pid(id))
        .phone(must(Msisdn::parse(phone), "phone"))
        .amount(must(Money::kzt(tenge), "amount"))
        .customer_id(must(CustomerId::new(format!("customer-{id}")), "customer"))
        .description("Выплата выигрыша — ұтыс")
        .build();
    let payout = must(payout, "payout");
    PayoutRecord::new(
        payout.payment_id().clone(),
        payout.to_request(must(ProjectId::new(1234), "project")),
        time(at),
    )
}

fn pid(id: &str) -> PaymentId {
    must(PaymentId::new(id), "payment id")
}

fn time(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
}

#[allow(clippy::panic)]
fn must<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("conformance: {what}: {e}"))
}

/// The first event of a record.
fn recorded(record: &PayoutRecord) -> PayoutEvent {
    PayoutEvent::new(
        record.created_at,
        EventSource::Call,
        None,
        PayoutState::Created,
    )
}

/// `record` moved to `state` at `at`, with its event.
fn moved(record: &PayoutRecord, state: PayoutState, at: u64) -> (PayoutRecord, PayoutEvent) {
    let mut next = record.clone();
    next.state = state.clone();
    next.updated_at = time(at);
    let event = PayoutEvent::new(
        time(at),
        EventSource::Callback,
        Some(record.state.clone()),
        state,
    );
    (next, event)
}

async fn insert(store: &dyn PayoutStore, record: PayoutRecord) -> PayoutRecord {
    match must(
        store
            .insert(record.clone(), recorded(&record), Limits::NONE)
            .await,
        "insert",
    ) {
        Inserted::New(stored) => stored,
        Inserted::Existing(existing) => {
            panic!(
                "conformance: {} already recorded: {existing:?}",
                record.payment_id
            )
        }
        Inserted::OverLimit(over) => panic!("conformance: over no limit: {over}"),
        Inserted::Held(holder) => panic!(
            "conformance: {} held by {holder} in a store with no batch",
            record.payment_id
        ),
    }
}

async fn update(
    store: &dyn PayoutStore,
    record: &PayoutRecord,
    state: PayoutState,
    at: u64,
) -> PayoutRecord {
    let (next, event) = moved(record, state, at);
    match must(store.update(record.version, next, event).await, "update") {
        Updated::Done(stored) => stored,
        Updated::Conflict(current) => panic!("conformance: unexpected conflict: {current:?}"),
    }
}

async fn get(store: &dyn PayoutStore, id: &str) -> PayoutRecord {
    must(store.get(&pid(id)).await, "get")
        .unwrap_or_else(|| panic!("conformance: {id} is not recorded"))
}

/// A payment ID is recorded once: a second insert returns the first record and writes nothing.
pub async fn insert_is_once_per_payment_id(store: &dyn PayoutStore) {
    let first = insert(store, record("once", "77011234567", 100, 1)).await;
    assert_eq!(
        first.version, 0,
        "insert_is_once: a new record has version 0"
    );
    let mut again = record("once", "77021234567", 200, 2);
    again.state = PayoutState::Accepted;
    match must(
        store
            .insert(again.clone(), recorded(&again), Limits::NONE)
            .await,
        "insert again",
    ) {
        Inserted::Existing(existing) => assert_eq!(
            existing, first,
            "insert_is_once: the first record is returned unchanged"
        ),
        other => panic!("insert_is_once: a payment ID was recorded twice: {other:?}"),
    }
    assert_eq!(get(store, "once").await, first, "insert_is_once: unchanged");
    let events = must(store.events(&pid("once")).await, "events");
    assert_eq!(
        events.len(),
        1,
        "insert_is_once: the second insert wrote no event"
    );
    assert!(
        must(store.get(&pid("never")).await, "get").is_none(),
        "insert_is_once: an unknown ID is None"
    );
}

/// An update applies only on the expected version and bumps it; a stale one writes nothing.
pub async fn update_is_compare_and_set(store: &dyn PayoutStore) {
    let first = insert(store, record("cas", "77011234567", 100, 1)).await;
    let stored = update(store, &first, PayoutState::Accepted, 2).await;
    assert_eq!(stored.version, 1, "cas: version bumped");
    assert_eq!(stored.state, PayoutState::Accepted);
    // Stale: still version 0.
    let (stale, event) = moved(&first, PayoutState::Unknown, 3);
    match must(store.update(0, stale, event).await, "stale update") {
        Updated::Conflict(Some(current)) => assert_eq!(
            current, stored,
            "cas: the conflict returns the current record"
        ),
        other => panic!("cas: a stale update was not refused: {other:?}"),
    }
    let events = must(store.events(&pid("cas")).await, "events");
    assert_eq!(events.len(), 2, "cas: a refused update writes no event");
    let (missing, event) = moved(
        &record("nobody", "77011234567", 1, 1),
        PayoutState::Accepted,
        1,
    );
    assert!(
        matches!(
            must(store.update(0, missing, event).await, "update missing"),
            Updated::Conflict(None)
        ),
        "cas: updating an unrecorded payout is Conflict(None)"
    );
}

/// Every change appends its event, in order, with everything it carried.
pub async fn events_are_written_with_their_change_in_order(store: &dyn PayoutStore) {
    let r = insert(store, record("history", "77011234567", 100, 1)).await;
    let r = update(store, &r, PayoutState::Accepted, 2).await;
    let (mut next, event) = moved(&r, PayoutState::Status(PaymentStatus::Decline), 3);
    next.last_code = Some(ResponseCode::new("20000"));
    next.last_message = Some("General decline; «ұтыс»".to_owned());
    let raw =
        r#"{"payment":{"id":"history","status":"decline"},"account":{"number":"77011234567"}}"#;
    let event = event
        .with_code(next.last_code.clone(), next.last_message.clone())
        .with_note(Some("a note".to_owned()))
        .with_raw(Some(raw.to_owned()));
    let event = PayoutEvent {
        source: EventSource::Operator("Aigerim Ә.".to_owned()),
        ..event
    };
    assert!(matches!(
        must(store.update(r.version, next, event.clone()).await, "update"),
        Updated::Done(_)
    ));
    let events = must(store.events(&pid("history")).await, "events");
    let states: Vec<&PayoutState> = events.iter().map(|e| &e.state).collect();
    assert_eq!(
        states,
        [
            &PayoutState::Created,
            &PayoutState::Accepted,
            &PayoutState::Status(PaymentStatus::Decline)
        ],
        "history: in order"
    );
    assert_eq!(
        events[0].previous, None,
        "history: the first event has no previous state"
    );
    assert_eq!(
        events[2], event,
        "history: the event is kept whole (code, note, raw, source, time)"
    );
    assert!(must(store.events(&pid("nothing")).await, "events").is_empty());
}

/// A record comes back exactly as written, in every state.
pub async fn records_round_trip(store: &dyn PayoutStore) {
    let states = [
        PayoutState::Unknown,
        PayoutState::NotRegistered,
        PayoutState::Rejected {
            code: ResponseCode::new("3028"),
            message: "Insufficient funds; «₸»".to_owned(),
        },
        PayoutState::Status(PaymentStatus::PartiallyPaidOut),
        PayoutState::Status(PaymentStatus::Other("partially reversed".to_owned())),
        PayoutState::PaymentIdTaken,
    ];
    for (i, state) in states.into_iter().enumerate() {
        let id = format!("round-{i}");
        let mut written = record(&id, "77471234567", 1_500, 10);
        // Metadata is written with the record (the merchant's JSON, any text) and kept.
        written.metadata = (i % 2 == 1).then(|| format!("{{\"order\": {i}, \"note\": \"«₸»\"}}"));
        let first = insert(store, written).await;
        let (mut next, event) = moved(&first, state, 11);
        next.request_id = Some("r-ü".to_owned());
        next.last_code = Some(ResponseCode::new("0"));
        next.last_message = Some("Success".to_owned());
        next.attention = Some("look: 7701***4567".to_owned());
        next.maybe_sent = i % 2 == 0;
        next.claimed_by = Some(format!("host-{i}/123/456"));
        next.attempts = u32::try_from(i).unwrap_or(0) + 1;
        next.lease_until = Some(time(12 + u64::try_from(i).unwrap_or(0)));
        next.next_check_at = Some(time(100 + u64::try_from(i).unwrap_or(0)));
        let Updated::Done(stored) = must(store.update(0, next.clone(), event).await, "update")
        else {
            panic!("round trip: conflict");
        };
        next.version = 1;
        assert_eq!(stored, next, "round trip: as returned");
        assert_eq!(get(store, &id).await, next, "round trip: as read back");
    }
}

/// `unsettled` walks every open payout, a page at a time, in payment-ID order.
pub async fn unsettled_pages_walk_every_open_payout(store: &dyn PayoutStore) {
    for i in 0..25 {
        let r = insert(store, record(&format!("u-{i:03}"), "77011234567", 100, i)).await;
        if i % 5 == 0 {
            update(
                store,
                &r,
                PayoutState::Status(PaymentStatus::Success),
                i + 1,
            )
            .await;
        }
        if i % 5 == 1 {
            // `error` is final but not settled: it may be resent.
            update(store, &r, PayoutState::Status(PaymentStatus::Error), i + 1).await;
        }
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = must(store.unsettled(after.take(), 7).await, "unsettled");
        assert!(page.len() <= 7, "unsettled: the limit holds");
        after = page.last().map(|r| r.payment_id.clone());
        let full = page.len() == 7;
        seen.extend(page.into_iter().map(|r| r.payment_id.as_str().to_owned()));
        if !full {
            break;
        }
    }
    let expected: Vec<String> = (0..25)
        .filter(|i| i % 5 != 0)
        .map(|i| format!("u-{i:03}"))
        .collect();
    assert_eq!(
        seen, expected,
        "unsettled: every open payout once, in order"
    );
}

/// `list` filters by state, attention, time and phone, newest first, and its pages cover
/// everything once.
pub async fn list_filters_and_orders(store: &dyn PayoutStore) {
    for i in 0..30u64 {
        let phone = if i % 3 == 0 {
            "77471112233"
        } else {
            "77011234567"
        };
        let r = insert(store, record(&format!("l-{i:02}"), phone, 100, i / 2)).await;
        if i % 4 == 0 {
            let (mut next, event) = moved(&r, PayoutState::Status(PaymentStatus::Success), 100);
            if i % 8 == 0 {
                next.attention = Some("reversed".to_owned());
            }
            must(store.update(0, next, event).await, "update");
        }
    }
    let ids = |page: Vec<PayoutRecord>| -> Vec<String> {
        page.into_iter()
            .map(|r| r.payment_id.as_str().to_owned())
            .collect()
    };
    // Newest first; equal times by payment ID, descending.
    let all = ids(must(
        store.list(&PayoutQuery::new().limit(1000)).await,
        "list",
    ));
    let mut expected: Vec<String> = (0..30).map(|i| format!("l-{i:02}")).collect();
    expected.sort_by(|a, b| {
        let at = |s: &str| s.get(2..).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0) / 2;
        at(b).cmp(&at(a)).then_with(|| b.cmp(a))
    });
    assert_eq!(all, expected, "list: newest first");
    // Keyset pages of 4 cover the same, once.
    let mut paged = Vec::new();
    let mut query = PayoutQuery::new().limit(4);
    loop {
        let page = must(store.list(&query).await, "list page");
        let Some(last) = page.last().cloned() else {
            break;
        };
        paged.extend(ids(page));
        query = query.after(&last);
    }
    assert_eq!(paged, expected, "list: pages cover everything once");
    let success = ids(must(
        store.list(&PayoutQuery::new().state("success")).await,
        "list success",
    ));
    assert_eq!(success.len(), 8, "list: by state");
    let attention = ids(must(
        store.list(&PayoutQuery::new().attention()).await,
        "list attention",
    ));
    assert_eq!(
        attention,
        ["l-24", "l-16", "l-08", "l-00"],
        "list: attention"
    );
    let phone = ids(must(
        store.list(&PayoutQuery::new().phone("77471112233")).await,
        "list phone",
    ));
    assert_eq!(phone.len(), 10, "list: by phone");
    let window = ids(must(
        store
            .list(&PayoutQuery::new().between(Some(time(3)), Some(time(5))))
            .await,
        "list window",
    ));
    assert_eq!(
        window,
        ["l-09", "l-08", "l-07", "l-06"],
        "list: [since, until)"
    );
    let created = ids(must(
        store
            .list(
                &PayoutQuery::new()
                    .state("created")
                    .phone("77471112233")
                    .limit(2),
            )
            .await,
        "list combined",
    ));
    assert_eq!(created, ["l-27", "l-21"], "list: filters combine");
}

/// `list` by origin: the first event's source tells the API (`operator:api:KEY`), a console
/// operator (`operator:NAME`) and the library (`call`) apart, whatever came later; with no
/// batch in the store, nothing is from a batch. Pages and other filters combine with it.
pub async fn list_filters_by_origin(store: &dyn PayoutStore) {
    let sources = [
        EventSource::Call,
        EventSource::Operator("anna".to_owned()),
        EventSource::Operator("api:backend".to_owned()),
        // An operator whose name merely starts like "api" is still an operator.
        EventSource::Operator("apiary".to_owned()),
    ];
    for i in 0..12u64 {
        let r = record(&format!("o-{i:02}"), "77011234567", 100, i);
        let first = PayoutEvent::new(
            r.created_at,
            sources[(i % 4) as usize].clone(),
            None,
            PayoutState::Created,
        );
        let stored = match must(store.insert(r, first, Limits::NONE).await, "insert") {
            Inserted::New(stored) => stored,
            other => panic!("conformance: list_filters_by_origin: {other:?}"),
        };
        if i % 2 == 0 {
            // A later event by someone else changes nothing about where it came from.
            let (mut next, mut event) =
                moved(&stored, PayoutState::Status(PaymentStatus::Success), 50);
            event.source = EventSource::Operator("api:other".to_owned());
            next.attention = None;
            must(store.update(0, next, event).await, "update");
        }
    }
    let listed = |query: PayoutQuery| async move {
        let mut ids = Vec::new();
        let mut query = query.limit(2);
        loop {
            let page = must(store.list(&query).await, "list by origin");
            let Some(last) = page.last().cloned() else {
                break;
            };
            ids.extend(page.into_iter().map(|r| r.payment_id.as_str().to_owned()));
            query = query.after(&last);
        }
        ids
    };
    let expect = |ids: &[u64]| -> Vec<String> { ids.iter().map(|i| format!("o-{i:02}")).collect() };
    assert_eq!(
        listed(PayoutQuery::new().source(PayoutOrigin::Library)).await,
        expect(&[8, 4, 0]),
        "list: from the library"
    );
    assert_eq!(
        listed(PayoutQuery::new().source(PayoutOrigin::Console)).await,
        expect(&[11, 9, 7, 5, 3, 1]),
        "list: from the console"
    );
    assert_eq!(
        listed(PayoutQuery::new().source(PayoutOrigin::Api)).await,
        expect(&[10, 6, 2]),
        "list: from the API"
    );
    assert!(
        listed(PayoutQuery::new().source(PayoutOrigin::Batch))
            .await
            .is_empty(),
        "list: no batch, nothing from one"
    );
    assert_eq!(
        listed(
            PayoutQuery::new()
                .source(PayoutOrigin::Console)
                .state("created")
        )
        .await,
        expect(&[11, 9, 7, 5, 3, 1]),
        "list: origin and state combine"
    );
    assert_eq!(
        listed(
            PayoutQuery::new()
                .source(PayoutOrigin::Api)
                .payment_id(pid("o-06"))
        )
        .await,
        expect(&[6]),
        "list: origin and payment ID combine"
    );
    assert!(
        listed(
            PayoutQuery::new()
                .source(PayoutOrigin::Library)
                .payment_id(pid("o-06"))
        )
        .await
        .is_empty(),
        "list: a payment ID of another origin"
    );
}

/// Counts by state label, with attention and total.
pub async fn counts_by_state(store: &dyn PayoutStore) {
    for i in 0..6u64 {
        let r = insert(store, record(&format!("c-{i}"), "77011234567", 100, i)).await;
        if i < 3 {
            let (mut next, event) = moved(&r, PayoutState::Status(PaymentStatus::Decline), 10);
            next.attention = (i == 0).then(|| "look".to_owned());
            must(store.update(0, next, event).await, "update");
        }
    }
    let counts = must(store.counts().await, "counts");
    assert_eq!(counts.total, 6, "counts: total");
    assert_eq!(counts.attention, 1, "counts: attention");
    assert_eq!(counts.get("decline"), 3, "counts: decline");
    assert_eq!(counts.get("created"), 3, "counts: created");
    assert_eq!(counts.by_state.len(), 2);
}

/// Many tasks inserting the same payment ID at once: one record, one `New`.
pub async fn concurrent_inserts_make_one_record(store: Arc<dyn PayoutStore>) {
    let mut tasks = Vec::new();
    for i in 0..16u64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let r = record("twin", "77011234567", 100 + i, i);
            matches!(
                store.insert(r.clone(), recorded(&r), Limits::NONE).await,
                Ok(Inserted::New(_))
            )
        }));
    }
    let mut new = 0;
    for task in tasks {
        new += usize::from(must(task.await, "join"));
    }
    assert_eq!(new, 1, "concurrent inserts: exactly one New");
    assert_eq!(must(store.events(&pid("twin")).await, "events").len(), 1);
}

/// Many tasks updating one record with compare-and-set retries: every change lands once, and
/// the history has one event per version.
pub async fn concurrent_updates_never_lose_a_change(store: Arc<dyn PayoutStore>) {
    insert(store.as_ref(), record("busy", "77011234567", 100, 0)).await;
    let mut tasks = Vec::new();
    for task in 0..8u64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for step in 0..10u64 {
                loop {
                    let current = get(store.as_ref(), "busy").await;
                    let (mut next, event) =
                        moved(&current, PayoutState::Accepted, 1 + task * 10 + step);
                    next.request_id = Some(format!("{task}-{step}"));
                    match must(store.update(current.version, next, event).await, "update") {
                        Updated::Done(_) => break,
                        Updated::Conflict(_) => tokio::task::yield_now().await,
                    }
                }
            }
        }));
    }
    for task in tasks {
        must(task.await, "join");
    }
    let last = get(store.as_ref(), "busy").await;
    assert_eq!(
        last.version, 80,
        "concurrent updates: every change landed once"
    );
    assert_eq!(
        must(store.events(&pid("busy")).await, "events").len(),
        81,
        "one event per version"
    );
}

/// `record(…)` recorded now (the limits count over windows that end now), in minor units.
fn recent(id: &str, minor: u64, ago: Duration) -> PayoutRecord {
    let mut r = record(id, "77011234567", 1, 0);
    r.request.payment.amount = minor;
    r.created_at = SystemTime::now() - ago;
    r.updated_at = r.created_at;
    r
}

async fn insert_within(store: &dyn PayoutStore, r: &PayoutRecord, limits: Limits) -> Inserted {
    must(
        store.insert(r.clone(), recorded(r), limits).await,
        "insert within limits",
    )
}

/// A new record is a reservation: refused over a limit (and then not recorded at all), counted
/// otherwise; a definitive refusal gives its share back; other-currency records do not count;
/// a payment ID already recorded is returned whatever the limits. (Which window a payout
/// counts in follows the store's clock: [`usage_is_counted_on_the_stores_clock`].)
pub async fn limits_are_reserved_with_the_insert(store: &dyn PayoutStore) {
    let mut limits = Limits::none(Currency::KZT);
    limits.daily_amount = Some(1_000);
    limits.daily_count = Some(3);
    limits.min_amount = Some(10);
    let minute = Duration::from_secs(60);

    // In another currency: does not count.
    let mut dollars = recent("lim-usd", 900, minute);
    dollars.request.payment.currency = "USD".into();
    assert!(matches!(
        insert_within(store, &dollars, Limits::NONE).await,
        Inserted::New(_)
    ));
    assert_eq!(
        must(store.usage(Currency::KZT).await, "usage"),
        Usage::default(),
        "limits: only KZT payouts count"
    );

    let a = recent("lim-a", 600, minute);
    let a = match insert_within(store, &a, limits).await {
        Inserted::New(stored) => stored,
        other => panic!("limits: 600 of 1000 fits: {other:?}"),
    };
    let over = recent("lim-over", 401, Duration::ZERO);
    match insert_within(store, &over, limits).await {
        Inserted::OverLimit(error) => {
            assert_eq!(
                error.kind(),
                Some(LimitKind::DailyAmount),
                "limits: {error}"
            );
        }
        other => panic!("limits: 600 + 401 is over 1000: {other:?}"),
    }
    assert_eq!(
        must(store.get(&pid("lim-over")).await, "get"),
        None,
        "limits: a payout over a limit is not recorded"
    );
    assert!(must(store.events(&pid("lim-over")).await, "events").is_empty());
    let small = recent("lim-small", 9, Duration::ZERO);
    match insert_within(store, &small, limits).await {
        Inserted::OverLimit(error) => assert_eq!(error.kind(), Some(LimitKind::MinAmount)),
        other => panic!("limits: 9 is below the minimum 10: {other:?}"),
    }
    let b = recent("lim-b", 400, Duration::ZERO);
    assert!(
        matches!(insert_within(store, &b, limits).await, Inserted::New(_)),
        "limits: exactly up to the limit fits"
    );
    assert_eq!(
        must(store.usage(Currency::KZT).await, "usage"),
        Usage {
            day_amount: 1_000,
            week_amount: 1_000,
            month_amount: 1_000,
            day_count: 2,
            week_count: 2,
            month_count: 2,
        }
    );
    // A payment ID already recorded is returned, however full the limits are.
    assert!(matches!(
        insert_within(store, &a, limits).await,
        Inserted::Existing(_)
    ));

    // The platform declines `a`: its 600 are free again; `c` fits, then the count is full.
    let declined = update(store, &a, PayoutState::Status(PaymentStatus::Decline), 5).await;
    let c = recent("lim-c", 500, Duration::ZERO);
    assert!(
        matches!(insert_within(store, &c, limits).await, Inserted::New(_)),
        "limits: a declined payout no longer counts"
    );
    let d = recent("lim-d", 10, Duration::ZERO);
    assert!(matches!(
        insert_within(store, &d, limits).await,
        Inserted::New(_)
    ));
    match insert_within(store, &recent("lim-e", 10, Duration::ZERO), limits).await {
        Inserted::OverLimit(error) => assert_eq!(error.kind(), Some(LimitKind::DailyCount)),
        other => panic!("limits: a 4th payout is over the daily count of 3: {other:?}"),
    }
    // A status that contradicts the refusal is applied: the payout counts again.
    update(
        store,
        &declined,
        PayoutState::Status(PaymentStatus::Success),
        6,
    )
    .await;
    let usage = must(store.usage(Currency::KZT).await, "usage");
    assert_eq!(
        (usage.day_amount, usage.day_count),
        (1_510, 4),
        "limits: a payout counts again when it leaves a refused state"
    );
}

/// A payout counts in the hour the store records it, on the store's clock, whatever time the
/// client wrote into the record: a client whose clock is a day behind cannot slip payouts
/// past the daily limit, and one a day ahead cannot make payouts count for longer.
pub async fn usage_is_counted_on_the_stores_clock(store: &dyn PayoutStore) {
    let mut limits = Limits::none(Currency::KZT);
    limits.daily_count = Some(1);
    let day = Duration::from_secs(25 * 3600);
    let behind = recent("clock-behind", 100, day);
    assert!(matches!(
        insert_within(store, &behind, limits).await,
        Inserted::New(_)
    ));
    let mut also_behind = recent("clock-behind-2", 100, day);
    also_behind.updated_at = also_behind.created_at;
    match insert_within(store, &also_behind, limits).await {
        Inserted::OverLimit(error) => assert_eq!(error.kind(), Some(LimitKind::DailyCount)),
        other => panic!("store clock: a client a day behind passed the daily count: {other:?}"),
    }
    let usage = must(store.usage(Currency::KZT).await, "usage");
    assert_eq!(
        usage.day_count, 1,
        "store clock: counted now, not a day ago"
    );
}

/// Many tasks inserting different payouts at once against a count limit of 5 and an amount
/// limit: exactly what fits is recorded, never more.
pub async fn concurrent_reservations_never_overshoot(store: Arc<dyn PayoutStore>) {
    let mut limits = Limits::none(Currency::KZT);
    limits.daily_count = Some(5);
    limits.daily_amount = Some(10_000);
    let mut tasks = Vec::new();
    for i in 0..24u64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let r = recent(&format!("race-{i}"), 1_000 + i, Duration::ZERO);
            match must(
                store.insert(r.clone(), recorded(&r), limits).await,
                "insert",
            ) {
                Inserted::New(_) => 1_000 + i,
                Inserted::OverLimit(_) => 0,
                Inserted::Existing(_) => panic!("concurrent reservations: {i} existed"),
                Inserted::Held(holder) => panic!("concurrent reservations: {i} held by {holder}"),
            }
        }));
    }
    let mut recorded_count = 0;
    let mut recorded_amount = 0;
    for task in tasks {
        let amount = must(task.await, "join");
        recorded_count += u64::from(amount > 0);
        recorded_amount += amount;
    }
    assert_eq!(
        recorded_count, 5,
        "concurrent reservations: exactly the count limit"
    );
    let usage = must(store.usage(Currency::KZT).await, "usage");
    assert_eq!(
        (usage.day_count, usage.day_amount),
        (5, recorded_amount),
        "concurrent reservations: usage is what was recorded"
    );
    let listed = must(store.list(&PayoutQuery::new()).await, "list");
    assert_eq!(listed.len(), 5, "concurrent reservations: five records");
}

/// Two projects on one backend: the same payment ID in each, neither sees the other's.
pub async fn projects_are_apart(a: &dyn PayoutStore, b: &dyn PayoutStore) {
    let in_a = insert(a, record("shared-id", "77011234567", 100, 1)).await;
    let in_b = insert(b, record("shared-id", "77471112233", 900, 2)).await;
    assert_ne!(in_a, in_b);
    assert_eq!(get(a, "shared-id").await, in_a, "projects: a sees its own");
    assert_eq!(get(b, "shared-id").await, in_b, "projects: b sees its own");
    update(a, &in_a, PayoutState::Accepted, 3).await;
    assert_eq!(
        get(b, "shared-id").await.state,
        PayoutState::Created,
        "projects: b unchanged"
    );
    assert_eq!(must(a.list(&PayoutQuery::new()).await, "list").len(), 1);
    assert_eq!(must(b.counts().await, "counts").get("accepted"), 0);
    assert_eq!(must(b.events(&pid("shared-id")).await, "events").len(), 1);
}

/// [`MANY`] payouts (recorded 100 at a time, concurrently) listed 100 a page: every one once.
/// Slow on purpose; run it once per store.
pub async fn pages_cover_everything_once(store: Arc<dyn PayoutStore>) {
    for chunk in 0..MANY / 100 {
        let mut tasks = Vec::with_capacity(100);
        for i in chunk * 100..(chunk + 1) * 100 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                let at = u64::try_from(i / 7).unwrap_or(u64::MAX);
                insert(
                    store.as_ref(),
                    record(&format!("m-{i:05}"), "77011234567", 100, at),
                )
                .await;
            }));
        }
        for task in tasks {
            must(task.await, "join");
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut query = PayoutQuery::new().limit(100);
    let mut pages = 0;
    loop {
        let page = must(store.list(&query).await, "list page");
        let Some(last) = page.last().cloned() else {
            break;
        };
        pages += 1;
        for r in page {
            assert!(
                seen.insert(r.payment_id.clone()),
                "pages: {} twice",
                r.payment_id
            );
        }
        query = query.after(&last);
    }
    assert_eq!(seen.len(), MANY, "pages: every payout once");
    assert_eq!(pages, MANY / 100);
}
