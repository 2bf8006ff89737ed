//! What happens to a validated authorization request: sign in, consent, or issue. Shared by
//! /authorize and by the resumption after the login and consent pages.

use std::net::IpAddr;

use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};

use super::interaction::{self, Browser, InteractionState};
use super::request::AuthorizationRequest;
use crate::accounts::second_factor;
use crate::audit::{Event, Kind};
use crate::auth_server::AuthServer;
use crate::clock::UnixTime;
use crate::error::{Error, ErrorCode};
use crate::issuer::{Decision, Issuer, Refresh, Subject, UserGrant, Wanted};
use crate::mfa::{self, Amr, MfaPolicy};
use crate::policy::{self, AccessRequest, Allowed, Grant, LifetimeOverride};
use crate::protocol::{GrantType, ResponseType, ScopeSet};
use crate::rate_limit;
use crate::security::{hash_secret, random_secret, random_token};
use crate::sessions;
use crate::state::AppState;
use crate::store::{AuthorizationCode, Client, Session, User};

use super::response::AuthorizeError;

/// One request's view of the flow.
pub struct Flow<'a> {
    pub state: &'a AppState,
    pub server: &'a AuthServer,
    pub client: &'a Client,
    pub browser: Browser,
    /// The client's address: pending sign-ins are counted per address.
    pub ip: IpAddr,
    pub now: UnixTime,
}

/// The interaction this request continues, if it does.
pub struct Continuing {
    pub id: String,
    pub state: InteractionState,
}

impl Flow<'_> {
    pub async fn proceed(
        &self,
        request: AuthorizationRequest,
        signed_in: Option<(Session, User)>,
        continuing: Option<Continuing>,
    ) -> Result<Response, AuthorizeError> {
        let progress = continuing.as_ref().map(|c| &c.state);
        // A sign-in during this interaction satisfies prompt=login and max_age.
        let signed_in_here = progress
            .and_then(|p| p.authenticated.as_ref())
            .is_some_and(|a| signed_in.as_ref().is_some_and(|(s, _)| s.sid == a.sid));
        let session_user = signed_in.filter(|(_, u)| !u.disabled);
        let must_sign_in = match &session_user {
            None => true,
            Some((s, u)) => {
                !signed_in_here
                    && (request.prompt.login
                        || request
                            .max_age
                            .is_some_and(|max| self.now - s.auth_time > max)
                        || request
                            .hinted_subject
                            .as_ref()
                            .is_some_and(|sub| sub != &u.id))
            }
        };
        if must_sign_in {
            if request.prompt.none {
                return Err(request.redirect_error(Error::new(
                    ErrorCode::LoginRequired,
                    "the user is not signed in",
                )));
            }
            return self.interact("login", request, continuing).await;
        }
        let Some((session, user)) = session_user else {
            return Err(AuthorizeError::page(Error::internal(
                "no session after sign-in check",
            )));
        };
        // OIDC Core §3.1.2.1: with an id_token_hint, the End-User must be the one it names. If
        // someone else signed in during this interaction, the client learns login_required
        // rather than getting a code for another user.
        if request
            .hinted_subject
            .as_ref()
            .is_some_and(|sub| sub != &user.id)
        {
            return Err(request.redirect_error(Error::new(
                ErrorCode::LoginRequired,
                "the signed-in user is not the one id_token_hint names",
            )));
        }
        // After the password, before anything else is decided: a second factor when the
        // policy or the request asks for one. A password-only session steps up here, asked for
        // the second factor and not for its password again.
        if self.needs_second_factor(&request, &session, &user).await? {
            if request.prompt.none {
                return Err(request.redirect_error(Error::new(
                    ErrorCode::InteractionRequired,
                    "a second factor is required",
                )));
            }
            return self.interact("mfa", request, continuing).await;
        }
        // After sign-in, before consent: a user the client's assignments or the server's access
        // policy refuse learns nothing more, and the client gets access_denied.
        let allowed = self.check_access(&request, &user).await?;
        let consented_here = progress.is_some_and(|p| p.consented);
        if !consented_here && self.needs_consent(&request, &user).await? {
            if request.prompt.none {
                return Err(request.redirect_error(Error::new(
                    ErrorCode::ConsentRequired,
                    "the user has not consented to this client",
                )));
            }
            return self.interact("consent", request, continuing).await;
        }
        // The interaction is single use: a second resumption (another tab, a replay) fails.
        if let Some(c) = &continuing {
            let taken = self
                .state
                .store
                .take_interaction(&hash_secret(&c.id))
                .await
                .map_err(Error::from)?;
            if !taken {
                return Err(AuthorizeError::page(Error::invalid_request(
                    "this sign-in request was already completed",
                )));
            }
        }
        self.issue(&request, &user, &session, allowed).await
    }

    /// App assignments and the server's access policies (`policy::access`), for the grant this
    /// response type starts.
    async fn check_access(
        &self,
        request: &AuthorizationRequest,
        user: &User,
    ) -> Result<Allowed, AuthorizeError> {
        let grant_type = match request.response_type() {
            ResponseType::Code => GrantType::AuthorizationCode,
            _ => GrantType::Implicit,
        };
        let scope = request.scopes();
        let access = AccessRequest {
            server_id: self.server.id(),
            client: self.client,
            grant: Grant::Is(grant_type),
            user: Some(user),
            scope: &scope,
        };
        match policy::access::check(&self.state.store, access).await? {
            Ok(allowed) => Ok(allowed),
            Err(refused) => {
                tracing::info!(client_id = %self.client.id, server = %self.server.id(), user = %user.id, reason = refused.reason(), "access policy refused the authorization request");
                Err(request.redirect_error(refused.authorize_error()))
            }
        }
    }

    /// The policy this client's sign-ins follow (the stricter of the server's and its own).
    fn mfa_policy(&self) -> MfaPolicy {
        mfa::policy::effective(
            MfaPolicy::from_stored(&self.server.server.mfa),
            self.client.mfa,
        )
    }

    /// Must the user present a second factor before this request goes on? Not when the session
    /// already has one.
    async fn needs_second_factor(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
        user: &User,
    ) -> Result<bool, AuthorizeError> {
        if Amr::parse(&session.amr).is_multi_factor() {
            return Ok(false);
        }
        let requested = mfa::policy::acr_requests_mfa(&request.acr_values);
        Ok(second_factor::needed(
            self.state,
            &self.server.server,
            self.client,
            user,
            requested,
        )
        .await?)
    }

    /// The `amr` and `acr` of the tokens issued in `session`: `acr` when the request asked for
    /// one or a policy applied (OIDC Core §2).
    fn authentication_context(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
    ) -> (Amr, Option<String>) {
        let amr = Amr::parse(&session.amr);
        let acr = (!request.acr_values.is_empty() || self.mfa_policy() != MfaPolicy::Off)
            .then(|| amr.acr().to_string());
        (amr, acr)
    }

    async fn needs_consent(
        &self,
        request: &AuthorizationRequest,
        user: &User,
    ) -> Result<bool, AuthorizeError> {
        if self.client.first_party {
            return Ok(false);
        }
        if request.prompt.consent {
            return Ok(true);
        }
        let consented = self
            .state
            .store
            .consented_scope(self.server.id(), &user.id, &self.client.id)
            .await
            .map_err(Error::from)?;
        Ok(!consented.is_some_and(|c| request.scopes().is_subset(&c)))
    }

    /// Send the browser to the login or consent page, creating the interaction if needed.
    async fn interact(
        &self,
        page: &str,
        request: AuthorizationRequest,
        continuing: Option<Continuing>,
    ) -> Result<Response, AuthorizeError> {
        let id = match continuing {
            Some(c) => c.id,
            None => {
                // Each request without a session stores a pending sign-in (for the
                // interaction's lifetime): bounded per address, in the database so the bound
                // holds across replicas. RFC 6749 §4.1.2.1: temporarily_unavailable.
                let limits = &self.state.config.rate_limits;
                let counted =
                    rate_limit::check_interaction(&self.state.store, limits, self.ip, self.now)
                        .await
                        .map_err(Error::from)?;
                if let Err(limited) = counted {
                    self.state.audit.record(
                        Event::new(Kind::RateLimited, self.now)
                            .server(self.server.id())
                            .actor(format!("ip:{}", self.ip))
                            .detail("limit", limited.limit)
                            .detail("client_id", self.client.id.as_str()),
                    );
                    return Err(request.redirect_error(Error::new(
                        ErrorCode::TemporarilyUnavailable,
                        "too many sign-ins started from this address; try again later",
                    )));
                }
                let state = InteractionState {
                    request,
                    browser: self.browser.binding(),
                    authenticated: None,
                    consented: false,
                };
                interaction::create(&self.state.store, self.server.id(), &state, self.now).await?
            }
        };
        let location = format!("{}/{page}?interaction={id}", self.server.issuer);
        let mut response = Redirect::to(&location).into_response();
        let headers = response.headers_mut();
        headers.extend(
            self.browser
                .set_cookie_headers(self.state.config.secure_cookies()),
        );
        headers.insert(
            header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        Ok(response)
    }

    /// Issue the code or tokens and send them to the client.
    async fn issue(
        &self,
        request: &AuthorizationRequest,
        user: &User,
        session: &Session,
        allowed: Allowed,
    ) -> Result<Response, AuthorizeError> {
        let fail = |e: Error| request.redirect_error(e);
        let Allowed { scope, lifetimes } = allowed;
        let grant_id = random_token(16);
        let grant_expires_at = self.now + self.issuer().lifetimes().with(lifetimes).refresh_token;
        let response_type = request.response_type();
        let params = match response_type {
            ResponseType::Code => self
                .issue_code(request, user, session, &scope, &grant_id, grant_expires_at)
                .await
                .map_err(fail)?,
            _ => {
                self.state
                    .store
                    .insert_session_grant(
                        &grant_id,
                        self.server.id(),
                        &self.client.id,
                        Some(&user.id),
                        Some(&session.sid),
                        &scope.to_string(),
                        self.now,
                        grant_expires_at,
                        GrantType::Implicit,
                    )
                    .await
                    .map_err(|e| fail(e.into()))?;
                self.issue_implicit(
                    request,
                    response_type,
                    user,
                    session,
                    (&scope, lifetimes),
                    &grant_id,
                )
                .await
                .map_err(fail)?
            }
        };
        tracing::info!(client_id = %self.client.id, server = %self.server.id(), user = %user.id, response_type = response_type.as_str(), "authorization granted");
        Ok(request
            .target
            .respond(&self.state.pages, params, HeaderMap::new()))
    }

    async fn issue_code(
        &self,
        request: &AuthorizationRequest,
        user: &User,
        session: &Session,
        scope: &ScopeSet,
        grant_id: &str,
        grant_expires_at: UnixTime,
    ) -> Result<Vec<(&'static str, String)>, Error> {
        let code = random_secret();
        let (amr, acr) = self.authentication_context(request, session);
        let record = AuthorizationCode {
            grant_id: grant_id.to_string(),
            server_id: self.server.id().to_string(),
            client_id: self.client.id.clone(),
            user_id: user.id.clone(),
            session_sid: Some(session.sid.clone()),
            redirect_uri: request.redirect_uri.clone(),
            // As the access policy narrowed it.
            scope: scope.to_string(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            code_challenge_method: request.code_challenge_method.clone(),
            auth_time: session.auth_time,
            claims_request: None,
            amr: Some(amr.to_string()),
            acr,
            created_at: self.now,
            expires_at: self.now + self.state.config.tokens.authorization_code_ttl.as_i64(),
            dpop_jkt: request.dpop_jkt.clone(),
        };
        self.state
            .store
            .insert_grant_with_code(
                &scope.to_string(),
                grant_expires_at,
                &hash_secret(code.expose()),
                &record,
            )
            .await?;
        Ok(vec![("code", code.expose().to_string())])
    }

    async fn issue_implicit(
        &self,
        request: &AuthorizationRequest,
        response_type: ResponseType,
        user: &User,
        session: &Session,
        (scope, lifetimes): (&ScopeSet, LifetimeOverride),
        grant_id: &str,
    ) -> Result<Vec<(&'static str, String)>, Error> {
        // Tokens leave from here, not from /token, but through the same issuer.
        let (amr, acr) = self.authentication_context(request, session);
        let issued = self
            .issuer()
            .issue(Decision {
                grant_type: GrantType::Implicit,
                subject: Subject::User(Box::new(UserGrant {
                    user: user.clone(),
                    grant_id: grant_id.to_string(),
                    auth_time: session.auth_time,
                    nonce: request.nonce.clone(),
                    sid: Some(session.sid.clone()),
                    amr: Some(amr),
                    acr,
                })),
                scope: scope.clone(),
                tokens: Wanted {
                    access_token: response_type.issues_access_token(),
                    id_token: response_type.issues_id_token(),
                },
                // RFC 6749 §4.2.2: never a refresh token.
                refresh: Refresh::None,
                lifetimes,
            })
            .await?;
        let mut params = Vec::new();
        if let Some(access_token) = issued.access_token {
            params.push(("access_token", access_token));
            params.push(("token_type", issued.token_type.to_string()));
            params.push(("expires_in", issued.expires_in.to_string()));
            params.push(("scope", issued.scope.to_string()));
        }
        if let Some(id_token) = issued.id_token {
            params.push(("id_token", id_token));
        }
        Ok(params)
    }

    fn issuer(&self) -> Issuer<'_> {
        Issuer {
            dpop_jkt: None,
            state: self.state,
            server: self.server,
            client: self.client,
            now: self.now,
        }
    }
}

/// The session of this browser at this server, for a flow.
pub async fn session_for(
    state: &AppState,
    server: &AuthServer,
    headers: &HeaderMap,
    now: UnixTime,
) -> Result<Option<(Session, User)>, AuthorizeError> {
    Ok(sessions::current_with_user(state, server.id(), headers, now).await?)
}
