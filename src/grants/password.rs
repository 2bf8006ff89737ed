//! The resource owner password credentials grant (RFC 6749 §4.3): only for confidential clients
//! explicitly allowed it. Every failure is the same `invalid_grant`, so the endpoint does not
//! tell which usernames exist; failures count toward the account lockout the login form shares.

use super::{tokens, GrantContext, TokenResponse};
use crate::accounts;
use crate::audit::{Event, Kind};
use crate::error::Error;
use crate::protocol::ScopeSet;
use crate::security::{random_token, Secret};

pub async fn handle(cx: GrantContext<'_>) -> Result<TokenResponse, Error> {
    if cx.client.is_public() {
        return Err(Error::unauthorized_client(
            "the password grant requires a confidential client",
        ));
    }
    let username = cx.form.require("username")?;
    let password = Secret::new(cx.form.require("password")?);
    let scope = granted_scope(&cx).await?;
    let user = match accounts::check_password(cx.state, username.trim(), &password, cx.ip, cx.now)
        .await?
    {
        Ok(user) => user,
        Err(why) => {
            tracing::info!(client_id = %cx.client.id, reason = ?why, "password grant refused");
            cx.state.audit.record(
                Event::new(Kind::SignInFailed, cx.now)
                    .server(cx.server.id())
                    .actor(format!("client:{}", cx.client.id))
                    .detail("via", "password_grant")
                    .typed_username(username)
                    .detail("reason", why.as_str()),
            );
            return Err(Error::invalid_grant("invalid username or password"));
        }
    };
    let grant_id = random_token(16);
    cx.state
        .store
        .insert_grant(
            &grant_id,
            cx.server.id(),
            &cx.client.id,
            Some(&user.id),
            &scope.to_string(),
            cx.now,
            cx.now + cx.refresh_token_ttl(),
        )
        .await?;
    let issued = tokens::for_user(&cx, &user, &scope, &grant_id, cx.now, None, None).await?;
    let refresh_token = cx
        .new_refresh_token(&grant_id, &user.id, &scope, cx.now, None)
        .await?;
    // One line per token at debug only: the audit log records every issuance (with its jti).
    tracing::debug!(client_id = %cx.client.id, server = %cx.server.id(), user = %user.id, jti = %issued.jti, "tokens issued (password)");
    cx.state.audit.record(
        Event::new(Kind::SignIn, cx.now)
            .server(cx.server.id())
            .actor(format!("client:{}", cx.client.id))
            .subject(user.id.as_str())
            .detail("via", "password_grant")
            .detail("username", username.trim()),
    );
    cx.audit_issued(
        "password",
        Some(user.id.as_str()),
        &issued.jti,
        &scope.to_string(),
        refresh_token.is_some(),
    );
    Ok(TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer",
        expires_in: cx.access_token_ttl(),
        scope: scope.to_string(),
        refresh_token,
        id_token: issued.id_token,
    })
}

/// The requested scopes (OIDC scopes, the client's scopes, offline_access when it may refresh),
/// or the client's defaults.
async fn granted_scope(cx: &GrantContext<'_>) -> Result<ScopeSet, Error> {
    let requested = match cx.form.get("scope") {
        Some(raw) => ScopeSet::parse(raw).map_err(|e| Error::invalid_scope(e.to_string()))?,
        None => return crate::policy::default_scope(&cx.state.store, cx.client).await,
    };
    for s in requested.iter() {
        if !cx.client.may_request(s) {
            return Err(Error::invalid_scope(format!(
                "scope `{s}` is not allowed for this client"
            )));
        }
    }
    Ok(requested)
}
