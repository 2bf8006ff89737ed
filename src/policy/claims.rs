//! Custom claims: which of a server's claim definitions a granted scope releases into a token.

use serde_json::{Map, Value};

use super::{ClaimSource, ClaimTarget, CustomClaim, GroupsClaim};
use crate::error::Error;
use crate::protocol::ScopeSet;
use crate::store::{Store, User};
use crate::tokens::claims;

/// The server's custom claims for one token: those released by a granted scope and meant for
/// `target`. Attribute and groups claims need a user (none for client credentials); static ones
/// do not.
pub async fn custom_claims(
    store: &Store,
    server_id: &str,
    user: Option<&User>,
    scope: &ScopeSet,
    target: ClaimTarget,
) -> Result<Map<String, Value>, Error> {
    let defined = store.cached_claims(server_id).await?;
    let groups = group_names(store, &defined, user).await?;
    Ok(release(&defined, user, &groups, scope, target))
}

/// Does any of these claims release the user's groups?
pub fn needs_groups(defined: &[CustomClaim]) -> bool {
    defined
        .iter()
        .any(|c| matches!(c.source, ClaimSource::Groups(_)))
}

/// The names of the user's groups when a claim releases them (one query), else none.
pub async fn group_names(
    store: &Store,
    defined: &[CustomClaim],
    user: Option<&User>,
) -> Result<Vec<String>, Error> {
    match user {
        Some(user) if needs_groups(defined) => Ok(store
            .groups_of_user(&user.id)
            .await?
            .into_iter()
            .map(|g| g.name)
            .collect()),
        _ => Ok(Vec::new()),
    }
}

/// `custom_claims` without the database: `groups` are the names of the user's groups.
pub fn release(
    defined: &[CustomClaim],
    user: Option<&User>,
    groups: &[String],
    scope: &ScopeSet,
    target: ClaimTarget,
) -> Map<String, Value> {
    let mut out = Map::new();
    for claim in defined {
        if !claim.token_types.contains(&target) || !claim.scopes.iter().any(|s| scope.contains(s)) {
            continue;
        }
        // Refused when the claim was defined; checked again so a row edited by hand cannot
        // put a second `sub` or `aud` in a token.
        if claims::is_reserved(&claim.name) {
            continue;
        }
        let value = match &claim.source {
            ClaimSource::Static(value) => Some(value.clone()),
            ClaimSource::Attribute(attribute) => user.and_then(|u| attribute_of(u, attribute)),
            ClaimSource::Groups(groups_claim) => {
                user.and_then(|u| groups_value(&claim.name, u, groups_claim, groups))
            }
        };
        if let Some(value) = value.filter(|v| !v.is_null()) {
            out.insert(claim.name.clone(), value);
        }
    }
    out
}

/// A user attribute: a custom attribute, a key of their standard claims, or their username.
fn attribute_of(user: &User, attribute: &str) -> Option<Value> {
    match user
        .attributes
        .get(attribute)
        .or_else(|| user.claims.get(attribute))
    {
        Some(value) => Some(value.clone()),
        None if attribute == "username" => Some(Value::String(user.username.clone())),
        None => None,
    }
}

/// The group names a groups claim releases; `None` (the claim left out) beyond its cap.
fn groups_value(name: &str, user: &User, claim: &GroupsClaim, groups: &[String]) -> Option<Value> {
    let kept: Vec<&String> = groups.iter().filter(|g| claim.filter.keeps(g)).collect();
    if kept.len() > claim.max {
        tracing::warn!(claim = name, user = %user.id, groups = kept.len(), max = claim.max, "groups claim left out: the user has more matching groups than the claim may carry");
        return None;
    }
    Some(Value::from(kept.into_iter().cloned().collect::<Vec<_>>()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim(
        name: &str,
        source: ClaimSource,
        scopes: &str,
        targets: &[ClaimTarget],
    ) -> CustomClaim {
        CustomClaim {
            server_id: "default".into(),
            name: name.into(),
            source,
            scopes: ScopeSet::parse(scopes).unwrap(),
            token_types: targets.to_vec(),
            created_at: 0,
        }
    }

    #[test]
    fn static_claims_need_no_user_and_follow_scope_and_target() {
        let defined = [
            claim(
                "tier",
                ClaimSource::Static(json!("gold")),
                "billing admin",
                &[ClaimTarget::AccessToken],
            ),
            claim(
                "dept",
                ClaimSource::Attribute("department".into()),
                "billing",
                &ClaimTarget::ALL,
            ),
        ];
        let billing = ScopeSet::parse("billing").unwrap();
        let out = release(&defined, None, &[], &billing, ClaimTarget::AccessToken);
        assert_eq!(out.get("tier"), Some(&json!("gold")));
        assert!(out.get("dept").is_none(), "no user, no attribute");
        assert!(release(&defined, None, &[], &billing, ClaimTarget::IdToken).is_empty());
        let other = ScopeSet::parse("reports").unwrap();
        assert!(release(&defined, None, &[], &other, ClaimTarget::AccessToken).is_empty());
    }

    #[test]
    fn reserved_names_are_never_released() {
        let defined = [claim(
            "sub",
            ClaimSource::Static(json!("someone-else")),
            "a",
            &ClaimTarget::ALL,
        )];
        let scope = ScopeSet::parse("a").unwrap();
        assert!(release(&defined, None, &[], &scope, ClaimTarget::AccessToken).is_empty());
    }
}
