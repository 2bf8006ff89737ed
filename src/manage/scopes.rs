//! A server's custom scopes: create, change, delete (never while a client is given the scope
//! or a claim is released by it), each audited with its actor. The OIDC scopes (openid,
//! profile, email, address, phone, offline_access) are built in and not managed here. The CLI
//! (`portcullis scope`) and the management API call these.

use super::clients::RegistrationError as ManageError;
use super::policies::check_description;
use super::Actor;
use crate::audit::{self, Event, Kind};
use crate::clock::UnixTime;
use crate::protocol::scope::{is_scope_token, BUILT_IN_SCOPES};
use crate::store::{Page, Scope, Store, StoreError};

/// The server exists (every operation of a server's configuration starts here).
pub async fn check_server(store: &Store, server: &str) -> Result<(), ManageError> {
    match store.server(server).await? {
        Some(_) => Ok(()),
        None => Err(ManageError::NotFound(format!(
            "no authorization server `{server}`"
        ))),
    }
}

/// A custom scope's name: a scope token (RFC 6749 §3.3), not a built-in OIDC scope.
pub fn check_name(name: &str) -> Result<(), ManageError> {
    if BUILT_IN_SCOPES.contains(&name) {
        return Err(ManageError::Invalid(format!(
            "`{name}` is a built-in OpenID Connect scope and cannot be changed"
        )));
    }
    if !is_scope_token(name) {
        return Err(ManageError::Invalid(format!(
            "`{name}` is not a scope token (RFC 6749 §3.3: printable ASCII without spaces, `\"` or `\\`)"
        )));
    }
    Ok(())
}

fn no_scope(server: &str, name: &str) -> ManageError {
    ManageError::NotFound(format!("no scope `{name}` on server `{server}`"))
}

/// A page of the server's custom scopes by name (including those registered by giving them to
/// a client).
pub async fn list_scopes(
    store: &Store,
    server: &str,
    page: Page<'_>,
) -> Result<Vec<Scope>, ManageError> {
    check_server(store, server).await?;
    Ok(store.list_scopes(server, page).await?)
}

pub async fn create_scope(
    store: &Store,
    server: &str,
    name: &str,
    description: &str,
    is_default: bool,
    actor: &Actor,
    now: UnixTime,
) -> Result<Scope, ManageError> {
    check_server(store, server).await?;
    check_name(name)?;
    let description = check_description(description)?;
    let scope = store
        .create_scope(server, name, &description, is_default, now)
        .await
        .map_err(|e| match e {
            StoreError::AlreadyExists(_) => ManageError::Store(StoreError::Conflict(format!(
                "scope `{name}` already exists on server `{server}`; change it with `scope update`"
            ))),
            e => e.into(),
        })?;
    audit::write(store, scope_event(Kind::ScopeCreated, &scope, actor, now)).await;
    Ok(scope)
}

/// Change a scope's description or default flag (`None` keeps a value).
pub async fn update_scope(
    store: &Store,
    server: &str,
    name: &str,
    description: Option<&str>,
    is_default: Option<bool>,
    actor: &Actor,
    now: UnixTime,
) -> Result<Scope, ManageError> {
    check_server(store, server).await?;
    check_name(name)?;
    let description = description.map(check_description).transpose()?;
    let scope = store
        .update_scope(server, name, description.as_deref(), is_default)
        .await?
        .ok_or_else(|| no_scope(server, name))?;
    audit::write(store, scope_event(Kind::ScopeUpdated, &scope, actor, now)).await;
    Ok(scope)
}

/// Delete a scope; refused while a client of the server is given it or a claim is released by
/// it (both would silently change meaning). False when there was no such scope.
pub async fn delete_scope(
    store: &Store,
    server: &str,
    name: &str,
    actor: &Actor,
    now: UnixTime,
) -> Result<bool, ManageError> {
    check_server(store, server).await?;
    check_name(name)?;
    let clients = store.clients(Some(server)).await?;
    let users: Vec<&str> = clients
        .iter()
        .filter(|c| c.scopes.contains(name))
        .map(|c| c.id.as_str())
        .collect();
    if !users.is_empty() {
        return Err(conflict(format!(
            "scope `{name}` is still given to client(s) {}; remove it from them with `client update --scope …` first",
            users.join(", ")
        )));
    }
    let claims = store.claims(server).await?;
    let releasing: Vec<&str> = claims
        .iter()
        .filter(|c| c.scopes.contains(name))
        .map(|c| c.name.as_str())
        .collect();
    if !releasing.is_empty() {
        return Err(conflict(format!(
            "scope `{name}` still releases claim(s) {}; delete them first",
            releasing.join(", ")
        )));
    }
    let deleted = store.delete_scope(server, name).await?;
    if deleted {
        let event = Event::new(Kind::ScopeDeleted, now)
            .server(server)
            .actor(actor.label())
            .subject(name)
            .detail("scope", name);
        audit::write(store, event).await;
    }
    Ok(deleted)
}

fn conflict(message: String) -> ManageError {
    ManageError::Store(StoreError::Conflict(message))
}

fn scope_event(kind: Kind, scope: &Scope, actor: &Actor, now: UnixTime) -> Event {
    Event::new(kind, now)
        .server(&scope.server_id)
        .actor(actor.label())
        .subject(scope.name.as_str())
        .detail("scope", scope.name.as_str())
        .detail("default", scope.is_default)
}
