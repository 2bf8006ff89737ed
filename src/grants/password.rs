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
    // The grant carries a password and nothing else: where a second factor is required (or,
    // under `optional`, where the user has one), it cannot satisfy the policy. Checked after
    // the password, so the answer tells nothing to whoever does not know it.
    if accounts::second_factor::needed(cx.state, &cx.server.server, cx.client, &user, false).await?
    {
        tracing::info!(client_id = %cx.client.id, user = %user.id, "password grant refused: a second factor is required");
        cx.state.audit.record(
            Event::new(Kind::SignInFailed, cx.now)
                .server(cx.server.id())
                .actor(format!("client:{}", cx.client.id))
                .subject(user.id.as_str())
                .detail("via", "password_grant")
                .detail("reason", "second_factor_required"),
        );
        return Err(Error::invalid_grant(
            "a second factor is required for this user and client, and the password grant cannot \
             carry one; sign in through the authorization endpoint",
        ));
    }
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
            // RFC 8176: a password, and nothing else (a required second factor refused above).
            amr: Some(crate::mfa::Amr::password()),
            acr: None,
        })),
        scope,
        tokens: Wanted::TOKEN_ENDPOINT,
        refresh: Refresh::NewFamily,
        lifetimes: allowed.lifetimes,
    })
}
