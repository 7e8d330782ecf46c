//! Integration tests of rp-console: a real `serve` (console, callback endpoint, reconciler,
//! batch worker) on 127.0.0.1:0, against a real simulator whose callbacks come back to it,
//! driven over HTTP the way a browser does (cookies, forms, redirects by hand).

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod api_batches;
mod api_review;
mod batches;
mod browser;
mod contract;
mod pages;
mod record_wait;
mod review;
mod review_api2;
mod review_api3;
mod review_clash;
mod review_final;
mod review_grouped;
mod review_meta;
mod review_meta_digits;
mod review_onclash;
mod review_reg;
mod review_s2;
mod review_s3;
mod review_submit;
mod security;
mod webdriver;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use rp_console::{Desk, ServeOptions, Settings, hash_password};
use rp_ledger::{Ledger, OperatorAccount, Role};
use rp_model::{Limits, ProjectId};
use rp_payout::{Client, Config, RetryPolicy};
use rp_sign::SecretKey;
use rp_sim::{RunningSimulator, Simulator};
use tokio::sync::oneshot;

pub(crate) const PROJECT: u64 = 4321;
pub(crate) const SECRET: &str = "console-secret";
pub(crate) const PAY: (&str, &str) = ("anna", "anna's long passphrase");
pub(crate) const VIEW: (&str, &str) = ("victor", "victor's long passphrase");

/// A running `rp serve` and its simulator.
pub(crate) struct Server {
    pub(crate) sim: RunningSimulator,
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) desk: Desk,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

/// A signed-in browser: its session cookie and the session's CSRF token.
#[derive(Clone, Debug)]
pub(crate) struct Browser {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

impl Server {
    /// `serve` on a fresh in-memory ledger, the simulator's callbacks pointed at it; the
    /// reconciler every `reconcile` (`None`: off) and the batch worker every 300 ms.
    pub(crate) async fn start(reconcile: Option<Duration>) -> Server {
        Self::start_on("sqlite::memory:", reconcile).await
    }

    pub(crate) async fn start_on(ledger_url: &str, reconcile: Option<Duration>) -> Server {
        Self::start_with(ledger_url, reconcile, Duration::from_millis(300)).await
    }

    /// As [`Server::start`], its client holding payouts to `limits`.
    pub(crate) async fn start_limited(limits: Limits) -> Server {
        Self::start_full(
            "sqlite::memory:",
            None,
            Duration::from_millis(300),
            limits,
            Settings::default(),
            |_| {},
        )
        .await
    }

    /// As [`Server::start`] (no reconciler), its serve options changed by `tune`.
    pub(crate) async fn start_tuned(tune: impl FnOnce(&mut ServeOptions)) -> Server {
        Self::start_full(
            "sqlite::memory:",
            None,
            Duration::from_millis(300),
            Limits::NONE,
            Settings::default(),
            tune,
        )
        .await
    }

    /// As [`Server::start_on`] (no reconciler), with `settings`.
    pub(crate) async fn start_settled(ledger_url: &str, settings: Settings) -> Server {
        Self::start_full(
            ledger_url,
            None,
            Duration::from_millis(300),
            Limits::NONE,
            settings,
            |_| {},
        )
        .await
    }

    /// As [`Server::start_on`], the batch worker looking for stopped batches every `batches`
    /// (its first look after one interval).
    pub(crate) async fn start_with(
        ledger_url: &str,
        reconcile: Option<Duration>,
        batches: Duration,
    ) -> Server {
        Self::start_full(
            ledger_url,
            reconcile,
            batches,
            Limits::NONE,
            Settings::default(),
            |_| {},
        )
        .await
    }

    async fn start_full(
        ledger_url: &str,
        reconcile: Option<Duration>,
        batches: Duration,
        limits: Limits,
        settings: Settings,
        tune: impl FnOnce(&mut ServeOptions),
    ) -> Server {
        let console = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = console.local_addr().unwrap();
        let project = ProjectId::new(PROJECT).unwrap();
        let sim = Simulator::builder()
            .project(project, SecretKey::from(SECRET))
            .callback_url(format!(
                "http://{addr}{}",
                rp_console::DEFAULT_CALLBACK_PATH
            ))
            .processing_delay(Duration::from_millis(100))
            .start()
            .await
            .unwrap();
        let ledger = Ledger::open(ledger_url).await.unwrap();
        let retry = RetryPolicy {
            max_attempts: 4,
            max_status_checks: 6,
            max_elapsed: Duration::from_secs(20),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            status_delay: Duration::from_millis(50),
        };
        let config = Config::new(project, SecretKey::from(SECRET))
            .with_base_url(sim.base_url())
            .with_retry(retry)
            .with_limits(limits)
            .with_overdue_after(Duration::from_millis(200));
        let client = Client::builder(config)
            .store(ledger.store(project))
            .build()
            .unwrap();
        let desk = Desk::new(Arc::new(client), ledger, settings);
        for ((name, password), role) in [(PAY, Role::Pay), (VIEW, Role::View)] {
            desk.access()
                .put_operator(OperatorAccount::new(
                    name,
                    hash_password(password).unwrap(),
                    role,
                ))
                .await
                .unwrap();
        }
        let mut options = ServeOptions::new(console);
        options.reconcile_every = reconcile;
        options.batches_every = Some(batches);
        tune(&mut options);
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(rp_console::serve(desk.clone(), options, async {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Server {
            sim,
            base: format!("http://{addr}"),
            http,
            desk,
            stop: Some(stop),
            served: Some(served),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The payout `id` once it is marked as needing attention (within 10 s, or the test
    /// fails).
    pub(crate) async fn marked_for_attention(&self, id: &str) -> rp_payout::PayoutRecord {
        let id = rp_model::PaymentId::new(id).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let record = self.desk.client().store().get(&id).await.unwrap().unwrap();
            if record.attention.is_some() {
                return record;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not marked for attention: {record:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many payout requests for payment ID `id` reached the simulator.
    pub(crate) fn sent(&self, id: &str) -> usize {
        self.sim
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("payout") && r.payment_id.as_deref() == Some(id))
            .count()
    }

    /// Stops `serve` and waits for its graceful shutdown.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            tokio::time::timeout(Duration::from_secs(40), served)
                .await
                .expect("serve stops within its grace period")
                .unwrap();
        }
    }

    /// Signs in: loads the login form (its token and cookie), posts the credentials.
    pub(crate) async fn login(&self, (name, password): (&str, &str)) -> Browser {
        let (status, session) = self.try_login(name, password).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "login of {name}");
        let cookie = session.expect("a session cookie");
        let page = self.get_with(&cookie, "/payments").await;
        assert_eq!(page.0, StatusCode::OK);
        Browser {
            csrf: hidden(&page.1, "csrf").expect("the page's CSRF token"),
            cookie,
        }
    }

    /// One login attempt: its status and the session cookie it set, if any.
    pub(crate) async fn try_login(
        &self,
        name: &str,
        password: &str,
    ) -> (StatusCode, Option<String>) {
        let form = self.http.get(self.url("/login")).send().await.unwrap();
        let login_cookie = cookie_of(&form, rp_console::LOGIN_COOKIE).expect("login cookie");
        let token = hidden(&form.text().await.unwrap(), "csrf").unwrap();
        let answer = self
            .http
            .post(self.url("/login"))
            .header(
                COOKIE,
                format!("{}={login_cookie}", rp_console::LOGIN_COOKIE),
            )
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form_body(&[
                ("name", name),
                ("password", password),
                ("csrf", &token),
                ("next", "/payments"),
            ]))
            .send()
            .await
            .unwrap();
        let session = cookie_of(&answer, rp_console::SESSION_COOKIE)
            .filter(|v| !v.is_empty())
            .map(|v| format!("{}={v}", rp_console::SESSION_COOKIE));
        (answer.status(), session)
    }

    /// The manual payout's confirmation page for `phone` and `amount` (customer `c-77`), as
    /// `browser` reviews it; it must be shown (200).
    pub(crate) async fn review_payout(
        &self,
        browser: &Browser,
        phone: &str,
        amount: &str,
    ) -> String {
        let fields = [
            ("step", "review"),
            ("phone", phone),
            ("amount", amount),
            ("customer_id", "c-77"),
        ];
        let page = self.post(browser, "/payouts", &fields).await;
        assert_eq!(page.status(), StatusCode::OK);
        page.text().await.unwrap()
    }

    /// `GET path` with a cookie: status and body.
    pub(crate) async fn get_with(&self, cookie: &str, path: &str) -> (StatusCode, String) {
        let answer = self
            .http
            .get(self.url(path))
            .header(COOKIE, cookie)
            .send()
            .await
            .unwrap();
        (answer.status(), answer.text().await.unwrap())
    }

    /// `POST path` as `browser`, with its CSRF token and `fields`: the answer.
    pub(crate) async fn post(
        &self,
        browser: &Browser,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = vec![("csrf", &browser.csrf)];
        form.extend_from_slice(fields);
        self.http
            .post(self.url(path))
            .header(COOKIE, &browser.cookie)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form_body(&form))
            .send()
            .await
            .unwrap()
    }

    /// Polls `path` until its body contains `text` (10 s at most): the body.
    pub(crate) async fn wait_for(&self, browser: &Browser, path: &str, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = self.get_with(&browser.cookie, path).await;
            if status == StatusCode::OK && body.contains(text) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} never showed {text:?}; last ({status}): {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The value of cookie `name` set by `answer`.
pub(crate) fn cookie_of(answer: &reqwest::Response, name: &str) -> Option<String> {
    answer
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix(&format!("{name}="))
                .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
        })
}

/// The `Set-Cookie` header that sets `name`.
pub(crate) fn set_cookie_line(answer: &reqwest::Response, name: &str) -> Option<String> {
    answer
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value of the first hidden input named `name` in a page.
pub(crate) fn hidden(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')?;
    Some(
        page[start..start + end]
            .replace("&amp;", "&")
            .replace("&quot;", "\""),
    )
}

/// Where a redirect goes.
pub(crate) fn location(answer: &reqwest::Response) -> String {
    answer
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Whether `program` runs (`program --version`).
pub(crate) fn installed(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok()
}

/// Says loudly that `what` is skipped, and why; under `CI=true` that fails the test instead
/// (CI installs every program the tests need).
pub(crate) fn skip(what: &str, why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} cannot be skipped under CI=true: {why}"
    );
    eprintln!("\n!!! SKIPPED {what}: {why}\n");
}

/// A fresh directory under the target directory.
pub(crate) fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("rp-console")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A URL-encoded form body.
pub(crate) fn form_body(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}
