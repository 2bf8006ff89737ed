//! `application/x-www-form-urlencoded` parameters, parsed strictly.
//!
//! RFC 6749 §3.1/§3.2: parameters sent without a value are treated as omitted, and a parameter
//! must not be included more than once. Bytes that are not UTF-8 are refused, not replaced.

use std::collections::BTreeMap;

use axum::http::{header, HeaderMap};

use crate::error::Error;

#[derive(Debug, Clone, Default)]
pub struct FormParams(BTreeMap<String, String>);

impl FormParams {
    /// A request body, which must be declared as a form.
    pub fn from_body(headers: &HeaderMap, body: &[u8]) -> Result<Self, Error> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if mime != "application/x-www-form-urlencoded" {
            return Err(Error::invalid_request(
                "the request body must be application/x-www-form-urlencoded",
            ));
        }
        Self::parse(body)
    }

    /// A form body as axum hands it over: a body it could not read (too large, broken) is an
    /// `invalid_request` with the status axum chose (413 for an oversized body).
    pub fn from_request_body(
        headers: &HeaderMap,
        body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
    ) -> Result<Self, Error> {
        let body = body.map_err(|e| {
            Error::invalid_request("the request body is too large or unreadable")
                .with_status(e.status())
        })?;
        Self::from_body(headers, &body)
    }

    /// A query string (without the `?`).
    pub fn from_query(query: Option<&str>) -> Result<Self, Error> {
        Self::parse(query.unwrap_or("").as_bytes())
    }

    pub fn parse(input: &[u8]) -> Result<Self, Error> {
        let mut params = BTreeMap::new();
        for pair in input.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let name = decode(name)?;
            let value = decode(value)?;
            if value.is_empty() {
                continue;
            }
            if params.insert(name.clone(), value).is_some() {
                return Err(Error::invalid_request(format!(
                    "parameter `{name}` is included more than once"
                )));
            }
        }
        Ok(Self(params))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A parameter that must be present.
    pub fn require(&self, name: &str) -> Result<&str, Error> {
        self.get(name)
            .ok_or_else(|| Error::invalid_request(format!("missing parameter `{name}`")))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Form-decode one name or value: `+` is a space, then percent-decoding, then strict UTF-8.
fn decode(raw: &[u8]) -> Result<String, Error> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&plus_as_space).collect();
    // No protocol value contains NUL, and PostgreSQL cannot even compare a text with one (a
    // lookup of `client_id=%00` failed with a 500): refused here, before any store sees it.
    if bytes.contains(&0) {
        return Err(Error::invalid_request("parameters must not contain NUL"));
    }
    String::from_utf8(bytes).map_err(|_| Error::invalid_request("parameters must be UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_omitted() {
        let form = FormParams::parse(b"a=1&b=&c").unwrap();
        assert_eq!(form.get("a"), Some("1"));
        assert!(!form.contains("b"));
        assert!(!form.contains("c"));
    }

    #[test]
    fn duplicates_are_refused() {
        let err = FormParams::parse(b"scope=a&scope=b").unwrap_err();
        assert_eq!(err.code.as_str(), "invalid_request");
    }

    #[test]
    fn decoding() {
        let form = FormParams::parse(b"x=a+b%20c%2Bd&y=%E2%9C%93").unwrap();
        assert_eq!(form.get("x"), Some("a b c+d"));
        assert_eq!(form.get("y"), Some("\u{2713}"));
        assert!(FormParams::parse(b"x=%FF").is_err());
    }
}
