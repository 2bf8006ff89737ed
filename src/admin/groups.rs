//! `/admin/v1/groups`: groups of users and their members, under the rules of `portcullis group`
//! (`manage::groups`).

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
use super::{PathId, PathIds};
use crate::http::problem::Problem;
use crate::manage::groups;
use crate::protocol::admin_scopes::GROUPS_MANAGE;
use crate::state::AppState;
use crate::store::Group;

/// A member of a group.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    pub id: String,
    pub username: String,
}

/// A group with its members.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GroupView {
    pub id: String,
    /// As access rules and the groups claim name it.
    pub name: String,
    pub description: String,
    pub members: Vec<MemberView>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A new group.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroupBody {
    /// 1 to 256 characters, unique.
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// What a PATCH may change (JSON Merge Patch).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    pub name: Option<String>,
    pub description: Option<String>,
}

const READ_ONLY: &[&str] = &["id", "members", "created_at", "updated_at"];

async fn view(state: &AppState, group: &Group) -> Result<GroupView, Problem> {
    let members = state.store.group_members(&group.id).await?;
    Ok(view_of(group, members))
}

fn view_of(group: &Group, members: Vec<(String, String)>) -> GroupView {
    GroupView {
        id: group.id.clone(),
        name: group.name.clone(),
        description: group.description.clone(),
        members: members
            .into_iter()
            .map(|(id, username)| MemberView { id, username })
            .collect(),
        created_at: group.created_at,
        updated_at: group.updated_at,
    }
}

async fn find(state: &AppState, id: &str) -> Result<Group, Problem> {
    state
        .store
        .group(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no group `{id}`")))
}

/// List groups, by name.
#[utoipa::path(get, path = "/admin/v1/groups", tag = "groups", params(PageQuery),
    security(("admin_token" = ["portcullis.groups.manage"])),
    responses((status = 200, description = "A page of groups", body = Listing<GroupView>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryOf(query): QueryOf<PageQuery>,
) -> Result<Response, Problem> {
    caller.require(GROUPS_MANAGE)?;
    let page = Page::from_query(&query)?;
    let found = state.store.list_groups(page.store_page()).await?;
    let (found, next) = page.finish(found, |g| g.name.clone());
    let ids: Vec<&str> = found.iter().map(|g| g.id.as_str()).collect();
    let mut members = state.store.members_of_groups(&ids).await?;
    let items = found
        .iter()
        .map(|group| view_of(group, members.remove(&group.id).unwrap_or_default()))
        .collect();
    Ok(listing("/admin/v1/groups", &page, &[], items, next))
}

/// Create a group.
#[utoipa::path(post, path = "/admin/v1/groups", tag = "groups", request_body = NewGroupBody,
    security(("admin_token" = ["portcullis.groups.manage"])),
    responses((status = 201, description = "Created", body = GroupView,
        headers(("Location" = String), ("ETag" = String)))))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewGroupBody>,
) -> Result<Response, Problem> {
    caller.require(GROUPS_MANAGE)?;
    let group = groups::create_group(
        &state.store,
        &body.name,
        &body.description,
        &caller.actor(),
        state.now(),
    )
    .await?;
    let location = format!("/admin/v1/groups/{}", group.id);
    Ok(resource(&view(&state, &group).await?, Some(&location)))
}

/// One group with its members.
#[utoipa::path(get, path = "/admin/v1/groups/{group_id}", tag = "groups",
    params(("group_id" = String, Path)),
    security(("admin_token" = ["portcullis.groups.manage"])),
    responses((status = 200, description = "The group", body = GroupView,
        headers(("ETag" = String)))))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, Problem> {
    caller.require(GROUPS_MANAGE)?;
    let group = find(&state, &id).await?;
    Ok(resource(&view(&state, &group).await?, None))
}

/// Rename a group or change its description (JSON Merge Patch).
#[utoipa::path(patch, path = "/admin/v1/groups/{group_id}", tag = "groups",
    params(("group_id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = GroupPatch, content_type = "application/merge-patch+json"),
    security(("admin_token" = ["portcullis.groups.manage"])),
    responses((status = 200, description = "The group as changed", body = GroupView,
        headers(("ETag" = String)))))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    if_match: IfMatch,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Response, Problem> {
    caller.require(GROUPS_MANAGE)?;
    if_match
        .guard(&state, &format!("group:{id}"), || async {
            let group = find(&state, &id).await?;
            let current = view(&state, &group).await?;
            let patch: GroupPatch = patch_of(&current, patch, READ_ONLY)?;
            if_match.check(Some(&etag_of(&current)))?;
            let group = groups::update_group(
                &state.store,
                &group,
                patch.name.as_deref(),
                Some(patch.description.as_deref().unwrap_or("")),
                &caller.actor(),
                state.now(),
            )
            .await?;
            Ok(resource(&view(&state, &group).await?, None))
        })
        .await
}

/// Delete a group (409 while access rules name it). Idempotent.
#[utoipa::path(delete, path = "/admin/v1/groups/{group_id}", tag = "groups",
    params(("group_id" = String, Path), ("If-Match" = Option<String>, Header)),
    security(("admin_token" = ["portcullis.groups.manage"])),
    responses((status = 204, description = "Deleted, or there was no such group")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    if_match: IfMatch,
) -> Result<Response, Problem> {
    caller.require(GROUPS_MANAGE)?;
    if_match
        .guard(&state, &format!("group:{id}"), || async {
            let group = state.store.group(&id).await?;
            if if_match.is_present() {
                let current = match &group {
                    Some(group) => Some(etag_of(&view(&state, group).await?)),
                    None => None,
                };
                if_match.check(current.as_deref())?;
            }
            if let Some(group) = group {
                groups::delete_group(&state.store, &group, &caller.actor(), state.now()).await?;
            }
            Ok(no_content())
        })
        .await
}

async fn member(
    state: &AppState,
    ids: [String; 2],
) -> Result<(Group, crate::store::User), Problem> {
    let [group_id, user_id] = ids;
    let group = find(state, &group_id).await?;
    let user = state
        .store
        .user(&user_id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no user `{user_id}`")))?;
    Ok((group, user))
}

/// Add a user to a group. Idempotent.
#[utoipa::path(put, path = "/admin/v1/groups/{group_id}/members/{user_id}", tag = "groups",
    params(("group_id" = String, Path), ("user_id" = String, Path)),
    security(("admin_token" = ["portcullis.groups.manage"])),
    responses((status = 204, description = "The user is a member")))]
pub async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    PathIds(ids): PathIds,
) -> Result<Response, Problem> {
    caller.require(GROUPS_MANAGE)?;
    let (group, user) = member(&state, ids).await?;
    groups::add_members(&state.store, &group, &[user], &caller.actor(), state.now()).await?;
    Ok(no_content())
}

/// Remove a user from a group. Idempotent.
#[utoipa::path(delete, path = "/admin/v1/groups/{group_id}/members/{user_id}", tag = "groups",
    params(("group_id" = String, Path), ("user_id" = String, Path)),
    security(("admin_token" = ["portcullis.groups.manage"])),
    responses((status = 204, description = "The user is not a member")))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    PathIds(ids): PathIds,
) -> Result<Response, Problem> {
    caller.require(GROUPS_MANAGE)?;
    let (group, user) = member(&state, ids).await?;
    groups::remove_members(&state.store, &group, &[user], &caller.actor(), state.now()).await?;
    Ok(no_content())
}
