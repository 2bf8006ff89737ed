//! The typed values configuration keys hold: each parses (and is checked) once, when the
//! configuration is loaded, and is used as its type from then on.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::HeaderName;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::security::Secret;

/// `mode`: how strict start-up is about secrets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Development,
    Production,
}

/// A secret configuration value: never printed, serialized as `[redacted]` when set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretValue(pub Option<Secret>);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Some(Secret::new(value)))
    }
    /// The value, or "" when unset.
    pub fn expose(&self) -> &str {
        self.0.as_ref().map_or("", |s| s.expose())
    }
}

impl Serialize for SecretValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.expose().is_empty() {
            ""
        } else {
            "[redacted]"
        })
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = String::deserialize(d)?;
        Ok(if value.is_empty() {
            Self(None)
        } else {
            Self::new(value)
        })
    }
}

/// `log.format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `log.level`: a tracing filter (`info`, `portcullis=debug,tower_http=info`), checked when
/// the configuration is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter(String);

impl LogFilter {
    pub fn info() -> Self {
        Self("info".into())
    }

    /// The filter; the directives were checked when the configuration was loaded.
    pub fn env_filter(&self) -> tracing_subscriber::EnvFilter {
        tracing_subscriber::EnvFilter::new(&self.0)
    }
}

impl Serialize for LogFilter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LogFilter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let directives = String::deserialize(d)?;
        match tracing_subscriber::EnvFilter::try_new(&directives) {
            Ok(_) => Ok(Self(directives)),
            Err(e) => Err(serde::de::Error::custom(format!(
                "`{directives}` is not a valid tracing filter: {e}"
            ))),
        }
    }
}

/// `http.trusted_proxies`: the proxies whose forwarding headers are believed, as CIDR blocks
/// (`10.0.0.0/8`, `fd00::/8`) or single addresses (`192.0.2.1`, `::1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn parse(entries: &[impl AsRef<str>]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| parse_block(entry.as_ref()))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_block(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("`{entry}` is not an IP address or CIDR block"))
}

impl Serialize for TrustedProxies {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries = Vec::<String>::deserialize(d)?;
        Self::parse(&entries).map_err(serde::de::Error::custom)
    }
}

/// `http.request_id_header`: a valid header name, lower case as HTTP/2 sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderNameValue(pub HeaderName);

impl HeaderNameValue {
    pub fn from_static(name: &'static str) -> Self {
        Self(HeaderName::from_static(name))
    }
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Serialize for HeaderNameValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for HeaderNameValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        HeaderName::from_bytes(name.as_bytes())
            .map(Self)
            .map_err(|_| serde::de::Error::custom(format!("`{name}` is not a valid header name")))
    }
}

/// A duration in whole seconds, written as an integer or with a unit: `90`, `90s`, `15m`, `1h`, `30d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seconds(pub u64);

impl Seconds {
    pub fn as_i64(self) -> i64 {
        self.0 as i64
    }
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(self.0)
    }
}

impl std::str::FromStr for Seconds {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => s.split_at(i),
            None => (s, "s"),
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("`{s}` is not a duration (use 90, 90s, 15m, 1h or 30d)"))?;
        let factor = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return Err(format!("`{s}` has an unknown unit (use s, m, h or d)")),
        };
        n.checked_mul(factor)
            .map(Seconds)
            .ok_or_else(|| format!("`{s}` is too large"))
    }
}

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}s", self.0)
    }
}

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(Seconds(n)),
            Raw::Str(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}
