//! The second-factor page: `GET /mfa?interaction=…` asks the signed-in user for a code from
//! their authenticator app (or a recovery code), or, when they have no factor yet and one is
//! needed, shows a QR code to enrol one; `POST /mfa` checks the code, adds the factor to the
//! session (step-up: the session keeps its id and password factor) and resumes the
//! authorization request. Works without JavaScript.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use crate::accounts::second_factor::{self, Against, Checked, Context, Presented};
use crate::audit::{Event, Kind};
use crate::auth_server::AuthServer;
use crate::authorize::interaction::{self, csrf_token, Authenticated, InteractionState};
use crate::authorize::{AuthorizeError, Browser};
use crate::clock::UnixTime;
use crate::error::Error;
use crate::http::client_ip::ClientIp;
use crate::mfa::{base32, enrol, qr, totp};
use crate::protocol::FormParams;
use crate::sessions;
use crate::state::AppState;
use crate::store::{MfaFactor, Session, User, TOTP};

const WRONG: &str = "That code is not right. Try again.";
const MALFORMED: &str = "Enter the six-digit code from your app, or a recovery code.";
const SLOW_DOWN: &str = "Too many sign-in attempts. Please wait a minute and try again.";

/// What the page asks for.
pub(crate) enum Step {
    /// The user has a factor: a code (or a recovery code).
    Verify,
    /// No factor yet: enrol this pending one.
    Enrol(MfaFactor),
}

pub async fn show(
    State(state): State<AppState>,
    server: AuthServer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = FormParams::from_query(query.as_deref())?;
        let id = params.require("interaction")?.to_string();
        let now = state.now();
        let browser = Browser::existing(&headers, state.config.secure_cookies());
        let loaded =
            interaction::load(&state.store, server.id(), &id, browser.as_deref(), now).await?;
        let (_, user) = signed_in(&state, &server, &headers, now).await?;
        let step = step_for(&state, &user, now).await?;
        let page = Page {
            id: &id,
            browser: browser.as_deref().unwrap_or(""),
            loaded: &loaded,
            user: &user,
        };
        render(&state, &server, &page, &step, None).await
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
    match verify(&state, &server, ip, &headers, body).await {
        Ok(response) => response,
        Err(e) => AuthorizeError::page(e).render(&state.pages),
    }
}

async fn verify(
    state: &AppState,
    server: &AuthServer,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Error> {
    let now = state.now();
    let submission = interaction::submitted(
        &state.store,
        server.id(),
        "mfa",
        headers,
        state.config.secure_cookies(),
        body,
        now,
    )
    .await?;
    let (session, user) = signed_in(state, server, headers, now).await?;
    let id = submission.id.as_str();
    let mut loaded = submission.state.clone();
    let page = Page {
        id,
        browser: &submission.browser,
        loaded: &submission.state,
        user: &user,
    };
    let step = step_for(state, &user, now).await?;
    let otp = submission.form.get("otp").unwrap_or("").trim();
    let recovery_code = submission.form.get("recovery_code").unwrap_or("").trim();
    let presented = match (otp.is_empty(), recovery_code.is_empty()) {
        (false, _) => Presented::Totp(otp),
        (true, false) => Presented::RecoveryCode(recovery_code),
        (true, true) => Presented::Totp(""),
    };
    let against = match &step {
        Step::Verify => Against::Enrolled,
        Step::Enrol(factor) => Against::Pending(factor),
    };
    let cx = Context {
        server_id: server.id(),
        ip,
        via: "mfa",
    };
    let factor = match second_factor::check(state, cx, &user, presented, against, now).await? {
        Checked::Accepted(factor) => factor,
        Checked::Malformed => {
            let mut page = render(state, server, &page, &step, Some(MALFORMED)).await?;
            *page.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(page);
        }
        Checked::Refused => {
            let mut page = render(state, server, &page, &step, Some(WRONG)).await?;
            *page.status_mut() = StatusCode::UNAUTHORIZED;
            return Ok(page);
        }
        Checked::Limited(limited) => {
            let mut page = render(state, server, &page, &step, Some(SLOW_DOWN)).await?;
            *page.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            page.headers_mut()
                .insert(header::RETRY_AFTER, limited.retry_after_header());
            return Ok(page);
        }
    };
    // Enrolment completes only now, after a valid code.
    let codes = match &step {
        Step::Verify => None,
        Step::Enrol(pending) => {
            if !state
                .store
                .confirm_mfa_factor(&pending.id, &user.id, now)
                .await?
            {
                return Err(Error::invalid_request(
                    "this enrolment was replaced or removed; go back and start again",
                ));
            }
            state.audit.record(
                Event::new(Kind::MfaEnrolled, now)
                    .server(server.id())
                    .actor(format!("user:{}", user.id))
                    .subject(user.id.as_str())
                    .detail("factor", pending.id.as_str())
                    .detail("kind", TOTP),
            );
            let codes = enrol::recovery_codes(&state.store, &user.id, now).await?;
            state.audit.record(
                Event::new(Kind::MfaRecoveryCodesGenerated, now)
                    .server(server.id())
                    .actor(format!("user:{}", user.id))
                    .subject(user.id.as_str())
                    .detail("count", codes.len()),
            );
            Some(codes)
        }
    };
    sessions::add_factor(state, &session, factor, now).await?;
    // A factor presented during this interaction satisfies prompt=login and max_age as the
    // password did.
    loaded.authenticated = Some(Authenticated {
        user_id: user.id.clone(),
        sid: session.sid.clone(),
        auth_time: now,
    });
    interaction::save(&state.store, id, &loaded).await?;
    let resume = server.endpoint("/authorize/resume");
    match codes {
        // Shown once, before the user goes on.
        Some(codes) => Ok(state.pages.render(
            StatusCode::OK,
            "mfa_recovery_codes.html",
            json!({
                "action": resume,
                "interaction": id,
                "codes": codes.iter().map(|c| c.expose()).collect::<Vec<_>>(),
            }),
            &form_targets(&loaded),
            HeaderMap::new(),
        )),
        None => Ok(Redirect::to(&format!("{resume}?interaction={id}")).into_response()),
    }
}

/// The session of this browser and its user: the second factor follows a password.
pub(crate) async fn signed_in(
    state: &AppState,
    server: &AuthServer,
    headers: &HeaderMap,
    now: UnixTime,
) -> Result<(Session, User), Error> {
    sessions::current_with_user(state, server.id(), headers, now)
        .await?
        .filter(|(_, u)| !u.disabled)
        .ok_or_else(|| {
            Error::invalid_request(
                "you are not signed in; go back to the application and start again",
            )
        })
}

/// Verify when the user has a factor; otherwise enrol, reusing a pending enrolment younger
/// than an interaction (a reload shows the same secret as the app scanned).
pub(crate) async fn step_for(state: &AppState, user: &User, now: UnixTime) -> Result<Step, Error> {
    let factors = state.store.mfa_factors_of(&user.id).await?;
    if factors.iter().any(|f| f.confirmed_at.is_some())
        || !state.store.passkeys_of(&user.id).await?.is_empty()
    {
        return Ok(Step::Verify);
    }
    let pending = factors
        .into_iter()
        .rfind(|f| f.kind == TOTP && f.created_at > now - interaction::INTERACTION_TTL);
    if let Some(pending) = pending {
        return Ok(Step::Enrol(pending));
    }
    state.store.delete_pending_mfa_factors(&user.id).await?;
    let keks = state.keys.keks()?;
    let new = enrol::totp(&state.store, keks, &user.id, false, now).await?;
    Ok(Step::Enrol(new.factor))
}

pub(crate) struct Page<'a> {
    pub id: &'a str,
    pub browser: &'a str,
    pub loaded: &'a InteractionState,
    pub user: &'a User,
}

pub(crate) async fn render(
    state: &AppState,
    server: &AuthServer,
    page: &Page<'_>,
    step: &Step,
    error: Option<&str>,
) -> Result<Response, Error> {
    let client_name = state
        .store
        .client(&page.loaded.request.client_id)
        .await?
        .map(|c| c.name)
        .unwrap_or_default();
    let mut context = json!({
        "action": server.endpoint("/mfa"),
        "interaction": page.id,
        "csrf_token": csrf_token("mfa", page.id, page.browser),
        "client_name": client_name,
        "username": page.user.username,
        "error": error,
        "enroll": matches!(step, Step::Enrol(_)),
        "passkey_action": server.endpoint("/mfa/passkey"),
        "has_passkey": !state.store.passkeys_of(&page.user.id).await?.is_empty(),
        "has_totp": state
            .store
            .mfa_factors_of(&page.user.id)
            .await?
            .iter()
            .any(|f| f.kind == TOTP && f.confirmed_at.is_some()),
    });
    if let Step::Enrol(pending) = step {
        let keks = state.keys.keks()?;
        let secret = crate::mfa::secret::open(
            keks,
            &pending.secret_storage,
            &pending.secret,
            &page.user.id,
            &pending.id,
        )
        .map_err(Error::internal)?;
        let issuer = totp::issuer_label(&state.config.issuer);
        let uri = totp::otpauth_uri(&issuer, &page.user.username, &secret);
        context["qr_svg"] = json!(qr::svg(&uri).map_err(Error::internal)?);
        context["secret"] = json!(base32::encode(&secret));
    }
    Ok(state.pages.render(
        StatusCode::OK,
        "mfa.html",
        context,
        // The form's POST ends, through redirects, at the client (CSP form-action).
        &form_targets(page.loaded),
        HeaderMap::new(),
    ))
}

/// The origin the interaction's redirects end at: CSP `form-action` covers the redirects that
/// follow a form submission.
pub(crate) fn form_targets(loaded: &InteractionState) -> Vec<String> {
    crate::http::pages::form_target(&loaded.request.redirect_uri)
        .into_iter()
        .collect()
}
