//! The device authorization grant at the token endpoint (RFC 8628 §3.4, §3.5): the device polls
//! with its device code until the user has approved or denied it on `/device`. One statement
//! per poll (`Store::poll_device_code`) redeems an approved code exactly once, or records the
//! poll and, when it came too soon, slows the device down: the state is in the database, so
//! every replica answers alike. The tokens are those of the code flow.

use super::GrantContext;
use crate::error::{Error, ErrorCode};
use crate::issuer::{Decision, Refresh, Subject, UserGrant, Wanted};
use crate::policy::Grant;
use crate::protocol::token_request::DevicePoll as PollRequest;
use crate::protocol::{GrantType, ScopeSet};
use crate::security::hash_secret;
use crate::store::{DeviceCode, DevicePoll};

pub async fn decide(cx: &GrantContext<'_>, request: PollRequest) -> Result<Decision, Error> {
    let store = &cx.state.store;
    let polled = store
        .poll_device_code(
            &hash_secret(request.device_code.expose()),
            &cx.client.id,
            cx.server.id(),
            cx.now,
        )
        .await?;
    let result = match polled {
        DevicePoll::Redeemed(code) => redeemed(cx, *code).await,
        DevicePoll::Polled { code, too_fast } => Err(not_yet(&code, too_fast, cx.now)),
        // §3.5 names no code for an unknown device code: RFC 6749 §5.2's invalid_grant. A code
        // of another client is unknown to this one (the poll's statement matches the client).
        DevicePoll::Unknown => Err(Error::invalid_grant("unknown device code")),
    };
    cx.state.metrics.device_poll(match &result {
        Ok(_) => "issued",
        Err(e) => e.code.as_str(),
    });
    result
}

/// An answer for a poll that redeemed nothing (§3.5).
fn not_yet(code: &DeviceCode, too_fast: bool, now: i64) -> Error {
    if code.redeemed_at.is_some() {
        return Error::invalid_grant("the device code was already used");
    }
    if code.expires_at <= now {
        return Error::new(ErrorCode::ExpiredToken, "the device code has expired");
    }
    match code.status.as_str() {
        // §3.5 puts every error of this grant in an RFC 6749 §5.2 response: 400.
        "denied" => Error::access_denied_at_token_endpoint("the user denied the request"),
        _ if too_fast => Error::new(
            ErrorCode::SlowDown,
            format!(
                "polling too fast: wait at least {} seconds between requests",
                code.poll_interval
            ),
        ),
        // Pending, or approved an instant ago by another request's statement.
        _ => Error::new(
            ErrorCode::AuthorizationPending,
            "the user has not yet approved the request",
        ),
    }
}

async fn redeemed(cx: &GrantContext<'_>, code: DeviceCode) -> Result<Decision, Error> {
    let corrupt = || Error::internal("an approved device code without its user or grant");
    let (Some(user_id), Some(grant_id), Some(auth_time)) =
        (code.user_id, code.grant_id, code.auth_time)
    else {
        return Err(corrupt());
    };
    if !cx.state.store.grant_is_active(&grant_id, cx.now).await? {
        return Err(Error::invalid_grant("the grant was revoked"));
    }
    let user = match cx.state.store.user(&user_id).await? {
        Some(u) if !u.disabled => u,
        _ => return Err(Error::invalid_grant("the user is no longer active")),
    };
    // The scope was decided at the device authorization endpoint and approved by the user; the
    // server's access policies (issue 17) decide at issuance, as for every grant.
    let scope = ScopeSet::parse(&code.scope).map_err(|e| Error::internal(e.to_string()))?;
    let allowed = cx
        .check_access(Grant::Is(GrantType::DeviceCode), Some(&user), &scope)
        .await?;
    Ok(Decision {
        grant_type: GrantType::DeviceCode,
        subject: Subject::User(Box::new(UserGrant {
            user,
            grant_id,
            auth_time,
            nonce: None,
            sid: code.session_sid,
            amr: None,
            acr: None,
        })),
        scope: allowed.scope,
        tokens: Wanted::TOKEN_ENDPOINT,
        refresh: Refresh::NewFamily,
        lifetimes: allowed.lifetimes,
    })
}
