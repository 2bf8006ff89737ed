//! Authorization server metadata (RFC 8414) and OpenID Provider metadata (OIDC Discovery 1.0),
//! listing exactly what this server implements.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::app::AppState;
use crate::endpoints::AuthServer;
use crate::error::Error;
use crate::grants;
use crate::protocol::ScopeSet;

/// `/.well-known/oauth-authorization-server`
pub async fn oauth_authorization_server(
    State(state): State<AppState>,
    server: AuthServer,
) -> Result<Response, Error> {
    let metadata = common_metadata(&state, &server).await?;
    Ok(render(metadata))
}

/// `/.well-known/openid-configuration`
pub async fn openid_configuration(
    State(state): State<AppState>,
    server: AuthServer,
) -> Result<Response, Error> {
    let mut metadata = common_metadata(&state, &server).await?;
    metadata.insert("subject_types_supported".into(), json!(["public"]));
    metadata.insert(
        "id_token_signing_alg_values_supported".into(),
        json!(["RS256"]),
    );
    metadata.insert("claims_parameter_supported".into(), json!(false));
    metadata.insert("request_parameter_supported".into(), json!(false));
    metadata.insert("request_uri_parameter_supported".into(), json!(false));
    Ok(render(metadata))
}

async fn common_metadata(
    state: &AppState,
    server: &AuthServer,
) -> Result<Map<String, Value>, Error> {
    let custom_scopes = state.store.scope_names(server.id()).await?;
    let scopes = ScopeSet::from_tokens(custom_scopes).unwrap_or_default();
    let metadata = json!({
        "issuer": server.issuer,
        "token_endpoint": server.endpoint("/token"),
        "jwks_uri": server.endpoint("/keys"),
        "scopes_supported": scopes.iter().collect::<Vec<_>>(),
        // No /authorize yet: no response type is offered.
        "response_types_supported": [],
        "grant_types_supported": grants::SUPPORTED.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"],
    });
    match metadata {
        Value::Object(map) => Ok(map),
        _ => Err(Error::internal("metadata is not an object")),
    }
}

fn render(metadata: Map<String, Value>) -> Response {
    let mut response = Json(Value::Object(metadata)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
