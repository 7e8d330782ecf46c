//! Command-line arguments (`rp-sim`, `rp sim`) and the run-until-Ctrl-C entry point.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use rp_model::ProjectId;
use rp_sign::SecretKey;

use crate::config::{DEFAULT_PROJECT_ID, DEFAULT_SECRET_KEY};
use crate::{Error, Project, ProjectLimits, Simulator, SimulatorBuilder, TimeScale};

const LONG_ABOUT: &str = "\
A local Rocketpay Gate simulator for mobile payouts in Kazakhstan, with state, signed callbacks and magic values.

It serves POST /v2/info/mobile/payout/list, /v2/payment/mobile/payout and /v2/payment/status, checks requests like the platform (codes 2003, 2004, 2442, 3262, 3261, 3041, 3023, 3104, 20102, 3061), enforces the project limits given with --limit-* (3358, 3104, 3109, 3108, 3106, 3112, 3111, 3110), moves each payout from `processing` to its final status after the processing delay, and POSTs a signed callback to the callback URL (or the request's general.merchant_callback_url), retried on the platform's schedule (scaled by --time-scale) until answered with 200.

With no options it serves project 1234 with the secret key `sim-secret-key` on 127.0.0.1:8080. Repeat --project-id/--secret-key in pairs for several projects.";

const AFTER_HELP: &str = concat!(
    "Magic values: the last four digits of the phone number (any payable KZ prefix, e.g. 7701123xxxx)\n\n",
    include_str!("magic_table.txt"),
    "\nInspection and control (JSON): GET /_sim/payments, GET /_sim/payments/{id}, POST /_sim/payments/{id}/force {\"status\":\"success\"|\"decline\",\"code\":\"20000\"}, GET /_sim/requests, GET /_sim/callbacks, GET /_sim/limits, POST /_sim/reset, GET /_sim/config"
);

/// Options of the simulator (`rp-sim --help`; embedded in `rp sim`). Every option can also be
/// set from the environment (`RP_SIM_*`).
#[derive(Clone, Debug, Parser)]
#[command(
    name = "rp-sim",
    version,
    about = "A local Rocketpay Gate simulator: state, signed callbacks, magic values.",
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP
)]
#[non_exhaustive]
pub struct SimArgs {
    /// Address to listen on. Keep it on loopback: the simulator has no authentication.
    #[arg(long, env = "RP_SIM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// A project ID to serve (repeatable; pairs with --secret-key in order). Default: 1234.
    #[arg(long = "project-id", env = "RP_SIM_PROJECT_ID", value_delimiter = ',')]
    pub project_ids: Vec<ProjectId>,

    /// The secret key of the project at the same position (repeatable). Default: sim-secret-key.
    #[arg(
        long = "secret-key",
        env = "RP_SIM_SECRET_KEY",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub secret_keys: Vec<SecretKey>,

    /// Where callbacks are sent (plain `http://`), unless a request names its own
    /// `general.merchant_callback_url`. Without any, no callbacks are sent.
    #[arg(long, env = "RP_SIM_CALLBACK_URL")]
    pub callback_url: Option<String>,

    /// The largest payout amount in minor units (tiyn); above it: code 3104. The simulator's
    /// per-operation limit, always on; --limit-max-amount is the project's own, optional one.
    #[arg(long, env = "RP_SIM_AMOUNT_LIMIT", default_value_t = crate::DEFAULT_AMOUNT_LIMIT)]
    pub amount_limit: u64,

    /// The project's minimum per payout, in tenge (`100`, `1 000,50`, `500.00 KZT`); below
    /// it: code 3358. Every project has the same limits, each counted on its own.
    #[arg(long, env = "RP_SIM_LIMIT_MIN_AMOUNT", value_name = "TENGE", value_parser = parse_tenge)]
    pub limit_min_amount: Option<u64>,

    /// The project's maximum per payout, in tenge; above it: code 3104 (besides
    /// --amount-limit).
    #[arg(long, env = "RP_SIM_LIMIT_MAX_AMOUNT", value_name = "TENGE", value_parser = parse_tenge)]
    pub limit_max_amount: Option<u64>,

    /// The most paid out per project in the last 24 hours (× --time-scale), in tenge; a
    /// payout that would go over it: code 3109. Declined payouts do not count.
    #[arg(long, env = "RP_SIM_LIMIT_DAILY_AMOUNT", value_name = "TENGE", value_parser = parse_tenge)]
    pub limit_daily_amount: Option<u64>,

    /// The most paid out per project in the last 7 days (× --time-scale), in tenge; over it:
    /// code 3108.
    #[arg(long, env = "RP_SIM_LIMIT_WEEKLY_AMOUNT", value_name = "TENGE", value_parser = parse_tenge)]
    pub limit_weekly_amount: Option<u64>,

    /// The most paid out per project in the last 31 days (× --time-scale), in tenge; over
    /// it: code 3106.
    #[arg(long, env = "RP_SIM_LIMIT_MONTHLY_AMOUNT", value_name = "TENGE", value_parser = parse_tenge)]
    pub limit_monthly_amount: Option<u64>,

    /// The most payouts per project in the last 24 hours (× --time-scale); one more: code
    /// 3112. Declined payouts do not count.
    #[arg(long, env = "RP_SIM_LIMIT_DAILY_COUNT", value_name = "N")]
    pub limit_daily_count: Option<u64>,

    /// The most payouts per project in the last 7 days (× --time-scale); one more: code 3111.
    #[arg(long, env = "RP_SIM_LIMIT_WEEKLY_COUNT", value_name = "N")]
    pub limit_weekly_count: Option<u64>,

    /// The most payouts per project in the last 31 days (× --time-scale); one more: code
    /// 3110.
    #[arg(long, env = "RP_SIM_LIMIT_MONTHLY_COUNT", value_name = "N")]
    pub limit_monthly_count: Option<u64>,

    /// A conversion rate to KZT, `CODE=RATE` (exact decimal, e.g. `USD=480.50`); repeat it for
    /// more currencies. A payout in a currency without a rate is refused with 3023.
    #[arg(long = "rate", value_name = "CODE=RATE", value_parser = parse_rate)]
    pub rates: Vec<(rp_model::Currency, crate::Rate)>,

    /// Milliseconds from acceptance to the final status.
    #[arg(long, env = "RP_SIM_PROCESSING_DELAY_MS", default_value_t = 1000)]
    pub processing_delay_ms: u64,

    /// Milliseconds the response to a magic 0023 payout is held back.
    #[arg(long, env = "RP_SIM_SLOW_DELAY_MS", default_value_t = 3000)]
    pub slow_delay_ms: u64,

    /// Factor for the callback retry schedule and callback.delay (1 = real time, 0.001 = 10 s become 10 ms).
    #[arg(long, env = "RP_SIM_TIME_SCALE", default_value = "1")]
    pub time_scale: TimeScale,

    /// Seed of the request and operation IDs.
    #[arg(long, env = "RP_SIM_SEED", default_value_t = 0)]
    pub seed: u64,

    /// Milliseconds (real time) during which the status endpoint answers 3061 for a payment
    /// just recorded, like the platform. Default: the platform's 10 s × --time-scale; 0 turns
    /// it off.
    #[arg(long, env = "RP_SIM_STATUS_LAG_MS", value_name = "MS")]
    pub status_lag_ms: Option<u64>,

    /// Answer 3061 (unknown payment) with HTTP 404 and the unsigned error envelope, instead of
    /// the default HTTP 200 with a signed body carrying code 3061.
    #[arg(long, env = "RP_SIM_NOT_FOUND_404")]
    pub not_found_404: bool,

    /// The largest request body in bytes; above it: HTTP 413, nothing applied.
    #[arg(long, env = "RP_SIM_BODY_LIMIT", default_value_t = crate::DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,

    /// Milliseconds a client has for a request's headers (then the connection is closed; also
    /// the idle keep-alive time) and, separately, for its body (then HTTP 408).
    #[arg(long, env = "RP_SIM_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub read_timeout_ms: u64,

    /// Connections served at once; more wait in the listen backlog.
    #[arg(long, env = "RP_SIM_MAX_CONNECTIONS", default_value_t = crate::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
}

/// An amount in tenge as people write it (`1 000,50`, `1000.50`, `500 KZT`), exactly, in
/// tiyn, for clap.
fn parse_tenge(text: &str) -> Result<u64, String> {
    rp_model::Money::parse(text, rp_model::Currency::KZT)
        .map(rp_model::Money::minor_units)
        .map_err(|e| e.to_string())
}

/// `--rate CODE=RATE`, for clap.
fn parse_rate(text: &str) -> Result<(rp_model::Currency, crate::Rate), String> {
    crate::parse_rate_arg(text).map_err(|e| e.to_string())
}

impl SimArgs {
    /// The project limits given with the `--limit-*` options (in tiyn and payouts).
    pub fn limits(&self) -> ProjectLimits {
        ProjectLimits {
            min_amount: self.limit_min_amount,
            max_amount: self.limit_max_amount,
            daily_amount: self.limit_daily_amount,
            weekly_amount: self.limit_weekly_amount,
            monthly_amount: self.limit_monthly_amount,
            daily_count: self.limit_daily_count,
            weekly_count: self.limit_weekly_count,
            monthly_count: self.limit_monthly_count,
        }
    }

    /// A builder configured from these arguments.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the numbers of `--project-id` and `--secret-key` differ. (A
    /// minimum per payout above the maximum is refused by [`SimulatorBuilder::start`].)
    pub fn to_builder(&self) -> Result<SimulatorBuilder, Error> {
        let mut builder = Simulator::builder();
        for (currency, rate) in &self.rates {
            builder = builder.rate(*currency, *rate);
        }
        let mut builder = builder
            .listen(self.listen)
            .amount_limit(self.amount_limit)
            .limits(self.limits())
            .processing_delay(Duration::from_millis(self.processing_delay_ms))
            .slow_delay(Duration::from_millis(self.slow_delay_ms))
            .time_scale(self.time_scale)
            .seed(self.seed)
            .not_found_404(self.not_found_404)
            .body_limit(self.body_limit)
            .header_read_timeout(Duration::from_millis(self.read_timeout_ms))
            .body_read_timeout(Duration::from_millis(self.read_timeout_ms))
            .max_connections(self.max_connections);
        builder = match self.status_lag_ms {
            Some(ms) => builder.status_lag(Duration::from_millis(ms)),
            None => builder.platform_status_lag(),
        };
        if let Some(url) = &self.callback_url {
            builder = builder.callback_url(url.clone());
        }
        match (self.project_ids.len(), self.secret_keys.len()) {
            (0, 0) => Ok(builder),
            (ids, keys) if ids == keys => {
                for (id, key) in self.project_ids.iter().zip(&self.secret_keys) {
                    builder = builder.add_project(Project::new(*id, key.clone()));
                }
                Ok(builder)
            }
            (ids, keys) => Err(Error::Config {
                problem: format!(
                    "{ids} --project-id but {keys} --secret-key; give them in pairs, e.g. --project-id 1234 --secret-key KEY"
                ),
            }),
        }
    }

    /// Whether the default test project is served (no project was configured).
    fn uses_default_project(&self) -> bool {
        self.project_ids.is_empty()
    }
}

/// Runs the simulator until Ctrl-C, after printing its address, base URL and projects.
///
/// It does not install a tracing subscriber (the caller chooses one); request logs are
/// `tracing` events at `info` level under the `rp_sim` target.
///
/// # Errors
///
/// Configuration and bind errors from [`SimArgs::to_builder`] and
/// [`SimulatorBuilder::start`], or [`Error::Io`] if waiting for Ctrl-C fails.
pub async fn run(args: SimArgs) -> Result<(), Error> {
    let sim = args.to_builder()?.start().await?;
    println!(
        "rp-sim: Rocketpay Gate simulator listening on {}",
        sim.addr()
    );
    println!("  base URL:     {}", sim.base_url());
    if args.uses_default_project() {
        println!("  project:      {DEFAULT_PROJECT_ID}   secret key: {DEFAULT_SECRET_KEY}");
    } else {
        for id in &args.project_ids {
            println!("  project:      {id}   secret key: (as given)");
        }
    }
    match &args.callback_url {
        Some(url) => println!("  callbacks to: {url}"),
        None => println!(
            "  callbacks:    none (set --callback-url, or send general.merchant_callback_url)"
        ),
    }
    println!(
        "  processing:   {} ms; time scale {}; amount limit {} minor units",
        args.processing_delay_ms, args.time_scale, args.amount_limit
    );
    let limits = args.limits();
    if !limits.is_empty() {
        println!(
            "  limits:       {} (per project; GET /_sim/limits)",
            describe_limits(&limits)
        );
    }
    println!(
        "  status lag:   {} ms (3061 until then); 3061 answered as {}",
        sim.status_lag().as_millis(),
        if args.not_found_404 {
            "HTTP 404, unsigned"
        } else {
            "HTTP 200, signed"
        }
    );
    println!(
        "  magic values: last 4 digits of the phone number (rp-sim --help); state: GET /_sim/payments"
    );
    if !args.listen.ip().is_loopback() {
        println!("  warning: listening beyond loopback; anyone who can reach it can use it");
    }
    println!("Press Ctrl-C to stop.");
    let waited = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    waited.map_err(Error::Io)
}

/// The limits set, for the start-up banner: `min 100.00 KZT, daily count 5`.
fn describe_limits(limits: &ProjectLimits) -> String {
    let tenge = |tiyn: u64| format!("{:#}", rp_model::Money::kzt_minor(tiyn));
    let amounts = [
        ("min", limits.min_amount),
        ("max", limits.max_amount),
        ("daily", limits.daily_amount),
        ("weekly", limits.weekly_amount),
        ("monthly", limits.monthly_amount),
    ];
    let counts = [
        ("daily count", limits.daily_count),
        ("weekly count", limits.weekly_count),
        ("monthly count", limits.monthly_count),
    ];
    amounts
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| format!("{name} {}", tenge(v))))
        .chain(
            counts
                .into_iter()
                .filter_map(|(name, value)| value.map(|v| format!("{name} {v}"))),
        )
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use clap::{Args, CommandFactory};

    use super::*;

    #[test]
    fn defaults_need_no_configuration() {
        let args = SimArgs::try_parse_from(["rp-sim"]).unwrap();
        assert_eq!(args.listen.to_string(), "127.0.0.1:8080");
        assert!(args.uses_default_project());
        assert_eq!(args.time_scale, TimeScale::REAL_TIME);
        assert_eq!(args.status_lag_ms, None);
        assert!(!args.not_found_404);
        assert_eq!(args.body_limit, 64 * 1024);
        assert!(args.limits().is_empty());
        assert!(args.to_builder().is_ok());
    }

    #[test]
    fn limits_are_read_exactly_in_tenge() {
        let args = SimArgs::try_parse_from([
            "rp-sim",
            "--limit-min-amount",
            "100",
            "--limit-max-amount",
            "1 000,50",
            "--limit-daily-amount",
            "250000.00 KZT",
            "--limit-weekly-amount",
            "1 500 ₸",
            "--limit-monthly-amount",
            "0.01",
            "--limit-daily-count",
            "5",
            "--limit-weekly-count",
            "20",
            "--limit-monthly-count",
            "80",
        ])
        .unwrap();
        let limits = args.limits();
        assert_eq!(limits.min_amount, Some(10_000));
        assert_eq!(limits.max_amount, Some(100_050));
        assert_eq!(limits.daily_amount, Some(25_000_000));
        assert_eq!(limits.weekly_amount, Some(150_000));
        assert_eq!(limits.monthly_amount, Some(1));
        assert_eq!(limits.daily_count, Some(5));
        assert_eq!(limits.weekly_count, Some(20));
        assert_eq!(limits.monthly_count, Some(80));
        assert_eq!(
            describe_limits(&limits),
            "min 100.00 KZT, max 1000.50 KZT, daily 250000.00 KZT, weekly 1500.00 KZT, monthly 0.01 KZT, daily count 5, weekly count 20, monthly count 80"
        );
        // No floats, no guessing: a third decimal, a sign, another currency, a non-number.
        for bad in ["10.005", "-1", "5 USD", "1e3", "lots"] {
            assert!(
                SimArgs::try_parse_from(["rp-sim", "--limit-daily-amount", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(SimArgs::try_parse_from(["rp-sim", "--limit-daily-count", "2.5"]).is_err());
    }

    #[tokio::test]
    async fn a_minimum_above_the_maximum_is_refused_at_start() {
        let args = SimArgs::try_parse_from([
            "rp-sim",
            "--listen",
            "127.0.0.1:0",
            "--limit-min-amount",
            "200",
            "--limit-max-amount",
            "100",
        ])
        .unwrap();
        let error = args.to_builder().unwrap().start().await.unwrap_err();
        assert!(error.to_string().contains("minimum per payout"), "{error}");
    }

    #[tokio::test]
    async fn the_command_line_applies_the_platform_status_lag_scaled() {
        let scaled =
            SimArgs::try_parse_from(["rp-sim", "--listen", "127.0.0.1:0", "--time-scale", "0.01"])
                .unwrap();
        let sim = scaled.to_builder().unwrap().start().await.unwrap();
        assert_eq!(sim.status_lag(), Duration::from_millis(100));
        sim.shutdown().await;
        let explicit = SimArgs::try_parse_from([
            "rp-sim",
            "--listen",
            "127.0.0.1:0",
            "--status-lag-ms",
            "0",
            "--not-found-404",
        ])
        .unwrap();
        let sim = explicit.to_builder().unwrap().start().await.unwrap();
        assert_eq!(sim.status_lag(), Duration::ZERO);
        sim.shutdown().await;
    }

    #[test]
    fn projects_come_in_pairs() {
        let args = SimArgs::try_parse_from([
            "rp-sim",
            "--project-id",
            "1",
            "--secret-key",
            "a",
            "--project-id",
            "2",
            "--secret-key",
            "b",
            "--time-scale",
            "0.001",
            "--listen",
            "127.0.0.1:0",
        ])
        .unwrap();
        assert_eq!(args.project_ids.len(), 2);
        assert_eq!(args.time_scale, TimeScale::per_million(1_000));
        assert!(args.to_builder().is_ok());
        assert!(
            !format!("{args:?}").contains("\"a\""),
            "keys must not be in Debug"
        );

        let unpaired = SimArgs::try_parse_from([
            "rp-sim",
            "--project-id",
            "1",
            "--project-id",
            "2",
            "--secret-key",
            "a",
        ])
        .unwrap();
        let error = unpaired.to_builder().unwrap_err().to_string();
        assert!(
            error.contains("2 --project-id but 1 --secret-key"),
            "{error}"
        );

        assert!(SimArgs::try_parse_from(["rp-sim", "--project-id", "0"]).is_err());
        assert!(SimArgs::try_parse_from(["rp-sim", "--time-scale", "fast"]).is_err());
    }

    #[test]
    fn help_shows_the_magic_table_also_when_embedded() {
        let help = SimArgs::command().render_long_help().to_string();
        assert!(help.contains("| `0023` |"), "{help}");
        assert!(help.contains("RP_SIM_TIME_SCALE"), "{help}");
        assert!(help.contains("RP_SIM_LIMIT_DAILY_COUNT"), "{help}");
        assert!(help.contains("--limit-monthly-amount <TENGE>"), "{help}");
        assert!(help.contains("sim-secret-key"), "{help}");
        // As `rp sim`: the Args part of the derive keeps the help texts.
        let embedded = SimArgs::augment_args(clap::Command::new("sim"))
            .render_long_help()
            .to_string();
        assert!(embedded.contains("| `0001` |"), "{embedded}");
        assert!(embedded.contains("--processing-delay-ms"), "{embedded}");
    }
}
