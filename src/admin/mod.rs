//! The management API (`/admin/v1/`): servers, clients, users, keys, sessions and the audit log
//! over HTTP, for automation, under the same rules as the CLI (both call `manage/`). Only access
//! tokens of the built-in `admin` server open it, each route asking for one scope
//! (`protocol::admin_scopes`). Errors are RFC 9457 problems; the OpenAPI 3.1 document at
//! `/admin/v1/openapi.json` is generated from these handlers and their types.

mod audit_log;
mod caller;
mod claims;
mod clients;
mod conventions;
mod groups;
mod nested;
mod openapi;
mod policies;
mod rules;
mod scopes;
mod servers;
mod user_access;
mod users;

use axum::extract::{DefaultBodyLimit, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use axum::Router;

use crate::http::problem::Problem;
use crate::state::AppState;

pub use self::openapi::document;
pub use crate::http::problem::{ProblemBody, ProblemKind, TYPE_PREFIX};

/// The routes, to be nested at `/admin/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi::serve))
        .route("/servers", get(servers::list))
        .route(
            "/servers/{server_id}",
            get(servers::show).patch(servers::update),
        )
        .route("/servers/{server_id}/keys", get(servers::keys))
        .route(
            "/servers/{server_id}/keys/rotation",
            post(servers::rotate_key),
        )
        .route("/clients", get(clients::list).post(clients::create))
        .route(
            "/clients/{client_id}",
            get(clients::show)
                .patch(clients::update)
                .delete(clients::delete),
        )
        .route("/clients/{client_id}/secret", post(clients::rotate))
        .route("/users", get(users::list).post(users::create))
        .route(
            "/users/{user_id}",
            get(users::show).patch(users::update).delete(users::delete),
        )
        .route("/users/{user_id}/password", put(users::set_password))
        .route("/users/{user_id}/unlock", post(users::unlock))
        .route(
            "/users/{user_id}/sessions",
            get(users::sessions).delete(users::end_all_sessions),
        )
        .route(
            "/users/{user_id}/sessions/{sid}",
            axum::routing::delete(users::end_session),
        )
        .route(
            "/users/{user_id}/grants",
            get(user_access::grants).delete(user_access::revoke_all_grants),
        )
        .route(
            "/users/{user_id}/grants/{grant_id}",
            axum::routing::delete(user_access::revoke_grant),
        )
        .route("/users/{user_id}/consents", get(user_access::consents))
        .route(
            "/users/{user_id}/consents/{client_id}",
            axum::routing::delete(user_access::revoke_consent),
        )
        .route(
            "/users/{user_id}/factors",
            get(user_access::factors).delete(user_access::reset_factors),
        )
        .route(
            "/users/{user_id}/factors/{factor_id}",
            axum::routing::delete(user_access::remove_factor),
        )
        .route("/groups", get(groups::list).post(groups::create))
        .route(
            "/groups/{group_id}",
            get(groups::show)
                .patch(groups::update)
                .delete(groups::delete),
        )
        .route(
            "/groups/{group_id}/members/{user_id}",
            put(groups::add_member).delete(groups::remove_member),
        )
        .route("/audit-events", get(audit_log::list))
        .route(
            "/servers/{server_id}/scopes",
            get(scopes::list).post(scopes::create),
        )
        .route(
            "/servers/{server_id}/scopes/{name}",
            get(scopes::show)
                .patch(scopes::update)
                .delete(scopes::delete),
        )
        .route(
            "/servers/{server_id}/claims",
            get(claims::list).post(claims::create),
        )
        .route(
            "/servers/{server_id}/claims/{name}",
            get(claims::show)
                .patch(claims::update)
                .delete(claims::delete),
        )
        .route(
            "/servers/{server_id}/policies",
            get(policies::list).post(policies::create),
        )
        .route(
            "/servers/{server_id}/policies/{policy_id}",
            get(policies::show)
                .patch(policies::update)
                .delete(policies::delete),
        )
        .route(
            "/servers/{server_id}/policies/{policy_id}/rules",
            get(rules::list).post(rules::create),
        )
        .route(
            "/servers/{server_id}/policies/{policy_id}/rules/{rule_id}",
            get(rules::show).patch(rules::update).delete(rules::delete),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(conventions::MAX_BODY_BYTES))
}

async fn not_found() -> Problem {
    Problem::not_found("no such route in the management API (see /admin/v1/openapi.json)")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        ProblemKind::MethodNotAllowed,
        "this route does not take that method (see /admin/v1/openapi.json)",
    )
}

/// The one path parameter of a route (an id), percent-decoded. A path that does not decode
/// names no resource: 404, as a problem.
pub struct PathId(pub String);

impl FromRequestParts<AppState> for PathId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let [id] = path_params::<1>(parts, state).await?;
        Ok(PathId(id))
    }
}

/// The two path parameters of a route, in order.
pub struct PathIds(pub [String; 2]);

impl FromRequestParts<AppState> for PathIds {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        Ok(PathIds(path_params::<2>(parts, state).await?))
    }
}

/// The three path parameters of a route, in order.
pub struct PathIds3(pub [String; 3]);

impl FromRequestParts<AppState> for PathIds3 {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        Ok(PathIds3(path_params::<3>(parts, state).await?))
    }
}

async fn path_params<const N: usize>(
    parts: &mut Parts,
    state: &AppState,
) -> Result<[String; N], Problem> {
    let no_such = || Problem::not_found("no such resource");
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| no_such())?;
    let values: Vec<String> = params.iter().map(|(_, v)| v.to_string()).collect();
    // Ids are printable: a control character (a decoded %00 above all, which PostgreSQL cannot
    // even compare) names nothing and never reaches a query.
    if values
        .iter()
        .any(|v| v.is_empty() || v.len() > 512 || v.chars().any(char::is_control))
    {
        return Err(no_such());
    }
    values.try_into().map_err(|_| no_such())
}
