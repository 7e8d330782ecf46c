//! Review of schema 9 (operators and API keys per project) through `rp serve`'s commands.

use crate::{rp_with, stderr, stdout};

/// A shared ledger with an operator `anna` made before schema 9 (bound to no project). The
/// warning at every command says: `rp serve adopt-access` binds them, or each project adds
/// its own. An administrator adds anna again for each project, as told. The unbound anna can
/// then never be bound (each project has the name): the warning says so, and that `rp serve
/// remove-unbound-access` removes her; after that it stops. (Found by review: the first
/// version offered no way to remove her, and kept blaming the other projects.)
#[test]
fn review_access_the_advised_remedy_ends_the_unbound_warning() {
    let path = crate::fresh_ledger();
    let ledger = format!("sqlite:{}", path.display());
    let env = [("RP_LEDGER", ledger.as_str()), ("RP_PROJECT_ID", "1234")];
    let other = [("RP_LEDGER", ledger.as_str()), ("RP_PROJECT_ID", "5678")];
    assert!(rp_with(&["serve", "api-keys"], &env, b"").status.success());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "INSERT INTO webhook_endpoints (project_id, url, secret, created_at) \
             VALUES (5678, 'https://example.kz/h', 'whsec_x', 0);
         INSERT INTO project_operators (project_id, name, password_hash, role, updated_at) \
             VALUES (0, 'anna', '$argon2id$v=19$old', 'pay', 0);",
    )
    .unwrap();
    drop(conn);
    let first = rp_with(&["serve", "operators"], &env, b"");
    assert!(
        stderr(&first).contains("each project then adds its own"),
        "{}",
        stderr(&first)
    );
    for project in [&env, &other] {
        let mut with_password = project.to_vec();
        with_password.push(("RP_OPERATOR_PASSWORD", "a-long-enough-password-1"));
        let added = rp_with(
            &["serve", "add-operator", "anna", "--role", "pay"],
            &with_password,
            b"",
        );
        assert!(added.status.success(), "{}", stderr(&added));
    }
    // Each project has an anna of its own: the old one cannot be bound, and the warning says
    // so and how to remove it.
    let adopted = rp_with(&["serve", "adopt-access"], &env, b"");
    assert!(adopted.status.success(), "{}", stderr(&adopted));
    assert!(
        stdout(&adopted).contains("remove-unbound-access"),
        "{}",
        stdout(&adopted)
    );
    let listed = rp_with(&["serve", "operators"], &env, b"");
    assert!(
        stderr(&listed).contains("of the same names"),
        "{}",
        stderr(&listed)
    );
    let removed = rp_with(&["serve", "remove-unbound-access"], &env, b"");
    assert!(removed.status.success(), "{}", stderr(&removed));
    assert!(
        stdout(&removed).contains("1 operator(s) and 0 API key(s) without a project removed"),
        "{}",
        stdout(&removed)
    );
    let listed = rp_with(&["serve", "operators"], &env, b"");
    assert!(stdout(&listed).starts_with("anna"), "{}", stdout(&listed));
    assert!(
        !stderr(&listed).contains("belong to no project and are refused"),
        "the warning stays for good after the advised remedy: {}",
        stderr(&listed)
    );
}
