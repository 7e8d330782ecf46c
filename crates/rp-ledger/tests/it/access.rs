//! The console's operators and sessions (`AccessStore`), the same assertions for every
//! backend.

use std::time::{Duration, SystemTime};

use rp_ledger::{ApiKey, Ledger, OperatorAccount, Role, Session};

const HOUR: Duration = Duration::from_secs(3600);

pub(crate) async fn run_all(ledger: &Ledger) {
    let access = ledger.access();
    let now = SystemTime::now();
    assert!(access.operators().await.unwrap().is_empty());
    assert_eq!(access.operator("anna").await.unwrap(), None);

    // Operators: added, read back, listed by name, replaced.
    let mut anna = OperatorAccount::new("anna", "$argon2id$v=19$hash-1", Role::Pay);
    anna.totp_secret = Some("JBSWY3DPEHPK3PXP".to_owned());
    anna.updated_at = now;
    access.put_operator(anna.clone()).await.unwrap();
    let mut bob = OperatorAccount::new("bob", "$argon2id$v=19$hash-2", Role::View);
    bob.updated_at = now;
    access.put_operator(bob.clone()).await.unwrap();
    let read = access.operator("anna").await.unwrap().unwrap();
    assert_eq!(read, anna);
    let names: Vec<String> = access
        .operators()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["anna", "bob"]);

    // Sessions: found by the token's hash while open, with the operator's role now.
    let open = |token: &str, who: &str, expires: SystemTime| {
        Session::new(token, who, format!("csrf-{token}"), now, expires)
    };
    for (token, who, hash, expires) in [
        ("t-anna", "anna", "$argon2id$v=19$hash-1", now + HOUR),
        ("t-bob", "bob", "$argon2id$v=19$hash-2", now + HOUR),
        ("t-old", "bob", "$argon2id$v=19$hash-2", now - HOUR),
    ] {
        assert!(
            access
                .open_session(open(token, who, expires), hash)
                .await
                .unwrap()
        );
    }
    // A login that verified an older password (changed meanwhile) opens nothing.
    assert!(
        !access
            .open_session(open("t-stale", "anna", now + HOUR), "$argon2id$v=19$old")
            .await
            .unwrap()
    );
    assert_eq!(access.session("t-stale", now).await.unwrap(), None);
    let session = access.session("t-anna", now).await.unwrap().unwrap();
    assert_eq!(
        (
            session.operator.as_str(),
            session.role,
            session.csrf.as_str()
        ),
        ("anna", Role::Pay, "csrf-t-anna")
    );
    assert_eq!(access.session("t-old", now).await.unwrap(), None, "ended");
    assert_eq!(access.session("t-bob", now + 2 * HOUR).await.unwrap(), None);
    assert_eq!(access.session("nope", now).await.unwrap(), None);

    // A session for nobody is not opened (the operator must exist).
    assert!(
        !access
            .open_session(
                open("t-ghost", "ghost", now + HOUR),
                "$argon2id$v=19$hash-1"
            )
            .await
            .unwrap()
    );

    // Replacing an operator (new password or role) closes their sessions.
    let mut anna2 = anna.clone();
    anna2.password_hash = "$argon2id$v=19$hash-3".to_owned();
    anna2.role = Role::View;
    access.put_operator(anna2.clone()).await.unwrap();
    assert_eq!(access.session("t-anna", now).await.unwrap(), None);
    assert_eq!(access.operator("anna").await.unwrap().unwrap(), anna2);

    // Logging out; ended sessions purged.
    access.close_session("t-bob").await.unwrap();
    access.close_session("t-bob").await.unwrap();
    assert_eq!(access.session("t-bob", now).await.unwrap(), None);
    assert_eq!(access.purge_sessions(now).await.unwrap(), 1, "t-old");

    // Removing an operator closes their sessions.
    assert!(
        access
            .open_session(open("t-bob2", "bob", now + HOUR), "$argon2id$v=19$hash-2")
            .await
            .unwrap()
    );
    assert!(access.remove_operator("bob").await.unwrap());
    assert!(!access.remove_operator("bob").await.unwrap());
    assert_eq!(access.session("t-bob2", now).await.unwrap(), None);
    assert_eq!(access.operators().await.unwrap().len(), 1);

    // API keys: found by their hash, names never reused, revoked once.
    let key = ApiKey::new("backend", "ab".repeat(32), Role::Pay);
    assert!(access.add_api_key(key.clone()).await.unwrap());
    assert!(
        !access
            .add_api_key(ApiKey::new("backend", "cd".repeat(32), Role::View))
            .await
            .unwrap(),
        "a name is never reused"
    );
    assert!(
        access
            .add_api_key(ApiKey::new("reports", "ef".repeat(32), Role::View))
            .await
            .unwrap()
    );
    let found = access.api_key(&"ab".repeat(32)).await.unwrap().unwrap();
    assert_eq!(
        (found.name.as_str(), found.role, found.revoked_at),
        ("backend", Role::Pay, None)
    );
    assert_eq!(access.api_key(&"cd".repeat(32)).await.unwrap(), None);
    assert!(access.revoke_api_key("backend", now).await.unwrap());
    assert!(
        !access.revoke_api_key("backend", now).await.unwrap(),
        "once"
    );
    assert!(!access.revoke_api_key("nobody", now).await.unwrap());
    let revoked = access.api_key(&"ab".repeat(32)).await.unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    let names: Vec<String> = access
        .api_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["backend", "reports"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_ledger_keeps_operators_and_sessions() {
    run_all(&Ledger::open("sqlite::memory:").await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_ledger_keeps_operators_and_sessions_across_a_reopen() {
    let dir = crate::scratch("access");
    let url = format!("sqlite:{}", dir.join("ledger.db").display());
    run_all(&Ledger::open(&url).await.unwrap()).await;
    let again = Ledger::open(&url).await.unwrap();
    assert_eq!(
        again.access().operator("anna").await.unwrap().unwrap().role,
        Role::View
    );
}
