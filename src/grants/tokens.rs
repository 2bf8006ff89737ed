//! Minting a user's access token and (with `openid`) ID token, as the code, refresh and password
//! grants and the implicit flow all do.

use super::GrantContext;
use crate::app::AppState;
use crate::clock::UnixTime;
use crate::endpoints::AuthServer;
use crate::error::Error;
use crate::policy::{self, ClaimTarget, Lifetimes};
use crate::protocol::ScopeSet;
use crate::store::{Client, User};
use crate::tokens::access_token::{self, AccessTokenRequest};
use crate::tokens::id_token::{self, IdTokenRequest};

/// Whom the tokens are for, under which grant.
pub struct UserTokenRequest<'a> {
    pub state: &'a AppState,
    pub server: &'a AuthServer,
    pub client: &'a Client,
    pub user: &'a User,
    pub scope: &'a ScopeSet,
    pub grant_id: &'a str,
    pub auth_time: UnixTime,
    pub nonce: Option<&'a str>,
    pub sid: Option<&'a str>,
    /// False for `response_type=id_token`: an ID token alone.
    pub with_access_token: bool,
    /// False for `response_type=token`: no ID token (and no signature spent on one).
    pub with_id_token: bool,
    pub now: UnixTime,
}

pub struct UserTokens {
    /// The access token and its `jti`.
    pub access_token: Option<(String, String)>,
    pub access_token_ttl: i64,
    pub id_token: Option<String>,
}

pub async fn mint(r: UserTokenRequest<'_>) -> Result<UserTokens, Error> {
    let keys = r.state.keys.key_set(&r.server.server, r.now).await?;
    let key = keys
        .signing_key(r.now)
        .ok_or_else(|| Error::internal("no signing key"))?;
    let lifetimes = Lifetimes::of(&r.state.config.tokens, &r.server.server, r.client);
    // One read of the server's claim definitions serves both tokens.
    let defined = r.state.store.cached_claims(r.server.id()).await?;
    let custom = |target| policy::release(&defined, Some(r.user), r.scope, target);
    let access_token = if r.with_access_token {
        let issued = access_token::mint(
            key,
            AccessTokenRequest {
                issuer: &r.server.issuer,
                audience: &r.server.server.audience,
                subject: &r.user.id,
                client_id: &r.client.id,
                scope: r.scope,
                ttl: lifetimes.access_token,
                auth_time: Some(r.auth_time),
                grant_id: Some(r.grant_id),
                extra_claims: custom(ClaimTarget::AccessToken),
            },
            r.now,
        )
        .map_err(Error::internal)?;
        Some((issued.token, issued.claims.jti))
    } else {
        None
    };
    let id_token = if r.with_id_token && r.scope.contains("openid") {
        Some(
            id_token::mint(
                key,
                IdTokenRequest {
                    issuer: &r.server.issuer,
                    client_id: &r.client.id,
                    user: r.user,
                    auth_time: r.auth_time,
                    nonce: r.nonce,
                    sid: r.sid,
                    access_token: access_token.as_ref().map(|(t, _)| t.as_str()),
                    code: None,
                    scope: r.scope,
                    // OIDC Core §5.4: scope claims go in the ID token only without an access token.
                    include_scope_claims: access_token.is_none(),
                    ttl: lifetimes.id_token,
                    extra_claims: custom(ClaimTarget::IdToken),
                },
                r.now,
            )
            .map_err(Error::internal)?,
        )
    } else {
        None
    };
    Ok(UserTokens {
        access_token,
        access_token_ttl: lifetimes.access_token,
        id_token,
    })
}

/// The token endpoint's case: an access token, and an ID token with `openid`.
pub struct GrantTokens {
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
) -> Result<GrantTokens, Error> {
    let minted = mint(UserTokenRequest {
        state: cx.state,
        server: cx.server,
        client: cx.client,
        user,
        scope,
        grant_id,
        auth_time,
        nonce,
        sid,
        with_access_token: true,
        with_id_token: true,
        now: cx.now,
    })
    .await?;
    let (access_token, jti) = minted
        .access_token
        .ok_or_else(|| Error::internal("no access token minted"))?;
    Ok(GrantTokens {
        access_token,
        jti,
        id_token: minted.id_token,
    })
}
