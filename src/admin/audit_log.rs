//! `/admin/v1/audit-events`: the audit log, newest first, with the filters of
//! `portcullis audit`, paged by a keyset cursor so a page never repeats or skips an event.

use axum::extract::State;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::conventions::{listing, Listing, Page, QueryOf, DEFAULT_LIMIT, MAX_LIMIT};
use crate::audit::Kind;
use crate::http::problem::Problem;
use crate::protocol::admin_scopes::AUDIT_READ;
use crate::state::AppState;
use crate::store::AuditFilter;

/// An audit event: ids, never a secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub server_id: Option<String>,
    /// sign_in, token_issued, client_created, …
    pub kind: String,
    /// `cli`, `client:{id}`, `ip:{address}`, …
    pub actor: Option<String>,
    pub subject: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Value,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events of this authorization server.
    pub server_id: Option<String>,
    /// Only events of this kind.
    pub kind: Option<String>,
    /// Only events at or after this time (Unix seconds).
    pub since: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/admin/v1/audit-events", tag = "audit", params(AuditQuery),
    security(("admin_token" = ["portcullis.audit.read"])),
    responses((status = 200, description = "A page of events, newest first",
        body = Listing<AuditEventView>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryOf(query): QueryOf<AuditQuery>,
) -> Result<Response, Problem> {
    caller.require(AUDIT_READ)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::bad_request(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )));
    }
    if let Some(kind) = &query.kind {
        if Kind::parse(kind).is_none() {
            return Err(Problem::bad_request(format!("unknown event kind `{kind}`")));
        }
    }
    let before = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let filter = AuditFilter {
        server_id: query.server_id.clone(),
        kind: query.kind.clone(),
        since: query.since,
        limit: limit as i64 + 1,
    };
    let mut events = state.store.audit_events_before(&filter, before).await?;
    let next = if events.len() > limit {
        events.truncate(limit);
        events.last().map(|e| cursor_of(e.at, e.id))
    } else {
        None
    };
    let items = events
        .into_iter()
        .map(|e| AuditEventView {
            id: e.id,
            at: e.at,
            server_id: e.server_id,
            kind: e.kind,
            actor: e.actor,
            subject: e.subject,
            detail: serde_json::from_str(&e.detail).unwrap_or(Value::Object(Default::default())),
        })
        .collect();
    let mut extra = Vec::new();
    let since = query.since.map(|s| s.to_string());
    if let Some(server) = &query.server_id {
        extra.push(("server_id", server.as_str()));
    }
    if let Some(kind) = &query.kind {
        extra.push(("kind", kind.as_str()));
    }
    if let Some(since) = &since {
        extra.push(("since", since.as_str()));
    }
    let page = Page { limit, after: None };
    Ok(listing(
        "/admin/v1/audit-events",
        &page,
        &extra,
        items,
        next,
    ))
}

fn cursor_of(at: i64, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{at}:{id}"))
}

fn parse_cursor(cursor: &str) -> Result<(i64, i64), Problem> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            let (at, id) = text.split_once(':')?;
            Some((at.parse().ok()?, id.parse().ok()?))
        })
        .ok_or_else(|| Problem::bad_request("cursor is not one this API gave"))
}
