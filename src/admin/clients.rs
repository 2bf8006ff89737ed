//! `/admin/v1/clients`: register, read, change, delete clients and rotate their secrets, under
//! the rules of `portcullis client` (`manage::clients`).

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::conventions::{
    etag_of, listing, no_content, patch_of, resource, respond, IfMatch, JsonBody, Listing, Page,
    PageQuery, QueryOf,
};
use super::PathId;
use crate::http::problem::{Problem, ProblemKind};
use crate::manage::clients::{
    change_client, create_client, delete_client, rotate_secret, ClientChanges, ClientRecord,
    ClientRequest,
};
use crate::manage::logout::LogoutChanges;
use crate::protocol::admin_scopes::{CLIENTS_MANAGE, CLIENTS_READ};
use crate::protocol::{ClientAuthMethod, GrantType};
use crate::state::AppState;

/// A client as the API shows it: never its secret (but once, on create and rotation).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub server_id: String,
    pub name: String,
    /// `client_secret_basic`, `client_secret_post` or `none` (public clients).
    pub token_endpoint_auth_method: String,
    pub public: bool,
    /// Trusted: no consent page.
    pub first_party: bool,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// The scopes it may request, space-separated.
    pub scope: String,
    /// Granted when it requests none, space-separated.
    pub default_scope: String,
    /// Lifetime overrides in seconds; null: the server's policy.
    pub access_token_ttl: Option<i64>,
    pub id_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub token_exchange_audiences: Vec<String>,
    /// Only users assigned to the client get tokens.
    pub assignment_required: bool,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub frontchannel_logout_uri: Option<String>,
    pub frontchannel_logout_session_required: bool,
    /// Second factor at sign-in: default (the server's), off, optional or required.
    pub mfa: String,
    /// Where its keys are published (private_key_jwt); read-only here, set with the CLI.
    pub jwks_uri: Option<String>,
    /// Token requests need a DPoP proof (RFC 9449).
    pub require_dpop: bool,
    /// Authorization requests must be pushed (RFC 9126).
    pub require_pushed_authorization_requests: bool,
    /// Authorization requests need a signed request object (RFC 9101).
    pub require_signed_request_object: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// The secret: only in the response that made it (create, rotation). Stored only as a hash.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_secret: Option<String>,
}

impl ClientView {
    fn of(record: &ClientRecord) -> Self {
        let c = &record.client;
        let l = &record.logout;
        Self {
            client_id: c.id.clone(),
            server_id: c.server_id.clone(),
            name: c.name.clone(),
            token_endpoint_auth_method: c.auth_method.as_str().to_string(),
            public: c.is_public(),
            first_party: c.first_party,
            grant_types: c
                .grant_types
                .iter()
                .map(|g| g.as_str().to_string())
                .collect(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            scope: c.scopes.to_string(),
            default_scope: c.default_scopes.to_string(),
            access_token_ttl: c.access_token_ttl,
            id_token_ttl: c.id_token_ttl,
            refresh_token_ttl: c.refresh_token_ttl,
            token_exchange_audiences: c.token_exchange_audiences.clone(),
            assignment_required: c.assignment_required,
            backchannel_logout_uri: l.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: l.backchannel_session_required,
            frontchannel_logout_uri: l.frontchannel_logout_uri.clone(),
            frontchannel_logout_session_required: l.frontchannel_session_required,
            mfa: c.mfa.as_str().to_string(),
            jwks_uri: c.security.jwks_uri.clone(),
            require_dpop: c.security.require_dpop,
            require_pushed_authorization_requests: c.security.require_par,
            require_signed_request_object: c.security.require_signed_request_object,
            created_at: c.created_at,
            updated_at: c.updated_at,
            client_secret: None,
        }
    }
}

/// A new client, as `portcullis client create` takes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientBody {
    /// The authorization server (default `default`).
    #[serde(default = "default_server")]
    pub server_id: String,
    pub name: String,
    /// authorization_code, implicit, password, client_credentials, refresh_token, device_code,
    /// token-exchange (or their URNs).
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Space-separated scopes it may request.
    #[serde(default)]
    pub scope: String,
    /// Space-separated scopes granted when it requests none (default: all its scopes).
    #[serde(default)]
    pub default_scope: String,
    /// A public client (SPA, native app): no secret, PKCE required.
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub first_party: bool,
    /// client_secret_basic (default) or client_secret_post; `none` for public clients.
    pub token_endpoint_auth_method: Option<String>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: Option<bool>,
    pub frontchannel_logout_uri: Option<String>,
    pub frontchannel_logout_session_required: Option<bool>,
}

fn default_server() -> String {
    crate::store::servers::DEFAULT_SERVER.to_string()
}

/// The fields a PATCH may change (RFC 7396 JSON Merge Patch over the client's representation;
/// a `null` lifetime goes back to the server's policy, a `null` logout URI removes it). The
/// other fields are read-only.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub scope: Option<String>,
    pub default_scope: Option<String>,
    pub first_party: Option<bool>,
    pub access_token_ttl: Option<i64>,
    pub id_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub token_exchange_audiences: Option<Vec<String>>,
    pub assignment_required: Option<bool>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: Option<bool>,
    pub frontchannel_logout_uri: Option<String>,
    pub frontchannel_logout_session_required: Option<bool>,
}

const READ_ONLY: &[&str] = &[
    "client_id",
    "server_id",
    "token_endpoint_auth_method",
    "public",
    "mfa",
    "jwks_uri",
    "require_dpop",
    "require_pushed_authorization_requests",
    "require_signed_request_object",
    "created_at",
    "updated_at",
];

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClientListQuery {
    /// Only the clients of this authorization server.
    pub server_id: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

fn grants(names: &[String]) -> Result<Vec<GrantType>, Problem> {
    names
        .iter()
        .map(|g| GrantType::from_cli(g).map_err(Problem::invalid))
        .collect()
}

fn scope_tokens(scope: &str) -> Vec<String> {
    scope.split_whitespace().map(str::to_string).collect()
}

/// List clients, of one server or of all, by id.
#[utoipa::path(get, path = "/admin/v1/clients", tag = "clients", params(ClientListQuery),
    security(("admin_token" = ["portcullis.clients.read"])),
    responses((status = 200, description = "A page of clients", body = Listing<ClientView>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryOf(query): QueryOf<ClientListQuery>,
) -> Result<Response, Problem> {
    caller.require(CLIENTS_READ)?;
    let page = Page::from_query(&PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    })?;
    let clients = state.store.clients(query.server_id.as_deref()).await?;
    let (clients, next) = page.cut(clients, |c| c.id.as_str());
    let mut items = Vec::with_capacity(clients.len());
    for client in clients {
        let logout = state.store.client_logout(&client.id).await?;
        items.push(ClientView::of(&ClientRecord { client, logout }));
    }
    let extra: Vec<(&str, &str)> = query
        .server_id
        .as_deref()
        .map(|s| vec![("server_id", s)])
        .unwrap_or_default();
    Ok(listing("/admin/v1/clients", &page, &extra, items, next))
}

/// Register a client; the response carries its secret, shown only this once.
#[utoipa::path(post, path = "/admin/v1/clients", tag = "clients", request_body = NewClientBody,
    security(("admin_token" = ["portcullis.clients.manage"])),
    responses((status = 201, description = "Created, with `client_secret` for a confidential client",
        body = ClientView, headers(("Location" = String), ("ETag" = String)))))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewClientBody>,
) -> Result<Response, Problem> {
    caller.require(CLIENTS_MANAGE)?;
    let auth_method = body
        .token_endpoint_auth_method
        .as_deref()
        .map(|m| m.parse::<ClientAuthMethod>().map_err(Problem::invalid))
        .transpose()?;
    // Keys (jwks, jwks_uri) are not managed through the API yet: without them a private_key_jwt
    // client could never authenticate.
    if auth_method == Some(ClientAuthMethod::PrivateKeyJwt) {
        return Err(Problem::invalid(
            "private_key_jwt clients need their keys: register them with `portcullis client create --auth-method private_key_jwt --jwks-file …`",
        ));
    }
    let request = ClientRequest {
        server_id: body.server_id,
        name: body.name,
        grant_types: grants(&body.grant_types)?,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        scopes: scope_tokens(&body.scope),
        default_scopes: scope_tokens(&body.default_scope),
        public: body.public,
        first_party: body.first_party,
        auth_method,
    };
    let logout = LogoutChanges {
        backchannel_logout_uri: body.backchannel_logout_uri,
        backchannel_session_required: body.backchannel_logout_session_required,
        frontchannel_logout_uri: body.frontchannel_logout_uri,
        frontchannel_session_required: body.frontchannel_logout_session_required,
    };
    let (record, secret) =
        create_client(&state.store, request, logout, &caller.actor(), state.now()).await?;
    let mut view = ClientView::of(&record);
    let etag = etag_of(&view);
    view.client_secret = secret.map(|s| s.expose().to_string());
    let location = format!("/admin/v1/clients/{}", view.client_id);
    Ok(respond(&view, &etag, Some(&location)))
}

async fn load(state: &AppState, client_id: &str) -> Result<ClientView, Problem> {
    let record = ClientRecord::load(&state.store, client_id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no client `{client_id}`")))?;
    Ok(ClientView::of(&record))
}

/// One client.
#[utoipa::path(get, path = "/admin/v1/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path)),
    security(("admin_token" = ["portcullis.clients.read"])),
    responses((status = 200, description = "The client", body = ClientView,
        headers(("ETag" = String)))))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    PathId(client_id): PathId,
) -> Result<Response, Problem> {
    caller.require(CLIENTS_READ)?;
    Ok(resource(&load(&state, &client_id).await?, None))
}

/// Change a client (JSON Merge Patch) under the rules of `client create`.
#[utoipa::path(patch, path = "/admin/v1/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = ClientPatch, content_type = "application/merge-patch+json"),
    security(("admin_token" = ["portcullis.clients.manage"])),
    responses((status = 200, description = "The client as changed", body = ClientView,
        headers(("ETag" = String)))))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathId(client_id): PathId,
    if_match: IfMatch,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Response, Problem> {
    caller.require(CLIENTS_MANAGE)?;
    let current = load(&state, &client_id).await?;
    // The body is checked first: a malformed patch is a 400 whatever its precondition.
    let patch = patch_of::<ClientPatch>(&current, patch, READ_ONLY)?;
    if_match.check(Some(&etag_of(&current)))?;
    let changes = ClientChanges {
        name: patch.name,
        grant_types: patch.grant_types.as_deref().map(grants).transpose()?,
        redirect_uris: patch.redirect_uris,
        post_logout_redirect_uris: patch.post_logout_redirect_uris,
        scopes: patch.scope.as_deref().map(scope_tokens),
        default_scopes: patch.default_scope.as_deref().map(scope_tokens),
        first_party: patch.first_party,
        access_token_ttl: Some(patch.access_token_ttl),
        id_token_ttl: Some(patch.id_token_ttl),
        refresh_token_ttl: Some(patch.refresh_token_ttl),
        token_exchange_audiences: patch.token_exchange_audiences,
    };
    let logout = LogoutChanges {
        // A removed (null) URI is the CLI's `''`.
        backchannel_logout_uri: Some(patch.backchannel_logout_uri.unwrap_or_default()),
        backchannel_session_required: patch.backchannel_logout_session_required,
        frontchannel_logout_uri: Some(patch.frontchannel_logout_uri.unwrap_or_default()),
        frontchannel_session_required: patch.frontchannel_logout_session_required,
    };
    let record = change_client(
        &state.store,
        &client_id,
        changes,
        patch.assignment_required,
        logout,
        &caller.actor(),
        state.now(),
    )
    .await?;
    Ok(resource(&ClientView::of(&record), None))
}

/// Delete a client with its grants, codes and refresh tokens. Idempotent: `204` when it is
/// already gone (unless `If-Match` names a version).
#[utoipa::path(delete, path = "/admin/v1/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path), ("If-Match" = Option<String>, Header)),
    security(("admin_token" = ["portcullis.clients.manage"])),
    responses((status = 204, description = "Deleted, or there was no such client")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    PathId(client_id): PathId,
    if_match: IfMatch,
) -> Result<Response, Problem> {
    caller.require(CLIENTS_MANAGE)?;
    // The API's own key: deleting it would lock this caller out mid-script.
    if client_id == caller.client_id {
        return Err(Problem::new(
            ProblemKind::Conflict,
            "a client cannot delete itself through the API; use another admin client or the CLI",
        ));
    }
    let current = ClientRecord::load(&state.store, &client_id).await?;
    if_match.check(
        current
            .as_ref()
            .map(|r| etag_of(&ClientView::of(r)))
            .as_deref(),
    )?;
    if current.is_some() {
        delete_client(&state.store, &client_id, &caller.actor(), state.now()).await?;
    }
    Ok(no_content())
}

/// Give a confidential client a new secret (shown only in this response); the old one stops
/// working at once.
#[utoipa::path(post, path = "/admin/v1/clients/{client_id}/secret", tag = "clients",
    params(("client_id" = String, Path), ("If-Match" = Option<String>, Header)),
    security(("admin_token" = ["portcullis.clients.manage"])),
    responses((status = 200, description = "The client with its new `client_secret`",
        body = ClientView, headers(("ETag" = String)))))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    PathId(client_id): PathId,
    if_match: IfMatch,
) -> Result<Response, Problem> {
    caller.require(CLIENTS_MANAGE)?;
    let current = load(&state, &client_id).await?;
    if_match.check(Some(&etag_of(&current)))?;
    let (record, secret) =
        rotate_secret(&state.store, &client_id, &caller.actor(), state.now()).await?;
    let mut view = ClientView::of(&record);
    let etag = etag_of(&view);
    view.client_secret = Some(secret.expose().to_string());
    Ok(respond(&view, &etag, None))
}
