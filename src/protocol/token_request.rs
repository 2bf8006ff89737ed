//! Token requests (RFC 6749 §3.2) as types: one variant per grant the token endpoint serves,
//! each with its own fields. Adding a grant is a variant of `TokenGrant` and of `TokenRequest`;
//! the compiler then lists every place that must handle it.
//!
//! Parsing comes in two steps so that errors keep the order clients see today: `grant_type`
//! first (`unsupported_grant_type` before anything else), then, once the client is
//! authenticated and allowed the grant, the grant's own fields (`invalid_request` when one is
//! missing).

use std::str::FromStr;

use super::{FormParams, GrantType};
use crate::error::{Error, ErrorCode};
use crate::security::Secret;

/// The grants `/token` serves. The implicit grant is not one of them (RFC 6749 §4.2: it has no
/// token request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenGrant {
    AuthorizationCode,
    ClientCredentials,
    Password,
    RefreshToken,
    DeviceCode,
    TokenExchange,
}

impl TokenGrant {
    pub const ALL: [TokenGrant; 6] = [
        TokenGrant::AuthorizationCode,
        TokenGrant::ClientCredentials,
        TokenGrant::Password,
        TokenGrant::RefreshToken,
        TokenGrant::DeviceCode,
        TokenGrant::TokenExchange,
    ];

    /// The grant type a client must be registered for.
    pub fn grant_type(self) -> GrantType {
        match self {
            Self::AuthorizationCode => GrantType::AuthorizationCode,
            Self::ClientCredentials => GrantType::ClientCredentials,
            Self::Password => GrantType::Password,
            Self::RefreshToken => GrantType::RefreshToken,
            Self::DeviceCode => GrantType::DeviceCode,
            Self::TokenExchange => GrantType::TokenExchange,
        }
    }

    /// The request's `grant_type`, when it names a grant served here.
    pub fn of(form: &FormParams) -> Result<Self, Error> {
        form.require("grant_type")?.parse()
    }

    /// Step 2: the grant's own fields.
    pub fn parse_request(self, form: &FormParams) -> Result<TokenRequest, Error> {
        let scope = || form.get("scope").map(str::to_string);
        Ok(match self {
            // RFC 6749 §4.1.3, RFC 7636 §4.5.
            Self::AuthorizationCode => TokenRequest::AuthorizationCode(CodeExchange {
                code: Secret::new(form.require("code")?),
                redirect_uri: form.get("redirect_uri").map(str::to_string),
                code_verifier: form.get("code_verifier").map(str::to_string),
            }),
            // §4.4.2.
            Self::ClientCredentials => {
                TokenRequest::ClientCredentials(ClientCredentials { scope: scope() })
            }
            // §4.3.2.
            Self::Password => TokenRequest::Password(PasswordCredentials {
                username: form.require("username")?.to_string(),
                password: Secret::new(form.require("password")?),
                scope: scope(),
            }),
            // §6.
            Self::RefreshToken => TokenRequest::RefreshToken(Refresh {
                refresh_token: Secret::new(form.require("refresh_token")?),
                scope: scope(),
            }),
            // RFC 8628 §3.4.
            Self::DeviceCode => TokenRequest::DeviceCode(DevicePoll {
                device_code: Secret::new(form.require("device_code")?),
            }),
            // RFC 8693 §2.1.
            Self::TokenExchange => TokenRequest::TokenExchange(Exchange {
                subject_token: Secret::new(form.require("subject_token")?),
                subject_token_type: form.require("subject_token_type")?.to_string(),
                actor_token: form.get("actor_token").map(Secret::new),
                actor_token_type: form.get("actor_token_type").map(str::to_string),
                requested_token_type: form.get("requested_token_type").map(str::to_string),
                audience: form.get("audience").map(str::to_string),
                resource: form.get("resource").map(str::to_string),
                scope: scope(),
            }),
        })
    }
}

impl FromStr for TokenGrant {
    type Err = Error;

    fn from_str(grant_type: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|g| g.grant_type().as_str() == grant_type)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::UnsupportedGrantType,
                    format!("grant_type `{grant_type}` is not supported"),
                )
            })
    }
}

/// A token request, parsed. `scope` stays the raw parameter: which scopes a grant issues, and
/// the `invalid_scope` a malformed one gets, are decided in one place (`policy::scope`), after
/// the grant's other checks.
#[derive(Debug)]
pub enum TokenRequest {
    AuthorizationCode(CodeExchange),
    ClientCredentials(ClientCredentials),
    Password(PasswordCredentials),
    RefreshToken(Refresh),
    DeviceCode(DevicePoll),
    TokenExchange(Exchange),
}

impl TokenRequest {
    pub fn grant(&self) -> TokenGrant {
        match self {
            Self::AuthorizationCode(_) => TokenGrant::AuthorizationCode,
            Self::ClientCredentials(_) => TokenGrant::ClientCredentials,
            Self::Password(_) => TokenGrant::Password,
            Self::RefreshToken(_) => TokenGrant::RefreshToken,
            Self::DeviceCode(_) => TokenGrant::DeviceCode,
            Self::TokenExchange(_) => TokenGrant::TokenExchange,
        }
    }
}

/// RFC 6749 §4.1.3: a code for tokens.
#[derive(Debug)]
pub struct CodeExchange {
    pub code: Secret,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
}

/// RFC 6749 §4.4.2: the client on its own behalf.
#[derive(Debug)]
pub struct ClientCredentials {
    pub scope: Option<String>,
}

/// RFC 6749 §4.3.2: a user's password, sent by a trusted client.
#[derive(Debug)]
pub struct PasswordCredentials {
    pub username: String,
    pub password: Secret,
    pub scope: Option<String>,
}

/// RFC 6749 §6: a refresh token for fresh tokens.
#[derive(Debug)]
pub struct Refresh {
    pub refresh_token: Secret,
    pub scope: Option<String>,
}

/// RFC 8628 §3.4: a device polling with its device code.
#[derive(Debug)]
pub struct DevicePoll {
    pub device_code: Secret,
}

/// RFC 8693 §2.1: a token for another token. One `audience` and one `resource` at most (a
/// parameter sent twice is `invalid_request`, as everywhere on this server).
#[derive(Debug)]
pub struct Exchange {
    pub subject_token: Secret,
    pub subject_token_type: String,
    pub actor_token: Option<Secret>,
    pub actor_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    pub audience: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> FormParams {
        FormParams::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn only_the_grants_served_here_parse() {
        for grant in TokenGrant::ALL {
            let parsed = TokenGrant::of(&form(&format!("grant_type={}", grant.grant_type())));
            assert_eq!(parsed.unwrap(), grant);
        }
        for other in [
            "implicit",
            "magic",
            "device_code",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
        ] {
            let err = TokenGrant::of(&form(&format!("grant_type={other}"))).unwrap_err();
            assert_eq!(err.code, ErrorCode::UnsupportedGrantType, "{other}");
        }
        let err = TokenGrant::of(&form("scope=a")).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn each_grant_requires_its_own_fields() {
        for (grant, body, missing) in [
            (TokenGrant::AuthorizationCode, "redirect_uri=x", "code"),
            (TokenGrant::Password, "password=p", "username"),
            (TokenGrant::Password, "username=u", "password"),
            (TokenGrant::RefreshToken, "scope=a", "refresh_token"),
            (TokenGrant::DeviceCode, "scope=a", "device_code"),
            (
                TokenGrant::TokenExchange,
                "subject_token_type=x",
                "subject_token",
            ),
            (
                TokenGrant::TokenExchange,
                "subject_token=x",
                "subject_token_type",
            ),
        ] {
            let err = grant.parse_request(&form(body)).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest);
            assert!(
                err.description.as_deref().unwrap_or("").contains(missing),
                "{err:?}"
            );
        }
        let request = TokenGrant::Password
            .parse_request(&form("username=ada&password=pw&scope=a+b"))
            .unwrap();
        let TokenRequest::Password(p) = &request else {
            panic!("{request:?}")
        };
        assert_eq!((p.username.as_str(), p.password.expose()), ("ada", "pw"));
        assert_eq!(p.scope.as_deref(), Some("a b"));
        assert!(
            !format!("{request:?}").contains("pw"),
            "the password is redacted"
        );
        assert_eq!(request.grant(), TokenGrant::Password);
    }
}
