//! Conventions of the resources nested under a server (`/admin/v1/servers/{server_id}/…`:
//! scopes, claims, access policies and their rules): pages read from the store with keyset
//! paging (one row more than the page, to know whether there is a next one), cursors of lists
//! in evaluation order, and path segments in `Location`.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::conventions::{cursor_of, Page};
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

/// The page as the store takes it: after the cursor's key, one row more than the page (which
/// tells whether a next page exists without counting).
pub fn store_page(page: &Page) -> Result<crate::store::Page<'_>, Problem> {
    Ok(crate::store::Page {
        after: page.after.as_deref().map(checked_key).transpose()?,
        limit: Some(store_limit(page)),
    })
}

/// A key from a cursor: never one with a control character (which no name has, and which
/// PostgreSQL cannot even compare).
fn checked_key(key: &str) -> Result<&str, Problem> {
    if key.chars().any(char::is_control) {
        return Err(Problem::bad_request("cursor is not one this API gave"));
    }
    Ok(key)
}

/// The limit to ask the store for: one more than the page, which tells whether a next page
/// exists without counting.
pub fn store_limit(page: &Page) -> u32 {
    u32::try_from(page.limit + 1).unwrap_or(u32::MAX)
}

/// The store's rows cut to the page, and the cursor of the next page (the key of the page's
/// last row) when the store had one more.
pub fn page_of<T>(
    mut rows: Vec<T>,
    page: &Page,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    if rows.len() > page.limit {
        rows.truncate(page.limit);
        let next = rows.last().map(|row| cursor_of(&key(row)));
        (rows, next)
    } else {
        (rows, None)
    }
}

/// The key of an item of a list in evaluation order (policies, rules): its priority and its
/// name, unique together.
pub fn priority_key(priority: i64, name: &str) -> String {
    format!("{priority}:{name}")
}

/// The (priority, name) a cursor of such a list names.
pub fn parse_priority_key(key: &str) -> Result<(i64, String), Problem> {
    let key = checked_key(key)?;
    key.split_once(':')
        .and_then(|(priority, name)| Some((priority.parse().ok()?, name.to_string())))
        .ok_or_else(|| Problem::bad_request("cursor is not one this API gave"))
}
