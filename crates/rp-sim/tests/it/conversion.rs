//! Currency conversion on the platform side: a payout asked in USD is paid in tenge at the
//! configured rate; callbacks and status report both sums; no rate, no payout (3023).

use rp_model::Currency;
use rp_sim::{PAYOUT_PATH, Rate};
use serde_json::json;

use crate::{Env, payout_request};

#[tokio::test]
async fn a_usd_payout_is_converted_and_both_sums_are_reported() {
    let rate: Rate = "480.50".parse().unwrap();
    let env = Env::start_with(|b| b.rate(Currency::USD, rate)).await;
    let mut request = payout_request("conv-1", "77011234567");
    request["payment"] = json!({"amount": 10_050, "currency": "USD", "description": "Выплата"});
    let answer = env.post_signed(PAYOUT_PATH, &request).await;
    assert_eq!(answer.status, 200, "{:?}", answer.json);

    // 100.50 USD × 480.50 = 48 290.25 KZT.
    let callback = env.rx.wait_for("conv-1", 1).await.remove(0);
    assert_eq!(
        callback["payment"]["sum"],
        json!({"amount": 10_050, "currency": "USD"})
    );
    assert_eq!(
        callback["operation"]["sum_initial"],
        json!({"amount": 10_050, "currency": "USD"})
    );
    assert_eq!(
        callback["operation"]["sum_converted"],
        json!({"amount": 4_829_025, "currency": "KZT"})
    );
    let status = env.wait_status("conv-1", "success").await;
    let operation = &status.json["operations"][0];
    assert_eq!(operation["sum_initial"]["currency"], "USD");
    assert_eq!(operation["sum_converted"]["amount"], 4_829_025);
    // The signature covers both sums.
    let body = serde_json::to_vec(&callback).unwrap();
    assert!(env.signer.verify_callback(&body).is_ok());
}

#[tokio::test]
async fn a_currency_without_a_rate_is_3023_and_the_limit_is_in_tenge() {
    let env = Env::start_with(|b| {
        b.rate(Currency::USD, "480.50".parse().unwrap())
            .amount_limit(1_000_000)
    })
    .await;
    let mut request = payout_request("conv-eur", "77011234567");
    request["payment"] = json!({"amount": 100, "currency": "EUR"});
    let answer = env.post_signed(PAYOUT_PATH, &request).await;
    assert_eq!(answer.code(), "3023", "{:?}", answer.json);
    let message = answer.json["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("enabled: KZT, USD"), "{:?}", answer.json);

    // 30.00 USD = 14 415.00 KZT = 1 441 500 tiyn > 1 000 000: over the limit in tenge.
    let mut request = payout_request("conv-big", "77011234567");
    request["payment"] = json!({"amount": 3_000, "currency": "USD"});
    let answer = env.post_signed(PAYOUT_PATH, &request).await;
    assert_eq!(answer.code(), "3104", "{:?}", answer.json);
    // 20.00 USD = 961 000 tiyn: under it.
    request["general"]["payment_id"] = json!("conv-ok");
    request["payment"] = json!({"amount": 2_000, "currency": "USD"});
    let answer = env.post_signed(PAYOUT_PATH, &request).await;
    assert_eq!(answer.status, 200, "{:?}", answer.json);
}

#[test]
fn rates_are_exact_decimals() {
    let rate: Rate = "480.50".parse().unwrap();
    assert_eq!(rate.to_string(), "480.50");
    // 0.01 USD × 480.50 = 4.805 KZT = 480.5 tiyn → 481 (half up).
    assert_eq!(rate.convert(1, Currency::USD), Some(481));
    for bad in [
        "",
        "-1",
        "0",
        "0.000",
        "1.",
        ".5",
        "1e3",
        "480,50",
        "1.0000000001",
    ] {
        assert!(bad.parse::<Rate>().is_err(), "{bad}");
    }
    let (currency, rate) = rp_sim::parse_rate_arg("KWD=1500.125").unwrap();
    assert_eq!(currency, Currency::KWD);
    // 1.000 KWD (exponent 3) = 1 500.125 KZT = 150 013 tiyn (half up).
    assert_eq!(rate.convert(1_000, Currency::KWD), Some(150_013));
    assert!(rp_sim::parse_rate_arg("KZT=1").is_err());
    assert!(rp_sim::parse_rate_arg("XXX=1").is_err());
}
