//! A server's custom claims, each a user attribute, a static value or the user's groups,
//! released into the tokens named by its token types when one of its scopes is granted:
//! create, change, delete, each audited with its actor. The CLI (`portcullis claim`) and the
//! management API call these.

use serde_json::Value;

use super::clients::RegistrationError as ManageError;
use super::scopes::check_server;
use super::Actor;
use crate::audit::{self, Event, Kind};
use crate::clock::UnixTime;
use crate::protocol::scope::BUILT_IN_SCOPES;
use crate::protocol::ScopeSet;
use crate::store::{
    ClaimSource, ClaimTarget, CustomClaim, GroupFilter, GroupPattern, GroupsClaim, Page, Store,
};
use crate::tokens::claims::is_reserved;

/// Claim names are JSON member names in every token; keep them printable and short.
pub const MAX_NAME_CHARS: usize = 256;
/// A groups claim lists at most this many groups by default (`--max-groups`).
pub const DEFAULT_MAX_GROUPS: usize = 100;
/// Tokens travel in headers; no claim may list more groups than this.
pub const MAX_GROUPS_CAP: usize = 1000;

fn invalid(message: impl Into<String>) -> ManageError {
    ManageError::Invalid(message.into())
}

/// What a claim is, as an operator gives it: exactly one source (an attribute, a static value
/// or the groups, optionally filtered), the scopes that release it and the tokens it goes into.
#[derive(Debug, Clone, Default)]
pub struct ClaimDefinition {
    pub attribute: Option<String>,
    pub value: Option<Value>,
    pub groups: bool,
    pub filter_prefix: Option<String>,
    pub filter_regex: Option<String>,
    pub filter_equals: Vec<String>,
    /// `None`: `DEFAULT_MAX_GROUPS`.
    pub max_groups: Option<usize>,
    pub scopes: Vec<String>,
    /// Empty: all three.
    pub token_types: Vec<ClaimTarget>,
}

/// A claim's name: 1 to 256 characters without spaces or control characters, and not a
/// protocol or standard OIDC claim.
pub fn check_name(name: &str) -> Result<(), ManageError> {
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid(format!(
            "claim name `{name}` must be 1 to {MAX_NAME_CHARS} characters without spaces or control characters"
        )));
    }
    if is_reserved(name) {
        return Err(invalid(format!(
            "`{name}` is a reserved claim name (a protocol or standard OpenID Connect claim); choose another"
        )));
    }
    Ok(())
}

fn no_claim(server: &str, name: &str) -> ManageError {
    ManageError::NotFound(format!("no claim `{name}` on server `{server}`"))
}

/// The claim checked against the rules, ready to store.
async fn build(
    store: &Store,
    server: &str,
    name: &str,
    definition: ClaimDefinition,
    created_at: UnixTime,
) -> Result<CustomClaim, ManageError> {
    check_name(name)?;
    let d = definition;
    if !d.groups
        && (d.filter_prefix.is_some() || d.filter_regex.is_some() || !d.filter_equals.is_empty())
    {
        return Err(invalid(
            "--filter-prefix, --filter-regex and --filter-equals need --groups",
        ));
    }
    let source = match (d.attribute, d.value, d.groups) {
        (Some(attribute), None, false) => source_attribute(attribute)?,
        (None, Some(value), false) => source_value(value)?,
        (None, None, true) => source_groups(
            d.filter_prefix,
            d.filter_regex,
            d.filter_equals,
            d.max_groups.unwrap_or(DEFAULT_MAX_GROUPS),
        )?,
        _ => return Err(invalid("give one of --attribute, --value or --groups")),
    };
    let scopes = ScopeSet::from_tokens(&d.scopes).map_err(|e| invalid(e.to_string()))?;
    if scopes.is_empty() {
        return Err(invalid("give at least one --scope that releases the claim"));
    }
    check_scopes(store, server, &scopes).await?;
    let mut token_types = if d.token_types.is_empty() {
        ClaimTarget::ALL.to_vec()
    } else {
        d.token_types
    };
    token_types.sort();
    token_types.dedup();
    Ok(CustomClaim {
        server_id: server.to_string(),
        name: name.to_string(),
        source,
        scopes,
        token_types,
        created_at,
    })
}

fn source_attribute(attribute: String) -> Result<ClaimSource, ManageError> {
    if attribute.trim().is_empty() {
        return Err(invalid("--attribute must not be empty"));
    }
    if attribute.chars().any(char::is_control) {
        return Err(invalid("--attribute must not contain control characters"));
    }
    Ok(ClaimSource::Attribute(attribute.trim().to_string()))
}

fn source_value(value: Value) -> Result<ClaimSource, ManageError> {
    match value {
        Value::Null => Err(invalid("--value must not be null")),
        value => Ok(ClaimSource::Static(value)),
    }
}

fn source_groups(
    prefix: Option<String>,
    regex: Option<String>,
    equals: Vec<String>,
    max: usize,
) -> Result<ClaimSource, ManageError> {
    if max == 0 || max > MAX_GROUPS_CAP {
        return Err(invalid(format!(
            "--max-groups must be 1 to {MAX_GROUPS_CAP}"
        )));
    }
    let filter = match (prefix, regex, equals.is_empty()) {
        (Some(p), None, true) if !p.is_empty() => GroupFilter::Prefix(p),
        (Some(_), None, true) => return Err(invalid("--filter-prefix must not be empty")),
        (None, Some(r), true) => GroupFilter::Regex(GroupPattern::new(&r).map_err(invalid)?),
        (None, None, false) => GroupFilter::Equals(equals),
        (None, None, true) => GroupFilter::All,
        _ => return Err(invalid("give at most one --filter-* kind")),
    };
    Ok(ClaimSource::Groups(GroupsClaim { filter, max }))
}

/// Every releasing scope is a built-in OIDC scope or one the server knows, so a typo cannot
/// define a claim that is never released.
async fn check_scopes(store: &Store, server: &str, scopes: &ScopeSet) -> Result<(), ManageError> {
    let known = store.scope_names(server).await?;
    for scope in scopes.iter() {
        let built_in = BUILT_IN_SCOPES.contains(&scope);
        if !built_in && !known.iter().any(|k| k == scope) {
            return Err(invalid(format!(
                "no scope `{scope}` on server `{server}`; create it first with `scope create`"
            )));
        }
    }
    Ok(())
}

/// A page of the server's custom claims by name.
pub async fn list_claims(
    store: &Store,
    server: &str,
    page: Page<'_>,
) -> Result<Vec<CustomClaim>, ManageError> {
    check_server(store, server).await?;
    Ok(store.list_claims(server, page).await?)
}

pub async fn create_claim(
    store: &Store,
    server: &str,
    name: &str,
    definition: ClaimDefinition,
    actor: &Actor,
    now: UnixTime,
) -> Result<CustomClaim, ManageError> {
    check_server(store, server).await?;
    let claim = build(store, server, name, definition, now).await?;
    let stored = store.insert_claim(&claim).await?;
    audit::write(store, claim_event(Kind::ClaimCreated, &stored, actor, now)).await;
    Ok(stored)
}

/// Replace a claim's definition (its name stays) under the rules of `create_claim`.
pub async fn update_claim(
    store: &Store,
    claim: &CustomClaim,
    definition: ClaimDefinition,
    actor: &Actor,
    now: UnixTime,
) -> Result<CustomClaim, ManageError> {
    let updated = build(
        store,
        &claim.server_id,
        &claim.name,
        definition,
        claim.created_at,
    )
    .await?;
    if !store.update_claim(&updated).await? {
        return Err(no_claim(&claim.server_id, &claim.name));
    }
    audit::write(store, claim_event(Kind::ClaimUpdated, &updated, actor, now)).await;
    Ok(updated)
}

/// Delete a claim; tokens issued from now on no longer carry it. False when there was none.
pub async fn delete_claim(
    store: &Store,
    server: &str,
    name: &str,
    actor: &Actor,
    now: UnixTime,
) -> Result<bool, ManageError> {
    check_server(store, server).await?;
    let deleted = store.delete_claim(server, name).await?;
    if deleted {
        let event = Event::new(Kind::ClaimDeleted, now)
            .server(server)
            .actor(actor.label())
            .subject(name)
            .detail("claim", name);
        audit::write(store, event).await;
    }
    Ok(deleted)
}

fn claim_event(kind: Kind, claim: &CustomClaim, actor: &Actor, now: UnixTime) -> Event {
    Event::new(kind, now)
        .server(&claim.server_id)
        .actor(actor.label())
        .subject(claim.name.as_str())
        .detail("claim", claim.name.as_str())
        .detail("scopes", claim.scopes.to_string())
}
