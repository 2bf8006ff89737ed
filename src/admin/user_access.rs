//! `/admin/v1/users/{user_id}/grants`, `…/consents` and `…/factors`: what a user has given
//! clients, and their second factors, as an operator withdraws them (`manage::user_access`,
//! `manage::mfa`). Together with `DELETE …/sessions`, revoking every grant is "sign out
//! everywhere" down to the last refresh token.

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::caller::Caller;
use super::conventions::{listing, no_content, ok_json, Listing, Page, PageQuery, QueryOf};
use super::users::find;
use super::{PathId, PathIds};
use crate::http::problem::Problem;
use crate::manage::clients::RegistrationError as ManageError;
use crate::manage::mfa::{self, FactorSummary};
use crate::manage::user_access;
use crate::protocol::admin_scopes::{USERS_MANAGE, USERS_READ};
use crate::state::AppState;
use crate::store::{GrantKey, UserConsent, UserGrant};

/// A grant in force: what the user authorized a client to do, with the refresh tokens issued
/// under it.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantView {
    pub id: String,
    pub server_id: String,
    pub client_id: String,
    /// Space-separated.
    pub scope: String,
    pub grant_type: Option<String>,
    /// The sign-in session it was made in.
    pub sid: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl From<UserGrant> for GrantView {
    fn from(g: UserGrant) -> Self {
        Self {
            id: g.id,
            server_id: g.server_id,
            client_id: g.client_id,
            scope: g.scope,
            grant_type: g.grant_type,
            sid: g.session_sid,
            created_at: g.created_at,
            expires_at: g.expires_at,
        }
    }
}

/// Consent the user gave a client (remembered: the consent page is not shown again).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentView {
    pub server_id: String,
    pub client_id: String,
    /// Space-separated.
    pub scope: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<UserConsent> for ConsentView {
    fn from(c: UserConsent) -> Self {
        Self {
            server_id: c.server_id,
            client_id: c.client_id,
            scope: c.scope,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// How many grants were withdrawn.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedView {
    pub grants_revoked: u64,
}

/// The user's factors and recovery codes.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactorsView {
    pub items: Vec<FactorSummary>,
    pub recovery_codes_left: i64,
}

/// How many factors a reset removed (the recovery codes go with them).
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetView {
    pub factors_removed: u64,
}

/// The cursor of a grant list: its position (created_at, id), newest first.
fn grant_key(cursor: &str) -> Result<GrantKey, Problem> {
    let bad = || Problem::bad_request("cursor is not one this API gave");
    let (at, id) = cursor.split_once('.').ok_or_else(bad)?;
    Ok(GrantKey {
        created_at: at.parse().map_err(|_| bad())?,
        id: id.to_string(),
    })
}

/// The user's grants in force, newest first.
#[utoipa::path(get, path = "/admin/v1/users/{user_id}/grants", tag = "users",
    params(("user_id" = String, Path), PageQuery),
    security(("admin_token" = ["portcullis.users.read"])),
    responses((status = 200, description = "A page of grants", body = Listing<GrantView>)))]
pub async fn grants(
    State(state): State<AppState>,
    caller: Caller,
    PathId(user_id): PathId,
    QueryOf(query): QueryOf<PageQuery>,
) -> Result<Response, Problem> {
    caller.require(USERS_READ)?;
    let page = Page::from_query(&query)?;
    let after = page.after.as_deref().map(grant_key).transpose()?;
    let user = find(&state, &user_id).await?;
    let found = state
        .store
        .user_grants(
            &user.id,
            state.now(),
            after.as_ref(),
            page.store_page().sql_limit(),
        )
        .await?;
    let (found, next) = page.finish(found, |g| format!("{}.{}", g.created_at, g.id));
    let items = found.into_iter().map(GrantView::from).collect();
    let path = format!("/admin/v1/users/{user_id}/grants");
    Ok(listing(&path, &page, &[], items, next))
}

/// Withdraw every grant of the user with its refresh tokens (with `DELETE …/sessions`: sign out
/// everywhere).
#[utoipa::path(delete, path = "/admin/v1/users/{user_id}/grants", tag = "users",
    params(("user_id" = String, Path)),
    security(("admin_token" = ["portcullis.users.manage"])),
    responses((status = 200, description = "How many were withdrawn", body = RevokedView)))]
pub async fn revoke_all_grants(
    State(state): State<AppState>,
    caller: Caller,
    PathId(user_id): PathId,
) -> Result<Response, Problem> {
    caller.require(USERS_MANAGE)?;
    let user = find(&state, &user_id).await?;
    let grants_revoked =
        user_access::revoke_grants(&state.store, &user, None, &caller.actor(), state.now()).await?;
    Ok(ok_json(&RevokedView { grants_revoked }))
}

/// Withdraw one grant with its refresh tokens; its access tokens stop passing introspection and
/// /userinfo. Idempotent: `204` when it is not in force.
#[utoipa::path(delete, path = "/admin/v1/users/{user_id}/grants/{grant_id}", tag = "users",
    params(("user_id" = String, Path), ("grant_id" = String, Path)),
    security(("admin_token" = ["portcullis.users.manage"])),
    responses((status = 204, description = "Withdrawn, or not in force")))]
pub async fn revoke_grant(
    State(state): State<AppState>,
    caller: Caller,
    PathIds([user_id, grant_id]): PathIds,
) -> Result<Response, Problem> {
    caller.require(USERS_MANAGE)?;
    let user = find(&state, &user_id).await?;
    let done = user_access::revoke_grants(
        &state.store,
        &user,
        Some(&grant_id),
        &caller.actor(),
        state.now(),
    )
    .await;
    idempotent(done.map(|_| ()))
}

/// The consents the user remembers, by client id.
#[utoipa::path(get, path = "/admin/v1/users/{user_id}/consents", tag = "users",
    params(("user_id" = String, Path), PageQuery),
    security(("admin_token" = ["portcullis.users.read"])),
    responses((status = 200, description = "A page of consents", body = Listing<ConsentView>)))]
pub async fn consents(
    State(state): State<AppState>,
    caller: Caller,
    PathId(user_id): PathId,
    QueryOf(query): QueryOf<PageQuery>,
) -> Result<Response, Problem> {
    caller.require(USERS_READ)?;
    let page = Page::from_query(&query)?;
    let user = find(&state, &user_id).await?;
    let found = state
        .store
        .user_consents(&user.id, page.store_page())
        .await?;
    let (found, next) = page.finish(found, |c| c.client_id.clone());
    let items = found.into_iter().map(ConsentView::from).collect();
    let path = format!("/admin/v1/users/{user_id}/consents");
    Ok(listing(&path, &page, &[], items, next))
}

/// Revoke the user's consent to a client: the consent is forgotten (the next sign-in asks
/// again) and the client's grants of theirs are withdrawn with their refresh tokens.
/// Idempotent.
#[utoipa::path(delete, path = "/admin/v1/users/{user_id}/consents/{client_id}", tag = "users",
    params(("user_id" = String, Path), ("client_id" = String, Path)),
    security(("admin_token" = ["portcullis.users.manage"])),
    responses((status = 204, description = "Revoked, or there was none")))]
pub async fn revoke_consent(
    State(state): State<AppState>,
    caller: Caller,
    PathIds([user_id, client_id]): PathIds,
) -> Result<Response, Problem> {
    caller.require(USERS_MANAGE)?;
    let user = find(&state, &user_id).await?;
    user_access::revoke_consent(
        &state.store,
        &user,
        &client_id,
        &caller.actor(),
        state.now(),
    )
    .await?;
    Ok(no_content())
}

/// The user's second factors (authenticator apps and passkeys) and recovery codes left.
#[utoipa::path(get, path = "/admin/v1/users/{user_id}/factors", tag = "users",
    params(("user_id" = String, Path)),
    security(("admin_token" = ["portcullis.users.read"])),
    responses((status = 200, description = "The factors", body = FactorsView)))]
pub async fn factors(
    State(state): State<AppState>,
    caller: Caller,
    PathId(user_id): PathId,
) -> Result<Response, Problem> {
    caller.require(USERS_READ)?;
    let user = find(&state, &user_id).await?;
    let (items, recovery_codes_left) = mfa::factors(&state.store, &user).await?;
    Ok(ok_json(&FactorsView {
        items,
        recovery_codes_left,
    }))
}

/// Reset the user's second factors (a lost phone): every factor and recovery code goes; where
/// policy requires a factor, the next sign-in enrols a new one.
#[utoipa::path(delete, path = "/admin/v1/users/{user_id}/factors", tag = "users",
    params(("user_id" = String, Path)),
    security(("admin_token" = ["portcullis.users.manage"])),
    responses((status = 200, description = "How many factors were removed", body = ResetView)))]
pub async fn reset_factors(
    State(state): State<AppState>,
    caller: Caller,
    PathId(user_id): PathId,
) -> Result<Response, Problem> {
    caller.require(USERS_MANAGE)?;
    let user = find(&state, &user_id).await?;
    let factors_removed =
        mfa::reset(&state.store, &user, None, &caller.actor(), state.now()).await?;
    Ok(ok_json(&ResetView { factors_removed }))
}

/// Remove one factor. Idempotent: `204` when the user has no such factor.
#[utoipa::path(delete, path = "/admin/v1/users/{user_id}/factors/{factor_id}", tag = "users",
    params(("user_id" = String, Path), ("factor_id" = String, Path)),
    security(("admin_token" = ["portcullis.users.manage"])),
    responses((status = 204, description = "Removed, or there was none")))]
pub async fn remove_factor(
    State(state): State<AppState>,
    caller: Caller,
    PathIds([user_id, factor_id]): PathIds,
) -> Result<Response, Problem> {
    caller.require(USERS_MANAGE)?;
    let user = find(&state, &user_id).await?;
    let done = mfa::reset(
        &state.store,
        &user,
        Some(&factor_id),
        &caller.actor(),
        state.now(),
    )
    .await;
    idempotent(done.map(|_| ()))
}

/// A DELETE of something that may already be gone: `204` either way.
fn idempotent(done: Result<(), ManageError>) -> Result<Response, Problem> {
    match done {
        Ok(()) | Err(ManageError::NotFound(_)) => Ok(no_content()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_cursor_round_trips_and_garbage_is_refused() {
        let key = grant_key("1700000000.abc.def").unwrap();
        assert_eq!(key.created_at, 1_700_000_000);
        assert_eq!(key.id, "abc.def");
        assert!(grant_key("nodot").is_err());
        assert!(grant_key("x.abc").is_err());
    }
}
