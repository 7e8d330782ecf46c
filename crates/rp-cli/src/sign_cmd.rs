//! `rp sign` and `rp verify`: the Gate signature from the command line.
//!
//! The secret key comes from the `RP_SECRET_KEY` environment variable or from a file given
//! with `--secret-file`; never from a flag value, which would end up in shell history and in
//! the process list. Every failure prints one line on stderr and exits with 1 (the signature
//! is missing, malformed or wrong) or 2 (usage or input error).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rp_sign::{Error, SecretKey, Signer, SortVariant};
use serde_json::Value;

/// The environment variable holding the secret key.
const KEY_VARIABLE: &str = "RP_SECRET_KEY";
/// Exit status: the signature is missing, malformed or does not match.
const EXIT_INVALID_SIGNATURE: u8 = 1;
/// Exit status: bad usage or unreadable input.
const EXIT_USAGE: u8 = 2;

const SIGN_HELP: &str = "\
The payload is signed as a Gate request: a `general.signature` already in it is removed first.
The key is read from the RP_SECRET_KEY environment variable, or from --secret-file PATH
(one trailing newline is ignored); it is never accepted as a flag value.

Examples:
  RP_SECRET_KEY=secret rp sign request.json
  rp sign --secret-file ~/.rp/key --explain request.json
  echo '{\"general\":{\"project_id\":1234}}' | RP_SECRET_KEY=secret rp sign
  RP_SECRET_KEY=secret rp sign --body request.json > signed.json

Exit status: 0 signed, 2 usage or input error.";

const VERIFY_HELP: &str = "\
The signature is the root `signature`, or else `general.signature`. If the canonical (PHP SDK)
order does not match, the byte orders of the Python and Go/Java SDKs are tried too, and the
one that matched is reported.

Examples:
  RP_SECRET_KEY=secret rp verify callback.json
  curl -s ... | rp verify --secret-file ~/.rp/key -

Exit status:
  0  the signature is valid
  1  invalid signature: missing, malformed, or not matching this key and body
  2  usage or input error: no key, unreadable file, not JSON, not a JSON object";

/// Arguments of `rp sign`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = SIGN_HELP, after_help = "Run with --help for examples and exit codes.")]
pub(crate) struct SignArgs {
    /// The JSON payload: a file, or `-` for standard input.
    #[arg(value_name = "FILE|-", default_value = "-")]
    input: PathBuf,
    #[command(flatten)]
    key: KeyArgs,
    /// Also print the string to sign, its lines, and notes on features where SDKs disagree.
    #[arg(long, conflicts_with = "body")]
    explain: bool,
    /// Print the whole request body with `general.signature` set, not just the signature.
    #[arg(long)]
    body: bool,
}

/// Arguments of `rp verify`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = VERIFY_HELP, after_help = "Run with --help for examples and exit codes.")]
pub(crate) struct VerifyArgs {
    /// The callback body: a file, or `-` for standard input.
    #[arg(value_name = "FILE|-", default_value = "-")]
    input: PathBuf,
    #[command(flatten)]
    key: KeyArgs,
}

/// Where the secret key comes from.
#[derive(Debug, clap::Args)]
struct KeyArgs {
    /// Read the secret key from this file instead of `RP_SECRET_KEY`.
    #[arg(long, value_name = "PATH")]
    secret_file: Option<PathBuf>,
}

/// A failure: the line to print and the exit status.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }
}

/// Runs `rp sign`.
pub(crate) fn sign(args: &SignArgs) -> ExitCode {
    finish("rp sign", run_sign(args))
}

/// Runs `rp verify`.
pub(crate) fn verify(args: &VerifyArgs) -> ExitCode {
    finish("rp verify", run_verify(args))
}

fn finish(command: &str, outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{command}: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn run_sign(args: &SignArgs) -> Result<(), Failure> {
    let signer = Signer::new(&load_key(&args.key)?);
    let (name, bytes) = read_input(&args.input)?;
    let mut payload: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Failure::usage(format!("{name} is not valid JSON: {e}")))?;
    if let Some(Value::Object(general)) = payload.get_mut("general") {
        general.shift_remove("signature");
    }
    let input_error = |e: Error| Failure::usage(format!("{name}: {e}"));
    if args.body {
        let body = signer.sign_request_body(&payload).map_err(input_error)?;
        println!("{}", String::from_utf8_lossy(&body));
        return Ok(());
    }
    let signature = signer.sign_value(&payload).map_err(input_error)?;
    if args.explain {
        let explanation = rp_sign::explain(&payload).map_err(input_error)?;
        println!("{explanation}");
        println!("signature: {signature}");
    } else {
        println!("{signature}");
    }
    Ok(())
}

fn run_verify(args: &VerifyArgs) -> Result<(), Failure> {
    let signer = Signer::new(&load_key(&args.key)?);
    let (name, bytes) = read_input(&args.input)?;
    let verified = signer.verify_callback(&bytes).map_err(|e| {
        let code = match e {
            Error::MissingSignature
            | Error::MalformedSignature { .. }
            | Error::InvalidSignature { .. } => EXIT_INVALID_SIGNATURE,
            _ => EXIT_USAGE,
        };
        Failure {
            code,
            message: format!("{name}: {e}"),
        }
    })?;
    println!(
        "valid: the signature in `{}` matches ({}, as {})",
        verified.location(),
        verified.variant(),
        verified.variant().used_by()
    );
    if verified.variant() != SortVariant::PhpNatural {
        println!(
            "note: only a non-canonical sort order matched; this tells which rule the platform uses, please report it"
        );
    }
    Ok(())
}

/// The key from `--secret-file` or `RP_SECRET_KEY`.
fn load_key(args: &KeyArgs) -> Result<SecretKey, Failure> {
    let key = match &args.secret_file {
        Some(path) => {
            let mut text = std::fs::read_to_string(path).map_err(|e| {
                Failure::usage(format!(
                    "cannot read the secret file {}: {e}",
                    path.display()
                ))
            })?;
            if text.ends_with('\n') {
                text.pop();
                if text.ends_with('\r') {
                    text.pop();
                }
            }
            SecretKey::from(text)
        }
        None => match std::env::var(KEY_VARIABLE) {
            Ok(text) => SecretKey::from(text),
            Err(std::env::VarError::NotPresent) => {
                return Err(Failure::usage(format!(
                    "no secret key: set {KEY_VARIABLE} or pass --secret-file PATH"
                )));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(Failure::usage(format!("{KEY_VARIABLE} is not valid UTF-8")));
            }
        },
    };
    if key.is_empty() {
        eprintln!(
            "rp: warning: the secret key is empty (the platform allows it, but it is usually a mistake)"
        );
    }
    Ok(key)
}

/// The bytes of `FILE`, or of standard input for `-`, with a name for messages.
fn read_input(path: &Path) -> Result<(String, Vec<u8>), Failure> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::usage(format!("cannot read standard input: {e}")))?;
        return Ok(("standard input".to_owned(), bytes));
    }
    let name = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| Failure::usage(format!("cannot read {name}: {e}")))?;
    Ok((name, bytes))
}
