//! How a client presents its credentials at the token endpoint (RFC 6749 §2.3.1).

use std::fmt;
use std::str::FromStr;

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::error::{Challenge, Error};
use crate::protocol::FormParams;
use crate::security::Secret;

/// The registered `token_endpoint_auth_method` of a client (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A public client: identified by `client_id`, not authenticated.
    None,
    /// RFC 7523 §2.2, OIDC Core §9: a JWT signed with the client's registered private key.
    PrivateKeyJwt,
}

impl ClientAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

impl FromStr for ClientAuthMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "client_secret_basic" => Ok(Self::ClientSecretBasic),
            "client_secret_post" => Ok(Self::ClientSecretPost),
            "none" => Ok(Self::None),
            "private_key_jwt" => Ok(Self::PrivateKeyJwt),
            // OIDC Core §9: the secret is the HMAC key, so the server needs it in clear; we keep
            // only its hash (README "private_key_jwt").
            "client_secret_jwt" => Err(
                "client_secret_jwt is not supported: it needs the client secret in clear, and \
                 Portcullis stores only its hash; use private_key_jwt"
                    .to_string(),
            ),
            _ => Err(format!(
                "unknown auth method `{s}` (client_secret_basic, client_secret_post, \
                 private_key_jwt or none)"
            )),
        }
    }
}

impl fmt::Display for ClientAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the request carried.
#[derive(Debug)]
pub enum PresentedCredentials {
    Basic {
        client_id: String,
        secret: Secret,
    },
    Post {
        client_id: String,
        secret: Secret,
    },
    /// Only a `client_id`: a public client.
    ClientIdOnly {
        client_id: String,
    },
    /// RFC 7521 §4.2: a JWT assertion (`private_key_jwt`), not yet verified. `client_id` is the
    /// body's, or else the assertion's `sub` (checked with the signature).
    Assertion {
        client_id: String,
        assertion: String,
    },
}

/// RFC 7523 §2.2: the only `client_assertion_type` we accept.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

impl PresentedCredentials {
    pub fn method(&self) -> ClientAuthMethod {
        match self {
            Self::Basic { .. } => ClientAuthMethod::ClientSecretBasic,
            Self::Post { .. } => ClientAuthMethod::ClientSecretPost,
            Self::ClientIdOnly { .. } => ClientAuthMethod::None,
            Self::Assertion { .. } => ClientAuthMethod::PrivateKeyJwt,
        }
    }

    pub fn client_id(&self) -> &str {
        match self {
            Self::Basic { client_id, .. }
            | Self::Post { client_id, .. }
            | Self::ClientIdOnly { client_id }
            | Self::Assertion { client_id, .. } => client_id,
        }
    }

    /// How a failure to authenticate with these credentials is challenged.
    pub fn challenge(&self) -> Challenge {
        match self {
            Self::Basic { .. } => Challenge::Basic,
            _ => Challenge::None,
        }
    }

    /// Read the credentials from the `Authorization` header or the form body.
    pub fn from_request(headers: &HeaderMap, form: &FormParams) -> Result<Self, Error> {
        let body_id = form.get("client_id");
        let body_secret = form.get("client_secret");
        if form.get("client_assertion").is_some() || form.get("client_assertion_type").is_some() {
            return Self::assertion(headers, form);
        }
        if let Some(authorization) = headers.get(header::AUTHORIZATION) {
            // RFC 6749 §2.3: a client must not use more than one authentication method.
            if body_secret.is_some() {
                return Err(Error::invalid_request(
                    "use one client authentication method, not both Basic and client_secret",
                ));
            }
            let (client_id, secret) = parse_basic(authorization.as_bytes())?;
            if body_id.is_some_and(|id| id != client_id) {
                return Err(Error::invalid_request(
                    "client_id in the body differs from the authenticated client",
                ));
            }
            return Ok(Self::Basic { client_id, secret });
        }
        match (body_id, body_secret) {
            (Some(id), Some(secret)) => Ok(Self::Post {
                client_id: id.to_string(),
                secret: Secret::new(secret),
            }),
            (Some(id), None) => Ok(Self::ClientIdOnly {
                client_id: id.to_string(),
            }),
            (None, Some(_)) => Err(Error::invalid_request(
                "client_secret was sent without client_id",
            )),
            (None, None) => Err(Error::invalid_client("client authentication is required")),
        }
    }
}

impl PresentedCredentials {
    /// RFC 7521 §4.2: `client_assertion_type` and `client_assertion`, `client_id` optional.
    fn assertion(headers: &HeaderMap, form: &FormParams) -> Result<Self, Error> {
        // RFC 6749 §2.3: one authentication method per request.
        if form.get("client_secret").is_some() || headers.contains_key(header::AUTHORIZATION) {
            return Err(Error::invalid_request(
                "use one client authentication method, not a client_assertion and another",
            ));
        }
        match form.get("client_assertion_type") {
            Some(JWT_BEARER_ASSERTION) => {}
            Some(_) => {
                return Err(Error::invalid_client(
                    "unsupported client_assertion_type (use urn:ietf:params:oauth:client-assertion-type:jwt-bearer)",
                ))
            }
            None => return Err(Error::invalid_request("client_assertion_type is missing")),
        }
        let assertion = form
            .get("client_assertion")
            .filter(|a| !a.is_empty())
            .ok_or_else(|| Error::invalid_request("client_assertion is missing"))?;
        // RFC 7523 §3: `sub` is the client_id; the signature check holds it to that.
        let claimed = crate::protocol::jose::peek_claims(assertion)
            .and_then(|c| c.get("sub").and_then(|s| s.as_str()).map(str::to_string));
        let client_id = match (form.get("client_id"), claimed) {
            (Some(id), _) => id.to_string(),
            (None, Some(sub)) => sub,
            (None, None) => {
                return Err(Error::invalid_client(
                    "client_assertion is not a JWT with a sub claim",
                ))
            }
        };
        if client_id.is_empty() || client_id.chars().any(char::is_control) {
            return Err(Error::invalid_client("client authentication failed"));
        }
        Ok(Self::Assertion {
            client_id,
            assertion: assertion.to_string(),
        })
    }
}

/// `Basic base64(urlencode(client_id) ":" urlencode(secret))`, RFC 6749 §2.3.1.
fn parse_basic(value: &[u8]) -> Result<(String, Secret), Error> {
    let fail =
        || Error::invalid_client("malformed Basic credentials").with_challenge(Challenge::Basic);
    let value = std::str::from_utf8(value).map_err(|_| fail())?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or_else(fail)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Error::invalid_client(
            "the token endpoint accepts Basic client authentication",
        )
        .with_challenge(Challenge::Basic));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| fail())?;
    let decoded = String::from_utf8(decoded).map_err(|_| fail())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(fail)?;
    let id = url_decode(id).ok_or_else(fail)?;
    let secret = url_decode(secret).ok_or_else(fail)?;
    // A client_id is a printable identifier (RFC 6749 §2.2, Appendix A.1: VSCHAR). A control
    // character, NUL above all (PostgreSQL cannot compare a text holding one), names no client.
    if id.is_empty() || secret.is_empty() || id.chars().any(char::is_control) {
        return Err(fail());
    }
    Ok((id, Secret::new(secret)))
}

fn url_decode(s: &str) -> Option<String> {
    let plus_as_space = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn basic(raw: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode(raw));
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&v).unwrap());
        h
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let creds =
            PresentedCredentials::from_request(&basic("my%3Aid:s%2Be+t"), &FormParams::default())
                .unwrap();
        match creds {
            PresentedCredentials::Basic { client_id, secret } => {
                assert_eq!(client_id, "my:id");
                assert_eq!(secret.expose(), "s+e t");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn two_methods_are_refused() {
        let form = FormParams::parse(b"client_id=a&client_secret=b").unwrap();
        let err = PresentedCredentials::from_request(&basic("a:b"), &form).unwrap_err();
        assert_eq!(err.code.as_str(), "invalid_request");
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        for raw in [
            "nocolon",
            ":secret",
            "id:",
            "a%00b:secret",
            "a\u{0}:secret",
            "a%0A:s",
        ] {
            let err = PresentedCredentials::from_request(&basic(raw), &FormParams::default())
                .unwrap_err();
            assert_eq!(err.code.as_str(), "invalid_client", "{raw}");
            assert_eq!(err.challenge, Challenge::Basic);
        }
    }
}
