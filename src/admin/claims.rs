//! `/admin/v1/servers/{server_id}/claims`: a server's custom claims, under the rules of
//! `portcullis claim` (`manage::claims`). A claim has exactly one source: `attribute`, `value`
//! or `groups`; the other two are null.

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
use crate::manage::claims::{self, ClaimDefinition};
use crate::manage::scopes::check_server;
use crate::protocol::admin_scopes::SERVERS_MANAGE;
use crate::state::AppState;
use crate::store::{ClaimSource, ClaimTarget, CustomClaim, GroupFilter};

/// A token a claim is released into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    AccessToken,
    IdToken,
    Userinfo,
}

impl From<ClaimTarget> for TokenType {
    fn from(target: ClaimTarget) -> Self {
        match target {
            ClaimTarget::AccessToken => Self::AccessToken,
            ClaimTarget::IdToken => Self::IdToken,
            ClaimTarget::Userinfo => Self::Userinfo,
        }
    }
}

impl From<TokenType> for ClaimTarget {
    fn from(token: TokenType) -> Self {
        match token {
            TokenType::AccessToken => Self::AccessToken,
            TokenType::IdToken => Self::IdToken,
            TokenType::Userinfo => Self::Userinfo,
        }
    }
}

/// A groups claim: the names of the user's groups, all of them or those one filter keeps.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupsSource {
    /// Only groups whose name starts with this.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Only groups whose whole name matches this regular expression.
    #[serde(default)]
    pub regex: Option<String>,
    /// Only these groups.
    #[serde(default)]
    pub equals: Vec<String>,
    /// More matching groups than this (1 to 1000, default 100) and the claim is left out.
    #[serde(default)]
    pub max: Option<usize>,
}

/// A custom claim of a server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClaimView {
    pub server: String,
    /// Its name in tokens.
    pub name: String,
    /// Taken from this key of the user's claims (or `username`).
    pub attribute: Option<String>,
    /// A static JSON value, the same for everyone.
    pub value: Option<Value>,
    /// The names of the user's groups.
    pub groups: Option<GroupsSource>,
    /// Granting any one of these releases it.
    pub scopes: Vec<String>,
    pub token_types: Vec<TokenType>,
    pub created_at: i64,
}

impl From<&CustomClaim> for ClaimView {
    fn from(claim: &CustomClaim) -> Self {
        let (mut attribute, mut value, mut groups) = (None, None, None);
        match &claim.source {
            ClaimSource::Attribute(a) => attribute = Some(a.clone()),
            ClaimSource::Static(v) => value = Some(v.clone()),
            ClaimSource::Groups(g) => {
                let mut source = GroupsSource {
                    prefix: None,
                    regex: None,
                    equals: Vec::new(),
                    max: Some(g.max),
                };
                match &g.filter {
                    GroupFilter::All => {}
                    GroupFilter::Prefix(p) => source.prefix = Some(p.clone()),
                    GroupFilter::Regex(r) => source.regex = Some(r.source().to_string()),
                    GroupFilter::Equals(names) => source.equals = names.clone(),
                }
                groups = Some(source);
            }
        }
        Self {
            server: claim.server_id.clone(),
            name: claim.name.clone(),
            attribute,
            value,
            groups,
            scopes: claim.scopes.iter().map(str::to_string).collect(),
            token_types: claim.token_types.iter().map(|t| (*t).into()).collect(),
            created_at: claim.created_at,
        }
    }
}

/// A new custom claim: a name, one source, the scopes that release it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClaimBody {
    /// Not a protocol or standard OIDC claim; 1 to 256 characters, no spaces.
    pub name: String,
    #[serde(default)]
    pub attribute: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub groups: Option<GroupsSource>,
    /// At least one: built-in OIDC scopes or custom scopes of the server.
    pub scopes: Vec<String>,
    /// Default: all three.
    #[serde(default)]
    pub token_types: Vec<TokenType>,
}

/// What a PATCH may change (JSON Merge Patch): the source, scopes and token types.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimPatch {
    #[serde(default)]
    pub attribute: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub groups: Option<GroupsSource>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub token_types: Vec<TokenType>,
}

const READ_ONLY: &[&str] = &["server", "name", "created_at"];

fn definition(
    attribute: Option<String>,
    value: Option<Value>,
    groups: Option<GroupsSource>,
    scopes: Vec<String>,
    token_types: Vec<TokenType>,
) -> ClaimDefinition {
    let mut out = ClaimDefinition {
        attribute,
        value,
        scopes,
        token_types: token_types.into_iter().map(Into::into).collect(),
        ..ClaimDefinition::default()
    };
    if let Some(g) = groups {
        out.groups = true;
        out.filter_prefix = g.prefix;
        out.filter_regex = g.regex;
        out.filter_equals = g.equals;
        out.max_groups = g.max;
    }
    out
}

async fn find(state: &AppState, server: &str, name: &str) -> Result<CustomClaim, Problem> {
    check_server(&state.store, server).await?;
    state
        .store
        .claim(server, name)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no claim `{name}` on server `{server}`")))
}

/// List a server's custom claims, by name.
#[utoipa::path(get, path = "/admin/v1/servers/{server_id}/claims", tag = "claims",
    params(("server_id" = String, Path), PageQuery),
    security(("admin_token" = ["portcullis.servers.manage"])),
    responses((status = 200, description = "A page of claims", body = Listing<ClaimView>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    PathId(server): PathId,
    QueryOf(query): QueryOf<PageQuery>,
) -> Result<Response, Problem> {
    caller.require(SERVERS_MANAGE)?;
    let page = Page::from_query(&query)?;
    let rows = claims::list_claims(&state.store, &server, page.store_page()).await?;
    let (rows, next) = page.finish(rows, |c| c.name.clone());
    let items = rows.iter().map(ClaimView::from).collect();
    let path = format!("/admin/v1/servers/{}/claims", segment(&server));
    Ok(listing(&path, &page, &[], items, next))
}

/// Add a custom claim.
#[utoipa::path(post, path = "/admin/v1/servers/{server_id}/claims", tag = "claims",
    params(("server_id" = String, Path)), request_body = NewClaimBody,
    security(("admin_token" = ["portcullis.servers.manage"])),
    responses((status = 201, description = "Created", body = ClaimView,
        headers(("Location" = String), ("ETag" = String)))))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    PathId(server): PathId,
    JsonBody(body): JsonBody<NewClaimBody>,
) -> Result<Response, Problem> {
    caller.require(SERVERS_MANAGE)?;
    let definition = definition(
        body.attribute,
        body.value,
        body.groups,
        body.scopes,
        body.token_types,
    );
    let claim = claims::create_claim(
        &state.store,
        &server,
        &body.name,
        definition,
        &caller.actor(),
        state.now(),
    )
    .await?;
    let location = format!(
        "/admin/v1/servers/{}/claims/{}",
        segment(&claim.server_id),
        segment(&claim.name)
    );
    Ok(resource(&ClaimView::from(&claim), Some(&location)))
}

/// One custom claim.
#[utoipa::path(get, path = "/admin/v1/servers/{server_id}/claims/{name}", tag = "claims",
    params(("server_id" = String, Path), ("name" = String, Path)),
    security(("admin_token" = ["portcullis.servers.manage"])),
    responses((status = 200, description = "The claim", body = ClaimView,
        headers(("ETag" = String)))))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    PathIds([server, name]): PathIds,
) -> Result<Response, Problem> {
    caller.require(SERVERS_MANAGE)?;
    let claim = find(&state, &server, &name).await?;
    Ok(resource(&ClaimView::from(&claim), None))
}

/// Change a claim's source, scopes or token types (JSON Merge Patch; to change the source,
/// set the old one to null).
#[utoipa::path(patch, path = "/admin/v1/servers/{server_id}/claims/{name}", tag = "claims",
    params(("server_id" = String, Path), ("name" = String, Path),
        ("If-Match" = Option<String>, Header)),
    request_body(content = ClaimPatch, content_type = "application/merge-patch+json"),
    security(("admin_token" = ["portcullis.servers.manage"])),
    responses((status = 200, description = "The claim as changed", body = ClaimView,
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
        .guard(&state, &format!("claim:{server}/{name}"), || async {
            let claim = find(&state, &server, &name).await?;
            let current = ClaimView::from(&claim);
            let patch: ClaimPatch = patch_of(&current, patch, READ_ONLY)?;
            if_match.check(Some(&etag_of(&current)))?;
            let definition = definition(
                patch.attribute,
                patch.value,
                patch.groups,
                patch.scopes,
                patch.token_types,
            );
            let claim = claims::update_claim(
                &state.store,
                &claim,
                definition,
                &caller.actor(),
                state.now(),
            )
            .await?;
            Ok(resource(&ClaimView::from(&claim), None))
        })
        .await
}

/// Delete a claim; tokens issued from now on no longer carry it. Idempotent.
#[utoipa::path(delete, path = "/admin/v1/servers/{server_id}/claims/{name}", tag = "claims",
    params(("server_id" = String, Path), ("name" = String, Path),
        ("If-Match" = Option<String>, Header)),
    security(("admin_token" = ["portcullis.servers.manage"])),
    responses((status = 204, description = "Deleted, or there was no such claim")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    PathIds([server, name]): PathIds,
    if_match: IfMatch,
) -> Result<Response, Problem> {
    caller.require(SERVERS_MANAGE)?;
    if_match
        .guard(&state, &format!("claim:{server}/{name}"), || async {
            check_server(&state.store, &server).await?;
            let claim = state.store.claim(&server, &name).await?;
            if_match.check(
                claim
                    .as_ref()
                    .map(|c| etag_of(&ClaimView::from(c)))
                    .as_deref(),
            )?;
            if claim.is_some() {
                claims::delete_claim(&state.store, &server, &name, &caller.actor(), state.now())
                    .await?;
            }
            Ok(no_content())
        })
        .await
}
