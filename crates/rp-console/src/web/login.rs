//! `/login` and `/logout`.

use std::time::SystemTime;

use axum::Extension;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use rp_ledger::Session;
use serde::Deserialize;

use super::layout::{notice, page};
use super::{html, ledger_failed, problem};
use crate::Desk;
use crate::auth::{
    LOGIN_COOKIE, Me, SESSION_COOKIE, cookie, decoy_hash, new_token, same_token, set_cookie,
    token_sha256, verify_password,
};

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

/// Where to go after signing in: a path of this site only (never `//host` or a full URL).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/payments",
    }
}

/// The login form, with a fresh CSRF token tied to a cookie of its own.
pub(crate) async fn form(State(desk): State<Desk>, Query(next): Query<Next>) -> Response {
    login_page(&desk, next.next.as_deref(), None, StatusCode::OK)
}

fn login_page(
    desk: &Desk,
    next: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let Ok(token) = new_token() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "no random numbers from the system",
        );
    };
    let body = html! {
        h1 { "Sign in" }
        @if let Some(error) = error { (notice("error", error)) }
        form.card method="post" action="/login" {
            input type="hidden" name="csrf" value=(token);
            input type="hidden" name="next" value=(safe_next(next));
            div.field {
                label for="name" { "Operator" }
                input #name name="name" autocomplete="username" required autofocus;
            }
            div.field {
                label for="password" { "Password" }
                input #password name="password" type="password" autocomplete="current-password" required;
            }
            div.field {
                label for="code" { "Two-factor code (if yours is on)" }
                input #code name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="7";
            }
            button type="submit" { "Sign in" }
        }
    };
    let mut response = html(page("Sign in", None, "", body));
    *response.status_mut() = status;
    let cookie = set_cookie(
        LOGIN_COOKIE,
        &token,
        Some(3600),
        desk.settings().secure_cookies,
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
pub(crate) struct Credentials {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    next: Option<String>,
}

/// Signs an operator in: checks the login form's token, the guard against guessing, the
/// password (taking as long when the operator does not exist), then opens a session.
pub(crate) async fn submit(
    State(desk): State<Desk>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    let next = form.next.as_deref();
    let login_token = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !same_token(login_token, &form.csrf) {
        return login_page(
            &desk,
            next,
            Some("This form was out of date or not sent from this site; try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let name = form.name.trim().to_owned();
    if rp_ledger::check_operator_name(&name).is_err() {
        // Not a name an operator can have: answered as a wrong password, after as long, and
        // never logged as given (it could carry line breaks).
        let password = form.password;
        let _ = tokio::task::spawn_blocking(move || verify_password(decoy_hash(), &password)).await;
        let shown: String = name.chars().take(64).collect();
        tracing::warn!(name = ?shown, "login failed: not an operator name");
        return login_page(
            &desk,
            next,
            Some("Wrong operator name, password or two-factor code."),
            StatusCode::UNAUTHORIZED,
        );
    }
    if let Err(wait) = desk.logins().begin(&name) {
        tracing::warn!(operator = %name, "login refused: too many failed attempts");
        return login_page(
            &desk,
            next,
            Some(&format!(
                "Too many failed attempts; try again in {} minutes.",
                wait.as_secs().div_ceil(60).max(1)
            )),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let account = match desk.access().operator(&name).await {
        Ok(account) => account,
        Err(error) => return ledger_failed(None, &error),
    };
    let hash = account
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |a| a.password_hash.clone());
    let password = form.password;
    let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .unwrap_or(false);
    // The second factor, when the operator has one: a code of now, not used before.
    let second_factor = |account: &rp_ledger::OperatorAccount| match &account.totp_secret {
        None => true,
        Some(secret) => {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            crate::totp::verify(secret, &form.code, now)
                .is_some_and(|step| desk.logins().take_totp_step(&account.name, step))
        }
    };
    let Some(account) = account.filter(|a| matches && second_factor(a)) else {
        tracing::warn!(operator = %name, "login failed: wrong name, password or code");
        return login_page(
            &desk,
            next,
            Some("Wrong operator name, password or two-factor code."),
            StatusCode::UNAUTHORIZED,
        );
    };
    desk.logins().succeeded(&name);
    let (Ok(token), Ok(csrf)) = (new_token(), new_token()) else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "no random numbers from the system",
        );
    };
    let now = SystemTime::now();
    let ttl = desk.settings().session_ttl;
    let session = Session::new(token_sha256(&token), &account.name, csrf, now, now + ttl);
    match desk
        .access()
        .open_session(session, &account.password_hash)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            // The password changed (or the operator was removed) while this login checked it.
            tracing::warn!(operator = %account.name, "login raced a change of the operator; no session");
            return login_page(
                &desk,
                next,
                Some("Your account changed while you signed in; sign in again."),
                StatusCode::CONFLICT,
            );
        }
        Err(error) => return ledger_failed(None, &error),
    }
    tracing::info!(operator = %account.name, role = %account.role, "signed in");
    let secure = desk.settings().secure_cookies;
    let mut response = Redirect::to(safe_next(next)).into_response();
    for cookie in [
        set_cookie(SESSION_COOKIE, &token, Some(ttl.as_secs()), secure),
        set_cookie(LOGIN_COOKIE, "", Some(0), secure),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Signs out: the session is closed in the ledger (on every instance), the cookie removed.
pub(crate) async fn logout(State(desk): State<Desk>, Extension(me): Extension<Me>) -> Response {
    if let Err(error) = desk.access().close_session(&me.token_sha256).await {
        return ledger_failed(Some(&me), &error);
    }
    tracing::info!(operator = %me.name, "signed out");
    let mut response = Redirect::to("/login").into_response();
    let cookie = set_cookie(SESSION_COOKIE, "", Some(0), desk.settings().secure_cookies);
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(
            safe_next(Some("/payments?state=success")),
            "/payments?state=success"
        );
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "payments",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), "/payments", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/payments");
    }
}
