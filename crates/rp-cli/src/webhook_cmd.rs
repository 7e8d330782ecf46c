//! `rp serve add-webhook`, `remove-webhook`, `enable-webhook`, `disable-webhook`,
//! `webhooks`, `replay-webhooks`: the merchant's endpoints that `rp serve` pushes every
//! payout state change to (Standard Webhooks), kept in the ledger per project.

use rp_model::PaymentId;

use crate::common::{Failure, ProjectArg};
use crate::ledger_cmd::{LedgerArgs, utc};

/// The webhook subcommands of `rp serve`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum WebhookAction {
    /// Register an endpoint: every later change of the project's payouts is sent to it,
    /// signed with its own secret (printed once: `whsec_…`, to verify `webhook-signature`).
    AddWebhook {
        /// Where to send: `https://…` (or `http://` to this machine).
        url: String,
        /// Accept a plain `http://` URL to another machine (a private network you trust).
        #[arg(long)]
        allow_plain_http: bool,
        #[command(flatten)]
        project: ProjectArg,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Remove an endpoint, with its pending deliveries and their log.
    RemoveWebhook {
        /// The endpoint's number (`rp serve webhooks`).
        id: i64,
        #[command(flatten)]
        project: ProjectArg,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Enable an endpoint again (after persistent failure disabled it): what waited is sent,
    /// its retry schedule started anew.
    EnableWebhook {
        /// The endpoint's number.
        id: i64,
        #[command(flatten)]
        project: ProjectArg,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Stop sending to an endpoint for now; its deliveries keep being written and wait.
    DisableWebhook {
        /// The endpoint's number.
        id: i64,
        #[command(flatten)]
        project: ProjectArg,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// List the endpoints: state, pending and failed deliveries (never the secrets).
    Webhooks {
        #[command(flatten)]
        project: ProjectArg,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Send a payout's events again (same `webhook-id`s): every state change, or one.
    ReplayWebhooks {
        /// The payout's payment ID.
        payment_id: String,
        /// Only the event that produced this version of the payout.
        #[arg(long)]
        version: Option<u64>,
        /// Only to this endpoint.
        #[arg(long)]
        endpoint: Option<i64>,
        #[command(flatten)]
        project: ProjectArg,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
}

/// Runs a webhook subcommand.
pub(crate) async fn run(action: &WebhookAction) -> Result<(), Failure> {
    match action {
        WebhookAction::AddWebhook {
            url,
            allow_plain_http,
            project,
            ledger,
        } => {
            rp_console::webhooks::check_url(url, *allow_plain_http).map_err(Failure::usage)?;
            let secret = rp_console::webhooks::new_secret().map_err(Failure::unreachable)?;
            let project = project.id()?;
            let ledger = ledger.open().await?;
            let endpoint = ledger
                .webhooks(project)
                .add_endpoint(url, &secret)
                .await
                .map_err(Failure::from)?;
            println!(
                "webhook endpoint {} added for project {project} in {}: {}",
                endpoint.id,
                ledger.url(),
                endpoint.url
            );
            println!("signing secret (shown once): {secret}");
            Ok(())
        }
        WebhookAction::RemoveWebhook {
            id,
            project,
            ledger,
        } => {
            let project = project.id()?;
            let ledger = ledger.open().await?;
            if ledger
                .webhooks(project)
                .remove_endpoint(*id)
                .await
                .map_err(Failure::from)?
            {
                println!("webhook endpoint {id} removed");
                Ok(())
            } else {
                Err(no_endpoint(*id, project))
            }
        }
        WebhookAction::EnableWebhook {
            id,
            project,
            ledger,
        }
        | WebhookAction::DisableWebhook {
            id,
            project,
            ledger,
        } => {
            let enable = matches!(action, WebhookAction::EnableWebhook { .. });
            let project = project.id()?;
            let ledger = ledger.open().await?;
            let reason = (!enable).then_some("disabled by hand (rp serve disable-webhook)");
            if ledger
                .webhooks(project)
                .set_disabled(*id, reason)
                .await
                .map_err(Failure::from)?
            {
                println!(
                    "webhook endpoint {id} {}",
                    if enable { "enabled" } else { "disabled" }
                );
                Ok(())
            } else {
                Err(no_endpoint(*id, project))
            }
        }
        WebhookAction::Webhooks { project, ledger } => {
            let project = project.id()?;
            let ledger = ledger.open().await?;
            let endpoints = ledger
                .webhooks(project)
                .endpoints()
                .await
                .map_err(Failure::from)?;
            if endpoints.is_empty() {
                println!(
                    "no webhook endpoints for project {project} in {}: rp serve add-webhook URL",
                    ledger.url()
                );
            }
            for endpoint in endpoints {
                let state = match (&endpoint.disabled_at, &endpoint.disabled_reason) {
                    (None, _) => "enabled".to_owned(),
                    (Some(at), reason) => format!(
                        "DISABLED {} ({})",
                        utc(*at),
                        reason.as_deref().unwrap_or("no reason")
                    ),
                };
                println!(
                    "{:>4} {} pending {} failed {} added {} {state}",
                    endpoint.id,
                    endpoint.url,
                    endpoint.pending,
                    endpoint.failed,
                    utc(endpoint.created_at)
                );
            }
            Ok(())
        }
        WebhookAction::ReplayWebhooks {
            payment_id,
            version,
            endpoint,
            project,
            ledger,
        } => {
            let payment_id = PaymentId::new(payment_id.clone())
                .map_err(|e| Failure::usage(format!("payment ID {payment_id:?}: {e}")))?;
            let project = project.id()?;
            let ledger = ledger.open().await?;
            let hooks = ledger.webhooks(project);
            let queued = hooks
                .replay(&payment_id, *version, *endpoint)
                .await
                .map_err(Failure::from)?;
            if queued == 0 {
                return Err(Failure::usage(format!(
                    "nothing to replay for {payment_id}: no such payout, event or endpoint in project {project}"
                )));
            }
            println!("{queued} deliveries of {payment_id} queued; a running rp serve sends them");
            Ok(())
        }
    }
}

fn no_endpoint(id: i64, project: rp_model::ProjectId) -> Failure {
    Failure::usage(format!(
        "no webhook endpoint {id} for project {project} (rp serve webhooks lists them)"
    ))
}
