//! Verifies a callback body with `rp-sign` and reads it with `rp-model`'s wire types: what a
//! merchant with its own web stack needs, and nothing async.
//!
//! ```sh
//! RP_SECRET_KEY=... cargo run -- callback.json   # or no argument: a built-in example
//! ```

use std::process::ExitCode;

use rp_model::wire::Callback;
use rp_sign::{SecretKey, Signer};

/// A callback as the platform sends it, signed with `key`, so the example runs without a
/// file: a payout asked in USD and paid in tenge.
fn example_body(key: &SecretKey) -> Result<Vec<u8>, rp_sign::Error> {
    Signer::new(key).sign_callback_body(&example_callback())
}

/// The example callback, built from `rp-model`'s wire types.
fn example_callback() -> Callback {
    Callback {
        project_id: Some(1234),
        payment: Some(rp_model::wire::Payment {
            id: Some("payout-47".to_owned()),
            status: Some(rp_model::PaymentStatus::Success),
            sum: Some(rp_model::wire::Sum {
                amount: 10_000,
                currency: "USD".to_owned(),
            }),
            ..Default::default()
        }),
        operation: Some(rp_model::wire::Operation {
            sum_initial: Some(rp_model::wire::Sum {
                amount: 10_000,
                currency: "USD".to_owned(),
            }),
            sum_converted: Some(rp_model::wire::Sum {
                amount: 4_805_000,
                currency: "KZT".to_owned(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn main() -> ExitCode {
    let key = SecretKey::from(std::env::var("RP_SECRET_KEY").unwrap_or_else(|_| "secret".into()));
    let body = match std::env::args_os().nth(1) {
        Some(path) => match std::fs::read(&path) {
            Ok(body) => body,
            Err(e) => {
                eprintln!("cannot read {}: {e}", path.to_string_lossy());
                return ExitCode::from(2);
            }
        },
        None => match example_body(&key) {
            Ok(body) => body,
            Err(e) => {
                eprintln!("cannot sign the example: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let signer = Signer::new(&key);
    let verified = match signer.verify_callback(&body) {
        Ok(verified) => verified,
        Err(e) => {
            eprintln!("refused: {e}");
            return ExitCode::FAILURE;
        }
    };
    let callback: Callback = match verified.deserialize() {
        Ok(callback) => callback,
        Err(e) => {
            eprintln!("not a callback: {e}");
            return ExitCode::FAILURE;
        }
    };
    let payment = callback.payment.unwrap_or_default();
    let operation = callback.operation.unwrap_or_default();
    let sum = |s: Option<rp_model::wire::Sum>| {
        s.map_or_else(
            || "-".to_owned(),
            |s| format!("{} {}", s.amount, s.currency),
        )
    };
    println!(
        "verified ({}): payment {} is {}; asked {}, paid {}",
        verified.variant(),
        payment.id.as_deref().unwrap_or("?"),
        payment
            .status
            .map_or_else(|| "?".to_owned(), |s| s.to_string()),
        sum(operation.sum_initial),
        sum(operation.sum_converted),
    );
    ExitCode::SUCCESS
}
