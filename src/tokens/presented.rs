//! What a token presented to introspection (RFC 7662) or revocation (RFC 7009) is, and whether
//! it is still in force: one of this server's JWT access tokens or one of its refresh tokens.
//! /userinfo asks the same question of its bearer token.

use crate::auth_server::AuthServer;
use crate::clock::UnixTime;
use crate::error::Error;
use crate::security::hash_secret;
use crate::state::AppState;
use crate::store::{RefreshToken, Store, StoreError};
use crate::tokens::verify::{verify, Expected};
use crate::tokens::AccessTokenClaims;

/// The kinds of token the two endpoints know (RFC 7009 §2.1, RFC 7662 §2.1 `token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    AccessToken,
    RefreshToken,
}

impl TokenKind {
    /// `token_type_hint`, from the OAuth Token Type Hints registry. A hint we do not know is
    /// ignored rather than refused: RFC 7009 §2.2.1 keeps `unsupported_token_type` for types
    /// the server cannot revoke, and we revoke (and introspect) every type we issue.
    pub fn from_hint(hint: Option<&str>) -> Option<Self> {
        match hint? {
            "access_token" => Some(Self::AccessToken),
            "refresh_token" => Some(Self::RefreshToken),
            _ => None,
        }
    }

    /// RFC 7662 §2.1 and RFC 7009 §2.1: the hint only orders the search; a token not found as
    /// the hinted kind is looked for as the other.
    fn search_order(hint: Option<Self>) -> [Self; 2] {
        match hint {
            Some(Self::RefreshToken) => [Self::RefreshToken, Self::AccessToken],
            _ => [Self::AccessToken, Self::RefreshToken],
        }
    }
}

/// A token this server issued.
#[derive(Debug)]
pub enum Presented {
    /// An access token of this server: signed by one of its published keys, for its issuer
    /// and audience, not expired. It may still have been withdrawn: see
    /// [`access_token_in_force`].
    AccessToken(AccessTokenClaims),
    /// A refresh token of this server, in whatever state: see [`refresh_token_in_force`].
    RefreshToken(RefreshToken),
}

/// Find `token` among this server's tokens, the hinted kind first. `None` for anything
/// malformed, forged, expired (access tokens), unknown, or issued by another server.
pub async fn identify(
    state: &AppState,
    server: &AuthServer,
    token: &str,
    hint: Option<TokenKind>,
    now: UnixTime,
) -> Result<Option<Presented>, Error> {
    for kind in TokenKind::search_order(hint) {
        let found = match kind {
            TokenKind::AccessToken => access_token(state, server, token, now)
                .await?
                .map(Presented::AccessToken),
            TokenKind::RefreshToken => refresh_token(&state.store, server, token)
                .await?
                .map(Presented::RefreshToken),
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

async fn access_token(
    state: &AppState,
    server: &AuthServer,
    token: &str,
    now: UnixTime,
) -> Result<Option<AccessTokenClaims>, Error> {
    // A JWS compact serialization has three parts; skip the key set for anything else.
    if token.split('.').count() != 3 {
        return Ok(None);
    }
    let keys = state.keys.key_set(&server.server, now).await?;
    let verified = verify(
        token,
        &keys,
        &server.issuer,
        &server.server.audience,
        // The audience is checked below: the server's, or one token exchange issues for.
        Expected::AccessToken {
            audience_check: false,
        },
        now,
    );
    let Ok(claims) = verified else {
        return Ok(None);
    };
    Ok(audience_is_ours(&state.store, server, &claims)
        .await?
        .then_some(claims))
}

/// Is the token's `aud` one this server issues for? Its own audience, or (RFC 8693) one the
/// token's client may exchange tokens for: a token from token exchange is for another API,
/// and that API introspects it here. Any other audience is refused, whoever signed it.
pub async fn audience_is_ours(
    store: &Store,
    server: &AuthServer,
    claims: &AccessTokenClaims,
) -> Result<bool, StoreError> {
    if claims.aud == server.server.audience {
        return Ok(true);
    }
    Ok(store
        .cached_client(&claims.client_id)
        .await?
        .is_some_and(|c| {
            c.server_id == server.id() && c.token_exchange_audiences.contains(&claims.aud)
        }))
}

async fn refresh_token(
    store: &Store,
    server: &AuthServer,
    token: &str,
) -> Result<Option<RefreshToken>, StoreError> {
    // Stored only as its SHA-256 hash; a refresh token is one of this server's or unknown.
    let found = store.refresh_token(&hash_secret(token)).await?;
    Ok(found.filter(|t| t.server_id == server.id()))
}

/// Is a verified access token still in force? Withdrawn with its grant (a replayed code, a
/// reused or revoked refresh token, a disabled user: every token carries its grant id `gid`)
/// or on its own by RFC 7009 revocation of its `jti`.
pub async fn access_token_in_force(
    store: &Store,
    claims: &AccessTokenClaims,
    now: UnixTime,
) -> Result<bool, StoreError> {
    Ok(!store
        .access_token_withdrawn(&claims.jti, claims.gid.as_deref(), now)
        .await?)
}

/// The expiry of a refresh token: the earlier of the family's absolute lifetime and this
/// token's idle lifetime.
pub fn refresh_token_expiry(token: &RefreshToken) -> UnixTime {
    token.expires_at.min(token.idle_expires_at)
}

/// Could this refresh token be redeemed now? Not once revoked, retired by a rotation (RFC 9700
/// §4.14.2: only its successor is current), expired, or withdrawn with its grant.
pub async fn refresh_token_in_force(
    store: &Store,
    token: &RefreshToken,
    now: UnixTime,
) -> Result<bool, StoreError> {
    if token.revoked_at.is_some() || token.rotated_at.is_some() {
        return Ok(false);
    }
    if refresh_token_expiry(token) <= now {
        return Ok(false);
    }
    store.grant_is_active(&token.grant_id, now).await
}
