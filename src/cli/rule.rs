//! `portcullis rule create|list|show|update|delete`: the rules of an access policy. The first
//! rule (lowest priority) whose grant types and people match decides: deny, or allow with its
//! scopes and lifetimes. No rule matches: deny.

use clap::{ArgGroup, Args, Subcommand};
use serde_json::{json, Value};

use super::group::find_group;
use super::policy::{check_name, check_priority, find_policy};
use super::user::find_user;
use super::{open_store, parse_bool, parse_ttl, print_json, CliError, TtlOverride};
use crate::audit::{self, Event, Kind};
use crate::clock::{Clock, SystemClock, UnixTime};
use crate::config::Config;
use crate::protocol::scope::BUILT_IN_SCOPES;
use crate::protocol::{GrantType, ScopeSet};
use crate::security::random_id;
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
    /// A policy's rules, in the order they are evaluated.
    List {
        #[arg(long)]
        server: String,
        #[arg(long)]
        policy: String,
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
    match command {
        RuleCommand::Create { rule, terms, deny } => {
            let policy = find_policy(store, &rule.server, &rule.policy).await?;
            let mut new = AccessRule {
                id: random_id(20),
                policy_id: policy.id.clone(),
                name: check_name("rule", &rule.name)?,
                priority: policy
                    .rules
                    .iter()
                    .map(|r| r.priority + 1)
                    .max()
                    .unwrap_or(1),
                grant_types: Vec::new(),
                people: People::Everyone,
                scopes: None,
                access_token_ttl: None,
                refresh_token_ttl: None,
                refresh_idle_ttl: None,
                deny,
                created_at: now,
                updated_at: now,
            };
            apply(store, &policy, &mut new, terms).await?;
            store
                .insert_access_rule(&new)
                .await
                .map_err(CliError::from)?;
            audit_rule(store, Kind::AccessRuleCreated, &policy, &new, now).await;
            print_json(&rule_json(store, &new).await?);
        }
        RuleCommand::List { server, policy } => {
            let policy = find_policy(store, &server, &policy).await?;
            let mut out = Vec::new();
            for rule in &policy.rules {
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
            let (policy, mut found) = find_rule(store, &rule).await?;
            if let Some(name) = rename {
                found.name = check_name("rule", &name)?;
            }
            if let Some(deny) = deny {
                found.deny = deny;
            }
            apply(store, &policy, &mut found, terms).await?;
            found.updated_at = now;
            if !store
                .update_access_rule(&found)
                .await
                .map_err(CliError::from)?
            {
                return Err(no_rule(&rule));
            }
            audit_rule(store, Kind::AccessRuleUpdated, &policy, &found, now).await;
            print_json(&rule_json(store, &found).await?);
        }
        RuleCommand::Delete { rule } => {
            let (policy, found) = find_rule(store, &rule).await?;
            if !store
                .delete_access_rule(&found.id)
                .await
                .map_err(CliError::from)?
            {
                return Err(no_rule(&rule));
            }
            audit_rule(store, Kind::AccessRuleDeleted, &policy, &found, now).await;
            print_json(
                &json!({ "deleted": found.name, "policy": policy.name, "server": policy.server_id }),
            );
        }
    }
    Ok(())
}

/// Check the flags given and apply them to `rule`; nothing is stored here.
async fn apply(
    store: &Store,
    policy: &AccessPolicy,
    rule: &mut AccessRule,
    terms: RuleTerms,
) -> Result<(), CliError> {
    if let Some(p) = terms.priority {
        rule.priority = check_priority(p)?;
    }
    if let Some(given) = terms.grant_types {
        let mut grants = given
            .iter()
            .filter(|g| !g.trim().is_empty())
            .map(|g| GrantType::from_cli(g.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(CliError)?;
        grants.sort();
        grants.dedup();
        rule.grant_types = grants;
    }
    if terms.everyone {
        rule.people = People::Everyone;
    } else if terms.groups.is_some() || terms.users.is_some() {
        let mut groups = Vec::new();
        for key in terms
            .groups
            .iter()
            .flatten()
            .filter(|k| !k.trim().is_empty())
        {
            let id = find_group(store, key).await?.id;
            if !groups.contains(&id) {
                groups.push(id);
            }
        }
        let mut users = Vec::new();
        for key in terms
            .users
            .iter()
            .flatten()
            .filter(|k| !k.trim().is_empty())
        {
            let id = find_user(store, key).await?.id;
            if !users.contains(&id) {
                users.push(id);
            }
        }
        if groups.is_empty() && users.is_empty() {
            return Err(CliError("give a --group or a --user, or --everyone".into()));
        }
        rule.people = People::Some { groups, users };
    }
    if terms.any_scope {
        rule.scopes = None;
    } else if let Some(scopes) = terms.scopes {
        let scopes = ScopeSet::from_tokens(&scopes).map_err(CliError::from)?;
        if scopes.is_empty() {
            return Err(CliError("give a --scope, or --any-scope".into()));
        }
        let known = store
            .scope_names(&policy.server_id)
            .await
            .map_err(CliError::from)?;
        if let Some(unknown) = scopes
            .iter()
            .find(|s| !BUILT_IN_SCOPES.contains(s) && !known.iter().any(|k| k == s))
        {
            return Err(CliError(format!(
                "no scope `{unknown}` on server `{}`",
                policy.server_id
            )));
        }
        rule.scopes = Some(scopes);
    }
    if let Some(t) = terms.access_token_ttl {
        rule.access_token_ttl = t.0;
    }
    if let Some(t) = terms.refresh_token_ttl {
        rule.refresh_token_ttl = t.0;
    }
    if let Some(t) = terms.refresh_idle_ttl {
        rule.refresh_idle_ttl = t.0;
    }
    Ok(())
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

async fn audit_rule(
    store: &Store,
    kind: Kind,
    policy: &AccessPolicy,
    rule: &AccessRule,
    now: UnixTime,
) {
    let event = Event::new(kind, now)
        .server(&policy.server_id)
        .actor("cli")
        .subject(rule.id.as_str())
        .detail("policy", policy.name.as_str())
        .detail("rule", rule.name.as_str());
    audit::write(store, event).await;
}
