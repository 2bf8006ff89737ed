//! The resource owner password credentials grant (RFC 6749 §4.3): only for confidential clients
//! explicitly allowed it. Every failure is the same `invalid_grant`, so the endpoint does not
//! tell which usernames exist; failures count toward the account lockout the login form shares.

use super::GrantContext;
use crate::accounts;
use crate::audit::{Event, Kind};
use crate::error::Error;
use crate::issuer::{Decision, Refresh, Subject, UserGrant, Wanted};
use crate::policy::{self, Grant, ScopeBasis};
use crate::protocol::token_request::PasswordCredentials;
use crate::protocol::GrantType;
use crate::security::random_token;

pub async fn decide(
    cx: &GrantContext<'_>,
    request: PasswordCredentials,
) -> Result<Decision, Error> {
    if cx.client.is_public() {
        return Err(Error::unauthorized_client(
            "the password grant requires a confidential client",
        ));
    }
    let username = request.username.trim();
    let defaults = policy::default_scope(&cx.state.store, cx.client).await?;
    let scope = policy::decide_scope(
        cx.client,
        request.scope.as_deref(),
        ScopeBasis::User {
            defaults: &defaults,
        },
    )?;
    let user = match accounts::check_password(cx.state, username, &request.password, cx.ip, cx.now)
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
    let allowed = cx
        .check_access(Grant::Is(GrantType::Password), Some(&user), &scope)
        .await?;
    let scope = allowed.scope;
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
            cx.now + cx.lifetimes().with(allowed.lifetimes).refresh_token,
            GrantType::Password,
        )
        .await?;
    cx.state.audit.record(
        Event::new(Kind::SignIn, cx.now)
            .server(cx.server.id())
            .actor(format!("client:{}", cx.client.id))
            .subject(user.id.as_str())
            .detail("via", "password_grant")
            .detail("username", username),
    );
    Ok(Decision {
        grant_type: GrantType::Password,
        subject: Subject::User(Box::new(UserGrant {
            user,
            grant_id,
            auth_time: cx.now,
            nonce: None,
            sid: None,
        })),
        scope,
        tokens: Wanted::TOKEN_ENDPOINT,
        refresh: Refresh::NewFamily,
        lifetimes: allowed.lifetimes,
    })
}
