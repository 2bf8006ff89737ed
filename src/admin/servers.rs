//! `/admin/v1/servers`: authorization servers and their token policy, and their signing keys
//! (`/admin/v1/servers/{id}/keys`).

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::caller::Caller;
use super::conventions::{
    etag_of, listing, patch_of, resource, IfMatch, JsonBody, Listing, Page, PageQuery, QueryOf,
};
use super::PathId;
use crate::http::problem::Problem;
use crate::keys::schedule::KeyStatus;
use crate::keys::Rotation;
use crate::manage::registration;
use crate::manage::servers::{check_changes, set_server_mfa, update_server};
use crate::mfa::MfaPolicy;
use crate::protocol::admin_scopes::{KEYS_MANAGE, SERVERS_MANAGE};
use crate::state::AppState;
use crate::store::registration::RegistrationPolicy;
use crate::store::servers::ServerChanges;
use crate::store::AuthorizationServer;

/// An authorization server and its policy; a null lifetime is the configuration's default.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServerView {
    pub id: String,
    pub name: String,
    pub issuer: String,
    /// The `aud` of its access tokens.
    pub audience: String,
    pub access_token_ttl: Option<i64>,
    pub id_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub refresh_idle_ttl: Option<i64>,
    /// Seconds a rotated-out refresh token may still be presented (0 to 60).
    pub refresh_reuse_grace: Option<i64>,
    pub refresh_requires_offline_access: bool,
    /// RS256 or ES256.
    pub signing_alg: String,
    pub require_pkce: bool,
    /// Every client must push its authorization requests (RFC 9126 §5).
    pub require_pushed_authorization_requests: bool,
    /// Second factor at sign-in: off, optional or required.
    pub mfa: String,
    /// Dynamic client registration (RFC 7591): closed, token or open.
    pub registration: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

impl ServerView {
    async fn load(state: &AppState, server: &AuthorizationServer) -> Result<Self, Problem> {
        let policy = state.store.registration_policy(&server.id).await?;
        Ok(Self::of(server, &state.config.issuer, policy))
    }

    fn of(server: &AuthorizationServer, base: &str, registration: RegistrationPolicy) -> Self {
        Self {
            id: server.id.clone(),
            name: server.name.clone(),
            issuer: server.issuer(base),
            audience: server.audience.clone(),
            access_token_ttl: server.access_token_ttl,
            id_token_ttl: server.id_token_ttl,
            refresh_token_ttl: server.refresh_token_ttl,
            refresh_idle_ttl: server.refresh_idle_ttl,
            refresh_reuse_grace: server.refresh_reuse_grace,
            refresh_requires_offline_access: server.refresh_requires_offline_access,
            signing_alg: server.signing_alg.clone(),
            require_pkce: server.require_pkce,
            require_pushed_authorization_requests: server.require_pushed_authorization_requests,
            mfa: server.mfa.to_string(),
            registration: registration.as_str().to_string(),
            created_at: server.created_at,
            updated_at: server.updated_at,
            version: server.version,
        }
    }
}

/// What a PATCH may change (JSON Merge Patch; `null` clears a lifetime override).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerPatch {
    pub name: Option<String>,
    pub audience: Option<String>,
    pub access_token_ttl: Option<i64>,
    pub id_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub refresh_idle_ttl: Option<i64>,
    pub refresh_reuse_grace: Option<i64>,
    pub refresh_requires_offline_access: Option<bool>,
    pub signing_alg: Option<String>,
    pub require_pkce: Option<bool>,
    pub require_pushed_authorization_requests: Option<bool>,
    /// closed, token or open.
    pub registration: Option<String>,
    /// off, optional or required.
    pub mfa: Option<String>,
}

const READ_ONLY: &[&str] = &["id", "issuer", "created_at", "updated_at", "version"];

async fn find(state: &AppState, id: &str) -> Result<AuthorizationServer, Problem> {
    state
        .store
        .server(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no authorization server `{id}`")))
}

/// List authorization servers, by id.
#[utoipa::path(get, path = "/admin/v1/servers", tag = "servers", params(PageQuery),
    security(("admin_token" = ["portcullis.servers.manage"])),
    responses((status = 200, description = "A page of servers", body = Listing<ServerView>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryOf(query): QueryOf<PageQuery>,
) -> Result<Response, Problem> {
    caller.require(SERVERS_MANAGE)?;
    let page = Page::from_query(&query)?;
    let found = state.store.list_servers(page.store_page()).await?;
    let (servers, next) = page.finish(found, |s| s.id.clone());
    let ids: Vec<&str> = servers.iter().map(|s| s.id.as_str()).collect();
    let mut policies = state.store.registration_policies(&ids).await?;
    let items = servers
        .iter()
        .map(|server| {
            let policy = policies
                .remove(&server.id)
                .unwrap_or(RegistrationPolicy::Closed);
            ServerView::of(server, &state.config.issuer, policy)
        })
        .collect();
    Ok(listing("/admin/v1/servers", &page, &[], items, next))
}

/// One authorization server.
#[utoipa::path(get, path = "/admin/v1/servers/{server_id}", tag = "servers",
    params(("server_id" = String, Path)),
    security(("admin_token" = ["portcullis.servers.manage"])),
    responses((status = 200, description = "The server", body = ServerView,
        headers(("ETag" = String)))))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, Problem> {
    caller.require(SERVERS_MANAGE)?;
    let server = find(&state, &id).await?;
    Ok(resource(&ServerView::load(&state, &server).await?, None))
}

/// Change a server's name, audience or token policy (JSON Merge Patch). A new signing
/// algorithm rotates in a key of that type.
#[utoipa::path(patch, path = "/admin/v1/servers/{server_id}", tag = "servers",
    params(("server_id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = ServerPatch, content_type = "application/merge-patch+json"),
    security(("admin_token" = ["portcullis.servers.manage"])),
    responses((status = 200, description = "The server as changed", body = ServerView,
        headers(("ETag" = String)))))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    if_match: IfMatch,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Response, Problem> {
    caller.require(SERVERS_MANAGE)?;
    if_match
        .guard(&state, &format!("server:{id}"), || async {
            let current = ServerView::load(&state, &find(&state, &id).await?).await?;
            let p: ServerPatch = patch_of(&current, patch, READ_ONLY)?;
            if_match.check(Some(&etag_of(&current)))?;
            let changes = ServerChanges {
                name: p.name.map(|n| n.trim().to_string()),
                audience: p.audience.map(|a| a.trim().to_string()),
                access_token_ttl: Some(p.access_token_ttl),
                id_token_ttl: Some(p.id_token_ttl),
                refresh_token_ttl: Some(p.refresh_token_ttl),
                refresh_idle_ttl: Some(p.refresh_idle_ttl),
                refresh_reuse_grace: Some(p.refresh_reuse_grace),
                refresh_requires_offline_access: p.refresh_requires_offline_access,
                signing_alg: p.signing_alg,
                require_pkce: p.require_pkce,
                require_pushed_authorization_requests: p.require_pushed_authorization_requests,
            };
            let registration = p
                .registration
                .as_deref()
                .map(RegistrationPolicy::parse)
                .transpose()
                .map_err(Problem::invalid)?;
            let mfa = p
                .mfa
                .as_deref()
                .map(|m| {
                    MfaPolicy::parse(m).ok_or_else(|| {
                        Problem::invalid(format!("mfa `{m}` is not one of off, optional, required"))
                    })
                })
                .transpose()?;
            check_changes(&changes)?;
            let actor = caller.actor();
            if let Some(policy) = registration.filter(|p| p.as_str() != current.registration) {
                registration::set_policy(&state.store, &id, policy, &actor, state.now()).await?;
            }
            let (server, _) = update_server(
                &state.store,
                &state.keys,
                &id,
                &changes,
                state.config.keys.activation_delay.as_i64(),
                &caller.actor(),
                state.now(),
            )
            .await?;
            let server = match mfa {
                Some(mfa) => set_server_mfa(&state.store, server, mfa, &actor, state.now()).await?,
                None => server,
            };
            state.keys.invalidate(&server.id);
            Ok(resource(&ServerView::load(&state, &server).await?, None))
        })
        .await
}

/// A signing key and where it is in its life.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub kid: String,
    pub generation: i64,
    pub alg: String,
    /// pending, active, retired or expired.
    pub status: String,
    pub created_at: i64,
    /// When it starts signing.
    pub not_before: i64,
    /// When a retired key leaves the JWKS.
    pub unpublish_at: Option<i64>,
}

/// A server's signing keys, oldest first.
#[utoipa::path(get, path = "/admin/v1/servers/{server_id}/keys", tag = "keys",
    params(("server_id" = String, Path)),
    security(("admin_token" = ["portcullis.keys.manage"])),
    responses((status = 200, description = "The keys", body = Listing<KeyView>)))]
pub async fn keys(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, Problem> {
    caller.require(KEYS_MANAGE)?;
    let server = find(&state, &id).await?;
    let now = state.now();
    let set = state.keys.key_set(&server, now).await?;
    let items: Vec<KeyView> = set
        .keys
        .iter()
        .zip(set.statuses(now))
        .map(|(key, status)| KeyView {
            kid: key.kid.clone(),
            generation: key.generation,
            alg: key.alg.as_str().to_string(),
            status: status.as_str().to_string(),
            created_at: key.created_at,
            not_before: key.not_before,
            unpublish_at: match status {
                KeyStatus::Retired { unpublish_at } => Some(unpublish_at),
                _ => None,
            },
        })
        .collect();
    let page = Page {
        limit: items.len().max(1),
        after: None,
    };
    let path = format!("/admin/v1/servers/{id}/keys");
    Ok(listing(&path, &page, &[], items, None))
}

/// What a rotation did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotationView {
    /// The new key.
    pub kid: String,
    /// When it starts signing (after `keys.activation_delay`, so relying parties fetch it first).
    pub not_before: i64,
}

/// Rotate a server's signing key: a new key is published at once and signs after
/// `keys.activation_delay`.
#[utoipa::path(post, path = "/admin/v1/servers/{server_id}/keys/rotation", tag = "keys",
    params(("server_id" = String, Path)),
    security(("admin_token" = ["portcullis.keys.manage"])),
    responses((status = 201, description = "The new key", body = RotationView)))]
pub async fn rotate_key(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, Problem> {
    caller.require(KEYS_MANAGE)?;
    let server = find(&state, &id).await?;
    let now = state.now();
    // The first key exists before the rotation, so the new one is the second.
    state.keys.key_set(&server, now).await?;
    let delay = state.config.keys.activation_delay.as_i64();
    match state.keys.rotate(&server.id, now, delay).await? {
        Rotation::Added { kid, not_before } => {
            let location = format!("/admin/v1/servers/{id}/keys");
            Ok(resource(&RotationView { kid, not_before }, Some(&location)))
        }
        Rotation::LostRace => Err(Problem::new(
            crate::http::problem::ProblemKind::Conflict,
            "another rotation happened at the same moment; list the keys",
        )),
    }
}
