//! Signed request objects (RFC 9101, JAR): the authorization request as the claims of a JWT
//! the client signed with one of its registered keys, by value (`request`) or pushed through
//! /par. Its claims are then the only parameters used (§6.3). Unsigned (`alg: none`) request
//! objects are refused: they prove nothing the plain parameters do not.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::auth_server::AuthServer;
use crate::clock::UnixTime;
use crate::error::{Error, ErrorCode};
use crate::protocol::jose::Jws;
use crate::state::AppState;
use crate::store::{Client, JtiKind};

/// How far ahead of our clock `iat`/`nbf` may be.
const SKEW: i64 = 60;

/// The longest a request object may live (`exp` after `nbf`/`iat`/now), as FAPI 2.0 asks.
const MAX_LIFETIME: i64 = 3600;

/// The JWT's own claims, not authorization request parameters.
const JWT_CLAIMS: &[&str] = &["iss", "aud", "exp", "nbf", "iat", "jti", "sub"];

/// Verify `object` as `client`'s request object for `server`; its parameters. Errors are
/// `invalid_request_object` (RFC 9101 §6.2), the store's failures a server error.
pub async fn verify(
    state: &AppState,
    server: &AuthServer,
    client: &Client,
    object: &str,
    now: UnixTime,
) -> Result<BTreeMap<String, String>, Error> {
    let fail = |why: &'static str| Error::new(ErrorCode::InvalidRequestObject, why);
    let jws = Jws::parse(object).map_err(fail)?;
    // §10.8: explicit typing, where the client uses it.
    if jws
        .header_str("typ")
        .is_some_and(|t| !matches!(t, "oauth-authz-req+jwt" | "JWT" | "jwt"))
    {
        return Err(fail("typ must be oauth-authz-req+jwt"));
    }
    let kid = jws.header_str("kid");
    let keys = state
        .client_keys
        .keys_for(client, kid, now)
        .await
        .map_err(|why| Error::new(ErrorCode::InvalidRequestObject, why))?;
    let verified = match kid {
        Some(kid) => match keys.find(kid) {
            Some(jwk) => jws.verify(jwk),
            None => Err("no registered key has this kid"),
        },
        None => {
            if keys
                .keys
                .iter()
                .filter(|k| jws.alg.fits(k))
                .any(|k| jws.verify(k).is_ok())
            {
                Ok(())
            } else {
                Err("invalid signature")
            }
        }
    };
    verified.map_err(fail)?;
    // §4 and §10.2: from this client, for this server, short-lived.
    if jws.claim_str("iss") != Some(client.id.as_str()) {
        return Err(fail("iss must be the client_id"));
    }
    if jws.claims.get("client_id").is_some()
        && jws.claim_str("client_id") != Some(client.id.as_str())
    {
        return Err(fail("client_id does not match the client"));
    }
    if !jws.audiences().contains(&server.issuer.as_str()) {
        return Err(fail("aud must be the issuer"));
    }
    let exp = jws.claim_i64("exp").ok_or_else(|| fail("exp is missing"))?;
    if exp <= now {
        return Err(fail("the request object has expired"));
    }
    let start = match jws.claims.get("nbf") {
        Some(_) => {
            let nbf = jws
                .claim_i64("nbf")
                .ok_or_else(|| fail("nbf is not a number"))?;
            if nbf > now + SKEW {
                return Err(fail("the request object is not valid yet (nbf)"));
            }
            nbf
        }
        None => jws.claim_i64("iat").unwrap_or(now),
    };
    if exp - start > MAX_LIFETIME {
        return Err(fail(
            "the request object lives too long (exp at most 60 minutes after nbf)",
        ));
    }
    let jti = match jws.claim_str("jti") {
        Some(jti) if !jti.is_empty() && jti.len() <= 256 => jti,
        _ => return Err(fail("jti must be 1 to 256 characters")),
    };
    // Nested requests are not requests (§4).
    if jws.claims.contains_key("request") || jws.claims.contains_key("request_uri") {
        return Err(fail("a request object cannot hold request or request_uri"));
    }
    let mut parameters = BTreeMap::new();
    for (name, value) in &jws.claims {
        if JWT_CLAIMS.contains(&name.as_str()) {
            continue;
        }
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            // `claims` (OIDC Core §5.5) is an object: kept as its JSON text.
            other => other.to_string(),
        };
        parameters.insert(name.clone(), value);
    }
    // §10.8 (replay): each request object once, until it expires, on every replica.
    if !state
        .used_jtis
        .first_use(JtiKind::RequestObject, &client.id, jti, exp, now)
        .await?
    {
        return Err(fail("the request object was already used (jti)"));
    }
    Ok(parameters)
}
