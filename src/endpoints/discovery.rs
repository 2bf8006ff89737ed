//! Authorization server metadata (RFC 8414) and OpenID Provider metadata (OIDC Discovery 1.0),
//! listing exactly what this server implements.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::auth_server::AuthServer;
use crate::error::Error;
use crate::http::discovery_cache::{DocumentKind as Kind, Rendered, Sources};
use crate::protocol::jose::ClientAlg;
use crate::protocol::scope::OIDC_SCOPES;
use crate::protocol::{response_type, ScopeSet, TokenGrant};
use crate::state::AppState;
use crate::store::registration::RegistrationPolicy;
use crate::tokens::claims;

/// `/.well-known/oauth-authorization-server`
pub async fn oauth_authorization_server(
    State(state): State<AppState>,
    server: AuthServer,
) -> Result<Response, Error> {
    document(&state, &server, Kind::OAuth).await
}

/// `/.well-known/openid-configuration`
pub async fn openid_configuration(
    State(state): State<AppState>,
    server: AuthServer,
) -> Result<Response, Error> {
    document(&state, &server, Kind::OpenId).await
}

async fn document(state: &AppState, server: &AuthServer, kind: Kind) -> Result<Response, Error> {
    let algs = match kind {
        Kind::OAuth => Vec::new(),
        Kind::OpenId => {
            let now = state.now();
            state
                .keys
                .key_set(&server.server, now)
                .await?
                .published_algs(now)
        }
    };
    let sources = Sources {
        server: server.server.clone(),
        scope_names: state.store.cached_scope_names(server.id()).await?,
        claims: state.store.cached_claims(server.id()).await?,
        algs,
    };
    if let Some(body) = state.discovery.get(kind, &sources) {
        return Ok(render(body));
    }
    let mut metadata = common_metadata(server, &sources)?;
    // RFC 8414 §2 / RFC 7591 §3: only where registrations are taken. Read on a miss only: a
    // change of policy also bumps the server's row, so the cached document is replaced.
    if state.store.registration_policy(server.id()).await? != RegistrationPolicy::Closed {
        metadata.insert(
            "registration_endpoint".into(),
            json!(server.endpoint("/register")),
        );
    }
    if kind == Kind::OpenId {
        openid_metadata(&mut metadata, server, &sources.algs);
    }
    let body = Bytes::from(serde_json::to_vec(&metadata).map_err(Error::internal)?);
    state.discovery.put(
        kind,
        Rendered {
            sources,
            body: body.clone(),
        },
    );
    Ok(render(body))
}

/// What OpenID Provider metadata adds to RFC 8414's.
fn openid_metadata(metadata: &mut Map<String, Value>, server: &AuthServer, algs: &[&str]) {
    metadata.insert(
        "userinfo_endpoint".into(),
        json!(server.endpoint("/userinfo")),
    );
    metadata.insert(
        "end_session_endpoint".into(),
        json!(server.endpoint("/logout")),
    );
    // Back-Channel Logout 1.0 §2.1 and Front-Channel Logout 1.0 §3: logout tokens and frames
    // always carry `sid` (and frames `iss`, when the client requires them).
    for key in [
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
        "frontchannel_logout_supported",
        "frontchannel_logout_session_supported",
    ] {
        metadata.insert(key.into(), json!(true));
    }
    metadata.insert("subject_types_supported".into(), json!(["public"]));
    // What this server signs with: its current key's algorithm first, and during a change of
    // algorithm the other one whose tokens are still valid.
    metadata.insert("id_token_signing_alg_values_supported".into(), json!(algs));
    metadata.insert("claims_parameter_supported".into(), json!(false));
    // RFC 9101: signed request objects by value; a request_uri only from our own /par (no
    // fetching from elsewhere).
    metadata.insert("request_parameter_supported".into(), json!(true));
    metadata.insert("request_uri_parameter_supported".into(), json!(false));
}

fn common_metadata(server: &AuthServer, sources: &Sources) -> Result<Map<String, Value>, Error> {
    let custom_scopes = &sources.scope_names;
    // Per-server policy: the custom claims this server may release.
    let custom_claims = &sources.claims;
    let mut scopes = ScopeSet::from_tokens(custom_scopes.iter().cloned()).unwrap_or_default();
    for s in OIDC_SCOPES {
        scopes.insert(s);
    }
    let mut grant_types: Vec<&str> = TokenGrant::ALL
        .iter()
        .map(|g| g.grant_type().as_str())
        .collect();
    grant_types.push("implicit");
    let mut claims_supported = vec![
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "azp",
        "at_hash",
        "sid",
    ];
    claims_supported.extend(claims::all_claim_names());
    // Custom names borrow from `custom_claims`: the list stops being `Vec<&'static str>`.
    let mut claims_supported: Vec<&str> = claims_supported;
    claims_supported.extend(custom_claims.iter().map(|c| c.name.as_str()));
    let metadata = json!({
        "issuer": server.issuer,
        "authorization_endpoint": server.endpoint("/authorize"),
        "token_endpoint": server.endpoint("/token"),
        // RFC 8628 §4.
        "device_authorization_endpoint": server.endpoint("/device/authorize"),
        "jwks_uri": server.endpoint("/keys"),
        // RFC 7662 §4 / RFC 8414 §2: confidential clients (resource servers) only.
        "introspection_endpoint": server.endpoint("/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        // RFC 7009 §2.1: as at the token endpoint; public clients send their client_id.
        "revocation_endpoint": server.endpoint("/revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": scopes.iter().collect::<Vec<_>>(),
        "response_types_supported": response_type::SUPPORTED,
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": grant_types,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "display_values_supported": ["page", "popup"],
        "claims_supported": claims_supported,
        // RFC 9207: every authorization response carries `iss`.
        "authorization_response_iss_parameter_supported": true,
        // OIDC Discovery §3: the `acr` values `acr_values` may ask for (`mfa::policy`).
        "acr_values_supported": crate::mfa::policy::ACR_VALUES_SUPPORTED,
    });
    match metadata {
        Value::Object(mut map) => {
            high_assurance_metadata(&mut map, server);
            Ok(map)
        }
        _ => Err(Error::internal("metadata is not an object")),
    }
}

/// High-assurance clients (issue 21): `private_key_jwt` (RFC 8414 §2, OIDC Discovery §3),
/// DPoP (RFC 9449 §5.1), pushed authorization requests (RFC 9126 §5) and signed request
/// objects (RFC 9101 §10.5).
fn high_assurance_metadata(metadata: &mut Map<String, Value>, server: &AuthServer) {
    let algs = ClientAlg::names();
    for endpoint in [
        "token_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ] {
        let key = format!("{endpoint}_auth_methods_supported");
        if let Some(Value::Array(methods)) = metadata.get_mut(&key) {
            methods.push(json!("private_key_jwt"));
        }
        metadata.insert(
            format!("{endpoint}_auth_signing_alg_values_supported"),
            json!(algs),
        );
    }
    metadata.insert("dpop_signing_alg_values_supported".into(), json!(algs));
    metadata.insert(
        "pushed_authorization_request_endpoint".into(),
        json!(server.endpoint("/par")),
    );
    metadata.insert(
        "require_pushed_authorization_requests".into(),
        json!(server.server.require_pushed_authorization_requests),
    );
    metadata.insert(
        "request_object_signing_alg_values_supported".into(),
        json!(algs),
    );
}

fn render(body: Bytes) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
