//! The client credentials grant (RFC 6749 §4.4): a confidential client acting on its own
//! behalf. One access token; never a refresh token (§4.4.3) or an ID token (no user).

use super::GrantContext;
use crate::error::Error;
use crate::issuer::{Decision, Refresh, Subject, Wanted};
use crate::policy::{self, Grant, ScopeBasis};
use crate::protocol::token_request::ClientCredentials;
use crate::protocol::GrantType;

pub async fn decide(cx: &GrantContext<'_>, request: ClientCredentials) -> Result<Decision, Error> {
    // §4.4: only confidential clients; a public one cannot be registered with this grant,
    // but a registration edited by hand must not slip through.
    if cx.client.is_public() {
        return Err(Error::unauthorized_client(
            "the client credentials grant requires a confidential client",
        ));
    }
    let defaults = policy::default_scope(&cx.state.store, cx.client).await?;
    let scope = policy::decide_scope(
        cx.client,
        request.scope.as_deref(),
        ScopeBasis::Client {
            defaults: &defaults,
        },
    )?;
    let allowed = cx
        .check_access(Grant::Is(GrantType::ClientCredentials), None, &scope)
        .await?;
    Ok(Decision {
        grant_type: GrantType::ClientCredentials,
        subject: Subject::Client,
        scope: allowed.scope,
        tokens: Wanted::TOKEN_ENDPOINT,
        refresh: Refresh::None,
        lifetimes: allowed.lifetimes,
    })
}
