//! `private_key_jwt` (RFC 7523 §2.2 and §3, OIDC Core §9): a JWT the client signed with one of
//! its registered keys, about itself, for us, short-lived and used once.

use crate::clock::UnixTime;
use crate::error::Error;
use crate::protocol::jose::Jws;
use crate::state::AppState;
use crate::store::{Client, JtiKind};

/// How far ahead of our clock a client's `iat` or `nbf` may be.
const SKEW: i64 = 60;

/// The longest `jti` stored.
const MAX_JTI: usize = 256;

/// Check `token` as `client`'s assertion at `now`. `Ok(Err(reason))` when it is refused (the
/// reason goes to the client as the error description, and to the audit log); `Err` when the
/// store failed.
pub async fn verify(
    state: &AppState,
    client: &Client,
    token: &str,
    now: UnixTime,
) -> Result<Result<(), String>, Error> {
    let jws = match Jws::parse(token) {
        Ok(jws) => jws,
        Err(why) => return Ok(Err(why.into())),
    };
    // A JWT of another kind (a DPoP proof, a request object, an access token) is not an
    // assertion, whoever signed it (RFC 8725 §3.11).
    if jws
        .header_str("typ")
        .is_some_and(|t| !matches!(t, "JWT" | "jwt" | "client-authentication+jwt"))
    {
        return Ok(Err("unexpected typ".into()));
    }
    let kid = jws.header_str("kid");
    let keys = match state.client_keys.keys_for(client, kid, now).await {
        Ok(keys) => keys,
        Err(why) => return Ok(Err(why)),
    };
    // The key named by `kid`, or (none named) any registered key of the algorithm's kind.
    let verified = match kid {
        Some(kid) => match keys.find(kid) {
            Some(jwk) => jws.verify(jwk),
            None => Err("no registered key has this kid"),
        },
        None => {
            let mut fitting = keys.keys.iter().filter(|k| jws.alg.fits(k)).peekable();
            if fitting.peek().is_none() {
                Err("no registered key fits the algorithm")
            } else if fitting.any(|k| jws.verify(k).is_ok()) {
                Ok(())
            } else {
                Err("invalid signature")
            }
        }
    };
    if let Err(why) = verified {
        return Ok(Err(why.into()));
    }
    if let Err(why) = check_claims(state, client, &jws, now) {
        return Ok(Err(why.into()));
    }
    // RFC 7523 §3 item 7, OIDC Core §9: used once. Recorded after the signature check, so
    // nobody can spend a client's ids with forged assertions.
    let (jti, exp) = (
        jws.claim_str("jti").unwrap_or(""),
        jws.claim_i64("exp").unwrap_or(now),
    );
    if !state
        .used_jtis
        .first_use(JtiKind::ClientAssertion, &client.id, jti, exp, now)
        .await?
    {
        return Ok(Err("the assertion's jti was already used".into()));
    }
    Ok(Ok(()))
}

/// RFC 7523 §3: `iss` and `sub` the client, `aud` us, `exp` in the future but not far off,
/// `jti` present.
fn check_claims(
    state: &AppState,
    client: &Client,
    jws: &Jws<'_>,
    now: UnixTime,
) -> Result<(), &'static str> {
    if jws.claim_str("iss") != Some(client.id.as_str()) {
        return Err("iss must be the client_id");
    }
    if jws.claim_str("sub") != Some(client.id.as_str()) {
        return Err("sub must be the client_id");
    }
    // RFC 7523 §3 item 3: the token endpoint URL, or (RFC 9126 §2, FAPI 2.0) our issuer or
    // the pushed authorization request endpoint.
    let issuer = crate::store::servers::issuer_of(&state.config.issuer, &client.server_id);
    let accepted = [
        issuer.clone(),
        format!("{issuer}/token"),
        format!("{issuer}/par"),
    ];
    if !jws
        .audiences()
        .iter()
        .any(|a| accepted.iter().any(|x| x == a))
    {
        return Err("aud must be the token endpoint URL or the issuer");
    }
    let exp = jws.claim_i64("exp").ok_or("exp is missing")?;
    if exp <= now {
        return Err("the assertion has expired");
    }
    let iat = jws.claim_i64("iat");
    if iat.is_some_and(|iat| iat > now + SKEW) {
        return Err("iat is in the future");
    }
    if jws.claims.get("nbf").is_some() && jws.claim_i64("nbf").is_none_or(|nbf| nbf > now + SKEW) {
        return Err("the assertion is not valid yet (nbf)");
    }
    let max = state.config.client_assertions.max_lifetime.as_i64();
    if exp - iat.unwrap_or(now) > max {
        return Err("exp is too far after iat (at most client_assertions.max_lifetime)");
    }
    match jws.claim_str("jti") {
        Some(jti) if !jti.is_empty() && jti.len() <= MAX_JTI => Ok(()),
        Some(_) => Err("jti must be 1 to 256 characters"),
        None => Err("jti is missing"),
    }
}
