//! Client credentials the high-assurance ways (README "High-assurance clients"): authenticated
//! with `private_key_jwt` (a fresh Ed25519-signed assertion per request), and DPoP-bound (a
//! fresh proof per request). Each adds one signature verification on the server over `cc`;
//! the signing here is on the load generator's core.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hyper::Method;
use serde_json::json;

use crate::{basic, Args, RequestParts, Response, Step};

const ASSERTION_TYPE: &str = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";

/// Unique ids for assertions and proofs (every one is single use on the server).
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn unique_id() -> String {
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{started:x}-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An EdDSA compact JWS.
fn sign(key: &Ed25519KeyPair, header: &serde_json::Value, claims: &serde_json::Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = b64(key.sign(input.as_bytes()).as_ref());
    format!("{input}.{signature}")
}

/// `cc-pkjwt`: client credentials, the client authenticated by an assertion signed with the
/// Ed25519 key in `--pkjwt-key` (PKCS#8 DER), registered as kid `bench`.
pub fn pkjwt_request(args: &Args) -> Result<impl Fn() -> RequestParts + Clone, String> {
    let der = std::fs::read(&args.pkjwt_key)
        .map_err(|e| format!("--pkjwt-key {}: {e}", args.pkjwt_key))?;
    let key = Rc::new(
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|_| "--pkjwt-key is not an Ed25519 PKCS#8 key".to_string())?,
    );
    let client_id = args.pkjwt_id.clone();
    let audience = format!("{}/token", args.base);
    Ok(move || {
        let iat = now();
        let assertion = sign(
            &key,
            &json!({"alg": "EdDSA", "kid": "bench"}),
            &json!({
                "iss": client_id, "sub": client_id, "aud": audience,
                "iat": iat, "exp": iat + 60, "jti": unique_id(),
            }),
        );
        let body = format!(
            "grant_type=client_credentials&client_assertion_type={ASSERTION_TYPE}&client_assertion={assertion}"
        );
        (Method::POST, "/token".to_string(), vec![], Some(body))
    })
}

/// `cc-dpop`: client credentials with the `cc` client's secret and a DPoP proof by an Ed25519
/// key made here.
pub fn dpop_request(args: &Args) -> Result<impl Fn() -> RequestParts + Clone, String> {
    let key = Rc::new(
        Ed25519KeyPair::generate().map_err(|_| "cannot generate an Ed25519 key".to_string())?,
    );
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(key.public_key().as_ref())});
    let auth = basic(&args.cc_id, &args.cc_secret);
    let htu = format!("{}/token", args.base);
    Ok(move || {
        let proof = sign(
            &key,
            &json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk}),
            &json!({"jti": unique_id(), "htm": "POST", "htu": htu, "iat": now()}),
        );
        (
            Method::POST,
            "/token".to_string(),
            vec![
                ("authorization".to_string(), auth.clone()),
                ("dpop".to_string(), proof),
            ],
            Some("grant_type=client_credentials".to_string()),
        )
    })
}

/// A DPoP-bound token response.
pub fn check_dpop_token(response: &Response) -> Step {
    crate::check_token(response)?;
    match response.json_str("token_type").as_deref() {
        Some("DPoP") => Ok(()),
        other => Err(format!("token_type {other:?}, wanted DPoP")),
    }
}
