//! Logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4): a JWT with `typ` `logout+jwt`
//! that tells a client a session (`sid`) or a user (`sub`) was signed out.

use serde_json::{json, Value};

use crate::clock::UnixTime;
use crate::keys::{JwtType, LoadedKey};

/// §2.4: the event that makes a JWT a logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long a logout token is valid: long enough for the client to check it on arrival, short
/// enough that one intercepted on the wire is soon useless. Each attempt signs a fresh one.
pub const LOGOUT_TOKEN_TTL: i64 = 120;

pub struct LogoutTokenRequest<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub subject: &'a str,
    /// The session signed out; absent when the client does not want it and the logout ends every
    /// session of the user.
    pub sid: Option<&'a str>,
    /// Stays the same across retries, so a client can drop a repeated delivery (§2.6).
    pub jti: &'a str,
}

/// §2.4: `iss`, `aud`, `iat`, `exp`, `jti`, `events`, `sub` and `sid`; never a `nonce` (§2.4
/// forbids it, so a logout token cannot pass for an ID token).
pub fn mint(key: &LoadedKey, r: LogoutTokenRequest<'_>, now: UnixTime) -> Result<String, String> {
    let mut claims = json!({
        "iss": r.issuer,
        "aud": r.client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_TTL,
        "jti": r.jti,
        "sub": r.subject,
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    });
    if let (Some(sid), Value::Object(map)) = (r.sid, &mut claims) {
        map.insert("sid".into(), json!(sid));
    }
    key.signer.sign(JwtType::LogoutToken, &claims)
}
