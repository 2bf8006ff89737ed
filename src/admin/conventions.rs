//! The management API's HTTP conventions, in one place: JSON bodies (JSON Merge Patch for
//! PATCH, RFC 7396), strong `ETag`s and `If-Match` (RFC 9110 §8.8.3, §13.1.1), opaque cursor
//! pagination with `Link: <…>; rel="next"` (RFC 8288), `201 Created` with `Location`, and `204`.

use std::future::Future;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawQuery, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::http::problem::{Problem, ProblemKind};
use crate::security::random_token;
use crate::state::AppState;

/// Request bodies of the API are small JSON objects.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The largest page; the default is `DEFAULT_LIMIT`.
pub const MAX_LIMIT: usize = 200;
pub const DEFAULT_LIMIT: usize = 50;

/// A JSON request body: `application/json` (or, for PATCH, `application/merge-patch+json`),
/// at most `MAX_BODY_BYTES`, parsed into `T`; every failure a problem, never axum's plain text.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| v == "application/json" || v == "application/merge-patch+json");
        if !is_json {
            return Err(Problem::new(
                ProblemKind::UnsupportedMediaType,
                "send a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|_| {
            Problem::new(
                ProblemKind::PayloadTooLarge,
                format!("the body must be at most {MAX_BODY_BYTES} bytes"),
            )
        })?;
        if bytes.len() > MAX_BODY_BYTES {
            return Err(Problem::new(
                ProblemKind::PayloadTooLarge,
                format!("the body must be at most {MAX_BODY_BYTES} bytes"),
            ));
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            Problem::bad_request(format!("the body is not what this route takes: {e}"))
        })
    }
}

/// RFC 7396: apply a merge patch to a JSON object. `null` removes a member; an object merges
/// into an object; anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(patch) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(target) = target {
                for (key, value) in patch {
                    if value.is_null() {
                        target.remove(key);
                    } else {
                        merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// The resource's writable fields after applying a JSON Merge Patch (RFC 7396) to its current
/// representation. A read-only field may appear only with its current value.
pub fn patch_of<T: serde::de::DeserializeOwned>(
    current: &impl Serialize,
    patch: Value,
    read_only: &[&str],
) -> Result<T, Problem> {
    let Value::Object(patch) = patch else {
        return Err(Problem::bad_request("a merge patch must be a JSON object"));
    };
    let mut document =
        serde_json::to_value(current).map_err(|e| Problem::internal(format!("encode: {e}")))?;
    // A member the resource does not have is a mistake even as `null` (which RFC 7396 would
    // otherwise read as "remove nothing").
    if let Some(unknown) = patch.keys().find(|k| document.get(k.as_str()).is_none()) {
        return Err(Problem::bad_request(format!(
            "`{unknown}` is not a field of this resource"
        )));
    }
    for field in read_only {
        if let Some(given) = patch.get(*field) {
            if document.get(*field) != Some(given) {
                return Err(Problem::invalid(format!("`{field}` is read-only")));
            }
        }
        if let Value::Object(map) = &mut document {
            map.remove(*field);
        }
    }
    let writable: serde_json::Map<String, Value> = patch
        .into_iter()
        .filter(|(k, _)| !read_only.contains(&k.as_str()))
        .collect();
    merge_patch(&mut document, &Value::Object(writable));
    serde_json::from_value(document)
        .map_err(|e| Problem::bad_request(format!("the patched resource is not valid: {e}")))
}

/// A strong entity tag of a resource's representation: any change to what a GET shows changes
/// it.
pub fn etag_of(value: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..18]))
}

/// The `If-Match` precondition of a PATCH or DELETE, if one was sent.
pub struct IfMatch(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        match parts.headers.get(header::IF_MATCH) {
            None => Ok(IfMatch(None)),
            Some(value) => value
                .to_str()
                .map(|v| IfMatch(Some(v.to_string())))
                .map_err(|_| Problem::bad_request("If-Match is not a list of entity tags")),
        }
    }
}

impl IfMatch {
    /// RFC 9110 §13.1.1: `*` matches any current representation; otherwise one of the listed
    /// strong tags must equal the current one (weak tags never match). `current` is `None`
    /// when the resource does not exist, which fails any `If-Match`.
    pub fn check(&self, current: Option<&str>) -> Result<(), Problem> {
        let Some(condition) = &self.0 else {
            return Ok(());
        };
        let matches = match current {
            None => false,
            Some(current) => condition
                .split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || (!tag.starts_with("W/") && tag == current)),
        };
        if matches {
            Ok(())
        } else {
            Err(Problem::new(
                ProblemKind::PreconditionFailed,
                "the resource changed since that ETag (or does not exist): GET it again",
            ))
        }
    }
}

impl IfMatch {
    /// Whether the request made its change conditional.
    pub fn is_present(&self) -> bool {
        self.0.is_some()
    }

    /// Run `change` (which reads the resource, calls `check` on its current ETag and writes)
    /// as one step with respect to every other conditional change of the same resource, on
    /// any replica: under a lease on `resource` in the database (`store::locks`), so two
    /// writers that read the same ETag cannot both pass it. Without `If-Match` there is no
    /// precondition to protect and no lease is taken.
    pub async fn guard<T, Fut>(
        &self,
        state: &AppState,
        resource: &str,
        change: impl FnOnce() -> Fut,
    ) -> Result<T, Problem>
    where
        Fut: Future<Output = Result<T, Problem>>,
    {
        if !self.is_present() {
            return change().await;
        }
        let holder = random_token(16);
        let waited_since = Instant::now();
        loop {
            let now = state.now();
            if state
                .store
                .try_lock_resource(resource, &holder, now, now + LEASE_SECONDS)
                .await?
            {
                break;
            }
            if waited_since.elapsed() >= LEASE_WAIT {
                return Err(Problem::new(
                    ProblemKind::Conflict,
                    "another request is changing this resource: try again",
                ));
            }
            tokio::time::sleep(LEASE_POLL).await;
        }
        let result = change().await;
        // Given back whatever the change did; if this fails (or the request is dropped before
        // here) the lease runs out after LEASE_SECONDS.
        if let Err(e) = state.store.unlock_resource(resource, &holder).await {
            tracing::warn!(error = %e, "could not release a resource lease; it runs out by itself");
        }
        result
    }
}

/// How long a conditional change may hold its resource: far longer than the few statements
/// it runs, short enough that a lease left by a dead replica does not block for long.
const LEASE_SECONDS: i64 = 10;
/// How long a second conditional change of the same resource waits for the first.
const LEASE_WAIT: Duration = Duration::from_secs(3);
const LEASE_POLL: Duration = Duration::from_millis(20);

/// `?limit=&cursor=` of a list route.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
    /// Where to go on from: the `next_cursor` of the previous page, as given.
    pub cursor: Option<String>,
}

/// A query string parsed into `T`, a problem (not axum's plain text) when it does not parse.
pub struct QueryOf<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequestParts<S> for QueryOf<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let RawQuery(query) = RawQuery::from_request_parts(parts, state)
            .await
            .unwrap_or(RawQuery(None));
        match query.as_deref() {
            None | Some("") => Ok(QueryOf(T::default())),
            Some(query) => serde_urlencoded::from_str(query)
                .map(QueryOf)
                .map_err(|e| Problem::bad_request(format!("query string: {e}"))),
        }
    }
}

/// A page request, checked.
#[derive(Debug, Clone)]
pub struct Page {
    pub limit: usize,
    /// The sort key of the last item of the previous page.
    pub after: Option<String>,
}

impl Page {
    pub fn from_query(query: &PageQuery) -> Result<Self, Problem> {
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Problem::bad_request(format!(
                "limit must be 1 to {MAX_LIMIT}"
            )));
        }
        let after = match &query.cursor {
            None => None,
            Some(cursor) => Some(
                URL_SAFE_NO_PAD
                    .decode(cursor)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    // Keys are printable: a control character (NUL above all, which
                    // PostgreSQL cannot compare) was never given by this API.
                    .filter(|key| !key.chars().any(char::is_control))
                    .ok_or_else(|| Problem::bad_request("cursor is not one this API gave"))?,
            ),
        };
        Ok(Self { limit, after })
    }

    /// What to ask the store for (keyset paging in SQL): the rows after the cursor's key, one
    /// more than the limit to learn whether there is a next page.
    pub fn store_page(&self) -> crate::store::Page<'_> {
        crate::store::Page {
            after: self.after.as_deref(),
            limit: Some(self.limit as u32 + 1),
        }
    }

    /// A page the store returned for `store_page`: at most `limit` items, and the cursor of
    /// the next page (the key of the last item shown) when the store had more.
    pub fn finish<T>(
        &self,
        mut items: Vec<T>,
        key: impl Fn(&T) -> String,
    ) -> (Vec<T>, Option<String>) {
        if items.len() > self.limit {
            items.truncate(self.limit);
            let next = items.last().map(|item| cursor_of(&key(item)));
            (items, next)
        } else {
            (items, None)
        }
    }

    /// One page of `items` already in memory (a list bounded by its parent, such as one user's
    /// sessions) sorted by `key` (ascending, unique): those after the cursor, up to the limit,
    /// and the cursor of the next page if there is one.
    pub fn cut<T>(&self, mut items: Vec<T>, key: impl Fn(&T) -> &str) -> (Vec<T>, Option<String>) {
        items.sort_by(|a, b| key(a).cmp(key(b)));
        let start = match &self.after {
            Some(after) => items.partition_point(|item| key(item) <= after.as_str()),
            None => 0,
        };
        let mut page: Vec<T> = items.into_iter().skip(start).take(self.limit + 1).collect();
        let next = if page.len() > self.limit {
            page.truncate(self.limit);
            page.last().map(|item| cursor_of(key(item)))
        } else {
            None
        };
        (page, next)
    }
}

pub fn cursor_of(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// A page of a list, as returned by every list route.
#[derive(Debug, Serialize, ToSchema)]
pub struct Listing<T: ToSchema> {
    pub items: Vec<T>,
    /// Give it as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A list response: `200` with the page and, when there is more, `Link: <…>; rel="next"`.
pub fn listing<T: Serialize + ToSchema>(
    path: &str,
    page: &Page,
    extra_query: &[(&str, &str)],
    items: Vec<T>,
    next_cursor: Option<String>,
) -> Response {
    let mut headers = HeaderMap::new();
    if let Some(cursor) = &next_cursor {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in extra_query {
            query.append_pair(name, value);
        }
        query.append_pair("limit", &page.limit.to_string());
        query.append_pair("cursor", cursor);
        if let Ok(value) =
            HeaderValue::from_str(&format!("<{path}?{}>; rel=\"next\"", query.finish()))
        {
            headers.insert(header::LINK, value);
        }
    }
    no_store(&mut headers);
    (headers, axum::Json(Listing { items, next_cursor })).into_response()
}

/// One resource: `200` (or `201 Created` with `Location`) with its `ETag`.
pub fn resource<T: Serialize>(value: &T, created_at: Option<&str>) -> Response {
    respond(value, &etag_of(value), created_at)
}

/// A resource shown with something that is not part of it (a secret shown once): the `ETag`
/// is the one of the resource itself, `etag`.
pub fn respond<T: Serialize>(value: &T, etag: &str, created_at: Option<&str>) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(etag) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, etag);
    }
    no_store(&mut headers);
    match created_at {
        Some(location) => {
            if let Ok(location) = HeaderValue::from_str(location) {
                headers.insert(header::LOCATION, location);
            }
            (StatusCode::CREATED, headers, axum::Json(value)).into_response()
        }
        None => (headers, axum::Json(value)).into_response(),
    }
}

/// `200` with a JSON body that is an outcome, not a resource (no `ETag`).
pub fn ok_json<T: Serialize>(value: &T) -> Response {
    let mut headers = HeaderMap::new();
    no_store(&mut headers);
    (headers, axum::Json(value)).into_response()
}

/// `204 No Content`: a DELETE done (or nothing was there: DELETE is idempotent).
pub fn no_content() -> Response {
    let mut headers = HeaderMap::new();
    no_store(&mut headers);
    (StatusCode::NO_CONTENT, headers).into_response()
}

/// Management responses carry secrets (a new client secret) and personal data: never cached.
fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
