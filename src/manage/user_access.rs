//! What a user has given clients, as an operator withdraws it: grants in force (revoke one, all
//! of one client's, or all: with "sign out everywhere" this leaves no token that refreshes or
//! passes introspection) and remembered consent (revoking it also withdraws the client's
//! grants, so the client loses access now and the next sign-in asks again). Audited.

use super::clients::RegistrationError as ManageError;
use super::Actor;
use crate::audit::{self, Event, Kind};
use crate::clock::UnixTime;
use crate::store::{Store, User, UserGrants};

/// Withdraw one grant of the user (`NotFound` when it is not one of theirs in force), or all.
pub async fn revoke_grants(
    store: &Store,
    user: &User,
    grant_id: Option<&str>,
    actor: &Actor,
    now: UnixTime,
) -> Result<u64, ManageError> {
    let which = match grant_id {
        Some(id) => {
            if store.user_grant(&user.id, id, now).await?.is_none() {
                return Err(ManageError::NotFound(format!(
                    "user `{}` has no grant `{id}` in force",
                    user.username
                )));
            }
            UserGrants::One(id)
        }
        None => UserGrants::All,
    };
    let revoked = store
        .withdraw_user_grants(&user.id, which, false, now)
        .await?;
    let mut event = event(Kind::GrantsRevoked, user, actor, now).detail("grants", revoked);
    if let Some(id) = grant_id {
        event = event.detail("grant", id);
    }
    audit::write(store, event).await;
    Ok(revoked)
}

/// Forget the user's consent to a client and withdraw the client's grants of theirs. `false`
/// when there was neither (idempotent).
pub async fn revoke_consent(
    store: &Store,
    user: &User,
    client_id: &str,
    actor: &Actor,
    now: UnixTime,
) -> Result<bool, ManageError> {
    let consent = store.user_consent(&user.id, client_id).await?;
    let revoked = store
        .withdraw_user_grants(&user.id, UserGrants::OfClient(client_id), true, now)
        .await?;
    if consent.is_none() && revoked == 0 {
        return Ok(false);
    }
    let mut event = event(Kind::ConsentRevoked, user, actor, now)
        .detail("client", client_id)
        .detail("grants", revoked);
    if let Some(consent) = &consent {
        event = event.server(&consent.server_id);
    }
    audit::write(store, event).await;
    Ok(true)
}

fn event(kind: Kind, user: &User, actor: &Actor, now: UnixTime) -> Event {
    Event::new(kind, now)
        .actor(actor.label())
        .subject(user.id.as_str())
        .detail("username", user.username.as_str())
}
