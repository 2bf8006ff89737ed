//! `portcullis user create|update|list|show|disable|enable|delete|set-password|unlock|sessions`
//!
//! A password is only ever read from standard input (`--password-stdin`), never from an
//! argument, where it would show in `ps` and in shell history.

mod attributes;
mod claims;
mod mfa;

use clap::Subcommand;
use serde_json::json;
use tokio::io::AsyncBufReadExt;

use self::claims::ClaimArgs;
use super::{open_store, print_json, CliError};
use crate::clock::{Clock, SystemClock, UnixTime};
use crate::config::Config;
use crate::manage::users::{self, UserRequest};
use crate::manage::Actor;
use crate::passwords::PasswordHasher;
use crate::security::Secret;
use crate::store::{Store, User};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; prints it as JSON (never the password or its hash).
    Create {
        /// 1 to 128 characters, trimmed; compared case-sensitively.
        #[arg(long)]
        username: String,
        /// Read the password from standard input (one line). Without it the user has no
        /// password and cannot sign in until `user set-password`.
        #[arg(long)]
        password_stdin: bool,
        // Boxed: two dozen optional claims would make every command value that large.
        #[command(flatten)]
        claims: Box<ClaimArgs>,
        /// A custom attribute, KEY=VALUE (repeatable): VALUE is JSON when it parses as JSON, a
        /// string otherwise. Attribute claims (`claim create --attribute KEY`) release it.
        #[arg(long = "attribute", value_name = "KEY=VALUE", value_parser = attributes::parse)]
        attributes: Vec<(String, serde_json::Value)>,
    },
    /// Change a user's claims; prints the user as JSON. A claim flag replaces that claim
    /// (address parts join the stored address; a new --email or --phone-number is unverified
    /// unless --email-verified or --phone-number-verified comes with it). Sessions and tokens
    /// stay; tokens already issued keep the claims they carry.
    Update {
        user: String,
        /// Remove a claim (repeatable): name, given_name, …, email, phone_number, address.
        #[arg(long = "unset", value_name = "CLAIM")]
        unset: Vec<String>,
        #[command(flatten)]
        claims: Box<ClaimArgs>,
        /// Set a custom attribute, KEY=VALUE (repeatable; VALUE is JSON when it parses as JSON).
        #[arg(long = "attribute", value_name = "KEY=VALUE", value_parser = attributes::parse)]
        attributes: Vec<(String, serde_json::Value)>,
        /// Remove a custom attribute (repeatable).
        #[arg(long = "unset-attribute", value_name = "KEY")]
        unset_attributes: Vec<String>,
    },
    /// List users, by username (`--after` a username).
    List(super::page::PageArgs),
    /// Show a user, by username or id, with their groups.
    Show { user: String },
    /// Disable a user: no sign-in, and their grants, refresh tokens and sessions are revoked.
    Disable { user: String },
    /// Enable a disabled user (revoked grants stay revoked).
    Enable { user: String },
    /// Delete a user, with their grants, tokens, sessions and consents.
    Delete { user: String },
    /// Set a user's password, read from standard input; revokes their grants and sessions
    /// and clears a lockout.
    SetPassword {
        user: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Clear a lockout after failed logins.
    Unlock { user: String },
    /// A user's browser sessions: list them, or sign the user out (single logout).
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// A user's second factors: enrol an authenticator app, list, reset, new recovery codes.
    Mfa {
        #[command(subcommand)]
        command: mfa::MfaCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// The user's live sessions, newest first.
    List { user: String },
    /// End the user's sessions (or one, with --session): every client that received tokens in
    /// them is told by back-channel logout, and their refresh tokens without offline_access are
    /// revoked.
    Revoke {
        user: String,
        /// Only this session (its `sid`).
        #[arg(long, value_name = "SID")]
        session: Option<String>,
    },
}

pub async fn run(config: &Config, command: UserCommand) -> Result<(), CliError> {
    // Standard input is read before the database is opened: an empty or missing password
    // stops the command before it has touched anything.
    let password = match &command {
        UserCommand::Create {
            password_stdin: true,
            ..
        }
        | UserCommand::SetPassword { .. } => Some(read_password().await?),
        _ => None,
    };
    let store = open_store(config).await?;
    let result = execute(config, &store, command, password, SystemClock.now()).await;
    store.close().await;
    result
}

async fn execute(
    config: &Config,
    store: &Store,
    command: UserCommand,
    password: Option<Secret>,
    now: UnixTime,
) -> Result<(), CliError> {
    match command {
        UserCommand::Create {
            username,
            claims,
            attributes,
            ..
        } => {
            let claims = claims.into_claims()?;
            let mut attribute_map = serde_json::Map::new();
            attributes::merge(&mut attribute_map, attributes, &[])?;
            let password_hash = match &password {
                Some(password) => Some(hash(config, password).await?),
                None => None,
            };
            let request = UserRequest {
                username,
                password_hash,
                claims,
                attributes: attribute_map,
            };
            let user = users::create_user(store, request, &Actor::Cli, now)
                .await
                .map_err(CliError::from)?;
            print_json(&user_json(store, &user).await?);
        }
        UserCommand::Update {
            user,
            unset,
            claims,
            attributes,
            unset_attributes,
        } => {
            let user = find_user(store, &user).await?;
            let mut updated = user.claims.clone();
            let given = claims.into_claims()?;
            let only_attributes = given.is_empty()
                && unset.is_empty()
                && !(attributes.is_empty() && unset_attributes.is_empty());
            if !only_attributes {
                claims::merge(&mut updated, given, &unset)?;
            }
            let mut updated_attributes = user.attributes.clone();
            attributes::merge(&mut updated_attributes, attributes, &unset_attributes)?;
            let user =
                users::update_profile(store, &user, updated, updated_attributes, &Actor::Cli, now)
                    .await
                    .map_err(CliError::from)?;
            print_json(&user_json(store, &user).await?);
        }
        UserCommand::List(page) => {
            let users = store
                .list_users(page.page())
                .await
                .map_err(CliError::from)?;
            print_json(&json!(users.iter().map(User::to_json).collect::<Vec<_>>()));
        }
        UserCommand::Show { user } => {
            let user = find_user(store, &user).await?;
            print_json(&user_json(store, &user).await?);
        }
        UserCommand::Disable { user } => set_disabled(store, &user, true, now).await?,
        UserCommand::Enable { user } => set_disabled(store, &user, false, now).await?,
        UserCommand::Delete { user } => {
            let user = find_user(store, &user).await?;
            if !users::delete_user(store, &user, &Actor::Cli, now)
                .await
                .map_err(CliError::from)?
            {
                return Err(CliError(format!("no user `{}`", user.username)));
            }
            print_json(&json!({ "deleted": user.id, "username": user.username }));
        }
        UserCommand::SetPassword { user, .. } => {
            let user = find_user(store, &user).await?;
            let password = password.ok_or_else(|| CliError("no password was read".into()))?;
            let hashed = hash(config, &password).await?;
            let user = users::set_password(store, &user, &hashed, &Actor::Cli, now)
                .await
                .map_err(CliError::from)?;
            print_json(&user_json(store, &user).await?);
        }
        UserCommand::Sessions { command } => sessions(store, command, now).await?,
        UserCommand::Mfa { command } => mfa::execute(config, store, command, now).await?,
        UserCommand::Unlock { user } => {
            let user = find_user(store, &user).await?;
            let user = users::unlock(store, &user, &Actor::Cli, now)
                .await
                .map_err(CliError::from)?;
            print_json(&user_json(store, &user).await?);
        }
    }
    Ok(())
}

async fn set_disabled(
    store: &Store,
    key: &str,
    disabled: bool,
    now: UnixTime,
) -> Result<(), CliError> {
    let user = find_user(store, key).await?;
    let user = users::set_disabled(store, &user, disabled, &Actor::Cli, now)
        .await
        .map_err(CliError::from)?;
    print_json(&user_json(store, &user).await?);
    Ok(())
}

/// One user as JSON, with the names of their groups.
async fn user_json(store: &Store, user: &User) -> Result<serde_json::Value, CliError> {
    let groups = store
        .groups_of_user(&user.id)
        .await
        .map_err(CliError::from)?;
    let mut out = user.to_json();
    out["groups"] = json!(groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>());
    Ok(out)
}

async fn sessions(store: &Store, command: SessionsCommand, now: UnixTime) -> Result<(), CliError> {
    match command {
        SessionsCommand::List { user } => {
            let user = find_user(store, &user).await?;
            let sessions = store
                .live_sessions_of(&user.id, now)
                .await
                .map_err(CliError::from)?;
            print_json(&json!(sessions
                .iter()
                .map(|s| json!({
                    "sid": s.sid,
                    "server_id": s.server_id,
                    "auth_time": s.auth_time,
                    "created_at": s.created_at,
                    "last_seen_at": s.last_seen_at,
                    "expires_at": s.expires_at,
                }))
                .collect::<Vec<_>>()));
        }
        SessionsCommand::Revoke { user, session } => {
            let user = find_user(store, &user).await?;
            // Queued in the outbox; a running replica delivers them within
            // `logout.poll_interval`.
            let out = users::end_sessions(store, &user, session.as_deref(), &Actor::Cli, now)
                .await
                .map_err(CliError::from)?;
            print_json(&json!({
                "user_id": user.id,
                "username": user.username,
                "sessions_ended": out.sessions_ended,
                "backchannel_logouts_queued": out.backchannel_logouts_queued,
            }));
        }
    }
    Ok(())
}

/// A user named by the operator: a username or an id.
pub(crate) async fn find_user(store: &Store, key: &str) -> Result<User, CliError> {
    users::find_user(store, key).await.map_err(CliError::from)
}

async fn hash(config: &Config, password: &Secret) -> Result<String, CliError> {
    PasswordHasher::new(&config.passwords)
        .hash(password)
        .await
        .map_err(CliError::from)
}

/// One line of standard input, without its line ending.
async fn read_password() -> Result<Secret, CliError> {
    let mut line = String::new();
    tokio::io::BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await
        .map_err(|e| CliError(format!("cannot read the password from standard input: {e}")))?;
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    if password.is_empty() {
        return Err(CliError(
            "the password on standard input is empty (--password-stdin reads one line)".into(),
        ));
    }
    Ok(Secret::new(password))
}
