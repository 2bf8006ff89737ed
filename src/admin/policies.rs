//! `/admin/v1/servers/{server_id}/policies`: a server's access policies with their rules,
//! under the rules of `portcullis policy` (`manage::policies`). Policies are addressed by id
//! and show their name; lists are in evaluation order (priority, then name).

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
use super::rules::RuleView;
use super::{PathId, PathIds};
use crate::http::problem::Problem;
use crate::manage::policies::{self, ClientsChoice, PolicyChanges};
use crate::manage::scopes::check_server;
use crate::protocol::admin_scopes::POLICIES_MANAGE;
use crate::state::AppState;
use crate::store::{AccessPolicy, PolicyClients};

/// An access policy of a server with its rules.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    pub id: String,
    pub server: String,
    /// Unique on the server; the CLI names the policy by it.
    pub name: String,
    pub description: String,
    /// Lower is evaluated first (0 to 1000000).
    pub priority: i64,
    /// Applies to every client of the server (`clients` is then empty).
    pub all_clients: bool,
    /// The clients of the server it applies to.
    pub clients: Vec<String>,
    /// Its rules, in the order they are evaluated.
    pub rules: Vec<RuleView>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&AccessPolicy> for PolicyView {
    fn from(policy: &AccessPolicy) -> Self {
        let (all_clients, clients) = match &policy.clients {
            PolicyClients::All => (true, Vec::new()),
            PolicyClients::Only(ids) => (false, ids.clone()),
        };
        Self {
            id: policy.id.clone(),
            server: policy.server_id.clone(),
            name: policy.name.clone(),
            description: policy.description.clone(),
            priority: policy.priority,
            all_clients,
            clients,
            rules: policy.rules.iter().map(RuleView::from).collect(),
            created_at: policy.created_at,
            updated_at: policy.updated_at,
        }
    }
}

/// A new access policy (without rules, it denies every request of its clients).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPolicyBody {
    /// 1 to 128 characters without control characters or backquotes; unique on the server.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Default: after every existing policy.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Every client of the server; or give `clients`.
    #[serde(default)]
    pub all_clients: bool,
    #[serde(default)]
    pub clients: Vec<String>,
}

/// What a PATCH may change (JSON Merge Patch). To go from `all_clients` to a list, set
/// `all_clients` to false and give the `clients`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub priority: Option<i64>,
    #[serde(default)]
    pub all_clients: bool,
    #[serde(default)]
    pub clients: Vec<String>,
}

const READ_ONLY: &[&str] = &["id", "server", "rules", "created_at", "updated_at"];

pub fn path(server: &str, id: &str) -> String {
    format!(
        "/admin/v1/servers/{}/policies/{}",
        segment(server),
        segment(id)
    )
}

/// The policy `id` of `server`, with its rules.
pub async fn find(state: &AppState, server: &str, id: &str) -> Result<AccessPolicy, Problem> {
    check_server(&state.store, server).await?;
    state
        .store
        .access_policy(server, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no access policy `{id}` on server `{server}`")))
}

/// List a server's access policies with their rules, in the order they are evaluated
/// (priority, then name).
#[utoipa::path(get, path = "/admin/v1/servers/{server_id}/policies", tag = "policies",
    params(("server_id" = String, Path), PageQuery),
    security(("admin_token" = ["portcullis.policies.manage"])),
    responses((status = 200, description = "A page of policies", body = Listing<PolicyView>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    PathId(server): PathId,
    QueryOf(query): QueryOf<PageQuery>,
) -> Result<Response, Problem> {
    caller.require(POLICIES_MANAGE)?;
    let page = Page::from_query(&query)?;
    let after = page.after.as_deref().map(parse_priority_key).transpose()?;
    let rows = policies::list_policies(
        &state.store,
        &server,
        after.as_ref().map(|(p, n)| (*p, n.as_str())),
        page.store_page().limit,
    )
    .await?;
    let (rows, next) = page.finish(rows, |p| priority_key(p.priority, &p.name));
    let items = rows.iter().map(PolicyView::from).collect();
    let path = format!("/admin/v1/servers/{}/policies", segment(&server));
    Ok(listing(&path, &page, &[], items, next))
}

/// Add an access policy.
#[utoipa::path(post, path = "/admin/v1/servers/{server_id}/policies", tag = "policies",
    params(("server_id" = String, Path)), request_body = NewPolicyBody,
    security(("admin_token" = ["portcullis.policies.manage"])),
    responses((status = 201, description = "Created", body = PolicyView,
        headers(("Location" = String), ("ETag" = String)))))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    PathId(server): PathId,
    JsonBody(body): JsonBody<NewPolicyBody>,
) -> Result<Response, Problem> {
    caller.require(POLICIES_MANAGE)?;
    let changes = PolicyChanges {
        name: Some(body.name),
        description: Some(body.description),
        priority: body.priority,
        clients: Some(ClientsChoice {
            all: body.all_clients,
            ids: body.clients,
        }),
    };
    let policy =
        policies::create_policy(&state.store, &server, changes, &caller.actor(), state.now())
            .await?;
    let location = path(&policy.server_id, &policy.id);
    Ok(resource(&PolicyView::from(&policy), Some(&location)))
}

/// One access policy with its rules.
#[utoipa::path(get, path = "/admin/v1/servers/{server_id}/policies/{policy_id}",
    tag = "policies", params(("server_id" = String, Path), ("policy_id" = String, Path)),
    security(("admin_token" = ["portcullis.policies.manage"])),
    responses((status = 200, description = "The policy", body = PolicyView,
        headers(("ETag" = String)))))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    PathIds([server, id]): PathIds,
) -> Result<Response, Problem> {
    caller.require(POLICIES_MANAGE)?;
    let policy = find(&state, &server, &id).await?;
    Ok(resource(&PolicyView::from(&policy), None))
}

/// Change a policy's name, description, priority or clients (JSON Merge Patch).
#[utoipa::path(patch, path = "/admin/v1/servers/{server_id}/policies/{policy_id}",
    tag = "policies",
    params(("server_id" = String, Path), ("policy_id" = String, Path),
        ("If-Match" = Option<String>, Header)),
    request_body(content = PolicyPatch, content_type = "application/merge-patch+json"),
    security(("admin_token" = ["portcullis.policies.manage"])),
    responses((status = 200, description = "The policy as changed", body = PolicyView,
        headers(("ETag" = String)))))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathIds([server, id]): PathIds,
    if_match: IfMatch,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Response, Problem> {
    caller.require(POLICIES_MANAGE)?;
    if_match
        .guard(&state, &format!("policy:{server}/{id}"), || async {
            let policy = find(&state, &server, &id).await?;
            let current = PolicyView::from(&policy);
            let patch: PolicyPatch = patch_of(&current, patch, READ_ONLY)?;
            if_match.check(Some(&etag_of(&current)))?;
            // Clients are checked again only when they change: one deleted since would otherwise
            // block every other change.
            let clients_changed =
                patch.all_clients != current.all_clients || patch.clients != current.clients;
            let changes = PolicyChanges {
                name: patch.name,
                description: patch.description,
                priority: patch.priority,
                clients: clients_changed.then_some(ClientsChoice {
                    all: patch.all_clients,
                    ids: patch.clients,
                }),
            };
            let policy = policies::update_policy(
                &state.store,
                &policy,
                changes,
                &caller.actor(),
                state.now(),
            )
            .await?;
            Ok(resource(&PolicyView::from(&policy), None))
        })
        .await
}

/// Delete a policy with its rules. Idempotent.
#[utoipa::path(delete, path = "/admin/v1/servers/{server_id}/policies/{policy_id}",
    tag = "policies",
    params(("server_id" = String, Path), ("policy_id" = String, Path),
        ("If-Match" = Option<String>, Header)),
    security(("admin_token" = ["portcullis.policies.manage"])),
    responses((status = 204, description = "Deleted, or there was no such policy")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    PathIds([server, id]): PathIds,
    if_match: IfMatch,
) -> Result<Response, Problem> {
    caller.require(POLICIES_MANAGE)?;
    if_match
        .guard(&state, &format!("policy:{server}/{id}"), || async {
            check_server(&state.store, &server).await?;
            let policy = state.store.access_policy(&server, &id).await?;
            if_match.check(
                policy
                    .as_ref()
                    .map(|p| etag_of(&PolicyView::from(p)))
                    .as_deref(),
            )?;
            if let Some(policy) = policy {
                policies::delete_policy(&state.store, &policy, &caller.actor(), state.now())
                    .await?;
            }
            Ok(no_content())
        })
        .await
}
