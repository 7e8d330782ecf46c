//! The server's clock without a round trip per reading: [`ServerClock`] measures the offset
//! of the server's clock (`clock_timestamp()`) once on a pooled connection, then reads it
//! off this machine's monotonic clock, measuring again every [`REFRESH`].
//!
//! Leases ([`rp_payout::PayoutRecord::lease_until`]) are measured on the server's clock so
//! that instances on machines whose clocks differ agree on them. A reading here is the
//! server's clock at the last measurement plus the time elapsed since on this machine's
//! monotonic clock ([`Instant`]: a step of this machine's wall clock changes nothing). Its
//! error is at most half the round trip of the measurement (taken at the midpoint of the
//! round trip; a measurement whose round trip exceeds [`MAX_ROUND_TRIP`] is not kept, unless
//! there is no other) plus the drift between the two clocks since (parts per million over a
//! few seconds): milliseconds, where leases are seconds. A stale measurement is refreshed
//! by one caller while the others keep using it, for at most [`STALE_LIMIT`]; after that
//! every caller waits for a fresh measurement.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Mutex as AsyncMutex;

/// How long a measurement of the server's clock is used before measuring again.
pub(super) const REFRESH: Duration = Duration::from_secs(5);

/// How long a measurement may still be used while another caller measures again.
pub(super) const STALE_LIMIT: Duration = Duration::from_secs(30);

/// A measurement whose round trip took longer is retried (up to [`TRIES`] times) before it is
/// kept: its error is half the round trip.
pub(super) const MAX_ROUND_TRIP: Duration = Duration::from_millis(20);

/// Measurements per refresh at most.
const TRIES: usize = 3;

/// The server's clock in microseconds since the Unix epoch.
pub(super) const SERVER_CLOCK: &str =
    "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

/// One measurement: the server's clock read at `at` on this machine's monotonic clock.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    server: SystemTime,
    /// The round trip of the measurement: the reading is off by at most half of it.
    round_trip: Duration,
}

impl Reading {
    /// The server's clock at `now`, this machine's monotonic clock.
    fn at(&self, now: Instant) -> SystemTime {
        self.server + now.saturating_duration_since(self.at)
    }
}

/// The server's clock, read off a cached offset (see the module's documentation).
#[derive(Debug)]
pub(super) struct ServerClock {
    /// The SQL that reads the server's clock in microseconds since the Unix epoch
    /// ([`SERVER_CLOCK`]; a test gives one that runs ahead).
    sql: &'static str,
    last: Mutex<Option<Reading>>,
    /// Held by the caller that measures; the others use the last reading meanwhile.
    measuring: AsyncMutex<()>,
}

impl ServerClock {
    pub(super) fn new() -> ServerClock {
        ServerClock::with_sql(SERVER_CLOCK)
    }

    /// A clock read by `sql` (a single `bigint`: microseconds since the Unix epoch).
    pub(super) fn with_sql(sql: &'static str) -> ServerClock {
        ServerClock {
            sql,
            last: Mutex::new(None),
            measuring: AsyncMutex::new(()),
        }
    }

    /// The last reading, if any.
    fn last(&self) -> Option<Reading> {
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets the last measurement: the next reading measures again.
    #[cfg(test)]
    pub(super) fn forget(&self) {
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// The server's clock now: from the last measurement while it is fresh, else measured
    /// again on a connection of `pool` (by one caller at a time; the others keep the last
    /// measurement while it is younger than [`STALE_LIMIT`]).
    pub(super) async fn now(
        &self,
        pool: &deadpool_postgres::Pool,
    ) -> Result<SystemTime, ClockError> {
        let now = Instant::now();
        let last = self.last();
        if let Some(reading) = last
            && now.saturating_duration_since(reading.at) < REFRESH
        {
            return Ok(reading.at(now));
        }
        let usable = last.filter(|r| now.saturating_duration_since(r.at) < STALE_LIMIT);
        let guard = match usable {
            // Someone is measuring: the last measurement is good enough meanwhile.
            Some(reading) => match self.measuring.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(reading.at(now)),
            },
            None => self.measuring.lock().await,
        };
        // Measured by another caller while this one waited?
        if let Some(reading) = self.last() {
            let now = Instant::now();
            if now.saturating_duration_since(reading.at) < REFRESH {
                return Ok(reading.at(now));
            }
        }
        let reading = self.measure(pool).await;
        drop(guard);
        let reading = match (reading, usable) {
            (Ok(reading), _) => reading,
            // The server could not be asked: the last measurement while it is usable.
            (Err(_), Some(reading)) => return Ok(reading.at(Instant::now())),
            (Err(error), None) => return Err(error),
        };
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reading);
        Ok(reading.at(Instant::now()))
    }

    /// Measures the server's clock: the best of up to [`TRIES`] round trips (the first one
    /// under [`MAX_ROUND_TRIP`]).
    async fn measure(&self, pool: &deadpool_postgres::Pool) -> Result<Reading, ClockError> {
        let client = pool.get().await.map_err(ClockError::Pool)?;
        let statement = client
            .prepare_cached(self.sql)
            .await
            .map_err(ClockError::Sql)?;
        let mut best: Option<Reading> = None;
        for _ in 0..TRIES {
            let sent = Instant::now();
            let row = client
                .query_one(&statement, &[])
                .await
                .map_err(ClockError::Sql)?;
            let received = Instant::now();
            let micros: i64 = row.try_get(0).map_err(ClockError::Sql)?;
            let round_trip = received.saturating_duration_since(sent);
            let reading = Reading {
                // The server read its clock somewhere within the round trip: the midpoint
                // is off by at most half of it.
                at: sent + round_trip / 2,
                server: server_time(micros),
                round_trip,
            };
            if best.is_none_or(|b| reading.round_trip < b.round_trip) {
                best = Some(reading);
            }
            if round_trip <= MAX_ROUND_TRIP {
                break;
            }
        }
        best.ok_or(ClockError::NoReading)
    }
}

/// Why the server's clock could not be measured.
#[derive(Debug)]
pub(super) enum ClockError {
    Pool(deadpool_postgres::PoolError),
    Sql(tokio_postgres::Error),
    NoReading,
}

/// A time read off the server's clock (microseconds since the Unix epoch; 1970 for earlier).
pub(super) fn server_time(micros: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    use deadpool_postgres::{Manager, Pool, Runtime};
    use std::str::FromStr as _;

    /// A pool on the server of `RP_TEST_POSTGRES_URL`, or `None` (the test is skipped).
    fn pool() -> Option<Pool> {
        let url = std::env::var("RP_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())?;
        let config = tokio_postgres::Config::from_str(&url).unwrap();
        Some(
            Pool::builder(Manager::new(config, tokio_postgres::NoTls))
                .max_size(2)
                .runtime(Runtime::Tokio1)
                .build()
                .unwrap(),
        )
    }

    /// A server whose clock runs an hour ahead of this machine's: the cached clock reads the
    /// server's, not this machine's, on the first reading and on the cached ones after it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cached_clock_is_the_servers() {
        let Some(pool) = pool() else {
            eprintln!("the_cached_clock_is_the_servers: skipped (RP_TEST_POSTGRES_URL is not set)");
            return;
        };
        let clock = ServerClock::with_sql(
            "SELECT (extract(epoch FROM clock_timestamp() + interval '1 hour') * 1000000)::bigint",
        );
        let hour = Duration::from_secs(3600);
        for _ in 0..2 {
            for _ in 0..3 {
                let server = clock.now(&pool).await.unwrap();
                let local = SystemTime::now();
                let ahead = server
                    .duration_since(local)
                    .expect("the server's clock, ahead");
                let error = ahead.abs_diff(hour);
                assert!(
                    error < Duration::from_secs(1),
                    "{ahead:?} ahead, not an hour"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            clock.forget();
        }
        // Moves forward between readings.
        let first = clock.now(&pool).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = clock.now(&pool).await.unwrap();
        assert!(second > first);
        // Agrees with the server's clock read directly, to within a few milliseconds.
        let client = pool.get().await.unwrap();
        let sent = Instant::now();
        let direct: i64 = client.query_one(clock.sql, &[]).await.unwrap().get(0);
        let round_trip = sent.elapsed();
        let cached = clock.now(&pool).await.unwrap();
        let direct = server_time(direct);
        let difference = cached
            .duration_since(direct)
            .unwrap_or_else(|e| e.duration());
        assert!(
            difference < round_trip + Duration::from_millis(50),
            "cached {cached:?}, direct {direct:?}"
        );
    }

    /// Without a server, and without a measurement, a reading fails; it does not fall back to
    /// this machine's clock.
    #[tokio::test]
    async fn no_server_no_reading() {
        let config = tokio_postgres::Config::from_str(
            "postgres://nobody@127.0.0.1:1/none?connect_timeout=1",
        )
        .unwrap();
        let pool = Pool::builder(Manager::new(config, tokio_postgres::NoTls))
            .max_size(1)
            .runtime(Runtime::Tokio1)
            .build()
            .unwrap();
        assert!(ServerClock::new().now(&pool).await.is_err());
    }

    /// The reading moves with this machine's monotonic clock from the measurement.
    #[test]
    fn a_reading_advances_with_the_monotonic_clock() {
        let at = Instant::now();
        let reading = Reading {
            at,
            server: UNIX_EPOCH + Duration::from_secs(1_000),
            round_trip: Duration::ZERO,
        };
        assert_eq!(
            reading.at(at + Duration::from_millis(1500)),
            UNIX_EPOCH + Duration::from_millis(1_001_500)
        );
        // Never before the measurement.
        assert_eq!(reading.at(at), UNIX_EPOCH + Duration::from_secs(1_000));
    }
}
