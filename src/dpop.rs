//! DPoP (RFC 9449) where requests arrive: proofs at the token endpoint (§5), which bind the
//! tokens issued to the proof's key, and at /userinfo (§7), where a bound token needs a proof
//! by that key. The proof itself is checked in `protocol::dpop`; here its nonce (§8) and the
//! single use of its `jti` (§11.1, in the database, so across replicas).

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::auth_server::AuthServer;
use crate::clock::UnixTime;
use crate::error::{Error, ErrorCode};
use crate::protocol::dpop::{self, Expected, Proof};
use crate::protocol::jose::ClientAlg;
use crate::state::AppState;
use crate::store::{Client, JtiKind};

/// §8.1: the response header carrying a fresh nonce.
pub const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// §5: the proof sent to the token endpoint, checked. `None` without one, unless the client
/// must use DPoP (`client update --require-dpop true`).
pub async fn at_token_endpoint(
    state: &AppState,
    server: &AuthServer,
    client: &Client,
    headers: &HeaderMap,
    now: UnixTime,
) -> Result<Option<Proof>, Error> {
    let proof = at_client_endpoint(state, server, "/token", headers, now).await?;
    if proof.is_none() && client.security.require_dpop {
        return Err(invalid_proof("this client must send a DPoP proof"));
    }
    Ok(proof)
}

/// §10.1: the proof sent with a pushed authorization request, if any: its key binds the code
/// as `dpop_jkt` does.
pub async fn at_par(
    state: &AppState,
    server: &AuthServer,
    headers: &HeaderMap,
    now: UnixTime,
) -> Result<Option<Proof>, Error> {
    at_client_endpoint(state, server, "/par", headers, now).await
}

/// A proof POSTed to one of our endpoints by a client (§4.3, §8, §11.1), if there is one.
async fn at_client_endpoint(
    state: &AppState,
    server: &AuthServer,
    path: &str,
    headers: &HeaderMap,
    now: UnixTime,
) -> Result<Option<Proof>, Error> {
    let Some(proof) = dpop::proof_header(headers).map_err(invalid_proof)? else {
        return Ok(None);
    };
    let url = server.endpoint(path);
    let proof = check(state, proof, "POST", &url, None, now).map_err(invalid_proof)?;
    // §8: the server's nonce, when it demands one; the answer carries the one to use.
    if state.config.dpop.require_nonce {
        if let Some(fresh) = missing_nonce(state, &proof, now).await? {
            let error = Error::new(
                ErrorCode::UseDpopNonce,
                "the DPoP proof must carry the server's nonce (DPoP-Nonce)",
            );
            return Err(with_nonce(error, &fresh));
        }
    }
    single_use(state, &proof, now)
        .await?
        .map_err(invalid_proof)?;
    Ok(Some(proof))
}

/// None when `proof` carries a nonce we issued and still accept; else the nonce to use (§8.1).
async fn missing_nonce(
    state: &AppState,
    proof: &Proof,
    now: UnixTime,
) -> Result<Option<String>, Error> {
    let valid = match &proof.nonce {
        Some(nonce) => state.dpop_nonces.is_valid(&state.store, nonce, now).await?,
        None => false,
    };
    Ok(if valid {
        None
    } else {
        Some(state.dpop_nonces.current(&state.store, now).await?)
    })
}

fn with_nonce(error: Error, nonce: &str) -> Error {
    match HeaderValue::from_str(nonce) {
        Ok(value) => error.with_header(DPOP_NONCE, value),
        Err(_) => error,
    }
}

/// The `DPoP-Nonce` header for a successful response, when nonces are `demanded` there (§8.2,
/// §9: the client uses it in its next proof).
pub async fn fresh_nonce(
    state: &AppState,
    demanded: bool,
    now: UnixTime,
) -> Result<Option<(HeaderName, HeaderValue)>, Error> {
    if !demanded {
        return Ok(None);
    }
    let nonce = state.dpop_nonces.current(&state.store, now).await?;
    Ok(HeaderValue::from_str(&nonce)
        .ok()
        .map(|value| (DPOP_NONCE, value)))
}

/// §7.1: the access token of `Authorization: DPoP <token>`, if the request uses that scheme.
pub fn dpop_authorization(headers: &HeaderMap) -> Result<Option<String>, Error> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let Ok(value) = value.to_str() else {
        return Ok(None);
    };
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("dpop") => {
            let token = token.trim();
            if token.is_empty() {
                return Err(resource_error(ErrorCode::InvalidToken, "no access token"));
            }
            Ok(Some(token.to_string()))
        }
        _ => Ok(None),
    }
}

/// Where a bound token is presented (§7.1): our endpoint, and whether it demands a nonce (§9).
pub struct Resource<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub require_nonce: bool,
}

/// §7.1: a DPoP-bound token presented at a resource, with its proof: the proof's key must be
/// the one the token is bound to (`jkt`), the proof for this request and this token, and
/// (§9) carry our nonce where the resource demands one.
pub async fn at_resource(
    state: &AppState,
    server: &AuthServer,
    headers: &HeaderMap,
    resource: &Resource<'_>,
    token: &str,
    jkt: &str,
    now: UnixTime,
) -> Result<(), Error> {
    let Resource { method, path, .. } = *resource;
    let proof = dpop::proof_header(headers)
        .map_err(|why| resource_error(ErrorCode::InvalidDpopProof, why))?
        .ok_or_else(|| resource_error(ErrorCode::InvalidDpopProof, "a DPoP proof is required"))?;
    let url = server.endpoint(path);
    let proof = check(state, proof, method, &url, Some(token), now)
        .map_err(|why| resource_error(ErrorCode::InvalidDpopProof, why))?;
    if proof.jkt != jkt {
        return Err(resource_error(
            ErrorCode::InvalidToken,
            "the token is bound to another key",
        ));
    }
    // §9: 401 use_dpop_nonce, with the nonce to use.
    if resource.require_nonce {
        if let Some(fresh) = missing_nonce(state, &proof, now).await? {
            let error = resource_error(
                ErrorCode::UseDpopNonce,
                "the DPoP proof must carry the server's nonce (DPoP-Nonce)",
            );
            return Err(with_nonce(error, &fresh));
        }
    }
    single_use(state, &proof, now)
        .await?
        .map_err(|why| resource_error(ErrorCode::InvalidDpopProof, why))?;
    Ok(())
}

fn check(
    state: &AppState,
    proof: &str,
    method: &str,
    url: &str,
    access_token: Option<&str>,
    now: UnixTime,
) -> Result<Proof, &'static str> {
    let config = &state.config.dpop;
    dpop::check(
        proof,
        &Expected {
            method,
            url,
            access_token,
            now,
            max_age: config.proof_max_age.as_i64(),
            max_skew: config.proof_max_skew.as_i64(),
        },
    )
}

/// §11.1: each proof once, for as long as its `iat` is acceptable, on every replica.
/// `Ok(Err(reason))` for a replay; `Err` when the store failed.
async fn single_use(
    state: &AppState,
    proof: &Proof,
    now: UnixTime,
) -> Result<Result<(), &'static str>, Error> {
    let until = proof.iat + state.config.dpop.proof_max_age.as_i64() + 1;
    let first = state
        .used_jtis
        .first_use(JtiKind::DpopProof, &proof.jkt, &proof.jti, until, now)
        .await?;
    Ok(if first {
        Ok(())
    } else {
        Err("the DPoP proof was already used (jti)")
    })
}

/// §5 and §7.1 at the token endpoint: 400 `invalid_dpop_proof`.
fn invalid_proof(why: &'static str) -> Error {
    Error::new(ErrorCode::InvalidDpopProof, why)
}

/// §7.1: at a resource, 401 with `WWW-Authenticate: DPoP error="…"` and the algorithms we accept.
pub fn resource_error(code: ErrorCode, description: &'static str) -> Error {
    let challenge = format!(
        "DPoP algs=\"{}\", error=\"{}\", error_description=\"{}\"",
        ClientAlg::names().join(" "),
        code.as_str(),
        description
    );
    let mut error = Error::new(code, description).with_status(StatusCode::UNAUTHORIZED);
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        error = error.with_header(axum::http::header::WWW_AUTHENTICATE, value);
    }
    error
}
