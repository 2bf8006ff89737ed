//! `portcullis rule create|list|show|update|delete`: the rules of an access policy. The first
//! rule (lowest priority) whose grant types and people match decides: deny, or allow with its
//! scopes and lifetimes. No rule matches: deny.

use clap::{ArgGroup, Args, Subcommand};
use serde_json::{json, Value};

use super::policy::find_policy;
use super::{open_store, parse_bool, parse_ttl, print_json, CliError, TtlOverride};
use crate::clock::{Clock, SystemClock, UnixTime};
use crate::config::Config;
use crate::manage::policies;
use crate::manage::Actor;
use crate::store::{AccessPolicy, AccessRule, People, Store};

/// Which rule: `--server S --policy P --name R`.
#[derive(Debug, Args)]
pub struct RuleName {
    #[arg(long)]
    server: String,
    #[arg(long)]
    policy: String,
    #[arg(long)]
    name: String,
}

/// The conditions and terms `rule create` and `rule update` share; on update, a flag replaces
/// what it names and the rest stays.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("people").args(["groups", "users"]).multiple(true).conflicts_with("everyone")))]
#[command(group(ArgGroup::new("scopes_or_any").args(["scopes", "any_scope"])))]
pub struct RuleTerms {
    /// Lower is evaluated first (default on create: after every existing rule).
    #[arg(long, allow_negative_numbers = true)]
    priority: Option<i64>,
    /// A grant type it matches (repeatable; default any). Refreshes are evaluated as the grant
    /// that started their family.
    #[arg(long = "grant-type")]
    grant_types: Option<Vec<String>>,
    /// Members of this group (repeatable).
    #[arg(long = "group")]
    groups: Option<Vec<String>>,
    /// This user (repeatable).
    #[arg(long = "user")]
    users: Option<Vec<String>>,
    /// Everyone, and clients acting on their own behalf (the default on create).
    #[arg(long)]
    everyone: bool,
    /// A scope it allows (repeatable): other requested scopes are not granted.
    #[arg(long = "scope")]
    scopes: Option<Vec<String>>,
    /// Allow any scope (the default on create).
    #[arg(long)]
    any_scope: bool,
    /// Access token lifetime (90, 15m, 1h, 30d, or `default` for the server's or client's).
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    access_token_ttl: Option<TtlOverride>,
    /// Refresh token (and grant) lifetime.
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    refresh_token_ttl: Option<TtlOverride>,
    /// A refresh token unused this long expires.
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    refresh_idle_ttl: Option<TtlOverride>,
}

#[derive(Debug, Subcommand)]
pub enum RuleCommand {
    /// Add a rule to a policy.
    Create {
        #[command(flatten)]
        rule: RuleName,
        #[command(flatten)]
        terms: RuleTerms,
        /// Deny what the rule matches.
        #[arg(long)]
        deny: bool,
    },
    /// A policy's rules, in the order they are evaluated (`--after` a rule name: the page goes
    /// on after that rule's priority and name).
    List {
        #[arg(long)]
        server: String,
        #[arg(long)]
        policy: String,
        #[command(flatten)]
        page: super::page::PageArgs,
    },
    Show {
        #[command(flatten)]
        rule: RuleName,
    },
    /// Change a rule; a flag replaces what it names (`--grant-type ''`: any grant type).
    Update {
        #[command(flatten)]
        rule: RuleName,
        #[arg(long, value_name = "NAME")]
        rename: Option<String>,
        #[command(flatten)]
        terms: RuleTerms,
        #[arg(long, value_name = "true|false", value_parser = parse_bool)]
        deny: Option<bool>,
    },
    Delete {
        #[command(flatten)]
        rule: RuleName,
    },
}

pub async fn run(config: &Config, command: RuleCommand) -> Result<(), CliError> {
    let store = open_store(config).await?;
    let result = execute(&store, command, SystemClock.now()).await;
    store.close().await;
    result
}

async fn execute(store: &Store, command: RuleCommand, now: UnixTime) -> Result<(), CliError> {
    let actor = &Actor::Cli;
    match command {
        RuleCommand::Create { rule, terms, deny } => {
            let policy = find_policy(store, &rule.server, &rule.policy).await?;
            let terms = terms.into_manage(Some(deny));
            let new = policies::create_rule(store, &policy, &rule.name, terms, actor, now)
                .await
                .map_err(CliError::from)?;
            print_json(&rule_json(store, &new).await?);
        }
        RuleCommand::List {
            server,
            policy,
            page,
        } => {
            let policy = find_policy(store, &server, &policy).await?;
            let after = match page.after.as_deref() {
                Some(name) => {
                    let rule = policies::find_rule(&policy, name).map_err(CliError::from)?;
                    Some((rule.priority, rule.name))
                }
                None => None,
            };
            let rules = policies::list_rules(
                store,
                &policy,
                after.as_ref().map(|(p, n)| (*p, n.as_str())),
                page.limit,
            )
            .await
            .map_err(CliError::from)?;
            let mut out = Vec::new();
            for rule in &rules {
                out.push(rule_json(store, rule).await?);
            }
            print_json(&json!(out));
        }
        RuleCommand::Show { rule } => {
            let (_, found) = find_rule(store, &rule).await?;
            print_json(&rule_json(store, &found).await?);
        }
        RuleCommand::Update {
            rule,
            rename,
            terms,
            deny,
        } => {
            let (policy, found) = find_rule(store, &rule).await?;
            let terms = terms.into_manage(deny);
            let updated =
                policies::update_rule(store, &policy, &found, rename.as_deref(), terms, actor, now)
                    .await
                    .map_err(CliError::from)?;
            print_json(&rule_json(store, &updated).await?);
        }
        RuleCommand::Delete { rule } => {
            let (policy, found) = find_rule(store, &rule).await?;
            if !policies::delete_rule(store, &policy, &found, actor, now)
                .await
                .map_err(CliError::from)?
            {
                return Err(no_rule(&rule));
            }
            print_json(
                &json!({ "deleted": found.name, "policy": policy.name, "server": policy.server_id }),
            );
        }
    }
    Ok(())
}

impl RuleTerms {
    fn into_manage(self, deny: Option<bool>) -> policies::RuleTerms {
        policies::RuleTerms {
            priority: self.priority,
            grant_types: self.grant_types,
            groups: self.groups,
            users: self.users,
            everyone: self.everyone,
            scopes: self.scopes,
            any_scope: self.any_scope,
            access_token_ttl: self.access_token_ttl.map(|t| t.0),
            refresh_token_ttl: self.refresh_token_ttl.map(|t| t.0),
            refresh_idle_ttl: self.refresh_idle_ttl.map(|t| t.0),
            deny,
        }
    }
}

async fn find_rule(store: &Store, name: &RuleName) -> Result<(AccessPolicy, AccessRule), CliError> {
    let policy = find_policy(store, &name.server, &name.policy).await?;
    let rule = policy
        .rules
        .iter()
        .find(|r| r.name == name.name.trim())
        .cloned()
        .ok_or_else(|| no_rule(name))?;
    Ok((policy, rule))
}

fn no_rule(name: &RuleName) -> CliError {
    CliError(format!(
        "no rule `{}` in access policy `{}` of server `{}`",
        name.name, name.policy, name.server
    ))
}

/// A rule as JSON: groups by name and users by username (ids that no longer resolve shown as
/// they are).
pub(super) async fn rule_json(store: &Store, rule: &AccessRule) -> Result<Value, CliError> {
    let people = match &rule.people {
        People::Everyone => json!("everyone"),
        People::Some { groups, users } => {
            let mut group_names = Vec::new();
            for id in groups {
                let group = store.group(id).await.map_err(CliError::from)?;
                group_names.push(group.map_or_else(|| id.clone(), |g| g.name));
            }
            let mut usernames = Vec::new();
            for id in users {
                let user = store.user(id).await.map_err(CliError::from)?;
                usernames.push(user.map_or_else(|| id.clone(), |u| u.username));
            }
            json!({ "groups": group_names, "users": usernames })
        }
    };
    Ok(json!({
        "name": rule.name,
        "priority": rule.priority,
        "grant_types": if rule.grant_types.is_empty() {
            json!("any")
        } else {
            json!(rule.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>())
        },
        "people": people,
        "scopes": rule.scopes.as_ref().map_or_else(|| json!("any"), |s| json!(s.iter().collect::<Vec<_>>())),
        "access_token_ttl": rule.access_token_ttl,
        "refresh_token_ttl": rule.refresh_token_ttl,
        "refresh_idle_ttl": rule.refresh_idle_ttl,
        "action": if rule.deny { "deny" } else { "allow" },
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }))
}
