//! `/userinfo` (OIDC Core §5.3), GET and POST, with the bearer token in the header or, for
//! POST, the form body (RFC 6750 §2.1-2.2). The claims of the granted scopes; `sub` always.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use crate::auth_server::AuthServer;
use crate::dpop;
use crate::error::{Challenge, Error, ErrorCode};
use crate::policy::{self, ClaimTarget};
use crate::protocol::{FormParams, ScopeSet};
use crate::state::AppState;
use crate::tokens::claims;
use crate::tokens::presented::access_token_in_force;
use crate::tokens::verify::{verify, Expected};
use crate::tokens::AccessTokenClaims;

pub async fn userinfo(
    State(state): State<AppState>,
    server: AuthServer,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Error> {
    // RFC 9449 §7.1: `Authorization: DPoP`, or the Bearer ways of RFC 6750.
    let dpop_scheme = dpop::dpop_authorization(&headers)?;
    let token = match &dpop_scheme {
        Some(token) => token.clone(),
        None => bearer_token(&method, &headers, body)?,
    };
    let now = state.now();
    let keys = state.keys.key_set(&server.server, now).await?;
    let claims: AccessTokenClaims = verify(
        &token,
        &keys,
        &server.issuer,
        &server.server.audience,
        Expected::AccessToken {
            audience_check: true,
        },
        now,
    )
    .map_err(Error::invalid_token)?;
    let require_nonce = state.config.dpop.require_nonce_at_userinfo;
    match (claims.dpop_jkt(), dpop_scheme.is_some()) {
        (Some(jkt), true) => {
            let resource = dpop::Resource {
                method: method.as_str(),
                path: "/userinfo",
                require_nonce,
            };
            dpop::at_resource(&state, &server, &headers, &resource, &token, jkt, now).await?
        }
        // §7.2: a bound token is not a bearer token; whoever stole it lacks the key.
        (Some(_), false) => {
            return Err(dpop::resource_error(
                ErrorCode::InvalidToken,
                "the token is DPoP-bound: send it with the DPoP scheme and a proof",
            ))
        }
        (None, true) => {
            return Err(Error::invalid_token(
                "the token is not DPoP-bound: use the Bearer scheme",
            ))
        }
        (None, false) => {}
    }
    // The user and the token's standing in one query; a second only when there is no user.
    let (user, withdrawn) = match state
        .store
        .user_for_access_token(&claims.sub, &claims.jti, claims.gid.as_deref(), now)
        .await?
    {
        Some((user, withdrawn)) => (Some(user), withdrawn),
        None => (
            None,
            !access_token_in_force(&state.store, &claims, now).await?,
        ),
    };
    if withdrawn {
        return Err(Error::invalid_token("the token was revoked"));
    }
    let scope = ScopeSet::parse(&claims.scope).unwrap_or_default();
    if !scope.contains("openid") {
        return Err(
            Error::new(ErrorCode::InsufficientScope, "the openid scope is required")
                .with_challenge(Challenge::Bearer),
        );
    }
    let user = match user {
        Some(u) if !u.disabled => u,
        _ => {
            return Err(Error::invalid_token(
                "the user no longer exists or is disabled",
            ))
        }
    };
    let mut body = claims::for_scope(&user, &scope);
    let custom = policy::custom_claims(
        &state.store,
        server.id(),
        Some(&user),
        &scope,
        ClaimTarget::Userinfo,
    )
    .await?;
    // Standard claims and `sub` win over a custom claim of the same name.
    for (name, value) in custom {
        body.entry(name).or_insert(value);
    }
    body.insert("sub".into(), Value::String(user.id));
    let mut response = Json(Value::Object(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // RFC 9449 §9: the nonce for the client's next proof.
    let demanded = require_nonce && dpop_scheme.is_some();
    if let Some((name, value)) = dpop::fresh_nonce(&state, demanded, now).await? {
        response.headers_mut().insert(name, value);
    }
    Ok(response)
}

/// RFC 6750 §2: exactly one way of sending the token.
pub fn bearer_token(
    method: &Method,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<String, Error> {
    let from_header = match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| Error::invalid_token("malformed Authorization header"))?;
            match value.split_once(' ') {
                Some((scheme, token))
                    if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
                {
                    Some(token.trim().to_string())
                }
                _ => return Err(Error::invalid_token("use the Bearer scheme")),
            }
        }
        None => None,
    };
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let from_body = if *method == Method::POST && is_form {
        FormParams::from_request_body(headers, body)?
            .get("access_token")
            .map(str::to_string)
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(Error::invalid_request("send the access token one way only")
            .with_challenge(Challenge::Bearer)
            .with_status(StatusCode::BAD_REQUEST)),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(Error::new(ErrorCode::InvalidRequest, "no access token")
            .with_challenge(Challenge::BearerBare)),
    }
}
