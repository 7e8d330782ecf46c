//! `/metrics` in Prometheus' text format: payouts by state (read from the ledger when
//! scraped), callbacks by outcome, and HTTP request latency by kind of route.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rp_payout::StateCount;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The counters of one process.
#[derive(Debug, Default)]
pub struct Metrics {
    callbacks: Mutex<BTreeMap<String, u64>>,
    requests: Mutex<BTreeMap<&'static str, Histogram>>,
    webhooks: Mutex<BTreeMap<&'static str, u64>>,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Counts per bucket of [`BUCKETS`] (not cumulative), then the overflow.
    counts: [u64; BUCKETS.len() + 1],
    sum_micros: u128,
    total: u64,
}

impl Metrics {
    /// Counts a callback by its outcome's label.
    pub fn callback(&self, outcome: &str) {
        *self
            .callbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(outcome.to_owned())
            .or_default() += 1;
    }

    /// Counts a webhook attempt by its outcome (`delivered`, `failed`, `given_up`).
    pub fn webhook(&self, outcome: &'static str) {
        *self
            .webhooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(outcome)
            .or_default() += 1;
    }

    /// Records how long a request of kind `route` took.
    pub fn request(&self, route: &'static str, took: Duration) {
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        let histogram = requests.entry(route).or_default();
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        histogram.counts[bucket] += 1;
        histogram.sum_micros += took.as_micros();
        histogram.total += 1;
    }

    /// The text a scrape gets, with `payouts` the ledger's counts by state now.
    pub fn render(&self, payouts: &StateCount) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP rp_payouts Payouts in the ledger by state.\n# TYPE rp_payouts gauge\n",
        );
        for (state, count) in &payouts.by_state {
            let _ = writeln!(out, "rp_payouts{{state=\"{}\"}} {count}", label(state));
        }
        let _ = writeln!(
            out,
            "# HELP rp_payouts_attention Payouts that need attention.\n# TYPE rp_payouts_attention gauge\nrp_payouts_attention {}",
            payouts.attention
        );
        out.push_str("# HELP rp_callbacks_total Callbacks received by outcome.\n# TYPE rp_callbacks_total counter\n");
        for (outcome, count) in self
            .callbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "rp_callbacks_total{{outcome=\"{}\"}} {count}",
                label(outcome)
            );
        }
        out.push_str("# HELP rp_webhook_attempts_total Webhook delivery attempts by outcome.\n# TYPE rp_webhook_attempts_total counter\n");
        for (outcome, count) in self
            .webhooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "rp_webhook_attempts_total{{outcome=\"{outcome}\"}} {count}"
            );
        }
        out.push_str("# HELP rp_http_request_duration_seconds Time to answer HTTP requests.\n# TYPE rp_http_request_duration_seconds histogram\n");
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for (route, histogram) in &requests {
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "rp_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "rp_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                 rp_http_request_duration_seconds_sum{{route=\"{route}\"}} {}.{:06}\n\
                 rp_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.total,
                histogram.sum_micros / 1_000_000,
                histogram.sum_micros % 1_000_000,
                histogram.total
            );
        }
        out
    }
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_a_cumulative_histogram() {
        let metrics = Metrics::default();
        metrics.callback("applied");
        metrics.callback("applied");
        metrics.callback("bad \"sig\"");
        metrics.request("console", Duration::from_millis(3));
        metrics.request("console", Duration::from_millis(30));
        metrics.request("console", Duration::from_secs(20));
        let counts = StateCount::from_rows([("success".to_owned(), 4, 1)]);
        let text = metrics.render(&counts);
        assert!(text.contains("rp_payouts{state=\"success\"} 4"), "{text}");
        assert!(text.contains("rp_callbacks_total{outcome=\"applied\"} 2"));
        assert!(text.contains("rp_callbacks_total{outcome=\"bad \\\"sig\\\"\"} 1"));
        assert!(text.contains("route=\"console\",le=\"0.005\"} 1"));
        assert!(text.contains("route=\"console\",le=\"0.05\"} 2"));
        assert!(text.contains("route=\"console\",le=\"10\"} 2"));
        assert!(text.contains("route=\"console\",le=\"+Inf\"} 3"));
        assert!(text.contains("rp_http_request_duration_seconds_sum{route=\"console\"} 20.033000"));
    }
}
