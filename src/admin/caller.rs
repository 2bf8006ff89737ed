//! Who calls the management API: the client of a live access token of the `admin` server
//! (RFC 6750 §2.1, `Authorization: Bearer` only: a token in a query string or form body ends up
//! in logs). Each route then names the scope it needs.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::http::problem::Problem;
use crate::manage::Actor;
use crate::protocol::admin_scopes::{covers, ADMIN_SERVER};
use crate::protocol::ScopeSet;
use crate::state::AppState;
use crate::store::servers::issuer_of;
use crate::tokens::presented::access_token_in_force;
use crate::tokens::verify::{verify, Expected};
use crate::tokens::AccessTokenClaims;

/// An authenticated caller: a client of the `admin` server and the scopes its token carries.
#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: String,
    scope: ScopeSet,
}

impl Caller {
    /// 403 `insufficient_scope` unless the token carries `scope` (or the `.manage` scope that
    /// covers a `.read` one).
    pub fn require(&self, scope: &'static str) -> Result<(), Problem> {
        if self.scope.iter().any(|granted| covers(granted, scope)) {
            Ok(())
        } else {
            Err(Problem::insufficient_scope(scope))
        }
    }

    /// The audit log's actor for changes made through this call.
    pub fn actor(&self) -> Actor {
        Actor::Client(self.client_id.clone())
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let token = match parts.headers.get(header::AUTHORIZATION) {
            None => return Err(Problem::unauthorized("no access token", false)),
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, token)| {
                    scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()
                })
                .map(|(_, token)| token.trim().to_string())
                .ok_or_else(|| Problem::unauthorized("use the Bearer scheme", true))?,
        };
        let now = state.now();
        let server = state
            .store
            .cached_server(ADMIN_SERVER)
            .await?
            .ok_or_else(|| Problem::internal("the admin server is missing"))?;
        let keys = state.keys.key_set(&server, now).await?;
        let issuer = issuer_of(&state.config.issuer, ADMIN_SERVER);
        // Signed by the admin server's keys, with its issuer and audience: a token of another
        // authorization server never opens the API, whatever scopes it names.
        let claims: AccessTokenClaims = verify(
            &token,
            &keys,
            &issuer,
            &server.audience,
            Expected::AccessToken {
                audience_check: true,
            },
            now,
        )
        .map_err(|reason| Problem::unauthorized(reason, true))?;
        if !access_token_in_force(&state.store, &claims, now).await? {
            return Err(Problem::unauthorized("the token was revoked", true));
        }
        // A deleted client's tokens stop opening the API at once.
        if state
            .store
            .cached_client(&claims.client_id)
            .await?
            .is_none()
        {
            return Err(Problem::unauthorized("the client no longer exists", true));
        }
        let scope = ScopeSet::parse(&claims.scope).unwrap_or_default();
        Ok(Caller {
            client_id: claims.client_id,
            scope,
        })
    }
}
