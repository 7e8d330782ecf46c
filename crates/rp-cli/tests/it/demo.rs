//! `rp demo`: the README's first command.

use crate::{rp, stdout};

#[test]
fn the_demo_runs_the_whole_job_and_exits_0() {
    let output = rp(&["demo"], None, b"");
    let out = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{out}\n{}",
        crate::stderr(&output)
    );
    for needle in [
        "ACTIV, ALTEL, BEELINE, KCELL, TELE2",
        "demo-2-decline",
        "so it was NOT resent",
        "no callback came; the signed status response told",
        "The simulator recorded 4 payouts for 4 requests to pay.",
        "Every outcome was the expected one.",
    ] {
        assert!(out.contains(needle), "{needle:?} not in:\n{out}");
    }
    assert!(!out.contains("UNEXPECTED"), "{out}");
    // Phone numbers appear masked only.
    assert!(!out.contains("77011234567"), "{out}");
}
