//! The rules that keep money safe from a browser, at the HTTP level: no page without a
//! session, no POST without the session's CSRF token, no payout by a "view" operator, login
//! guarded against guessing and forged forms, sessions ended by logout, strict headers.

use reqwest::StatusCode;
use reqwest::header::COOKIE;

use crate::{Browser, PAY, Server, VIEW, location, set_cookie_line};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_without_a_session() {
    let server = Server::start(None).await;
    for path in [
        "/payments",
        "/payments/p-1",
        "/payouts/new",
        "/batches",
        "/limits",
        "/attention",
        "/payments.csv",
        "/",
    ] {
        let answer = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(
            location(&answer).starts_with("/login?next="),
            "{path}: {}",
            location(&answer)
        );
    }
    for path in [
        "/payouts",
        "/logout",
        "/payments/p-1/check",
        "/payments/p-1/resend",
    ] {
        let answer = server
            .http
            .post(server.url(path))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(crate::form_body(&[("step", "pay")]))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    // A forged or ended session is no session.
    let forged = server
        .http
        .get(server.url("/payments"))
        .header(
            COOKIE,
            format!("{}={}", rp_console::SESSION_COOKIE, "0".repeat(64)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::SEE_OTHER);
    // Health is public; it shows nothing about payouts.
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(
        reqwest::get(server.url("/readyz")).await.unwrap().status(),
        StatusCode::OK
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_post_needs_the_sessions_csrf_token() {
    let server = Server::start(None).await;
    let anna = server.login(PAY).await;
    let fields = [
        ("step", "review"),
        ("phone", "+77011234567"),
        ("amount", "10"),
        ("customer_id", "c"),
    ];
    for token in ["", "wrong", &"0".repeat(64)] {
        let forged = Browser {
            cookie: anna.cookie.clone(),
            csrf: token.to_owned(),
        };
        let answer = server.post(&forged, "/payouts", &fields).await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "token {token:?}");
    }
    // Another session's token is not this session's.
    let victor = server.login(VIEW).await;
    let mixed = Browser {
        cookie: anna.cookie.clone(),
        csrf: victor.csrf.clone(),
    };
    assert_eq!(
        server.post(&mixed, "/payouts", &fields).await.status(),
        StatusCode::FORBIDDEN
    );
    // With it, the form is reviewed.
    assert_eq!(
        server.post(&anna, "/payouts", &fields).await.status(),
        StatusCode::OK
    );
    assert!(server.sim.requests().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_operator_cannot_pay() {
    let server = Server::start(None).await;
    let victor = server.login(VIEW).await;
    let form = server.get_with(&victor.cookie, "/payouts/new").await.1;
    assert!(
        form.contains("you can see payouts, not make them"),
        "{form}"
    );
    for step in ["review", "pay"] {
        let answer = server
            .post(
                &victor,
                "/payouts",
                &[
                    ("step", step),
                    ("payment_id", "p-victor-1"),
                    ("phone", "+77011234567"),
                    ("amount", "10"),
                    ("customer_id", "c"),
                ],
            )
            .await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{step}");
    }
    assert_eq!(
        server
            .post(&victor, "/payments/p-victor-1/check", &[])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert!(server.sim.requests().is_empty(), "nothing was sent");
    assert!(
        server
            .desk
            .client()
            .store()
            .get(&rp_model::PaymentId::new("p-victor-1").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    // Viewing works.
    assert_eq!(
        server.get_with(&victor.cookie, "/payments").await.0,
        StatusCode::OK
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_guarded_and_logout_ends_the_session() {
    let server = Server::start(None).await;
    // Wrong passwords, then the right one while the name is locked.
    for _ in 0..rp_console::MAX_FAILED_LOGINS {
        let (status, session) = server.try_login(PAY.0, "wrong password!").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(session.is_none());
    }
    let (status, session) = server.try_login(PAY.0, PAY.1).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(session.is_none());
    // An unknown name is answered like a wrong password.
    assert_eq!(
        server.try_login("nobody", "whatever it is").await.0,
        StatusCode::UNAUTHORIZED
    );
    // A login form posted without its cookie (from another site) is refused.
    let forged = server
        .http
        .post(server.url("/login"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(crate::form_body(&[
            ("name", VIEW.0),
            ("password", VIEW.1),
            ("csrf", "abc"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    // The session cookie's attributes; logout ends the session everywhere.
    let form = server.http.get(server.url("/login")).send().await.unwrap();
    let login_cookie = crate::cookie_of(&form, rp_console::LOGIN_COOKIE).unwrap();
    let token = crate::hidden(&form.text().await.unwrap(), "csrf").unwrap();
    let answer = server
        .http
        .post(server.url("/login"))
        .header(
            COOKIE,
            format!("{}={login_cookie}", rp_console::LOGIN_COOKIE),
        )
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(crate::form_body(&[
            ("name", VIEW.0),
            ("password", VIEW.1),
            ("csrf", &token),
            ("next", "//evil.example/"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&answer),
        "/payments",
        "never sent off-site after login"
    );
    let line = set_cookie_line(&answer, rp_console::SESSION_COOKIE).unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(line.contains(attribute), "{line}");
    }
    let victor = server.login(VIEW).await;
    assert_eq!(
        server.post(&victor, "/logout", &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        server.get_with(&victor.cookie, "/payments").await.0,
        StatusCode::SEE_OTHER
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_strict_security_headers() {
    let server = Server::start(None).await;
    let victor = server.login(VIEW).await;
    let answer = server
        .http
        .get(server.url("/payments"))
        .header(COOKIE, &victor.cookie)
        .send()
        .await
        .unwrap();
    let headers = answer.headers();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
    let page = answer.text().await.unwrap();
    assert!(
        !page.contains("<script>") && !page.contains("style="),
        "no inline script or style"
    );
    assert!(
        !page.contains(crate::SECRET),
        "the secret key never reaches a page"
    );
    server.stop().await;
}

/// The RFC 6238 code of a Base32 `secret` at `unix` seconds (the test's own oracle).
#[allow(clippy::cast_possible_truncation)] // masked to a byte first
fn totp(secret: &str, unix: u64) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut key, mut buffer, mut bits) = (Vec::new(), 0u64, 0);
    for c in secret.chars() {
        buffer = (buffer << 5) | ALPHABET.find(c).unwrap() as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            key.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).unwrap();
    mac.update(&(unix / 30).to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let word = u32::from_be_bytes(digest[offset..offset + 4].try_into().unwrap()) & 0x7fff_ffff;
    format!("{:06}", word % 1_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_factor_is_required_and_each_code_works_once() {
    let server = Server::start(None).await;
    let secret = rp_console::new_totp_secret().unwrap();
    let mut tess = rp_ledger::OperatorAccount::new(
        "tess",
        rp_console::hash_password("tess's long passphrase").unwrap(),
        rp_ledger::Role::Pay,
    );
    tess.totp_secret = Some(secret.clone());
    server.desk.access().put_operator(tess).await.unwrap();
    let login = |code: String| {
        let server = &server;
        async move {
            let form = server.http.get(server.url("/login")).send().await.unwrap();
            let cookie = crate::cookie_of(&form, rp_console::LOGIN_COOKIE).unwrap();
            let token = crate::hidden(&form.text().await.unwrap(), "csrf").unwrap();
            server
                .http
                .post(server.url("/login"))
                .header(COOKIE, format!("{}={cookie}", rp_console::LOGIN_COOKIE))
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(crate::form_body(&[
                    ("name", "tess"),
                    ("password", "tess's long passphrase"),
                    ("csrf", &token),
                    ("code", &code),
                ]))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(
        login(String::new()).await,
        StatusCode::UNAUTHORIZED,
        "the password alone"
    );
    assert_eq!(
        login(totp(&secret, now + 600)).await,
        StatusCode::UNAUTHORIZED,
        "a code of later"
    );
    let code = totp(&secret, now);
    assert_eq!(login(code.clone()).await, StatusCode::SEE_OTHER);
    assert_eq!(
        login(code).await,
        StatusCode::UNAUTHORIZED,
        "the same code twice"
    );
    server.stop().await;
}

/// `/metrics` (payouts by state, callbacks, webhooks: a merchant's volumes) is served on the
/// listener that, by default, also takes the platform's callbacks from the internet: it asks
/// for an API key (any role, as Prometheus' `authorization` sends it), and refuses none, an
/// unknown and a revoked one. `/healthz` and `/readyz` tell nothing and stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_an_api_key() {
    use crate::api::{PAY_KEY, READ_KEY, add_keys};
    use reqwest::header::AUTHORIZATION;
    let server = Server::start(None).await;
    add_keys(&server).await;
    let metrics = |key: Option<&str>| {
        let mut request = server.http.get(server.url("/metrics"));
        if let Some(key) = key {
            request = request.header(AUTHORIZATION, format!("Bearer {key}"));
        }
        async move {
            let answer = request.send().await.unwrap();
            (answer.status(), answer.text().await.unwrap())
        }
    };
    let (status, body) = metrics(None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(!body.contains("rp_payouts"), "{body}");
    let (status, _) = metrics(Some("rpk_nope")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for key in [READ_KEY, PAY_KEY] {
        let (status, body) = metrics(Some(key)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains("rp_http_request_duration_seconds"), "{body}");
    }
    assert!(
        server
            .desk
            .access()
            .revoke_api_key("reports", std::time::SystemTime::now())
            .await
            .unwrap()
    );
    let (status, _) = metrics(Some(READ_KEY)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for open in ["/healthz", "/readyz"] {
        let answer = server.http.get(server.url(open)).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{open}");
    }
    server.stop().await;
}

/// Operators and API keys are the project's: on a ledger that another project shares (a test
/// and a production project, say), that project's key and operator are refused here, though
/// they exist in the same ledger, and this project's work here as ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_projects_key_and_operator_are_refused() {
    const OTHER_KEY: &str = "rpk_00000000000000000000000000000000000000000000000000000000000000ff";
    let url = format!(
        "sqlite:{}",
        crate::scratch("other-project").join("ledger.db").display()
    );
    let server = Server::start_on(&url, None).await;
    crate::api::add_keys(&server).await;
    let ledger = rp_ledger::Ledger::open(&url).await.unwrap();
    let other = ledger.access(rp_model::ProjectId::new(crate::PROJECT + 1).unwrap());
    other
        .add_api_key(rp_ledger::ApiKey::new(
            "backend-test",
            rp_console::api_key_sha256(OTHER_KEY),
            rp_ledger::Role::Pay,
        ))
        .await
        .unwrap();
    other
        .put_operator(rp_ledger::OperatorAccount::new(
            "olga",
            rp_console::hash_password("olga's long passphrase").unwrap(),
            rp_ledger::Role::Pay,
        ))
        .await
        .unwrap();
    let body = serde_json::json!({
        "payment_id": "other-project-1", "phone": "+7 701 123 45 67", "amount": "100",
        "customer": {"id": "c-1"}
    });
    let (status, _, problem) = crate::api::call(
        &server,
        "POST",
        "/api/v1/payouts",
        Some(OTHER_KEY),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    assert_eq!(server.sent("other-project-1"), 0);
    let (status, session) = server.try_login("olga", "olga's long passphrase").await;
    assert!(session.is_none(), "olga is another project's: {status}");
    // This project's key and operator are unaffected.
    let (status, _, _) = crate::api::call(
        &server,
        "POST",
        "/api/v1/payouts",
        Some(crate::api::PAY_KEY),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    server.login(PAY).await;
    server.stop().await;
}
