//! Passkey pages (W3C WebAuthn): `POST /mfa/passkey` starts a ceremony from the login page
//! ("Sign in with a passkey", `passwordless`) or the second-factor page (`authenticate`, or
//! `register` at enrolment): it stores a single-use challenge and shows a page whose script
//! (`GET /mfa/passkey.js`, under the nonce CSP) calls `navigator.credentials.create/get` and
//! posts the result to `POST /mfa/passkey/finish`, which checks it (`mfa::webauthn`) and goes on
//! as the password or code form would. A refusal shows the sign-in page's error and stores
//! nothing. Only this ceremony needs JavaScript; every other way in works without.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use super::{login, mfa};
use crate::audit::{Event, Kind};
use crate::auth_server::AuthServer;
use crate::authorize::interaction::{self, check_csrf, csrf_token, Authenticated};
use crate::authorize::{AuthorizeError, Browser};
use crate::clock::UnixTime;
use crate::error::Error;
use crate::http::client_ip::ClientIp;
use crate::mfa::webauthn::{self, Decoded, Refused, RelyingParty};
use crate::mfa::{enrol, Amr};
use crate::protocol::FormParams;
use crate::security::{base64url, constant_time_eq, hash_secret, random_bytes, random_token};
use crate::sessions;
use crate::state::AppState;
use crate::store::{Passkey, User, WebauthnChallenge};

/// How long a challenge lives: the ceremony's `timeout` (2 minutes) and some slack.
pub const CHALLENGE_TTL: i64 = 5 * 60;
const TIMEOUT_MS: i64 = 120_000;
pub(crate) const FAILED: &str =
    "That passkey could not be used. Try again, or sign in another way.";

/// The script of the passkey page: small, ours, no dependencies.
const SCRIPT: &str = include_str!("../http/templates/passkey.js");

pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        SCRIPT,
    )
        .into_response()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ceremony {
    /// A new passkey for the signed-in user.
    Register,
    /// A passkey as the second factor after the password.
    Authenticate,
    /// A discoverable passkey instead of the password.
    Passwordless,
}

impl Ceremony {
    fn parse(value: Option<&str>) -> Result<Self, Error> {
        match value {
            Some("register") => Ok(Self::Register),
            Some("authenticate") => Ok(Self::Authenticate),
            Some("passwordless") => Ok(Self::Passwordless),
            _ => Err(Error::invalid_request("unknown passkey ceremony")),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Authenticate => "authenticate",
            Self::Passwordless => "passwordless",
        }
    }

    /// The form the ceremony starts from: the login page or the second-factor page.
    fn started_from(self) -> &'static str {
        match self {
            Self::Passwordless => "login",
            _ => "mfa",
        }
    }
}

pub(crate) fn relying_party(server: &AuthServer) -> Result<RelyingParty, Error> {
    RelyingParty::from_issuer(&server.issuer)
        .ok_or_else(|| Error::internal("the issuer has no host for a WebAuthn RP ID"))
}

fn descriptor(p: &Passkey) -> serde_json::Value {
    json!({
        "type": "public-key",
        "id": p.credential_id,
        "transports": p.transports.split_whitespace().collect::<Vec<_>>(),
    })
}

pub async fn begin(
    State(state): State<AppState>,
    server: AuthServer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match start(&state, &server, &headers, body).await {
        Ok(response) => response,
        Err(e) => AuthorizeError::page(e).render(&state.pages),
    }
}

async fn start(
    state: &AppState,
    server: &AuthServer,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Error> {
    let now = state.now();
    let form = FormParams::from_request_body(headers, body)?;
    let id = form.require("interaction")?.to_string();
    let ceremony = Ceremony::parse(form.get("ceremony"))?;
    let browser = Browser::existing(headers, state.config.secure_cookies());
    check_csrf(
        ceremony.started_from(),
        &id,
        browser.as_deref(),
        form.get("csrf_token"),
    )?;
    let loaded = interaction::load(&state.store, server.id(), &id, browser.as_deref(), now).await?;
    let browser = browser.unwrap_or_default();
    let rp = relying_party(server)?;
    let challenge = base64url(&random_bytes(32));
    let get_options = |allow: Vec<serde_json::Value>| {
        json!({
            "mode": "get",
            "publicKey": {
                "challenge": challenge,
                "rpId": rp.id,
                "timeout": TIMEOUT_MS,
                "userVerification": "preferred",
                "allowCredentials": allow,
            }
        })
    };
    let (user_id, options) = match ceremony {
        Ceremony::Register => {
            let (session, user) = mfa::signed_in(state, server, headers, now).await?;
            // A user who has a factor adds another only after presenting one.
            if state.store.has_mfa_factor(&user.id).await?
                && !Amr::parse(&session.amr).is_multi_factor()
            {
                return Err(Error::invalid_request(
                    "present your second factor before adding a passkey",
                ));
            }
            let options = creation_options(state, &rp, &user, &challenge).await?;
            (Some(user.id), options)
        }
        Ceremony::Authenticate => {
            let (_, user) = mfa::signed_in(state, server, headers, now).await?;
            let passkeys = state.store.passkeys_of(&user.id).await?;
            if passkeys.is_empty() {
                return Err(Error::invalid_request("you have no passkey; go back"));
            }
            let allow = passkeys.iter().map(descriptor).collect();
            (Some(user.id), get_options(allow))
        }
        // §5.4.3: an empty allowCredentials asks for a discoverable credential.
        Ceremony::Passwordless => (None, get_options(Vec::new())),
    };
    state
        .store
        .insert_webauthn_challenge(
            &WebauthnChallenge {
                challenge_hash: hash_secret(&challenge),
                server_id: server.id().to_string(),
                ceremony: ceremony.as_str().to_string(),
                interaction_hash: hash_secret(&id),
                browser: browser_binding(&browser),
                user_id,
                expires_at: now + CHALLENGE_TTL,
            },
            now,
        )
        .await?;
    let client_name = state
        .store
        .client(&loaded.request.client_id)
        .await?
        .map(|c| c.name)
        .unwrap_or_default();
    Ok(state.pages.render(
        StatusCode::OK,
        "passkey.html",
        json!({
            "register": ceremony == Ceremony::Register,
            "client_name": client_name,
            "options": options.to_string(),
            "action": server.endpoint("/mfa/passkey/finish"),
            "script": server.endpoint("/mfa/passkey.js"),
            "interaction": id,
            "csrf_token": csrf_token("passkey", &id, &browser),
            "ceremony": ceremony.as_str(),
        }),
        &mfa::form_targets(&loaded),
        HeaderMap::new(),
    ))
}

pub(crate) fn browser_binding(browser: &str) -> String {
    Browser {
        value: browser.to_string(),
        is_new: false,
    }
    .binding()
}

/// §7.1 for `user`, then the passkey stored and its enrolment audited.
pub(crate) async fn store_registration(
    state: &AppState,
    server: &AuthServer,
    user: &User,
    rp: &RelyingParty,
    challenge: &str,
    credential: &Decoded,
    now: UnixTime,
) -> Result<(webauthn::Registered, Passkey), Fail> {
    let mut registered = webauthn::register(rp, challenge, credential)?;
    let passkey = Passkey {
        id: format!("passkey_{}", random_token(9)),
        credential_id: base64url(&registered.credential_id),
        user_id: user.id.clone(),
        rp_id: rp.id.clone(),
        public_key: std::mem::take(&mut registered.public_key),
        sign_count: i64::from(registered.sign_count),
        name: "Passkey".to_string(),
        transports: credential.transports.join(" "),
        created_at: now,
        last_used_at: None,
    };
    if !state.store.insert_passkey(&passkey).await? {
        return Err(Refused("credential_already_registered").into());
    }
    state.audit.record(
        Event::new(Kind::MfaEnrolled, now)
            .server(server.id())
            .actor(format!("user:{}", user.id))
            .subject(user.id.as_str())
            .detail("factor", passkey.id.as_str())
            .detail("kind", "passkey"),
    );
    Ok((registered, passkey))
}

/// Registration options (§5.4) for `user`, excluding the passkeys they already have.
pub(crate) async fn creation_options(
    state: &AppState,
    rp: &RelyingParty,
    user: &User,
    challenge: &str,
) -> Result<serde_json::Value, Error> {
    let existing = state.store.passkeys_of(&user.id).await?;
    Ok(json!({
        "mode": "create",
        "publicKey": {
            "challenge": challenge,
            "rp": { "id": rp.id, "name": "Portcullis" },
            "user": {
                "id": base64url(user.id.as_bytes()),
                "name": user.username,
                "displayName": user.username,
            },
            "pubKeyCredParams": webauthn::ALGORITHMS
                .iter()
                .map(|alg| json!({ "type": "public-key", "alg": alg }))
                .collect::<Vec<_>>(),
            "timeout": TIMEOUT_MS,
            "attestation": "none",
            "authenticatorSelection": {
                "residentKey": "preferred",
                "requireResidentKey": false,
                "userVerification": "preferred",
            },
            "excludeCredentials": existing.iter().map(descriptor).collect::<Vec<_>>(),
        }
    }))
}

/// A ceremony's failure: refused (the page's error) or an error of ours.
pub(crate) enum Fail {
    Refused(&'static str),
    Error(Error),
}

impl From<Refused> for Fail {
    fn from(r: Refused) -> Self {
        Self::Refused(r.0)
    }
}

impl<E: Into<Error>> From<E> for Fail {
    fn from(e: E) -> Self {
        Self::Error(e.into())
    }
}

pub async fn finish(
    State(state): State<AppState>,
    server: AuthServer,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match complete(&state, &server, ip, &headers, body).await {
        Ok(response) => response,
        Err(e) => AuthorizeError::page(e).render(&state.pages),
    }
}

async fn complete(
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
        "passkey",
        headers,
        state.config.secure_cookies(),
        body,
        now,
    )
    .await?;
    let ceremony = Ceremony::parse(submission.form.get("ceremony"))?;
    let cx = Cx {
        state,
        server,
        ip,
        headers,
        id: &submission.id,
        browser: &submission.browser,
        ceremony,
        now,
    };
    let posted = submission.form.get("credential").unwrap_or("");
    let mut loaded = submission.state.clone();
    match cx.ceremony_result(posted, &mut loaded).await {
        Ok(response) => Ok(response),
        Err(Fail::Error(e)) => Err(e),
        Err(Fail::Refused(reason)) => {
            tracing::info!(server = %server.id(), reason, ceremony = ceremony.as_str(), "passkey refused");
            state.audit.record(
                Event::new(Kind::MfaFailed, now)
                    .server(server.id())
                    .actor(format!("ip:{ip}"))
                    .detail("via", "passkey")
                    .detail("ceremony", ceremony.as_str())
                    .detail("reason", reason),
            );
            cx.refused_page(&loaded).await
        }
    }
}

struct Cx<'a> {
    state: &'a AppState,
    server: &'a AuthServer,
    ip: std::net::IpAddr,
    headers: &'a HeaderMap,
    id: &'a str,
    browser: &'a str,
    ceremony: Ceremony,
    now: UnixTime,
}

impl Cx<'_> {
    /// The page the ceremony started from, with its error.
    async fn refused_page(
        &self,
        loaded: &interaction::InteractionState,
    ) -> Result<Response, Error> {
        let mut page = match self.ceremony {
            Ceremony::Passwordless => {
                login::render(
                    self.state,
                    self.server,
                    self.id,
                    self.browser,
                    loaded,
                    "",
                    Some(FAILED),
                )
                .await
            }
            _ => {
                let (_, user) =
                    mfa::signed_in(self.state, self.server, self.headers, self.now).await?;
                let step = mfa::step_for(self.state, &user, self.now).await?;
                let page = mfa::Page {
                    id: self.id,
                    browser: self.browser,
                    loaded,
                    user: &user,
                };
                mfa::render(self.state, self.server, &page, &step, Some(FAILED)).await?
            }
        };
        *page.status_mut() = StatusCode::UNAUTHORIZED;
        Ok(page)
    }

    async fn ceremony_result(
        &self,
        posted: &str,
        loaded: &mut interaction::InteractionState,
    ) -> Result<Response, Fail> {
        let (state, now) = (self.state, self.now);
        let credential = webauthn::decode(posted)?;
        let challenge = webauthn::challenge_of(&credential.client_data_json)?;
        // Taken whatever happens next: a challenge is good for one try.
        let row = state
            .store
            .take_webauthn_challenge(&hash_secret(&challenge))
            .await?
            .ok_or(Refused("unknown_challenge"))?;
        if row.expires_at <= now {
            return Err(Refused("stale_challenge").into());
        }
        let bound = row.server_id == self.server.id()
            && row.ceremony == self.ceremony.as_str()
            && row.interaction_hash == hash_secret(self.id)
            && constant_time_eq(&row.browser, &browser_binding(self.browser));
        if !bound {
            return Err(Refused("challenge_of_another_ceremony").into());
        }
        let rp = relying_party(self.server)?;
        match self.ceremony {
            Ceremony::Register => {
                self.register(&rp, &challenge, &row, &credential, loaded)
                    .await
            }
            Ceremony::Authenticate => {
                let (session, user) = mfa::signed_in(state, self.server, self.headers, now).await?;
                if row.user_id.as_deref() != Some(user.id.as_str()) {
                    return Err(Refused("wrong_user").into());
                }
                let (passkey, asserted) = self
                    .assert(&rp, &challenge, &credential, Some(&user))
                    .await?;
                let amr = webauthn::amr_values(asserted.backup_eligible, asserted.user_verified);
                sessions::add_factors(state, &session, &amr, now).await?;
                self.audit_use(Kind::MfaVerified, &user, &passkey, &amr);
                Ok(self.resume(loaded, &user, &session.sid, None).await?)
            }
            Ceremony::Passwordless => {
                let (passkey, asserted) = self.assert(&rp, &challenge, &credential, None).await?;
                let user = state
                    .store
                    .user(&passkey.user_id)
                    .await?
                    .filter(|u| !u.disabled)
                    .ok_or(Refused("disabled_user"))?;
                let amr = webauthn::amr_values(asserted.backup_eligible, asserted.user_verified);
                let signed_in = amr.iter().fold(Amr::default(), |a, f| a.with(f));
                let previous =
                    sessions::current(state, self.server.id(), self.headers, now).await?;
                let (session, cookie) = sessions::start_with(
                    state,
                    self.server.id(),
                    &user.id,
                    &signed_in,
                    previous.as_ref(),
                    now,
                )
                .await?;
                self.audit_use(Kind::SignIn, &user, &passkey, &amr);
                Ok(self
                    .resume(loaded, &user, &session.sid, Some(cookie))
                    .await?)
            }
        }
    }

    async fn register(
        &self,
        rp: &RelyingParty,
        challenge: &str,
        row: &WebauthnChallenge,
        credential: &Decoded,
        loaded: &mut interaction::InteractionState,
    ) -> Result<Response, Fail> {
        let (state, now) = (self.state, self.now);
        let (session, user) = mfa::signed_in(state, self.server, self.headers, now).await?;
        if row.user_id.as_deref() != Some(user.id.as_str()) {
            return Err(Refused("wrong_user").into());
        }
        let first = !state.store.has_mfa_factor(&user.id).await?;
        let (registered, _) =
            store_registration(state, self.server, &user, rp, challenge, credential, now).await?;
        // Creating the credential proved possession of it: the session gains the factor.
        let amr = webauthn::amr_values(registered.backup_eligible, registered.user_verified);
        sessions::add_factors(state, &session, &amr, now).await?;
        // The first factor comes with recovery codes, as with an authenticator app.
        let codes = if first {
            let codes = enrol::recovery_codes(&state.store, &user.id, now).await?;
            state.audit.record(
                Event::new(Kind::MfaRecoveryCodesGenerated, now)
                    .server(self.server.id())
                    .actor(format!("user:{}", user.id))
                    .subject(user.id.as_str())
                    .detail("count", codes.len()),
            );
            Some(codes)
        } else {
            None
        };
        let response = self.resume(loaded, &user, &session.sid, None).await?;
        match codes {
            Some(codes) => Ok(state.pages.render(
                StatusCode::OK,
                "mfa_recovery_codes.html",
                json!({
                    "action": self.server.endpoint("/authorize/resume"),
                    "interaction": self.id,
                    "codes": codes.iter().map(|c| c.expose()).collect::<Vec<_>>(),
                }),
                &mfa::form_targets(loaded),
                HeaderMap::new(),
            )),
            None => Ok(response),
        }
    }

    /// §7.2 for a stored credential: found by its id, of this relying party, of `user` when
    /// the user is known (after a password) and of the user its handle names; then the
    /// signature, and the counter moved forward once.
    async fn assert(
        &self,
        rp: &RelyingParty,
        challenge: &str,
        credential: &Decoded,
        user: Option<&User>,
    ) -> Result<(Passkey, webauthn::Asserted), Fail> {
        let passkey = self
            .state
            .store
            .passkey_by_credential(&base64url(&credential.credential_id))
            .await?
            .ok_or(Refused("unknown_credential"))?;
        if passkey.rp_id != rp.id {
            return Err(Refused("credential_of_another_relying_party").into());
        }
        if user.is_some_and(|u| u.id != passkey.user_id) {
            return Err(Refused("credential_of_another_user").into());
        }
        // §7.2 step 6: the user handle, when given (always, for a discoverable credential).
        match &credential.user_handle {
            Some(handle) if handle.as_slice() != passkey.user_id.as_bytes() => {
                return Err(Refused("credential_of_another_user").into())
            }
            None if user.is_none() => return Err(Refused("no_user_handle").into()),
            _ => {}
        }
        let asserted = webauthn::authenticate(
            rp,
            challenge,
            &passkey.public_key,
            passkey.sign_count,
            credential,
        )?;
        if !self
            .state
            .store
            .use_passkey(
                &passkey.id,
                passkey.sign_count,
                i64::from(asserted.sign_count),
                self.now,
            )
            .await?
        {
            return Err(Refused("counter_regression").into());
        }
        Ok((passkey, asserted))
    }

    fn audit_use(&self, kind: Kind, user: &User, passkey: &Passkey, amr: &[&str]) {
        tracing::info!(server = %self.server.id(), user = %user.id, "passkey used");
        self.state.audit.record(
            Event::new(kind, self.now)
                .server(self.server.id())
                .actor(format!("ip:{}", self.ip))
                .subject(user.id.as_str())
                .detail("via", "passkey")
                .detail("username", user.username.as_str())
                .detail("factor", passkey.id.as_str())
                .detail("amr", amr.join(" ")),
        );
    }

    /// Record the sign-in on the interaction and go on with the authorization request.
    async fn resume(
        &self,
        loaded: &mut interaction::InteractionState,
        user: &User,
        sid: &str,
        cookie: Option<axum::http::HeaderValue>,
    ) -> Result<Response, Error> {
        loaded.authenticated = Some(Authenticated {
            user_id: user.id.clone(),
            sid: sid.to_string(),
            auth_time: self.now,
        });
        interaction::save(&self.state.store, self.id, loaded).await?;
        let resume = self.server.endpoint("/authorize/resume");
        let mut response =
            Redirect::to(&format!("{resume}?interaction={}", self.id)).into_response();
        if let Some(cookie) = cookie {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        Ok(response)
    }
}
