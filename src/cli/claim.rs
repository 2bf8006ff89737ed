//! `portcullis claim create|list|delete`: a server's custom claims, each a user attribute or a
//! static value, released into the tokens named by `--token-type` when one of its scopes is
//! granted.

use clap::{ArgGroup, Subcommand};
use serde_json::{json, Value};

use super::scope::check_server;
use super::{open_store, print_json, CliError};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::protocol::scope::BUILT_IN_SCOPES;
use crate::protocol::ScopeSet;
use crate::store::{
    ClaimSource, ClaimTarget, CustomClaim, GroupFilter, GroupPattern, GroupsClaim, Store,
};
use crate::tokens::claims::is_reserved;

/// Claim names are JSON member names in every token; keep them printable and short.
const MAX_NAME_CHARS: usize = 256;

/// A groups claim lists at most this many groups by default (`--max-groups`).
const DEFAULT_MAX_GROUPS: usize = 100;
/// Tokens travel in headers; no claim may list more groups than this.
const MAX_GROUPS_CAP: usize = 1000;

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
    /// List a server's custom claims.
    List {
        #[arg(long)]
        server: String,
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
            check_server(store, &server).await?;
            check_name(&name)?;
            if !groups
                && (filter_prefix.is_some() || filter_regex.is_some() || !filter_equals.is_empty())
            {
                return Err(CliError(
                    "--filter-prefix, --filter-regex and --filter-equals need --groups".into(),
                ));
            }
            let source = match (attribute, value, groups) {
                (Some(attribute), None, false) => source_attribute(attribute)?,
                (None, Some(value), false) => source_value(&value)?,
                (None, None, true) => {
                    source_groups(filter_prefix, filter_regex, filter_equals, max_groups)?
                }
                _ => {
                    return Err(CliError(
                        "give one of --attribute, --value or --groups".into(),
                    ))
                }
            };
            let scopes = ScopeSet::from_tokens(&scopes).map_err(CliError::from)?;
            check_scopes(store, &server, &scopes).await?;
            let mut token_types = if token_types.is_empty() {
                ClaimTarget::ALL.to_vec()
            } else {
                token_types
            };
            token_types.sort();
            token_types.dedup();
            let claim = CustomClaim {
                server_id: server,
                name,
                source,
                scopes,
                token_types,
                created_at: SystemClock.now(),
            };
            let stored = store.insert_claim(&claim).await.map_err(CliError::from)?;
            print_json(&stored.to_json());
        }
        ClaimCommand::List { server } => {
            check_server(store, &server).await?;
            let claims = store.claims(&server).await.map_err(CliError::from)?;
            print_json(&json!(claims
                .iter()
                .map(CustomClaim::to_json)
                .collect::<Vec<_>>()));
        }
        ClaimCommand::Delete { server, name } => {
            check_server(store, &server).await?;
            if !store
                .delete_claim(&server, &name)
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

fn check_name(name: &str) -> Result<(), CliError> {
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(CliError(format!(
            "claim name `{name}` must be 1 to {MAX_NAME_CHARS} characters without spaces or control characters"
        )));
    }
    if is_reserved(name) {
        return Err(CliError(format!(
            "`{name}` is a reserved claim name (a protocol or standard OpenID Connect claim); choose another"
        )));
    }
    Ok(())
}

fn source_attribute(attribute: String) -> Result<ClaimSource, CliError> {
    if attribute.trim().is_empty() {
        return Err(CliError("--attribute must not be empty".into()));
    }
    Ok(ClaimSource::Attribute(attribute.trim().to_string()))
}

fn source_groups(
    prefix: Option<String>,
    regex: Option<String>,
    equals: Vec<String>,
    max: usize,
) -> Result<ClaimSource, CliError> {
    if max == 0 || max > MAX_GROUPS_CAP {
        return Err(CliError(format!(
            "--max-groups must be 1 to {MAX_GROUPS_CAP}"
        )));
    }
    let filter = match (prefix, regex, equals.is_empty()) {
        (Some(p), None, true) if !p.is_empty() => GroupFilter::Prefix(p),
        (Some(_), None, true) => return Err(CliError("--filter-prefix must not be empty".into())),
        (None, Some(r), true) => GroupFilter::Regex(GroupPattern::new(&r).map_err(CliError)?),
        (None, None, false) => GroupFilter::Equals(equals),
        (None, None, true) => GroupFilter::All,
        _ => return Err(CliError("give at most one --filter-* kind".into())),
    };
    Ok(ClaimSource::Groups(GroupsClaim { filter, max }))
}

fn source_value(raw: &str) -> Result<ClaimSource, CliError> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Null) => Err(CliError("--value must not be null".into())),
        Ok(value) => Ok(ClaimSource::Static(value)),
        Err(e) => Err(CliError(format!(
            "--value must be JSON ({e}); quote a string: --value '\"{raw}\"'"
        ))),
    }
}

/// Every releasing scope is a built-in OIDC scope or one the server knows, so a typo cannot
/// define a claim that is never released.
async fn check_scopes(store: &Store, server: &str, scopes: &ScopeSet) -> Result<(), CliError> {
    let known = store.scope_names(server).await.map_err(CliError::from)?;
    for scope in scopes.iter() {
        let built_in = BUILT_IN_SCOPES.contains(&scope);
        if !built_in && !known.iter().any(|k| k == scope) {
            return Err(CliError(format!(
                "no scope `{scope}` on server `{server}`; create it first with `scope create`"
            )));
        }
    }
    Ok(())
}
