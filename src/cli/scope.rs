//! `portcullis scope create|list|update|delete`: a server's custom scopes. The OIDC scopes
//! (openid, profile, email, address, phone, offline_access) are built in and not managed here.

use clap::Subcommand;
use serde_json::json;

use super::{open_store, parse_bool, print_json, CliError};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::manage::{scopes, Actor};
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
    /// List a server's custom scopes (including those registered by giving them to a client),
    /// by name (`--after` a scope name).
    List {
        #[arg(long)]
        server: String,
        #[command(flatten)]
        page: super::page::PageArgs,
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
    let actor = &Actor::Cli;
    let now = SystemClock.now();
    match command {
        ScopeCommand::Create {
            server,
            name,
            description,
            default,
        } => {
            let scope =
                scopes::create_scope(store, &server, &name, &description, default, actor, now)
                    .await
                    .map_err(CliError::from)?;
            print_json(&json!(scope));
        }
        ScopeCommand::List { server, page } => {
            let scopes = scopes::list_scopes(store, &server, page.page())
                .await
                .map_err(CliError::from)?;
            print_json(&json!(scopes));
        }
        ScopeCommand::Update {
            server,
            name,
            description,
            default,
        } => {
            let scope = scopes::update_scope(
                store,
                &server,
                &name,
                description.as_deref(),
                default,
                actor,
                now,
            )
            .await
            .map_err(CliError::from)?;
            print_json(&json!(scope));
        }
        ScopeCommand::Delete { server, name } => {
            if !scopes::delete_scope(store, &server, &name, actor, now)
                .await
                .map_err(CliError::from)?
            {
                return Err(CliError(format!("no scope `{name}` on server `{server}`")));
            }
            print_json(&json!({ "deleted": name, "server": server }));
        }
    }
    Ok(())
}
