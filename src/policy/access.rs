//! Who may have tokens for a client, and on what terms: app assignments, then the server's
//! access policies and their rules. Evaluated by every grant's decision (the token endpoint's
//! grants and the authorization endpoint's code and implicit flows), after the scope is decided
//! and before anything is issued.
//!
//! 1. A client requiring assignment serves only users assigned to it, directly or through a
//!    group.
//! 2. The first policy (lowest priority) whose clients include the client applies; none: the
//!    implicit default policy, which allows everything as before policies existed.
//! 3. Its first rule (lowest priority) whose grant types and people match decides: `deny`, or
//!    allow with its scopes (the granted scope is narrowed to them; nothing left is
//!    `invalid_scope`) and its lifetimes (which win over the server's and client's). No rule
//!    matches: deny.
//!
//! Policies come from the per-replica cache (`Store::cached_access_policies`), so a change
//! reaches every replica within `cache.refresh_interval`; group membership and assignments are
//! read from the database when a decision needs them.

use crate::error::{Error, ErrorCode};
use crate::protocol::{GrantType, ScopeSet};
use crate::store::{AccessPolicy, AccessRule, Client, People, Store, User};

/// What is asked for.
pub struct AccessRequest<'a> {
    pub server_id: &'a str,
    pub client: &'a Client,
    /// The grant evaluated.
    pub grant: Grant<'a>,
    /// `None` for a client acting on its own behalf.
    pub user: Option<&'a User>,
    /// The scope the grant decided.
    pub scope: &'a ScopeSet,
}

/// The grant a request is evaluated as.
#[derive(Debug, Clone, Copy)]
pub enum Grant<'a> {
    Is(GrantType),
    /// A refresh: the grant that started the family with this grant id, read only when a
    /// policy applies. A family from before grant types were recorded matches only rules for
    /// any grant type.
    FamilyOf(&'a str),
}

/// Lifetimes a rule sets, in seconds; each wins over the server's and client's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LifetimeOverride {
    pub access_token: Option<i64>,
    pub refresh_token: Option<i64>,
    pub refresh_idle: Option<i64>,
}

/// Tokens may be issued.
#[derive(Debug, Clone, PartialEq)]
pub struct Allowed {
    /// The decided scope, narrowed to what the rule allows.
    pub scope: ScopeSet,
    pub lifetimes: LifetimeOverride,
}

/// Tokens may not be issued, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The client requires assignment and the user is not assigned.
    NotAssigned,
    /// A rule says deny.
    Denied { policy: String, rule: String },
    /// No rule of the policy matches.
    NoRule { policy: String },
    /// The matching rule allows none of the requested scopes.
    NoScope { policy: String, rule: String },
}

impl Refused {
    fn description(&self) -> String {
        match self {
            Refused::NotAssigned => "the user is not assigned to this client".into(),
            Refused::Denied { policy, rule } => {
                format!("access policy `{policy}` denies this request (rule `{rule}`)")
            }
            Refused::NoRule { policy } => {
                format!("no rule of access policy `{policy}` allows this request")
            }
            Refused::NoScope { policy, rule } => format!(
                "access policy `{policy}` (rule `{rule}`) allows none of the requested scopes"
            ),
        }
    }

    /// The token endpoint's error: `invalid_scope` when no scope remains, else `invalid_grant`
    /// for a user's grant and `unauthorized_client` for a client's own (RFC 6749 §5.2).
    pub fn token_error(&self, for_user: bool) -> Error {
        match self {
            Refused::NoScope { .. } => Error::invalid_scope(self.description()),
            _ if for_user => Error::invalid_grant(self.description()),
            _ => Error::unauthorized_client(self.description()),
        }
    }

    /// The authorization endpoint's error, sent to the client (RFC 6749 §4.1.2.1):
    /// `access_denied`, or `invalid_scope` when no scope remains.
    pub fn authorize_error(&self) -> Error {
        match self {
            Refused::NoScope { .. } => Error::invalid_scope(self.description()),
            _ => Error::new(ErrorCode::AccessDenied, self.description()),
        }
    }

    /// A short reason for logs and audit events.
    pub fn reason(&self) -> &'static str {
        match self {
            Refused::NotAssigned => "not_assigned",
            Refused::Denied { .. } => "denied_by_rule",
            Refused::NoRule { .. } => "no_matching_rule",
            Refused::NoScope { .. } => "no_allowed_scope",
        }
    }
}

/// Decide `request` under the server's assignments and policies.
pub async fn check(
    store: &Store,
    request: AccessRequest<'_>,
) -> Result<Result<Allowed, Refused>, Error> {
    if let (true, Some(user)) = (request.client.assignment_required, request.user) {
        if !store.is_assigned(&request.client.id, &user.id).await? {
            return Ok(Err(Refused::NotAssigned));
        }
    }
    let policies = store.cached_access_policies(request.server_id).await?;
    let Some(policy) = applicable(&policies, &request.client.id) else {
        return Ok(Ok(Allowed {
            scope: request.scope.clone(),
            lifetimes: LifetimeOverride::default(),
        }));
    };
    // Membership is read only when a rule asks about groups.
    let groups = match request.user {
        Some(user) if names_groups(policy) => store
            .groups_of_user(&user.id)
            .await?
            .into_iter()
            .map(|g| g.id)
            .collect(),
        _ => Vec::new(),
    };
    let grant_type = match request.grant {
        Grant::Is(g) => Some(g),
        Grant::FamilyOf(grant_id) => store.grant_type_of(grant_id).await?,
    };
    let who = request.user.map(|u| (u.id.as_str(), groups.as_slice()));
    Ok(evaluate(policy, grant_type, who, request.scope))
}

/// The policy that applies to a client: the first (by priority) whose clients include it.
pub fn applicable<'a>(policies: &'a [AccessPolicy], client_id: &str) -> Option<&'a AccessPolicy> {
    policies.iter().find(|p| p.clients.includes(client_id))
}

fn names_groups(policy: &AccessPolicy) -> bool {
    policy
        .rules
        .iter()
        .any(|r| matches!(&r.people, People::Some { groups, .. } if !groups.is_empty()))
}

/// One policy's decision: `who` is the user's id and the ids of their groups (`None` for a
/// client on its own behalf).
pub fn evaluate(
    policy: &AccessPolicy,
    grant_type: Option<GrantType>,
    who: Option<(&str, &[String])>,
    scope: &ScopeSet,
) -> Result<Allowed, Refused> {
    let Some(rule) = policy
        .rules
        .iter()
        .find(|r| grant_matches(r, grant_type) && people_match(r, who))
    else {
        return Err(Refused::NoRule {
            policy: policy.name.clone(),
        });
    };
    if rule.deny {
        return Err(Refused::Denied {
            policy: policy.name.clone(),
            rule: rule.name.clone(),
        });
    }
    let scope = match &rule.scopes {
        None => scope.clone(),
        Some(allowed) => {
            let mut kept = ScopeSet::default();
            for s in scope.iter().filter(|s| allowed.contains(s)) {
                kept.insert(s);
            }
            if kept.is_empty() && !scope.is_empty() {
                return Err(Refused::NoScope {
                    policy: policy.name.clone(),
                    rule: rule.name.clone(),
                });
            }
            kept
        }
    };
    Ok(Allowed {
        scope,
        lifetimes: LifetimeOverride {
            access_token: rule.access_token_ttl,
            refresh_token: rule.refresh_token_ttl,
            refresh_idle: rule.refresh_idle_ttl,
        },
    })
}

fn grant_matches(rule: &AccessRule, grant_type: Option<GrantType>) -> bool {
    rule.grant_types.is_empty() || grant_type.is_some_and(|g| rule.grant_types.contains(&g))
}

fn people_match(rule: &AccessRule, who: Option<(&str, &[String])>) -> bool {
    match (&rule.people, who) {
        (People::Everyone, _) => true,
        (People::Some { .. }, None) => false,
        (People::Some { groups, users }, Some((user_id, user_groups))) => {
            users.iter().any(|u| u == user_id) || groups.iter().any(|g| user_groups.contains(g))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PolicyClients;

    fn rule(name: &str, grants: &[GrantType], people: People, scopes: Option<&str>) -> AccessRule {
        AccessRule {
            id: name.into(),
            policy_id: "p".into(),
            name: name.into(),
            priority: 0,
            grant_types: grants.to_vec(),
            people,
            scopes: scopes.map(|s| ScopeSet::parse(s).unwrap()),
            access_token_ttl: None,
            refresh_token_ttl: None,
            refresh_idle_ttl: None,
            deny: false,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn policy(rules: Vec<AccessRule>) -> AccessPolicy {
        AccessPolicy {
            id: "p".into(),
            server_id: "default".into(),
            name: "apps".into(),
            description: String::new(),
            priority: 1,
            clients: PolicyClients::All,
            rules,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn first_matching_rule_decides_and_narrows_the_scope() {
        let admins = People::Some {
            groups: vec!["g-admins".into()],
            users: vec![],
        };
        let mut short = rule("admins", &[], admins, Some("openid admin"));
        short.access_token_ttl = Some(300);
        let p = policy(vec![
            short,
            rule(
                "rest",
                &[GrantType::Password],
                People::Everyone,
                Some("openid read"),
            ),
        ]);
        let groups = vec!["g-admins".to_string()];
        let scope = ScopeSet::parse("openid admin read").unwrap();
        let admin = evaluate(&p, Some(GrantType::Password), Some(("u1", &groups)), &scope)
            .expect("admins are allowed");
        assert_eq!(admin.scope.to_string(), "admin openid");
        assert_eq!(admin.lifetimes.access_token, Some(300));
        let other = evaluate(&p, Some(GrantType::Password), Some(("u2", &[])), &scope)
            .expect("everyone else too");
        assert_eq!(other.scope.to_string(), "openid read");
        assert_eq!(other.lifetimes.access_token, None);
        assert_eq!(
            evaluate(&p, Some(GrantType::ClientCredentials), None, &scope),
            Err(Refused::NoRule {
                policy: "apps".into()
            })
        );
        let only_admin = ScopeSet::parse("admin").unwrap();
        assert!(matches!(
            evaluate(
                &p,
                Some(GrantType::Password),
                Some(("u2", &[])),
                &only_admin
            ),
            Err(Refused::NoScope { .. })
        ));
    }

    #[test]
    fn a_family_of_unknown_origin_matches_only_rules_for_any_grant() {
        let p = policy(vec![rule(
            "pw",
            &[GrantType::Password],
            People::Everyone,
            None,
        )]);
        let scope = ScopeSet::default();
        assert!(evaluate(&p, None, Some(("u", &[])), &scope).is_err());
        assert!(evaluate(&p, Some(GrantType::Password), Some(("u", &[])), &scope).is_ok());
    }
}
