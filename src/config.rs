//! Configuration: defaults, then a TOML file (`--config FILE`), then environment variables.
//!
//! Every key has a default (listed, with its meaning, in `config/portcullis.toml`). Every key can
//! be set from the environment as `PORTCULLIS_` followed by its dotted path in upper case with
//! dots and dashes as underscores: `tokens.access_token_ttl` is `PORTCULLIS_TOKENS_ACCESS_TOKEN_TTL`.
//! The whole configuration is validated once at start; an error names the offending key.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::security::Secret;

pub const ENV_PREFIX: &str = "PORTCULLIS_";

/// RFC 9106 §3.1: the degree of parallelism is at most 2^24 - 1.
const MAX_ARGON2_PARALLELISM: u32 = (1 << 24) - 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `development` (keys may be stored unencrypted, with a warning) or `production` (serve
    /// refuses to start without a key-encryption key).
    pub mode: Mode,
    /// The public base URL: the `default` server's issuer, and the prefix of every other's.
    pub issuer: String,
    /// Allow a plain-http issuer on a host other than loopback (development in containers).
    pub allow_insecure_issuer: bool,
    /// The socket address to listen on.
    pub listen: String,
    /// `sqlite://FILE` (created if missing) or `postgres://…`.
    pub database_url: String,
    /// Connections in the pool; 0 chooses by backend (`database_pool_size`).
    pub database_max_connections: u32,
    pub log: LogConfig,
    pub http: HttpConfig,
    pub tokens: TokenConfig,
    pub keys: KeyConfig,
    pub passwords: PasswordConfig,
    pub sessions: SessionConfig,
    pub login: LoginConfig,
    pub cache: CacheConfig,
    pub rate_limits: RateLimitConfig,
    pub audit: AuditConfig,
    pub housekeeping: HousekeepingConfig,
    pub metrics: MetricsConfig,
}

/// The per-replica cache of servers, clients, scopes and claims (src/store/cache.rs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// How often a replica checks whether another process changed what it caches; a change
    /// made elsewhere (CLI, another replica) takes effect within this time. 0: on every read.
    pub refresh_interval: Seconds,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            refresh_interval: Seconds(1),
        }
    }
}

/// The background task that deletes what has expired (see `housekeeping`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HousekeepingConfig {
    /// How often each replica runs it; `0` disables it.
    pub interval: Seconds,
    /// Rows deleted per statement: small batches keep locks short.
    pub batch_size: u32,
    /// Rate-limit windows that started longer ago than this are deleted; must exceed the
    /// longest rate-limit window.
    pub rate_limit_retention: Seconds,
}

impl Default for HousekeepingConfig {
    fn default() -> Self {
        Self {
            interval: Seconds(300),
            batch_size: 1000,
            rate_limit_retention: Seconds(3600),
        }
    }
}

/// Rate limits (fixed windows). The sign-in limits are kept in the database, so they hold across
/// replicas; the per-client `/token` limit is counted in memory, per replica (see `rate_limit`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Length of a window; every limit below counts per window.
    pub window: Seconds,
    /// `/token` requests per client per window, in each replica (0: no limit).
    pub token_per_client: u64,
    /// Failed password checks (login form and password grant together) per client IP per
    /// window; successful ones do not count.
    pub sign_in_per_ip: u64,
    /// Failed password checks per username per window, whatever the IP.
    pub sign_in_per_username: u64,
    /// Password checks of any outcome per client IP per window: a ceiling well above
    /// `sign_in_per_ip`, for many users behind one address.
    pub sign_in_attempts_per_ip: u64,
    /// Pending sign-ins (/authorize requests without a session, each stored until it expires)
    /// started per client IP per window; 0 turns it off.
    pub interactions_per_ip: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Seconds(60),
            token_per_client: 12_000,
            sign_in_per_ip: 30,
            sign_in_per_username: 10,
            sign_in_attempts_per_ip: 300,
            interactions_per_ip: 300,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// How long audit events are kept.
    pub retention: Seconds,
    /// Events waiting to be written; when full, further events are dropped and counted, so
    /// auditing never blocks the token endpoint.
    pub buffer: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention: Seconds(90 * 86400),
            buffer: 10_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve Prometheus metrics at `/metrics`.
    pub enabled: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Failed password checks (login form and password grant together) that lock an account.
    pub max_failed_attempts: u32,
    /// How long a locked account stays locked (`portcullis user unlock` lifts it sooner).
    pub lockout: Seconds,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            max_failed_attempts: 5,
            lockout: Seconds(15 * 60),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// How long a sign-in lasts (single sign-on across the server's clients).
    pub ttl: Seconds,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ttl: Seconds(12 * 3600),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (human) or `json`.
    pub format: String,
    /// A tracing filter: `info`, `portcullis=debug,tower_http=info`, …
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// A request taking longer than this is answered 408.
    pub request_timeout: Seconds,
    /// How long graceful shutdown waits for in-flight requests after SIGTERM.
    pub shutdown_grace: Seconds,
    /// Longest request target (path and query) accepted, in bytes; longer: 414.
    pub max_uri_length: usize,
    /// Largest total size of the request headers (names and values), in bytes; larger: 431.
    pub max_header_bytes: usize,
    /// Proxies (CIDR blocks or addresses) whose `X-Forwarded-For` and request id are believed.
    pub trusted_proxies: Vec<String>,
    /// The header a request id is read from (trusted proxies only) and echoed in.
    pub request_id_header: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    pub access_token_ttl: Seconds,
    pub id_token_ttl: Seconds,
    /// Absolute lifetime of a refresh token family (rotation does not extend it).
    pub refresh_token_ttl: Seconds,
    /// A refresh token unused this long expires.
    pub refresh_idle_ttl: Seconds,
    /// After a rotation, the old refresh token still works this long (0-60s), so concurrent
    /// refreshes of one token succeed instead of revoking the family as a reuse.
    pub refresh_reuse_grace: Seconds,
    /// Issue refresh tokens only when the `offline_access` scope is granted.
    pub refresh_requires_offline_access: bool,
    pub authorization_code_ttl: Seconds,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyConfig {
    /// RSA modulus size of generated keys.
    pub rsa_bits: usize,
    /// How long a rotated-in key is published before it signs. Must cover the JWKS cache
    /// lifetime plus the key cache refresh, so relying parties know it before they see it.
    pub activation_delay: Seconds,
    /// `Cache-Control: max-age` of the JWKS.
    pub jwks_max_age: Seconds,
    /// How often each replica re-reads the keys from the database.
    pub cache_ttl: Seconds,
    /// A server whose newest key is this old gets a new one (`0s`: never rotate on a schedule).
    pub rotation_interval: Seconds,
    /// Base64 of the 32-byte key-encryption key that seals private keys at rest (AES-256-GCM).
    pub kek: SecretValue,
    /// A file holding the base64 KEK (a mounted secret); instead of `kek`.
    pub kek_file: String,
    /// A KEK accepted for decrypting only, during a KEK roll.
    pub previous_kek: SecretValue,
    /// A file holding `previous_kek`.
    pub previous_kek_file: String,
}

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

/// User password hashing: argon2id (RFC 9106). Changing the parameters affects new hashes only;
/// a stored hash is verified with the parameters written in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    /// Memory cost in KiB; at least 8 × `argon2_parallelism`.
    pub argon2_memory_kib: u32,
    /// Time cost: passes over the memory.
    pub argon2_iterations: u32,
    /// Lanes.
    pub argon2_parallelism: u32,
    /// Hashes or verifications running at once in a process; more wait their turn, so a burst
    /// of logins cannot take every core (or `memory × max_concurrent` of RAM). Also the number
    /// of argon2 worker threads, each keeping one hash's memory. 0: one per CPU core
    /// (`workers`).
    pub max_concurrent: usize,
    /// Niceness the argon2 worker threads add to the process's own (0 to 19): how much CPU a
    /// login storm yields to requests that are ready to run. 0 competes as an equal.
    pub nice: i32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: Mode::Development,
            issuer: "http://127.0.0.1:8080".into(),
            allow_insecure_issuer: false,
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://portcullis.db".into(),
            database_max_connections: 0,
            log: LogConfig::default(),
            http: HttpConfig::default(),
            tokens: TokenConfig::default(),
            keys: KeyConfig::default(),
            sessions: SessionConfig::default(),
            login: LoginConfig::default(),
            passwords: PasswordConfig::default(),
            cache: CacheConfig::default(),
            rate_limits: RateLimitConfig::default(),
            audit: AuditConfig::default(),
            housekeeping: HousekeepingConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 64 * 1024,
            request_timeout: Seconds(30),
            shutdown_grace: Seconds(20),
            max_uri_length: 8 * 1024,
            max_header_bytes: 16 * 1024,
            trusted_proxies: Vec::new(),
            request_id_header: "x-request-id".into(),
        }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: Seconds(3600),
            id_token_ttl: Seconds(3600),
            refresh_token_ttl: Seconds(30 * 86400),
            refresh_idle_ttl: Seconds(7 * 86400),
            refresh_reuse_grace: Seconds(30),
            refresh_requires_offline_access: false,
            authorization_code_ttl: Seconds(60),
        }
    }
}

impl Default for KeyConfig {
    fn default() -> Self {
        Self {
            rsa_bits: 2048,
            activation_delay: Seconds(600),
            jwks_max_age: Seconds(300),
            cache_ttl: Seconds(30),
            rotation_interval: Seconds(90 * 86400),
            kek: SecretValue::default(),
            kek_file: String::new(),
            previous_kek: SecretValue::default(),
            previous_kek_file: String::new(),
        }
    }
}

impl Default for PasswordConfig {
    /// OWASP's argon2id recommendation (Password Storage Cheat Sheet): m=19 MiB, t=2, p=1.
    fn default() -> Self {
        Self {
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            max_concurrent: 0,
            nice: 10,
        }
    }
}

impl PasswordConfig {
    /// `max_concurrent`, or one per CPU core available to the process when it is 0: a second
    /// hash on one core only doubles the memory held and the wait of both.
    pub fn workers(&self) -> usize {
        match self.max_concurrent {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
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

/// A configuration error, naming the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl Config {
    /// Load from an optional file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(file, |name| std::env::var(name).ok())
    }

    /// Load from an optional file and an environment given as a lookup function (testable
    /// without touching the process environment).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new("--config", format!("cannot read {}: {e}", path.display()))
                })?;
                text.parse::<toml::Table>().map_err(|e| {
                    ConfigError::new(path.display().to_string(), e.message().to_string())
                })?
            }
            None => toml::Table::new(),
        };
        let defaults = toml::Table::try_from(Config::default())
            .map_err(|e| ConfigError::new("(defaults)", e.to_string()))?;
        apply_env(&mut table, &defaults, ENV_PREFIX, &env);
        let config = Self::from_table(table)?;
        config.validate()?;
        Ok(config)
    }

    fn from_table(table: toml::Table) -> Result<Self, ConfigError> {
        // Deserialize key by key so an error names the key that failed, not just "the file".
        let text =
            toml::to_string(&table).map_err(|e| ConfigError::new("(file)", e.to_string()))?;
        toml::from_str::<Config>(&text).map_err(|e| {
            let key = key_of_error(&text, &e).unwrap_or_else(|| "(file)".into());
            ConfigError::new(key, e.message().to_string())
        })
    }

    /// Every check that does not need I/O; run once at start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let issuer = url::Url::parse(&self.issuer)
            .map_err(|e| ConfigError::new("issuer", format!("not a URL: {e}")))?;
        if !matches!(issuer.scheme(), "https" | "http") {
            return Err(ConfigError::new("issuer", "must be an https URL"));
        }
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(ConfigError::new(
                "issuer",
                "must not have a query or fragment (OIDC Discovery §3)",
            ));
        }
        if self.issuer.ends_with('/') {
            return Err(ConfigError::new(
                "issuer",
                "must not end with `/` (issuers are compared byte for byte)",
            ));
        }
        if issuer.scheme() == "http" && !is_loopback(&issuer) && !self.allow_insecure_issuer {
            return Err(ConfigError::new(
                "issuer",
                "plain http is allowed only on loopback hosts; use https, or set allow_insecure_issuer = true for development",
            ));
        }
        self.listen
            .parse::<SocketAddr>()
            .map_err(|e| ConfigError::new("listen", format!("not a socket address: {e}")))?;
        let db = self.database_url.as_str();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "database_url",
                "must start with sqlite: or postgres://",
            ));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(ConfigError::new("log.format", "must be `text` or `json`"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigError::new("log.level", "not a valid tracing filter"));
        }
        if self.http.body_limit < 1024 {
            return Err(ConfigError::new("http.body_limit", "must be at least 1024"));
        }
        if self.http.max_uri_length < 1024 {
            return Err(ConfigError::new(
                "http.max_uri_length",
                "must be at least 1024",
            ));
        }
        if self.http.max_header_bytes < 4096 {
            return Err(ConfigError::new(
                "http.max_header_bytes",
                "must be at least 4096",
            ));
        }
        if self.audit.buffer == 0 {
            return Err(ConfigError::new("audit.buffer", "must be at least 1"));
        }
        for (key, value) in [
            ("tokens.access_token_ttl", self.tokens.access_token_ttl),
            ("tokens.id_token_ttl", self.tokens.id_token_ttl),
            ("tokens.refresh_token_ttl", self.tokens.refresh_token_ttl),
            ("tokens.refresh_idle_ttl", self.tokens.refresh_idle_ttl),
            ("login.lockout", self.login.lockout),
            (
                "tokens.authorization_code_ttl",
                self.tokens.authorization_code_ttl,
            ),
            ("keys.cache_ttl", self.keys.cache_ttl),
            ("sessions.ttl", self.sessions.ttl),
            ("rate_limits.window", self.rate_limits.window),
            ("audit.retention", self.audit.retention),
        ] {
            if value.0 == 0 {
                return Err(ConfigError::new(key, "must be longer than 0s"));
            }
        }
        if self.tokens.refresh_reuse_grace.0 > 60 {
            return Err(ConfigError::new(
                "tokens.refresh_reuse_grace",
                "must be between 0s and 60s",
            ));
        }
        if self.login.max_failed_attempts == 0 {
            return Err(ConfigError::new(
                "login.max_failed_attempts",
                "must be at least 1",
            ));
        }
        if self.tokens.authorization_code_ttl.0 > 600 {
            return Err(ConfigError::new(
                "tokens.authorization_code_ttl",
                "must be at most 10m (RFC 6749 §4.1.2)",
            ));
        }
        if !(2048..=4096).contains(&self.keys.rsa_bits) || self.keys.rsa_bits % 1024 != 0 {
            return Err(ConfigError::new(
                "keys.rsa_bits",
                "must be 2048, 3072 or 4096",
            ));
        }
        let needed = self.keys.jwks_max_age.0 + self.keys.cache_ttl.0;
        if self.keys.activation_delay.0 < needed {
            return Err(ConfigError::new(
                "keys.activation_delay",
                format!(
                    "must be at least keys.jwks_max_age + keys.cache_ttl ({needed}s), so relying parties see a key before it signs"
                ),
            ));
        }
        self.validate_keks()?;
        self.validate_passwords()?;
        self.validate_operations()
    }

    /// Trusted proxies, the request id header and housekeeping.
    fn validate_operations(&self) -> Result<(), ConfigError> {
        crate::client_ip::TrustedProxies::parse(&self.http.trusted_proxies)
            .map_err(|e| ConfigError::new("http.trusted_proxies", e))?;
        if axum::http::HeaderName::from_bytes(self.http.request_id_header.as_bytes()).is_err() {
            return Err(ConfigError::new(
                "http.request_id_header",
                "not a valid header name",
            ));
        }
        if self.housekeeping.batch_size == 0 {
            return Err(ConfigError::new(
                "housekeeping.batch_size",
                "must be at least 1",
            ));
        }
        if self.housekeeping.rate_limit_retention.0 == 0 {
            return Err(ConfigError::new(
                "housekeeping.rate_limit_retention",
                "must be longer than 0s",
            ));
        }
        Ok(())
    }

    /// A KEK given inline must be base64 of 32 bytes, and given once (value or file).
    fn validate_keks(&self) -> Result<(), ConfigError> {
        let k = &self.keys;
        for (key, value, file) in [
            ("keys.kek", &k.kek, &k.kek_file),
            ("keys.previous_kek", &k.previous_kek, &k.previous_kek_file),
        ] {
            if !value.expose().is_empty() && !file.is_empty() {
                return Err(ConfigError::new(
                    key,
                    format!("set {key} or {key}_file, not both"),
                ));
            }
            if !value.expose().is_empty() {
                crate::keys::kek::Kek::from_base64(value.expose())
                    .map_err(|e| ConfigError::new(key, e))?;
            }
        }
        Ok(())
    }

    /// The limits RFC 9106 §3.1 puts on argon2's parameters, checked here so that building the
    /// hasher cannot fail later.
    fn validate_passwords(&self) -> Result<(), ConfigError> {
        let p = &self.passwords;
        if !(1..=MAX_ARGON2_PARALLELISM).contains(&p.argon2_parallelism) {
            return Err(ConfigError::new(
                "passwords.argon2_parallelism",
                format!("must be between 1 and {MAX_ARGON2_PARALLELISM}"),
            ));
        }
        if u64::from(p.argon2_memory_kib) < 8 * u64::from(p.argon2_parallelism) {
            return Err(ConfigError::new(
                "passwords.argon2_memory_kib",
                "must be at least 8 × passwords.argon2_parallelism",
            ));
        }
        if p.argon2_iterations == 0 {
            return Err(ConfigError::new(
                "passwords.argon2_iterations",
                "must be at least 1",
            ));
        }
        if !(0..=19).contains(&p.nice) {
            return Err(ConfigError::new(
                "passwords.nice",
                "must be between 0 and 19",
            ));
        }
        Ok(())
    }

    /// `database_max_connections`, or when it is 0: on SQLite one, on PostgreSQL 16.
    ///
    /// SQLite lets one connection write at a time. Two connections of one process that both
    /// want to write settle it through SQLite's busy handler, which sleeps in steps of 1 to
    /// 100 ms: on the benchmark's refresh flow two connections gave a p99 of 27-28 ms and a
    /// maximum of 677 ms where one connection gave 25-27 ms and 40 ms, at the same throughput
    /// (docs/performance.md). One connection queues statements in order instead, keeps its page
    /// cache (another connection's write empties it), and a statement is a few microseconds.
    pub fn database_pool_size(&self) -> u32 {
        match self.database_max_connections {
            0 if self.database_url.starts_with("sqlite:") => 1,
            0 => 16,
            n => n,
        }
    }

    pub fn listen_addr(&self) -> SocketAddr {
        // Checked by validate().
        self.listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }

    /// Cookies get `Secure` when the issuer is https.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// HSTS is sent when the issuer is https (behind a TLS-terminating proxy).
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Overlay `PORTCULLIS_*` variables on `table`, for every key that `defaults` has.
fn apply_env(
    table: &mut toml::Table,
    defaults: &toml::Table,
    prefix: &str,
    env: &impl Fn(&str) -> Option<String>,
) {
    for (key, default) in defaults {
        let name = format!("{prefix}{}", key.to_uppercase().replace('-', "_"));
        if let toml::Value::Table(sub_defaults) = default {
            let entry = table
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(sub) = entry {
                apply_env(sub, sub_defaults, &format!("{name}_"), env);
            }
        } else if let Some(raw) = env(&name) {
            table.insert(key.clone(), env_value(&raw, default));
        }
    }
}

/// Interpret an environment string with the type of the key's default.
fn env_value(raw: &str, default: &toml::Value) -> toml::Value {
    let parsed = match default {
        toml::Value::Integer(_) => raw.trim().parse().ok().map(toml::Value::Integer),
        toml::Value::Boolean(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(toml::Value::Boolean(true)),
            "false" | "0" | "no" => Some(toml::Value::Boolean(false)),
            _ => None,
        },
        // A list is comma-separated: `10.0.0.0/8, 192.168.1.1`.
        toml::Value::Array(_) => Some(toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        )),
        _ => None,
    };
    // A value that does not fit stays a string, and deserialization names the key.
    parsed.unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// The dotted key an error's span points into.
fn key_of_error(text: &str, error: &toml::de::Error) -> Option<String> {
    let span = error.span()?;
    let mut section = String::new();
    let mut offset = 0;
    let mut found = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            section = trimmed.trim_matches(|c| c == '[' || c == ']').to_string();
        }
        let end = offset + line.len();
        if span.start < end && span.start >= offset {
            if let Some((key, _)) = trimmed.split_once('=') {
                let key = key.trim().trim_matches('"');
                found = Some(if section.is_empty() {
                    key.to_string()
                } else {
                    format!("{section}.{key}")
                });
            } else if !section.is_empty() {
                found = Some(section.clone());
            }
            break;
        }
        offset = end;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load_with_env(None, |k| env.get(k).cloned())
    }

    #[test]
    fn zero_sizes_are_chosen_by_backend_and_machine() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        let sqlite = load(&[]).expect("defaults");
        assert_eq!(sqlite.database_max_connections, 0);
        assert_eq!(sqlite.database_pool_size(), 1);
        let postgres =
            load(&[("PORTCULLIS_DATABASE_URL", "postgres://db/portcullis")]).expect("postgres");
        assert_eq!(postgres.database_pool_size(), 16);
        let explicit = load(&[("PORTCULLIS_DATABASE_MAX_CONNECTIONS", "5")]).expect("explicit");
        assert_eq!(explicit.database_pool_size(), 5);
        assert_eq!(sqlite.passwords.max_concurrent, 0);
        assert_eq!(sqlite.passwords.workers(), cores as usize);
        let refused = load(&[("PORTCULLIS_PASSWORDS_NICE", "20")]).expect_err("nice 20");
        assert_eq!(refused.key, "passwords.nice");
    }

    #[test]
    fn defaults_are_valid() {
        let config = load(&[]).expect("defaults load");
        assert_eq!(config.issuer, "http://127.0.0.1:8080");
        assert_eq!(config.tokens.access_token_ttl, Seconds(3600));
    }

    #[test]
    fn environment_overrides_every_level() {
        let config = load(&[
            ("PORTCULLIS_ISSUER", "https://id.example.com"),
            ("PORTCULLIS_LISTEN", "0.0.0.0:9000"),
            ("PORTCULLIS_DATABASE_URL", "postgres://db/portcullis"),
            ("PORTCULLIS_TOKENS_ACCESS_TOKEN_TTL", "15m"),
            ("PORTCULLIS_DATABASE_MAX_CONNECTIONS", "4"),
            ("PORTCULLIS_LOG_FORMAT", "json"),
            ("PORTCULLIS_PASSWORDS_ARGON2_MEMORY_KIB", "64"),
            ("PORTCULLIS_PASSWORDS_MAX_CONCURRENT", "8"),
        ])
        .expect("valid");
        assert_eq!(config.passwords.argon2_memory_kib, 64);
        assert_eq!(config.passwords.argon2_iterations, 2);
        assert_eq!(config.passwords.max_concurrent, 8);
        assert_eq!(config.issuer, "https://id.example.com");
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.database_max_connections, 4);
        assert_eq!(config.tokens.access_token_ttl, Seconds(900));
        assert_eq!(config.log.format, "json");
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("PORTCULLIS_ISSUER", "not a url", "issuer"),
            ("PORTCULLIS_ISSUER", "https://id.example.com/", "issuer"),
            ("PORTCULLIS_ISSUER", "http://id.example.com", "issuer"),
            ("PORTCULLIS_LISTEN", "localhost", "listen"),
            ("PORTCULLIS_DATABASE_URL", "mysql://x", "database_url"),
            (
                "PORTCULLIS_TOKENS_ACCESS_TOKEN_TTL",
                "soon",
                "tokens.access_token_ttl",
            ),
            ("PORTCULLIS_TOKENS_ID_TOKEN_TTL", "0", "tokens.id_token_ttl"),
            ("PORTCULLIS_LOG_FORMAT", "xml", "log.format"),
            (
                "PORTCULLIS_DATABASE_MAX_CONNECTIONS",
                "many",
                "database_max_connections",
            ),
            (
                "PORTCULLIS_KEYS_ACTIVATION_DELAY",
                "1m",
                "keys.activation_delay",
            ),
            (
                "PORTCULLIS_PASSWORDS_ARGON2_MEMORY_KIB",
                "7",
                "passwords.argon2_memory_kib",
            ),
            (
                "PORTCULLIS_PASSWORDS_ARGON2_MEMORY_KIB",
                "lots",
                "passwords.argon2_memory_kib",
            ),
            (
                "PORTCULLIS_PASSWORDS_ARGON2_ITERATIONS",
                "0",
                "passwords.argon2_iterations",
            ),
            (
                "PORTCULLIS_PASSWORDS_ARGON2_PARALLELISM",
                "0",
                "passwords.argon2_parallelism",
            ),
            (
                "PORTCULLIS_PASSWORDS_MAX_CONCURRENT",
                "several",
                "passwords.max_concurrent",
            ),
            ("PORTCULLIS_MODE", "prod", "mode"),
            ("PORTCULLIS_KEYS_KEK", "c2hvcnQ=", "keys.kek"),
            (
                "PORTCULLIS_KEYS_PREVIOUS_KEK",
                "not base64!",
                "keys.previous_kek",
            ),
            (
                "PORTCULLIS_KEYS_ROTATION_INTERVAL",
                "often",
                "keys.rotation_interval",
            ),
        ];
        for (var, value, key) in cases {
            let err = load(&[(var, value)]).expect_err(var);
            assert_eq!(err.key, key, "{var}={value}: {err}");
        }
    }

    #[test]
    fn operations_keys_come_from_the_environment() {
        let config = load(&[
            (
                "PORTCULLIS_HTTP_TRUSTED_PROXIES",
                " 10.0.0.0/8, 192.168.1.1 ,,fd00::/8",
            ),
            ("PORTCULLIS_HTTP_REQUEST_ID_HEADER", "x-correlation-id"),
            ("PORTCULLIS_HOUSEKEEPING_INTERVAL", "0"),
            ("PORTCULLIS_HOUSEKEEPING_BATCH_SIZE", "50"),
            ("PORTCULLIS_METRICS_ENABLED", "false"),
        ])
        .expect("valid");
        assert_eq!(
            config.http.trusted_proxies,
            ["10.0.0.0/8", "192.168.1.1", "fd00::/8"]
        );
        assert_eq!(config.http.request_id_header, "x-correlation-id");
        assert_eq!(config.housekeeping.interval, Seconds(0));
        assert_eq!(config.housekeeping.batch_size, 50);
        assert!(!config.metrics.enabled);
        let empty = load(&[("PORTCULLIS_HTTP_TRUSTED_PROXIES", "")]).expect("valid");
        assert!(empty.http.trusted_proxies.is_empty());
        for (var, value, key) in [
            (
                "PORTCULLIS_HTTP_TRUSTED_PROXIES",
                "10.0.0.0/33",
                "http.trusted_proxies",
            ),
            (
                "PORTCULLIS_HTTP_TRUSTED_PROXIES",
                "proxy.example.com",
                "http.trusted_proxies",
            ),
            (
                "PORTCULLIS_HTTP_REQUEST_ID_HEADER",
                "x request id",
                "http.request_id_header",
            ),
            (
                "PORTCULLIS_HOUSEKEEPING_BATCH_SIZE",
                "0",
                "housekeeping.batch_size",
            ),
            (
                "PORTCULLIS_HOUSEKEEPING_RATE_LIMIT_RETENTION",
                "0",
                "housekeeping.rate_limit_retention",
            ),
        ] {
            let err = load(&[(var, value)]).expect_err(var);
            assert_eq!(err.key, key, "{var}={value}: {err}");
        }
    }

    #[test]
    fn a_kek_is_read_from_the_environment_and_never_printed() {
        let kek = crate::keys::kek::Kek::generate();
        let config = load(&[
            ("PORTCULLIS_KEYS_KEK", kek.expose()),
            ("PORTCULLIS_MODE", "production"),
        ])
        .expect("valid");
        assert_eq!(config.mode, Mode::Production);
        assert_eq!(config.keys.kek.expose(), kek.expose());
        assert!(!format!("{config:?}").contains(kek.expose()));
        let serialized = toml::to_string(&config).unwrap();
        assert!(!serialized.contains(kek.expose()));
        assert!(serialized.contains(r#"kek = "[redacted]""#), "{serialized}");
        // Both a value and a file for one KEK is ambiguous.
        let err = load(&[
            ("PORTCULLIS_KEYS_KEK", kek.expose()),
            ("PORTCULLIS_KEYS_KEK_FILE", "/run/secrets/kek"),
        ])
        .expect_err("both");
        assert_eq!(err.key, "keys.kek");
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!("90".parse::<Seconds>(), Ok(Seconds(90)));
        assert_eq!("15m".parse::<Seconds>(), Ok(Seconds(900)));
        assert_eq!("2h".parse::<Seconds>(), Ok(Seconds(7200)));
        assert_eq!("30d".parse::<Seconds>(), Ok(Seconds(30 * 86400)));
        assert!("1w".parse::<Seconds>().is_err());
        assert!("".parse::<Seconds>().is_err());
    }
}
