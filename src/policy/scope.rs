//! Which scopes a grant issues (RFC 6749 §3.3): one decision for every grant, by what the
//! grant is based on.

use crate::error::Error;
use crate::protocol::scope::BUILT_IN_SCOPES;
use crate::protocol::ScopeSet;
use crate::store::{Client, Store};

/// RFC 6749 §3.3: what a client gets when it requests no scope. Its own default scopes; else
/// the server's default scopes that it may use; else nothing (each grant decides what
/// nothing means).
pub async fn default_scope(store: &Store, client: &Client) -> Result<ScopeSet, Error> {
    if !client.default_scopes.is_empty() {
        return Ok(client.default_scopes.clone());
    }
    let server_defaults = store.cached_default_scopes(&client.server_id).await?;
    let mut granted = ScopeSet::default();
    for s in server_defaults.iter().filter(|s| client.scopes.contains(s)) {
        granted.insert(s);
    }
    Ok(granted)
}

/// What a grant's scope is decided against.
#[derive(Debug, Clone, Copy)]
pub enum ScopeBasis<'a> {
    /// A user's grant (an authorization request, the password grant): the OIDC scopes,
    /// `offline_access` when the client may refresh, and the client's own scopes. Nothing
    /// requested: `defaults` (`default_scope`).
    User { defaults: &'a ScopeSet },
    /// The client on its own behalf (client credentials, §4.4): only the client's own scopes,
    /// never one that describes a user. Nothing requested: `defaults` (or, when there are none,
    /// every scope the client has), less the user scopes.
    Client { defaults: &'a ScopeSet },
    /// A refresh (§6): what the family was granted, less what the client has since lost; the
    /// request may narrow it, never widen it. Nothing requested: all of it.
    Refresh { granted: &'a ScopeSet },
}

/// The granted scope, or `invalid_scope` naming the first scope that may not be had.
pub fn decide_scope(
    client: &Client,
    requested: Option<&str>,
    basis: ScopeBasis<'_>,
) -> Result<ScopeSet, Error> {
    let requested = match requested {
        Some(raw) => ScopeSet::parse(raw).map_err(|e| Error::invalid_scope(e.to_string()))?,
        None => ScopeSet::default(),
    };
    match basis {
        ScopeBasis::User { defaults } => {
            let scope = if requested.is_empty() {
                defaults.clone()
            } else {
                requested
            };
            if let Some(denied) = scope.iter().find(|s| !client.may_request(s)) {
                return Err(not_allowed(denied));
            }
            Ok(scope)
        }
        ScopeBasis::Client { defaults } => {
            if let Some(user_scope) = requested.iter().find(|s| describes_a_user(s)) {
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
                return Ok(only(defaults, |s| !describes_a_user(s)));
            }
            if let Some(denied) = requested.not_in(&client.scopes).next() {
                return Err(not_allowed(denied));
            }
            Ok(requested)
        }
        ScopeBasis::Refresh { granted } => {
            // A scope the client has since lost is not issued again, whatever the family was
            // granted.
            let granted = only(granted, |s| client.may_request(s));
            if requested.is_empty() {
                return Ok(granted);
            }
            if let Some(extra) = requested.not_in(&granted).next() {
                return Err(Error::invalid_scope(format!(
                    "scope `{extra}` was not granted to this refresh token"
                )));
            }
            Ok(requested)
        }
    }
}

/// The built-in scopes all describe a user: meaningless without one.
fn describes_a_user(scope: &str) -> bool {
    BUILT_IN_SCOPES.contains(&scope)
}

fn only(scopes: &ScopeSet, keep: impl Fn(&str) -> bool) -> ScopeSet {
    let mut kept = ScopeSet::default();
    for s in scopes.iter().filter(|s| keep(s)) {
        kept.insert(s);
    }
    kept
}

fn not_allowed(scope: &str) -> Error {
    Error::invalid_scope(format!("scope `{scope}` is not allowed for this client"))
}
