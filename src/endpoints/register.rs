//! `/register` (RFC 7591 dynamic client registration) and `/register/{client_id}` (RFC 7592
//! client configuration), per authorization server, under its registration policy
//! (`server update --registration closed|token|open`; closed by default: 404).

use axum::body::Bytes;
use axum::extract::{FromRequestParts, RawPathParams, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::auth_server::AuthServer;
use crate::error::{Challenge, Error, ErrorCode};
use crate::http::client_ip::ClientIp;
use crate::manage::clients::{ClientRecord, RegistrationError};
use crate::manage::registration::{
    self, metadata_of, ClientMetadata, Registered, RegistrationRefused,
};
use crate::manage::Actor;
use crate::rate_limit;
use crate::security::hash_secret;
use crate::state::AppState;
use crate::store::registration::RegistrationPolicy;

/// RFC 7591 §3.1: register a client.
pub async fn register(
    State(state): State<AppState>,
    server: AuthServer,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    let now = state.now();
    let policy = state.store.registration_policy(server.id()).await?;
    if policy == RegistrationPolicy::Closed {
        return Err(Error::not_found(
            "this authorization server does not take registrations",
        ));
    }
    if let Err(limited) =
        rate_limit::check_registration(&state.store, &state.config.rate_limits, ip, now).await?
    {
        return Err(limited.into_error());
    }
    // RFC 7591 §3: with an initial access token, as a Bearer token (RFC 6750), one use spent.
    if policy == RegistrationPolicy::Token {
        let token = bearer(&headers)?;
        if !state
            .store
            .use_registration_token(server.id(), &hash_secret(&token), now)
            .await?
        {
            return Err(Error::invalid_token(
                "the initial access token is unknown, expired or used up",
            ));
        }
    }
    let metadata = metadata_from(&headers, &body)?;
    let registered = registration::register(
        &state.store,
        server.id(),
        &metadata,
        &Actor::Registrant(format!("ip:{ip}")),
        now,
    )
    .await
    .map_err(refused)?;
    Ok(respond(&server, StatusCode::CREATED, &registered))
}

/// The client named in the path, and the proof the caller holds its registration access token.
pub struct Registration(ClientRecord);

impl FromRequestParts<AppState> for Registration {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let server = AuthServer::from_request_parts(parts, state).await?;
        let client_id = RawPathParams::from_request_parts(parts, state)
            .await
            .ok()
            .and_then(|params| {
                params
                    .iter()
                    .find(|(name, _)| *name == "client_id")
                    .map(|(_, value)| value.to_string())
            })
            .filter(|id| !id.chars().any(char::is_control))
            .ok_or_else(|| Error::not_found("no such client"))?;
        let token = bearer(&parts.headers)?;
        // RFC 7592 §2: an unknown client and a wrong token answer alike (401), so the endpoint
        // does not tell which client ids exist.
        let refused = || Error::invalid_token("the registration access token is not valid");
        let record = ClientRecord::load(&state.store, &client_id)
            .await
            .map_err(|e| match e {
                RegistrationError::Store(e) => Error::from(e),
                e => Error::internal(e),
            })?
            .filter(|r| r.client.server_id == server.id())
            .ok_or_else(refused)?;
        if !state
            .store
            .registration_access_token_matches(&client_id, &token)
            .await?
        {
            return Err(refused());
        }
        Ok(Registration(record))
    }
}

/// RFC 7592 §2.1: read the client's registration.
pub async fn read(server: AuthServer, Registration(record): Registration) -> Response {
    let mut body = serde_json::to_value(metadata_of(&record)).unwrap_or_else(|_| json!({}));
    add_identity(&mut body, &server, &record);
    no_store(Json(body).into_response())
}

/// RFC 7592 §2.2: replace the client's metadata; a new registration access token is returned.
pub async fn update(
    State(state): State<AppState>,
    server: AuthServer,
    ClientIp(ip): ClientIp,
    Registration(record): Registration,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    let metadata = metadata_from(&headers, &body)?;
    let updated = registration::update(
        &state.store,
        &record,
        &metadata,
        &Actor::Registrant(format!("ip:{ip}")),
        state.now(),
    )
    .await
    .map_err(refused)?;
    Ok(respond(&server, StatusCode::OK, &updated))
}

/// RFC 7592 §2.3: deregister the client.
pub async fn delete(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Registration(record): Registration,
) -> Result<Response, Error> {
    registration::deregister(
        &state.store,
        &record.client.id,
        &Actor::Registrant(format!("ip:{ip}")),
        state.now(),
    )
    .await
    .map_err(refused)?;
    Ok(no_store(StatusCode::NO_CONTENT.into_response()))
}

fn bearer(headers: &HeaderMap) -> Result<String, Error> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(
            Error::new(ErrorCode::InvalidToken, "a Bearer token is required")
                .with_challenge(Challenge::BearerBare),
        );
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .map(|(_, token)| token.trim().to_string())
        .ok_or_else(|| Error::invalid_token("use the Bearer scheme"))
}

/// RFC 7591 §3.1: the metadata is a JSON object.
fn metadata_from(headers: &HeaderMap, body: &Bytes) -> Result<ClientMetadata, Error> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(Error::new(
            ErrorCode::InvalidClientMetadata,
            "send the client metadata as application/json",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorCode::InvalidClientMetadata,
            format!("the client metadata is not valid: {e}"),
        )
    })
}

fn refused(e: RegistrationRefused) -> Error {
    match e {
        RegistrationRefused::InvalidRedirectUri(m) => Error::new(ErrorCode::InvalidRedirectUri, m),
        RegistrationRefused::InvalidClientMetadata(m) => {
            Error::new(ErrorCode::InvalidClientMetadata, m)
        }
        RegistrationRefused::Store(e) => e.into(),
    }
}

/// `client_id` and the RFC 7592 `registration_client_uri`.
fn add_identity(body: &mut Value, server: &AuthServer, record: &ClientRecord) {
    if let Value::Object(map) = body {
        map.insert("client_id".into(), json!(record.client.id));
        map.insert(
            "client_id_issued_at".into(),
            json!(record.client.created_at),
        );
        map.insert(
            "registration_client_uri".into(),
            json!(server.endpoint(&format!("/register/{}", record.client.id))),
        );
    }
}

/// RFC 7591 §3.2.1: the metadata as registered, the client's credentials (the secret only when
/// it was made) and the registration access token, never cached.
fn respond(server: &AuthServer, status: StatusCode, registered: &Registered) -> Response {
    let mut metadata = metadata_of(&registered.record);
    metadata.response_types = Some(registered.response_types.clone());
    let mut body = serde_json::to_value(metadata).unwrap_or_else(|_| json!({}));
    add_identity(&mut body, server, &registered.record);
    if let Value::Object(map) = &mut body {
        if let Some(secret) = &registered.client_secret {
            map.insert("client_secret".into(), json!(secret.expose()));
            // RFC 7591 §3.2.1: 0, the secret does not expire.
            map.insert("client_secret_expires_at".into(), json!(0));
        }
        map.insert(
            "registration_access_token".into(),
            json!(registered.registration_access_token.expose()),
        );
    }
    no_store((status, Json(body)).into_response())
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
