//! `portcullis policy create|list|show|update|delete`: the access policies of an authorization
//! server. The first policy (lowest priority) whose clients include the requesting client
//! applies; its rules (`portcullis rule …`) decide. A server without policies issues tokens as
//! its clients and scopes allow (the implicit default policy).

use clap::{ArgGroup, Subcommand};
use serde_json::{json, Value};

use super::rule::rule_json;
use super::{open_store, print_json, CliError};
use crate::clock::{Clock, SystemClock, UnixTime};
use crate::config::Config;
use crate::manage::policies::{self, ClientsChoice, PolicyChanges};
use crate::manage::Actor;
use crate::store::{AccessPolicy, PolicyClients, Store};

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
    /// A server's policies with their rules, in the order they are evaluated (`--after` a
    /// policy name: the page goes on after that policy's priority and name).
    List {
        #[arg(long)]
        server: String,
        #[command(flatten)]
        page: super::page::PageArgs,
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
    let actor = &Actor::Cli;
    match command {
        PolicyCommand::Create {
            server,
            name,
            priority,
            clients,
            all_clients,
            description,
        } => {
            let changes = PolicyChanges {
                name: Some(name),
                description: Some(description),
                priority,
                clients: Some(ClientsChoice {
                    all: all_clients,
                    ids: clients,
                }),
            };
            let policy = policies::create_policy(store, &server, changes, actor, now)
                .await
                .map_err(CliError::from)?;
            print_json(&policy_json(store, &policy).await?);
        }
        PolicyCommand::List { server, page } => {
            let after = match page.after.as_deref() {
                Some(name) => {
                    let policy = find_policy(store, &server, name).await?;
                    Some((policy.priority, policy.name))
                }
                None => None,
            };
            let policies = policies::list_policies(
                store,
                &server,
                after.as_ref().map(|(p, n)| (*p, n.as_str())),
                page.limit,
            )
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
            let policy = find_policy(store, &server, &name).await?;
            let clients = (all_clients || clients.is_some()).then(|| ClientsChoice {
                all: all_clients,
                ids: clients.unwrap_or_default(),
            });
            let changes = PolicyChanges {
                name: rename,
                description,
                priority,
                clients,
            };
            let policy = policies::update_policy(store, &policy, changes, actor, now)
                .await
                .map_err(CliError::from)?;
            print_json(&policy_json(store, &policy).await?);
        }
        PolicyCommand::Delete { server, name } => {
            let policy = find_policy(store, &server, &name).await?;
            if !policies::delete_policy(store, &policy, actor, now)
                .await
                .map_err(CliError::from)?
            {
                return Err(CliError(format!(
                    "no access policy `{name}` on server `{server}`"
                )));
            }
            print_json(&json!({ "deleted": policy.name, "server": server }));
        }
    }
    Ok(())
}

/// A server's policy by name.
pub(super) async fn find_policy(
    store: &Store,
    server: &str,
    name: &str,
) -> Result<AccessPolicy, CliError> {
    policies::find_policy(store, server, name)
        .await
        .map_err(CliError::from)
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
