//! The command line: one file per command group.

mod client;
mod healthcheck;
mod keys;
mod server;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "An OAuth 2.0 / OpenID Connect authorization server"
)]
pub struct Cli {
    /// A TOML configuration file (every key is documented in config/portcullis.toml).
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (applies migrations, creates the default server and its first key).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Authorization servers: each has its own issuer and keys.
    #[command(subcommand)]
    Server(server::ServerCommand),
    /// Clients of an authorization server.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Signing keys of an authorization server.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Users who sign in; shared by every authorization server.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Exit 0 if the server on `listen` answers /healthz (for container health checks).
    Healthcheck(healthcheck::HealthcheckArgs),
}

/// An error for the operator, printed on stderr.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

impl CliError {
    pub fn from(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("portcullis: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve => crate::serve::run(config).await.map_err(CliError::from),
        Command::Migrate => migrate(&config).await,
        Command::Server(cmd) => server::run(&config, cmd).await,
        Command::Client(cmd) => client::run(&config, cmd).await,
        Command::Keys(cmd) => keys::run(&config, cmd).await,
        Command::User(cmd) => user::run(&config, cmd).await,
        Command::Healthcheck(args) => healthcheck::run(&config, args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Open the database for an administrative command: migrated, with the default server.
pub(crate) async fn open_store(config: &Config) -> Result<Store, CliError> {
    let store = Store::connect(&config.database_url, 2).await.map_err(|e| {
        CliError(format!(
            "cannot open {}: {e}",
            redact_url(&config.database_url)
        ))
    })?;
    store.migrate().await.map_err(CliError::from)?;
    store
        .ensure_default_server(SystemClock.now())
        .await
        .map_err(CliError::from)?;
    Ok(store)
}

async fn migrate(config: &Config) -> Result<(), CliError> {
    let store = open_store(config).await?;
    println!(
        "{}",
        serde_json::json!({ "migrated": true, "database": store.backend() })
    );
    store.close().await;
    Ok(())
}

pub(crate) fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// A database URL for messages: the password, if any, is hidden.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("REDACTED"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}
