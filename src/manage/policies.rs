//! Access policies of a server and their rules (evaluated by `crate::policy::access`): create,
//! change, delete, each audited with its actor. The first policy (lowest priority) whose clients
//! include the requesting client applies; its first rule (lowest priority) whose grant types and
//! people match decides. The CLI (`portcullis policy`, `portcullis rule`) and the management API
//! call these.

use super::clients::RegistrationError as ManageError;
use super::scopes::check_server;
use super::users::find_user;
use super::Actor;
use crate::audit::{self, Event, Kind};
use crate::clock::UnixTime;
use crate::protocol::scope::BUILT_IN_SCOPES;
use crate::protocol::{GrantType, ScopeSet};
use crate::security::random_id;
use crate::store::{AccessPolicy, AccessRule, People, PolicyClients, Store};

/// Policy and rule names: printable and short, they appear in error descriptions.
pub const MAX_NAME_CHARS: usize = 128;
pub const MAX_PRIORITY: i64 = 1_000_000;
/// Longer than any sensible token lifetime (as `--access-token-ttl` and the others allow).
pub const MAX_TTL: i64 = 10 * 365 * 86400;

fn invalid(message: impl Into<String>) -> ManageError {
    ManageError::Invalid(message.into())
}

/// A policy or rule name, trimmed: 1 to 128 characters without control characters or
/// backquotes.
pub fn check_name(what: &str, name: &str) -> Result<String, ManageError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(|c| c.is_control() || c == '`')
    {
        return Err(invalid(format!(
            "{what} name `{name}` must be 1 to {MAX_NAME_CHARS} characters without control characters or backquotes"
        )));
    }
    Ok(name.to_string())
}

pub fn check_priority(priority: i64) -> Result<i64, ManageError> {
    if !(0..=MAX_PRIORITY).contains(&priority) {
        return Err(invalid(format!(
            "--priority {priority} must be 0 to {MAX_PRIORITY}"
        )));
    }
    Ok(priority)
}

fn check_ttl(what: &str, ttl: Option<i64>) -> Result<Option<i64>, ManageError> {
    match ttl {
        Some(seconds) if !(1..=MAX_TTL).contains(&seconds) => Err(invalid(format!(
            "{what} must be 1 to {MAX_TTL} seconds (or the default)"
        ))),
        ttl => Ok(ttl),
    }
}

/// A description, trimmed: text, with line breaks and tabs but no other control characters.
pub fn check_description(description: &str) -> Result<String, ManageError> {
    if description
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(invalid("a description must not contain control characters"));
    }
    Ok(description.trim().to_string())
}

fn no_policy(server: &str, name: &str) -> ManageError {
    ManageError::NotFound(format!("no access policy `{name}` on server `{server}`"))
}

/// A server's policy by name (as the CLI names them).
pub async fn find_policy(
    store: &Store,
    server: &str,
    name: &str,
) -> Result<AccessPolicy, ManageError> {
    check_server(store, server).await?;
    store
        .access_policies(server)
        .await?
        .into_iter()
        .find(|p| p.name == name.trim())
        .ok_or_else(|| no_policy(server, name))
}

/// A page of a server's policies with their rules, in the order they are evaluated: by
/// (priority, name), after the (priority, name) of the previous page's last policy.
pub async fn list_policies(
    store: &Store,
    server: &str,
    after: Option<(i64, &str)>,
    limit: Option<u32>,
) -> Result<Vec<AccessPolicy>, ManageError> {
    check_server(store, server).await?;
    Ok(store.list_access_policies(server, after, limit).await?)
}

/// Which clients a policy applies to, as given: every client of the server, or these.
#[derive(Debug, Clone, Default)]
pub struct ClientsChoice {
    pub all: bool,
    pub ids: Vec<String>,
}

/// What `create_policy` and `update_policy` take; on update, `None` keeps a value.
#[derive(Debug, Clone, Default)]
pub struct PolicyChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    /// On create, `None`: after every existing policy.
    pub priority: Option<i64>,
    pub clients: Option<ClientsChoice>,
}

/// `all`, or clients that exist on this server.
async fn policy_clients(
    store: &Store,
    server: &str,
    choice: ClientsChoice,
) -> Result<PolicyClients, ManageError> {
    let ids: Vec<&str> = choice
        .ids
        .iter()
        .map(|i| i.trim())
        .filter(|i| !i.is_empty())
        .collect();
    if choice.all {
        if !ids.is_empty() {
            return Err(invalid("give --client or --all-clients, not both"));
        }
        return Ok(PolicyClients::All);
    }
    let mut kept: Vec<String> = Vec::new();
    for id in ids {
        // An id with a control character names no client (and never reaches a query).
        let found = if id.chars().any(char::is_control) {
            None
        } else {
            store.client(id).await?
        };
        match found {
            Some(c) if c.server_id == server => {
                if !kept.iter().any(|k| k == id) {
                    kept.push(id.to_string());
                }
            }
            _ => return Err(invalid(format!("no client `{id}` on server `{server}`"))),
        }
    }
    if kept.is_empty() {
        return Err(invalid("give at least one --client, or --all-clients"));
    }
    Ok(PolicyClients::Only(kept))
}

/// Add a policy (without rules, it denies every request of its clients).
pub async fn create_policy(
    store: &Store,
    server: &str,
    changes: PolicyChanges,
    actor: &Actor,
    now: UnixTime,
) -> Result<AccessPolicy, ManageError> {
    check_server(store, server).await?;
    let name = check_name("policy", changes.name.as_deref().unwrap_or(""))?;
    let clients = policy_clients(store, server, changes.clients.unwrap_or_default()).await?;
    let priority = match changes.priority {
        Some(p) => check_priority(p)?,
        None => store
            .access_policies(server)
            .await?
            .iter()
            .map(|p| p.priority + 1)
            .max()
            .unwrap_or(1)
            .min(MAX_PRIORITY),
    };
    let policy = AccessPolicy {
        id: random_id(20),
        server_id: server.to_string(),
        name,
        description: check_description(&changes.description.unwrap_or_default())?,
        priority,
        clients,
        rules: Vec::new(),
        created_at: now,
        updated_at: now,
    };
    store.insert_access_policy(&policy).await?;
    audit_policy(store, Kind::AccessPolicyCreated, &policy, actor, now).await;
    Ok(policy)
}

/// Change a policy (`None` keeps a value; clients given replace its clients).
pub async fn update_policy(
    store: &Store,
    policy: &AccessPolicy,
    changes: PolicyChanges,
    actor: &Actor,
    now: UnixTime,
) -> Result<AccessPolicy, ManageError> {
    let mut updated = policy.clone();
    if let Some(name) = changes.name {
        updated.name = check_name("policy", &name)?;
    }
    if let Some(p) = changes.priority {
        updated.priority = check_priority(p)?;
    }
    if let Some(choice) = changes.clients {
        updated.clients = policy_clients(store, &policy.server_id, choice).await?;
    }
    if let Some(d) = changes.description {
        updated.description = check_description(&d)?;
    }
    updated.updated_at = now;
    if !store.update_access_policy(&updated).await? {
        return Err(no_policy(&policy.server_id, &policy.name));
    }
    audit_policy(store, Kind::AccessPolicyUpdated, &updated, actor, now).await;
    Ok(updated)
}

/// Delete a policy with its rules; false when it was already gone.
pub async fn delete_policy(
    store: &Store,
    policy: &AccessPolicy,
    actor: &Actor,
    now: UnixTime,
) -> Result<bool, ManageError> {
    let deleted = store.delete_access_policy(&policy.id).await?;
    if deleted {
        audit_policy(store, Kind::AccessPolicyDeleted, policy, actor, now).await;
    }
    Ok(deleted)
}

/// The conditions and terms of a rule; on update, what is given replaces what it names and the
/// rest stays.
#[derive(Debug, Clone, Default)]
pub struct RuleTerms {
    /// On create, `None`: after every existing rule.
    pub priority: Option<i64>,
    /// Empty: any grant type.
    pub grant_types: Option<Vec<String>>,
    /// Groups (by name or id) and users (by username or id) it is for.
    pub groups: Option<Vec<String>>,
    pub users: Option<Vec<String>>,
    /// Everyone, and clients acting on their own behalf (the default on create).
    pub everyone: bool,
    pub scopes: Option<Vec<String>>,
    /// Any scope (the default on create).
    pub any_scope: bool,
    /// `Some(None)`: the server's or client's lifetime.
    pub access_token_ttl: Option<Option<i64>>,
    pub refresh_token_ttl: Option<Option<i64>>,
    pub refresh_idle_ttl: Option<Option<i64>>,
    pub deny: Option<bool>,
}

fn no_rule(policy: &AccessPolicy, name: &str) -> ManageError {
    ManageError::NotFound(format!(
        "no rule `{name}` in access policy `{}` of server `{}`",
        policy.name, policy.server_id
    ))
}

/// A policy's rule by name (as the CLI names them).
pub fn find_rule(policy: &AccessPolicy, name: &str) -> Result<AccessRule, ManageError> {
    policy
        .rules
        .iter()
        .find(|r| r.name == name.trim())
        .cloned()
        .ok_or_else(|| no_rule(policy, name))
}

/// A page of a policy's rules in the order they are evaluated: by (priority, name), after the
/// (priority, name) of the previous page's last rule.
pub async fn list_rules(
    store: &Store,
    policy: &AccessPolicy,
    after: Option<(i64, &str)>,
    limit: Option<u32>,
) -> Result<Vec<AccessRule>, ManageError> {
    Ok(store.list_access_rules(&policy.id, after, limit).await?)
}

/// Add a rule to a policy.
pub async fn create_rule(
    store: &Store,
    policy: &AccessPolicy,
    name: &str,
    terms: RuleTerms,
    actor: &Actor,
    now: UnixTime,
) -> Result<AccessRule, ManageError> {
    let mut rule = AccessRule {
        id: random_id(20),
        policy_id: policy.id.clone(),
        name: check_name("rule", name)?,
        priority: policy
            .rules
            .iter()
            .map(|r| r.priority + 1)
            .max()
            .unwrap_or(1)
            .min(MAX_PRIORITY),
        grant_types: Vec::new(),
        people: People::Everyone,
        scopes: None,
        access_token_ttl: None,
        refresh_token_ttl: None,
        refresh_idle_ttl: None,
        deny: false,
        created_at: now,
        updated_at: now,
    };
    apply(store, policy, &mut rule, terms).await?;
    store.insert_access_rule(&rule).await?;
    audit_rule(store, Kind::AccessRuleCreated, policy, &rule, actor, now).await;
    Ok(rule)
}

/// Change a rule: rename it, and apply `terms`.
pub async fn update_rule(
    store: &Store,
    policy: &AccessPolicy,
    rule: &AccessRule,
    rename: Option<&str>,
    terms: RuleTerms,
    actor: &Actor,
    now: UnixTime,
) -> Result<AccessRule, ManageError> {
    let mut updated = rule.clone();
    if let Some(name) = rename {
        updated.name = check_name("rule", name)?;
    }
    apply(store, policy, &mut updated, terms).await?;
    updated.updated_at = now;
    if !store.update_access_rule(&updated).await? {
        return Err(no_rule(policy, &rule.name));
    }
    audit_rule(store, Kind::AccessRuleUpdated, policy, &updated, actor, now).await;
    Ok(updated)
}

/// Delete a rule; false when it was already gone.
pub async fn delete_rule(
    store: &Store,
    policy: &AccessPolicy,
    rule: &AccessRule,
    actor: &Actor,
    now: UnixTime,
) -> Result<bool, ManageError> {
    let deleted = store.delete_access_rule(&rule.id).await?;
    if deleted {
        audit_rule(store, Kind::AccessRuleDeleted, policy, rule, actor, now).await;
    }
    Ok(deleted)
}

/// Check `terms` and apply them to `rule`; nothing is stored here.
async fn apply(
    store: &Store,
    policy: &AccessPolicy,
    rule: &mut AccessRule,
    terms: RuleTerms,
) -> Result<(), ManageError> {
    if let Some(p) = terms.priority {
        rule.priority = check_priority(p)?;
    }
    if let Some(given) = terms.grant_types {
        let mut grants = given
            .iter()
            .filter(|g| !g.trim().is_empty())
            .map(|g| GrantType::from_cli(g.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        grants.sort();
        grants.dedup();
        rule.grant_types = grants;
    }
    let named = |list: &Option<Vec<String>>| {
        list.iter()
            .flatten()
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect::<Vec<_>>()
    };
    let (group_keys, user_keys) = (named(&terms.groups), named(&terms.users));
    if terms.everyone {
        if !group_keys.is_empty() || !user_keys.is_empty() {
            return Err(invalid("give --everyone or a --group or --user, not both"));
        }
        rule.people = People::Everyone;
    } else if terms.groups.is_some() || terms.users.is_some() {
        let mut groups = Vec::new();
        for key in &group_keys {
            let id = find_group(store, key).await?;
            if !groups.contains(&id) {
                groups.push(id);
            }
        }
        let mut users = Vec::new();
        for key in &user_keys {
            // A person named in a rule that does not exist is a mistake in the rule.
            if key.chars().any(char::is_control) {
                return Err(invalid(format!("no user `{key}`")));
            }
            let id = find_user(store, key)
                .await
                .map_err(not_found_is_invalid)?
                .id;
            if !users.contains(&id) {
                users.push(id);
            }
        }
        if groups.is_empty() && users.is_empty() {
            return Err(invalid("give a --group or a --user, or --everyone"));
        }
        rule.people = People::Some { groups, users };
    }
    if terms.any_scope {
        rule.scopes = None;
    } else if let Some(scopes) = terms.scopes {
        let scopes = ScopeSet::from_tokens(&scopes).map_err(|e| invalid(e.to_string()))?;
        if scopes.is_empty() {
            return Err(invalid("give a --scope, or --any-scope"));
        }
        let known = store.scope_names(&policy.server_id).await?;
        if let Some(unknown) = scopes
            .iter()
            .find(|s| !BUILT_IN_SCOPES.contains(s) && !known.iter().any(|k| k == s))
        {
            return Err(invalid(format!(
                "no scope `{unknown}` on server `{}`",
                policy.server_id
            )));
        }
        rule.scopes = Some(scopes);
    }
    if let Some(t) = terms.access_token_ttl {
        rule.access_token_ttl = check_ttl("access_token_ttl", t)?;
    }
    if let Some(t) = terms.refresh_token_ttl {
        rule.refresh_token_ttl = check_ttl("refresh_token_ttl", t)?;
    }
    if let Some(t) = terms.refresh_idle_ttl {
        rule.refresh_idle_ttl = check_ttl("refresh_idle_ttl", t)?;
    }
    if let Some(deny) = terms.deny {
        rule.deny = deny;
    }
    Ok(())
}

fn not_found_is_invalid(e: ManageError) -> ManageError {
    match e {
        ManageError::NotFound(message) => ManageError::Invalid(message),
        e => e,
    }
}

/// A group named by the operator: a name or an id; its id.
async fn find_group(store: &Store, key: &str) -> Result<String, ManageError> {
    if key.chars().any(char::is_control) {
        return Err(invalid(format!("no group `{key}`")));
    }
    if let Some(group) = store.group_by_name(key).await? {
        return Ok(group.id);
    }
    match store.group(key).await? {
        Some(group) => Ok(group.id),
        None => Err(invalid(format!("no group `{key}`"))),
    }
}

async fn audit_policy(
    store: &Store,
    kind: Kind,
    policy: &AccessPolicy,
    actor: &Actor,
    now: UnixTime,
) {
    let event = Event::new(kind, now)
        .server(&policy.server_id)
        .actor(actor.label())
        .subject(policy.id.as_str())
        .detail("policy", policy.name.as_str());
    audit::write(store, event).await;
}

async fn audit_rule(
    store: &Store,
    kind: Kind,
    policy: &AccessPolicy,
    rule: &AccessRule,
    actor: &Actor,
    now: UnixTime,
) {
    let event = Event::new(kind, now)
        .server(&policy.server_id)
        .actor(actor.label())
        .subject(rule.id.as_str())
        .detail("policy", policy.name.as_str())
        .detail("rule", rule.name.as_str());
    audit::write(store, event).await;
}
