//! Who must present a second factor: the server's policy, a client's (the stricter wins), and
//! the `acr_values` of an authorization request (OIDC Core §3.1.2.1).

use serde::{Deserialize, Serialize};

/// `acr` of a sign-in with a second factor (advertised in `acr_values_supported`).
pub const ACR_MFA: &str = "urn:portcullis:acr:mfa";
/// `acr` of a sign-in with a password only.
pub const ACR_PWD: &str = "urn:portcullis:acr:pwd";
pub const ACR_VALUES_SUPPORTED: &[&str] = &[ACR_MFA, ACR_PWD];

/// A server's policy, ordered from the least strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MfaPolicy {
    /// Never asked.
    Off,
    /// Asked of users who have a second factor; the others sign in with a password.
    Optional,
    /// Asked of everyone; a user without a factor enrols one at sign-in.
    Required,
}

impl MfaPolicy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "optional" => Some(Self::Optional),
            "required" => Some(Self::Required),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }
    /// A stored value; an unknown one (a later version's) is read as the strictest.
    pub fn from_stored(s: &str) -> Self {
        Self::parse(s).unwrap_or(Self::Required)
    }
}

/// A client's policy: its server's, or one of its own (which can only make it stricter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMfa {
    Default,
    Set(MfaPolicy),
}

impl ClientMfa {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "default" => Some(Self::Default),
            other => MfaPolicy::parse(other).map(Self::Set),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Set(p) => p.as_str(),
        }
    }
    pub fn from_stored(s: &str) -> Self {
        Self::parse(s).unwrap_or(Self::Set(MfaPolicy::Required))
    }
}

/// The policy a client's sign-ins follow: the stricter of its server's and its own.
pub fn effective(server: MfaPolicy, client: ClientMfa) -> MfaPolicy {
    match client {
        ClientMfa::Default => server,
        ClientMfa::Set(own) => own.max(server),
    }
}

/// OIDC Core §3.1.2.1: `acr_values` lists the requested classes in order of preference. Asking
/// for `urn:portcullis:acr:mfa` anywhere in it makes the second factor required.
pub fn acr_requests_mfa(acr_values: &[String]) -> bool {
    acr_values.iter().any(|v| v == ACR_MFA)
}

/// What one sign-in needs, given the policy, the request and whether the user has a factor.
pub fn second_factor_needed(policy: MfaPolicy, requested: bool, has_factor: bool) -> bool {
    requested
        || match policy {
            MfaPolicy::Off => false,
            MfaPolicy::Optional => has_factor,
            MfaPolicy::Required => true,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stricter_policy_wins() {
        use MfaPolicy::*;
        assert_eq!(effective(Optional, ClientMfa::Default), Optional);
        assert_eq!(effective(Required, ClientMfa::Set(Off)), Required);
        assert_eq!(effective(Off, ClientMfa::Set(Required)), Required);
        assert_eq!(effective(Optional, ClientMfa::Set(Off)), Optional);
        assert!(!second_factor_needed(Off, false, true));
        assert!(second_factor_needed(Off, true, false));
        assert!(second_factor_needed(Optional, false, true));
        assert!(!second_factor_needed(Optional, false, false));
        assert!(second_factor_needed(Required, false, false));
        assert_eq!(ClientMfa::parse("bogus"), None);
    }
}
