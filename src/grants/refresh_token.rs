//! The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2):
//! every use returns a new refresh token and retires the presented one; presenting a retired
//! one revokes the whole family, except within the grace period after its rotation.

use super::{tokens, GrantContext, TokenResponse};
use crate::audit::{Event, Kind};
use crate::error::Error;
use crate::protocol::ScopeSet;
use crate::security::{hash_secret, random_secret};
use crate::store::{RefreshRotation, RefreshToken};

pub async fn handle(cx: GrantContext<'_>) -> Result<TokenResponse, Error> {
    let presented = cx.form.require("refresh_token")?;
    let store = &cx.state.store;
    let old_hash = hash_secret(presented);
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
    if current.revoked_at.is_some() || !grant_active {
        return Err(Error::invalid_grant("the refresh token was revoked"));
    }
    if current.expires_at <= cx.now || current.idle_expires_at <= cx.now {
        return Err(Error::invalid_grant("the refresh token has expired"));
    }
    // §6: the new access token may narrow the scope, never widen it.
    let granted = ScopeSet::parse(&current.scope).map_err(|e| Error::internal(e.to_string()))?;
    // A scope the client has since lost is not issued again, whatever the family was granted.
    let granted = ScopeSet::from_tokens(granted.iter().filter(|s| cx.client.may_request(s)))
        .map_err(|e| Error::internal(e.to_string()))?;
    let scope = match cx.form.get("scope") {
        None => granted.clone(),
        Some(raw) => {
            let requested =
                ScopeSet::parse(raw).map_err(|e| Error::invalid_scope(e.to_string()))?;
            if let Some(extra) = requested.not_in(&granted).next() {
                return Err(Error::invalid_scope(format!(
                    "scope `{extra}` was not granted to this refresh token"
                )));
            }
            requested
        }
    };
    if user.disabled {
        return Err(Error::invalid_grant("the user is no longer active"));
    }
    let new_value = random_secret();
    let new_hash = hash_secret(new_value.expose());
    // The successor keeps the family's absolute expiry and its granted scope (§6: a new refresh
    // token has the scope of the one presented).
    let successor = RefreshToken {
        created_at: cx.now,
        idle_expires_at: (cx.now + cx.refresh_idle_ttl()).min(current.expires_at),
        rotated_at: None,
        revoked_at: None,
        ..current.clone()
    };
    match store
        .rotate_refresh_token(&old_hash, &new_hash, &successor, cx.now)
        .await?
    {
        RefreshRotation::Rotated(_) => {}
        RefreshRotation::AlreadyRotated(t)
            if t.rotated_at
                .is_some_and(|at| cx.now - at < cx.refresh_reuse_grace()) =>
        {
            // A concurrent refresh of the same token within the grace period: the same outcome
            // (fresh tokens in the same family), not a revoked family.
            store.insert_refresh_token(&new_hash, &successor).await?;
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
    let issued = tokens::for_user(
        &cx,
        &user,
        &scope,
        &current.grant_id,
        current.auth_time,
        None,
        current.session_sid.as_deref(),
    )
    .await?;
    // One line per token at debug only: the audit log records every issuance (with its jti).
    tracing::debug!(client_id = %cx.client.id, server = %cx.server.id(), user = %user.id, jti = %issued.jti, "tokens issued (refresh_token)");
    cx.audit_issued(
        "refresh_token",
        Some(user.id.as_str()),
        &issued.jti,
        &scope.to_string(),
        true,
    );
    Ok(TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer",
        expires_in: cx.access_token_ttl(),
        scope: scope.to_string(),
        refresh_token: Some(new_value.expose().to_string()),
        id_token: issued.id_token,
    })
}
