//! `/admin/v1/servers/{server_id}/scopes`: a server's custom scopes, under the rules of
//! `portcullis scope` (`manage::scopes`). The OIDC scopes are built in and not managed here.

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
use super::nested::segment;
use super::{PathId, PathIds};
use crate::http::problem::Problem;
use crate::manage::scopes;
use crate::protocol::admin_scopes::SERVERS_MANAGE;
use crate::state::AppState;
use crate::store::Scope;

/// A custom scope of a server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScopeView {
    /// The server it belongs to.
    pub server: String,
    /// A scope token (RFC 6749 §3.3).
    pub name: String,
    /// What granting it allows, in words for the consent page.
    pub description: String,
    /// Granted to a client that requests no scope and has no default scopes of its own.
    pub default: bool,
    pub created_at: i64,
}

impl From<&Scope> for ScopeView {
    fn from(scope: &Scope) -> Self {
        Self {
            server: scope.server_id.clone(),
            name: scope.name.clone(),
            description: scope.description.clone(),
            default: scope.is_default,
            created_at: scope.created_at,
        }
    }
}

/// A new custom scope.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScopeBody {
    /// A scope token: printable ASCII without spaces, `"` or `\`; not a built-in OIDC scope.
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub default: bool,
}

/// What a PATCH may change (JSON Merge Patch).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopePatch {
    pub description: Option<String>,
    pub default: Option<bool>,
}

const READ_ONLY: &[&str] = &["server", "name", "created_at"];

fn path(server: &str, name: &str) -> String {
    format!(
        "/admin/v1/servers/{}/scopes/{}",
        segment(server),
        segment(name)
    )
}

async fn find(state: &AppState, server: &str, name: &str) -> Result<Scope, Problem> {
    scopes::check_server(&state.store, server).await?;
    state
        .store
        .scope(server, name)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no scope `{name}` on server `{server}`")))
}

/// List a server's custom scopes, by name.
#[utoipa::path(get, path = "/admin/v1/servers/{server_id}/scopes", tag = "scopes",
    params(("server_id" = String, Path), PageQuery),
    security(("admin_token" = ["portcullis.servers.manage"])),
    responses((status = 200, description = "A page of scopes", body = Listing<ScopeView>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    PathId(server): PathId,
    QueryOf(query): QueryOf<PageQuery>,
) -> Result<Response, Problem> {
    caller.require(SERVERS_MANAGE)?;
    let page = Page::from_query(&query)?;
    let rows = scopes::list_scopes(&state.store, &server, page.store_page()).await?;
    let (rows, next) = page.finish(rows, |s| s.name.clone());
    let items = rows.iter().map(ScopeView::from).collect();
    let path = format!("/admin/v1/servers/{}/scopes", segment(&server));
    Ok(listing(&path, &page, &[], items, next))
}

/// Add a custom scope.
#[utoipa::path(post, path = "/admin/v1/servers/{server_id}/scopes", tag = "scopes",
    params(("server_id" = String, Path)), request_body = NewScopeBody,
    security(("admin_token" = ["portcullis.servers.manage"])),
    responses((status = 201, description = "Created", body = ScopeView,
        headers(("Location" = String), ("ETag" = String)))))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    PathId(server): PathId,
    JsonBody(body): JsonBody<NewScopeBody>,
) -> Result<Response, Problem> {
    caller.require(SERVERS_MANAGE)?;
    let scope = scopes::create_scope(
        &state.store,
        &server,
        &body.name,
        &body.description,
        body.default,
        &caller.actor(),
        state.now(),
    )
    .await?;
    let location = path(&scope.server_id, &scope.name);
    Ok(resource(&ScopeView::from(&scope), Some(&location)))
}

/// One custom scope.
#[utoipa::path(get, path = "/admin/v1/servers/{server_id}/scopes/{name}", tag = "scopes",
    params(("server_id" = String, Path), ("name" = String, Path)),
    security(("admin_token" = ["portcullis.servers.manage"])),
    responses((status = 200, description = "The scope", body = ScopeView,
        headers(("ETag" = String)))))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    PathIds([server, name]): PathIds,
) -> Result<Response, Problem> {
    caller.require(SERVERS_MANAGE)?;
    let scope = find(&state, &server, &name).await?;
    Ok(resource(&ScopeView::from(&scope), None))
}

/// Change a scope's description or default flag (JSON Merge Patch).
#[utoipa::path(patch, path = "/admin/v1/servers/{server_id}/scopes/{name}", tag = "scopes",
    params(("server_id" = String, Path), ("name" = String, Path),
        ("If-Match" = Option<String>, Header)),
    request_body(content = ScopePatch, content_type = "application/merge-patch+json"),
    security(("admin_token" = ["portcullis.servers.manage"])),
    responses((status = 200, description = "The scope as changed", body = ScopeView,
        headers(("ETag" = String)))))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathIds([server, name]): PathIds,
    if_match: IfMatch,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Response, Problem> {
    caller.require(SERVERS_MANAGE)?;
    if_match
        .guard(&state, &format!("scope:{server}/{name}"), || async {
            scopes::check_name(&name)?;
            let current = ScopeView::from(&find(&state, &server, &name).await?);
            let patch: ScopePatch = patch_of(&current, patch, READ_ONLY)?;
            if_match.check(Some(&etag_of(&current)))?;
            let scope = scopes::update_scope(
                &state.store,
                &server,
                &name,
                patch.description.as_deref(),
                patch.default,
                &caller.actor(),
                state.now(),
            )
            .await?;
            Ok(resource(&ScopeView::from(&scope), None))
        })
        .await
}

/// Delete a scope (409 while a client is given it or a claim is released by it). Idempotent.
#[utoipa::path(delete, path = "/admin/v1/servers/{server_id}/scopes/{name}", tag = "scopes",
    params(("server_id" = String, Path), ("name" = String, Path),
        ("If-Match" = Option<String>, Header)),
    security(("admin_token" = ["portcullis.servers.manage"])),
    responses((status = 204, description = "Deleted, or there was no such scope")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    PathIds([server, name]): PathIds,
    if_match: IfMatch,
) -> Result<Response, Problem> {
    caller.require(SERVERS_MANAGE)?;
    if_match
        .guard(&state, &format!("scope:{server}/{name}"), || async {
            scopes::check_server(&state.store, &server).await?;
            scopes::check_name(&name)?;
            let scope = state.store.scope(&server, &name).await?;
            if_match.check(
                scope
                    .as_ref()
                    .map(|s| etag_of(&ScopeView::from(s)))
                    .as_deref(),
            )?;
            if scope.is_some() {
                scopes::delete_scope(&state.store, &server, &name, &caller.actor(), state.now())
                    .await?;
            }
            Ok(no_content())
        })
        .await
}
