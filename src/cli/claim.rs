//! `portcullis claim create|list|delete`: a server's custom claims, each a user attribute or a
//! static value, released into the tokens named by `--token-type` when one of its scopes is
//! granted.

use clap::{ArgGroup, Subcommand};
use serde_json::{json, Value};

use super::{open_store, print_json, CliError};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::manage::claims::{self, ClaimDefinition, DEFAULT_MAX_GROUPS};
use crate::manage::Actor;
use crate::store::{ClaimTarget, CustomClaim, Store};

#[derive(Debug, Subcommand)]
pub enum ClaimCommand {
    /// Add a custom claim.
    #[command(group(ArgGroup::new("source").required(true).args(["attribute", "value", "groups"])))]
    #[command(group(ArgGroup::new("filter").args(["filter_prefix", "filter_regex", "filter_equals"])))]
    Create {
        #[arg(long)]
        server: String,
        /// The claim's name in tokens; not a protocol or standard OIDC claim.
        #[arg(long)]
        name: String,
        /// Take the value from this key of the user's claims (or `username`); omitted when the
        /// user has none.
        #[arg(long)]
        attribute: Option<String>,
        /// A static JSON value, the same for everyone: '"gold"', '42', '["a","b"]'.
        #[arg(long, value_name = "JSON")]
        value: Option<String>,
        /// The names of the user's groups (all of them, or those a --filter-* keeps).
        #[arg(long)]
        groups: bool,
        /// Only groups whose name starts with this.
        #[arg(long, requires = "groups")]
        filter_prefix: Option<String>,
        /// Only groups whose whole name matches this regular expression.
        #[arg(long, requires = "groups", value_name = "REGEX")]
        filter_regex: Option<String>,
        /// Only these groups (repeatable).
        #[arg(long = "filter-equals", requires = "groups", value_name = "GROUP")]
        filter_equals: Vec<String>,
        /// More matching groups than this and the claim is left out of the token (and the
        /// reason logged) rather than listing only some.
        #[arg(long, requires = "groups", default_value_t = DEFAULT_MAX_GROUPS, value_name = "N")]
        max_groups: usize,
        /// A scope that releases the claim (repeatable; any one of them suffices).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// access_token, id_token or userinfo (repeatable; default: all three).
        #[arg(long = "token-type", value_parser = parse_target)]
        token_types: Vec<ClaimTarget>,
    },
    /// List a server's custom claims, by name (`--after` a claim name).
    List {
        #[arg(long)]
        server: String,
        #[command(flatten)]
        page: super::page::PageArgs,
    },
    /// Delete a custom claim; tokens issued from now on no longer carry it.
    Delete {
        #[arg(long)]
        server: String,
        #[arg(long)]
        name: String,
    },
}

fn parse_target(s: &str) -> Result<ClaimTarget, String> {
    s.parse()
}

pub async fn run(config: &Config, command: ClaimCommand) -> Result<(), CliError> {
    let store = open_store(config).await?;
    let result = execute(&store, command).await;
    store.close().await;
    result
}

async fn execute(store: &Store, command: ClaimCommand) -> Result<(), CliError> {
    let actor = &Actor::Cli;
    let now = SystemClock.now();
    match command {
        ClaimCommand::Create {
            server,
            name,
            attribute,
            value,
            groups,
            filter_prefix,
            filter_regex,
            filter_equals,
            max_groups,
            scopes,
            token_types,
        } => {
            let value = value.as_deref().map(parse_value).transpose()?;
            let definition = ClaimDefinition {
                attribute,
                value,
                groups,
                filter_prefix,
                filter_regex,
                filter_equals,
                max_groups: Some(max_groups),
                scopes,
                token_types,
            };
            let stored = claims::create_claim(store, &server, &name, definition, actor, now)
                .await
                .map_err(CliError::from)?;
            print_json(&stored.to_json());
        }
        ClaimCommand::List { server, page } => {
            let claims = claims::list_claims(store, &server, page.page())
                .await
                .map_err(CliError::from)?;
            print_json(&json!(claims
                .iter()
                .map(CustomClaim::to_json)
                .collect::<Vec<_>>()));
        }
        ClaimCommand::Delete { server, name } => {
            if !claims::delete_claim(store, &server, &name, actor, now)
                .await
                .map_err(CliError::from)?
            {
                return Err(CliError(format!("no claim `{name}` on server `{server}`")));
            }
            print_json(&json!({ "deleted": name, "server": server }));
        }
    }
    Ok(())
}

/// `--value` is JSON; a bare word is most likely a string missing its quotes.
fn parse_value(raw: &str) -> Result<Value, CliError> {
    serde_json::from_str::<Value>(raw).map_err(|e| {
        CliError(format!(
            "--value must be JSON ({e}); quote a string: --value '\"{raw}\"'"
        ))
    })
}
