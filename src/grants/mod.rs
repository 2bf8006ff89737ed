//! One module per grant the token endpoint serves (RFC 6749 §4.1.3, §4.3, §4.4, §6, RFC 8628
//! §3.4, RFC 8693). Each takes
//! its typed request and an authenticated client, checks, and decides: whom the tokens are
//! for, with which scope, under which grant. The issuer (`crate::issuer`) mints what it
//! decided. None of them knows about HTTP.

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod password;
pub mod refresh_token;
pub mod token_exchange;

use crate::auth_server::AuthServer;
use crate::clock::UnixTime;
use crate::error::Error;
use crate::issuer::Decision;
use crate::policy::{self, AccessRequest, Allowed, Grant, Lifetimes};
use crate::protocol::{ScopeSet, TokenRequest};
use crate::state::AppState;
use crate::store::{Client, User};

/// What every grant works with: the server, the authenticated client, one `now`.
pub struct GrantContext<'a> {
    pub state: &'a AppState,
    pub server: &'a AuthServer,
    pub client: &'a Client,
    pub now: UnixTime,
    /// The client's address, for the sign-in limits of the password grant.
    pub ip: std::net::IpAddr,
    /// RFC 9449: the thumbprint of the key of the request's DPoP proof, if it sent one.
    pub dpop_jkt: Option<&'a str>,
}

impl GrantContext<'_> {
    /// Token lifetimes under this server's and client's policy.
    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes::of(&self.state.config.tokens, &self.server.server, self.client)
    }

    /// May tokens be issued for this grant, to this user (none: the client on its own behalf),
    /// with this scope? App assignments and the server's access policies
    /// (`policy::access`) decide; a refusal is the token endpoint's error.
    pub async fn check_access(
        &self,
        grant: Grant<'_>,
        user: Option<&User>,
        scope: &ScopeSet,
    ) -> Result<Allowed, Error> {
        let request = AccessRequest {
            server_id: self.server.id(),
            client: self.client,
            grant,
            user,
            scope,
        };
        match policy::access::check(&self.state.store, request).await? {
            Ok(allowed) => Ok(allowed),
            Err(refused) => {
                tracing::info!(client_id = %self.client.id, server = %self.server.id(), user = user.map(|u| u.id.as_str()), reason = refused.reason(), "access policy refused the grant");
                Err(refused.token_error(user.is_some()))
            }
        }
    }
}

/// The grant's decision on `request`.
pub async fn decide(cx: &GrantContext<'_>, request: TokenRequest) -> Result<Decision, Error> {
    match request {
        TokenRequest::AuthorizationCode(r) => authorization_code::decide(cx, r).await,
        TokenRequest::ClientCredentials(r) => client_credentials::decide(cx, r).await,
        TokenRequest::Password(r) => password::decide(cx, r).await,
        TokenRequest::RefreshToken(r) => refresh_token::decide(cx, r).await,
        TokenRequest::DeviceCode(r) => device_code::decide(cx, r).await,
        TokenRequest::TokenExchange(r) => token_exchange::decide(cx, r).await,
    }
}
