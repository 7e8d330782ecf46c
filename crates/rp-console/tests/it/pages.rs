//! The console's pages with a signed-in operator: a single payout from the form to `success`
//! (the simulator's callback applied by the same process), the form's errors, the list, its
//! filters and export, the status check, the metrics.

use reqwest::StatusCode;

use crate::{PAY, Server, hidden, location};

/// Reviews and pays `amount` to `phone` as `anna`: the payment ID.
async fn pay(server: &Server, browser: &crate::Browser, phone: &str, amount: &str) -> String {
    let review = server
        .post(
            browser,
            "/payouts",
            &[
                ("step", "review"),
                ("phone", phone),
                ("amount", amount),
                ("customer_id", "c-77"),
                ("description", "Бонус за заказ"),
            ],
        )
        .await;
    assert_eq!(review.status(), StatusCode::OK);
    let page = review.text().await.unwrap();
    assert!(page.contains("Confirm the payout"), "{page}");
    let payment_id = hidden(&page, "payment_id").expect("the confirmation carries the payment ID");
    let fields = [
        ("step", "pay"),
        ("payment_id", payment_id.as_str()),
        ("phone", phone),
        ("amount", amount),
        ("customer_id", "c-77"),
        ("description", "Бонус за заказ"),
    ];
    let paid = server.post(browser, "/payouts", &fields).await;
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&paid), format!("/payments/{payment_id}?done=sent"));
    payment_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_payout_goes_from_the_form_to_success_once() {
    let server = Server::start(None).await;
    let anna = server.login(PAY).await;

    // The confirmation shows the masked phone, the operator and the amount, never the number.
    let review = server
        .post(
            &anna,
            "/payouts",
            &[
                ("step", "review"),
                ("phone", "8 (701) 123-45-67"),
                ("amount", "1 500,50"),
                ("customer_id", "c-77"),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(review.contains("7701***4567"), "{review}");
    assert!(
        !review.contains("7011234567\""),
        "the full number is only in the hidden field it came in"
    );
    assert!(review.contains("1\u{a0}500,50\u{a0}₸"), "{review}");
    assert!(
        review.contains("Kcell") || review.contains("Beeline") || review.contains("Kar-Tel"),
        "{review}"
    );

    let id = pay(&server, &anna, "+7 701 123 45 67", "2 000").await;
    // The state on the payment's page reaches success without a reload: its live part.
    let state = server
        .wait_for(&anna, &format!("/payments/{id}/state"), "success")
        .await;
    assert!(
        state.contains("data-final"),
        "a settled payout stops the refresh: {state}"
    );
    // The history says who asked for it.
    let page = server
        .get_with(&anna.cookie, &format!("/payments/{id}"))
        .await
        .1;
    assert!(page.contains("operator:anna"), "{page}");
    assert!(page.contains("callback"), "{page}");

    // "Pay" pressed again with the same confirmation: the same payout, never a second one.
    let again = server
        .post(
            &anna,
            "/payouts",
            &[
                ("step", "pay"),
                ("payment_id", &id),
                ("phone", "+7 701 123 45 67"),
                ("amount", "2 000"),
                ("customer_id", "c-77"),
                ("description", "Бонус за заказ"),
            ],
        )
        .await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    let sent: Vec<_> = server
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("payout") && r.payment_id.as_deref() == Some(id.as_str()))
        .collect();
    assert_eq!(sent.len(), 1, "one payout request for {id}: {sent:?}");
    assert_eq!(server.sim.payment(&id).unwrap().amount, 200_000);

    // The same ID with other details is refused, nothing sent.
    let other = server
        .post(
            &anna,
            "/payouts",
            &[
                ("step", "pay"),
                ("payment_id", &id),
                ("phone", "+7 701 123 45 67"),
                ("amount", "9 000"),
                ("customer_id", "c-77"),
            ],
        )
        .await;
    let body = other.text().await.unwrap();
    assert!(
        body.contains("already recorded for another payout"),
        "{body}"
    );
    server.stop().await;
}

/// The confirmation lists the payouts to the same number in the last 24 hours (paying one of
/// them again pays the person twice), and none for another number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_confirmation_shows_recent_payouts_to_the_same_number() {
    let server = Server::start(None).await;
    let anna = server.login(PAY).await;
    let first = server
        .review_payout(&anna, "+7 701 222 33 44", "1 500")
        .await;
    assert!(!first.contains("This number was paid"), "{first}");
    let paid = pay(&server, &anna, "+7 701 222 33 44", "1 500").await;
    let again = server
        .review_payout(&anna, "8 701 222 33 44", "1 500")
        .await;
    assert!(
        again.contains("This number was paid 1 time(s)") && again.contains(&paid),
        "{again}"
    );
    assert!(again.contains("500,00"), "{again}");
    let other = server
        .review_payout(&anna, "+7 701 222 33 45", "1 500")
        .await;
    assert!(!other.contains("This number was paid"), "{other}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_names_every_wrong_field_and_sends_nothing() {
    let server = Server::start(None).await;
    let anna = server.login(PAY).await;
    let answer = server
        .post(
            &anna,
            "/payouts",
            &[
                ("step", "review"),
                ("phone", "+7 999 123 45 67"),
                ("amount", "12,345"),
                ("customer_id", ""),
            ],
        )
        .await;
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = answer.text().await.unwrap();
    for field in ["phone-error", "amount-error", "customer_id-error"] {
        assert!(page.contains(field), "{field} missing: {page}");
    }
    assert!(page.contains("Russian"), "{page}");
    // What was typed stays in the form.
    assert!(page.contains("value=\"12,345\""), "{page}");
    // A forged confirmation (no valid payment ID) is refused too.
    let forged = server
        .post(
            &anna,
            "/payouts",
            &[
                ("step", "pay"),
                ("payment_id", "bad id;"),
                ("phone", "+77011234567"),
                ("amount", "10"),
                ("customer_id", "c"),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(forged.contains("no valid payment ID"), "{forged}");
    assert!(server.sim.requests().is_empty(), "nothing was sent");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_filters_counts_exports_and_checks() {
    let server = Server::start(None).await;
    let anna = server.login(PAY).await;
    let first = pay(&server, &anna, "+7 701 123 45 67", "100").await;
    let second = pay(&server, &anna, "+7 705 765 43 21", "250,50").await;
    for id in [&first, &second] {
        server
            .wait_for(&anna, &format!("/payments/{id}/state"), "success")
            .await;
    }
    let list = server.get_with(&anna.cookie, "/payments").await.1;
    assert!(list.contains(&first) && list.contains(&second), "{list}");
    assert!(
        list.contains("7701***4567") && !list.contains("77011234567"),
        "{list}"
    );
    let by_phone = server
        .get_with(&anna.cookie, "/payments?phone=8+705+765+43+21")
        .await
        .1;
    assert!(
        by_phone.contains(&second) && !by_phone.contains(&first),
        "{by_phone}"
    );
    let declined = server
        .get_with(&anna.cookie, "/payments?state=decline")
        .await
        .1;
    assert!(declined.contains("No payouts match"), "{declined}");
    let bad = server
        .get_with(&anna.cookie, "/payments?since=yesterday")
        .await
        .1;
    assert!(bad.contains("write a date as"), "{bad}");

    let export = server
        .http
        .get(server.url("/payments.csv?state=success"))
        .header(reqwest::header::COOKIE, &anna.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(export.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = export.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("created_at,payment_id,phone,amount"));
    assert!(
        csv.contains(&format!("{second},7705***4321,250.50,KZT,success")),
        "{csv}"
    );

    // Asking the status now is written into the history with the operator's name.
    let checked = server
        .post(&anna, &format!("/payments/{first}/check"), &[])
        .await;
    assert_eq!(checked.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&checked).contains("done="),
        "{}",
        location(&checked)
    );
    let page = server
        .get_with(&anna.cookie, &format!("/payments/{first}"))
        .await
        .1;
    assert!(
        page.contains("asked for the status from the console"),
        "{page}"
    );
    // A settled payout offers no resend, and refuses one.
    assert!(!page.contains("/resend"), "{page}");
    let resend = server
        .post(&anna, &format!("/payments/{first}/resend"), &[])
        .await;
    assert_eq!(resend.status(), StatusCode::CONFLICT);

    // Metrics: payouts by state, callbacks by outcome, request times.
    crate::api::add_keys(&server).await;
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .bearer_auth(crate::api::READ_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rp_payouts{state=\"success\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rp_callbacks_total{outcome=\"applied\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rp_http_request_duration_seconds_count{route=\"console\"}"),
        "{metrics}"
    );
    let limits = server.get_with(&anna.cookie, "/limits").await.1;
    assert!(limits.contains("No limits are configured"), "{limits}");
    server.stop().await;
}

/// The source filter: a payout from the JSON API, one from the console's form and the rows of
/// an uploaded batch (recorded as the operator's too, but from the batch), each listed and
/// exported under its source alone; an unknown source is the filter's error, answered 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_and_its_export_filter_by_source() {
    const KEY: &str = "rpk_00000000000000000000000000000000000000000000000000000000000000a1";
    let server = Server::start(None).await;
    let added = server
        .desk
        .access()
        .add_api_key(rp_ledger::ApiKey::new(
            "backend",
            rp_console::api_key_sha256(KEY),
            rp_ledger::Role::Pay,
        ))
        .await
        .unwrap();
    assert!(added);
    let anna = server.login(PAY).await;

    let from_api = "order-api-1";
    let created = server
        .http
        .post(server.url("/api/v1/payouts?wait=10"))
        .header(reqwest::header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(
            serde_json::json!({"payment_id": from_api, "phone": "+7 701 123 45 67",
                "amount": "10", "customer": {"id": "c-api"}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    let from_console = pay(&server, &anna, "+7 705 765 43 21", "20").await;
    let file = "phone;amount;customer_id\n+7 747 000 11 22;30;c-b1\n+7 747 000 11 23;31;c-b2\n";
    let checked = crate::batches::upload(&server, &anna.cookie, &anna.csrf, "s.csv", file).await;
    assert_eq!(checked.status(), StatusCode::OK);
    let page = checked.text().await.unwrap();
    let start = page.find("/batches/").unwrap() + "/batches/".len();
    let batch = page[start..start + 64].to_owned();
    let confirmed = server
        .post(&anna, &format!("/batches/{batch}/confirm"), &[])
        .await;
    assert_eq!(confirmed.status(), StatusCode::SEE_OTHER);
    server
        .wait_for(&anna, &format!("/batches/{batch}/progress"), "data-final")
        .await;
    let from_batch: Vec<String> = server
        .sim
        .payments()
        .into_iter()
        .map(|p| p.payment_id)
        .filter(|id| id != from_api && *id != from_console)
        .collect();
    assert_eq!(from_batch.len(), 2, "{from_batch:?}");

    let all = [
        from_api,
        from_console.as_str(),
        &from_batch[0],
        &from_batch[1],
    ];
    let expected: [(&str, Vec<&str>); 4] = [
        ("api", vec![from_api]),
        ("console", vec![from_console.as_str()]),
        ("batch", vec![&from_batch[0], &from_batch[1]]),
        ("library", vec![]),
    ];
    for (source, ids) in &expected {
        let (status, list) = server
            .get_with(&anna.cookie, &format!("/payments?source={source}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{source}: {list}");
        for id in all {
            assert_eq!(
                list.contains(&format!("/payments/{id}\"")),
                ids.contains(&id),
                "{source}, {id}: {list}"
            );
        }
        assert!(
            list.contains(&format!("/payments.csv?source={source}")),
            "the export link keeps the filter: {list}"
        );
        let csv = server
            .http
            .get(server.url(&format!("/payments.csv?source={source}")))
            .header(reqwest::header::COOKIE, &anna.cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(csv.lines().count(), 1 + ids.len(), "{source}: {csv}");
        for id in all {
            assert_eq!(
                csv.contains(&format!(",{id},")),
                ids.contains(&id),
                "{source}, {id}: {csv}"
            );
        }
    }
    // With a payment ID, the source still applies.
    let (_, one) = server
        .get_with(
            &anna.cookie,
            &format!("/payments?source=batch&payment_id={from_api}"),
        )
        .await;
    assert!(one.contains("No payouts match"), "{one}");

    let (status, bad) = server.get_with(&anna.cookie, "/payments?source=fax").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad.contains("unknown source"), "{bad}");
    assert!(bad.contains("api, console, batch, library"), "{bad}");
    let export = server
        .http
        .get(server.url("/payments.csv?source=fax"))
        .header(reqwest::header::COOKIE, &anna.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), StatusCode::BAD_REQUEST);
    assert!(export.text().await.unwrap().contains("unknown source"));
    server.stop().await;
}
