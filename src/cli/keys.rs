//! `portcullis keys rotate|list|rewrap|generate-kek`

use clap::Subcommand;
use serde_json::json;

use super::{open_store, print_json, CliError};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Seconds};
use crate::keys::kek::Kek;
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
    /// Re-encrypt every private key, from the current KEK (or plaintext) to a new KEK, in one
    /// transaction. Then roll the replicas to the new KEK (see README, "Signing keys").
    Rewrap {
        /// A file holding the new base64 KEK.
        #[arg(
            long,
            value_name = "PATH",
            required_unless_present = "new_kek_env",
            conflicts_with = "new_kek_env"
        )]
        new_kek_file: Option<std::path::PathBuf>,
        /// The name of an environment variable holding the new base64 KEK.
        #[arg(long, value_name = "VAR")]
        new_kek_env: Option<String>,
    },
    /// Print a fresh random KEK (base64 of 32 bytes) for keys.kek or keys.kek_file.
    GenerateKek,
}

/// The new KEK named on the command line; errors never contain it.
fn new_kek(file: Option<std::path::PathBuf>, env: Option<String>) -> Result<Kek, CliError> {
    let (source, text) = match (file, env) {
        (Some(path), _) => (
            "--new-kek-file".to_string(),
            std::fs::read_to_string(&path)
                .map_err(|e| CliError(format!("cannot read {}: {e}", path.display())))?,
        ),
        (None, Some(var)) => (
            format!("--new-kek-env {var}"),
            std::env::var(&var)
                .map_err(|_| CliError(format!("environment variable {var} is not set")))?,
        ),
        (None, None) => return Err(CliError("give --new-kek-file or --new-kek-env".into())),
    };
    Kek::from_base64(&text).map_err(|e| CliError(format!("{source}: the KEK {e}")))
}

pub async fn run(config: &Config, command: KeysCommand) -> Result<(), CliError> {
    let command = match command {
        KeysCommand::GenerateKek => {
            println!("{}", Kek::generate().expose());
            return Ok(());
        }
        KeysCommand::Rewrap {
            new_kek_file,
            new_kek_env,
        } => {
            let kek = new_kek(new_kek_file, new_kek_env)?;
            let kek_id = kek.id_hex();
            let store = open_store(config).await?;
            let ring = KeyRing::new(store.clone(), config);
            let result = ring.rewrap(kek).await.map_err(CliError::from);
            store.close().await;
            print_json(&json!({ "rewrapped": result?, "kek_id": kek_id }));
            return Ok(());
        }
        other => other,
    };
    let store = open_store(config).await?;
    let ring = KeyRing::new(store.clone(), config);
    let now = SystemClock.now();
    let server_id = match &command {
        KeysCommand::Rotate { server, .. } | KeysCommand::List { server } => server.clone(),
        // Handled above.
        KeysCommand::Rewrap { .. } | KeysCommand::GenerateKek => return Ok(()),
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
                        "alg": key.alg.as_str(),
                        "status": status.as_str(),
                        "created_at": key.created_at,
                        "not_before": key.not_before,
                        "unpublish_at": unpublish_at,
                    })
                })
                .collect();
            print_json(&json!(list));
        }
        KeysCommand::Rewrap { .. } | KeysCommand::GenerateKek => {}
    }
    store.close().await;
    Ok(())
}
