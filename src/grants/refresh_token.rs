//! The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2):
//! every use returns a new refresh token and retires the presented one; presenting a retired
//! one revokes the whole family, except within the grace period after its rotation, when it
//! gets the same successor again: concurrent refreshes all succeed, and a replay never holds a
//! second live branch of the family.

use super::GrantContext;
use crate::audit::{Event, Kind};
use crate::error::Error;
use crate::issuer::{Decision, Refresh as Successor, Subject, UserGrant, Wanted};
use crate::policy::{self, Grant, ScopeBasis};
use crate::protocol::token_request::Refresh;
use crate::protocol::{GrantType, ScopeSet};
use crate::security::{derive_successor, hash_secret, random_secret};
use crate::store::{RefreshRotation, RefreshToken, SuccessorKey};

pub async fn decide(cx: &GrantContext<'_>, request: Refresh) -> Result<Decision, Error> {
    let store = &cx.state.store;
    let old_hash = hash_secret(request.refresh_token.expose());
    let (current, grant_active, user) = store
        .refresh_token_grant_and_user(&old_hash, cx.now)
        .await?
        .ok_or_else(|| Error::invalid_grant("unknown refresh token"))?;
    // §6: bound to the client it was issued to.
    if current.client_id != cx.client.id || current.server_id != cx.server.id() {
        return Err(Error::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    // RFC 9449 §5: a bound refresh token needs a proof by its key.
    if let Some(bound) = &current.dpop_jkt {
        if cx.dpop_jkt != Some(bound.as_str()) {
            return Err(Error::invalid_grant(
                "the refresh token is bound to a DPoP key: send a proof by that key",
            ));
        }
    }
    if current.revoked_at.is_some() || !grant_active {
        return Err(Error::invalid_grant("the refresh token was revoked"));
    }
    if current.expires_at <= cx.now || current.idle_expires_at <= cx.now {
        return Err(Error::invalid_grant("the refresh token has expired"));
    }
    // §6: the new access token may narrow the scope, never widen it.
    let granted = ScopeSet::parse(&current.scope).map_err(|e| Error::internal(e.to_string()))?;
    let scope = policy::decide_scope(
        cx.client,
        request.scope.as_deref(),
        ScopeBasis::Refresh { granted: &granted },
    )?;
    if user.disabled {
        return Err(Error::invalid_grant("the user is no longer active"));
    }
    // Evaluated as the grant that started the family, with the user's current groups and
    // assignments: a user removed from a group loses the refresh.
    let allowed = cx
        .check_access(Grant::FamilyOf(&current.grant_id), Some(&user), &scope)
        .await?;
    let scope = allowed.scope;
    let lifetimes = cx.lifetimes().with(allowed.lifetimes);
    // Derived, so every retry of this token computes the same successor.
    let new_value = match &current.successor_key {
        Some(key) => derive_successor(&key.0, request.refresh_token.expose()),
        // A token stored before successor keys were kept: a random successor, once.
        None => random_secret(),
    };
    let new_hash = hash_secret(new_value.expose());
    // The successor keeps the family's absolute expiry and its granted scope (§6: a new refresh
    // token has the scope of the one presented).
    let successor = RefreshToken {
        created_at: cx.now,
        idle_expires_at: (cx.now + lifetimes.refresh_idle).min(current.expires_at),
        rotated_at: None,
        revoked_at: None,
        successor_key: Some(SuccessorKey::generate()),
        ..current.clone()
    };
    match store
        .rotate_refresh_token(&old_hash, &new_hash, &successor, cx.now)
        .await?
    {
        RefreshRotation::Rotated(_) => {}
        // No grace means none, even when this replica's clock is behind the one that rotated.
        RefreshRotation::AlreadyRotated(t)
            if lifetimes.refresh_reuse_grace > 0
                && t.rotated_at
                    .is_some_and(|at| cx.now - at < lifetimes.refresh_reuse_grace) =>
        {
            // A retry of the same token within the grace period (concurrent refreshes, a lost
            // response): the successor the first use stored, and fresh access tokens; nothing
            // new is stored. A token from before successor keys has no successor to give again.
            if t.successor_key.is_none() {
                return Err(Error::invalid_grant("the refresh token was already used"));
            }
        }
        RefreshRotation::AlreadyRotated(t) => {
            store.revoke_grant(&t.grant_id, cx.now).await?;
            tracing::warn!(client_id = %cx.client.id, grant = %t.grant_id, "refresh token reused after rotation; family revoked");
            cx.state.audit.record(
                Event::new(Kind::RefreshReuse, cx.now)
                    .server(cx.server.id())
                    .actor(format!("client:{}", cx.client.id))
                    .subject(t.user_id.as_str())
                    .detail("grant_id", t.grant_id.as_str()),
            );
            return Err(Error::invalid_grant("the refresh token was already used"));
        }
        RefreshRotation::Unusable => {
            return Err(Error::invalid_grant("the refresh token was revoked"))
        }
    }
    Ok(Decision {
        grant_type: GrantType::RefreshToken,
        subject: Subject::User(Box::new(UserGrant {
            user,
            grant_id: current.grant_id,
            auth_time: current.auth_time,
            nonce: None,
            sid: current.session_sid,
            // Not kept with refresh tokens: OIDC Core §12.2 asks the same `auth_time`, not `amr`.
            amr: None,
            acr: None,
        })),
        scope,
        tokens: Wanted::TOKEN_ENDPOINT,
        refresh: Successor::Rotated(new_value),
        lifetimes: allowed.lifetimes,
    })
}
