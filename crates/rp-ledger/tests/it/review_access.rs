//! Review of schema 9 (operators, sessions and API keys per project): attempts to use one
//! project's access rows from another project.

use std::time::{Duration, SystemTime};

use rp_ledger::{ApiKey, Ledger, OperatorAccount, Role, Session};
use rp_model::ProjectId;

const HOUR: Duration = Duration::from_secs(3600);

fn project(id: u64) -> ProjectId {
    ProjectId::new(id).unwrap()
}

/// Every ledger handle kept a project ID above `i64::MAX` as `i64::MAX`, so projects 2^63 - 1
/// and 2^64 - 1 shared their keys and operators (and payouts). `ProjectId` now refuses IDs
/// above `i64::MAX`: no two projects share a key.
#[test]
fn review_access_a_project_above_i64_max_does_not_share_keys() {
    assert!(ProjectId::new(u64::MAX).is_err());
    assert!(ProjectId::new(1 << 63).is_err());
    assert!(ProjectId::new(i64::MAX as u64).is_ok());
}

/// A schema-9 ledger file with project 2's key `backend`, operator `anna` and one of her
/// sessions, and project 1's own `backend` key and `anna`.
async fn two_projects(name: &str) -> std::path::PathBuf {
    let dir = crate::scratch(name);
    let path = dir.join("ledger.db");
    let ledger = Ledger::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    let now = SystemTime::now();
    for (id, hash) in [(1, "11"), (2, "22")] {
        let access = ledger.access(project(id));
        assert!(
            access
                .add_api_key(ApiKey::new("backend", hash.repeat(32), Role::Pay))
                .await
                .unwrap()
        );
        let pw = format!("$argon2id$v=19${id}");
        access
            .put_operator(OperatorAccount::new("anna", &pw, Role::Pay))
            .await
            .unwrap();
        assert!(
            access
                .open_session(
                    Session::new(format!("tok{id}"), "anna", "csrf", now, now + HOUR),
                    &pw
                )
                .await
                .unwrap()
        );
    }
    drop(ledger);
    path
}

fn nanos_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap()
}

/// An rp of schema 8 still holding the file while a newer one migrated it (the case V2's
/// trigger guards against for payouts): its statements (those of HEAD~1's
/// `sqlite/access.rs`) still run on schema 9 and read every project's rows. Project 1's old
/// `rp serve` accepts project 2's API key. Expected: the old statement fails (as V2 makes
/// old inserts fail), not find another project's key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_access_an_older_rp_cannot_authenticate_another_projects_key() {
    let path = two_projects("review-access-old-key").await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    // rp schema 8, `SqliteAccess::api_key`.
    let found = conn.query_row(
        "SELECT name, key_sha256, role, created_at, revoked_at FROM api_keys WHERE key_sha256 = ?1",
        [&"22".repeat(32)],
        |row| row.get::<_, String>(0),
    );
    assert!(
        found.is_err(),
        "an rp of schema 8 still running finds project 2's key: {found:?}"
    );
}

/// Same, the console session: an old process reads a session by its token alone, so a
/// session opened on project 2's console is accepted by project 1's old console (a browser
/// sends the cookie to every port of the host).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_access_an_older_rp_cannot_read_another_projects_session() {
    let path = two_projects("review-access-old-session").await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    // rp schema 8, `SqliteAccess::session`.
    let found = conn.query_row(
        "SELECT s.token_sha256, s.operator, o.role, s.csrf, s.created_at, s.expires_at \
         FROM sessions s JOIN operators o ON o.name = s.operator \
         WHERE s.token_sha256 = ?1 AND s.expires_at > ?2",
        rusqlite::params!["tok2", nanos_now()],
        |row| row.get::<_, String>(1),
    );
    assert!(
        found.is_err(),
        "an rp of schema 8 still running accepts project 2's session: {found:?}"
    );
}

/// Same, writes: an old `rp serve revoke-api-key backend` / `remove-operator anna` changes
/// every project's row of that name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_access_an_older_rp_cannot_change_another_projects_rows() {
    let path = two_projects("review-access-old-writes").await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    // rp schema 8, `SqliteAccess::revoke_api_key` and `remove_operator`.
    let _ = conn.execute(
        "UPDATE api_keys SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
        rusqlite::params!["backend", nanos_now()],
    );
    let _ = conn.execute("DELETE FROM sessions WHERE operator = ?1", ["anna"]);
    let _ = conn.execute("DELETE FROM operators WHERE name = ?1", ["anna"]);
    drop(conn);
    let ledger = Ledger::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    let two = ledger.access(project(2));
    let key = two.api_key(&"22".repeat(32)).await.unwrap().unwrap();
    assert_eq!(
        key.revoked_at, None,
        "project 1's old rp revoked project 2's key"
    );
    assert!(
        two.operator("anna").await.unwrap().is_some(),
        "project 1's old rp removed project 2's operator"
    );
}
