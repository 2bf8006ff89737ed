//! Verifying tokens the way a relying party does: with an independent JWT library and nothing
//! but the published JWKS.

#![allow(dead_code)]

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;

pub async fn fetch_jwks(http: &reqwest::Client, jwks_uri: &str) -> JwkSet {
    let response = http.get(jwks_uri).send().await.expect("GET jwks");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JWKS JSON")
}

/// Verify `token` with the key named by its `kid` in `jwks`, for `issuer` and `audience`.
pub fn verify(token: &str, jwks: &JwkSet, issuer: &str, audience: &str) -> Result<Value, String> {
    let header = decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks
        .find(&kid)
        .ok_or_else(|| format!("kid {kid} not in JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

pub fn kid_of(token: &str) -> String {
    decode_header(token).expect("JWT header").kid.expect("kid")
}

pub fn typ_of(token: &str) -> Option<String> {
    decode_header(token).expect("JWT header").typ
}

/// A JWT's claims, unverified: for tests that read what they were handed (signatures are
/// checked by `verify` and the tests that use it).
pub fn payload(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}
