//! Token exchange (RFC 8693): a service presents a user's access token (issued by this server)
//! and gets one for another audience, narrowed, carrying the same user and grant: revoking the
//! subject's grant withdraws the exchanged token too. With an `actor_token` the new token
//! records who acts for the user (`act`, §4.1), earlier actors nested inside.
//!
//! Which client may exchange, and for which audiences, is configuration
//! (`client update ID --token-exchange-audience AUD`): none configured, no exchange.

use serde_json::{json, Value};

use super::GrantContext;
use crate::audit::{Event, Kind};
use crate::error::{Error, ErrorCode};
use crate::issuer::{Decision, Exchanged, Refresh, Subject, UserGrant, Wanted};
use crate::policy::Grant;
use crate::protocol::token_request::Exchange;
use crate::protocol::{GrantType, ScopeSet};
use crate::security::Secret;
use crate::tokens::presented::{access_token_in_force, audience_is_ours};
use crate::tokens::verify::{verify, Expected};
use crate::tokens::AccessTokenClaims;

/// RFC 8693 §3: the token types.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

pub async fn decide(cx: &GrantContext<'_>, request: Exchange) -> Result<Decision, Error> {
    let allowed = &cx.client.token_exchange_audiences;
    if allowed.is_empty() || cx.client.is_public() {
        return Err(Error::unauthorized_client(
            "this client may not exchange tokens: no audience is configured for it",
        ));
    }
    // §2.1: the types this server issues and accepts: its own JWT access tokens.
    check_type("subject_token_type", Some(&request.subject_token_type))?;
    if request.actor_token.is_some() != request.actor_token_type.is_some() {
        return Err(Error::invalid_request(
            "actor_token and actor_token_type go together (RFC 8693 §2.1)",
        ));
    }
    check_type("actor_token_type", request.actor_token_type.as_deref())?;
    if let Some(requested) = request.requested_token_type.as_deref() {
        if requested != ACCESS_TOKEN_TYPE {
            return Err(Error::invalid_request(format!(
                "requested_token_type `{requested}` is not issued here; ask for {ACCESS_TOKEN_TYPE}"
            )));
        }
    }
    let audience = target(
        request.audience.as_deref(),
        request.resource.as_deref(),
        allowed,
    )?;
    let subject = ours(cx, &request.subject_token, "subject_token").await?;
    let actor = match &request.actor_token {
        Some(token) => Some(ours(cx, token, "actor_token").await?),
        None => None,
    };
    let Some(grant_id) = subject.gid.clone() else {
        return Err(Error::invalid_request(
            "the subject_token is not a user's token (client credentials have no user to act for)",
        ));
    };
    let user = match cx.state.store.user(&subject.sub).await? {
        Some(u) if !u.disabled => u,
        _ => {
            return Err(Error::invalid_request(
                "the subject_token's user is no longer active",
            ))
        }
    };
    let scope = narrow(cx, &subject, request.scope.as_deref())?;
    // The server's access policies (issue 17) decide exchanges like every other issuance.
    let allowed = cx
        .check_access(Grant::Is(GrantType::TokenExchange), Some(&user), &scope)
        .await?;
    let scope = allowed.scope;
    let act = actor.map(|a| delegation(&a, &subject));
    cx.state.audit.record(
        Event::new(Kind::TokenExchanged, cx.now)
            .server(cx.server.id())
            .actor(format!("client:{}", cx.client.id))
            .subject(user.id.as_str())
            .detail("subject_jti", subject.jti.as_str())
            .detail("audience", audience.as_str())
            .detail("grant_id", grant_id.as_str())
            .detail(
                "actor",
                act.as_ref()
                    .and_then(|a| a.get("sub").cloned())
                    .unwrap_or(Value::Null),
            ),
    );
    Ok(Decision {
        grant_type: GrantType::TokenExchange,
        subject: Subject::Exchanged(Box::new(Exchanged {
            grant: UserGrant {
                user,
                grant_id,
                auth_time: subject.auth_time.unwrap_or(subject.iat),
                nonce: None,
                sid: None,
                amr: None,
                acr: None,
            },
            audience,
            act,
        })),
        scope,
        // §2.2.1: one access token; no refresh token, and no ID token (not an OIDC flow).
        tokens: Wanted {
            access_token: true,
            id_token: false,
        },
        refresh: Refresh::None,
        lifetimes: allowed.lifetimes,
    })
}

/// §3: only access tokens (a JWT is what ours are) are understood.
fn check_type(name: &str, value: Option<&str>) -> Result<(), Error> {
    match value {
        None | Some(ACCESS_TOKEN_TYPE) | Some(JWT_TYPE) => Ok(()),
        Some(other) => Err(Error::invalid_request(format!(
            "{name} `{other}` is not supported; send an access token of this server ({ACCESS_TOKEN_TYPE})"
        ))),
    }
}

/// §2.1: the audience (a logical name) or resource (a URI) the token is for: one of the
/// client's configured audiences. With neither, the client's only audience if it has one.
fn target(
    audience: Option<&str>,
    resource: Option<&str>,
    allowed: &[String],
) -> Result<String, Error> {
    let wanted = match (audience, resource) {
        (Some(a), Some(r)) if a != r => {
            return Err(Error::new(
                ErrorCode::InvalidTarget,
                "audience and resource name different targets; one token has one audience here",
            ))
        }
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => match allowed {
            [only] => only.as_str(),
            _ => {
                return Err(Error::invalid_request(
                    "audience or resource is required: this client may exchange for several",
                ))
            }
        },
    };
    if !allowed.iter().any(|a| a == wanted) {
        // §2.2.2.
        return Err(Error::new(
            ErrorCode::InvalidTarget,
            format!("this client may not exchange tokens for `{wanted}`"),
        ));
    }
    Ok(wanted.to_string())
}

/// A token this server issued, intact, unexpired, and still in force (neither its grant nor
/// itself revoked). Anything else is `invalid_request` (§2.2.2).
async fn ours(
    cx: &GrantContext<'_>,
    token: &Secret,
    name: &str,
) -> Result<AccessTokenClaims, Error> {
    let keys = cx.state.keys.key_set(&cx.server.server, cx.now).await?;
    let claims: AccessTokenClaims = verify(
        token.expose(),
        &keys,
        &cx.server.issuer,
        &cx.server.server.audience,
        // An exchanged token (another audience) may be exchanged again.
        Expected::AccessToken {
            audience_check: false,
        },
        cx.now,
    )
    .map_err(|why| Error::invalid_request(format!("the {name} is not valid here: {why}")))?;
    if !audience_is_ours(&cx.state.store, cx.server, &claims).await? {
        return Err(Error::invalid_request(format!(
            "the {name} is for an audience this server does not issue for"
        )));
    }
    if !access_token_in_force(&cx.state.store, &claims, cx.now).await? {
        return Err(Error::invalid_request(format!("the {name} was revoked")));
    }
    Ok(claims)
}

/// §2.1 and RFC 6749 §3.3: the subject's scope, narrowed by the request, and only what this
/// client may have.
fn narrow(
    cx: &GrantContext<'_>,
    subject: &AccessTokenClaims,
    requested: Option<&str>,
) -> Result<ScopeSet, Error> {
    let held = ScopeSet::parse(&subject.scope).unwrap_or_default();
    let mut granted = ScopeSet::default();
    match requested {
        Some(raw) => {
            let requested =
                ScopeSet::parse(raw).map_err(|e| Error::invalid_scope(e.to_string()))?;
            for s in requested.iter() {
                if !held.contains(s) {
                    return Err(Error::invalid_scope(format!(
                        "scope `{s}` is not in the subject_token"
                    )));
                }
                if !cx.client.may_request(s) {
                    return Err(Error::invalid_scope(format!(
                        "scope `{s}` is not allowed for this client"
                    )));
                }
                granted.insert(s);
            }
        }
        None => {
            for s in held.iter().filter(|s| cx.client.may_request(s)) {
                granted.insert(s);
            }
        }
    }
    Ok(granted)
}

/// §4.1: the actor is the current `act`; whoever acted in the subject token before is nested
/// inside it, most recent outermost.
fn delegation(actor: &AccessTokenClaims, subject: &AccessTokenClaims) -> Value {
    let mut act = json!({ "sub": actor.sub, "client_id": actor.client_id });
    if let (Some(prior), Some(map)) = (&subject.act, act.as_object_mut()) {
        map.insert("act".into(), prior.clone());
    }
    act
}
