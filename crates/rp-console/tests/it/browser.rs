//! The console in a real browser: headless Chromium driven through chromedriver, against a
//! real `serve` and a real simulator. Each page is captured under
//! `target/console-screenshots/` for a reviewer to look at.
//!
//! Without Chromium and chromedriver the test fails under `CI=true` and says loudly that it
//! skipped otherwise.

use std::path::PathBuf;
use std::time::Duration;

use crate::webdriver::{Browser, Driver, binaries};
use crate::{PAY, Server, VIEW};

/// The binaries, or `None` after saying loudly why the test is skipped (a failure in CI).
fn browser_or_skip() -> Option<(PathBuf, PathBuf)> {
    match binaries() {
        Ok(found) => Some(found),
        Err(why) => {
            crate::skip("the console's browser tests", &why);
            None
        }
    }
}

fn screenshots() -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn sign_in(browser: &Browser, server: &Server, (name, password): (&str, &str)) {
    browser.go(&server.url("/payments")).await;
    assert!(
        browser.url().await.contains("/login?next="),
        "{}",
        browser.url().await
    );
    browser.find("#name").await.type_text(name).await;
    browser.find("#password").await.type_text(password).await;
    browser.find("main form button").await.click().await;
    browser.wait_url("/payments").await;
    let url = browser.url().await;
    assert!(url.ends_with("/payments"), "signed in and sent on: {url}");
}

/// The body of `href` fetched with the browser's cookies.
async fn fetch(server: &Server, browser: &Browser, href: &str) -> String {
    server
        .http
        .get(server.url(href))
        .header(reqwest::header::COOKIE, browser.cookie_header().await)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_pays_one_and_a_file_in_a_real_browser() {
    let Some((driver_path, chromium)) = browser_or_skip() else {
        return;
    };
    let shots = screenshots();
    let server = Server::start(Some(Duration::from_millis(500))).await;
    let driver = Driver::start(&driver_path).await;
    let anna = driver
        .browser(&chromium, &crate::scratch("profile-anna"))
        .await;

    sign_in(&anna, &server, PAY).await;
    anna.screenshot(&shots.join("01-payments-empty.png")).await;

    // A single payout: the form, the confirmation, then success on screen without a reload.
    anna.go(&server.url("/payouts/new")).await;
    anna.find("#phone")
        .await
        .type_text("+7 701 123 45 67")
        .await;
    anna.find("#amount").await.type_text("1 500").await;
    anna.find("#customer_id").await.type_text("c-browser").await;
    anna.screenshot(&shots.join("02-new-payout.png")).await;
    anna.find("main form button").await.click().await;
    let confirm = anna
        .wait_text("main", "Confirm the payout", Duration::from_secs(10))
        .await;
    assert!(
        confirm.contains("Confirm the payout") && confirm.contains("7701***4567"),
        "{confirm}"
    );
    assert!(confirm.contains("1 500,00 ₸"), "{confirm}");
    anna.screenshot(&shots.join("03-confirm.png")).await;
    anna.find("main form button").await.click().await;
    anna.wait_url("?done=sent").await;
    anna.script("window.rpMarker = 42;").await;
    anna.wait_text("#state", "success", Duration::from_secs(15))
        .await;
    assert_eq!(
        anna.script("return window.rpMarker;").await,
        serde_json::json!(42),
        "the state changed without a reload"
    );
    anna.screenshot(&shots.join("04-payment-success.png")).await;

    // A file with a bad row shows that row's error; the corrected file is confirmed, paid,
    // and its report matches the simulator.
    let dir = crate::scratch("browser-files");
    let bad = dir.join("bad.csv");
    std::fs::write(
        &bad,
        "phone;amount;customer_id\n+7 701 555 12 34;100;c-1\n+7 999 555 23 45;100;c-2\n",
    )
    .unwrap();
    anna.go(&server.url("/batches/new")).await;
    anna.find("input[type=file]")
        .await
        .type_text(bad.to_str().unwrap())
        .await;
    anna.find("main form button").await.click().await;
    let check = anna
        .wait_text("main", "line 3", Duration::from_secs(10))
        .await;
    assert!(!check.contains("Confirm and pay"), "{check}");
    anna.screenshot(&shots.join("05-batch-check-error.png"))
        .await;
    let good = dir.join("good.csv");
    std::fs::write(
        &good,
        "phone;amount;customer_id\n+7 701 555 12 34;100;c-1\n+7 705 555 23 45;200;c-2\n+7 747 555 34 56;300;c-3\n",
    )
    .unwrap();
    anna.go(&server.url("/batches/new")).await;
    anna.find("input[type=file]")
        .await
        .type_text(good.to_str().unwrap())
        .await;
    anna.find("main form button").await.click().await;
    let check = anna
        .wait_text("main", "Confirm and pay", Duration::from_secs(10))
        .await;
    assert!(
        check.contains("3 payouts") && check.contains("600,00 ₸"),
        "{check}"
    );
    anna.screenshot(&shots.join("06-batch-confirm.png")).await;
    anna.find("main form button").await.click().await;
    anna.wait_url("/batches/").await;
    let done = anna
        .wait_text(
            "#progress",
            "3 of 3 valid rows final",
            Duration::from_secs(30),
        )
        .await;
    assert!(done.contains("done"), "{done}");
    anna.screenshot(&shots.join("07-batch-done.png")).await;
    let href = anna
        .find("a[href$='report.csv']")
        .await
        .attribute("href")
        .await;
    let report = fetch(&server, &anna, href.trim_start_matches(&server.base)).await;
    let payments = server.sim.payments();
    assert_eq!(
        payments.len(),
        4,
        "one single payout and three rows: {payments:?}"
    );
    for payment in payments
        .iter()
        .filter(|p| p.customer_id.starts_with("c-") && p.customer_id != "c-browser")
    {
        let line = report
            .lines()
            .find(|l| l.contains(&payment.payment_id))
            .unwrap_or_else(|| panic!("{} not in the report: {report}", payment.payment_id));
        assert!(line.contains(";success;"), "{line}");
    }

    // The list filters and exports.
    anna.go(&server.url("/payments?state=success")).await;
    let rows = anna
        .script("return document.querySelectorAll('#list tbody tr').length;")
        .await;
    assert_eq!(rows, serde_json::json!(4));
    anna.screenshot(&shots.join("08-payments-success.png"))
        .await;
    let export = anna
        .find("a[href^='/payments.csv']")
        .await
        .attribute("href")
        .await;
    let csv = fetch(&server, &anna, export.trim_start_matches(&server.base)).await;
    assert_eq!(csv.lines().count(), 5, "{csv}");
    anna.go(&server.url("/payments?state=decline")).await;
    assert!(anna.text().await.contains("No payouts match"));

    // A "view" operator sees, and cannot pay.
    let victor = driver
        .browser(&chromium, &crate::scratch("profile-victor"))
        .await;
    sign_in(&victor, &server, VIEW).await;
    victor.go(&server.url("/payouts/new")).await;
    assert!(victor.text().await.contains("not make them"));
    victor.screenshot(&shots.join("09-view-operator.png")).await;
    victor.go(&server.url("/limits")).await;
    victor.screenshot(&shots.join("10-limits.png")).await;

    // Webhooks: an endpoint added from the page, its secret shown once.
    server
        .desk
        .webhooks()
        .add_endpoint("https://shop.example/rp-webhooks", "whsec_c2VjcmV0")
        .await
        .unwrap();
    anna.go(&server.url("/webhooks")).await;
    let text = anna.text().await;
    assert!(
        text.contains("https://shop.example/rp-webhooks") && !text.contains("whsec_"),
        "{text}"
    );
    anna.screenshot(&shots.join("11-webhooks.png")).await;

    anna.quit().await;
    victor.quit().await;
    server.stop().await;
}
