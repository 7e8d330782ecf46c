//! Every synchronous check of the Gate endpoints, over HTTP.

use rp_sign::{SecretKey, Signer};
use rp_sim::{DEFAULT_PROJECT_ID, OPERATORS_PATH, PAYOUT_PATH, STATUS_PATH};
use serde_json::{Value, json};

use crate::{Answer, Env, payout_request};

fn assert_rejected(answer: &Answer, http: u16, code: &str) {
    assert_eq!(answer.status, http, "{:?}", answer.json);
    assert_eq!(answer.json["status"], "error", "{:?}", answer.json);
    assert_eq!(answer.code(), code, "{:?}", answer.json);
    assert_eq!(answer.json["errors"][0]["code"], code, "{:?}", answer.json);
}

fn remove(request: &mut Value, path: &str) {
    let (parent, leaf) = path.rsplit_once('.').unwrap();
    let mut node = &mut *request;
    for part in parent.split('.') {
        node = node.get_mut(part).unwrap();
    }
    node.as_object_mut().unwrap().remove(leaf).unwrap();
}

#[tokio::test]
async fn invalid_json_is_2003() {
    let env = Env::start().await;
    for body in [&b"{not json"[..], b"[1,2,3]", b"\"text\"", b""] {
        let answer = env.post_raw(PAYOUT_PATH, body.to_vec()).await;
        assert_rejected(&answer, 400, "2003");
        assert!(
            answer.json["message"]
                .as_str()
                .unwrap()
                .starts_with("Invalid JSON string"),
            "{:?}",
            answer.json
        );
    }
    for path in [STATUS_PATH, OPERATORS_PATH] {
        assert_rejected(&env.post_raw(path, "{").await, 400, "2003");
    }
    assert!(env.sim.payments().is_empty());
}

#[tokio::test]
async fn missing_fields_are_2004_naming_the_field() {
    let env = Env::start().await;
    for field in [
        "general.payment_id",
        "customer.id",
        "account.number",
        "payment.amount",
        "payment.currency",
    ] {
        let mut request = payout_request("missing-field", "77011234567");
        remove(&mut request, field);
        let answer = env.post_signed(PAYOUT_PATH, &request).await;
        assert_rejected(&answer, 400, "2004");
        assert_eq!(
            answer.json["message"],
            format!("Required field not provided: {field}")
        );
        assert_eq!(answer.json["errors"][0]["field"], field);
    }
    // A field of the wrong type is named too.
    let mut request = payout_request("wrong-type", "77011234567");
    request["payment"]["amount"] = json!("1500.00");
    let answer = env.post_signed(PAYOUT_PATH, &request).await;
    assert_rejected(&answer, 400, "2004");
    assert_eq!(answer.json["errors"][0]["field"], "payment.amount");
    // Without general.project_id nothing can be signed or looked up.
    let answer = env
        .post_raw(
            PAYOUT_PATH,
            r#"{"general":{"payment_id":"p","signature":"x"}}"#,
        )
        .await;
    assert_rejected(&answer, 400, "2004");
    assert_eq!(answer.json["errors"][0]["field"], "general.project_id");
    let answer = env.post_raw(PAYOUT_PATH, r#"{"customer":{}}"#).await;
    assert_eq!(answer.json["errors"][0]["field"], "general");
    // The status request needs its payment ID.
    let answer = env
        .post_signed(
            STATUS_PATH,
            &json!({"general": {"project_id": DEFAULT_PROJECT_ID}}),
        )
        .await;
    assert_rejected(&answer, 400, "2004");
    assert_eq!(answer.json["errors"][0]["field"], "general.payment_id");
    assert!(env.sim.payments().is_empty());
}

#[tokio::test]
async fn unknown_project_is_2442() {
    let env = Env::start().await;
    let mut request = payout_request("unknown-project", "77011234567");
    request["general"]["project_id"] = json!(9999);
    let answer = env.post_signed(PAYOUT_PATH, &request).await;
    assert_rejected(&answer, 403, "2442");
    assert_eq!(answer.json["project_id"], 9999);
    assert_eq!(answer.json["payment_id"], "unknown-project");
    assert!(env.sim.payments().is_empty());
}

#[tokio::test]
async fn empty_signature_is_3262_and_invalid_is_3261() {
    let env = Env::start().await;
    let request = payout_request("signature", "77011234567");
    // Not signed at all.
    let answer = env
        .post_raw(PAYOUT_PATH, serde_json::to_vec(&request).unwrap())
        .await;
    assert_rejected(&answer, 403, "3262");
    // An empty signature.
    let mut empty = request.clone();
    empty["general"]["signature"] = json!("");
    let answer = env
        .post_raw(PAYOUT_PATH, serde_json::to_vec(&empty).unwrap())
        .await;
    assert_rejected(&answer, 403, "3262");
    // Signed with another key.
    let other = Signer::new(&SecretKey::from("not-the-key"));
    let answer = env
        .post_raw(PAYOUT_PATH, other.sign_request_body(&request).unwrap())
        .await;
    assert_rejected(&answer, 403, "3261");
    // Signed, then changed.
    let mut tampered: Value =
        serde_json::from_slice(&env.signer.sign_request_body(&request).unwrap()).unwrap();
    tampered["payment"]["amount"] = json!(999_999);
    let answer = env
        .post_raw(PAYOUT_PATH, serde_json::to_vec(&tampered).unwrap())
        .await;
    assert_rejected(&answer, 403, "3261");
    // Not Base64 at all.
    let mut garbage = request.clone();
    garbage["general"]["signature"] = json!("not a signature");
    let answer = env
        .post_raw(PAYOUT_PATH, serde_json::to_vec(&garbage).unwrap())
        .await;
    assert_rejected(&answer, 403, "3261");
    // The other endpoints check signatures too.
    let unsigned = json!({"general": {"project_id": DEFAULT_PROJECT_ID}});
    let answer = env
        .post_raw(OPERATORS_PATH, serde_json::to_vec(&unsigned).unwrap())
        .await;
    assert_rejected(&answer, 403, "3262");
    let status = json!({"general": {"project_id": DEFAULT_PROJECT_ID, "payment_id": "x"}});
    let answer = env
        .post_raw(STATUS_PATH, other.sign_request_body(&status).unwrap())
        .await;
    assert_rejected(&answer, 403, "3261");
    assert!(env.sim.payments().is_empty());
}

#[tokio::test]
async fn currency_other_than_kzt_is_3023() {
    let env = Env::start().await;
    let mut request = payout_request("usd", "77011234567");
    request["payment"]["currency"] = json!("USD");
    let answer = env.post_signed(PAYOUT_PATH, &request).await;
    assert_rejected(&answer, 400, "3023");
    assert_eq!(answer.json["errors"][0]["field"], "payment.currency");
    assert!(env.sim.payments().is_empty());
}

#[tokio::test]
async fn amount_over_the_limit_or_zero_is_3104() {
    let env = Env::start_with(|b| b.amount_limit(1_000_000)).await;
    let mut request = payout_request("over", "77011234567");
    request["payment"]["amount"] = json!(1_000_001);
    let answer = env.post_signed(PAYOUT_PATH, &request).await;
    assert_rejected(&answer, 400, "3104");
    assert!(
        answer.json["message"].as_str().unwrap().contains("1000001"),
        "{:?}",
        answer.json
    );
    request["payment"]["amount"] = json!(0);
    assert_rejected(&env.post_signed(PAYOUT_PATH, &request).await, 400, "3104");
    // Exactly the limit is accepted.
    request["payment"]["amount"] = json!(1_000_000);
    assert_eq!(env.post_signed(PAYOUT_PATH, &request).await.status, 200);
    assert_eq!(env.sim.payments().len(), 1);
}

#[tokio::test]
async fn malformed_phone_numbers_are_20102() {
    let env = Env::start().await;
    for number in [
        "87011234567",  // trunk prefix, not the canonical form
        "+77011234567", // plus sign
        "7701123456",   // 10 digits
        "79121234567",  // Russian
        "77271234567",  // Almaty landline
        "77031234567",  // unassigned prefix
        "7701123456a",
    ] {
        let answer = env.payout("phone", number).await;
        assert_rejected(&answer, 400, "20102");
        assert_eq!(answer.json["errors"][0]["field"], "account.number");
        let message = answer.json["message"].as_str().unwrap();
        assert!(
            message.starts_with("Incorrect account data entered"),
            "{message}"
        );
    }
    // A number outside every payout operator's range, unless the operator is named.
    let answer = env.payout("kulan", "77601234567").await;
    assert_rejected(&answer, 400, "20102");
    let mut named = payout_request("kulan", "77601234567");
    named["account"]["service_provider"] = json!("ALTEL");
    assert_eq!(env.post_signed(PAYOUT_PATH, &named).await.status, 200);
    assert_eq!(env.sim.payments().len(), 1);
}

#[tokio::test]
async fn invalid_payment_id_is_3024() {
    let env = Env::start().await;
    // (A `;` cannot be signed any more: rp-sign refuses it, so it is a signature matter.)
    for bad in [" padded".to_owned(), "x".repeat(256)] {
        let answer = env.payout(&bad, "77011234567").await;
        assert_rejected(&answer, 400, "3024");
        assert_eq!(answer.json["errors"][0]["field"], "general.payment_id");
    }
    assert!(env.sim.payments().is_empty());
}

#[tokio::test]
async fn duplicate_payment_ids_are_3041_whatever_the_status() {
    let env = Env::start().await;
    let first = env.payout("dup", "77011234567").await;
    assert_eq!(first.status, 200);
    // While processing.
    let again = env.payout("dup", "77011234567").await;
    assert_rejected(&again, 409, "3041");
    assert_eq!(again.json["payment_id"], "dup");
    // After success.
    env.wait_status("dup", "success").await;
    assert_rejected(&env.payout("dup", "77011234567").await, 409, "3041");
    // After decline (final, not `error`): still a duplicate.
    assert_eq!(env.payout("declined", "77011230001").await.status, 200);
    env.wait_status("declined", "decline").await;
    assert_rejected(&env.payout("declined", "77011230001").await, 409, "3041");
    assert_eq!(env.sim.payments().len(), 2);
    // The same ID in another payout is still one payment.
    assert_eq!(env.sim.payment("dup").unwrap().accepted_requests, 1);
}

#[tokio::test]
async fn a_payment_in_status_error_may_be_resent() {
    let env = Env::start().await;
    let first = env.payout("resend", "77011230006").await;
    assert_eq!(first.status, 200);
    env.wait_status("resend", "error").await;
    let second = env.payout("resend", "77011230006").await;
    assert_eq!(second.status, 200, "{:?}", second.json);
    assert_ne!(second.json["request_id"], first.json["request_id"]);
    let status = env.wait_status("resend", "success").await;
    assert_eq!(status.json["operations"].as_array().unwrap().len(), 2);
    let payment = env.sim.payment("resend").unwrap();
    assert_eq!(payment.accepted_requests, 2);
    assert_eq!(env.sim.payments().len(), 1);
    // Now it is a success: no more resends.
    assert_rejected(&env.payout("resend", "77011230006").await, 409, "3041");
}

#[tokio::test]
async fn status_of_an_unknown_payment_is_3061() {
    // By default: HTTP 200 with a body signed like a status response, carrying the code.
    let env = Env::start().await;
    let answer = env.status("never-sent").await;
    assert_rejected(&answer, 200, "3061");
    assert_eq!(answer.json["message"], "Transaction not found");
    assert_eq!(answer.json["errors"][0]["message"], "Transaction not found");
    assert_eq!(answer.json["payment_id"], "never-sent");
    assert_eq!(answer.json["project_id"], DEFAULT_PROJECT_ID);
    assert!(answer.json.get("payment").is_none());
    Signer::new(&SecretKey::from(rp_sim::DEFAULT_SECRET_KEY))
        .verify_value(&answer.json)
        .expect("the 3061 answer is signed");
    let logged = env.sim.requests().pop().unwrap();
    assert_eq!(logged.http_status, Some(200));
    assert_eq!(logged.code.as_deref(), Some("3061"));
}

#[tokio::test]
async fn not_found_404_keeps_the_unsigned_404_form() {
    let env = Env::start_with(|b| b.not_found_404(true)).await;
    let answer = env.status("never-sent").await;
    assert_rejected(&answer, 404, "3061");
    assert_eq!(answer.json["message"], "Transaction not found");
    assert_eq!(answer.json["payment_id"], "never-sent");
    assert!(answer.json.get("signature").is_none());
    // Switched at run time through /_sim/config, both ways.
    let set = crate::send(
        env.client
            .post(env.url("/_sim/config"))
            .body(r#"{"not_found_404":false}"#),
    )
    .await;
    assert_eq!(set.status, 200, "{:?}", set.json);
    assert_eq!(set.json["not_found_404"], false);
    assert_rejected(&env.status("never-sent").await, 200, "3061");
    env.sim.set_not_found_404(true);
    assert_rejected(&env.status("never-sent").await, 404, "3061");
}

#[tokio::test]
async fn operator_list_has_the_five_operators() {
    let env = Env::start().await;
    let answer = env
        .post_signed(
            OPERATORS_PATH,
            &json!({"general": {"project_id": DEFAULT_PROJECT_ID}}),
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json["project_id"], DEFAULT_PROJECT_ID);
    let ids: Vec<&str> = answer.json["operators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ACTIV", "ALTEL", "BEELINE", "KCELL", "TELE2"]);
    assert_eq!(answer.json["operators"][2]["name"], "Beeline");
}

#[tokio::test]
async fn accepted_payout_answer_and_request_log() {
    let env = Env::start().await;
    let answer = env.payout("logged", "77011234567").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json["status"], "success");
    assert_eq!(answer.json["project_id"], DEFAULT_PROJECT_ID);
    assert_eq!(answer.json["payment_id"], "logged");
    let request_id = answer.json["request_id"].as_str().unwrap();
    assert_eq!(request_id.len(), 49, "{request_id}");
    env.payout("logged", "77011234567").await;
    let log = env.sim.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].path, PAYOUT_PATH);
    assert_eq!(log[0].http_status, Some(200));
    assert_eq!(log[0].code, None);
    assert_eq!(log[1].http_status, Some(409));
    assert_eq!(log[1].code.as_deref(), Some("3041"));
    assert_eq!(log[1].payment_id.as_deref(), Some("logged"));
}
