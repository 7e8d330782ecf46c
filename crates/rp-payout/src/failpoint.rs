//! Named crash points for crash tests (feature `failpoints`; compiled out of normal builds).
//!
//! With the feature, a process whose `RP_FAILPOINT` names a point aborts there: no unwinding,
//! no destructor, no flush, as a crash or `kill -9` would stop it. The points:
//!
//! | Name | Where |
//! | --- | --- |
//! | `payout-recorded` | the payout is committed to the store; nothing has been sent |
//! | `payout-answered` | the payout request was sent and its answer read; nothing of it is recorded |
//! | `callback-verified` | a callback is verified and checked; nothing of it is recorded |
//! | `reconcile-asked` | reconcile has the status of a payout; nothing of it is recorded |

/// Aborts the process here if `RP_FAILPOINT` is `name` (feature `failpoints` only).
#[inline]
pub(crate) fn hit(name: &'static str) {
    #[cfg(feature = "failpoints")]
    if std::env::var_os("RP_FAILPOINT").is_some_and(|point| point == name) {
        eprintln!("rp: failpoint {name}: aborting");
        std::process::abort();
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}
