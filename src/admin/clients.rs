//! `/admin/v1/clients`: register, read, change, delete clients and rotate their secrets, under
//! the rules of `portcullis client` (`manage::clients`).

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::conventions::{
    etag_of, listing, no_content, patch_of, resource, respond, IfMatch, JsonBody, Listing, Page,
    PageQuery, QueryOf,
};
use super::PathId;
use crate::http::problem::{Problem, ProblemKind};
use crate::manage::client_security::{
    change_client_security, check_security_changes, plan_client_security, set_client_mfa,
    SecurityChanges,
};
use crate::manage::clients::{
    change_client, create_client, delete_client, rotate_secret, ClientChanges, ClientRecord,
    ClientRequest,
};
use crate::manage::logout::LogoutChanges;
use crate::manage::Actor;
use crate::mfa::ClientMfa;
use crate::protocol::admin_scopes::{CLIENTS_MANAGE, CLIENTS_READ};
use crate::protocol::{ClientAuthMethod, GrantType};
use crate::state::AppState;
use crate::store::logout::ClientLogout;
use crate::store::ClientKey;

/// A client as the API shows it: never its secret (but once, on create and rotation).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub server_id: String,
    pub name: String,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt` (with `jwks` or
    /// `jwks_uri`), or `none` (public clients). Moving from `private_key_jwt` to a secret
    /// method gives the client a new secret, shown in that response only.
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
    /// Its public keys (a JWK Set), for private_key_jwt and signed request objects; or
    /// `jwks_uri`, not both.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    /// Where it publishes its JWK Set (https; http on loopback only).
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
            jwks: c
                .security
                .jwks
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok()),
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
    /// client_secret_basic (default), client_secret_post or private_key_jwt (with `jwks` or
    /// `jwks_uri`); `none` for public clients.
    pub token_endpoint_auth_method: Option<String>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: Option<bool>,
    pub frontchannel_logout_uri: Option<String>,
    pub frontchannel_logout_session_required: Option<bool>,
    /// default (the server's policy), off, optional or required.
    pub mfa: Option<String>,
    /// A JWK Set of its public signing keys.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Map<String, Value>>,
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub require_dpop: bool,
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    #[serde(default)]
    pub require_signed_request_object: bool,
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
    pub token_endpoint_auth_method: Option<String>,
    pub mfa: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Map<String, Value>>,
    pub jwks_uri: Option<String>,
    pub require_dpop: Option<bool>,
    pub require_pushed_authorization_requests: Option<bool>,
    pub require_signed_request_object: Option<bool>,
}

const READ_ONLY: &[&str] = &[
    "client_id",
    "server_id",
    "public",
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

/// List clients, of one server or of all, by server, name and id.
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
    // The cursor is the last client's position (server, name, id), so a page goes on where
    // the previous one ended even if that client has since been deleted.
    let after = match &page.after {
        None => None,
        Some(key) => Some(
            serde_json::from_str::<ClientKey>(key)
                .map_err(|_| Problem::bad_request("cursor is not one this API gave"))?,
        ),
    };
    let found = state
        .store
        .clients_after(
            query.server_id.as_deref(),
            after.as_ref(),
            page.store_page().sql_limit(),
        )
        .await?;
    let (clients, next) = page.finish(found, |c| {
        serde_json::json!({"server_id": c.server_id, "name": c.name, "id": c.id}).to_string()
    });
    let ids: Vec<&str> = clients.iter().map(|c| c.id.as_str()).collect();
    let mut logouts = state.store.client_logouts(&ids).await?;
    let items = clients
        .into_iter()
        .map(|client| {
            let logout = logouts
                .remove(&client.id)
                .unwrap_or_else(ClientLogout::unregistered);
            ClientView::of(&ClientRecord { client, logout })
        })
        .collect();
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
    let mfa = body.mfa.as_deref().map(mfa_of).transpose()?;
    let security = SecurityChanges {
        jwks: body.jwks.clone().map(|k| Value::Object(k).to_string()),
        jwks_uri: body.jwks_uri.clone(),
        require_dpop: Some(body.require_dpop),
        require_par: Some(body.require_pushed_authorization_requests),
        require_signed_request_object: Some(body.require_signed_request_object),
    };
    // Every rule of the keys and requirements is checked before the client is stored.
    check_security_changes(&security)?;
    let has_keys = body.jwks.is_some() || body.jwks_uri.is_some();
    if auth_method == Some(ClientAuthMethod::PrivateKeyJwt) && !has_keys {
        return Err(Problem::invalid(
            "private_key_jwt needs the client's keys: `jwks` or `jwks_uri`",
        ));
    }
    if body.require_signed_request_object && !has_keys {
        return Err(Problem::invalid(
            "require_signed_request_object needs the client's keys: `jwks` or `jwks_uri`",
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
    let actor = caller.actor();
    let now = state.now();
    let (mut record, secret) = create_client(&state.store, request, logout, &actor, now).await?;
    let finished = finish_create(&state, &mut record, mfa, security, &actor).await;
    if let Err(e) = finished {
        // Nothing half made stays: the client goes again.
        delete_client(&state.store, &record.client.id, &actor, now).await?;
        return Err(e);
    }
    let mut view = ClientView::of(&record);
    let etag = etag_of(&view);
    view.client_secret = secret.map(|s| s.expose().to_string());
    let location = format!("/admin/v1/clients/{}", view.client_id);
    Ok(respond(&view, &etag, Some(&location)))
}

/// The parts of a new client `create_client` does not take: its second-factor policy, keys
/// and requirements.
async fn finish_create(
    state: &AppState,
    record: &mut ClientRecord,
    mfa: Option<ClientMfa>,
    security: SecurityChanges,
    actor: &Actor,
) -> Result<(), Problem> {
    let now = state.now();
    if let Some(mfa) = mfa {
        set_client_mfa(&state.store, &mut record.client, mfa, actor, now).await?;
    }
    let (client, _) =
        change_client_security(&state.store, &record.client, None, security, actor, now).await?;
    record.client = client;
    Ok(())
}

fn mfa_of(value: &str) -> Result<ClientMfa, Problem> {
    ClientMfa::parse(value).ok_or_else(|| {
        Problem::invalid(format!(
            "mfa `{value}` is not one of default, off, optional, required"
        ))
    })
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

/// Change a client (JSON Merge Patch) under the rules of `client create`. A change from
/// `private_key_jwt` to a secret method returns the new `client_secret`, this once.
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
    if_match
        .guard(&state, &format!("client:{client_id}"), || async {
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
            let auth_method = patch
                .token_endpoint_auth_method
                .as_deref()
                .map(|m| m.parse::<ClientAuthMethod>().map_err(Problem::invalid))
                .transpose()?;
            let mfa = patch.mfa.as_deref().map(mfa_of).transpose()?;
            let security = SecurityChanges {
                // Only what the patch changes (the stored set is not rewritten in another
                // key order); a removed (null) key set or URI is the CLI's `''`.
                jwks: (patch.jwks.clone().map(Value::Object) != current.jwks).then(|| {
                    patch
                        .jwks
                        .clone()
                        .map(|k| Value::Object(k).to_string())
                        .unwrap_or_default()
                }),
                jwks_uri: (patch.jwks_uri != current.jwks_uri)
                    .then(|| patch.jwks_uri.clone().unwrap_or_default()),
                require_dpop: patch.require_dpop,
                require_par: patch.require_pushed_authorization_requests,
                require_signed_request_object: patch.require_signed_request_object,
            };
            // The keys and requirements are checked as a whole first, so a refused patch
            // changes nothing.
            let stored = state
                .store
                .client(&client_id)
                .await?
                .ok_or_else(|| Problem::not_found(format!("no client `{client_id}`")))?;
            plan_client_security(&stored, auth_method, security.clone())?;
            let actor = caller.actor();
            let now = state.now();
            let mut record = change_client(
                &state.store,
                &client_id,
                changes,
                patch.assignment_required,
                logout,
                &actor,
                now,
            )
            .await?;
            if let Some(mfa) = mfa {
                set_client_mfa(&state.store, &mut record.client, mfa, &actor, now).await?;
            }
            let (client, secret) = change_client_security(
                &state.store,
                &record.client,
                auth_method,
                security,
                &actor,
                now,
            )
            .await?;
            record.client = client;
            let mut view = ClientView::of(&record);
            let etag = etag_of(&view);
            view.client_secret = secret.map(|s| s.expose().to_string());
            Ok(respond(&view, &etag, None))
        })
        .await
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
    if_match
        .guard(&state, &format!("client:{client_id}"), || async {
            if if_match.is_present() {
                let current = ClientRecord::load(&state.store, &client_id).await?;
                if_match.check(
                    current
                        .as_ref()
                        .map(|r| etag_of(&ClientView::of(r)))
                        .as_deref(),
                )?;
            }
            // Nothing to delete is fine: DELETE is idempotent.
            delete_client(&state.store, &client_id, &caller.actor(), state.now()).await?;
            Ok(no_content())
        })
        .await
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
    if_match
        .guard(&state, &format!("client:{client_id}"), || async {
            let current = load(&state, &client_id).await?;
            if_match.check(Some(&etag_of(&current)))?;
            let (record, secret) =
                rotate_secret(&state.store, &client_id, &caller.actor(), state.now()).await?;
            let mut view = ClientView::of(&record);
            let etag = etag_of(&view);
            view.client_secret = Some(secret.expose().to_string());
            Ok(respond(&view, &etag, None))
        })
        .await
}
