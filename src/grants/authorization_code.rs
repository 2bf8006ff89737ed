//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.5,
//! OIDC Core §3.1.3). The code is consumed first, atomically, so every failure below burns it:
//! a guessed verifier gets one try.

use super::GrantContext;
use crate::audit::{Event, Kind};
use crate::error::Error;
use crate::issuer::{Decision, Refresh, Subject, UserGrant, Wanted};
use crate::policy::Grant;
use crate::protocol::token_request::CodeExchange;
use crate::protocol::{pkce, GrantType, ScopeSet};
use crate::security::hash_secret;
use crate::store::Redemption;

pub async fn decide(cx: &GrantContext<'_>, request: CodeExchange) -> Result<Decision, Error> {
    let store = &cx.state.store;
    let (record, grant_active) = match store
        .redeem_code(&hash_secret(request.code.expose()), cx.now)
        .await?
    {
        Redemption::Redeemed { code, grant_active } => (code, grant_active),
        Redemption::Replayed { grant_id } => {
            // RFC 6749 §4.1.2: a code used twice revokes what was issued from it.
            store.revoke_grant(&grant_id, cx.now).await?;
            tracing::warn!(client_id = %cx.client.id, grant = %grant_id, "authorization code replayed; grant revoked");
            cx.state.audit.record(
                Event::new(Kind::CodeReplay, cx.now)
                    .server(cx.server.id())
                    .actor(format!("client:{}", cx.client.id))
                    .detail("grant_id", grant_id.as_str()),
            );
            return Err(Error::invalid_grant(
                "the authorization code was already used",
            ));
        }
        Redemption::Unknown => return Err(Error::invalid_grant("unknown authorization code")),
    };
    // §4.1.3: the code is bound to the client it was issued to.
    if record.client_id != cx.client.id || record.server_id != cx.server.id() {
        store.revoke_grant(&record.grant_id, cx.now).await?;
        return Err(Error::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if record.expires_at <= cx.now {
        return Err(Error::invalid_grant("the authorization code has expired"));
    }
    // §4.1.3: and to the redirect URI of the authorization request.
    if request.redirect_uri.as_deref() != Some(record.redirect_uri.as_str()) {
        return Err(Error::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    // RFC 9449 §10.1: a code bound to a DPoP key needs a proof by that key.
    if let Some(bound) = &record.dpop_jkt {
        if cx.dpop_jkt != Some(bound.as_str()) {
            return Err(Error::invalid_grant(
                "the authorization code is bound to a DPoP key (dpop_jkt): send a proof by that key",
            ));
        }
    }
    check_pkce(
        record.code_challenge.as_deref(),
        request.code_verifier.as_deref(),
    )?;
    if !grant_active {
        return Err(Error::invalid_grant("the grant was revoked"));
    }
    let user = match store.user(&record.user_id).await? {
        Some(u) if !u.disabled => u,
        _ => return Err(Error::invalid_grant("the user is no longer active")),
    };
    // The scope was decided at the authorization endpoint and consented to there.
    let scope = ScopeSet::parse(&record.scope).map_err(|e| Error::internal(e.to_string()))?;
    // Checked again at the exchange: a user removed from a group since the authorization
    // request, or a policy changed meanwhile, gets no tokens.
    let allowed = cx
        .check_access(Grant::Is(GrantType::AuthorizationCode), Some(&user), &scope)
        .await?;
    Ok(Decision {
        grant_type: GrantType::AuthorizationCode,
        subject: Subject::User(Box::new(UserGrant {
            user,
            grant_id: record.grant_id,
            auth_time: record.auth_time,
            nonce: record.nonce,
            sid: record.session_sid,
            amr: record.amr.as_deref().map(crate::mfa::Amr::parse),
            acr: record.acr,
        })),
        scope: allowed.scope,
        tokens: Wanted::TOKEN_ENDPOINT,
        refresh: Refresh::NewFamily,
        lifetimes: allowed.lifetimes,
    })
}

/// RFC 7636 §4.6 and RFC 9700 §2.1.1: a verifier exactly when a challenge was sent.
fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), Error> {
    match (challenge, verifier) {
        (Some(c), Some(v)) if pkce::verify_s256(v, c) => Ok(()),
        (Some(_), Some(_)) => Err(Error::invalid_grant(
            "code_verifier does not match the code_challenge",
        )),
        (Some(_), None) => Err(Error::invalid_grant("code_verifier is required")),
        (None, Some(_)) => Err(Error::invalid_grant(
            "no code_challenge was sent with the authorization request",
        )),
        (None, None) => Ok(()),
    }
}
