//! `portcullis server create|list`

use clap::Subcommand;
use serde_json::json;

use super::{open_store, print_json, CliError};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::keys::KeyRing;
use crate::store::servers::is_valid_server_id;
use crate::store::AuthorizationServer;

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Add an authorization server; its issuer is {issuer}/oauth2/{ID}.
    Create {
        /// Lower-case letters, digits, `-` and `_`.
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// The `aud` of its access tokens (default: api://{ID}).
        #[arg(long)]
        audience: Option<String>,
    },
    /// List authorization servers.
    List,
}

fn describe(server: &AuthorizationServer, config: &Config) -> serde_json::Value {
    json!({
        "id": server.id,
        "name": server.name,
        "issuer": server.issuer(&config.issuer),
        "audience": server.audience,
        "created_at": server.created_at,
    })
}

pub async fn run(config: &Config, command: ServerCommand) -> Result<(), CliError> {
    let store = open_store(config).await?;
    let now = SystemClock.now();
    match command {
        ServerCommand::Create { id, name, audience } => {
            if !is_valid_server_id(&id) {
                return Err(CliError(
                    "--id must be 1-64 lower-case letters, digits, `-` or `_`".into(),
                ));
            }
            let name = name.unwrap_or_else(|| id.clone());
            let audience = audience.unwrap_or_else(|| format!("api://{id}"));
            let server = store
                .create_server(&id, &name, &audience, now)
                .await
                .map_err(CliError::from)?;
            // Generate its first signing key now rather than on its first request.
            KeyRing::new(store.clone(), config)
                .key_set(&server, now)
                .await
                .map_err(CliError::from)?;
            print_json(&describe(&server, config));
        }
        ServerCommand::List => {
            let servers = store.servers().await.map_err(CliError::from)?;
            let list: Vec<_> = servers.iter().map(|s| describe(s, config)).collect();
            print_json(&json!(list));
        }
    }
    store.close().await;
    Ok(())
}
