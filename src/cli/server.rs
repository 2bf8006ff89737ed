//! `portcullis server create|list|show|update`

use clap::Subcommand;
use serde_json::json;

use super::{
    open_store, parse_bool, parse_reuse_grace, parse_ttl, print_json, CliError, TtlOverride,
};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::keys::{KeyRing, Rotation, SigningAlg};
use crate::manage::registration;
use crate::manage::servers::{check_changes, update_server};
use crate::manage::Actor;
use crate::mfa::MfaPolicy;
use crate::store::registration::RegistrationPolicy;
use crate::store::servers::is_valid_server_id;
use crate::store::{AuthorizationServer, ServerChanges, Store};

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
        /// The JWS algorithm of its tokens: RS256 (RSA) or ES256 (ECDSA P-256).
        #[arg(long, value_name = "ALG", default_value = "RS256")]
        signing_alg: SigningAlg,
        /// Require PKCE (S256) of confidential clients too (RFC 9700 §2.1.1): on for a new
        /// server; `false` for web apps that send no code_challenge yet.
        #[arg(long, value_name = "true|false", value_parser = parse_bool, default_value = "true", action = clap::ArgAction::Set)]
        require_pkce: bool,
    },
    /// List authorization servers, by id (`--after` a server id).
    List(super::page::PageArgs),
    /// Show a server with its policy (a null lifetime means the configuration's default).
    Show {
        #[arg(long)]
        id: String,
    },
    /// Change a server's name, audience or token policy. A lifetime of `default` clears the
    /// override; clients' own overrides still win.
    Update {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// The `aud` of new access tokens; tokens already issued keep theirs.
        #[arg(long)]
        audience: Option<String>,
        /// Access token lifetime (90, 15m, 1h, 30d, or `default`).
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        access_token_ttl: Option<TtlOverride>,
        /// ID token lifetime.
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        id_token_ttl: Option<TtlOverride>,
        /// Refresh token (and grant) absolute lifetime.
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        refresh_token_ttl: Option<TtlOverride>,
        /// A refresh token unused for this long expires.
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        refresh_idle_ttl: Option<TtlOverride>,
        /// How long a rotated-out refresh token may still be presented (0s to 60s).
        #[arg(long, value_name = "DURATION", value_parser = parse_reuse_grace)]
        refresh_reuse_grace: Option<TtlOverride>,
        /// Issue refresh tokens only when offline_access is granted.
        #[arg(long, value_name = "true|false", value_parser = parse_bool)]
        refresh_requires_offline_access: Option<bool>,
        /// Sign with RS256 or ES256 from now on: a key of that type is rotated in (published at
        /// once, signing after keys.activation_delay); the old key verifies its tokens until
        /// they expire.
        #[arg(long, value_name = "ALG")]
        signing_alg: Option<SigningAlg>,
        /// Require PKCE (S256) of confidential clients too, not only of public ones (RFC 9700
        /// §2.1.1); authorization requests without a code_challenge are then refused.
        #[arg(long, value_name = "true|false", value_parser = parse_bool)]
        require_pkce: Option<bool>,
        /// Dynamic client registration (RFC 7591) at {issuer}/register: closed (the default),
        /// token (with an initial access token from `registration-token create`) or open.
        #[arg(long, value_name = "closed|token|open", value_parser = RegistrationPolicy::parse)]
        registration: Option<RegistrationPolicy>,
        /// Second factor at sign-in: `off`, `optional` (asked of users who have one) or
        /// `required` (users without one enrol at their next sign-in).
        #[arg(long, value_name = "off|optional|required", value_parser = parse_mfa)]
        mfa: Option<MfaPolicy>,
        /// Every client must push its authorization requests to /par (RFC 9126 §5,
        /// `require_pushed_authorization_requests` in discovery).
        #[arg(long, value_name = "true|false", value_parser = parse_bool)]
        require_par: Option<bool>,
    },
}

fn parse_mfa(s: &str) -> Result<MfaPolicy, String> {
    MfaPolicy::parse(s).ok_or_else(|| format!("`{s}`: expected off, optional or required"))
}

fn describe(server: &AuthorizationServer, config: &Config) -> serde_json::Value {
    json!({
        "id": server.id,
        "name": server.name,
        "issuer": server.issuer(&config.issuer),
        "audience": server.audience,
        "access_token_ttl": server.access_token_ttl,
        "id_token_ttl": server.id_token_ttl,
        "refresh_token_ttl": server.refresh_token_ttl,
        "refresh_idle_ttl": server.refresh_idle_ttl,
        "refresh_reuse_grace": server.refresh_reuse_grace,
        "refresh_requires_offline_access": server.refresh_requires_offline_access,
        "signing_alg": server.signing_alg,
        "require_pkce": server.require_pkce,
        "mfa": server.mfa,
        "require_pushed_authorization_requests": server.require_pushed_authorization_requests,
        "created_at": server.created_at,
        "updated_at": server.updated_at,
        "version": server.version,
    })
}

pub async fn run(config: &Config, command: ServerCommand) -> Result<(), CliError> {
    let store = open_store(config).await?;
    let result = execute(config, &store, command).await;
    store.close().await;
    result
}

async fn execute(config: &Config, store: &Store, command: ServerCommand) -> Result<(), CliError> {
    let now = SystemClock.now();
    match command {
        ServerCommand::Create {
            id,
            name,
            audience,
            signing_alg,
            require_pkce,
        } => {
            if !is_valid_server_id(&id) {
                return Err(CliError(
                    "--id must be 1-64 lower-case letters, digits, `-` or `_`".into(),
                ));
            }
            let name = name.unwrap_or_else(|| id.clone());
            let audience = audience.unwrap_or_else(|| format!("api://{id}"));
            store
                .create_server(&id, &name, &audience, now)
                .await
                .map_err(CliError::from)?;
            let changes = ServerChanges {
                signing_alg: (signing_alg != SigningAlg::Rs256)
                    .then(|| signing_alg.as_str().into()),
                require_pkce: Some(require_pkce),
                ..ServerChanges::default()
            };
            let server = store
                .update_server(&id, &changes, now)
                .await
                .map_err(CliError::from)?;
            // No key is generated here: the first replica to use the server generates its first
            // key, exactly once across replicas (keys/mod.rs), so creating one stays cheap.
            print_json(&describe(&server, config));
        }
        ServerCommand::List(page) => {
            let servers = store
                .list_servers(page.page())
                .await
                .map_err(CliError::from)?;
            let list: Vec<_> = servers.iter().map(|s| describe(s, config)).collect();
            print_json(&json!(list));
        }
        ServerCommand::Show { id } => {
            let server = store
                .server(&id)
                .await
                .map_err(CliError::from)?
                .ok_or_else(|| CliError(format!("no authorization server `{id}`")))?;
            print_json(&describe_with_policy(store, &server, config).await?);
        }
        ServerCommand::Update {
            id,
            name,
            audience,
            access_token_ttl,
            id_token_ttl,
            refresh_token_ttl,
            refresh_idle_ttl,
            refresh_reuse_grace,
            refresh_requires_offline_access,
            signing_alg,
            require_pkce,
            registration,
            mfa,
            require_par,
        } => {
            let changes = ServerChanges {
                name: name.map(|n| n.trim().to_string()),
                audience: audience.map(|a| a.trim().to_string()),
                access_token_ttl: access_token_ttl.map(|t| t.0),
                id_token_ttl: id_token_ttl.map(|t| t.0),
                refresh_token_ttl: refresh_token_ttl.map(|t| t.0),
                refresh_idle_ttl: refresh_idle_ttl.map(|t| t.0),
                refresh_reuse_grace: refresh_reuse_grace.map(|t| t.0),
                refresh_requires_offline_access,
                signing_alg: signing_alg.map(|a| a.as_str().to_string()),
                require_pkce,
                require_pushed_authorization_requests: require_par,
            };
            check_changes(&changes).map_err(CliError::from)?;
            if let Some(policy) = registration {
                registration::set_policy(store, &id, policy, &Actor::Cli, now)
                    .await
                    .map_err(CliError::from)?;
            }
            let ring = KeyRing::new(store.clone(), config);
            let delay = config.keys.activation_delay.as_i64();
            let (server, rotation) =
                update_server(store, &ring, &id, &changes, delay, &Actor::Cli, now)
                    .await
                    .map_err(CliError::from)?;
            let server = match mfa {
                Some(mfa) => {
                    crate::manage::servers::set_server_mfa(store, server, mfa, &Actor::Cli, now)
                        .await
                        .map_err(CliError::from)?
                }
                None => server,
            };
            if let Some(Rotation::Added { kid, not_before }) = rotation {
                eprintln!(
                    "rotated in {} key {kid}, signing from {not_before}",
                    server.signing_alg
                );
            }
            print_json(&describe_with_policy(store, &server, config).await?);
        }
    }
    Ok(())
}

/// The server as JSON with its registration policy.
async fn describe_with_policy(
    store: &Store,
    server: &AuthorizationServer,
    config: &Config,
) -> Result<serde_json::Value, CliError> {
    let mut out = describe(server, config);
    let policy = store
        .registration_policy(&server.id)
        .await
        .map_err(CliError::from)?;
    out["registration"] = json!(policy.as_str());
    Ok(out)
}
