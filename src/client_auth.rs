//! Client authentication at the token, introspection, revocation, device authorization and
//! pushed authorization endpoints (RFC 6749 §2.3, RFC 7523 §2.2).

use axum::http::HeaderMap;

use crate::audit::{Event, Kind};
use crate::clock::UnixTime;
use crate::error::{Error, ErrorCode};
use crate::protocol::{ClientAuthMethod, FormParams, PresentedCredentials};
use crate::state::AppState;
use crate::store::Client;

mod assertion;

/// `authenticate`, with each `invalid_client` counted in
/// `portcullis_client_authentication_failures_total`.
pub async fn authenticate_counted(
    state: &AppState,
    server_id: &str,
    headers: &HeaderMap,
    form: &FormParams,
    now: UnixTime,
) -> Result<std::sync::Arc<Client>, Error> {
    authenticate(state, server_id, headers, form, now)
        .await
        .inspect_err(|e| {
            if e.code == ErrorCode::InvalidClient {
                state.metrics.client_authentication_failure();
            }
        })
}

/// The client the request comes from, authenticated by the method it registered.
/// A public client is identified by its `client_id` and not authenticated.
pub async fn authenticate(
    state: &AppState,
    server_id: &str,
    headers: &HeaderMap,
    form: &FormParams,
    now: UnixTime,
) -> Result<std::sync::Arc<Client>, Error> {
    let presented = PresentedCredentials::from_request(headers, form)?;
    let fail = |why: &'static str| Error::invalid_client(why).with_challenge(presented.challenge());
    let client = match state.store.cached_client(presented.client_id()).await? {
        // A client belongs to one server; to every other it does not exist.
        Some(client) if client.server_id == server_id => client,
        _ => return Err(fail("client authentication failed")),
    };
    let method = presented.method();
    if client.auth_method != method {
        return Err(match client.auth_method {
            ClientAuthMethod::None => fail("a public client does not authenticate with a secret"),
            _ if method == ClientAuthMethod::None => fail("client authentication is required"),
            _ => {
                fail("client authentication failed: use the registered token_endpoint_auth_method")
            }
        });
    }
    match &presented {
        PresentedCredentials::Basic { secret, .. } | PresentedCredentials::Post { secret, .. } => {
            if !client.secret_matches(secret.expose()) {
                return Err(fail("client authentication failed"));
            }
        }
        PresentedCredentials::Assertion { assertion: jwt, .. } => {
            if let Err(why) = assertion::verify(state, &client, jwt, now).await? {
                // Every refused assertion is audited: a forged or replayed one is an attack on
                // a client that chose the strongest authentication we offer.
                state.audit.record(
                    Event::new(Kind::ClientAuthenticationFailed, now)
                        .server(server_id)
                        .actor(format!("client:{}", client.id))
                        .subject(client.id.as_str())
                        .detail("method", ClientAuthMethod::PrivateKeyJwt.as_str())
                        .detail("reason", why.as_str()),
                );
                return Err(Error::invalid_client(format!(
                    "client assertion refused: {why}"
                )));
            }
        }
        PresentedCredentials::ClientIdOnly { .. } => {}
    }
    Ok(client)
}
