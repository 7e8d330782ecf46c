//! Time, injectable: [`Clock`], [`SystemClock`] and [`ManualClock`].

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use rp_transport::BoxFuture;

/// Where the client gets the time and how it waits; inject a [`ManualClock`] in tests.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// Waits for `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The real clock: [`SystemTime::now`] and tokio's timer (needs a tokio runtime with time
/// enabled, as the default transport does anyway).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock for tests: it stands still until advanced, and `sleep` advances it at once (no
/// real waiting) and records the duration. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use rp_payout::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(10));
/// assert_eq!(clock.now().duration_since(start).unwrap(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    state: Arc<Mutex<ManualState>>,
}

#[derive(Debug)]
struct ManualState {
    now: SystemTime,
    sleeps: Vec<Duration>,
}

impl ManualClock {
    /// A clock at 2024-01-01T00:00:00Z.
    pub fn new() -> Self {
        Self::at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200))
    }

    /// A clock at `now`.
    pub fn at(now: SystemTime) -> Self {
        Self {
            state: Arc::new(Mutex::new(ManualState {
                now,
                sleeps: Vec::new(),
            })),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, duration: Duration) {
        let mut state = self.lock();
        state.now += duration;
    }

    /// Every duration passed to [`Clock::sleep`] so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock().sleeps.clone()
    }

    fn lock(&self) -> MutexGuard<'_, ManualState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.lock().now
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        {
            let mut state = self.lock();
            state.now += duration;
            state.sleeps.push(duration);
        }
        Box::pin(std::future::ready(()))
    }
}
