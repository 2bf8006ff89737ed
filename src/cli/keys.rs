//! `portcullis keys rotate|list`

use clap::Subcommand;
use serde_json::json;

use super::{open_store, print_json, CliError};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Seconds};
use crate::keys::schedule::KeyStatus;
use crate::keys::{KeyRing, Rotation};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a key: published at once, signing after the activation delay.
    Rotate {
        #[arg(long, default_value = "default")]
        server: String,
        /// Override keys.activation_delay (e.g. 0s to sign with it at once).
        #[arg(long, value_name = "DURATION")]
        activate_in: Option<Seconds>,
    },
    /// List a server's keys and their status (pending, active, retired, expired).
    List {
        #[arg(long, default_value = "default")]
        server: String,
    },
}

pub async fn run(config: &Config, command: KeysCommand) -> Result<(), CliError> {
    let store = open_store(config).await?;
    let ring = KeyRing::new(store.clone(), config);
    let now = SystemClock.now();
    let server_id = match &command {
        KeysCommand::Rotate { server, .. } | KeysCommand::List { server } => server.clone(),
    };
    let server = store
        .server(&server_id)
        .await
        .map_err(CliError::from)?
        .ok_or_else(|| CliError(format!("no authorization server `{server_id}`")))?;
    match command {
        KeysCommand::Rotate { activate_in, .. } => {
            // Make sure the first key exists, so the rotated one is the second.
            ring.key_set(&server, now).await.map_err(CliError::from)?;
            let delay = activate_in.unwrap_or(config.keys.activation_delay).as_i64();
            match ring
                .rotate(&server.id, now, delay)
                .await
                .map_err(CliError::from)?
            {
                Rotation::Added { kid, not_before } => print_json(
                    &json!({ "kid": kid, "server": server.id, "not_before": not_before }),
                ),
                Rotation::LostRace => {
                    return Err(CliError(
                        "another rotation happened at the same moment; see `keys list`".into(),
                    ))
                }
            }
        }
        KeysCommand::List { .. } => {
            let set = ring.key_set(&server, now).await.map_err(CliError::from)?;
            let list: Vec<_> = set
                .keys
                .iter()
                .zip(set.statuses(now))
                .map(|(key, status)| {
                    let unpublish_at = match status {
                        KeyStatus::Retired { unpublish_at } => Some(unpublish_at),
                        _ => None,
                    };
                    json!({
                        "kid": key.kid,
                        "generation": key.generation,
                        "alg": "RS256",
                        "status": status.as_str(),
                        "created_at": key.created_at,
                        "not_before": key.not_before,
                        "unpublish_at": unpublish_at,
                    })
                })
                .collect();
            print_json(&json!(list));
        }
    }
    store.close().await;
    Ok(())
}
