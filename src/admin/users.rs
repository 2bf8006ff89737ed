//! `/admin/v1/users`: create, read, change (claims, attributes, disabled), unlock, set the
//! password of, sign out and delete users, under the rules of `portcullis user`
//! (`manage::users`).

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::caller::Caller;
use super::conventions::{
    etag_of, listing, no_content, patch_of, resource, IfMatch, JsonBody, Listing, Page, PageQuery,
    QueryOf,
};
use super::{PathId, PathIds};
use crate::http::problem::Problem;
use crate::manage::users::{self, UserRequest};
use crate::protocol::admin_scopes::{USERS_MANAGE, USERS_READ};
use crate::security::Secret;
use crate::state::AppState;
use crate::store::User;

/// Passwords are hashed with argon2id whatever their length; this only bounds the work a
/// request can ask for.
const MAX_PASSWORD_BYTES: usize = 1024;

/// A user as the API shows it: never the password or its hash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    /// The `sub` of their tokens.
    pub id: String,
    pub username: String,
    pub disabled: bool,
    pub has_password: bool,
    /// Standard claims (OIDC Core §5.1); `address` is an object.
    #[schema(value_type = Object)]
    pub claims: Map<String, Value>,
    /// Custom attributes, released by attribute claims.
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    pub failed_logins: i64,
    /// Locked out by failed sign-ins until then (Unix seconds).
    pub locked_until: Option<i64>,
    pub password_changed_at: Option<i64>,
    /// The names of their groups.
    pub groups: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

async fn view(state: &AppState, user: &User) -> Result<UserView, Problem> {
    let groups = state.store.groups_of_user(&user.id).await?;
    Ok(view_of(user, groups.into_iter().map(|g| g.name).collect()))
}

fn view_of(user: &User, groups: Vec<String>) -> UserView {
    UserView {
        id: user.id.clone(),
        username: user.username.clone(),
        disabled: user.disabled,
        has_password: user.has_password(),
        claims: user.claims.clone(),
        attributes: user.attributes.clone(),
        failed_logins: user.failed_logins,
        locked_until: user.locked_until,
        password_changed_at: user.password_changed_at,
        groups,
        created_at: user.created_at,
        updated_at: user.updated_at,
    }
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    /// 1 to 128 characters, trimmed; compared case-sensitively.
    pub username: String,
    /// Without one the user cannot sign in until a password is set.
    pub password: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub claims: Map<String, Value>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

/// What a PATCH may change (JSON Merge Patch: `claims` and `attributes` merge member by member,
/// `null` removes one). A new `email` or `phone_number` is unverified unless its `*_verified`
/// comes with it. Disabling revokes the user's grants, refresh tokens and sessions.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// `null` removes every claim.
    #[schema(value_type = Option<Object>)]
    pub claims: Option<Map<String, Value>>,
    /// `null` removes every attribute.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
    pub disabled: Option<bool>,
}

const READ_ONLY: &[&str] = &[
    "id",
    "username",
    "has_password",
    "failed_logins",
    "locked_until",
    "password_changed_at",
    "groups",
    "created_at",
    "updated_at",
];

/// A new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    pub password: String,
}

/// A live browser session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// The `sid` of its ID tokens.
    pub sid: String,
    pub server_id: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// What signing out did.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedOutView {
    pub sessions_ended: usize,
    /// Back-channel logout tokens queued for the clients of those sessions.
    pub backchannel_logouts_queued: usize,
}

pub(super) async fn find(state: &AppState, user_id: &str) -> Result<User, Problem> {
    state
        .store
        .user(user_id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no user `{user_id}`")))
}

async fn hash(state: &AppState, password: &str) -> Result<String, Problem> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(Problem::invalid(format!(
            "the password must be 1 to {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    state
        .passwords
        .hash(&Secret::new(password))
        .await
        .map_err(Problem::internal)
}

/// List users, by id.
#[utoipa::path(get, path = "/admin/v1/users", tag = "users", params(PageQuery),
    security(("admin_token" = ["portcullis.users.read"])),
    responses((status = 200, description = "A page of users", body = Listing<UserView>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryOf(query): QueryOf<PageQuery>,
) -> Result<Response, Problem> {
    caller.require(USERS_READ)?;
    let page = Page::from_query(&query)?;
    let found = state.store.list_users(page.store_page()).await?;
    let (found, next) = page.finish(found, |u| u.username.clone());
    let ids: Vec<&str> = found.iter().map(|u| u.id.as_str()).collect();
    let mut groups = state.store.group_names_of_users(&ids).await?;
    let items = found
        .iter()
        .map(|user| view_of(user, groups.remove(&user.id).unwrap_or_default()))
        .collect();
    Ok(listing("/admin/v1/users", &page, &[], items, next))
}

/// Create a user.
#[utoipa::path(post, path = "/admin/v1/users", tag = "users", request_body = NewUserBody,
    security(("admin_token" = ["portcullis.users.manage"])),
    responses((status = 201, description = "Created", body = UserView,
        headers(("Location" = String), ("ETag" = String)))))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewUserBody>,
) -> Result<Response, Problem> {
    caller.require(USERS_MANAGE)?;
    // Every rule but the password's is checked before the (deliberately slow) hash.
    users::check_claims(&body.claims)?;
    users::check_attributes(&body.attributes)?;
    let password_hash = match &body.password {
        Some(password) => Some(hash(&state, password).await?),
        None => None,
    };
    let request = UserRequest {
        username: body.username,
        password_hash,
        claims: body.claims,
        attributes: body.attributes,
    };
    let user = users::create_user(&state.store, request, &caller.actor(), state.now()).await?;
    let location = format!("/admin/v1/users/{}", user.id);
    Ok(resource(&view(&state, &user).await?, Some(&location)))
}

/// One user.
#[utoipa::path(get, path = "/admin/v1/users/{user_id}", tag = "users",
    params(("user_id" = String, Path)),
    security(("admin_token" = ["portcullis.users.read"])),
    responses((status = 200, description = "The user", body = UserView,
        headers(("ETag" = String)))))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    PathId(user_id): PathId,
) -> Result<Response, Problem> {
    caller.require(USERS_READ)?;
    let user = find(&state, &user_id).await?;
    Ok(resource(&view(&state, &user).await?, None))
}

/// Change a user's claims, attributes or disabled state (JSON Merge Patch).
#[utoipa::path(patch, path = "/admin/v1/users/{user_id}", tag = "users",
    params(("user_id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = UserPatch, content_type = "application/merge-patch+json"),
    security(("admin_token" = ["portcullis.users.manage"])),
    responses((status = 200, description = "The user as changed", body = UserView,
        headers(("ETag" = String)))))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathId(user_id): PathId,
    if_match: IfMatch,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Response, Problem> {
    caller.require(USERS_MANAGE)?;
    if_match
        .guard(&state, &format!("user:{user_id}"), || async {
            let user = find(&state, &user_id).await?;
            let current = view(&state, &user).await?;
            let given_claims = patch.get("claims").cloned();
            let patched: UserPatch = patch_of(&current, patch, READ_ONLY)?;
            let mut claims = patched.claims.unwrap_or_default();
            let attributes = patched.attributes.unwrap_or_default();
            if_match.check(Some(&etag_of(&current)))?;
            // A new address or phone number is unverified unless the patch vouches for it.
            if let Some(Value::Object(given)) = &given_claims {
                for (value, flag) in [
                    ("email", "email_verified"),
                    ("phone_number", "phone_number_verified"),
                ] {
                    match given.get(value) {
                        Some(Value::Null) => {
                            claims.remove(flag);
                        }
                        Some(_) if !given.contains_key(flag) => {
                            claims.insert(flag.into(), Value::Bool(false));
                        }
                        _ => {}
                    }
                }
            }
            let now = state.now();
            let actor = caller.actor();
            let mut user =
                users::update_profile(&state.store, &user, claims, attributes, &actor, now).await?;
            if let Some(disabled) = patched.disabled.filter(|d| *d != user.disabled) {
                user = users::set_disabled(&state.store, &user, disabled, &actor, now).await?;
            }
            Ok(resource(&view(&state, &user).await?, None))
        })
        .await
}

/// Delete a user with their grants, tokens, sessions and consents (their sessions' clients
/// are told by back-channel logout). Idempotent.
#[utoipa::path(delete, path = "/admin/v1/users/{user_id}", tag = "users",
    params(("user_id" = String, Path), ("If-Match" = Option<String>, Header)),
    security(("admin_token" = ["portcullis.users.manage"])),
    responses((status = 204, description = "Deleted, or there was no such user")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    PathId(user_id): PathId,
    if_match: IfMatch,
) -> Result<Response, Problem> {
    caller.require(USERS_MANAGE)?;
    if_match
        .guard(&state, &format!("user:{user_id}"), || async {
            let user = state.store.user(&user_id).await?;
            if if_match.is_present() {
                let current = match &user {
                    Some(user) => Some(etag_of(&view(&state, user).await?)),
                    None => None,
                };
                if_match.check(current.as_deref())?;
            }
            if let Some(user) = user {
                users::delete_user(&state.store, &user, &caller.actor(), state.now()).await?;
            }
            Ok(no_content())
        })
        .await
}

/// Set a user's password: revokes their grants and sessions and clears a lockout.
#[utoipa::path(put, path = "/admin/v1/users/{user_id}/password", tag = "users",
    params(("user_id" = String, Path)), request_body = PasswordBody,
    security(("admin_token" = ["portcullis.users.manage"])),
    responses((status = 200, description = "The user", body = UserView,
        headers(("ETag" = String)))))]
pub async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    PathId(user_id): PathId,
    JsonBody(body): JsonBody<PasswordBody>,
) -> Result<Response, Problem> {
    caller.require(USERS_MANAGE)?;
    let user = find(&state, &user_id).await?;
    let hashed = hash(&state, &body.password).await?;
    let user =
        users::set_password(&state.store, &user, &hashed, &caller.actor(), state.now()).await?;
    Ok(resource(&view(&state, &user).await?, None))
}

/// Clear a lockout after failed sign-ins.
#[utoipa::path(post, path = "/admin/v1/users/{user_id}/unlock", tag = "users",
    params(("user_id" = String, Path)),
    security(("admin_token" = ["portcullis.users.manage"])),
    responses((status = 200, description = "The user", body = UserView,
        headers(("ETag" = String)))))]
pub async fn unlock(
    State(state): State<AppState>,
    caller: Caller,
    PathId(user_id): PathId,
) -> Result<Response, Problem> {
    caller.require(USERS_MANAGE)?;
    let user = find(&state, &user_id).await?;
    let user = users::unlock(&state.store, &user, &caller.actor(), state.now()).await?;
    Ok(resource(&view(&state, &user).await?, None))
}

/// A user's live sessions, by session id.
#[utoipa::path(get, path = "/admin/v1/users/{user_id}/sessions", tag = "users",
    params(("user_id" = String, Path), PageQuery),
    security(("admin_token" = ["portcullis.users.read"])),
    responses((status = 200, description = "A page of live sessions", body = Listing<SessionView>)))]
pub async fn sessions(
    State(state): State<AppState>,
    caller: Caller,
    PathId(user_id): PathId,
    QueryOf(query): QueryOf<PageQuery>,
) -> Result<Response, Problem> {
    caller.require(USERS_READ)?;
    let page = Page::from_query(&query)?;
    let user = find(&state, &user_id).await?;
    let live = state.store.live_sessions_of(&user.id, state.now()).await?;
    let (live, next) = page.cut(live, |s| s.sid.as_str());
    let items = live
        .into_iter()
        .map(|s| SessionView {
            sid: s.sid,
            server_id: s.server_id,
            auth_time: s.auth_time,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
        })
        .collect();
    let path = format!("/admin/v1/users/{user_id}/sessions");
    Ok(listing(&path, &page, &[], items, next))
}

/// Sign the user out everywhere: every live session ends and its clients are told by
/// back-channel logout.
#[utoipa::path(delete, path = "/admin/v1/users/{user_id}/sessions", tag = "users",
    params(("user_id" = String, Path)),
    security(("admin_token" = ["portcullis.users.manage"])),
    responses((status = 200, description = "What was ended", body = SignedOutView)))]
pub async fn end_all_sessions(
    State(state): State<AppState>,
    caller: Caller,
    PathId(user_id): PathId,
) -> Result<Response, Problem> {
    caller.require(USERS_MANAGE)?;
    let user = find(&state, &user_id).await?;
    let out = users::end_sessions(&state.store, &user, None, &caller.actor(), state.now()).await?;
    Ok(signed_out(out))
}

/// End one live session. Idempotent: `204` when it is no longer live.
#[utoipa::path(delete, path = "/admin/v1/users/{user_id}/sessions/{sid}", tag = "users",
    params(("user_id" = String, Path), ("sid" = String, Path)),
    security(("admin_token" = ["portcullis.users.manage"])),
    responses((status = 204, description = "Ended, or not live")))]
pub async fn end_session(
    State(state): State<AppState>,
    caller: Caller,
    PathIds(ids): PathIds,
) -> Result<Response, Problem> {
    caller.require(USERS_MANAGE)?;
    let [user_id, sid] = ids;
    let user = find(&state, &user_id).await?;
    match users::end_sessions(
        &state.store,
        &user,
        Some(&sid),
        &caller.actor(),
        state.now(),
    )
    .await
    {
        Ok(_) | Err(crate::manage::clients::RegistrationError::NotFound(_)) => Ok(no_content()),
        Err(e) => Err(e.into()),
    }
}

fn signed_out(out: users::SignedOut) -> Response {
    resource(
        &SignedOutView {
            sessions_ended: out.sessions_ended,
            backchannel_logouts_queued: out.backchannel_logouts_queued,
        },
        None,
    )
}
