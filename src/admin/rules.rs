//! `/admin/v1/servers/{server_id}/policies/{policy_id}/rules`: the rules of an access policy,
//! under the rules of `portcullis rule` (`manage::policies`). Rules are addressed by id; groups
//! and users are shown by id and may be given by id or by name.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::caller::Caller;
use super::conventions::{
    etag_of, listing, no_content, patch_of, resource, IfMatch, JsonBody, Listing, Page, PageQuery,
    QueryOf,
};
use super::nested::{parse_priority_key, priority_key, segment};
use super::policies::{self as policy_routes, find as find_policy};
use super::{PathIds, PathIds3};
use crate::http::problem::Problem;
use crate::manage::policies::{self, RuleTerms};
use crate::protocol::admin_scopes::POLICIES_MANAGE;
use crate::state::AppState;
use crate::store::{AccessPolicy, AccessRule, People};

/// What a rule does with the requests it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
}

/// A rule of an access policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuleView {
    pub id: String,
    pub policy_id: String,
    /// Unique in the policy; the CLI names the rule by it.
    pub name: String,
    /// Lower is evaluated first (0 to 1000000).
    pub priority: i64,
    /// The grant types it matches; empty: any.
    pub grant_types: Vec<String>,
    /// Everyone, and clients acting on their own behalf (`groups` and `users` are then empty).
    pub everyone: bool,
    /// Members of these groups (ids).
    pub groups: Vec<String>,
    /// These users (ids).
    pub users: Vec<String>,
    /// The scopes it allows; null: any.
    pub scopes: Option<Vec<String>>,
    /// Seconds; null: the server's or client's.
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub refresh_idle_ttl: Option<i64>,
    pub action: Action,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&AccessRule> for RuleView {
    fn from(rule: &AccessRule) -> Self {
        let (everyone, groups, users) = match &rule.people {
            People::Everyone => (true, Vec::new(), Vec::new()),
            People::Some { groups, users } => (false, groups.clone(), users.clone()),
        };
        Self {
            id: rule.id.clone(),
            policy_id: rule.policy_id.clone(),
            name: rule.name.clone(),
            priority: rule.priority,
            grant_types: rule
                .grant_types
                .iter()
                .map(|g| g.as_str().to_string())
                .collect(),
            everyone,
            groups,
            users,
            scopes: rule
                .scopes
                .as_ref()
                .map(|s| s.iter().map(str::to_string).collect()),
            access_token_ttl: rule.access_token_ttl,
            refresh_token_ttl: rule.refresh_token_ttl,
            refresh_idle_ttl: rule.refresh_idle_ttl,
            action: if rule.deny {
                Action::Deny
            } else {
                Action::Allow
            },
            created_at: rule.created_at,
            updated_at: rule.updated_at,
        }
    }
}

/// A new rule. Without `groups` or `users` it is for everyone; without `scopes` it allows any
/// scope; without `action` it allows.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRuleBody {
    /// 1 to 128 characters without control characters or backquotes; unique in the policy.
    pub name: String,
    /// Default: after every existing rule.
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub everyone: Option<bool>,
    /// Groups by id or name.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Users by id or username.
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub access_token_ttl: Option<i64>,
    #[serde(default)]
    pub refresh_token_ttl: Option<i64>,
    #[serde(default)]
    pub refresh_idle_ttl: Option<i64>,
    #[serde(default)]
    pub action: Option<Action>,
}

/// What a PATCH may change (JSON Merge Patch). To go from `everyone` to some people, set
/// `everyone` to false and give `groups` or `users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    pub name: Option<String>,
    pub priority: Option<i64>,
    #[serde(default)]
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub everyone: bool,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub access_token_ttl: Option<i64>,
    #[serde(default)]
    pub refresh_token_ttl: Option<i64>,
    #[serde(default)]
    pub refresh_idle_ttl: Option<i64>,
    pub action: Option<Action>,
}

const READ_ONLY: &[&str] = &["id", "policy_id", "created_at", "updated_at"];

fn location(policy: &AccessPolicy, rule: &AccessRule) -> String {
    format!(
        "{}/rules/{}",
        policy_routes::path(&policy.server_id, &policy.id),
        segment(&rule.id)
    )
}

async fn find(state: &AppState, ids: [String; 3]) -> Result<(AccessPolicy, AccessRule), Problem> {
    let [server, policy_id, rule_id] = ids;
    let policy = find_policy(state, &server, &policy_id).await?;
    let rule = policy
        .rules
        .iter()
        .find(|r| r.id == rule_id)
        .cloned()
        .ok_or_else(|| {
            Problem::not_found(format!(
                "no rule `{rule_id}` in access policy `{}` of server `{server}`",
                policy.name
            ))
        })?;
    Ok((policy, rule))
}

/// List a policy's rules in the order they are evaluated (priority, then name).
#[utoipa::path(get, path = "/admin/v1/servers/{server_id}/policies/{policy_id}/rules",
    tag = "rules", params(("server_id" = String, Path), ("policy_id" = String, Path), PageQuery),
    security(("admin_token" = ["portcullis.policies.manage"])),
    responses((status = 200, description = "A page of rules", body = Listing<RuleView>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    PathIds([server, policy_id]): PathIds,
    QueryOf(query): QueryOf<PageQuery>,
) -> Result<Response, Problem> {
    caller.require(POLICIES_MANAGE)?;
    let page = Page::from_query(&query)?;
    let after = page.after.as_deref().map(parse_priority_key).transpose()?;
    let policy = find_policy(&state, &server, &policy_id).await?;
    let rows = policies::list_rules(
        &state.store,
        &policy,
        after.as_ref().map(|(p, n)| (*p, n.as_str())),
        page.store_page().limit,
    )
    .await?;
    let (rows, next) = page.finish(rows, |r| priority_key(r.priority, &r.name));
    let items = rows.iter().map(RuleView::from).collect();
    let path = format!(
        "{}/rules",
        policy_routes::path(&policy.server_id, &policy.id)
    );
    Ok(listing(&path, &page, &[], items, next))
}

/// Add a rule to a policy.
#[utoipa::path(post, path = "/admin/v1/servers/{server_id}/policies/{policy_id}/rules",
    tag = "rules", params(("server_id" = String, Path), ("policy_id" = String, Path)),
    request_body = NewRuleBody,
    security(("admin_token" = ["portcullis.policies.manage"])),
    responses((status = 201, description = "Created", body = RuleView,
        headers(("Location" = String), ("ETag" = String)))))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    PathIds([server, policy_id]): PathIds,
    JsonBody(body): JsonBody<NewRuleBody>,
) -> Result<Response, Problem> {
    caller.require(POLICIES_MANAGE)?;
    let policy = find_policy(&state, &server, &policy_id).await?;
    let everyone = body
        .everyone
        .unwrap_or(body.groups.is_empty() && body.users.is_empty());
    // With `everyone`, people named too are a contradiction the rules refuse.
    let terms = RuleTerms {
        priority: body.priority,
        grant_types: Some(body.grant_types),
        groups: Some(body.groups),
        users: Some(body.users),
        everyone,
        any_scope: body.scopes.is_none(),
        scopes: body.scopes,
        access_token_ttl: Some(body.access_token_ttl),
        refresh_token_ttl: Some(body.refresh_token_ttl),
        refresh_idle_ttl: Some(body.refresh_idle_ttl),
        deny: Some(body.action == Some(Action::Deny)),
    };
    let rule = policies::create_rule(
        &state.store,
        &policy,
        &body.name,
        terms,
        &caller.actor(),
        state.now(),
    )
    .await?;
    Ok(resource(
        &RuleView::from(&rule),
        Some(&location(&policy, &rule)),
    ))
}

/// One rule.
#[utoipa::path(get, path = "/admin/v1/servers/{server_id}/policies/{policy_id}/rules/{rule_id}",
    tag = "rules",
    params(("server_id" = String, Path), ("policy_id" = String, Path), ("rule_id" = String, Path)),
    security(("admin_token" = ["portcullis.policies.manage"])),
    responses((status = 200, description = "The rule", body = RuleView,
        headers(("ETag" = String)))))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    PathIds3(ids): PathIds3,
) -> Result<Response, Problem> {
    caller.require(POLICIES_MANAGE)?;
    let (_, rule) = find(&state, ids).await?;
    Ok(resource(&RuleView::from(&rule), None))
}

/// Change a rule (JSON Merge Patch).
#[utoipa::path(patch, path = "/admin/v1/servers/{server_id}/policies/{policy_id}/rules/{rule_id}",
    tag = "rules",
    params(("server_id" = String, Path), ("policy_id" = String, Path), ("rule_id" = String, Path),
        ("If-Match" = Option<String>, Header)),
    request_body(content = RulePatch, content_type = "application/merge-patch+json"),
    security(("admin_token" = ["portcullis.policies.manage"])),
    responses((status = 200, description = "The rule as changed", body = RuleView,
        headers(("ETag" = String)))))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathIds3(ids): PathIds3,
    if_match: IfMatch,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Response, Problem> {
    caller.require(POLICIES_MANAGE)?;
    let lease = format!("rule:{}/{}/{}", ids[0], ids[1], ids[2]);
    if_match
        .guard(&state, &lease, || async {
            let (policy, rule) = find(&state, ids).await?;
            let current = RuleView::from(&rule);
            let patch: RulePatch = patch_of(&current, patch, READ_ONLY)?;
            if_match.check(Some(&etag_of(&current)))?;
            // Only what changes is checked again: a group deleted since would otherwise block every
            // other change.
            let people_changed = patch.everyone != current.everyone
                || patch.groups != current.groups
                || patch.users != current.users;
            let scopes_changed = patch.scopes != current.scopes;
            let terms = RuleTerms {
                priority: patch.priority.filter(|p| *p != current.priority),
                grant_types: (patch.grant_types != current.grant_types)
                    .then_some(patch.grant_types),
                everyone: people_changed && patch.everyone,
                groups: people_changed.then_some(patch.groups),
                users: people_changed.then_some(patch.users),
                any_scope: scopes_changed && patch.scopes.is_none(),
                scopes: if scopes_changed { patch.scopes } else { None },
                access_token_ttl: Some(patch.access_token_ttl),
                refresh_token_ttl: Some(patch.refresh_token_ttl),
                refresh_idle_ttl: Some(patch.refresh_idle_ttl),
                deny: patch.action.map(|a| a == Action::Deny),
            };
            let rename = patch.name.filter(|n| *n != current.name);
            let rule = policies::update_rule(
                &state.store,
                &policy,
                &rule,
                rename.as_deref(),
                terms,
                &caller.actor(),
                state.now(),
            )
            .await?;
            Ok(resource(&RuleView::from(&rule), None))
        })
        .await
}

/// Delete a rule. Idempotent.
#[utoipa::path(delete, path = "/admin/v1/servers/{server_id}/policies/{policy_id}/rules/{rule_id}",
    tag = "rules",
    params(("server_id" = String, Path), ("policy_id" = String, Path), ("rule_id" = String, Path),
        ("If-Match" = Option<String>, Header)),
    security(("admin_token" = ["portcullis.policies.manage"])),
    responses((status = 204, description = "Deleted, or there was no such rule")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    PathIds3([server, policy_id, rule_id]): PathIds3,
    if_match: IfMatch,
) -> Result<Response, Problem> {
    caller.require(POLICIES_MANAGE)?;
    if_match
        .guard(
            &state,
            &format!("rule:{server}/{policy_id}/{rule_id}"),
            || async {
                let policy = find_policy(&state, &server, &policy_id).await?;
                let rule = policy.rules.iter().find(|r| r.id == rule_id).cloned();
                if_match.check(
                    rule.as_ref()
                        .map(|r| etag_of(&RuleView::from(r)))
                        .as_deref(),
                )?;
                if let Some(rule) = rule {
                    policies::delete_rule(
                        &state.store,
                        &policy,
                        &rule,
                        &caller.actor(),
                        state.now(),
                    )
                    .await?;
                }
                Ok(no_content())
            },
        )
        .await
}
