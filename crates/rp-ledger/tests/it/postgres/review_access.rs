//! Review of schema 9 (operators, sessions and API keys per project) on PostgreSQL: an rp of
//! schema 8 still running during a rolling upgrade, and project IDs above `i64::MAX`.

use std::time::{Duration, SystemTime};

use rp_ledger::{ApiKey, OperatorAccount, Role, Session};

use super::{Database, project, server};

/// Instance A of project 1 still runs rp of schema 8 while instance B (project 2, newer rp)
/// migrated the shared ledger to schema 9 and made a key and a session of its own. A's
/// statements (HEAD~1's `postgres/access.rs`) still run and find project 2's key and
/// session. Expected: refused (as V2 drops defaults so that an old rp's inserts fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_access_pg_an_older_rp_cannot_use_another_projects_key_or_session() {
    let Some(admin) =
        server("review_access_pg_an_older_rp_cannot_use_another_projects_key_or_session")
    else {
        return;
    };
    let db = Database::fresh(&admin, "review_access_old").await;
    let ledger = db.open().await;
    let two = ledger.access(project(2));
    assert!(
        two.add_api_key(ApiKey::new("backend", "22".repeat(32), Role::Pay))
            .await
            .unwrap()
    );
    let now = SystemTime::now();
    two.put_operator(OperatorAccount::new("anna", "$argon2id$v=19$2", Role::Pay))
        .await
        .unwrap();
    assert!(
        two.open_session(
            Session::new("tok2", "anna", "csrf", now, now + Duration::from_secs(3600)),
            "$argon2id$v=19$2"
        )
        .await
        .unwrap()
    );
    let sql = db.sql().await;
    // rp schema 8, `PostgresAccess::api_key` and `session`.
    let key = sql
        .query(
            "SELECT name, key_sha256, role, created_at, revoked_at \
             FROM rp_ledger.api_keys WHERE key_sha256 = $1",
            &[&"22".repeat(32)],
        )
        .await
        .map(|rows| rows.len());
    let session = sql
        .query(
            "SELECT s.token_sha256, s.operator, o.role FROM rp_ledger.sessions s \
             JOIN rp_ledger.operators o ON o.name = s.operator \
             WHERE s.token_sha256 = $1 AND s.expires_at > $2",
            &[&"tok2", &0i64],
        )
        .await
        .map(|rows| rows.len());
    drop((ledger, sql));
    db.remove().await;
    assert!(
        key.is_err(),
        "an rp of schema 8 still running finds project 2's key: {key:?}"
    );
    assert!(
        session.is_err(),
        "an rp of schema 8 still running accepts project 2's session: {session:?}"
    );
}
