//! Conventions of the resources nested under a server (`/admin/v1/servers/{server_id}/…`:
//! scopes, claims, access policies and their rules): cursors of lists in evaluation order, and
//! path segments in `Location`. Pages are read with `conventions::Page` like every list.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::http::problem::Problem;

/// What a path segment keeps as it is (RFC 3986 §3.3 unreserved characters).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A name as one path segment of a `Location`.
pub fn segment(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

/// The key of an item of a list in evaluation order (policies, rules): its priority and its
/// name, unique together.
pub fn priority_key(priority: i64, name: &str) -> String {
    format!("{priority}:{name}")
}

/// The (priority, name) a cursor of such a list names.
pub fn parse_priority_key(key: &str) -> Result<(i64, String), Problem> {
    key.split_once(':')
        .and_then(|(priority, name)| Some((priority.parse().ok()?, name.to_string())))
        .ok_or_else(|| Problem::bad_request("cursor is not one this API gave"))
}
