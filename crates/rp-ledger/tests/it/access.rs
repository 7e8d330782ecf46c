//! The console's operators and sessions (`AccessStore`), the same assertions for every
//! backend: kept per project; those made before schema 9 (bound to no project) adopted.

use std::time::{Duration, SystemTime};

use rp_ledger::{Adoption, ApiKey, Ledger, OperatorAccount, Role, Session, Unadopted};
use rp_model::{Limits, ProjectId};
use rp_payout::conformance::record;
use rp_payout::{EventSource, PayoutEvent, PayoutState};

const HOUR: Duration = Duration::from_secs(3600);

pub(crate) fn project(id: u64) -> ProjectId {
    ProjectId::new(id).unwrap()
}

pub(crate) async fn run_all(ledger: &Ledger) {
    let access = ledger.access(project(1));
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
    projects_apart(ledger, now).await;
}

/// Another project on the ledger (run after `run_all`'s first part) knows none of project 1's
/// operators, sessions and keys, may use the same names, and changes nothing of project 1's.
async fn projects_apart(ledger: &Ledger, now: SystemTime) {
    let (one, two) = (ledger.access(project(1)), ledger.access(project(2)));
    let hash = "$argon2id$v=19$hash-3"; // project 1's anna
    assert!(two.operators().await.unwrap().is_empty());
    assert_eq!(two.operator("anna").await.unwrap(), None);
    assert!(two.api_keys().await.unwrap().is_empty());
    assert_eq!(
        two.api_key(&"ef".repeat(32)).await.unwrap(),
        None,
        "project 1's key"
    );
    assert!(!two.revoke_api_key("reports", now).await.unwrap());
    assert!(!two.remove_operator("anna").await.unwrap());
    // A session of project 1's operator: not found, not closed, not opened by project 2.
    let session = |token: &str| Session::new(token, "anna", "csrf", now, now + HOUR);
    assert!(one.open_session(session("t-one"), hash).await.unwrap());
    assert_eq!(two.session("t-one", now).await.unwrap(), None);
    two.close_session("t-one").await.unwrap();
    assert!(one.session("t-one", now).await.unwrap().is_some());
    assert!(!two.open_session(session("t-two"), hash).await.unwrap());
    // The same names in project 2, each project keeping its own.
    let anna = OperatorAccount::new("anna", "$argon2id$v=19$hash-two", Role::Pay);
    two.put_operator(anna.clone()).await.unwrap();
    assert!(
        two.open_session(session("t-two"), "$argon2id$v=19$hash-two")
            .await
            .unwrap()
    );
    assert_eq!(
        one.operator("anna").await.unwrap().unwrap().role,
        Role::View
    );
    assert!(
        one.session("t-one", now).await.unwrap().is_some(),
        "not closed by 2"
    );
    assert_eq!(
        two.session("t-two", now).await.unwrap().unwrap().role,
        Role::Pay
    );
    assert!(
        two.add_api_key(ApiKey::new("reports", "0f".repeat(32), Role::Pay))
            .await
            .unwrap()
    );
    assert_eq!(one.api_key(&"0f".repeat(32)).await.unwrap(), None);
    assert!(one.revoke_api_key("reports", now).await.unwrap());
    assert!(
        two.api_key(&"0f".repeat(32))
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none(),
        "project 2's reports is its own"
    );
    assert!(one.remove_operator("anna").await.unwrap());
    assert!(two.session("t-two", now).await.unwrap().is_some());
    assert_eq!(one.adopt_unbound(true).await.unwrap(), Adoption::default());
}

/// What a test made of schema 8 (operator `anna`: pay, TOTP `JBSWY3DP`, a session `t`; key
/// `backend`: view, hash `ab`) is after the migration: bound to no project, then adopted by
/// project 1234 whole; the session ended.
pub(crate) async fn version_8_rows_adopted(ledger: &Ledger) {
    let access = ledger.access(project(1234));
    assert_eq!(
        access.operator("anna").await.unwrap(),
        None,
        "no project yet"
    );
    let left = access.adopt_unbound(true).await.unwrap();
    assert_eq!(left.why_left, Some(Unadopted::NothingOfThisProject));
    endpoint(ledger, project(1234)).await;
    let adopted = access.adopt_unbound(true).await.unwrap();
    assert_eq!((adopted.operators, adopted.api_keys), (1, 1));
    let anna = access.operator("anna").await.unwrap().unwrap();
    assert_eq!(
        (anna.role, anna.totp_secret.as_deref()),
        (Role::Pay, Some("JBSWY3DP"))
    );
    let key = access.api_key("ab").await.unwrap().unwrap();
    assert_eq!((key.name.as_str(), key.role), ("backend", Role::View));
    let now = SystemTime::now();
    assert_eq!(
        access.session("t", now).await.unwrap(),
        None,
        "sessions end"
    );
}

/// Operators and keys made before schema 9 (bound to no project), written by `legacy` (raw
/// SQL: `operator NAME`, `key NAME HASH`), adopted by the rules of
/// `AccessStore::adopt_unbound`. `ledger` is fresh.
pub(crate) async fn adoption<F, Fut>(ledger: &Ledger, legacy: F)
where
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = ()>,
{
    let (one, two) = (ledger.access(project(1)), ledger.access(project(2)));
    legacy("operator old-anna").await;
    legacy("key old-backend aa").await;
    // Unbound: refused by every project.
    assert_eq!(one.operator("old-anna").await.unwrap(), None);
    assert_eq!(two.api_key(&"aa".repeat(32)).await.unwrap(), None);
    assert!(one.operators().await.unwrap().is_empty());
    // The ledger holds nothing of any project: a mistyped project would take them.
    let left = one.adopt_unbound(true).await.unwrap();
    assert_eq!(
        (left.operators, left.operators_left, left.api_keys_left),
        (0, 1, 1)
    );
    assert_eq!(left.why_left, Some(Unadopted::NothingOfThisProject));
    assert_eq!(one.operator("old-anna").await.unwrap(), None);
    // Project 1 has an endpoint, no other project anything: they are its.
    endpoint(ledger, project(1)).await;
    let bound = one.adopt_unbound(true).await.unwrap();
    assert_eq!(
        (
            bound.operators,
            bound.api_keys,
            bound.left_any(),
            bound.why_left
        ),
        (1, 1, false, None)
    );
    assert!(one.operator("old-anna").await.unwrap().is_some());
    let key = one.api_key(&"aa".repeat(32)).await.unwrap().unwrap();
    assert_eq!((key.name.as_str(), key.role), ("old-backend", Role::Pay));
    assert_eq!(two.adopt_unbound(true).await.unwrap(), Adoption::default());
    assert_eq!(two.operator("old-anna").await.unwrap(), None);

    // More unbound ones, now that both projects have operators: neither can tell whose.
    two.put_operator(OperatorAccount::new(
        "zed",
        "$argon2id$v=19$zed",
        Role::View,
    ))
    .await
    .unwrap();
    legacy("operator old-bob").await;
    let left = two.adopt_unbound(true).await.unwrap();
    assert_eq!(
        (left.operators, left.operators_left, left.api_keys_left),
        (0, 1, 0)
    );
    assert_eq!(left.why_left, Some(Unadopted::OtherProjects));
    assert_eq!(two.operator("old-bob").await.unwrap(), None);
    assert_eq!(
        one.adopt_unbound(true).await.unwrap(),
        left,
        "nor project 1"
    );
    // The administrator says they are project 2's; one of a name project 2 has stays.
    two.put_operator(OperatorAccount::new(
        "old-carl",
        "$argon2id$v=19$new",
        Role::View,
    ))
    .await
    .unwrap();
    legacy("operator old-carl").await;
    let forced = two.adopt_unbound(false).await.unwrap();
    assert_eq!((forced.operators, forced.operators_left), (1, 1));
    assert_eq!(forced.why_left, Some(Unadopted::SameNames));
    assert!(two.operator("old-bob").await.unwrap().is_some());
    let carl = two.operator("old-carl").await.unwrap().unwrap();
    assert_eq!(
        carl.password_hash, "$argon2id$v=19$new",
        "project 2's own kept"
    );
    // The one left is removed; no project's own is.
    legacy("key old-reports cc").await;
    assert_eq!(one.remove_unbound().await.unwrap(), (1, 1));
    assert_eq!(two.adopt_unbound(false).await.unwrap(), Adoption::default());
    assert!(two.operator("old-carl").await.unwrap().is_some());
    assert!(one.operator("old-anna").await.unwrap().is_some());
    assert_eq!(one.remove_unbound().await.unwrap(), (0, 0));
}

/// A webhook endpoint of `project`: data of its own in the ledger.
async fn endpoint(ledger: &Ledger, project: ProjectId) {
    ledger
        .webhooks(project)
        .add_endpoint(
            "https://example.kz/hooks",
            "whsec_MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0",
        )
        .await
        .unwrap();
}

/// A ledger whose only other project's trace is a payout, or a batch, or a webhook endpoint:
/// unbound operators are not taken by `sole` adoption. `ledgers` are fresh.
pub(crate) async fn adoption_sees_other_projects<F, Fut>(ledgers: [&Ledger; 3], legacy: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    for (n, ledger) in ledgers.into_iter().enumerate() {
        let other = project(if n == 1 { 1 } else { 3 }); // below and above project 2
        match n {
            0 => {
                let r = record("other-1", "77011234567", 100, 0);
                let event =
                    PayoutEvent::new(r.created_at, EventSource::Call, None, PayoutState::Created);
                ledger
                    .store(other)
                    .insert(r, event, Limits::NONE)
                    .await
                    .unwrap();
            }
            1 => {
                let id = crate::batches::batch_id(9);
                ledger
                    .batches(other)
                    .register(
                        crate::batches::new_batch(&id, 1, &[]),
                        crate::batches::rows_of(&id, 1, &[]),
                    )
                    .await
                    .unwrap();
            }
            _ => {
                ledger
                    .webhooks(other)
                    .add_endpoint(
                        "https://example.kz/hooks",
                        "whsec_MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0",
                    )
                    .await
                    .unwrap();
            }
        }
        legacy(n).await;
        let left = ledger.access(project(2)).adopt_unbound(true).await.unwrap();
        assert_eq!((left.operators, left.operators_left), (0, 1), "ledger {n}");
        assert_eq!(left.why_left, Some(Unadopted::OtherProjects), "ledger {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_ledger_keeps_operators_and_sessions() {
    run_all(&Ledger::open("sqlite::memory:").await.unwrap()).await;
}

/// Writes an operator or key bound to no project into the SQLite file at `path`.
pub(crate) fn sqlite_legacy(path: &std::path::Path, what: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let words: Vec<&str> = what.split(' ').collect();
    match words.as_slice() {
        ["operator", name] => conn.execute(
            "INSERT INTO project_operators (project_id, name, password_hash, role, updated_at) \
             VALUES (0, ?1, '$argon2id$v=19$old', 'pay', 0)",
            [name],
        ),
        ["key", name, hash] => conn.execute(
            "INSERT INTO project_api_keys (project_id, name, key_sha256, role, created_at) \
             VALUES (0, ?1, ?2, 'pay', 0)",
            [*name, &hash.repeat(32)],
        ),
        _ => panic!("{what}"),
    }
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_ledger_adopts_operators_and_keys_of_no_project() {
    let dir = crate::scratch("adoption");
    let path = dir.join("ledger.db");
    let ledger = Ledger::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    adoption(&ledger, |what| {
        sqlite_legacy(&path, what);
        async {}
    })
    .await;
    let mut ledgers = Vec::new();
    for n in 0..3 {
        let path = dir.join(format!("other-{n}.db"));
        ledgers.push((
            Ledger::open(&format!("sqlite:{}", path.display()))
                .await
                .unwrap(),
            path,
        ));
    }
    let paths: Vec<_> = ledgers.iter().map(|(_, p)| p.clone()).collect();
    adoption_sees_other_projects([&ledgers[0].0, &ledgers[1].0, &ledgers[2].0], |n| {
        sqlite_legacy(&paths[n], "operator old-dana");
        async {}
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_ledger_keeps_operators_and_sessions_across_a_reopen() {
    let dir = crate::scratch("access");
    let url = format!("sqlite:{}", dir.join("ledger.db").display());
    run_all(&Ledger::open(&url).await.unwrap()).await;
    let again = Ledger::open(&url).await.unwrap();
    assert_eq!(
        again
            .access(project(2))
            .operator("anna")
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::Pay
    );
    assert!(
        again
            .access(project(1))
            .session("t-one", SystemTime::now())
            .await
            .unwrap()
            .is_none(),
        "project 1's anna was removed"
    );
}
