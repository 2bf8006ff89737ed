//! The command line: one file per command group.

mod audit;
mod claim;
mod client;
mod group;
mod healthcheck;
mod keys;
mod page;
mod policy;
mod registration_token;
mod rule;
mod scope;
pub mod serve;
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
    /// Custom scopes of an authorization server, with the descriptions the consent page shows.
    #[command(subcommand)]
    Scope(scope::ScopeCommand),
    /// Custom claims of an authorization server: a user attribute or a static value.
    #[command(subcommand)]
    Claim(claim::ClaimCommand),
    /// Clients of an authorization server.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Signing keys of an authorization server.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Users who sign in; shared by every authorization server.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Groups of users, shared by every authorization server: access rules, app assignments and
    /// the groups claim name them.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Access policies of an authorization server: which clients they apply to, in what order.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Rules of an access policy: who may have tokens, by which grant, with which scopes and
    /// lifetimes.
    #[command(subcommand)]
    Rule(rule::RuleCommand),
    /// Initial access tokens for dynamic client registration (RFC 7591) at servers with
    /// `server update --registration token`.
    #[command(subcommand)]
    RegistrationToken(registration_token::RegistrationTokenCommand),
    /// The audit log, newest first: sign-ins, lockouts, tokens, client, user and key changes.
    Audit(audit::AuditArgs),
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
        Command::Serve => serve::run(config).await.map_err(CliError::from),
        Command::Migrate => migrate(&config).await,
        Command::Server(cmd) => server::run(&config, cmd).await,
        Command::Scope(cmd) => scope::run(&config, cmd).await,
        Command::Claim(cmd) => claim::run(&config, cmd).await,
        Command::Client(cmd) => client::run(&config, cmd).await,
        Command::Keys(cmd) => keys::run(&config, cmd).await,
        Command::User(cmd) => user::run(&config, cmd).await,
        Command::Group(cmd) => group::run(&config, cmd).await,
        Command::Policy(cmd) => policy::run(&config, cmd).await,
        Command::Rule(cmd) => rule::run(&config, cmd).await,
        Command::RegistrationToken(cmd) => registration_token::run(&config, cmd).await,
        Command::Audit(args) => audit::run(&config, args).await,
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
        .ensure_builtin_servers(SystemClock.now())
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

/// A lifetime override from the command line: a duration (`90`, `15m`, `1h`, `30d`), or
/// `default` to clear the override. `None` inside means "back to the default".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlOverride(pub Option<i64>);

/// Longer than any sensible token lifetime, and far from overflowing `now + ttl`.
const MAX_TTL: u64 = 10 * 365 * 86400;

pub(crate) fn parse_ttl(s: &str) -> Result<TtlOverride, String> {
    parse_duration_override(s, 1)
}

/// `--refresh-reuse-grace`: at most a minute, and 0 turns it off.
pub(crate) fn parse_reuse_grace(s: &str) -> Result<TtlOverride, String> {
    let parsed = parse_duration_override(s, 0)?;
    match parsed.0 {
        Some(n) if n > 60 => Err(format!("`{s}` is longer than 60s")),
        _ => Ok(parsed),
    }
}

fn parse_duration_override(s: &str, min: u64) -> Result<TtlOverride, String> {
    if s.trim() == "default" {
        return Ok(TtlOverride(None));
    }
    let seconds: crate::config::Seconds = s.parse()?;
    if seconds.0 < min {
        return Err(format!("`{s}` must be at least {min}s"));
    }
    if seconds.0 > MAX_TTL {
        return Err(format!("`{s}` is longer than ten years"));
    }
    Ok(TtlOverride(Some(seconds.as_i64())))
}

/// `true` or `false`, for flags that change a stored boolean.
pub(crate) fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("`{s}` is not true or false")),
    }
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
