//! A small W3C `WebDriver` client over reqwest, enough to drive headless Chromium through
//! chromedriver: open pages, fill and submit forms, read text, run a script, take
//! screenshots, read cookies. `chromedriver` and `chromium` come from Debian's packages
//! (`.ci/run` and `cargo xtask ci` install them); `RP_CHROMEDRIVER` and `RP_CHROMIUM` name
//! other paths.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The key of an element reference in `WebDriver` answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver.
pub(crate) struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

/// The binaries, or why the browser tests cannot run.
pub(crate) fn binaries() -> Result<(PathBuf, PathBuf), String> {
    let driver = std::env::var_os("RP_CHROMEDRIVER")
        .map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from);
    let browser = std::env::var_os("RP_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    for path in [&driver, &browser] {
        if !path.exists() {
            return Err(format!(
                "{} is missing: apt-get install chromium chromium-driver (cargo xtask ci does it when run as root)",
                path.display()
            ));
        }
    }
    Ok((driver, browser))
}

impl Driver {
    /// Starts chromedriver on a free port and waits until it answers.
    pub(crate) async fn start(driver: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(answer) = http.get(format!("{base}/status")).send().await
                && answer.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver { child, base, http }
    }

    /// A new headless browser (its own empty profile).
    pub(crate) async fn browser(&self, chromium: &Path, profile: &Path) -> Browser {
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1200,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let answer = self.call("POST", "/session", Some(capabilities)).await;
        let session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_owned();
        Browser {
            base: format!("{}/session/{session}", self.base),
            http: self.http.clone(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(&self.http, method, &format!("{}{path}", self.base), body).await
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn call(http: &reqwest::Client, method: &str, url: &str, body: Option<Value>) -> Value {
    match try_call(http, method, url, body).await {
        Ok(value) => value,
        Err(error) => panic!("{error}"),
    }
}

/// A `WebDriver` call: its value, or what went wrong (e.g. a stale element after the page
/// changed under it).
async fn try_call(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let request = match method {
        "GET" => http.get(url),
        "DELETE" => http.delete(url),
        _ => http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&body.unwrap_or_else(|| json!({}))).unwrap()),
    };
    let answer = request.send().await.unwrap();
    let status = answer.status();
    let value: Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
    if !status.is_success() {
        return Err(format!("{method} {url}: {status} {value}"));
    }
    Ok(value["value"].clone())
}

/// One browser session.
pub(crate) struct Browser {
    base: String,
    http: reqwest::Client,
}

/// An element of the page.
pub(crate) struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(&self.http, method, &format!("{}{path}", self.base), body).await
    }

    /// Opens `url`.
    pub(crate) async fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url}))).await;
    }

    /// The address of the page now.
    pub(crate) async fn url(&self) -> String {
        self.call("GET", "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits up to 10 s until the address contains `part` (a click's navigation may still be
    /// under way when the click answers): the address.
    pub(crate) async fn wait_url(&self, part: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.url().await;
            if url.contains(part) {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "the address never contained {part:?}: {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The element matching `css`, waiting up to 10 s for it.
    pub(crate) async fn find(&self, css: &str) -> Element<'_> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answer = self
                .http
                .post(format!("{}/element", self.base))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(json!({"using": "css selector", "value": css}).to_string())
                .send()
                .await
                .unwrap();
            if answer.status().is_success() {
                let value: Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
                let id = value["value"][ELEMENT].as_str().unwrap().to_owned();
                return Element { browser: self, id };
            }
            assert!(
                Instant::now() < deadline,
                "no element {css} on {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page's visible text.
    pub(crate) async fn text(&self) -> String {
        self.find("body").await.text().await
    }

    /// Waits up to `limit` until the text of `css` contains `wanted`: that text.
    pub(crate) async fn wait_text(&self, css: &str, wanted: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let element = self.find(css).await;
            // The page may change under the element (a navigation, a live refresh): look again.
            let text = try_call(
                &self.http,
                "GET",
                &format!("{}/element/{}/text", self.base, element.id),
                None,
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
            if text.contains(wanted) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never showed {wanted:?}; it shows {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `script` in the page: its return value.
    pub(crate) async fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Saves a screenshot of the page as PNG at `path`.
    pub(crate) async fn screenshot(&self, path: &Path) {
        let data = self.call("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// The `Cookie` header value of the page's cookies (`HttpOnly` ones included).
    pub(crate) async fn cookie_header(&self) -> String {
        let cookies = self.call("GET", "/cookie", None).await;
        cookies
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{}={}",
                    c["name"].as_str().unwrap(),
                    c["value"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Ends the session (closes the browser).
    pub(crate) async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

impl Element<'_> {
    /// Types `text` into it (for a file input: the file's path).
    pub(crate) async fn type_text(&self, text: &str) {
        self.browser
            .call(
                "POST",
                &format!("/element/{}/value", self.id),
                Some(json!({"text": text})),
            )
            .await;
    }

    /// Clicks it.
    pub(crate) async fn click(&self) {
        self.browser
            .call("POST", &format!("/element/{}/click", self.id), None)
            .await;
    }

    /// Its visible text.
    pub(crate) async fn text(&self) -> String {
        self.browser
            .call("GET", &format!("/element/{}/text", self.id), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// An attribute or property.
    pub(crate) async fn attribute(&self, name: &str) -> String {
        self.browser
            .call(
                "GET",
                &format!("/element/{}/attribute/{name}", self.id),
                None,
            )
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}
