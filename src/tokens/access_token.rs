//! JWT access tokens, RFC 9068.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::UnixTime;
use crate::keys::{JwtType, LoadedKey};
use crate::protocol::ScopeSet;
use crate::security::unique_token;
use crate::tokens::claims;

/// RFC 9068 §2.2: the claims of a JWT access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The resource owner, or the client itself for client credentials (§2.2).
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub scope: String,
    pub iat: UnixTime,
    pub exp: UnixTime,
    pub jti: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auth_time: Option<UnixTime>,
    /// The grant this token was issued under (withdrawn with it); absent for client credentials.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gid: Option<String>,
    /// RFC 8693 §4.1: who acts for the subject, in a token from token exchange.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub act: Option<Value>,
    /// RFC 9449 §6.1: `{"jkt": …}`, the DPoP key the token is bound to.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cnf: Option<Value>,
    /// The server's custom claims (per-server policy), never a registered claim's name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AccessTokenClaims {
    /// RFC 9449 §6.1: the thumbprint of the DPoP key the token is bound to, if it is.
    pub fn dpop_jkt(&self) -> Option<&str> {
        self.cnf.as_ref()?.get("jkt")?.as_str()
    }
}

pub struct IssuedAccessToken {
    pub token: String,
    pub claims: AccessTokenClaims,
}

/// What the token is about; the grant decides these.
pub struct AccessTokenRequest<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub subject: &'a str,
    pub client_id: &'a str,
    pub scope: &'a ScopeSet,
    pub ttl: i64,
    pub auth_time: Option<UnixTime>,
    pub grant_id: Option<&'a str>,
    /// Custom claims released by the granted scope (`policy::custom_claims`); a name that is
    /// a registered claim is dropped rather than allowed to override it.
    pub extra_claims: Map<String, Value>,
    /// RFC 8693 §4.1 `act`.
    pub act: Option<Value>,
    /// RFC 9449 §6: the thumbprint of the DPoP key the token is bound to.
    pub dpop_jkt: Option<&'a str>,
}

pub fn mint(
    key: &LoadedKey,
    request: AccessTokenRequest<'_>,
    now: UnixTime,
) -> Result<IssuedAccessToken, String> {
    let claims = AccessTokenClaims {
        iss: request.issuer.to_string(),
        sub: request.subject.to_string(),
        aud: request.audience.to_string(),
        client_id: request.client_id.to_string(),
        scope: request.scope.to_string(),
        iat: now,
        exp: now + request.ttl,
        jti: unique_token(16),
        auth_time: request.auth_time,
        gid: request.grant_id.map(str::to_string),
        act: request.act,
        cnf: request
            .dpop_jkt
            .map(|jkt| serde_json::json!({ "jkt": jkt })),
        extra: request
            .extra_claims
            .into_iter()
            .filter(|(name, _)| !claims::is_reserved(name))
            .collect(),
    };
    let token = key.signer.sign(JwtType::AccessToken, &claims)?;
    Ok(IssuedAccessToken { token, claims })
}
