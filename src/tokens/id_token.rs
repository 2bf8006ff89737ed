//! ID tokens (OIDC Core §2, §3.1.3.6, §3.2.2.10).

use serde_json::{json, Map, Value};

use crate::clock::UnixTime;
use crate::keys::{JwtType, LoadedKey};
use crate::protocol::ScopeSet;
use crate::security::{base64url, sha256};
use crate::store::User;
use crate::tokens::claims;

pub struct IdTokenRequest<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub user: &'a User,
    pub auth_time: UnixTime,
    pub nonce: Option<&'a str>,
    pub sid: Option<&'a str>,
    /// RFC 8176 authentication method references (OIDC Core §2 `amr`).
    pub amr: Option<Vec<String>>,
    /// OIDC Core §2 `acr`.
    pub acr: Option<&'a str>,
    /// Issued alongside: its `at_hash` goes in.
    pub access_token: Option<&'a str>,
    /// Issued alongside from the authorization endpoint: its `c_hash` goes in.
    pub code: Option<&'a str>,
    pub scope: &'a ScopeSet,
    /// §5.4: profile claims go in the ID token only when no access token is issued.
    pub include_scope_claims: bool,
    pub ttl: i64,
    /// Custom claims released by the granted scope (`policy::custom_claims`); never overrides
    /// a claim set above or a registered claim.
    pub extra_claims: Map<String, Value>,
}

/// §3.1.3.6: base64url of the left half of the SHA-256 of the value's ASCII octets.
pub fn half_hash(value: &str) -> String {
    let digest = sha256(value.as_bytes());
    base64url(&digest[..16])
}

pub fn mint(key: &LoadedKey, r: IdTokenRequest<'_>, now: UnixTime) -> Result<String, String> {
    let mut c: Map<String, Value> = match json!({
        "iss": r.issuer,
        "sub": r.user.id,
        "aud": r.client_id,
        "azp": r.client_id,
        "iat": now,
        "exp": now + r.ttl,
        "auth_time": r.auth_time,
    }) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    if let Some(nonce) = r.nonce {
        c.insert("nonce".into(), json!(nonce));
    }
    if let Some(sid) = r.sid {
        c.insert("sid".into(), json!(sid));
    }
    if let Some(amr) = r.amr {
        c.insert("amr".into(), json!(amr));
    }
    if let Some(acr) = r.acr {
        c.insert("acr".into(), json!(acr));
    }
    if let Some(at) = r.access_token {
        c.insert("at_hash".into(), json!(half_hash(at)));
    }
    if let Some(code) = r.code {
        c.insert("c_hash".into(), json!(half_hash(code)));
    }
    if r.include_scope_claims {
        c.extend(claims::for_scope(r.user, r.scope));
    }
    for (name, value) in r.extra_claims {
        if !claims::is_reserved(&name) && !c.contains_key(&name) {
            c.insert(name, value);
        }
    }
    key.signer.sign(JwtType::Jwt, &Value::Object(c))
}
