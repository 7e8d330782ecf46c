//! The Rust side of `cargo xtask interop`: the vendor SDKs (Python `ecommpay-sdk`, Node
//! `ecommpay`) check what we sign, and we check what they sign.
//!
//! - `interop generate DIR`: runs the simulator through every magic value (descriptions in
//!   Russian and Kazakh) and writes every signed body it produced (callbacks, status
//!   responses) and every request our client signed to `DIR/verify.jsonl`; writes payloads
//!   for the SDKs to sign to `DIR/sign.jsonl`.
//! - `interop check DIR RP`: reads the SDKs' verdicts (`DIR/python.jsonl`, `DIR/node.jsonl`)
//!   and signatures; every body must verify in both SDKs except the deliberately bad one; where
//!   the SDKs agree on a signature, `RP sign` (the `rp` binary) must print it byte for byte and
//!   `rp_sign` must accept the callback they signed. Disagreements are listed (see
//!   `spec/signature.md` §8).

// A tool: any failure should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use rp_model::{Currency, CustomerId, Money, Msisdn, PaymentId, Payout, ProjectId};
use rp_sign::{SecretKey, Signer};
use rp_sim::{DEFAULT_PROJECT_ID, DEFAULT_SECRET_KEY, Simulator, TimeScale};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every magic suffix (crates/rp-sim/src/magic_table.txt) and an ordinary one.
const MAGIC: &[&str] = &[
    "4567", "0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0010", "0011", "0012",
    "0013", "0014", "0015", "0016", "0017", "0020", "0021", "0022", "0023", "0024", "0025",
];

/// Descriptions: Russian, Kazakh (with the letters Russian lacks), and plain.
const DESCRIPTIONS: &[&str] = &[
    "Выплата кэшбэка за май",
    "Қайтарым: мамыр айы үшін кэшбэк (ә, ғ, қ, ң, ө, ұ, ү, һ, і)",
    "Cashback for May",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["generate", dir] => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(generate(Path::new(dir)));
            ExitCode::SUCCESS
        }
        ["check", dir, rp] => check(Path::new(dir), Path::new(rp)),
        _ => {
            eprintln!("usage: interop generate DIR | interop check DIR PATH-TO-rp");
            ExitCode::from(2)
        }
    }
}

/// Receives callbacks on a loopback port and keeps their raw bodies.
async fn callback_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callbacks", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&chunk[..n]);
                    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if data.len() >= end + 4 + length {
                        let _ = tx.send(data[end + 4..end + 4 + length].to_vec());
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                            .await;
                        return;
                    }
                }
            });
        }
    });
    (url, rx)
}

fn payout(id: &str, suffix: &str, description: &str, currency: Currency) -> Payout {
    Payout::builder()
        .payment_id(PaymentId::new(id).unwrap())
        .phone(Msisdn::parse(&format!("+7 701 123 {suffix}")).unwrap())
        .amount(Money::from_minor(150_050, currency))
        .customer_id(CustomerId::new("customer-42").unwrap())
        .customer_name("Айгүл", "Нұрланқызы")
        .description(description)
        .build()
        .unwrap()
}

async fn generate(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let (callback_url, mut callbacks) = callback_receiver().await;
    let sim = Simulator::builder()
        .callback_url(callback_url)
        .processing_delay(Duration::from_millis(20))
        .slow_delay(Duration::from_millis(20))
        .time_scale(TimeScale::per_million(50))
        .start()
        .await
        .unwrap();
    let project = ProjectId::new(DEFAULT_PROJECT_ID).unwrap();
    let signer = Signer::new(&SecretKey::from(DEFAULT_SECRET_KEY));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut verify = Vec::new();
    let mut ids = Vec::new();
    for (index, suffix) in MAGIC.iter().enumerate() {
        let description = DESCRIPTIONS[index % DESCRIPTIONS.len()];
        let id = format!("interop-{suffix}");
        let body = signer
            .sign_request_body(&payout(&id, suffix, description, Currency::KZT).to_request(project))
            .unwrap();
        verify.push(entry(&format!("request {id}"), "request", &body, true));
        // Faults on the first attempt (500, dropped connection, 429, slow): send it again.
        for _ in 0..2 {
            let _ = http
                .post(format!("{}/v2/payment/mobile/payout", sim.base_url()))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
        }
        ids.push(id);
    }
    // Callbacks (0008's second one and the late ones come within the scaled delays).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    if let Some(payment) = sim
        .payments()
        .iter()
        .find(|p| p.payment_id == "interop-0010")
    {
        let _ = sim.force(&payment.payment_id, rp_sim::Outcome::Success);
    }
    for id in &ids {
        let request = json!({"general": {"project_id": DEFAULT_PROJECT_ID, "payment_id": id}});
        let body = signer.sign_request_body(&request).unwrap();
        verify.push(entry(
            &format!("status request {id}"),
            "request",
            &body,
            true,
        ));
        let response = http
            .post(format!("{}/v2/payment/status", sim.base_url()))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let bytes = response.bytes().await.unwrap();
        let parsed: Value = serde_json::from_slice(&bytes).unwrap();
        if parsed.pointer("/general/signature").is_some() || parsed.get("signature").is_some() {
            verify.push(entry(&format!("status {id}"), "status", &bytes, true));
        }
    }
    sim.shutdown().await;
    let mut count = 0;
    while let Ok(body) = callbacks.try_recv() {
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        let id = parsed["payment"]["id"].as_str().unwrap_or("?").to_owned();
        let status = parsed["payment"]["status"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        // Magic 0013 signs its callback badly on purpose.
        let valid = !id.ends_with("0013");
        count += 1;
        verify.push(entry(
            &format!("callback {count} {id} {status}"),
            "callback",
            &body,
            valid,
        ));
    }
    assert!(count >= MAGIC.len(), "only {count} callbacks arrived");
    write_jsonl(&dir.join("verify.jsonl"), &verify);
    write_jsonl(&dir.join("sign.jsonl"), &sign_corpus());
    eprintln!(
        "interop: {} signed bodies ({count} callbacks) and {} payloads to sign written to {}",
        verify.len(),
        sign_corpus().len(),
        dir.display()
    );
}

fn entry(id: &str, kind: &str, body: &[u8], valid: bool) -> Value {
    json!({
        "id": id,
        "kind": kind,
        "secret": DEFAULT_SECRET_KEY,
        "body": std::str::from_utf8(body).unwrap(),
        "expect_valid": valid,
    })
}

/// Payloads for the SDKs to sign: realistic requests and callbacks, and the features on which
/// SDKs are known to disagree (`spec/signature.md` §3).
fn sign_corpus() -> Vec<Value> {
    let project = ProjectId::new(DEFAULT_PROJECT_ID).unwrap();
    let mut out = Vec::new();
    for (index, description) in DESCRIPTIONS.iter().enumerate() {
        let request = payout(
            &format!("corpus-{index}"),
            "4567",
            description,
            Currency::KZT,
        )
        .to_request(project);
        add(
            &mut out,
            &format!("payout request {index}"),
            "request",
            serde_json::to_value(&request).unwrap(),
        );
    }
    let usd = payout("corpus-usd", "4567", "USD → KZT", Currency::USD).to_request(project);
    add(
        &mut out,
        "payout request in USD",
        "request",
        serde_json::to_value(&usd).unwrap(),
    );
    add(
        &mut out,
        "operator list",
        "request",
        json!({"general": {"project_id": 1234}}),
    );
    add(
        &mut out,
        "status request",
        "request",
        json!({"general": {"project_id": 1234, "payment_id": "payment_47"}}),
    );
    let callback = json!({
        "project_id": 1234,
        "payment": {"id": "payment_47", "type": "payout", "status": "success",
                    "date": "2024-12-07T19:08:45+0000", "method": "mobile",
                    "sum": {"amount": 10000, "currency": "USD"},
                    "description": "Қайтарым — кэшбэк"},
        "account": {"number": "77011234567", "type": "kcell"},
        "customer": {"id": "customer_123"},
        "operation": {"id": 1000000000000001_u64, "type": "payout", "status": "success",
                      "date": "2024-12-07T19:08:45+0000", "created_date": "2024-12-07T19:08:40+0000",
                      "request_id": "abc-1", "sum_initial": {"amount": 10000, "currency": "USD"},
                      "sum_converted": {"amount": 4805000, "currency": "KZT"},
                      "code": "0", "message": "Success",
                      "provider": {"id": 1, "payment_id": "SIM-1", "auth_code": ""}},
        "errors": [],
    });
    add(&mut out, "callback with conversion", "callback", callback);
    add(
        &mut out,
        "decline callback",
        "callback",
        json!({"project_id": 1234, "payment": {"id": "p-2", "status": "decline"},
               "operation": {"code": "20000", "message": "General decline"},
               "errors": [{"code": 20000, "message": "General decline"}]}),
    );
    add(
        &mut out,
        "booleans",
        "callback",
        json!({"project_id": 1, "a": true, "b": false}),
    );
    add(
        &mut out,
        "empty containers",
        "callback",
        json!({"project_id": 1, "a": {}, "b": [], "c": ""}),
    );
    add(
        &mut out,
        "unicode values",
        "callback",
        json!({"project_id": 1, "имя": "Әлия", "emoji": "😀"}),
    );
    // Contested (spec/signature.md §3): the SDKs are expected to disagree on these.
    add(
        &mut out,
        "integer -0",
        "callback",
        json!({"project_id": 1, "a": 0}),
    );
    add(
        &mut out,
        "integer -0 (text)",
        "callback",
        r#"{"project_id":1,"a":-0}"#,
    );
    add(
        &mut out,
        "array of 11",
        "callback",
        json!({"project_id": 1, "items": (0..11).collect::<Vec<_>>()}),
    );
    add(
        &mut out,
        "digits in keys",
        "callback",
        json!({"project_id": 1, "address_line2": "b", "address_line10": "c"}),
    );
    add(
        &mut out,
        "key prefix of sibling",
        "callback",
        json!({"payment": {"x": 1}, "payment2": 2}),
    );
    add(
        &mut out,
        "colon in key",
        "callback",
        json!({"project_id": 1, "a:b": "c"}),
    );
    add(
        &mut out,
        "float 1.5 and 1.0",
        "callback",
        r#"{"project_id":1,"a":1.5,"b":1.0}"#,
    );
    add(
        &mut out,
        "integer above 2^53",
        "callback",
        json!({"project_id": 1, "a": 9_007_199_254_740_993_u64}),
    );
    add(
        &mut out,
        "null value",
        "request",
        json!({"general": {"project_id": 1}, "a": null}),
    );
    add(
        &mut out,
        "nested signature",
        "callback",
        json!({"project_id": 1, "payment": {"signature": "x"}}),
    );
    out
}

/// Adds a payload (a `Value`, or JSON text as written) signed with the key `secret`.
// By value: the callers build the payload for this call only.
#[allow(clippy::needless_pass_by_value)]
fn add(out: &mut Vec<Value>, id: &str, kind: &str, payload: impl ToString) {
    out.push(json!({"id": id, "kind": kind, "secret": "secret", "payload": payload.to_string()}));
}

fn write_jsonl(path: &Path, items: &[Value]) {
    let mut text = String::new();
    for item in items {
        text.push_str(&item.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `id` → result object, from one SDK's answers.
fn by_id(path: &Path) -> BTreeMap<String, Value> {
    read_jsonl(path)
        .into_iter()
        .map(|v| (v["id"].as_str().unwrap().to_owned(), v))
        .collect()
}

/// Payloads on which both published SDKs (`PyPI` 1.0.6, npm 0.1.7) agree with each other but
/// not with the PHP SDK, which this project follows (`spec/signature.md` §5, §8).
const PHP_ONLY: &[(&str, &str)] = &[
    (
        "digits in keys",
        "PHP's natural order puts address_line2 before address_line10",
    ),
    (
        "colon in key",
        "PHP and the current SDK sources write a `:` in a key as `::`; these releases do not",
    ),
];

/// The payload text with a root `signature` member appended, the rest kept as written.
fn with_signature(payload: &str, signature: &str) -> String {
    let open = payload.trim_end().strip_suffix('}').unwrap();
    let comma = if open.trim_end().ends_with('{') {
        ""
    } else {
        ","
    };
    format!("{open}{comma}\"signature\":\"{signature}\"}}")
}

fn rp_sign(rp: &Path, secret: &str, payload: &str) -> Result<String, String> {
    let mut child = Command::new(rp)
        .arg("sign")
        .env("RP_SECRET_KEY", secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", rp.display()));
    {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(payload.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

fn check(dir: &Path, rp: &Path) -> ExitCode {
    let sdks: [(&str, PathBuf); 2] = [
        ("python", dir.join("python.jsonl")),
        ("node", dir.join("node.jsonl")),
    ];
    let answers: Vec<(&str, BTreeMap<String, Value>)> = sdks
        .iter()
        .map(|(name, path)| (*name, by_id(path)))
        .collect();
    let mut failures = Vec::new();

    // 1. Every signed body we produced verifies in both SDKs (except the bad one).
    let verify = read_jsonl(&dir.join("verify.jsonl"));
    for item in &verify {
        let id = item["id"].as_str().unwrap();
        let expected = item["expect_valid"].as_bool().unwrap();
        for (sdk, answers) in &answers {
            let got = answers
                .get(&format!("verify {id}"))
                .and_then(|a| a["valid"].as_bool());
            if got != Some(expected) {
                failures.push(format!(
                    "{sdk} says valid={got:?} for `{id}` (expected {expected}): {}",
                    answers
                        .get(&format!("verify {id}"))
                        .map(|a| a["error"].to_string())
                        .unwrap_or_default()
                ));
            }
        }
        // And our own verifier agrees (requests carry general.signature).
        let ours = Signer::new(&SecretKey::from(item["secret"].as_str().unwrap()))
            .verify_callback(item["body"].as_str().unwrap().as_bytes())
            .is_ok();
        if ours != expected {
            failures.push(format!(
                "rp-sign says valid={ours} for `{id}` (expected {expected})"
            ));
        }
    }

    // 2. Where the SDKs agree on a signature, `rp sign` prints it and we accept the callback
    //    they signed; where they disagree, say so.
    let corpus = read_jsonl(&dir.join("sign.jsonl"));
    let mut agreed = 0;
    let mut disagreements = Vec::new();
    for item in &corpus {
        let id = item["id"].as_str().unwrap();
        let secret = item["secret"].as_str().unwrap();
        let payload = item["payload"].as_str().unwrap();
        let sigs: Vec<(&str, Option<String>)> = answers
            .iter()
            .map(|(sdk, a)| {
                (
                    *sdk,
                    a.get(&format!("sign {id}"))
                        .and_then(|v| v["signature"].as_str().map(str::to_owned)),
                )
            })
            .collect();
        let ours = rp_sign(rp, secret, payload);
        let (Some(py), Some(js)) = (&sigs[0].1, &sigs[1].1) else {
            failures.push(format!("an SDK did not sign `{id}`: {sigs:?}"));
            continue;
        };
        if py == js && PHP_ONLY.iter().any(|(name, _)| *name == id) {
            // Both published SDKs share a behaviour the PHP SDK (canonical) does not.
            let reason = PHP_ONLY
                .iter()
                .find(|(name, _)| *name == id)
                .map_or("", |(_, r)| *r);
            if ours.as_deref() == Ok(py.as_str()) {
                failures.push(format!("`{id}` is listed as PHP-only, but `rp sign` now matches both SDKs: update PHP_ONLY and spec/signature.md §8"));
            }
            let body = with_signature(payload, py);
            let accepted = Signer::new(&SecretKey::from(secret)).verify_callback(body.as_bytes());
            disagreements.push(format!(
                "  {id}: python and node agree, rp sign follows PHP ({reason}); their callback is {}",
                match accepted {
                    Ok(v) => format!("accepted by rp-sign under {}", v.variant()),
                    Err(_) => "refused by rp-sign".to_owned(),
                }
            ));
        } else if py == js {
            agreed += 1;
            if ours.as_deref() != Ok(py.as_str()) {
                failures.push(format!(
                    "`{id}`: both SDKs sign {py}, `rp sign` gives {ours:?}"
                ));
            }
            if item["kind"] == "callback" {
                let body = with_signature(payload, py);
                let signer = Signer::new(&SecretKey::from(secret));
                if let Err(e) = signer.verify_callback(body.as_bytes())
                    && !matches!(e, rp_sign::Error::ExtraSignature { .. })
                {
                    failures.push(format!(
                        "`{id}`: the SDKs' callback is refused by rp-sign: {e}"
                    ));
                }
            }
        } else {
            let side = match &ours {
                Ok(s) if s == py => "python",
                Ok(s) if s == js => "node",
                Ok(_) => "neither (PHP canonical)",
                Err(_) => "refused",
            };
            disagreements.push(format!(
                "  {id}: python and node differ; rp sign matches {side}"
            ));
        }
    }
    eprintln!(
        "interop: {} signed bodies checked by python and node; {} of {} payloads signed alike by both SDKs and reproduced by `rp sign`",
        verify.len(),
        agreed,
        corpus.len()
    );
    if !disagreements.is_empty() {
        eprintln!(
            "interop: the SDKs disagree on (see spec/signature.md §8):\n{}",
            disagreements.join("\n")
        );
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("interop FAILED:\n  {}", failures.join("\n  "));
        ExitCode::FAILURE
    }
}
