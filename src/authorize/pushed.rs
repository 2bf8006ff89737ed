//! Pushed authorization requests (RFC 9126): a client POSTs its authorization request to /par,
//! authenticated, and gets a `request_uri` to send the browser to /authorize with; the pushed
//! parameters are then the only ones used. Also where /authorize learns where its parameters
//! come from, and whether the client's registration lets it send them that way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::request::{check_redirect, check_rest};
use super::response::AuthorizeError;
use crate::auth_server::AuthServer;
use crate::clock::UnixTime;
use crate::error::{Error, ErrorCode};
use crate::policy;
use crate::protocol::FormParams;
use crate::security::{hash_secret, random_token};
use crate::state::AppState;
use crate::store::{Client, PushedRequest};

/// RFC 9126 §2.2: the `request_uri` prefix of the URN.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// RFC 9126 §2.2: short-lived; the browser goes to /authorize at once.
pub const PUSHED_REQUEST_TTL: i64 = 60;

/// What a pushed request keeps: the parameters, and whether they came in a signed request
/// object (so `--require-signed-request-object` holds for pushed requests too).
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    signed: bool,
    parameters: BTreeMap<String, String>,
}

/// An authorization request's parameters and how they arrived.
pub struct Resolved {
    pub params: FormParams,
    /// Through /par (RFC 9126).
    pub pushed: bool,
    /// In a request object signed by the client (RFC 9101).
    pub signed: bool,
}

/// The answer to a push (RFC 9126 §2.2).
pub struct Pushed {
    pub request_uri: String,
    pub expires_in: i64,
}

/// RFC 9126 §2.1: validate an authenticated client's pushed request as /authorize would, and
/// store it for one use within `PUSHED_REQUEST_TTL`. Errors are the token endpoint's kind
/// (§2.3): a JSON error, never a redirect. `proof_jkt` is the key of a DPoP proof sent with
/// the push (RFC 9449 §10.1), which binds the code as `dpop_jkt` does.
pub async fn push(
    state: &AppState,
    server: &AuthServer,
    client: &Client,
    form: FormParams,
    proof_jkt: Option<&str>,
    now: UnixTime,
) -> Result<Pushed, Error> {
    // §2.1: a request_uri cannot itself be pushed.
    if form.contains("request_uri") {
        return Err(Error::invalid_request(
            "request_uri is not allowed in a pushed authorization request",
        ));
    }
    // §2.1: the request is the authenticated client's.
    if form.get("client_id").is_some_and(|id| id != client.id) {
        return Err(Error::invalid_request(
            "client_id differs from the authenticated client",
        ));
    }
    let (mut parameters, signed) = match form.get("request") {
        // RFC 9101 §5 by way of RFC 9126 §3: a signed request object, pushed.
        Some(object) => (
            super::request_object::verify(state, server, client, object, now).await?,
            true,
        ),
        None => (
            form.iter()
                .filter(|(name, _)| !is_client_authentication(name))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            false,
        ),
    };
    parameters.insert("client_id".into(), client.id.clone());
    if let Some(jkt) = proof_jkt {
        // RFC 9449 §10.1: both given, they must name the same key.
        if parameters.get("dpop_jkt").is_some_and(|j| j != jkt) {
            return Err(Error::new(
                ErrorCode::InvalidDpopProof,
                "dpop_jkt differs from the DPoP proof's key",
            ));
        }
        parameters.insert("dpop_jkt".into(), jkt.to_string());
    }
    if client.security.require_signed_request_object && !signed {
        return Err(Error::invalid_request(
            "this client must send a signed request object (request)",
        ));
    }
    let params = to_form(&parameters)?;
    let target = check_redirect(&params, client, &server.issuer).map_err(into_error)?;
    let default_scope = policy::default_scope(&state.store, client).await?;
    check_rest(
        &params,
        client,
        &default_scope,
        server.server.require_pkce,
        target,
    )
    .map_err(into_error)?;
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", random_token(32));
    let stored = Stored { signed, parameters };
    state
        .store
        .insert_pushed_request(
            &hash_secret(&request_uri),
            &PushedRequest {
                server_id: server.id().to_string(),
                client_id: client.id.clone(),
                parameters: serde_json::to_string(&stored).map_err(Error::internal)?,
            },
            now,
            now + PUSHED_REQUEST_TTL,
        )
        .await?;
    Ok(Pushed {
        request_uri,
        expires_in: PUSHED_REQUEST_TTL,
    })
}

/// RFC 9126 §4 and RFC 9101 §5: the parameters /authorize works with. With a `request_uri` of
/// ours, the pushed ones only (taken once); with a `request` object, its claims only; otherwise
/// the request's own.
pub async fn resolve(
    state: &AppState,
    server: &AuthServer,
    params: FormParams,
    now: UnixTime,
) -> Result<Resolved, AuthorizeError> {
    let page =
        |code, description: &'static str| AuthorizeError::page(Error::new(code, description));
    // RFC 9101 §6.2: we fetch no request_uri from elsewhere; `check_rest` answers such a
    // request `request_uri_not_supported` at its redirect URI.
    if let Some(uri) = params
        .get("request_uri")
        .filter(|u| u.starts_with(REQUEST_URI_PREFIX))
    {
        let client_id = params
            .get("client_id")
            .ok_or_else(|| page(ErrorCode::InvalidRequest, "missing client_id"))?;
        let pushed = state
            .store
            .take_pushed_request(&hash_secret(uri), now)
            .await
            .map_err(Error::from)?
            .filter(|p| p.client_id == client_id && p.server_id == server.id())
            .ok_or_else(|| {
                page(
                    ErrorCode::InvalidRequestUri,
                    "the request_uri is unknown, expired or already used",
                )
            })?;
        let stored: Stored = serde_json::from_str(&pushed.parameters).map_err(Error::internal)?;
        return Ok(Resolved {
            params: to_form(&stored.parameters)?,
            pushed: true,
            signed: stored.signed,
        });
    }
    if let Some(object) = params.get("request") {
        let client_id = params
            .get("client_id")
            .ok_or_else(|| page(ErrorCode::InvalidRequest, "missing client_id"))?;
        let client = state
            .store
            .cached_client(client_id)
            .await
            .map_err(Error::from)?
            .filter(|c| c.server_id == server.id())
            .ok_or_else(|| page(ErrorCode::InvalidClient, "unknown client_id"))?;
        let mut parameters =
            match super::request_object::verify(state, server, &client, object, now).await {
                Ok(parameters) => parameters,
                // RFC 9101 §6.3: to the (outer) request's redirect URI when it is a good one.
                Err(e) => {
                    return Err(match check_redirect(&params, &client, &server.issuer) {
                        Ok(target) => AuthorizeError::Redirect(Box::new(target), e),
                        Err(_) => AuthorizeError::page(e),
                    })
                }
            };
        parameters.insert("client_id".into(), client.id.clone());
        return Ok(Resolved {
            params: to_form(&parameters)?,
            pushed: false,
            signed: true,
        });
    }
    Ok(Resolved {
        params,
        pushed: false,
        signed: false,
    })
}

/// RFC 9126 §5 and §6, RFC 9101 §10.5: what the server's and the client's registration demand
/// of how a request arrives.
pub fn check_required(
    server: &AuthServer,
    client: &Client,
    resolved: &Resolved,
) -> Result<(), AuthorizeError> {
    let par_required =
        client.security.require_par || server.server.require_pushed_authorization_requests;
    if par_required && !resolved.pushed {
        return Err(AuthorizeError::page(Error::invalid_request(
            "this client must push its authorization requests (/par) and send the request_uri",
        )));
    }
    if client.security.require_signed_request_object && !resolved.signed {
        return Err(AuthorizeError::page(Error::invalid_request(
            "this client must send a signed request object (request)",
        )));
    }
    Ok(())
}

/// RFC 7521 §4.2 and RFC 6749 §2.3.1: credentials are not part of the authorization request.
fn is_client_authentication(name: &str) -> bool {
    matches!(
        name,
        "client_secret" | "client_assertion" | "client_assertion_type"
    )
}

fn to_form(parameters: &BTreeMap<String, String>) -> Result<FormParams, Error> {
    let encoded = serde_urlencoded::to_string(parameters).map_err(Error::internal)?;
    FormParams::parse(encoded.as_bytes())
}

/// At /par an authorization request error is a JSON error (RFC 9126 §2.3).
fn into_error(error: AuthorizeError) -> Error {
    match error {
        AuthorizeError::Page(e) | AuthorizeError::Redirect(_, e) => e,
    }
}
