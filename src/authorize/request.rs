//! Validating an authorization request (RFC 6749 §4.1.1, §4.2.1; OIDC Core §3.1.2.1), one
//! small step per rule. The client and redirect URI come first: until both check out, errors
//! go to an error page; afterwards they go back to the client.

use serde::{Deserialize, Serialize};

use super::response::{AuthorizeError, RedirectTarget};
use crate::error::{Error, ErrorCode};
use crate::policy::{self, ScopeBasis};
use crate::protocol::{
    pkce, redirect_uri, FormParams, GrantType, Prompt, ResponseMode, ResponseType, ScopeSet,
};
use crate::store::Client;

/// A validated authorization request, as kept while the user signs in and consents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub response_type: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The `sub` of a valid `id_token_hint` (checked by the endpoint, which has the keys).
    pub hinted_subject: Option<String>,
    pub target: RedirectTarget,
    /// OIDC Core §3.1.2.1 `acr_values`, in order of preference (`mfa::policy`).
    #[serde(default)]
    pub acr_values: Vec<String>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code is bound to.
    #[serde(default)]
    pub dpop_jkt: Option<String>,
}

impl AuthorizationRequest {
    pub fn response_type(&self) -> ResponseType {
        ResponseType::parse(&self.response_type).unwrap_or(ResponseType::Code)
    }
    pub fn scopes(&self) -> ScopeSet {
        ScopeSet::parse(&self.scope).unwrap_or_default()
    }
    pub fn redirect_error(&self, error: Error) -> AuthorizeError {
        AuthorizeError::Redirect(Box::new(self.target.clone()), error)
    }
}

/// Step 1: the client. Unknown, or of another server: an error page.
pub fn check_client(
    client: Option<std::sync::Arc<Client>>,
    server_id: &str,
) -> Result<std::sync::Arc<Client>, AuthorizeError> {
    match client {
        Some(c) if c.server_id == server_id => Ok(c),
        _ => Err(AuthorizeError::page(Error::new(
            ErrorCode::InvalidClient,
            "unknown client_id",
        ))),
    }
}

/// Step 2: the redirect URI, matched exactly against the registration; then the response mode
/// that errors will use from here on.
pub fn check_redirect(
    params: &FormParams,
    client: &Client,
    issuer: &str,
) -> Result<RedirectTarget, AuthorizeError> {
    // OIDC Core §3.1.2.1 requires it; we require it of every client, so the token endpoint
    // can always check the code was issued for the same URI.
    let requested = params
        .get("redirect_uri")
        .ok_or_else(|| AuthorizeError::page(Error::invalid_request("missing redirect_uri")))?;
    if redirect_uri::find_match(&client.redirect_uris, requested).is_none() {
        return Err(AuthorizeError::page(Error::invalid_request(
            "redirect_uri is not registered for this client",
        )));
    }
    // The state goes back to the client with every later error: too long, and it is refused
    // here, on the page, rather than echoed.
    if params.get("state").is_some_and(|s| s.len() > MAX_STATE) {
        return Err(AuthorizeError::page(Error::invalid_request(format!(
            "state is longer than {MAX_STATE} bytes"
        ))));
    }
    let response_type = params.get("response_type").and_then(ResponseType::parse);
    let mode = params
        .get("response_mode")
        .and_then(ResponseMode::parse)
        .unwrap_or(ResponseMode::default_for(response_type));
    Ok(RedirectTarget::new(
        requested.to_string(),
        mode,
        params.get("state").map(str::to_string),
        issuer.to_string(),
    ))
}

/// Steps 3 onwards: everything else, each error sent back to the client.
///
/// `default_scope` is what the client gets when it asks for none (`policy::default_scope`);
/// `require_pkce` is the server's setting (public clients need PKCE whatever it says).
pub fn check_rest(
    params: &FormParams,
    client: &Client,
    default_scope: &ScopeSet,
    require_pkce: bool,
    target: RedirectTarget,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let fail = |e: Error| AuthorizeError::Redirect(Box::new(target.clone()), e);
    // RFC 9101 and RFC 9126: `request` and `request_uri` are resolved before these steps
    // (`authorize::pushed::resolve`); one still here was nested in a request.
    if params.contains("request") {
        return Err(fail(Error::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        )));
    }
    if params.contains("request_uri") {
        return Err(fail(Error::new(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        )));
    }
    check_lengths(params).map_err(fail)?;
    let response_type = check_response_type(params, client).map_err(fail)?;
    check_response_mode(params, response_type).map_err(fail)?;
    let scope = check_scope(params, client, default_scope, response_type).map_err(fail)?;
    let nonce = params.get("nonce").map(str::to_string);
    // OIDC Core §3.2.2.1: nonce is required when an ID token comes from the authorization endpoint.
    if response_type.issues_id_token() && nonce.is_none() {
        return Err(fail(Error::invalid_request(
            "nonce is required for this response_type",
        )));
    }
    let (code_challenge, code_challenge_method) =
        check_pkce(params, client, require_pkce, response_type).map_err(fail)?;
    let prompt =
        Prompt::parse(params.get("prompt")).map_err(|d| fail(Error::invalid_request(d)))?;
    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            fail(Error::invalid_request(
                "max_age must be a non-negative integer",
            ))
        })?),
    };
    if let Some(claims) = params.get("claims") {
        // Parsed to refuse garbage; individual claim requests are not honoured (discovery:
        // claims_parameter_supported = false), so the scope decides what is released.
        if !serde_json::from_str::<serde_json::Value>(claims).is_ok_and(|v| v.is_object()) {
            return Err(fail(Error::invalid_request("claims must be a JSON object")));
        }
    }
    Ok(AuthorizationRequest {
        client_id: client.id.clone(),
        redirect_uri: target.redirect_uri().to_string(),
        response_type: response_type.as_str().to_string(),
        scope: scope.to_string(),
        nonce,
        code_challenge,
        code_challenge_method,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_string),
        hinted_subject: None,
        dpop_jkt: check_dpop_jkt(params).map_err(fail)?,
        target,
        acr_values: params
            .get("acr_values")
            .map(|v| v.split_ascii_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

/// RFC 9449 §10: `dpop_jkt`, a JWK SHA-256 thumbprint (RFC 7638): 43 base64url characters.
fn check_dpop_jkt(params: &FormParams) -> Result<Option<String>, Error> {
    match params.get("dpop_jkt") {
        None => Ok(None),
        Some(jkt)
            if jkt.len() == 43
                && jkt
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(Some(jkt.to_string()))
        }
        Some(_) => Err(Error::invalid_request(
            "dpop_jkt must be a JWK SHA-256 thumbprint (RFC 7638)",
        )),
    }
}

/// The longest `state` accepted (bytes). A request without a session is stored while the user
/// signs in: every value it keeps is bounded, so anonymous requests cannot fill the database.
pub const MAX_STATE: usize = 2048;

/// The longest value of each other parameter (bytes), generous for any real client: the
/// values a request keeps (`nonce`, `login_hint`) and those only parsed alike.
const MAX_LENGTHS: &[(&str, usize)] = &[
    ("nonce", 2048),
    ("login_hint", 2048),
    ("scope", 2048),
    ("response_type", 64),
    ("response_mode", 32),
    ("prompt", 64),
    ("max_age", 20),
    // RFC 7636 §4.2: an S256 challenge is 43 characters; a verifier at most 128.
    ("code_challenge", 128),
    ("code_challenge_method", 16),
    // An ID token of this server: a few hundred bytes of claims and a signature.
    ("id_token_hint", 8192),
    ("acr_values", 1024),
    ("ui_locales", 256),
    ("claims_locales", 256),
    ("display", 32),
    ("claims", 4096),
];

/// RFC 6749 §4.1.2.1: an oversized parameter makes the request malformed: `invalid_request`.
fn check_lengths(params: &FormParams) -> Result<(), Error> {
    for (name, max) in MAX_LENGTHS {
        if params.get(name).is_some_and(|v| v.len() > *max) {
            return Err(Error::invalid_request(format!(
                "{name} is longer than {max} bytes"
            )));
        }
    }
    Ok(())
}

fn check_response_type(params: &FormParams, client: &Client) -> Result<ResponseType, Error> {
    let raw = params
        .get("response_type")
        .ok_or_else(|| Error::invalid_request("missing response_type"))?;
    let response_type = ResponseType::parse(raw).ok_or_else(|| {
        Error::new(
            ErrorCode::UnsupportedResponseType,
            format!("response_type `{raw}` is not supported"),
        )
    })?;
    let grant = if response_type.is_implicit() {
        GrantType::Implicit
    } else {
        GrantType::AuthorizationCode
    };
    if !client.allows(grant) {
        return Err(Error::unauthorized_client(format!(
            "this client may not use the {grant} grant"
        )));
    }
    Ok(response_type)
}

fn check_response_mode(params: &FormParams, response_type: ResponseType) -> Result<(), Error> {
    match params
        .get("response_mode")
        .map(|m| (m, ResponseMode::parse(m)))
    {
        None => Ok(()),
        Some((m, None)) => Err(Error::invalid_request(format!(
            "response_mode `{m}` is not supported"
        ))),
        // Multiple Response Types §2.1: tokens never travel in the query string.
        Some((_, Some(ResponseMode::Query))) if response_type.is_implicit() => Err(
            Error::invalid_request("response_mode=query is not allowed with this response_type"),
        ),
        Some(_) => Ok(()),
    }
}

fn check_scope(
    params: &FormParams,
    client: &Client,
    default_scope: &ScopeSet,
    response_type: ResponseType,
) -> Result<ScopeSet, Error> {
    let scope = policy::decide_scope(
        client,
        params.get("scope"),
        ScopeBasis::User {
            defaults: default_scope,
        },
    )?;
    // OIDC Core §3.1.2.1 (and §3.2.2.1): an ID token is only for an `openid` request.
    if response_type.issues_id_token() && !scope.contains("openid") {
        return Err(Error::invalid_scope("an ID token needs the openid scope"));
    }
    Ok(scope)
}

/// RFC 7636 and RFC 9700 §2.1.1: S256 only; required of public clients, and of confidential
/// ones too where the server says so.
fn check_pkce(
    params: &FormParams,
    client: &Client,
    require_pkce: bool,
    response_type: ResponseType,
) -> Result<(Option<String>, Option<String>), Error> {
    if response_type != ResponseType::Code {
        return Ok((None, None));
    }
    let challenge = params.get("code_challenge");
    let method = params.get("code_challenge_method");
    match (challenge, method) {
        (None, None) if client.is_public() => Err(Error::invalid_request(
            "code_challenge is required for public clients (PKCE, S256)",
        )),
        (None, None) if require_pkce => Err(Error::invalid_request(
            "code_challenge is required by this server (PKCE, S256)",
        )),
        (None, None) => Ok((None, None)),
        (None, Some(_)) => Err(Error::invalid_request(
            "code_challenge_method without code_challenge",
        )),
        (Some(_), None) | (Some(_), Some("plain")) => Err(Error::invalid_request(
            "code_challenge_method must be S256 (plain is not accepted)",
        )),
        (Some(c), Some("S256")) if pkce::is_valid_s256_challenge(c) => {
            Ok((Some(c.to_string()), Some("S256".to_string())))
        }
        (Some(_), Some("S256")) => Err(Error::invalid_request(
            "code_challenge is not a valid S256 challenge",
        )),
        (Some(_), Some(m)) => Err(Error::invalid_request(format!(
            "code_challenge_method `{m}` is not supported"
        ))),
    }
}
