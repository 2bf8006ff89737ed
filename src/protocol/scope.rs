//! Scopes (RFC 6749 §3.3): a space-delimited, order-independent set of scope tokens.

use std::collections::BTreeSet;
use std::fmt;

/// The built-in scopes, whose meaning is fixed: OIDC Core §5.4's (and `openid` itself), then
/// `offline_access` (§11). Every one describes a user. Listed here only.
pub const BUILT_IN_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    OFFLINE_ACCESS,
];

/// OIDC Core §11: asks for a refresh token that outlives the user's session.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// The OIDC scopes every client that signs users in may request: the built-in ones but
/// `offline_access`, which needs the refresh grant.
pub const OIDC_SCOPES: &[&str] = BUILT_IN_SCOPES.split_at(BUILT_IN_SCOPES.len() - 1).0;

/// A set of validated scope tokens. Order does not matter; duplicates collapse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<String>);

/// A scope string that breaks RFC 6749 §3.3's grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidScope(pub String);

impl fmt::Display for InvalidScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed scope `{}`", self.0)
    }
}

/// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

impl ScopeSet {
    /// Parse a space-delimited scope string. Runs of spaces are tolerated (clients send them);
    /// any other separator or character outside the grammar is refused.
    pub fn parse(value: &str) -> Result<Self, InvalidScope> {
        let mut set = BTreeSet::new();
        for token in value.split(' ').filter(|t| !t.is_empty()) {
            if !is_scope_token(token) {
                return Err(InvalidScope(token.to_string()));
            }
            set.insert(token.to_string());
        }
        Ok(Self(set))
    }

    pub fn from_tokens<I, S>(tokens: I) -> Result<Self, InvalidScope>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = BTreeSet::new();
        for token in tokens {
            let token = token.as_ref();
            if !is_scope_token(token) {
                return Err(InvalidScope(token.to_string()));
            }
            set.insert(token.to_string());
        }
        Ok(Self(set))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }
    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }
    /// The tokens of `self` that `allowed` does not hold.
    pub fn not_in<'a>(&'a self, allowed: &'a ScopeSet) -> impl Iterator<Item = &'a str> {
        self.0.difference(&allowed.0).map(String::as_str)
    }
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
    pub fn insert(&mut self, scope: &str) {
        self.0.insert(scope.to_string());
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_duplicates_do_not_matter() {
        let a = ScopeSet::parse("b a  a").unwrap();
        let b = ScopeSet::parse("a b").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "a b");
    }

    #[test]
    fn grammar_is_enforced() {
        for bad in ["a\"b", "a\\b", "caf\u{e9}", "a\tb", "a\nb", "x\u{7f}"] {
            assert!(ScopeSet::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ScopeSet::parse("invoices.read api:write https://x/y").is_ok());
    }

    #[test]
    fn subset() {
        let allowed = ScopeSet::parse("a b c").unwrap();
        assert!(ScopeSet::parse("a c").unwrap().is_subset(&allowed));
        let wide = ScopeSet::parse("a d").unwrap();
        assert!(!wide.is_subset(&allowed));
        assert_eq!(wide.not_in(&allowed).collect::<Vec<_>>(), vec!["d"]);
    }
}
