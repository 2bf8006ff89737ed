//! A pending authorization request between /authorize and the login or consent page. It lives
//! in the database (any replica serves the next step) under the hash of a random id, and is
//! bound to one browser by the browser cookie, so a link to someone else's interaction is
//! useless. CSRF tokens derive from the interaction id and the browser cookie: only that
//! browser, on a page we rendered, can know them.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use super::request::AuthorizationRequest;
use crate::clock::UnixTime;
use crate::error::{Error, ErrorCode};
use crate::http::cookies;
use crate::protocol::FormParams;
use crate::security::{base64url, constant_time_eq, hash_secret, random_secret, sha256};
use crate::store::{Store, StoredInteraction};

/// How long a user has to sign in and consent.
pub const INTERACTION_TTL: i64 = 15 * 60;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Authenticated {
    pub user_id: String,
    pub sid: String,
    pub auth_time: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InteractionState {
    pub request: AuthorizationRequest,
    /// base64url(SHA-256(browser cookie)).
    pub browser: String,
    /// Set by a sign-in during this interaction: satisfies prompt=login and max_age.
    pub authenticated: Option<Authenticated>,
    /// Set by consent given during this interaction: satisfies prompt=consent.
    pub consented: bool,
}

/// The browser cookie: read from the request, or new (and then set on the response).
#[derive(Debug, Clone)]
pub struct Browser {
    pub value: String,
    pub is_new: bool,
}

impl Browser {
    pub fn from_headers(headers: &HeaderMap, secure: bool) -> Self {
        match cookies::get(headers, cookies::browser_cookie(secure)) {
            Some(value) if value.len() >= 32 => Self {
                value,
                is_new: false,
            },
            _ => Self {
                value: random_secret().expose().to_string(),
                is_new: true,
            },
        }
    }

    pub fn existing(headers: &HeaderMap, secure: bool) -> Option<String> {
        cookies::get(headers, cookies::browser_cookie(secure)).filter(|v| v.len() >= 32)
    }

    pub fn binding(&self) -> String {
        binding_of(&self.value)
    }

    /// `Set-Cookie` headers for a new browser cookie.
    pub fn set_cookie_headers(&self, secure: bool) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if self.is_new {
            headers.append(
                axum::http::header::SET_COOKIE,
                cookies::set(
                    cookies::browser_cookie(secure),
                    &self.value,
                    "/",
                    secure,
                    None,
                ),
            );
        }
        headers
    }
}

fn binding_of(browser: &str) -> String {
    base64url(&sha256(browser.as_bytes()))
}

/// The CSRF token of a form (`purpose`: login, consent, logout) in one browser.
pub fn csrf_token(purpose: &str, id: &str, browser: &str) -> String {
    base64url(&sha256(
        format!("portcullis-csrf\0{purpose}\0{id}\0{browser}").as_bytes(),
    ))
}

pub fn check_csrf(
    purpose: &str,
    id: &str,
    browser: Option<&str>,
    presented: Option<&str>,
) -> Result<(), Error> {
    match (browser, presented) {
        (Some(b), Some(p)) if constant_time_eq(&csrf_token(purpose, id, b), p) => Ok(()),
        _ => Err(Error::new(
            ErrorCode::AccessDenied,
            "missing or invalid CSRF token; go back and try again",
        )
        .with_status(StatusCode::FORBIDDEN)),
    }
}

pub async fn create(
    store: &Store,
    server_id: &str,
    state: &InteractionState,
    now: UnixTime,
) -> Result<String, Error> {
    let id = random_secret();
    let request = serde_json::to_string(state).map_err(Error::internal)?;
    store
        .insert_interaction(
            &hash_secret(id.expose()),
            &StoredInteraction {
                server_id: server_id.to_string(),
                request,
                csrf_hash: hash_secret(&csrf_token("login", id.expose(), &state.browser)),
                created_at: now,
                expires_at: now + INTERACTION_TTL,
            },
        )
        .await?;
    Ok(id.expose().to_string())
}

/// Load an interaction of this server, for this browser.
pub async fn load(
    store: &Store,
    server_id: &str,
    id: &str,
    browser: Option<&str>,
    now: UnixTime,
) -> Result<InteractionState, Error> {
    let expired = || {
        Error::invalid_request("this sign-in request is unknown or has expired; go back to the application and start again")
    };
    let stored = store
        .interaction(&hash_secret(id), now)
        .await?
        .filter(|i| i.server_id == server_id)
        .ok_or_else(expired)?;
    let state: InteractionState = serde_json::from_str(&stored.request).map_err(Error::internal)?;
    let bound = browser.is_some_and(|b| constant_time_eq(&binding_of(b), &state.browser));
    if !bound {
        return Err(expired());
    }
    Ok(state)
}

/// A form posted from one of our interaction pages, CSRF-checked, with its interaction loaded.
pub struct Submission {
    pub id: String,
    pub form: FormParams,
    pub browser: String,
    pub state: InteractionState,
}

pub async fn submitted(
    store: &Store,
    server_id: &str,
    purpose: &str,
    headers: &HeaderMap,
    secure_cookies: bool,
    body: Result<Bytes, BytesRejection>,
    now: UnixTime,
) -> Result<Submission, Error> {
    let form = FormParams::from_request_body(headers, body)?;
    let id = form.require("interaction")?.to_string();
    let browser = Browser::existing(headers, secure_cookies);
    check_csrf(purpose, &id, browser.as_deref(), form.get("csrf_token"))?;
    let state = load(store, server_id, &id, browser.as_deref(), now).await?;
    Ok(Submission {
        id,
        form,
        browser: browser.unwrap_or_default(),
        state,
    })
}

pub async fn save(store: &Store, id: &str, state: &InteractionState) -> Result<(), Error> {
    let request = serde_json::to_string(state).map_err(Error::internal)?;
    store.update_interaction(&hash_secret(id), &request).await?;
    Ok(())
}
