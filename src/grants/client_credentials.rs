//! The client credentials grant (RFC 6749 §4.4): a confidential client acting on its own
//! behalf. One access token; never a refresh token (§4.4.3) or an ID token (no user).

use super::{GrantContext, TokenResponse};
use crate::error::Error;
use crate::policy::{self, ClaimTarget};
use crate::protocol::ScopeSet;
use crate::tokens::access_token::{self, AccessTokenRequest};

/// Scopes that describe a user, meaningless without one.
const USER_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

pub async fn handle(cx: GrantContext<'_>) -> Result<TokenResponse, Error> {
    // §4.4: only confidential clients; a public one cannot be registered with this grant,
    // but a registration edited by hand must not slip through.
    if cx.client.is_public() {
        return Err(Error::unauthorized_client(
            "the client credentials grant requires a confidential client",
        ));
    }
    let defaults = policy::default_scope(&cx.state.store, cx.client).await?;
    let scope = granted_scope(cx.client, &defaults, cx.form.get("scope"))?;
    let server = cx.state.keys.key_set(&cx.server.server, cx.now).await?;
    let key = server
        .signing_key(cx.now)
        .ok_or_else(|| Error::internal("no signing key"))?;
    let ttl = cx.access_token_ttl();
    let issued = access_token::mint(
        key,
        AccessTokenRequest {
            issuer: &cx.server.issuer,
            audience: &cx.server.server.audience,
            subject: &cx.client.id,
            client_id: &cx.client.id,
            scope: &scope,
            ttl,
            auth_time: None,
            grant_id: None,
            extra_claims: policy::custom_claims(
                &cx.state.store,
                cx.server.id(),
                None,
                &scope,
                ClaimTarget::AccessToken,
            )
            .await?,
        },
        cx.now,
    )
    .map_err(Error::internal)?;
    // One line per token at debug only: the audit log records every issuance (with its jti).
    tracing::debug!(client_id = %cx.client.id, server = %cx.server.id(), jti = %issued.claims.jti, "access token issued (client_credentials)");
    cx.audit_issued(
        "client_credentials",
        None,
        &issued.claims.jti,
        &scope.to_string(),
        false,
    );
    Ok(TokenResponse {
        access_token: issued.token,
        token_type: "Bearer",
        expires_in: ttl,
        scope: scope.to_string(),
        refresh_token: None,
        id_token: None,
    })
}

/// §3.3: the requested scopes, which must all be allowed; none requested means the default
/// scopes of the policy (all the client's scopes when there are none).
fn granted_scope(
    client: &crate::store::Client,
    defaults: &ScopeSet,
    requested: Option<&str>,
) -> Result<ScopeSet, Error> {
    let requested = match requested {
        Some(raw) => ScopeSet::parse(raw).map_err(|e| Error::invalid_scope(e.to_string()))?,
        None => ScopeSet::default(),
    };
    if let Some(user_scope) = requested.iter().find(|s| USER_SCOPES.contains(s)) {
        return Err(Error::invalid_scope(format!(
            "scope `{user_scope}` needs a user; the client credentials grant has none"
        )));
    }
    if requested.is_empty() {
        let defaults = if defaults.is_empty() {
            &client.scopes
        } else {
            defaults
        };
        let mut granted = ScopeSet::default();
        for s in defaults.iter().filter(|s| !USER_SCOPES.contains(s)) {
            granted.insert(s);
        }
        return Ok(granted);
    }
    if let Some(denied) = requested.not_in(&client.scopes).next() {
        return Err(Error::invalid_scope(format!(
            "scope `{denied}` is not allowed for this client"
        )));
    }
    Ok(requested)
}
