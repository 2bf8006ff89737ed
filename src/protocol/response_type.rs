//! `response_type` (RFC 6749 §3.1.1, OAuth 2.0 Multiple Response Types): a space-separated,
//! order-independent set. We implement `code` and the implicit `token`, `id_token`,
//! `id_token token`; the hybrid combinations are refused as unsupported.

use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    Code,
    Token,
    IdToken,
    IdTokenToken,
}

pub const SUPPORTED: &[&str] = &["code", "token", "id_token", "id_token token"];

impl ResponseType {
    /// None when the combination is not one we implement.
    pub fn parse(value: &str) -> Option<Self> {
        let parts: BTreeSet<&str> = value.split(' ').filter(|s| !s.is_empty()).collect();
        let parts: Vec<&str> = parts.into_iter().collect();
        match parts.as_slice() {
            ["code"] => Some(Self::Code),
            ["token"] => Some(Self::Token),
            ["id_token"] => Some(Self::IdToken),
            ["id_token", "token"] => Some(Self::IdTokenToken),
            _ => None,
        }
    }

    pub fn is_implicit(self) -> bool {
        !matches!(self, Self::Code)
    }
    pub fn issues_access_token(self) -> bool {
        matches!(self, Self::Token | Self::IdTokenToken)
    }
    pub fn issues_id_token(self) -> bool {
        matches!(self, Self::IdToken | Self::IdTokenToken)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::Token => "token",
            Self::IdToken => "id_token",
            Self::IdTokenToken => "id_token token",
        }
    }
}

/// Where the authorization response parameters go (OAuth 2.0 Multiple Response Types §2.1,
/// Form Post Response Mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

impl ResponseMode {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "query" => Some(Self::Query),
            "fragment" => Some(Self::Fragment),
            "form_post" => Some(Self::FormPost),
            _ => None,
        }
    }

    /// The default for a response type: query for code, fragment when tokens are returned.
    pub fn default_for(response_type: Option<ResponseType>) -> Self {
        match response_type {
            Some(rt) if rt.is_implicit() => Self::Fragment,
            _ => Self::Query,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_does_not_matter() {
        assert_eq!(
            ResponseType::parse("token id_token"),
            Some(ResponseType::IdTokenToken)
        );
        assert_eq!(
            ResponseType::parse("id_token token"),
            Some(ResponseType::IdTokenToken)
        );
        assert_eq!(ResponseType::parse("code id_token"), None);
        assert_eq!(ResponseType::parse("none"), None);
    }
}
