//! The faults that break clients (issue #10): the status lag, 3041 before the field checks, a
//! resend after `error` that keeps the recorded payout, a resend refused with 3028 / 3109 after
//! a maybe-sent first attempt, the rarer final statuses, and the callback retry schedule.

use std::time::{Duration, Instant};

use rp_sign::{SecretKey, Signer};
use rp_sim::{DEFAULT_SECRET_KEY, PAYOUT_PATH, TimeScale};
use serde_json::Value;

use crate::{Answer, Env, PATIENCE, PROCESSING, payout_request};

fn number(digits: &str) -> String {
    format!("7701123{digits}")
}

/// The answer is the signed HTTP 200 form of 3061.
fn assert_not_found(answer: &Answer) {
    assert_eq!(answer.status, 200, "{:?}", answer.json);
    assert_eq!(answer.code(), "3061", "{:?}", answer.json);
    assert!(answer.json.get("payment").is_none(), "{:?}", answer.json);
    Signer::new(&SecretKey::from(DEFAULT_SECRET_KEY))
        .verify_value(&answer.json)
        .expect("signed");
}

#[tokio::test]
async fn status_lag_answers_3061_for_a_recorded_payment_until_it_has_passed() {
    let lag = Duration::from_millis(400);
    let env = Env::start_with(|b| b.status_lag(lag)).await;
    assert_eq!(env.sim.status_lag(), lag);
    let recorded = Instant::now();
    assert_eq!(env.payout("lagging", "77011234567").await.status, 200);
    // Unknown to the status endpoint, yet a duplicate to the payout endpoint.
    assert_not_found(&env.status("lagging").await);
    let again = env.payout("lagging", "77011234567").await;
    assert_eq!(again.status, 409);
    assert_eq!(again.code(), "3041");
    // Long past the processing delay, still within the lag: still 3061.
    tokio::time::sleep(PROCESSING * 3).await;
    if recorded.elapsed() < lag - Duration::from_millis(50) {
        assert_not_found(&env.status("lagging").await);
    }
    let found = env.wait_status("lagging", "success").await;
    assert!(
        recorded.elapsed() >= lag,
        "found after {:?}",
        recorded.elapsed()
    );
    assert_eq!(found.json["payment"]["id"], "lagging");
    // Turned off at run time: a new payment is found at once.
    let set = crate::send(
        env.client
            .post(env.url("/_sim/config"))
            .body(r#"{"status_lag_ms":0}"#),
    )
    .await;
    assert_eq!(set.status, 200, "{:?}", set.json);
    assert_eq!(set.json["status_lag_ms"], 0);
    assert_eq!(env.payout("at-once", "77011234567").await.status, 200);
    assert_eq!(
        env.status("at-once").await.json["payment"]["status"],
        "processing"
    );
    // A bad settings body is refused and changes nothing.
    let bad = crate::send(
        env.client
            .post(env.url("/_sim/config"))
            .body(r#"{"status_lag":5}"#),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(env.sim.status_lag(), Duration::ZERO);
}

#[tokio::test]
async fn the_platform_status_lag_is_10_seconds_times_the_time_scale() {
    let env = Env::start_with(|b| {
        b.time_scale(TimeScale::per_mille(20)) // 10 s -> 200 ms
            .platform_status_lag()
    })
    .await;
    assert_eq!(env.sim.status_lag(), Duration::from_millis(200));
    let recorded = Instant::now();
    assert_eq!(env.payout("platform-lag", "77011234567").await.status, 200);
    assert_not_found(&env.status("platform-lag").await);
    env.wait_status("platform-lag", "success").await;
    assert!(recorded.elapsed() >= Duration::from_millis(200));
    // The library default is no lag.
    let plain = Env::start().await;
    assert_eq!(plain.sim.status_lag(), Duration::ZERO);
}

/// Breaks one field of a payout request.
type Breaks = fn(&mut Value);

#[tokio::test]
async fn a_resend_of_an_existing_payment_id_is_3041_before_its_fields_are_checked() {
    let env = Env::start().await;
    assert_eq!(env.payout("exists", "77011234567").await.status, 200);
    let broken: [(&str, Breaks); 4] = [
        ("no customer.id", |r| {
            r["customer"].as_object_mut().unwrap().remove("id");
        }),
        ("amount as text", |r| r["payment"]["amount"] = "1500".into()),
        ("no currency", |r| {
            r["payment"].as_object_mut().unwrap().remove("currency");
        }),
        ("a bad phone", |r| r["account"]["number"] = "12345".into()),
    ];
    for (what, breaks) in broken {
        let mut request = payout_request("exists", "77011234567");
        breaks(&mut request);
        let answer = env.post_signed(PAYOUT_PATH, &request).await;
        assert_eq!(answer.status, 409, "{what}: {:?}", answer.json);
        assert_eq!(answer.code(), "3041", "{what}");
        // The same broken body under a new payment ID is a field error, not a duplicate.
        request["general"]["payment_id"] = "new-one".into();
        let fresh = env.post_signed(PAYOUT_PATH, &request).await;
        assert_eq!(fresh.status, 400, "{what}: {:?}", fresh.json);
        assert_ne!(fresh.code(), "3041", "{what}");
    }
    // The signature still comes first.
    let unsigned = env
        .post_raw(
            PAYOUT_PATH,
            serde_json::to_vec(&payout_request("exists", "77011234567")).unwrap(),
        )
        .await;
    assert_eq!(unsigned.code(), "3262");
    assert_eq!(env.sim.payments().len(), 1);
    assert_eq!(env.sim.payment("exists").unwrap().accepted_requests, 1);
}

#[tokio::test]
async fn a_resend_after_error_keeps_the_recorded_amount_and_phone() {
    let env = Env::start().await;
    let id = "error-then-resend";
    assert_eq!(env.payout(id, &number("0006")).await.status, 200);
    env.wait_status(id, "error").await;
    // The resend names another amount, phone and customer: none of them is taken.
    let mut resend = payout_request(id, "77011234567");
    resend["payment"]["amount"] = 999.into();
    resend["customer"]["id"] = "someone-else".into();
    let answer = env.post_signed(PAYOUT_PATH, &resend).await;
    assert_eq!(answer.status, 200, "{:?}", answer.json);
    let callbacks = env.rx.wait_for(id, 2).await;
    let last = &callbacks[1];
    assert_eq!(last["payment"]["status"], "success");
    assert_eq!(last["payment"]["sum"]["amount"], 150_000);
    assert_eq!(last["operation"]["sum_initial"]["amount"], 150_000);
    assert_eq!(last["account"]["number"], number("0006"));
    assert_eq!(last["customer"]["id"], "customer-1");
    let payment = env.sim.payment(id).unwrap();
    assert_eq!(payment.amount, 150_000);
    assert_eq!(payment.phone.as_str(), number("0006"));
    assert_eq!(payment.accepted_requests, 2);
    assert!(payment.operations.iter().all(|op| op.amount == 150_000));
}

/// `0024` / `0025`: the first attempt is recorded but answered 500; the status lags (3061);
/// the resend is refused with a code that is not 3041; the first attempt is paid anyway.
async fn resend_refused(digits: &str, code: &str) {
    let env = Env::start_with(|b| b.status_lag(Duration::from_millis(300))).await;
    let id = format!("refused-{digits}");
    let first = env.payout(&id, &number(digits)).await;
    assert_eq!(first.status, 500, "{:?}", first.json);
    assert_not_found(&env.status(&id).await);
    let resend = env.payout(&id, &number(digits)).await;
    assert_eq!(resend.status, 400, "{:?}", resend.json);
    assert_eq!(resend.code(), code, "{:?}", resend.json);
    assert_eq!(resend.json["errors"][0]["code"], code);
    // Also before the field checks, like 3041.
    let mut broken = payout_request(&id, &number(digits));
    broken["customer"].as_object_mut().unwrap().remove("id");
    assert_eq!(env.post_signed(PAYOUT_PATH, &broken).await.code(), code);
    // The payment exists and succeeds, with its callback.
    let callbacks = env.rx.wait_for(&id, 1).await;
    assert_eq!(callbacks[0]["payment"]["status"], "success");
    env.wait_status(&id, "success").await;
    // Still refused with the same code afterwards, and only one payment, accepted once.
    assert_eq!(env.payout(&id, &number(digits)).await.code(), code);
    assert_eq!(env.sim.payments().len(), 1);
    let payment = env.sim.payment(&id).unwrap();
    assert_eq!(payment.accepted_requests, 1);
    assert_eq!(payment.operations.len(), 1);
    let codes: Vec<Option<String>> = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.path == PAYOUT_PATH)
        .map(|r| r.code.clone())
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some(code.to_owned()),
            Some(code.to_owned()),
            Some(code.to_owned())
        ]
    );
}

#[tokio::test]
async fn resend_refused_with_3028_0024_while_the_first_attempt_is_paid() {
    resend_refused("0024", "3028").await;
}

#[tokio::test]
async fn resend_refused_with_3109_0025_while_the_first_attempt_is_paid() {
    resend_refused("0025", "3109").await;
}

#[tokio::test]
async fn partially_paid_out_0007_splits_the_amount() {
    let env = Env::start().await;
    let id = "partial-0007";
    assert_eq!(env.payout(id, &number("0007")).await.status, 200);
    let callbacks = env.rx.wait_for(id, 1).await;
    let callback = &callbacks[0];
    assert_eq!(callback["payment"]["status"], "partially paid out");
    assert_eq!(callback["payment"]["sum"]["amount"], 150_000);
    assert_eq!(callback["operation"]["status"], "decline");
    assert_eq!(callback["operation"]["code"], "20000");
    assert_eq!(callback["operation"]["sum_initial"]["amount"], 75_000);
    assert_eq!(callback["errors"][0]["code"], "20000");
    let status = env.wait_status(id, "partially paid out").await;
    let operations = status.json["operations"].as_array().unwrap();
    assert_eq!(operations.len(), 2);
    assert_eq!(operations[0]["status"], "success");
    assert_eq!(operations[0]["code"], "0");
    assert_eq!(operations[0]["sum_initial"]["amount"], 75_000);
    assert_eq!(operations[1]["status"], "decline");
    assert_eq!(operations[1]["sum_initial"]["amount"], 75_000);
    assert_ne!(operations[0]["id"], operations[1]["id"]);
    // Final: one callback only, and no resend.
    tokio::time::sleep(PROCESSING * 3).await;
    assert_eq!(env.rx.callbacks_for(id).len(), 1);
    assert_eq!(env.payout(id, &number("0007")).await.code(), "3041");
}

#[tokio::test]
async fn partially_reversed_0017_comes_as_a_second_callback() {
    let env = Env::start().await;
    let id = "partial-0017";
    assert_eq!(env.payout(id, &number("0017")).await.status, 200);
    let callbacks = env.rx.wait_for(id, 2).await;
    assert_eq!(callbacks[0]["payment"]["status"], "success");
    assert_eq!(callbacks[1]["payment"]["status"], "partially reversed");
    assert_eq!(callbacks[1]["operation"]["type"], "reversal");
    assert_eq!(callbacks[1]["operation"]["status"], "success");
    assert_eq!(callbacks[1]["operation"]["sum_initial"]["amount"], 75_000);
    assert_eq!(callbacks[1]["payment"]["sum"]["amount"], 150_000);
    let status = env.wait_status(id, "partially reversed").await;
    assert_eq!(status.json["operations"].as_array().unwrap().len(), 2);
    assert_eq!(env.sim.payment(id).unwrap().callbacks_sent, 2);
}

#[tokio::test]
async fn awaiting_clarification_0008_ends_in_decline_after_30_minutes_scaled() {
    // Env's time scale is 0.0001: 30 minutes become 180 ms.
    let env = Env::start().await;
    let id = "clarify-0008";
    assert_eq!(env.payout(id, &number("0008")).await.status, 200);
    let first = env.rx.wait_for(id, 1).await;
    assert_eq!(first[0]["payment"]["status"], "awaiting clarification");
    assert_eq!(first[0]["operation"]["status"], "awaiting clarification");
    assert_eq!(first[0]["operation"]["code"], "3191");
    let waiting = env.status(id).await;
    if waiting.json["payment"]["status"] == "awaiting clarification" {
        assert_eq!(waiting.json["operations"][0]["code"], "3191");
    }
    let both = env.rx.wait_for(id, 2).await;
    assert_eq!(both[1]["payment"]["status"], "decline");
    assert_eq!(both[1]["operation"]["status"], "decline");
    assert_eq!(both[1]["operation"]["code"], "3191");
    assert_eq!(both[1]["errors"][0]["code"], "3191");
    assert_eq!(
        both[0]["operation"]["id"], both[1]["operation"]["id"],
        "the same operation ends"
    );
    let times = env.rx.times();
    let gap = times[1] - times[0];
    assert!(gap >= Duration::from_millis(170), "declined after {gap:?}");
    env.wait_status(id, "decline").await;
    assert_eq!(env.sim.payment(id).unwrap().operations.len(), 1);
}

#[tokio::test]
async fn callback_retries_start_with_six_retries_10_seconds_apart() {
    // Time scale 0.01: 10 s -> 100 ms; attempt 8 waits 70 + 10 * 1.12^4 s -> 857 ms.
    let env = Env::start_with(|b| b.time_scale(TimeScale::per_mille(10))).await;
    env.rx.answer_next(&[500; 7]);
    assert_eq!(env.payout("schedule", "77011234567").await.status, 200);
    let deadline = Instant::now() + PATIENCE;
    while env.rx.times().len() < 8 {
        assert!(
            Instant::now() < deadline,
            "only {} attempts",
            env.rx.times().len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let times = env.rx.times();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    for (index, gap) in gaps.iter().take(6).enumerate() {
        assert!(
            *gap >= Duration::from_millis(100) && *gap < Duration::from_millis(700),
            "retry {} came {gap:?} after the previous attempt: {gaps:?}",
            index + 1
        );
    }
    assert!(
        gaps[6] >= Duration::from_millis(857),
        "attempt 8 came {:?} after attempt 7: {gaps:?}",
        gaps[6]
    );
    // The simulator logs an attempt once its answer is read, a moment after the receiver
    // saw it: wait for the eighth entry too.
    while env.sim.callbacks().len() < 8 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let log = env.sim.callbacks();
    assert_eq!(log.len(), 8);
    assert_eq!(log[7].attempt, 8);
    assert!(log[7].delivered());
}
