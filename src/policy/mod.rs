//! Per-server policy, as the minting code asks for it: how long each token lives (here), which
//! custom claims a granted scope releases into which token (`claims`), and which scopes a grant
//! issues (`scope`), and who may have tokens for a client on what terms (`access`: app
//! assignments, access policies and their rules). Operators set it with `portcullis server update`, `scope …`, `claim …` and
//! `client update`; every grant reads it here, so tokens carry exactly what the policy grants.

pub mod access;
mod claims;
mod scope;

use crate::config::TokenConfig;
use crate::store::{AuthorizationServer, Client};

pub use crate::store::{ClaimSource, ClaimTarget, CustomClaim, GroupFilter, GroupsClaim};
pub use access::{AccessRequest, Allowed, Grant, LifetimeOverride, Refused};
pub use claims::{custom_claims, group_names, needs_groups, release};
pub use scope::{decide_scope, default_scope, ScopeBasis};

/// Token lifetimes in seconds: the client's override, else the server's, else the
/// configuration's default (the refresh idle time and reuse grace are set per server only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    pub access_token: i64,
    pub id_token: i64,
    /// Absolute lifetime of a refresh token family (and of its grant).
    pub refresh_token: i64,
    /// A refresh token unused this long expires.
    pub refresh_idle: i64,
    /// How long a rotated refresh token still works, for concurrent refreshes.
    pub refresh_reuse_grace: i64,
}

impl Lifetimes {
    pub fn of(config: &TokenConfig, server: &AuthorizationServer, client: &Client) -> Self {
        let pick = |client: Option<i64>, server: Option<i64>, default: i64| {
            client.or(server).unwrap_or(default)
        };
        Self {
            access_token: pick(
                client.access_token_ttl,
                server.access_token_ttl,
                config.access_token_ttl.as_i64(),
            ),
            id_token: pick(
                client.id_token_ttl,
                server.id_token_ttl,
                config.id_token_ttl.as_i64(),
            ),
            refresh_token: pick(
                client.refresh_token_ttl,
                server.refresh_token_ttl,
                config.refresh_token_ttl.as_i64(),
            ),
            refresh_idle: pick(
                None,
                server.refresh_idle_ttl,
                config.refresh_idle_ttl.as_i64(),
            ),
            refresh_reuse_grace: pick(
                None,
                server.refresh_reuse_grace,
                config.refresh_reuse_grace.as_i64(),
            ),
        }
    }

    /// These lifetimes with an access rule's overrides applied (a rule wins over the server
    /// and the client).
    pub fn with(self, rule: LifetimeOverride) -> Self {
        Self {
            access_token: rule.access_token.unwrap_or(self.access_token),
            refresh_token: rule.refresh_token.unwrap_or(self.refresh_token),
            refresh_idle: rule.refresh_idle.unwrap_or(self.refresh_idle),
            ..self
        }
    }
}
