//! Groups of users: create, rename, delete (never while an access rule names the group) and
//! change members, each audited with its actor. The CLI and the management API call these.

use super::clients::RegistrationError as ManageError;
use super::Actor;
use crate::audit::{self, Event, Kind};
use crate::clock::UnixTime;
use crate::store::{Group, Store, User};

/// Group names appear in tokens (the groups claim) and rules: keep them short and printable.
pub const MAX_NAME_CHARS: usize = 256;

fn no_group(key: &str) -> ManageError {
    ManageError::NotFound(format!("no group `{key}`"))
}

/// A name, trimmed: 1 to 256 characters, no control characters.
pub fn check_name(name: &str) -> Result<String, ManageError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ManageError::Invalid(format!(
            "group name `{name}` must be 1 to {MAX_NAME_CHARS} characters without control characters"
        )));
    }
    Ok(name.to_string())
}

pub async fn create_group(
    store: &Store,
    name: &str,
    description: &str,
    actor: &Actor,
    now: UnixTime,
) -> Result<Group, ManageError> {
    let name = check_name(name)?;
    let group = store.insert_group(&name, description.trim(), now).await?;
    audit::write(store, group_event(Kind::GroupCreated, &group, actor, now)).await;
    Ok(group)
}

/// Rename a group or change its description (`None` keeps a value).
pub async fn update_group(
    store: &Store,
    group: &Group,
    name: Option<&str>,
    description: Option<&str>,
    actor: &Actor,
    now: UnixTime,
) -> Result<Group, ManageError> {
    let name = match name {
        Some(n) => check_name(n)?,
        None => group.name.clone(),
    };
    let description = description
        .map(|d| d.trim().to_string())
        .unwrap_or_else(|| group.description.clone());
    if !store
        .update_group(&group.id, &name, &description, now)
        .await?
    {
        return Err(no_group(&group.name));
    }
    let event = group_event(Kind::GroupUpdated, group, actor, now).detail("name", name.as_str());
    audit::write(store, event).await;
    store
        .group(&group.id)
        .await?
        .ok_or_else(|| no_group(&group.name))
}

/// Delete a group; refused while access rules name it (they would silently change meaning).
pub async fn delete_group(
    store: &Store,
    group: &Group,
    actor: &Actor,
    now: UnixTime,
) -> Result<bool, ManageError> {
    let naming = store.rules_naming_group(&group.id).await?;
    if !naming.is_empty() {
        let rules = naming
            .iter()
            .map(|(server, policy, rule)| format!("{server}/{policy}/{rule}"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ManageError::Store(crate::store::StoreError::Conflict(
            format!(
                "group `{}` is still used by access rules {rules}; change or delete them first",
                group.name
            ),
        )));
    }
    let deleted = store.delete_group(&group.id).await?;
    if deleted {
        audit::write(store, group_event(Kind::GroupDeleted, group, actor, now)).await;
    }
    Ok(deleted)
}

/// Add users to a group; the number newly added.
pub async fn add_members(
    store: &Store,
    group: &Group,
    users: &[User],
    actor: &Actor,
    now: UnixTime,
) -> Result<u64, ManageError> {
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let added = store.add_group_members(&group.id, &ids, now).await?;
    let event =
        group_event(Kind::GroupMembersAdded, group, actor, now).detail("users", usernames(users));
    audit::write(store, event).await;
    Ok(added)
}

/// Remove users from a group; the number removed.
pub async fn remove_members(
    store: &Store,
    group: &Group,
    users: &[User],
    actor: &Actor,
    now: UnixTime,
) -> Result<u64, ManageError> {
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let removed = store.remove_group_members(&group.id, &ids).await?;
    let event =
        group_event(Kind::GroupMembersRemoved, group, actor, now).detail("users", usernames(users));
    audit::write(store, event).await;
    Ok(removed)
}

fn usernames(users: &[User]) -> Vec<String> {
    users.iter().map(|u| u.username.clone()).collect()
}

fn group_event(kind: Kind, group: &Group, actor: &Actor, now: UnixTime) -> Event {
    Event::new(kind, now)
        .actor(actor.label())
        .subject(group.id.as_str())
        .detail("group", group.name.as_str())
}
