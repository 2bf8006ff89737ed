//! The OpenAPI 3.1 document of the management API, derived from the handlers' annotations and
//! their types (utoipa), so it cannot drift from what the routes do. The error responses every
//! route can give are added here, in one place, from the conventions they follow.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{audit_log, clients, groups, servers, user_access, users};
use super::{claims, policies, rules, scopes};
use crate::http::problem::ProblemBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis management API",
        version = "1",
        description = "Servers, clients, users, keys, sessions and the audit log of a Portcullis \
            deployment. Call it with an access token of the built-in `admin` authorization \
            server (issuer `{base}/oauth2/admin`) carrying the scope each operation names."
    ),
    paths(
        servers::list, servers::show, servers::update, servers::keys, servers::rotate_key,
        clients::list, clients::create, clients::show, clients::update, clients::delete,
        clients::rotate,
        users::list, users::create, users::show, users::update, users::delete,
        users::set_password, users::unlock, users::sessions, users::end_all_sessions,
        users::end_session,
        user_access::grants, user_access::revoke_all_grants, user_access::revoke_grant,
        user_access::consents, user_access::revoke_consent,
        user_access::factors, user_access::reset_factors, user_access::remove_factor,
        groups::list, groups::create, groups::show, groups::update, groups::delete,
        groups::add_member, groups::remove_member,
        audit_log::list,
        scopes::list, scopes::create, scopes::show, scopes::update, scopes::delete,
        claims::list, claims::create, claims::show, claims::update, claims::delete,
        policies::list, policies::create, policies::show, policies::update, policies::delete,
        rules::list, rules::create, rules::show, rules::update, rules::delete,
    ),
    components(schemas(ProblemBody)),
    modifiers(&Conventions),
    tags(
        (name = "servers", description = "Authorization servers and their token policy"),
        (name = "keys", description = "Signing keys of a server"),
        (name = "clients", description = "Clients and their secrets"),
        (name = "users", description = "Users: their sessions, grants, consents, second factors and passwords"),
        (name = "groups", description = "Groups of users and their members"),
        (name = "audit", description = "The audit log"),
        (name = "scopes", description = "Custom scopes of a server"),
        (name = "claims", description = "Custom claims of a server"),
        (name = "policies", description = "Access policies of a server, in evaluation order"),
        (name = "rules", description = "Rules of an access policy, in evaluation order"),
    )
)]
struct ApiDoc;

/// Adds the bearer security scheme and the problem responses of the API's conventions.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "admin_token",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some("An access token of the `admin` authorization server"))
                        .build(),
                ),
            );
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let has_id = path.contains('{');
            add_problems(item, has_id);
        }
    }
}

fn add_problems(item: &mut PathItem, has_id: bool) {
    let operations: [(&mut Option<Operation>, Method); 5] = [
        (&mut item.get, Method::Get),
        (&mut item.post, Method::Post),
        (&mut item.put, Method::Put),
        (&mut item.patch, Method::Patch),
        (&mut item.delete, Method::Delete),
    ];
    for (operation, method) in operations {
        let Some(operation) = operation.as_mut() else {
            continue;
        };
        // Handlers are named after what they do within their module (`list`, `show`, …): the
        // tag makes the operation id unique, as OpenAPI requires.
        if let (Some(tag), Some(id)) = (
            operation.tags.as_ref().and_then(|t| t.first()).cloned(),
            operation.operation_id.as_mut(),
        ) {
            *id = format!("{tag}_{id}");
        }
        let with_body = operation.request_body.is_some();
        let mut problems: Vec<(u16, &str)> = vec![
            (
                400,
                "Malformed request or values that break a rule of the resource",
            ),
            (
                401,
                "No access token, or not a live access token of the admin server",
            ),
            (403, "The access token lacks the scope this operation needs"),
            (500, "Internal error (logged)"),
            (503, "The database cannot be reached; retry"),
        ];
        if has_id {
            problems.push((404, "No such resource"));
        }
        if with_body {
            problems.push((413, "The body is larger than 64 KiB"));
            problems.push((415, "The body is not JSON"));
        }
        if matches!(
            method,
            Method::Post | Method::Patch | Method::Put | Method::Delete
        ) {
            problems.push((409, "The resource exists or changed meanwhile"));
        }
        if matches!(method, Method::Patch | Method::Delete) || has_id && method == Method::Post {
            problems.push((412, "If-Match names an ETag that is no longer current"));
        }
        for (status, description) in problems {
            operation
                .responses
                .responses
                .entry(status.to_string())
                .or_insert_with(|| RefOr::T(problem(description)));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

fn problem(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ProblemBody")))
                .build(),
        )
        .build()
}

/// The document as JSON, built once: it depends on nothing but the code.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    })
}

/// `GET /admin/v1/openapi.json`: public, like any API description.
pub async fn serve() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document(),
    )
        .into_response()
}
