//! Configuration from the environment: clear errors, no secret in them.

use rp_payout::{Client, Config, Error};

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

fn error(pairs: &[(&str, &str)]) -> (String, String) {
    match Config::from_env_map(env(pairs)) {
        Err(Error::Config { setting, reason }) => (setting.to_owned(), reason),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn every_missing_or_malformed_variable_is_named() {
    let (setting, reason) = error(&[("RP_SECRET_KEY", "k")]);
    assert_eq!(setting, "RP_PROJECT_ID");
    assert!(reason.contains("is not set"), "{reason}");

    let (setting, reason) = error(&[("RP_PROJECT_ID", "12ab"), ("RP_SECRET_KEY", "k")]);
    assert_eq!(setting, "RP_PROJECT_ID");
    assert!(
        reason.contains("\"12ab\" is not a positive integer"),
        "{reason}"
    );

    let (setting, _) = error(&[("RP_PROJECT_ID", "0"), ("RP_SECRET_KEY", "k")]);
    assert_eq!(setting, "RP_PROJECT_ID");

    let (setting, reason) = error(&[("RP_PROJECT_ID", "1234")]);
    assert_eq!(setting, "RP_SECRET_KEY");
    assert!(reason.contains("is not set"), "{reason}");

    let (setting, reason) = error(&[("RP_PROJECT_ID", "1234"), ("RP_SECRET_KEY", "  ")]);
    assert_eq!(setting, "RP_SECRET_KEY");
    assert!(reason.contains("empty"), "{reason}");

    let (setting, reason) = error(&[("RP_PROJECT_ID", "1234"), ("RP_SECRET_KEY", "topsecret ")]);
    assert_eq!(setting, "RP_SECRET_KEY");
    assert!(
        !reason.contains("topsecret"),
        "the secret never appears: {reason}"
    );

    let (setting, reason) = error(&[
        ("RP_PROJECT_ID", "1234"),
        ("RP_SECRET_KEY", "k"),
        ("RP_BASE_URL", "api.rocketpay.kz"),
    ]);
    assert_eq!(setting, "RP_BASE_URL");
    assert!(
        reason.contains("not an http:// or https:// URL"),
        "{reason}"
    );
}

#[test]
fn a_good_environment_builds_a_client_that_hides_its_secret() {
    let config = Config::from_env_map(env(&[
        ("RP_PROJECT_ID", " 1234 "),
        ("RP_SECRET_KEY", "very-secret-value"),
        ("RP_BASE_URL", "http://127.0.0.1:1"),
    ]))
    .unwrap();
    assert_eq!(config.project_id.get(), 1234);
    assert_eq!(config.base_url, "http://127.0.0.1:1");
    let client = Client::new(config).unwrap();
    let shown = format!("{client:?}");
    assert!(!shown.contains("very-secret-value"), "{shown}");
    assert!(shown.contains("1234"), "{shown}");
}
