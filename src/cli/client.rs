//! `portcullis client create|list|show|update|delete`

use clap::Subcommand;
use serde_json::json;

use super::group::find_group;
use super::user::find_user;
use super::{open_store, parse_bool, parse_ttl, print_json, CliError, TtlOverride};
use crate::audit::{self, Event, Kind};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::manage::client_security::{
    check_security_changes, set_client_mfa, update_client_security, SecurityChanges,
};
use crate::manage::clients::{
    change_client, create_client, delete_client, rotate_secret, ClientChanges, ClientRecord,
    ClientRequest,
};
use crate::manage::logout::LogoutChanges;
use crate::manage::Actor;
use crate::protocol::{ClientAuthMethod, GrantType};
use crate::security::Secret;
use crate::store::{Client, Store};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints it as JSON, with its secret (shown only this once).
    Create {
        #[arg(long, default_value = "default")]
        server: String,
        #[arg(long)]
        name: String,
        /// authorization_code, implicit, password, client_credentials, refresh_token,
        /// device_code or token-exchange (the URNs of the last two accepted too; repeatable).
        #[arg(long = "grant-type", value_parser = parse_grant)]
        grant_types: Vec<GrantType>,
        /// Exact redirect URI (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Where RP-initiated logout may return to (repeatable).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// A scope the client may request (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Granted when the client requests none (repeatable; default: all its scopes).
        #[arg(long = "default-scope")]
        default_scopes: Vec<String>,
        /// A public client (SPA, native app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// Trusted: no consent page.
        #[arg(long)]
        first_party: bool,
        /// client_secret_basic (default), client_secret_post or private_key_jwt (with
        /// --jwks, --jwks-file or --jwks-uri). client_secret_jwt is refused: it needs the secret
        /// in clear, and only its hash is stored.
        #[arg(long, value_parser = parse_auth_method)]
        auth_method: Option<ClientAuthMethod>,
        #[command(flatten)]
        logout: LogoutArgs,
        #[command(flatten)]
        security: SecurityArgs,
    },
    /// List clients, of one server or of all, by server, name and id (`--after` a client id).
    List {
        #[arg(long)]
        server: Option<String>,
        #[command(flatten)]
        page: super::page::PageArgs,
    },
    /// Show one client.
    Show {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Change a client under the rules of `client create`. A list flag replaces the whole
    /// list (`--default-scope ''` empties one); a lifetime of `default` clears the override.
    Update {
        /// Ids made before ids stopped starting with `-` are accepted as they are.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[arg(long)]
        name: Option<String>,
        /// The grant types it may use from now on (repeatable; replaces the set).
        #[arg(long = "grant-type", value_parser = parse_grant)]
        grant_types: Option<Vec<GrantType>>,
        /// Exact redirect URIs (repeatable; replaces them).
        #[arg(long = "redirect-uri")]
        redirect_uris: Option<Vec<String>>,
        /// Where RP-initiated logout may return to (repeatable; replaces them).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Option<Vec<String>>,
        /// The scopes it may request (repeatable; replaces them).
        #[arg(long = "scope")]
        scopes: Option<Vec<String>>,
        /// Granted when it requests none (repeatable; replaces them).
        #[arg(long = "default-scope")]
        default_scopes: Option<Vec<String>>,
        /// Trusted: no consent page.
        #[arg(long, value_name = "true|false", value_parser = parse_bool)]
        first_party: Option<bool>,
        /// Access token lifetime (90, 15m, 1h, 30d, or `default` for the server's).
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        access_token_ttl: Option<TtlOverride>,
        /// ID token lifetime.
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        id_token_ttl: Option<TtlOverride>,
        /// Refresh token (and grant) lifetime.
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        refresh_token_ttl: Option<TtlOverride>,
        /// An audience it may exchange tokens for (RFC 8693; repeatable; replaces them;
        /// `''` allows none). Needs the token-exchange grant type.
        #[arg(long = "token-exchange-audience", value_name = "AUD")]
        token_exchange_audiences: Option<Vec<String>>,
        /// Only users assigned to the client (`client assign`), directly or through a group,
        /// get tokens.
        #[arg(long, value_name = "true|false", value_parser = parse_bool)]
        assignment_required: Option<bool>,
        #[command(flatten)]
        logout: LogoutArgs,
        /// Second factor at sign-in: `default` (the server's policy), `off`, `optional` or
        /// `required`; the stricter of the client's and the server's applies.
        #[arg(long, value_name = "default|off|optional|required", value_parser = parse_client_mfa)]
        mfa: Option<crate::mfa::ClientMfa>,
        /// Change how a confidential client authenticates: client_secret_basic,
        /// client_secret_post (a new secret is printed once) or private_key_jwt (its secret is
        /// dropped; needs keys).
        #[arg(long, value_parser = parse_auth_method)]
        auth_method: Option<ClientAuthMethod>,
        #[command(flatten)]
        security: SecurityArgs,
    },
    /// Assign the client to groups and users (names or ids; repeatable): with
    /// --assignment-required, only they get tokens. Prints the client with its assignments.
    Assign {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[command(flatten)]
        assignees: Assignees,
    },
    /// Withdraw assignments; prints the client with its assignments. Refresh tokens of users
    /// no longer assigned stop working.
    Unassign {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[command(flatten)]
        assignees: Assignees,
    },
    /// Give a confidential client a new secret; prints the client as JSON with the new
    /// `client_secret` (shown only this once). The old secret stops working at once (other
    /// replicas: within `cache.refresh_interval`); tokens already issued stay valid.
    RotateSecret {
        /// Ids made before ids stopped starting with `-` are accepted as they are.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Delete a client, with its grants, codes and refresh tokens.
    Delete {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

/// Single logout (README "Single logout"): where the client hears that a session ended.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// Back-Channel Logout: the URI logout tokens are POSTed to (https, or http on loopback;
    /// '' removes it).
    #[arg(long, value_name = "URL")]
    backchannel_logout_uri: Option<String>,
    /// Whether the client needs `sid` in logout tokens (default true; Portcullis always sends it).
    #[arg(long, value_name = "true|false", value_parser = parse_bool)]
    backchannel_logout_session_required: Option<bool>,
    /// Front-Channel Logout: the URI framed on the signed-out page ('' removes it).
    #[arg(long, value_name = "URL")]
    frontchannel_logout_uri: Option<String>,
    /// Whether `iss` and `sid` are added to the front-channel URI (default true).
    #[arg(long, value_name = "true|false", value_parser = parse_bool)]
    frontchannel_logout_session_required: Option<bool>,
}

impl LogoutArgs {
    fn changes(self) -> LogoutChanges {
        LogoutChanges {
            backchannel_logout_uri: self.backchannel_logout_uri,
            backchannel_session_required: self.backchannel_logout_session_required,
            frontchannel_logout_uri: self.frontchannel_logout_uri,
            frontchannel_session_required: self.frontchannel_logout_session_required,
        }
    }
}

/// High-assurance clients (README "private_key_jwt", "DPoP", "Pushed authorization requests").
#[derive(Debug, clap::Args)]
pub struct SecurityArgs {
    /// The client's public keys, a JWK Set as JSON ('' removes them).
    #[arg(long, value_name = "JSON", conflicts_with_all = ["jwks_file", "jwks_uri"])]
    jwks: Option<String>,
    /// The client's public keys, a JWK Set in a JSON file.
    #[arg(long, value_name = "FILE", conflicts_with = "jwks_uri")]
    jwks_file: Option<std::path::PathBuf>,
    /// Where the client publishes its JWK Set (https; '' removes it).
    #[arg(long, value_name = "URL")]
    jwks_uri: Option<String>,
    /// Refuse token requests without a DPoP proof (RFC 9449).
    #[arg(long, value_name = "true|false", value_parser = parse_bool)]
    require_dpop: Option<bool>,
    /// Refuse authorization requests that were not pushed to /par (RFC 9126).
    #[arg(long, value_name = "true|false", value_parser = parse_bool)]
    require_par: Option<bool>,
    /// Refuse authorization requests without a signed request object (RFC 9101).
    #[arg(long, value_name = "true|false", value_parser = parse_bool)]
    require_signed_request_object: Option<bool>,
}

impl SecurityArgs {
    fn changes(self) -> Result<SecurityChanges, CliError> {
        let jwks = match (self.jwks, self.jwks_file) {
            (Some(jwks), _) => Some(jwks),
            (None, Some(path)) => Some(
                std::fs::read_to_string(&path)
                    .map_err(|e| CliError(format!("--jwks-file {}: {e}", path.display())))?,
            ),
            (None, None) => None,
        };
        Ok(SecurityChanges {
            jwks,
            jwks_uri: self.jwks_uri,
            require_dpop: self.require_dpop,
            require_par: self.require_par,
            require_signed_request_object: self.require_signed_request_object,
        })
    }
}

/// Whom `client assign|unassign` names.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = true)]
pub struct Assignees {
    /// A group, by name or id (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// A user, by username or id (repeatable).
    #[arg(long = "user")]
    users: Vec<String>,
}

/// A list flag given only an empty value (`--scope ''`) means the empty list.
fn list(values: Option<Vec<String>>) -> Option<Vec<String>> {
    values.map(|v| v.into_iter().filter(|s| !s.trim().is_empty()).collect())
}

fn parse_grant(s: &str) -> Result<GrantType, String> {
    GrantType::from_cli(s)
}

fn parse_auth_method(s: &str) -> Result<ClientAuthMethod, String> {
    s.parse()
}

pub async fn run(config: &Config, command: ClientCommand) -> Result<(), CliError> {
    let store = open_store(config).await?;
    // Every path, failures included, closes the store.
    let result = execute(&store, command).await;
    store.close().await;
    result
}

async fn execute(store: &Store, command: ClientCommand) -> Result<(), CliError> {
    match command {
        ClientCommand::Create {
            server,
            name,
            grant_types,
            redirect_uris,
            post_logout_redirect_uris,
            scopes,
            default_scopes,
            public,
            first_party,
            auth_method,
            logout,
            security,
        } => {
            let security = security.changes()?;
            check_security_changes(&security).map_err(CliError::from)?;
            if auth_method == Some(ClientAuthMethod::PrivateKeyJwt)
                && security.jwks.is_none()
                && security.jwks_uri.is_none()
            {
                return Err(CliError(
                    "private_key_jwt needs the client's keys: --jwks, --jwks-file or --jwks-uri"
                        .into(),
                ));
            }
            let request = ClientRequest {
                server_id: server,
                name,
                grant_types,
                redirect_uris,
                post_logout_redirect_uris,
                scopes,
                default_scopes,
                public,
                first_party,
                auth_method,
            };
            let now = SystemClock.now();
            let (mut record, secret) =
                create_client(store, request, logout.changes(), &Actor::Cli, now)
                    .await
                    .map_err(CliError::from)?;
            let (client, _) = update_client_security(store, &record.client, None, security, now)
                .await
                .map_err(CliError::from)?;
            record.client = client;
            print_with_secret(record.to_json(), secret.as_ref());
            Ok(())
        }
        ClientCommand::List { server, page } => {
            let clients = store
                .list_clients(server.as_deref(), page.page())
                .await
                .map_err(CliError::from)?;
            print_json(&json!(clients
                .iter()
                .map(|c| c.to_json())
                .collect::<Vec<_>>()));
            Ok(())
        }
        ClientCommand::Show { client_id } => {
            let record = ClientRecord::load(store, &client_id)
                .await
                .map_err(CliError::from)?
                .ok_or_else(|| CliError(format!("no client `{client_id}`")))?;
            let mut out = record.to_json();
            out["assignments"] = assignments_json(store, &record.client).await?;
            print_json(&out);
            Ok(())
        }
        ClientCommand::Update {
            client_id,
            name,
            grant_types,
            redirect_uris,
            post_logout_redirect_uris,
            scopes,
            default_scopes,
            first_party,
            access_token_ttl,
            id_token_ttl,
            refresh_token_ttl,
            logout,
            token_exchange_audiences,
            assignment_required,
            mfa,
            auth_method,
            security,
        } => {
            let security = security.changes()?;
            check_security_changes(&security).map_err(CliError::from)?;
            let changes = ClientChanges {
                name,
                grant_types,
                redirect_uris: list(redirect_uris),
                post_logout_redirect_uris: list(post_logout_redirect_uris),
                scopes: list(scopes),
                default_scopes: list(default_scopes),
                first_party,
                access_token_ttl: access_token_ttl.map(|t| t.0),
                id_token_ttl: id_token_ttl.map(|t| t.0),
                refresh_token_ttl: refresh_token_ttl.map(|t| t.0),
                token_exchange_audiences: list(token_exchange_audiences),
            };
            let now = SystemClock.now();
            let mut record = change_client(
                store,
                &client_id,
                changes,
                assignment_required,
                logout.changes(),
                &Actor::Cli,
                now,
            )
            .await
            .map_err(CliError::from)?;
            if let Some(mfa) = mfa {
                set_client_mfa(store, &mut record.client, mfa, &Actor::Cli, now)
                    .await
                    .map_err(CliError::from)?;
            }
            let (client, secret) =
                update_client_security(store, &record.client, auth_method, security, now)
                    .await
                    .map_err(CliError::from)?;
            record.client = client;
            let mut out = record.to_json();
            out["assignments"] = assignments_json(store, &record.client).await?;
            print_with_secret(out, secret.as_ref());
            Ok(())
        }
        ClientCommand::Assign {
            client_id,
            assignees,
        } => change_assignments(store, &client_id, assignees, true).await,
        ClientCommand::Unassign {
            client_id,
            assignees,
        } => change_assignments(store, &client_id, assignees, false).await,
        ClientCommand::RotateSecret { client_id } => {
            let (record, secret) = rotate_secret(store, &client_id, &Actor::Cli, SystemClock.now())
                .await
                .map_err(CliError::from)?;
            print_with_secret(record.to_json(), Some(&secret));
            Ok(())
        }
        ClientCommand::Delete { client_id } => {
            if delete_client(store, &client_id, &Actor::Cli, SystemClock.now())
                .await
                .map_err(CliError::from)?
            {
                print_json(&json!({ "deleted": client_id }));
                Ok(())
            } else {
                Err(CliError(format!("no client `{client_id}`")))
            }
        }
    }
}

/// Add (`assign`) or withdraw assignments, all named groups and users found first, so an
/// unknown one changes nothing.
async fn change_assignments(
    store: &Store,
    client_id: &str,
    assignees: Assignees,
    assign: bool,
) -> Result<(), CliError> {
    let client = store
        .client(client_id)
        .await
        .map_err(CliError::from)?
        .ok_or_else(|| CliError(format!("no client `{client_id}`")))?;
    let mut groups = Vec::new();
    for key in &assignees.groups {
        groups.push(find_group(store, key).await?);
    }
    let mut users = Vec::new();
    for key in &assignees.users {
        users.push(find_user(store, key).await?);
    }
    let group_ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    let user_ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let now = SystemClock.now();
    if assign {
        store
            .assign_client(&client.id, &group_ids, &user_ids, now)
            .await
    } else {
        store
            .unassign_client(&client.id, &group_ids, &user_ids)
            .await
    }
    .map_err(CliError::from)?;
    let event = Event::new(Kind::ClientUpdated, now)
        .server(&client.server_id)
        .actor("cli")
        .subject(client.id.as_str())
        .detail(
            if assign { "assigned" } else { "unassigned" },
            serde_json::json!({
                "groups": groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
                "users": users.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(),
            }),
        );
    audit::write(store, event).await;
    let mut out = client.to_json();
    out["assignments"] = assignments_json(store, &client).await?;
    print_json(&out);
    Ok(())
}

/// The client's app assignments as JSON.
async fn assignments_json(store: &Store, client: &Client) -> Result<serde_json::Value, CliError> {
    let assignments = store
        .client_assignments(&client.id)
        .await
        .map_err(CliError::from)?;
    Ok(json!(assignments
        .iter()
        .map(|a| a.to_json())
        .collect::<Vec<_>>()))
}

/// The client's JSON (`out`), with its secret when it was just made: the only time it is shown.
fn print_with_secret(mut out: serde_json::Value, secret: Option<&Secret>) {
    if let (Some(map), Some(secret)) = (out.as_object_mut(), secret) {
        map.insert("client_secret".into(), json!(secret.expose()));
    }
    print_json(&out);
}

fn parse_client_mfa(s: &str) -> Result<crate::mfa::ClientMfa, String> {
    crate::mfa::ClientMfa::parse(s)
        .ok_or_else(|| format!("`{s}`: expected default, off, optional or required"))
}
