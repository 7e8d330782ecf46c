//! Who is sending a payout: [`Owner`], written into the record when a call claims it
//! ([`PayoutRecord::claimed_by`](crate::PayoutRecord::claimed_by)), so that another process can
//! tell a payout being sent from one whose sender died.
//!
//! The token is `host/pid/start/client`, where `start` is the process's start time in clock
//! ticks since boot (Linux `/proc/PID/stat`), so that a process ID reused by a later process does
//! not pass for the sender, and `client` numbers the [`Client`](crate::Client)s of the process,
//! so that one client cannot abandon a payout that another is sending. A claim by a process **on this host** that no longer exists is dead at
//! once; a claim from another host, or one this platform cannot check, is trusted for the
//! in-flight window ([`Config::in_flight_window`](crate::Config::in_flight_window)).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// This process, as it claims payouts (and a batch worker, batch rows).
#[derive(Clone, PartialEq, Eq)]
pub struct Owner {
    token: String,
}

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.token)
    }
}

/// Whether a claim's owner is known to be alive, known to be dead, or cannot be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// A process of this host that is running.
    Alive,
    /// A process of this host that is gone (or whose ID a later process now holds).
    Dead,
    /// Another host's process, or a token this platform cannot check.
    Unknown,
}

impl Owner {
    /// A new client of this process.
    pub fn new_client() -> Owner {
        static CLIENTS: AtomicU64 = AtomicU64::new(0);
        let client = CLIENTS.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let start = start_time(pid).map_or_else(|| "?".to_owned(), |t| t.to_string());
        Owner {
            token: format!("{}/{pid}/{start}/{client}", hostname()),
        }
    }

    /// The token written into a record.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether the process behind `token` (another claim) is alive, as far as this host can
    /// tell.
    pub fn liveness_of(token: &str) -> Liveness {
        let parts: Vec<&str> = token.split('/').collect();
        let [host, pid, start, ..] = parts.as_slice() else {
            return Liveness::Unknown;
        };
        if parts.len() > 4 {
            return Liveness::Unknown;
        }
        let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
            return Liveness::Unknown;
        };
        if *host != hostname() || !cfg!(target_os = "linux") {
            return Liveness::Unknown;
        }
        match start_time(pid) {
            Some(now) if now == start => Liveness::Alive,
            // Gone, or the ID now belongs to a later process.
            _ => Liveness::Dead,
        }
    }
}

/// The host's name (Linux: `/proc/sys/kernel/hostname`; else `HOSTNAME`), `localhost` when
/// neither is there.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().replace('/', "_"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// A process's start time in clock ticks since boot (field 22 of `/proc/PID/stat`), where
/// `/proc` tells it.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: skip past its end.
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_is_alive_and_a_finished_one_is_dead() {
        let me = Owner::new_client();
        assert_eq!(Owner::liveness_of(me.token()), Liveness::Alive);
        assert_ne!(me, Owner::new_client(), "each client its own token");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid);
        child.wait().unwrap();
        let token = format!("{}/{pid}/{}", hostname(), start.unwrap_or(1));
        assert_eq!(Owner::liveness_of(&token), Liveness::Dead);
        // The same PID with another start time (a reused ID) is not the sender either.
        let reused = format!("{}/{}/{}", hostname(), std::process::id(), 1);
        assert_eq!(Owner::liveness_of(&reused), Liveness::Dead);
    }

    #[test]
    fn other_hosts_and_odd_tokens_cannot_be_told() {
        assert_eq!(Owner::liveness_of("elsewhere/1/2"), Liveness::Unknown);
        for odd in ["", "x", "a/b", "host/notapid/5", "host/5/notatime"] {
            assert_eq!(Owner::liveness_of(odd), Liveness::Unknown, "{odd}");
        }
    }
}
