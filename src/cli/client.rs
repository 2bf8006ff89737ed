//! `portcullis client create|list|show|delete`

use clap::Subcommand;
use serde_json::json;

use super::{open_store, print_json, CliError};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::protocol::{ClientAuthMethod, GrantType};
use crate::registration::{register_client, ClientRequest};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints it as JSON, with its secret (shown only this once).
    Create {
        #[arg(long, default_value = "default")]
        server: String,
        #[arg(long)]
        name: String,
        /// authorization_code, implicit, password, client_credentials or refresh_token (repeatable).
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
        /// client_secret_basic (default) or client_secret_post.
        #[arg(long, value_parser = parse_auth_method)]
        auth_method: Option<ClientAuthMethod>,
    },
    /// List clients, of one server or of all.
    List {
        #[arg(long)]
        server: Option<String>,
    },
    /// Show one client.
    Show { client_id: String },
    /// Delete a client, with its grants, codes and refresh tokens.
    Delete { client_id: String },
}

fn parse_grant(s: &str) -> Result<GrantType, String> {
    s.parse()
}

fn parse_auth_method(s: &str) -> Result<ClientAuthMethod, String> {
    s.parse()
}

pub async fn run(config: &Config, command: ClientCommand) -> Result<(), CliError> {
    let store = open_store(config).await?;
    let result = match command {
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
        } => {
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
            let (client, secret) = register_client(&store, request, SystemClock.now())
                .await
                .map_err(CliError::from)?;
            let mut out = client.to_json();
            if let (Some(secret), Some(map)) = (secret, out.as_object_mut()) {
                map.insert("client_secret".into(), json!(secret.expose()));
            }
            print_json(&out);
            Ok(())
        }
        ClientCommand::List { server } => {
            let clients = store
                .clients(server.as_deref())
                .await
                .map_err(CliError::from)?;
            print_json(&json!(clients
                .iter()
                .map(|c| c.to_json())
                .collect::<Vec<_>>()));
            Ok(())
        }
        ClientCommand::Show { client_id } => match store.client(&client_id).await {
            Ok(Some(client)) => {
                print_json(&client.to_json());
                Ok(())
            }
            Ok(None) => Err(CliError(format!("no client `{client_id}`"))),
            Err(e) => Err(CliError::from(e)),
        },
        ClientCommand::Delete { client_id } => match store.delete_client(&client_id).await {
            Ok(true) => {
                print_json(&json!({ "deleted": client_id }));
                Ok(())
            }
            Ok(false) => Err(CliError(format!("no client `{client_id}`"))),
            Err(e) => Err(CliError::from(e)),
        },
    };
    store.close().await;
    result
}
