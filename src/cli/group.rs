//! `portcullis group create|list|show|update|delete|add-member|remove-member`: groups of users,
//! shared by every authorization server. Access rules, app assignments and groups claims name
//! them.

use clap::Subcommand;
use serde_json::json;

use super::user::find_user;
use super::{open_store, print_json, CliError};
use crate::clock::{Clock, SystemClock, UnixTime};
use crate::config::Config;
use crate::manage::groups;
use crate::manage::Actor;
use crate::store::{Group, Store, User};

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group; prints it as JSON.
    Create {
        /// Unique; 1 to 256 characters without control characters.
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List groups, by name (`--after` a group name).
    List(super::page::PageArgs),
    /// Show a group, by name or id, with its members.
    Show { group: String },
    /// Rename a group or change its description.
    Update {
        group: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a group (refused while an access rule names it).
    Delete { group: String },
    /// Add users (usernames or ids) to a group.
    AddMember {
        group: String,
        #[arg(long = "user", required = true)]
        users: Vec<String>,
    },
    /// Remove users (usernames or ids) from a group.
    RemoveMember {
        group: String,
        #[arg(long = "user", required = true)]
        users: Vec<String>,
    },
}

pub async fn run(config: &Config, command: GroupCommand) -> Result<(), CliError> {
    let store = open_store(config).await?;
    let result = execute(&store, command, SystemClock.now()).await;
    store.close().await;
    result
}

async fn execute(store: &Store, command: GroupCommand, now: UnixTime) -> Result<(), CliError> {
    match command {
        GroupCommand::Create { name, description } => {
            let group = groups::create_group(store, &name, &description, &Actor::Cli, now)
                .await
                .map_err(CliError::from)?;
            print_json(&group.to_json());
        }
        GroupCommand::List(page) => {
            let groups = store
                .list_groups(page.page())
                .await
                .map_err(CliError::from)?;
            print_json(&json!(groups
                .iter()
                .map(Group::to_json)
                .collect::<Vec<_>>()));
        }
        GroupCommand::Show { group } => {
            let group = find_group(store, &group).await?;
            print_json(&with_members(store, &group).await?);
        }
        GroupCommand::Update {
            group,
            name,
            description,
        } => {
            let group = find_group(store, &group).await?;
            let updated = groups::update_group(
                store,
                &group,
                name.as_deref(),
                description.as_deref(),
                &Actor::Cli,
                now,
            )
            .await
            .map_err(CliError::from)?;
            print_json(&updated.to_json());
        }
        GroupCommand::Delete { group } => {
            let group = find_group(store, &group).await?;
            if !groups::delete_group(store, &group, &Actor::Cli, now)
                .await
                .map_err(CliError::from)?
            {
                return Err(no_group(&group.name));
            }
            print_json(&json!({ "deleted": group.id, "name": group.name }));
        }
        GroupCommand::AddMember { group, users } => {
            let group = find_group(store, &group).await?;
            let users = find_users(store, &users).await?;
            let added = groups::add_members(store, &group, &users, &Actor::Cli, now)
                .await
                .map_err(CliError::from)?;
            let mut out = with_members(store, &group).await?;
            out["added"] = json!(added);
            print_json(&out);
        }
        GroupCommand::RemoveMember { group, users } => {
            let group = find_group(store, &group).await?;
            let users = find_users(store, &users).await?;
            let removed = groups::remove_members(store, &group, &users, &Actor::Cli, now)
                .await
                .map_err(CliError::from)?;
            let mut out = with_members(store, &group).await?;
            out["removed"] = json!(removed);
            print_json(&out);
        }
    }
    Ok(())
}

/// Every user named, or an error naming the first unknown one (nothing is changed).
async fn find_users(store: &Store, keys: &[String]) -> Result<Vec<User>, CliError> {
    let mut users = Vec::new();
    for key in keys {
        let user = find_user(store, key).await?;
        if !users.iter().any(|u: &User| u.id == user.id) {
            users.push(user);
        }
    }
    Ok(users)
}

async fn with_members(store: &Store, group: &Group) -> Result<serde_json::Value, CliError> {
    let members = store
        .group_members(&group.id)
        .await
        .map_err(CliError::from)?;
    let mut out = group.to_json();
    out["members"] = json!(members
        .iter()
        .map(|(id, username)| json!({ "id": id, "username": username }))
        .collect::<Vec<_>>());
    Ok(out)
}

/// A group named by the operator: a name or an id.
pub(crate) async fn find_group(store: &Store, key: &str) -> Result<Group, CliError> {
    if let Some(group) = store.group_by_name(key).await.map_err(CliError::from)? {
        return Ok(group);
    }
    store
        .group(key)
        .await
        .map_err(CliError::from)?
        .ok_or_else(|| no_group(key))
}

fn no_group(key: &str) -> CliError {
    CliError(format!("no group `{key}`"))
}
