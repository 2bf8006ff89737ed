//! Which user claims each scope releases (OIDC Core §5.4).

use serde_json::{Map, Value};

use crate::protocol::ScopeSet;
use crate::store::User;

pub const PROFILE: &[&str] = &[
    "name",
    "family_name",
    "given_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
];
pub const EMAIL: &[&str] = &["email", "email_verified"];
pub const ADDRESS: &[&str] = &["address"];
pub const PHONE: &[&str] = &["phone_number", "phone_number_verified"];

/// The claims released by `scope` (never `sub`; callers add it).
pub fn for_scope(user: &User, scope: &ScopeSet) -> Map<String, Value> {
    let mut out = Map::new();
    let groups: [(&str, &[&str]); 4] = [
        ("profile", PROFILE),
        ("email", EMAIL),
        ("address", ADDRESS),
        ("phone", PHONE),
    ];
    for (scope_name, names) in groups {
        if !scope.contains(scope_name) {
            continue;
        }
        for name in names.iter().copied() {
            let value = match name {
                "preferred_username" => user
                    .claims
                    .get(name)
                    .cloned()
                    .or_else(|| Some(Value::String(user.username.clone()))),
                "updated_at" => Some(Value::from(user.updated_at)),
                _ => user.claims.get(name).cloned(),
            };
            if let Some(v) = value.filter(|v| !v.is_null()) {
                out.insert(name.to_string(), v);
            }
        }
    }
    out
}

pub fn all_claim_names() -> impl Iterator<Item = &'static str> {
    PROFILE
        .iter()
        .chain(EMAIL)
        .chain(ADDRESS)
        .chain(PHONE)
        .copied()
}

/// Claims the protocols define (RFC 7519 §4.1, RFC 9068 §2.2, OIDC Core §2 and §5.6.2,
/// RFC 7800, RFC 8693) or that this server sets itself (`gid`). A custom claim may not take
/// one of these names, nor a standard claim's: a token carries what the protocol says.
pub const PROTOCOL_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "auth_time",
    "nonce",
    "at_hash",
    "c_hash",
    "s_hash",
    "azp",
    "sid",
    "gid",
    "acr",
    "amr",
    "cnf",
    "act",
    "may_act",
    "_claim_names",
    "_claim_sources",
];

/// Is `name` a protocol or standard claim, never to be set by a custom claim?
pub fn is_reserved(name: &str) -> bool {
    PROTOCOL_CLAIMS.contains(&name) || all_claim_names().any(|n| n == name)
}
