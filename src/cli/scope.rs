//! `portcullis scope create|list|update|delete`: a server's custom scopes. The OIDC scopes
//! (openid, profile, email, address, phone, offline_access) are built in and not managed here.

use clap::Subcommand;
use serde_json::json;

use super::{open_store, parse_bool, print_json, CliError};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::protocol::scope::{is_scope_token, BUILT_IN_SCOPES};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum ScopeCommand {
    /// Add a custom scope.
    Create {
        #[arg(long)]
        server: String,
        /// A scope token (RFC 6749 §3.3): printable ASCII, no spaces, `"` or `\`.
        #[arg(long)]
        name: String,
        /// What granting it allows, in words for the consent page.
        #[arg(long, default_value = "")]
        description: String,
        /// Granted to a client that requests no scope, has no --default-scope of its own and
        /// may use it.
        #[arg(long)]
        default: bool,
    },
    /// List a server's custom scopes (including those registered by giving them to a client).
    List {
        #[arg(long)]
        server: String,
    },
    /// Change a scope's description or default flag.
    Update {
        #[arg(long)]
        server: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, value_name = "true|false", value_parser = parse_bool)]
        default: Option<bool>,
    },
    /// Delete a scope no client and no claim uses any more.
    Delete {
        #[arg(long)]
        server: String,
        #[arg(long)]
        name: String,
    },
}

pub async fn run(config: &Config, command: ScopeCommand) -> Result<(), CliError> {
    let store = open_store(config).await?;
    let result = execute(&store, command).await;
    store.close().await;
    result
}

async fn execute(store: &Store, command: ScopeCommand) -> Result<(), CliError> {
    match command {
        ScopeCommand::Create {
            server,
            name,
            description,
            default,
        } => {
            check_server(store, &server).await?;
            check_name(&name)?;
            let scope = store
                .create_scope(&server, &name, description.trim(), default, SystemClock.now())
                .await
                .map_err(|e| match e {
                    crate::store::StoreError::AlreadyExists(_) => CliError(format!(
                        "scope `{name}` already exists on server `{server}`; change it with `scope update`"
                    )),
                    e => CliError::from(e),
                })?;
            print_json(&json!(scope));
        }
        ScopeCommand::List { server } => {
            check_server(store, &server).await?;
            let scopes = store.scopes(&server).await.map_err(CliError::from)?;
            print_json(&json!(scopes));
        }
        ScopeCommand::Update {
            server,
            name,
            description,
            default,
        } => {
            check_server(store, &server).await?;
            check_name(&name)?;
            let scope = store
                .update_scope(
                    &server,
                    &name,
                    description.as_deref().map(str::trim),
                    default,
                )
                .await
                .map_err(CliError::from)?
                .ok_or_else(|| no_scope(&server, &name))?;
            print_json(&json!(scope));
        }
        ScopeCommand::Delete { server, name } => {
            check_server(store, &server).await?;
            check_name(&name)?;
            let clients = store.clients(Some(&server)).await.map_err(CliError::from)?;
            let users: Vec<&str> = clients
                .iter()
                .filter(|c| c.scopes.contains(&name))
                .map(|c| c.id.as_str())
                .collect();
            if !users.is_empty() {
                return Err(CliError(format!(
                    "scope `{name}` is still given to client(s) {}; remove it from them with `client update --scope …` first",
                    users.join(", ")
                )));
            }
            let claims = store.claims(&server).await.map_err(CliError::from)?;
            let releasing: Vec<&str> = claims
                .iter()
                .filter(|c| c.scopes.contains(&name))
                .map(|c| c.name.as_str())
                .collect();
            if !releasing.is_empty() {
                return Err(CliError(format!(
                    "scope `{name}` still releases claim(s) {}; delete them first",
                    releasing.join(", ")
                )));
            }
            if !store
                .delete_scope(&server, &name)
                .await
                .map_err(CliError::from)?
            {
                return Err(no_scope(&server, &name));
            }
            print_json(&json!({ "deleted": name, "server": server }));
        }
    }
    Ok(())
}

pub(super) async fn check_server(store: &Store, server: &str) -> Result<(), CliError> {
    match store.server(server).await.map_err(CliError::from)? {
        Some(_) => Ok(()),
        None => Err(CliError(format!("no authorization server `{server}`"))),
    }
}

fn check_name(name: &str) -> Result<(), CliError> {
    if BUILT_IN_SCOPES.contains(&name) {
        return Err(CliError(format!(
            "`{name}` is a built-in OpenID Connect scope and cannot be changed"
        )));
    }
    if !is_scope_token(name) {
        return Err(CliError(format!(
            "`{name}` is not a scope token (RFC 6749 §3.3: printable ASCII without spaces, `\"` or `\\`)"
        )));
    }
    Ok(())
}

fn no_scope(server: &str, name: &str) -> CliError {
    CliError(format!("no scope `{name}` on server `{server}`"))
}
