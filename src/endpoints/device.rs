//! The device verification pages (RFC 8628 §3.3): `GET /device` shows the user-code form
//! (pre-filled from `verification_uri_complete`), with the sign-in fields when this browser
//! has no session; `POST /device` with `step=code` signs the user in if needed, checks the code
//! and shows which client asks for which scopes; `step=decide` records allow or deny. Plain
//! HTML forms, no JavaScript; every form carries a CSRF token bound to the browser cookie.
//!
//! Wrong user codes are limited per address and per session (§5.1); a code is decided once.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::accounts;
use crate::accounts::sign_in::{SignIn, SignInForm};
use crate::audit::{Event, Kind};
use crate::auth_server::AuthServer;
use crate::authorize::interaction::{check_csrf, csrf_token};
use crate::authorize::{AuthorizeError, Browser};
use crate::endpoints::consent::describe;
use crate::error::Error;
use crate::http::client_ip::ClientIp;
use crate::policy::Lifetimes;
use crate::protocol::{FormParams, GrantType, ScopeSet, UserCode};
use crate::rate_limit;
use crate::security::{hash_secret, random_token, Secret};
use crate::sessions;
use crate::state::AppState;
use crate::store::{DeviceCode, DeviceDecision, Session, User};

const WRONG_CODE: &str =
    "That code is not valid, or it has expired or been used. Check the code on your device.";
const SLOW_DOWN: &str = "Too many attempts. Please wait a minute and try again.";
const FAILED_SIGN_IN: &str = "Incorrect username or password.";

/// The entry form's CSRF purpose; the decision form's is bound to the user code too.
const ENTRY: &str = "device";
const DECISION: &str = "device-decision";

pub async fn show(
    State(state): State<AppState>,
    server: AuthServer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = FormParams::from_query(query.as_deref())?;
        let now = state.now();
        let browser = Browser::from_headers(&headers, state.config.secure_cookies());
        let signed_in = sessions::current_with_user(&state, server.id(), &headers, now).await?;
        let typed = params.get("user_code").unwrap_or("");
        let mut page = entry_page(
            &state,
            &server,
            &browser.value,
            signed_in.as_ref().map(|(_, u)| u),
            typed,
            None,
            StatusCode::OK,
        );
        page.headers_mut()
            .extend(browser.set_cookie_headers(state.config.secure_cookies()));
        Ok::<_, Error>(page)
    }
    .await;
    result.unwrap_or_else(|e| AuthorizeError::page(e).render(&state.pages))
}

pub async fn submit(
    State(state): State<AppState>,
    server: AuthServer,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let form = FormParams::from_request_body(&headers, body)?;
        let browser = Browser::existing(&headers, state.config.secure_cookies());
        match form.get("step") {
            Some("code") => enter_code(&state, &server, ip, &headers, &form, browser).await,
            Some("decide") => decide(&state, &server, ip, &headers, &form, browser).await,
            _ => Err(Error::invalid_request("unknown form step")),
        }
    }
    .await;
    result.unwrap_or_else(|e| AuthorizeError::page(e).render(&state.pages))
}

/// `step=code`: sign in if needed, then check the user code and ask allow or deny.
async fn enter_code(
    state: &AppState,
    server: &AuthServer,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    form: &FormParams,
    browser: Option<String>,
) -> Result<Response, Error> {
    check_csrf(
        ENTRY,
        server.id(),
        browser.as_deref(),
        form.get("csrf_token"),
    )?;
    let browser = browser.unwrap_or_default();
    let now = state.now();
    let typed = form.get("user_code").unwrap_or("").trim();
    let (session, user, new_cookie) =
        match sessions::current_with_user(state, server.id(), headers, now).await? {
            Some((session, user)) => (session, user, None),
            None => match sign_in(state, server, ip, headers, form, now).await? {
                Ok((session, user, cookie)) => (session, user, Some(cookie)),
                Err((status, message)) => {
                    return Ok(entry_page(
                        state,
                        server,
                        &browser,
                        None,
                        typed,
                        Some(message),
                        status,
                    ))
                }
            },
        };
    let with_cookie = |mut page: Response| {
        if let Some(cookie) = &new_cookie {
            page.headers_mut()
                .append(header::SET_COOKIE, cookie.clone());
        }
        page
    };
    let (code, pending) =
        match find_pending(state, server, ip, &browser, &session, &user, typed, now).await? {
            Ok(found) => found,
            Err(page) => return Ok(with_cookie(page)),
        };
    let page = decision_page(state, server, &browser, &user, &code, &pending).await?;
    Ok(with_cookie(page))
}

/// Check the password the entry form carried (when the browser has no session) and start a
/// session, as the login page does. `Err` is the status and message for the form.
async fn sign_in(
    state: &AppState,
    server: &AuthServer,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    form: &FormParams,
    now: i64,
) -> Result<Result<(crate::store::Session, User, HeaderValue), (StatusCode, &'static str)>, Error> {
    let username = form.get("username").unwrap_or("").trim().to_string();
    let password = Secret::new(form.get("password").unwrap_or(""));
    let signed_in = accounts::sign_in::sign_in(
        state,
        SignInForm {
            server_id: server.id(),
            ip,
            headers,
            username: &username,
            password: &password,
            via: "device",
            client_id: None,
        },
        now,
    )
    .await?;
    Ok(match signed_in {
        SignIn::Limited(_) => Err((StatusCode::TOO_MANY_REQUESTS, SLOW_DOWN)),
        SignIn::Failed => Err((StatusCode::UNAUTHORIZED, FAILED_SIGN_IN)),
        SignIn::SignedIn(started) => Ok((started.session, started.user, started.cookie)),
    })
}

/// `step=decide`: the signed-in user allows or denies the request the code names.
async fn decide(
    state: &AppState,
    server: &AuthServer,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    form: &FormParams,
    browser: Option<String>,
) -> Result<Response, Error> {
    let code = UserCode::parse(form.get("user_code").unwrap_or(""))
        .ok_or_else(|| Error::invalid_request("missing or malformed user code"))?;
    check_csrf(
        DECISION,
        code.normalized(),
        browser.as_deref(),
        form.get("csrf_token"),
    )?;
    let browser = browser.unwrap_or_default();
    let now = state.now();
    let Some((session, user)) =
        sessions::current_with_user(state, server.id(), headers, now).await?
    else {
        return Ok(entry_page(
            state,
            server,
            &browser,
            None,
            &code.display(),
            Some("You are no longer signed in. Sign in and enter the code again."),
            StatusCode::UNAUTHORIZED,
        ));
    };
    // Counted like the entry form: a CSRF token is no secret to its own browser, so this form
    // must not be a way around the limits.
    let (code, pending) = match find_pending(
        state,
        server,
        ip,
        &browser,
        &session,
        &user,
        code.normalized(),
        now,
    )
    .await?
    {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let code_hash = hash_secret(code.normalized());
    let wrong = || {
        entry_page(
            state,
            server,
            &browser,
            Some(&user),
            "",
            Some(WRONG_CODE),
            StatusCode::BAD_REQUEST,
        )
    };
    let approved = match form.get("decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => return Err(Error::invalid_request("choose allow or deny")),
    };
    let decided = if approved {
        let client = state
            .store
            .client(&pending.client_id)
            .await?
            .ok_or_else(|| Error::invalid_request("unknown client"))?;
        // The device page asks for no second factor: where one is needed and the session has
        // none, it cannot approve (rather than let a password alone through).
        if !crate::mfa::Amr::parse(&session.amr).is_multi_factor()
            && crate::accounts::second_factor::needed(state, &server.server, &client, &user, false)
                .await?
        {
            return Err(Error::new(
                crate::error::ErrorCode::AccessDenied,
                "this app requires a second factor: sign in with it in this browser first \
                 (through the app's web sign-in), then enter the code again",
            )
            .with_status(StatusCode::FORBIDDEN));
        }
        // As at the authorization endpoint: the grant lives as long as its refresh tokens may.
        let lifetimes = Lifetimes::of(&state.config.tokens, &server.server, &client);
        let grant_id = random_token(16);
        state
            .store
            .insert_grant(
                &grant_id,
                server.id(),
                &client.id,
                Some(&user.id),
                &pending.scope,
                now,
                now + lifetimes.refresh_token,
                GrantType::DeviceCode,
            )
            .await?;
        let decided = state
            .store
            .decide_device_code(
                &code_hash,
                server.id(),
                DeviceDecision::Approve {
                    user_id: &user.id,
                    session_sid: &session.sid,
                    auth_time: session.auth_time,
                    grant_id: &grant_id,
                },
                now,
            )
            .await?;
        if !decided {
            // Decided elsewhere in the meantime: the grant made for it stays unused.
            state.store.revoke_grant(&grant_id, now).await?;
        }
        decided
    } else {
        state
            .store
            .decide_device_code(&code_hash, server.id(), DeviceDecision::Deny, now)
            .await?
    };
    if !decided {
        return Ok(wrong());
    }
    let kind = if approved {
        Kind::DeviceApproved
    } else {
        Kind::DeviceDenied
    };
    state.audit.record(
        Event::new(kind, now)
            .server(server.id())
            .actor(format!("ip:{ip}"))
            .subject(user.id.as_str())
            .detail("client_id", pending.client_id.as_str())
            .detail("scope", pending.scope.as_str()),
    );
    Ok(state.pages.render(
        StatusCode::OK,
        "device_done.html",
        json!({ "approved": approved }),
        &[],
        HeaderMap::new(),
    ))
}

/// The pending request the code `typed` names, counted against the wrong-code limits per
/// address and per session (RFC 8628 §5.1): only a right code gives its attempt back.
/// `Err` is the page that answers instead (the form again, 400 or 429).
#[allow(clippy::too_many_arguments)]
async fn find_pending(
    state: &AppState,
    server: &AuthServer,
    ip: std::net::IpAddr,
    browser: &str,
    session: &Session,
    user: &User,
    typed: &str,
    now: i64,
) -> Result<Result<(UserCode, DeviceCode), Response>, Error> {
    let limits = &state.config.rate_limits;
    if let Err(limited) =
        rate_limit::check_user_code(&state.store, limits, ip, &session.sid, now).await?
    {
        state.audit.record(
            Event::new(Kind::RateLimited, now)
                .server(server.id())
                .actor(format!("ip:{ip}"))
                .subject(user.id.as_str())
                .detail("limit", limited.limit),
        );
        let mut page = entry_page(
            state,
            server,
            browser,
            Some(user),
            typed,
            Some(SLOW_DOWN),
            StatusCode::TOO_MANY_REQUESTS,
        );
        page.headers_mut()
            .insert(header::RETRY_AFTER, limited.retry_after_header());
        return Ok(Err(page));
    }
    let pending = match UserCode::parse(typed) {
        Some(code) => state
            .store
            .pending_device_code(&hash_secret(code.normalized()), server.id(), now)
            .await?
            .map(|found| (code, found)),
        None => None,
    };
    let Some(found) = pending else {
        state.audit.record(
            Event::new(Kind::DeviceUserCodeFailed, now)
                .server(server.id())
                .actor(format!("ip:{ip}"))
                .subject(user.id.as_str()),
        );
        return Ok(Err(entry_page(
            state,
            server,
            browser,
            Some(user),
            typed,
            Some(WRONG_CODE),
            StatusCode::BAD_REQUEST,
        )));
    };
    rate_limit::user_code_matched(&state.store, limits, ip, &session.sid, now).await?;
    Ok(Ok(found))
}

/// The user-code form; with the sign-in fields when `user` is `None`.
fn entry_page(
    state: &AppState,
    server: &AuthServer,
    browser: &str,
    user: Option<&User>,
    typed: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    state.pages.render(
        status,
        "device.html",
        json!({
            "action": server.endpoint("/device"),
            "csrf_token": csrf_token(ENTRY, server.id(), browser),
            "user_code": typed,
            "signed_in": user.is_some(),
            "username": user.map(|u| u.username.clone()),
            "error": error,
        }),
        &[],
        HeaderMap::new(),
    )
}

/// Which client asks for what, with allow and deny.
async fn decision_page(
    state: &AppState,
    server: &AuthServer,
    browser: &str,
    user: &User,
    code: &UserCode,
    pending: &DeviceCode,
) -> Result<Response, Error> {
    let client = state
        .store
        .client(&pending.client_id)
        .await?
        .ok_or_else(|| Error::invalid_request("unknown client"))?;
    let custom = state.store.scope_descriptions(server.id()).await?;
    let scope = ScopeSet::parse(&pending.scope).map_err(|e| Error::internal(e.to_string()))?;
    let scopes: Vec<_> = scope
        .iter()
        .map(|s| {
            let (description, show_name) = describe(s, &custom);
            json!({ "name": s, "description": description, "show_name": show_name })
        })
        .collect();
    Ok(state.pages.render(
        StatusCode::OK,
        "device_confirm.html",
        json!({
            "action": server.endpoint("/device"),
            "csrf_token": csrf_token(DECISION, code.normalized(), browser),
            "user_code": code.display(),
            "client_name": client.name,
            "username": user.username.as_str(),
            "scopes": scopes,
        }),
        &[],
        HeaderMap::new(),
    ))
}
