//! Checking our own JWTs where they come back to us (/userinfo, introspection, id_token_hint):
//! a published key of this server named by `kid`, the algorithm of that key only, the right
//! `typ`, issuer and audience, and expiry against the injected clock.

use jsonwebtoken::{decode, decode_header, Validation};
use serde::de::DeserializeOwned;

use crate::clock::UnixTime;
use crate::keys::KeySet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// An RFC 9068 access token for this audience.
    AccessToken { audience_check: bool },
    /// An ID token we issued; expiry is not checked (hints may be expired, OIDC RP-Initiated
    /// Logout §2).
    IdTokenHint,
}

/// Verify `token` against this server's published keys. Err(reason) when it is not ours,
/// not intact or expired.
pub fn verify<T: DeserializeOwned>(
    token: &str,
    keys: &KeySet,
    issuer: &str,
    audience: &str,
    expected: Expected,
    now: UnixTime,
) -> Result<T, &'static str> {
    let header = decode_header(token).map_err(|_| "malformed token")?;
    // RFC 7515 §4.1.11: a recipient must refuse a `crit` extension it does not understand, and
    // we understand none (jsonwebtoken parses `crit` but does not act on it).
    if header.crit.is_some() {
        return Err("unsupported critical header");
    }
    let typ_ok = match expected {
        Expected::AccessToken { .. } => header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        }),
        Expected::IdTokenHint => header
            .typ
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case("JWT")),
    };
    if !typ_ok {
        return Err("unexpected token type");
    }
    let kid = header.kid.ok_or("no key id")?;
    let key = keys.published_key(&kid, now).ok_or("unknown key")?;
    // Algorithm confusion: only the algorithm of the key named, whatever the header claims.
    let alg = key.alg.jsonwebtoken();
    if header.alg != alg {
        return Err("unexpected algorithm");
    }
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    // Expiry is checked below with our clock, not the system's.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    match expected {
        Expected::AccessToken {
            audience_check: true,
        } => validation.set_audience(&[audience]),
        _ => validation.validate_aud = false,
    }
    let data = decode::<serde_json::Value>(token, &key.decoding_key, &validation)
        .map_err(|_| "invalid signature or claims")?;
    // RFC 7519 §4.1.5: never before `nbf`. We issue none, but a token of ours that carries one
    // is held to it, against our clock (jsonwebtoken's check would read the system's).
    if let Some(nbf) = data.claims.get("nbf") {
        if nbf.as_i64().is_none_or(|nbf| nbf > now) {
            return Err("not yet valid");
        }
    }
    if matches!(expected, Expected::AccessToken { .. }) {
        let exp = data
            .claims
            .get("exp")
            .and_then(|v| v.as_i64())
            .ok_or("no exp")?;
        if exp <= now {
            return Err("expired");
        }
    }
    serde_json::from_value(data.claims).map_err(|_| "unexpected claims")
}
