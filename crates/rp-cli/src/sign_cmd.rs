//! `rp sign` and `rp verify`: the Gate signature from the command line.
//!
//! The secret key comes from the `RP_SECRET_KEY` environment variable or from a file given
//! with `--secret-file`; never from a flag value, which would end up in shell history and in
//! the process list. Every failure prints one line on stderr and exits with 6 (the signature
//! is missing, malformed or wrong: a signature problem, as everywhere in `rp`) or 2 (usage or
//! input error).

use std::path::PathBuf;
use std::process::ExitCode;

use rp_sign::{Error, SignatureLocation, Signer, SortVariant};

use crate::common::{EXIT_SIGNATURE_OR_PROJECT, EXIT_USAGE, Failure, KeyArgs, finish, read_input};

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
  6  not trusted: the signature is missing, malformed, or not matching this key and body,
     or a value holds `;` (the string to sign would be ambiguous: refused even if it matches)
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

/// Runs `rp sign`.
pub(crate) fn sign(args: &SignArgs) -> ExitCode {
    finish("rp sign", false, run_sign(args))
}

/// Runs `rp verify`.
pub(crate) fn verify(args: &VerifyArgs) -> ExitCode {
    finish("rp verify", false, run_verify(args))
}

fn run_sign(args: &SignArgs) -> Result<(), Failure> {
    let signer = Signer::new(&args.key.load()?);
    let (name, bytes) = read_input(&args.input)?;
    // Signed from the text itself, numbers as written and read as PHP reads them (the
    // integer `-0` signs as `0`), exactly as `rp verify` reads a body: the two always agree.
    let input_error = |e: Error| match e {
        Error::InvalidJson(e) => Failure::usage(format!("{name} is not valid JSON: {e}")),
        e => Failure::usage(format!("{name}: {e}")),
    };
    if args.explain {
        // The explanation first: it also says why a payload cannot be signed.
        let explanation =
            rp_sign::explain_json(&bytes, Some(SignatureLocation::General)).map_err(input_error)?;
        println!("{explanation}");
    }
    if args.body {
        let signed = signer.sign_request_json(&bytes).map_err(input_error)?;
        println!("{}", String::from_utf8_lossy(signed.body()));
        return Ok(());
    }
    // A payload without a `general` object (not a Gate request, e.g. a callback for a test)
    // is signed as it is, with nothing left out.
    let signature = match signer.sign_request_json(&bytes) {
        Ok(signed) => signed.signature(),
        Err(Error::MissingGeneral { .. }) => signer.sign_json(&bytes).map_err(input_error)?,
        Err(e) => return Err(input_error(e)),
    };
    if args.explain {
        println!("signature: {signature}");
    } else {
        println!("{signature}");
    }
    Ok(())
}

fn run_verify(args: &VerifyArgs) -> Result<(), Failure> {
    let signer = Signer::new(&args.key.load()?);
    let (name, bytes) = read_input(&args.input)?;
    let verified = signer.verify_callback(&bytes).map_err(|e| {
        let code = match e {
            Error::MissingSignature
            | Error::MalformedSignature { .. }
            | Error::AmbiguousValue { .. }
            | Error::ExtraSignature { .. }
            | Error::InvalidSignature { .. } => EXIT_SIGNATURE_OR_PROJECT,
            _ => EXIT_USAGE,
        };
        Failure::new(code, format!("{name}: {e}"))
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
