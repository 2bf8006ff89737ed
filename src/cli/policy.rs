//! `portcullis policy create|list|show|update|delete`: the access policies of an authorization
//! server. The first policy (lowest priority) whose clients include the requesting client
//! applies; its rules (`portcullis rule …`) decide. A server without policies issues tokens as
//! its clients and scopes allow (the implicit default policy).

use clap::{ArgGroup, Subcommand};
use serde_json::{json, Value};

use super::rule::rule_json;
use super::scope::check_server;
use super::{open_store, print_json, CliError};
use crate::audit::{self, Event, Kind};
use crate::clock::{Clock, SystemClock, UnixTime};
use crate::config::Config;
use crate::security::random_id;
use crate::store::{AccessPolicy, PolicyClients, Store};

/// Policy and rule names: printable and short, they appear in error descriptions.
const MAX_NAME_CHARS: usize = 128;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Add an access policy (without rules, it denies every request of its clients).
    #[command(group(ArgGroup::new("which_clients").required(true).args(["clients", "all_clients"])))]
    Create {
        #[arg(long)]
        server: String,
        #[arg(long)]
        name: String,
        /// Lower is evaluated first (default: after every existing policy).
        #[arg(long, allow_negative_numbers = true)]
        priority: Option<i64>,
        /// A client of the server it applies to (repeatable).
        #[arg(long = "client", allow_hyphen_values = true)]
        clients: Vec<String>,
        /// Apply to every client of the server.
        #[arg(long)]
        all_clients: bool,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// A server's policies with their rules, in the order they are evaluated.
    List {
        #[arg(long)]
        server: String,
    },
    /// One policy with its rules.
    Show {
        #[arg(long)]
        server: String,
        #[arg(long)]
        name: String,
    },
    /// Change a policy; --client replaces its clients.
    #[command(group(ArgGroup::new("which_clients").args(["clients", "all_clients"])))]
    Update {
        #[arg(long)]
        server: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_name = "NAME")]
        rename: Option<String>,
        #[arg(long, allow_negative_numbers = true)]
        priority: Option<i64>,
        #[arg(long = "client", allow_hyphen_values = true)]
        clients: Option<Vec<String>>,
        #[arg(long)]
        all_clients: bool,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a policy with its rules.
    Delete {
        #[arg(long)]
        server: String,
        #[arg(long)]
        name: String,
    },
}

pub async fn run(config: &Config, command: PolicyCommand) -> Result<(), CliError> {
    let store = open_store(config).await?;
    let result = execute(&store, command, SystemClock.now()).await;
    store.close().await;
    result
}

async fn execute(store: &Store, command: PolicyCommand, now: UnixTime) -> Result<(), CliError> {
    match command {
        PolicyCommand::Create {
            server,
            name,
            priority,
            clients,
            all_clients,
            description,
        } => {
            check_server(store, &server).await?;
            let name = check_name("policy", &name)?;
            let clients = policy_clients(store, &server, all_clients, clients).await?;
            let existing = store
                .access_policies(&server)
                .await
                .map_err(CliError::from)?;
            let priority = match priority {
                Some(p) => check_priority(p)?,
                None => existing.iter().map(|p| p.priority + 1).max().unwrap_or(1),
            };
            let policy = AccessPolicy {
                id: random_id(20),
                server_id: server.clone(),
                name,
                description: description.trim().to_string(),
                priority,
                clients,
                rules: Vec::new(),
                created_at: now,
                updated_at: now,
            };
            store
                .insert_access_policy(&policy)
                .await
                .map_err(CliError::from)?;
            audit_policy(store, Kind::AccessPolicyCreated, &policy, now).await;
            print_json(&policy_json(store, &policy).await?);
        }
        PolicyCommand::List { server } => {
            check_server(store, &server).await?;
            let policies = store
                .access_policies(&server)
                .await
                .map_err(CliError::from)?;
            let mut out = Vec::new();
            for policy in &policies {
                out.push(policy_json(store, policy).await?);
            }
            print_json(&json!(out));
        }
        PolicyCommand::Show { server, name } => {
            let policy = find_policy(store, &server, &name).await?;
            print_json(&policy_json(store, &policy).await?);
        }
        PolicyCommand::Update {
            server,
            name,
            rename,
            priority,
            clients,
            all_clients,
            description,
        } => {
            let mut policy = find_policy(store, &server, &name).await?;
            if let Some(new_name) = rename {
                policy.name = check_name("policy", &new_name)?;
            }
            if let Some(p) = priority {
                policy.priority = check_priority(p)?;
            }
            if all_clients || clients.is_some() {
                policy.clients =
                    policy_clients(store, &server, all_clients, clients.unwrap_or_default())
                        .await?;
            }
            if let Some(d) = description {
                policy.description = d.trim().to_string();
            }
            policy.updated_at = now;
            if !store
                .update_access_policy(&policy)
                .await
                .map_err(CliError::from)?
            {
                return Err(no_policy(&server, &name));
            }
            audit_policy(store, Kind::AccessPolicyUpdated, &policy, now).await;
            print_json(&policy_json(store, &policy).await?);
        }
        PolicyCommand::Delete { server, name } => {
            let policy = find_policy(store, &server, &name).await?;
            if !store
                .delete_access_policy(&policy.id)
                .await
                .map_err(CliError::from)?
            {
                return Err(no_policy(&server, &name));
            }
            audit_policy(store, Kind::AccessPolicyDeleted, &policy, now).await;
            print_json(&json!({ "deleted": policy.name, "server": server }));
        }
    }
    Ok(())
}

/// `--all-clients`, or clients that exist on this server.
async fn policy_clients(
    store: &Store,
    server: &str,
    all: bool,
    ids: Vec<String>,
) -> Result<PolicyClients, CliError> {
    if all {
        return Ok(PolicyClients::All);
    }
    let mut kept: Vec<String> = Vec::new();
    for id in ids.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        match store.client(id).await.map_err(CliError::from)? {
            Some(c) if c.server_id == server => {
                if !kept.iter().any(|k| k == id) {
                    kept.push(id.to_string());
                }
            }
            _ => return Err(CliError(format!("no client `{id}` on server `{server}`"))),
        }
    }
    if kept.is_empty() {
        return Err(CliError(
            "give at least one --client, or --all-clients".into(),
        ));
    }
    Ok(PolicyClients::Only(kept))
}

pub(super) fn check_name(what: &str, name: &str) -> Result<String, CliError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(|c| c.is_control() || c == '`')
    {
        return Err(CliError(format!(
            "{what} name `{name}` must be 1 to {MAX_NAME_CHARS} characters without control characters or backquotes"
        )));
    }
    Ok(name.to_string())
}

pub(super) fn check_priority(priority: i64) -> Result<i64, CliError> {
    if !(0..=1_000_000).contains(&priority) {
        return Err(CliError(format!(
            "--priority {priority} must be 0 to 1000000"
        )));
    }
    Ok(priority)
}

/// A server's policy by name.
pub(super) async fn find_policy(
    store: &Store,
    server: &str,
    name: &str,
) -> Result<AccessPolicy, CliError> {
    check_server(store, server).await?;
    store
        .access_policies(server)
        .await
        .map_err(CliError::from)?
        .into_iter()
        .find(|p| p.name == name.trim())
        .ok_or_else(|| no_policy(server, name))
}

fn no_policy(server: &str, name: &str) -> CliError {
    CliError(format!("no access policy `{name}` on server `{server}`"))
}

async fn policy_json(store: &Store, policy: &AccessPolicy) -> Result<Value, CliError> {
    let mut rules = Vec::new();
    for rule in &policy.rules {
        rules.push(rule_json(store, rule).await?);
    }
    Ok(json!({
        "server": policy.server_id,
        "name": policy.name,
        "description": policy.description,
        "priority": policy.priority,
        "clients": match &policy.clients {
            PolicyClients::All => json!("all"),
            PolicyClients::Only(ids) => json!(ids),
        },
        "rules": rules,
        "created_at": policy.created_at,
        "updated_at": policy.updated_at,
    }))
}

async fn audit_policy(store: &Store, kind: Kind, policy: &AccessPolicy, now: UnixTime) {
    let event = Event::new(kind, now)
        .server(&policy.server_id)
        .actor("cli")
        .subject(policy.id.as_str())
        .detail("policy", policy.name.as_str());
    audit::write(store, event).await;
}
