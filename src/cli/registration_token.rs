//! `portcullis registration-token create|list|revoke`: initial access tokens for dynamic client
//! registration (RFC 7591 §3) at servers with `--registration token`.

use clap::Subcommand;
use serde_json::json;

use super::{open_store, print_json, CliError};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Seconds};
use crate::manage::registration::{create_initial_token, revoke_initial_token};
use crate::manage::Actor;

#[derive(Debug, Subcommand)]
pub enum RegistrationTokenCommand {
    /// Make an initial access token; prints it as JSON (the token is shown only this once and
    /// stored as its hash).
    Create {
        #[arg(long, default_value = "default")]
        server: String,
        /// How long it is valid (90, 15m, 1h, 30d; default 1 day).
        #[arg(long, value_name = "DURATION", default_value = "1d")]
        ttl: Seconds,
        /// How many registrations it allows (default: any number until it expires).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
        uses: Option<i64>,
    },
    /// List a server's initial access tokens (never the tokens themselves).
    List {
        #[arg(long, default_value = "default")]
        server: String,
    },
    /// Revoke an initial access token by its id.
    Revoke { id: String },
}

pub async fn run(config: &Config, command: RegistrationTokenCommand) -> Result<(), CliError> {
    let store = open_store(config).await?;
    let now = SystemClock.now();
    let result = async {
        match command {
            RegistrationTokenCommand::Create { server, ttl, uses } => {
                let (token, secret) =
                    create_initial_token(&store, &server, ttl.as_i64(), uses, &Actor::Cli, now)
                        .await
                        .map_err(CliError::from)?;
                let mut out = json!(token);
                out["token"] = json!(secret.expose());
                print_json(&out);
            }
            RegistrationTokenCommand::List { server } => {
                let tokens = store
                    .registration_tokens(&server)
                    .await
                    .map_err(CliError::from)?;
                print_json(&json!(tokens));
            }
            RegistrationTokenCommand::Revoke { id } => {
                if !revoke_initial_token(&store, &id, &Actor::Cli, now)
                    .await
                    .map_err(CliError::from)?
                {
                    return Err(CliError(format!("no registration token `{id}`")));
                }
                print_json(&json!({ "revoked": id }));
            }
        }
        Ok(())
    }
    .await;
    store.close().await;
    result
}
