//! `POST /device/authorize` (RFC 8628 §3.1, §3.2): a device asks for a device code and a user
//! code. The client authenticates as at `/token` (a public client sends its `client_id`); the
//! scope is decided as for any user's grant, and shown to the user on `/device`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::audit::{Event, Kind};
use crate::auth_server::AuthServer;
use crate::client_auth;
use crate::error::Error;
use crate::http::client_ip::ClientIp;
use crate::http::post_form;
use crate::policy::{self, ScopeBasis};
use crate::protocol::{GrantType, UserCode};
use crate::security::{hash_secret, random_secret};
use crate::state::AppState;
use crate::store::{NewDeviceCode, StoreError};

/// §3.2: the minimum seconds between polls the device is told (and held to, §3.5).
pub const INTERVAL: i64 = 5;

/// Attempts at drawing a user code not already in use: with 20^8 codes and a few thousand
/// live, a second draw is already rare.
const USER_CODE_DRAWS: usize = 5;

/// §3.2.
#[derive(Debug, Serialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

pub async fn authorize(
    State(state): State<AppState>,
    server: AuthServer,
    ClientIp(ip): ClientIp,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Error> {
    let form = post_form("device authorization", &method, &headers, body)?;
    let now = state.now();
    let client =
        client_auth::authenticate_counted(&state, server.id(), &headers, &form, now).await?;
    // §3.1: the client must be allowed the grant it is about to use.
    if !client.allows(GrantType::DeviceCode) {
        return Err(Error::unauthorized_client(
            "this client may not use the device authorization grant",
        ));
    }
    // The same per-client budget as /token: both are called by the device.
    state
        .rate_limits
        .check_token(
            &state.config.rate_limits,
            &client.id,
            client.is_public().then_some(ip),
            now,
        )
        .map_err(|limited| limited.into_error())?;
    let defaults = policy::default_scope(&state.store, &client).await?;
    let scope = policy::decide_scope(
        &client,
        form.get("scope"),
        ScopeBasis::User {
            defaults: &defaults,
        },
    )?;
    let expires_in = state.config.tokens.device_code_ttl.as_i64();
    let device_code = random_secret();
    let mut draws = 0;
    let user_code = loop {
        let user_code = UserCode::generate();
        let stored = state
            .store
            .insert_device_code(&NewDeviceCode {
                device_code_hash: hash_secret(device_code.expose()),
                user_code_hash: hash_secret(user_code.normalized()),
                server_id: server.id().to_string(),
                client_id: client.id.clone(),
                scope: scope.to_string(),
                created_at: now,
                expires_at: now + expires_in,
                poll_interval: INTERVAL,
            })
            .await;
        match stored {
            Ok(()) => break user_code,
            Err(StoreError::AlreadyExists(_)) if draws + 1 < USER_CODE_DRAWS => draws += 1,
            Err(e) => return Err(e.into()),
        }
    };
    state.audit.record(
        Event::new(Kind::DeviceAuthorizationStarted, now)
            .server(server.id())
            .actor(format!("client:{}", client.id))
            .detail("client_id", client.id.as_str())
            .detail("scope", scope.to_string()),
    );
    let verification_uri = server.endpoint("/device");
    let answer = DeviceAuthorizationResponse {
        device_code: device_code.expose().to_string(),
        verification_uri_complete: format!(
            "{verification_uri}?user_code={}",
            user_code.normalized()
        ),
        user_code: user_code.display(),
        verification_uri,
        expires_in,
        interval: INTERVAL,
    };
    let mut response = Json(answer).into_response();
    // §3.2: as a token response, never cached.
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}
