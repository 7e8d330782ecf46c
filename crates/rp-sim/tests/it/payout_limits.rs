//! The project's payout limits, enforced like the platform's: per payout (3358, 3104) and per
//! rolling day, week and month in amount (3109, 3108, 3106) and count (3112, 3111, 3110);
//! refused synchronously, not recorded, atomic under concurrency, freed by a decline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rp_model::{Currency, ProjectId};
use rp_sign::{SecretKey, Signer};
use rp_sim::{PAYOUT_PATH, SimulatorBuilder, TimeScale};
use serde_json::{Value, json};

use crate::{Answer, Env, PATIENCE, client, payout_request, send};

/// A phone number without a magic value (ends 4567: success).
const PHONE: &str = "77011234567";

/// The platform's message of each limit code, as spec/response-codes.tsv has it.
const MESSAGES: [(&str, &str); 8] = [
    ("3358", "Operation amount is less than limit"),
    ("3104", "Payment Constraint Invalid Payout Amount"),
    ("3109", "Payment Constraint Invalid 24 Hour Payout"),
    ("3108", "Payment Constraint Invalid Weekly Payout"),
    ("3106", "Payment Constraint Invalid Monthly Payout"),
    (
        "3112",
        "Payment Constraint 24 hour payout operations number exceeded",
    ),
    (
        "3111",
        "Payment Constraint Weekly payout operations number exceeded",
    ),
    (
        "3110",
        "Payment Constraint Monthly payout operations number exceeded",
    ),
];

/// A simulator on real time (the running windows stay 24 h, 7 and 31 days long).
async fn env(configure: impl FnOnce(SimulatorBuilder) -> SimulatorBuilder) -> Env {
    Env::start_with(|b| configure(b.time_scale(TimeScale::REAL_TIME))).await
}

/// A payout of `amount` tiyn to [`PHONE`].
async fn pay(env: &Env, payment_id: &str, amount: u64) -> Answer {
    pay_to(env, payment_id, PHONE, amount).await
}

async fn pay_to(env: &Env, payment_id: &str, phone: &str, amount: u64) -> Answer {
    let mut request = payout_request(payment_id, phone);
    request["payment"]["amount"] = json!(amount);
    env.post_signed(PAYOUT_PATH, &request).await
}

fn assert_accepted(answer: &Answer) {
    assert_eq!(answer.status, 200, "{:?}", answer.json);
    assert_eq!(answer.json["status"], "success", "{:?}", answer.json);
}

/// Refused like every other synchronous refusal: HTTP 400, the unsigned error envelope, the
/// code, the platform's message for it (then a detail), the same in `errors[0]`.
fn assert_refused(answer: &Answer, code: &str) {
    let json = &answer.json;
    assert_eq!(answer.status, 400, "{json:?}");
    assert_eq!(json["status"], "error", "{json:?}");
    assert_eq!(answer.code(), code, "{json:?}");
    assert_eq!(json["errors"][0]["code"], code, "{json:?}");
    assert!(json.get("signature").is_none(), "unsigned: {json:?}");
    let expected = MESSAGES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, m)| *m)
        .unwrap();
    let message = json["message"].as_str().unwrap();
    let (platform, detail) = message.split_once(": ").unwrap();
    assert_eq!(platform, expected, "{json:?}");
    assert!(!detail.is_empty(), "{json:?}");
    assert_eq!(json["errors"][0]["message"], message, "{json:?}");
}

/// A refused payout is not recorded: the status endpoint does not know it.
async fn assert_unknown(env: &Env, payment_id: &str) {
    assert!(
        env.sim.payment(payment_id).is_none(),
        "{payment_id} recorded"
    );
    let status = env.status(payment_id).await;
    assert_eq!(status.code(), "3061", "{:?}", status.json);
}

#[tokio::test]
async fn the_minimum_and_maximum_per_payout_are_3358_and_3104() {
    let env = env(|b| b.limit_min_amount(100_000).limit_max_amount(500_000)).await;
    let low = pay(&env, "min-under", 99_999).await;
    assert_refused(&low, "3358");
    assert_eq!(low.json["errors"][0]["field"], "payment.amount");
    assert!(
        low.json["message"].as_str().unwrap().contains("999.99 KZT"),
        "{:?}",
        low.json
    );
    assert_unknown(&env, "min-under").await;
    assert_accepted(&pay(&env, "min-exact", 100_000).await);

    assert_refused(&pay(&env, "max-over", 500_001).await, "3104");
    assert_unknown(&env, "max-over").await;
    assert_accepted(&pay(&env, "max-exact", 500_000).await);

    // The simulator-wide --amount-limit still holds, also under a higher project maximum.
    let env = Env::start_with(|b| b.amount_limit(300_000).limit_max_amount(500_000)).await;
    let over = pay(&env, "amount-limit", 300_001).await;
    assert_eq!(over.code(), "3104", "{:?}", over.json);
    assert_accepted(&pay(&env, "amount-limit-ok", 300_000).await);
}

#[tokio::test]
async fn each_running_amount_limit_takes_a_payout_exactly_to_it_then_refuses() {
    type Limit = fn(SimulatorBuilder, u64) -> SimulatorBuilder;
    let cases: [(&str, Limit); 3] = [
        ("3109", SimulatorBuilder::limit_daily_amount),
        ("3108", SimulatorBuilder::limit_weekly_amount),
        ("3106", SimulatorBuilder::limit_monthly_amount),
    ];
    for (code, limit) in cases {
        // 3 000,00 ₸: two payouts of 1 500,00 ₸ reach it exactly.
        let env = env(|b| limit(b, 300_000)).await;
        assert_accepted(&pay(&env, "first", 150_000).await);
        assert_accepted(&pay(&env, "second", 150_000).await);
        let over = pay(&env, "third", 1).await;
        assert_refused(&over, code);
        assert_eq!(over.json["errors"][0]["field"], "payment.amount");
        let message = over.json["message"].as_str().unwrap();
        assert!(message.contains("3000.00 KZT"), "{message}");
        let logged = env.sim.requests().pop().unwrap();
        assert_eq!(logged.code.as_deref(), Some(code));
        assert_eq!(logged.http_status, Some(400));
        assert_unknown(&env, "third").await;
        assert_eq!(env.sim.payments().len(), 2, "{code}");
    }
}

#[tokio::test]
async fn each_running_count_limit_takes_payouts_exactly_to_it_then_refuses() {
    type Limit = fn(SimulatorBuilder, u64) -> SimulatorBuilder;
    let cases: [(&str, Limit); 3] = [
        ("3112", SimulatorBuilder::limit_daily_count),
        ("3111", SimulatorBuilder::limit_weekly_count),
        ("3110", SimulatorBuilder::limit_monthly_count),
    ];
    for (code, limit) in cases {
        let env = env(|b| limit(b, 3)).await;
        for n in 0..3 {
            assert_accepted(&pay(&env, &format!("count-{n}"), 150_000).await);
        }
        let over = pay(&env, "count-3", 100).await;
        assert_refused(&over, code);
        assert!(
            over.json["message"].as_str().unwrap().contains("3 payouts"),
            "{:?}",
            over.json
        );
        assert_unknown(&env, "count-3").await;
        assert_eq!(env.sim.payments().len(), 3, "{code}");
    }
}

#[tokio::test]
async fn a_declined_payout_frees_its_amount_and_count() {
    // Long enough that the third request surely comes while the decline is processing.
    let env = env(|b| {
        b.processing_delay(Duration::from_millis(500))
            .limit_daily_amount(300_000)
            .limit_daily_count(2)
    })
    .await;
    // Magic 0001: declined (code 20000) after the processing delay.
    assert_accepted(&pay_to(&env, "to-decline", "77011230001", 150_000).await);
    assert_accepted(&pay(&env, "paid", 150_000).await);
    assert_refused(&pay(&env, "waiting", 150_000).await, "3109");
    let usage = env.sim.limit_usage(rp_sim::DEFAULT_PROJECT_ID);
    assert_eq!((usage.day_amount, usage.day_count), (300_000, 2));

    env.wait_status("to-decline", "decline").await;
    let usage = env.sim.limit_usage(rp_sim::DEFAULT_PROJECT_ID);
    assert_eq!((usage.day_amount, usage.day_count), (150_000, 1));
    // The refused payment was not recorded: the same ID is now accepted (not 3041).
    assert_accepted(&pay(&env, "waiting", 150_000).await);
    assert_refused(&pay(&env, "after", 1).await, "3109");

    // The same through the control endpoint.
    let limits = send(env.client.get(env.url("/_sim/limits"))).await;
    assert_eq!(limits.json["limits"]["daily_amount"], 300_000);
    assert_eq!(limits.json["limits"]["min_amount"], Value::Null);
    assert_eq!(limits.json["windows_ms"]["day"], 86_400_000);
    let usage = &limits.json["usage"][0];
    assert_eq!(usage["project_id"], rp_sim::DEFAULT_PROJECT_ID);
    assert_eq!(usage["day_amount"], 300_000);
    assert_eq!(usage["day_count"], 2);
}

#[tokio::test]
async fn a_partially_paid_out_payout_counts_its_paid_part_only() {
    let env = env(|b| b.limit_daily_amount(300_000)).await;
    // Magic 0007: 150 000 tiyn, of which 75 000 paid and 75 000 declined.
    assert_accepted(&pay_to(&env, "partial", "77011230007", 150_000).await);
    env.wait_status("partial", "partially paid out").await;
    let usage = env.sim.limit_usage(rp_sim::DEFAULT_PROJECT_ID);
    assert_eq!((usage.day_amount, usage.day_count), (75_000, 1));
    assert_accepted(&pay(&env, "rest", 225_000).await);
    assert_refused(&pay(&env, "over", 1).await, "3109");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_never_overshoot_a_count_or_amount_limit() {
    for (limits, code) in [
        ((Some(5), None), "3112"),
        ((None, Some(5 * 150_000)), "3109"),
    ] {
        let env = Arc::new(
            env(|b| {
                let b = match limits.0 {
                    Some(count) => b.limit_daily_count(count),
                    None => b,
                };
                match limits.1 {
                    Some(amount) => b.limit_daily_amount(amount),
                    None => b,
                }
            })
            .await,
        );
        let start = Arc::new(tokio::sync::Barrier::new(20));
        let mut tasks = Vec::new();
        for n in 0..20 {
            let env = Arc::clone(&env);
            let start = Arc::clone(&start);
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                pay(&env, &format!("race-{n:02}"), 150_000).await
            }));
        }
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        let accepted = answers.iter().filter(|a| a.status == 200).count();
        let codes: Vec<&str> = answers.iter().map(Answer::code).collect();
        assert_eq!(accepted, 5, "{code}: {codes:?}");
        for refused in answers.iter().filter(|a| a.status != 200) {
            assert_refused(refused, code);
        }
        assert_eq!(env.sim.payments().len(), 5, "{code}");
        let usage = env.sim.limit_usage(rp_sim::DEFAULT_PROJECT_ID);
        assert_eq!((usage.day_count, usage.day_amount), (5, 750_000), "{code}");
    }
}

#[tokio::test]
async fn a_converted_payout_counts_in_tenge() {
    // 100.00 USD × 480.50 = 48 050,00 ₸ = 4 805 000 tiyn.
    let env = env(|b| {
        b.rate(Currency::USD, "480.50".parse().unwrap())
            .limit_max_amount(4_805_000)
            .limit_daily_amount(9_610_000)
    })
    .await;
    let usd = |id: &str, cents: u64| {
        let mut request = payout_request(id, PHONE);
        request["payment"] = json!({"amount": cents, "currency": "USD"});
        request
    };
    let over = env.post_signed(PAYOUT_PATH, &usd("usd-big", 10_001)).await;
    assert_refused(&over, "3104");
    assert!(
        over.json["message"]
            .as_str()
            .unwrap()
            .contains("100.01 USD (48054.81 KZT)"),
        "{:?}",
        over.json
    );
    for id in ["usd-1", "usd-2"] {
        assert_accepted(&env.post_signed(PAYOUT_PATH, &usd(id, 10_000)).await);
    }
    let usage = env.sim.limit_usage(rp_sim::DEFAULT_PROJECT_ID);
    assert_eq!(usage.day_amount, 9_610_000);
    // 0.01 USD = 4.81 ₸ (half up): one tiyn over is over.
    let cent = env.post_signed(PAYOUT_PATH, &usd("usd-cent", 1)).await;
    assert_refused(&cent, "3109");
    assert!(
        cent.json["message"]
            .as_str()
            .unwrap()
            .contains("0.01 USD (4.81 KZT)"),
        "{:?}",
        cent.json
    );
}

/// Sends payout `payment_id` until it is accepted, each refusal being one of `codes`; the
/// codes seen, in order, without repeats.
async fn until_accepted(env: &Env, payment_id: &str, codes: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    let mut seen: Vec<String> = Vec::new();
    loop {
        let answer = pay(env, payment_id, 150_000).await;
        if answer.status == 200 {
            return seen;
        }
        let code = answer.code().to_owned();
        assert!(codes.contains(&code.as_str()), "{:?}", answer.json);
        assert_refused(&answer, &code);
        if seen.last() != Some(&code) {
            seen.push(code);
        }
        assert!(
            Instant::now() < deadline,
            "{payment_id} never accepted: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_running_windows_roll_on_the_simulators_clock() {
    // Time scale 0.000005: a day is 432 ms, a week 3.024 s, a month 13.392 s.
    let env = Env::start_with(|b| {
        b.time_scale(TimeScale::per_million(5))
            .limit_daily_count(1)
            .limit_weekly_count(2)
            .limit_monthly_count(3)
    })
    .await;
    let started = Instant::now();
    assert_accepted(&pay(&env, "a", 150_000).await);
    // Refused until `a` is a day old.
    assert_eq!(until_accepted(&env, "b", &["3112"]).await, ["3112"]);
    assert!(started.elapsed() >= Duration::from_millis(432));
    // Refused by the day until `b` is a day old, then by the week until `a` is a week old.
    assert_eq!(
        until_accepted(&env, "c", &["3112", "3111"]).await,
        ["3112", "3111"]
    );
    assert!(started.elapsed() >= Duration::from_millis(3_024));
    // `a` is out of the week, not out of the month; `b` is out of the day only.
    let usage = env.sim.limit_usage(rp_sim::DEFAULT_PROJECT_ID);
    assert_eq!(
        (usage.day_count, usage.week_count, usage.month_count),
        (1, 2, 3),
        "{usage:?}"
    );
    assert_eq!(usage.month_amount, 450_000);
}

#[tokio::test]
async fn usage_is_counted_per_project() {
    let (one, two) = (ProjectId::new(1).unwrap(), ProjectId::new(2).unwrap());
    let env = env(|b| {
        b.project(one, SecretKey::from("key-one"))
            .project(two, SecretKey::from("key-two"))
            .limit_daily_count(1)
    })
    .await;
    let client = client();
    let pay_in = |project: u64, key: &'static str, id: &str| {
        let mut request = payout_request(id, PHONE);
        request["general"]["project_id"] = json!(project);
        let body = Signer::new(&SecretKey::from(key))
            .sign_request_body(&request)
            .unwrap();
        send(client.post(env.url(PAYOUT_PATH)).body(body))
    };
    assert_accepted(&pay_in(1, "key-one", "p1-a").await);
    assert_accepted(&pay_in(2, "key-two", "p2-a").await);
    assert_refused(&pay_in(1, "key-one", "p1-b").await, "3112");
    assert_refused(&pay_in(2, "key-two", "p2-b").await, "3112");
    assert_eq!(env.sim.limit_usage(1).day_count, 1);
    assert_eq!(env.sim.limit_usage(2).day_count, 1);
}
