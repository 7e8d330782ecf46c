//! `rp serve add-operator`, `remove-operator`, `operators`: who may sign in to the console;
//! `add-api-key`, `revoke-api-key`, `api-keys`: who may call the API; `adopt-access`,
//! `remove-unbound-access`: those made before rp kept them per project. Each is the project's
//! (`--project-id` / `RP_PROJECT_ID`): another project on the same ledger does not know them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use rp_console::hash_password;
use rp_ledger::{
    AccessStore, Adoption, Ledger, OperatorAccount, Role, Unadopted, check_operator_name,
};
use rp_model::ProjectId;

use crate::common::{Failure, ProjectArg};
use crate::ledger_cmd::LedgerArgs;

/// The operator and API key subcommands of `rp serve`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum AccessAction {
    /// Add an operator of the console, or give one a new password or role (their sessions
    /// end). The password is read from --password-file, or `RP_OPERATOR_PASSWORD`, or made up
    /// and printed once.
    AddOperator(AddOperatorArgs),
    /// Remove an operator (their sessions end).
    RemoveOperator {
        /// The operator's name.
        name: String,
        #[command(flatten)]
        project: ProjectArg,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// List the operators.
    Operators {
        #[command(flatten)]
        project: ProjectArg,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Make a key for the JSON API (`Authorization: Bearer KEY`): printed once, kept in the
    /// ledger as its SHA-256. `pay` may pay; `read` only reads.
    AddApiKey {
        /// The key's name (letters A-Z, digits, `.`, `_`, `-`, `@`); never reused.
        name: String,
        /// `pay` or `read`.
        #[arg(long, value_parser = ["pay", "read"])]
        role: String,
        #[command(flatten)]
        project: ProjectArg,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Revoke an API key: it is refused from now on (by every instance).
    RevokeApiKey {
        /// The key's name.
        name: String,
        #[command(flatten)]
        project: ProjectArg,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// List the API keys (names, roles, revocations; never the keys).
    ApiKeys {
        #[command(flatten)]
        project: ProjectArg,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Bind to this project the operators and API keys made before rp kept them per project
    /// (refused until then). Every command binds them by itself when the ledger holds this
    /// project's payouts and no other project's data; this is for the other cases.
    AdoptAccess {
        #[command(flatten)]
        project: ProjectArg,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Remove the operators and API keys made before rp kept them per project that no project
    /// took (each project adds its own).
    RemoveUnboundAccess {
        #[command(flatten)]
        ledger: LedgerArgs,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct AddOperatorArgs {
    /// The operator's name: letters A-Z, digits, `.`, `_`, `-`, `@`.
    name: String,
    /// `view` (see payouts) or `pay` (also pay, resend, ask statuses).
    #[arg(long, value_parser = ["view", "pay"])]
    role: String,
    /// Read the password from this file (`-`: standard input); one trailing newline ignored.
    #[arg(long, value_name = "PATH")]
    password_file: Option<PathBuf>,
    /// Require a second factor: a new TOTP secret is made and shown once (for an
    /// authenticator app). An existing operator keeps theirs unless --totp or --no-totp.
    #[arg(long, conflicts_with = "no_totp")]
    totp: bool,
    /// Remove the operator's second factor.
    #[arg(long)]
    no_totp: bool,
    #[command(flatten)]
    project: ProjectArg,
    #[command(flatten)]
    ledger: LedgerArgs,
}

/// Runs an operator or API key subcommand.
pub(crate) async fn run(action: &AccessAction) -> Result<(), Failure> {
    match action {
        AccessAction::AddOperator(add) => add_operator(add).await,
        AccessAction::RemoveOperator {
            name,
            project,
            ledger,
        } => remove_operator(name, project, ledger).await,
        AccessAction::Operators { project, ledger } => list_operators(project, ledger).await,
        AccessAction::AddApiKey {
            name,
            role,
            project,
            ledger,
        } => add_api_key(name, role, project, ledger).await,
        AccessAction::RevokeApiKey {
            name,
            project,
            ledger,
        } => revoke_api_key(name, project, ledger).await,
        AccessAction::ApiKeys { project, ledger } => list_api_keys(project, ledger).await,
        AccessAction::AdoptAccess { project, ledger } => adopt_access(project, ledger).await,
        AccessAction::RemoveUnboundAccess { ledger } => remove_unbound(ledger).await,
    }
}

/// The new operator's password, and whether it was made up here (then it is printed).
fn password(args: &AddOperatorArgs) -> Result<(String, bool), Failure> {
    if let Some(path) = &args.password_file {
        let (name, bytes) = crate::common::read_input(path)?;
        let mut text = String::from_utf8(bytes)
            .map_err(|_| Failure::usage(format!("the password in {name} is not UTF-8")))?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        return Ok((text, false));
    }
    if let Ok(text) = std::env::var("RP_OPERATOR_PASSWORD") {
        return Ok((text, false));
    }
    made_up_password()
}

/// A new random password (20 characters of an alphabet without look-alikes), marked made up.
pub(crate) fn made_up_password() -> Result<(String, bool), Failure> {
    let mut bytes = [0u8; 64];
    getrandom::fill(&mut bytes)
        .map_err(|e| Failure::unreachable(format!("no random bytes from the system: {e}")))?;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    // 256 is not a multiple of 56: bytes of 224 and above are skipped, so every character is
    // equally likely (64 bytes leave 20 characters but for a chance below 10^-20).
    let mut text = String::new();
    let mut pool = bytes.iter().copied();
    while text.len() < 20 {
        let Some(byte) = pool.next() else {
            return made_up_password();
        };
        if usize::from(byte) < 224 {
            text.push(char::from(ALPHABET[usize::from(byte) % 56]));
        }
    }
    Ok((text, true))
}

async fn add_operator(args: &AddOperatorArgs) -> Result<(), Failure> {
    check_operator_name(&args.name).map_err(|e| Failure::usage(format!("{:?}: {e}", args.name)))?;
    let role = Role::parse(&args.role)
        .ok_or_else(|| Failure::usage(format!("unknown role {:?}: view or pay", args.role)))?;
    let project = args.project.id()?;
    let (password, made_up) = password(args)?;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password).map(|h| (h, password)))
        .await
        .map_err(|e| Failure::unreachable(e.to_string()))?
        .map_err(|e| Failure::usage(e.to_string()))?;
    let ledger = args.ledger.open().await?;
    let access = access(&ledger, project).await?;
    let existing = access.operator(&args.name).await.map_err(Failure::from)?;
    let existed = existing.is_some();
    let mut account = OperatorAccount::new(&args.name, hash.0, role);
    account.totp_secret = match (args.totp, args.no_totp) {
        (true, _) => Some(rp_console::new_totp_secret().map_err(Failure::unreachable)?),
        (false, true) => None,
        (false, false) => existing.and_then(|e| e.totp_secret),
    };
    let new_secret = args.totp.then(|| account.totp_secret.clone()).flatten();
    access.put_operator(account).await.map_err(Failure::from)?;
    let verb = if existed {
        "updated (their sessions ended)"
    } else {
        "added"
    };
    println!(
        "operator {} ({role}) {verb} for project {project} in {}",
        args.name,
        ledger.url()
    );
    if made_up {
        println!("password (shown once): {}", hash.1);
    }
    if let Some(secret) = new_secret {
        println!("two-factor secret (shown once): {secret}");
        println!(
            "authenticator URI: {}",
            rp_console::totp_uri(&secret, &args.name, "rp serve")
        );
    }
    Ok(())
}

async fn remove_operator(
    name: &str,
    project: &ProjectArg,
    ledger: &LedgerArgs,
) -> Result<(), Failure> {
    let (project, ledger, access) = open(project, ledger).await?;
    if access.remove_operator(name).await.map_err(Failure::from)? {
        println!("operator {name} removed; their sessions ended");
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "no operator {name:?} of project {project} in {}",
            ledger.url()
        )))
    }
}

async fn list_operators(project: &ProjectArg, ledger: &LedgerArgs) -> Result<(), Failure> {
    let (project, ledger, access) = open(project, ledger).await?;
    let operators = access.operators().await.map_err(Failure::from)?;
    if operators.is_empty() {
        println!(
            "no operators of project {project} in {}: rp serve add-operator NAME --role pay",
            ledger.url()
        );
    }
    for operator in operators {
        println!(
            "{:<24} {:<5} {}",
            operator.name,
            operator.role.as_str(),
            crate::ledger_cmd::utc(operator.updated_at)
        );
    }
    Ok(())
}

async fn add_api_key(
    name: &str,
    role: &str,
    project: &ProjectArg,
    ledger: &LedgerArgs,
) -> Result<(), Failure> {
    check_operator_name(name).map_err(|e| Failure::usage(format!("{name:?}: {e}")))?;
    let role = if role == "pay" { Role::Pay } else { Role::View };
    let key = rp_console::new_api_key().map_err(Failure::unreachable)?;
    let (project, ledger, access) = open(project, ledger).await?;
    let added = access
        .add_api_key(rp_ledger::ApiKey::new(
            name,
            rp_console::api_key_sha256(&key),
            role,
        ))
        .await
        .map_err(Failure::from)?;
    if !added {
        return Err(Failure::usage(format!(
            "an API key named {name:?} exists (or existed) for project {project} in {}: names \
             are never reused, choose another",
            ledger.url()
        )));
    }
    println!(
        "API key {name} ({}) added for project {project} in {}",
        api_role(role),
        ledger.url()
    );
    println!("key (shown once): {key}");
    Ok(())
}

async fn revoke_api_key(
    name: &str,
    project: &ProjectArg,
    ledger: &LedgerArgs,
) -> Result<(), Failure> {
    let (project, ledger, access) = open(project, ledger).await?;
    if access
        .revoke_api_key(name, SystemTime::now())
        .await
        .map_err(Failure::from)?
    {
        println!("API key {name} revoked");
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "no API key {name:?} in use for project {project} in {}",
            ledger.url()
        )))
    }
}

async fn list_api_keys(project: &ProjectArg, ledger: &LedgerArgs) -> Result<(), Failure> {
    let (project, ledger, access) = open(project, ledger).await?;
    let keys = access.api_keys().await.map_err(Failure::from)?;
    if keys.is_empty() {
        println!(
            "no API keys of project {project} in {}: rp serve add-api-key NAME --role pay",
            ledger.url()
        );
    }
    for key in keys {
        let state = key.revoked_at.map_or_else(
            || "in use".to_owned(),
            |at| format!("revoked {}", crate::ledger_cmd::utc(at)),
        );
        println!(
            "{:<24} {:<5} {} {}",
            key.name,
            api_role(key.role),
            crate::ledger_cmd::utc(key.created_at),
            state
        );
    }
    Ok(())
}

/// `rp serve adopt-access`: binds every operator and key made before rp kept them per project
/// to this one, whatever else the ledger holds.
async fn adopt_access(project: &ProjectArg, ledger: &LedgerArgs) -> Result<(), Failure> {
    let project = project.id()?;
    let ledger = ledger.open().await?;
    let adoption = ledger
        .access(project)
        .adopt_unbound(false)
        .await
        .map_err(Failure::from)?;
    if adoption.operators + adoption.api_keys == 0 && !adoption.left_any() {
        println!(
            "no operators or API keys without a project in {}",
            ledger.url()
        );
    } else {
        println!(
            "{} operator(s) and {} API key(s) bound to project {project}",
            adoption.operators, adoption.api_keys
        );
    }
    if adoption.left_any() {
        println!(
            "{} operator(s) and {} API key(s) left without a project: project {project} has \
             ones of the same names. rp serve remove-unbound-access removes them",
            adoption.operators_left, adoption.api_keys_left
        );
    }
    Ok(())
}

/// `rp serve remove-unbound-access`.
async fn remove_unbound(ledger: &LedgerArgs) -> Result<(), Failure> {
    let ledger = ledger.open().await?;
    // Any project's store reaches the unbound rows: they are no project's.
    let any = ProjectId::new(1).map_err(|e| Failure::unreachable(e.to_string()))?;
    let (operators, keys) = ledger
        .access(any)
        .remove_unbound()
        .await
        .map_err(Failure::from)?;
    println!(
        "{operators} operator(s) and {keys} API key(s) without a project removed from {}",
        ledger.url()
    );
    Ok(())
}

/// The project and ledger of a subcommand, and the project's operators and keys ([`access`]).
async fn open(
    project: &ProjectArg,
    ledger: &LedgerArgs,
) -> Result<(ProjectId, Ledger, Arc<dyn AccessStore>), Failure> {
    let project = project.id()?;
    let ledger = ledger.open().await?;
    let access = access(&ledger, project).await?;
    Ok((project, ledger, access))
}

/// `project`'s operators and API keys on `ledger`, having bound to it those made before rp
/// kept them per project when they can only be its own (the ledger holds its payouts and
/// nothing of another project); what stays without a project is told on standard error, with
/// what to do.
pub(crate) async fn access(
    ledger: &Ledger,
    project: ProjectId,
) -> Result<Arc<dyn AccessStore>, Failure> {
    let access = ledger.access(project);
    let adoption = access.adopt_unbound(true).await.map_err(Failure::from)?;
    tell_adoption(&adoption, project);
    Ok(access)
}

/// Says on standard error what [`AccessStore::adopt_unbound`] did, if anything, and what to
/// do about those it left.
fn tell_adoption(adoption: &Adoption, project: ProjectId) {
    if adoption.operators + adoption.api_keys > 0 {
        eprintln!(
            "rp: {} operator(s) and {} API key(s) made before rp kept them per project now \
             belong to project {project} (the ledger holds its payouts, batches or webhook \
             endpoints and no other project's)",
            adoption.operators, adoption.api_keys
        );
    }
    let Some(why) = adoption.why_left else {
        return;
    };
    let why = match why {
        Unadopted::OtherProjects => "the ledger holds other projects' data too, so rp cannot \
             tell whose they are. `rp serve adopt-access --project-id N` binds them to project \
             N, or `rp serve remove-unbound-access` removes them (each project then adds its own)"
            .to_owned(),
        Unadopted::SameNames => format!(
            "project {project} has operators or keys of the same names. `rp serve \
             remove-unbound-access` removes the old ones"
        ),
        // Also the reason given for one a newer rp names.
        _ => format!(
            "the ledger holds no payout of project {project} yet, so rp does not bind them on \
             its own (a mistyped project ID would take them). `rp serve adopt-access \
             --project-id {project}` binds them, or `rp serve remove-unbound-access` removes them"
        ),
    };
    eprintln!(
        "rp: {} operator(s) and {} API key(s) made before rp kept them per project belong to \
         no project and are refused: {why}",
        adoption.operators_left, adoption.api_keys_left
    );
}

/// An API key's role as the command line names it.
fn api_role(role: Role) -> &'static str {
    if role.may_pay() { "pay" } else { "read" }
}
