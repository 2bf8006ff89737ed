//! Minting the access token and (with `openid`) the ID token for a user, as the code, refresh
//! and password grants all do.

use super::GrantContext;
use crate::clock::UnixTime;
use crate::error::Error;
use crate::policy::{self, ClaimTarget};
use crate::protocol::ScopeSet;
use crate::store::User;
use crate::tokens::access_token::{self, AccessTokenRequest};
use crate::tokens::id_token::{self, IdTokenRequest};

/// The server's custom claims this scope releases into this kind of token.
async fn custom(
    cx: &GrantContext<'_>,
    user: &User,
    scope: &ScopeSet,
    target: ClaimTarget,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    policy::custom_claims(&cx.state.store, cx.server.id(), Some(user), scope, target).await
}

pub struct UserTokens {
    pub access_token: String,
    pub jti: String,
    pub id_token: Option<String>,
}

pub async fn for_user(
    cx: &GrantContext<'_>,
    user: &User,
    scope: &ScopeSet,
    grant_id: &str,
    auth_time: UnixTime,
    nonce: Option<&str>,
    sid: Option<&str>,
) -> Result<UserTokens, Error> {
    let keys = cx.state.keys.key_set(&cx.server.server, cx.now).await?;
    let key = keys
        .signing_key(cx.now)
        .ok_or_else(|| Error::internal("no signing key"))?;
    let issued = access_token::mint(
        key,
        AccessTokenRequest {
            issuer: &cx.server.issuer,
            audience: &cx.server.server.audience,
            subject: &user.id,
            client_id: &cx.client.id,
            scope,
            ttl: cx.access_token_ttl(),
            auth_time: Some(auth_time),
            grant_id: Some(grant_id),
            extra_claims: custom(cx, user, scope, ClaimTarget::AccessToken).await?,
        },
        cx.now,
    )
    .map_err(Error::internal)?;
    let id_token = if scope.contains("openid") {
        Some(
            id_token::mint(
                key,
                IdTokenRequest {
                    issuer: &cx.server.issuer,
                    client_id: &cx.client.id,
                    user,
                    auth_time,
                    nonce,
                    sid,
                    access_token: Some(&issued.token),
                    code: None,
                    scope,
                    include_scope_claims: false,
                    ttl: cx.id_token_ttl(),
                    extra_claims: custom(cx, user, scope, ClaimTarget::IdToken).await?,
                },
                cx.now,
            )
            .map_err(Error::internal)?,
        )
    } else {
        None
    };
    Ok(UserTokens {
        access_token: issued.token,
        jti: issued.claims.jti,
        id_token,
    })
}
