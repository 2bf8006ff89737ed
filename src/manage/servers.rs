//! Authorization servers: changing one's name, audience and token policy (`server update`),
//! audited, with a change of signing algorithm rotating in a key of the new type.

use super::clients::RegistrationError as ManageError;
use super::Actor;
use crate::audit::{self, Event, Kind};
use crate::clock::UnixTime;
use crate::keys::{KeyRing, Rotation};
use crate::mfa::MfaPolicy;
use crate::protocol::admin_scopes::{ADMIN_AUDIENCE, ADMIN_SERVER};
use crate::store::servers::ServerChanges;
use crate::store::{AuthorizationServer, Store, StoreError};

/// Longer than any sensible token lifetime, and far from overflowing `now + ttl`.
pub const MAX_TTL: i64 = 10 * 365 * 86400;

fn invalid(message: impl Into<String>) -> ManageError {
    ManageError::Invalid(message.into())
}

/// The rules of a server change, checked before anything is stored.
pub fn check_changes(changes: &ServerChanges) -> Result<(), ManageError> {
    if changes.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(invalid("--name must not be empty"));
    }
    if changes
        .audience
        .as_deref()
        .is_some_and(|a| a.trim().is_empty())
    {
        return Err(invalid("--audience must not be empty"));
    }
    for (flag, ttl, min) in [
        ("access-token-ttl", changes.access_token_ttl, 1),
        ("id-token-ttl", changes.id_token_ttl, 1),
        ("refresh-token-ttl", changes.refresh_token_ttl, 1),
        ("refresh-idle-ttl", changes.refresh_idle_ttl, 1),
    ] {
        if let Some(Some(ttl)) = ttl {
            if !(min..=MAX_TTL).contains(&ttl) {
                return Err(invalid(format!("--{flag} must be {min}s to ten years")));
            }
        }
    }
    if let Some(Some(grace)) = changes.refresh_reuse_grace {
        if !(0..=60).contains(&grace) {
            return Err(invalid("--refresh-reuse-grace must be 0s to 60s"));
        }
    }
    if let Some(alg) = &changes.signing_alg {
        if alg != "RS256" && alg != "ES256" {
            return Err(invalid(format!("signing alg `{alg}`: RS256 or ES256")));
        }
    }
    Ok(())
}

/// `server update`: apply and audit the change; a new signing algorithm takes a key of that
/// type, rotated in like any other (published at once, signing after `activation_delay`).
pub async fn update_server(
    store: &Store,
    keys: &KeyRing,
    id: &str,
    changes: &ServerChanges,
    activation_delay: i64,
    actor: &Actor,
    now: UnixTime,
) -> Result<(AuthorizationServer, Option<Rotation>), ManageError> {
    check_changes(changes)?;
    if id == ADMIN_SERVER
        && changes
            .audience
            .as_deref()
            .is_some_and(|a| a != ADMIN_AUDIENCE)
    {
        return Err(invalid(format!(
            "the admin server's audience is {ADMIN_AUDIENCE}: the management API checks it, so \
             changing it would void every management token"
        )));
    }
    let before = store
        .server(id)
        .await?
        .ok_or_else(|| ManageError::NotFound(format!("no authorization server `{id}`")))?;
    let server = match store.update_server(id, changes, now).await {
        Err(StoreError::NotFound(_)) => {
            return Err(ManageError::NotFound(format!(
                "no authorization server `{id}`"
            )))
        }
        other => other?,
    };
    if server == before {
        return Ok((server, None));
    }
    let event = Event::new(Kind::ServerUpdated, now)
        .server(&server.id)
        .actor(actor.label())
        .subject(server.id.as_str());
    audit::write(store, event).await;
    let mut rotation = None;
    if before.signing_alg != server.signing_alg {
        if let Some(newest) = store.newest_key(&server.id).await? {
            // No key yet: the first one is generated with the new algorithm on first use.
            if newest.alg != server.signing_alg {
                rotation = Some(
                    keys.rotate_to(&server, newest.generation + 1, now, activation_delay)
                        .await
                        .map_err(|e| match e {
                            crate::keys::KeyError::Store(e) => ManageError::Store(e),
                            e => invalid(e.to_string()),
                        })?,
                );
            }
        }
    }
    Ok((server, rotation))
}

/// `server update --mfa`: the server's second-factor policy, written on its own and audited
/// as `mfa_policy_changed` when it changed. The server as stored after.
pub async fn set_server_mfa(
    store: &Store,
    server: AuthorizationServer,
    mfa: MfaPolicy,
    actor: &Actor,
    now: UnixTime,
) -> Result<AuthorizationServer, ManageError> {
    if !store.set_server_mfa(&server.id, mfa.as_str(), now).await? {
        return Ok(server);
    }
    audit::write(
        store,
        Event::new(Kind::MfaPolicyChanged, now)
            .server(&server.id)
            .actor(actor.label())
            .subject(server.id.as_str())
            .detail("mfa", mfa.as_str()),
    )
    .await;
    store
        .server(&server.id)
        .await?
        .ok_or_else(|| ManageError::NotFound(format!("no authorization server `{}`", server.id)))
}
