//! Grant types (RFC 6749 §4) a client may be allowed.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GrantType {
    AuthorizationCode,
    Implicit,
    Password,
    ClientCredentials,
    RefreshToken,
    /// RFC 8628 §3.4.
    DeviceCode,
    /// RFC 8693 §2.1.
    TokenExchange,
}

impl GrantType {
    pub const ALL: [GrantType; 7] = [
        GrantType::AuthorizationCode,
        GrantType::Implicit,
        GrantType::Password,
        GrantType::ClientCredentials,
        GrantType::RefreshToken,
        GrantType::DeviceCode,
        GrantType::TokenExchange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::Implicit => "implicit",
            Self::Password => "password",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
        }
    }

    /// The name an operator may type on the command line: the grant type itself, or for the
    /// URN-named grants their last segment (`device_code`, `token-exchange`).
    pub fn from_cli(s: &str) -> Result<Self, String> {
        s.parse().or_else(|e| {
            Self::ALL
                .into_iter()
                .find(|g| {
                    g.as_str()
                        .strip_prefix("urn:ietf:params:oauth:grant-type:")
                        .is_some_and(|short| short == s || short.replace('-', "_") == s)
                })
                .ok_or(e)
        })
    }

    /// Grants a public client may never hold: they need client authentication.
    pub fn requires_confidential_client(self) -> bool {
        // RFC 8693 §2.1: token exchange is for services, which authenticate.
        matches!(
            self,
            Self::ClientCredentials | Self::Password | Self::TokenExchange
        )
    }
}

impl FromStr for GrantType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| format!("unknown grant type `{s}`"))
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urn_grants_have_short_names_on_the_command_line() {
        for (typed, grant) in [
            ("device_code", GrantType::DeviceCode),
            (
                "urn:ietf:params:oauth:grant-type:device_code",
                GrantType::DeviceCode,
            ),
            ("token-exchange", GrantType::TokenExchange),
            ("token_exchange", GrantType::TokenExchange),
            ("refresh_token", GrantType::RefreshToken),
        ] {
            assert_eq!(GrantType::from_cli(typed), Ok(grant), "{typed}");
        }
        assert!(GrantType::from_cli("device").is_err());
        // Stored rows hold the URN only.
        assert!("device_code".parse::<GrantType>().is_err());
    }
}
