//! Configuration: defaults, then a TOML file (`--config FILE`), then environment variables.
//!
//! Every key has a default (listed, with its meaning, in `config/portcullis.toml`). Every key can
//! be set from the environment as `PORTCULLIS_` followed by its dotted path in upper case with
//! dots and dashes as underscores: `tokens.access_token_ttl` is `PORTCULLIS_TOKENS_ACCESS_TOKEN_TTL`.
//! The whole configuration is validated once at start; an error names the offending key.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

mod env;
mod high_assurance;
#[cfg(test)]
mod tests;
mod validate;
mod values;

pub use values::{
    HeaderNameValue, LogFilter, LogFormat, Mode, Seconds, SecretValue, TrustedProxies,
};

pub use high_assurance::{ClientAssertionConfig, DpopConfig};

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
    pub listen: SocketAddr,
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
    pub logout: LogoutConfig,
    pub housekeeping: HousekeepingConfig,
    pub metrics: MetricsConfig,
    /// `private_key_jwt` client authentication (RFC 7523).
    pub client_assertions: ClientAssertionConfig,
    /// DPoP-bound tokens (RFC 9449).
    pub dpop: DpopConfig,
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
    /// Wrong user codes entered on `/device` per client IP per window (RFC 8628 §5.1); 0 turns
    /// it off.
    pub device_user_code_per_ip: u64,
    /// Wrong user codes entered on `/device` per browser session per window; 0 turns it off.
    pub device_user_code_per_session: u64,
    /// Dynamic client registrations (`/register`, RFC 7591) per client IP per window, counted
    /// whatever their outcome; 0 turns it off.
    pub registrations_per_ip: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Seconds(60),
            token_per_client: 12_000,
            sign_in_per_ip: 30,
            sign_in_per_username: 10,
            // An office of 500 behind one NAT address signing in within a minute or two at
            // 9 a.m. stays under both.
            sign_in_attempts_per_ip: 1000,
            interactions_per_ip: 1000,
            // 20^8 user codes: at 20 guesses a minute per address, a guess that hits a live code
            // (a few thousand at once) takes years.
            device_user_code_per_ip: 20,
            device_user_code_per_session: 5,
            // A CI fleet registering a client per pipeline behind one address stays under it;
            // a script filling the clients table does not.
            registrations_per_ip: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// How long audit events are kept.
    pub retention: Seconds,
    /// Events waiting to be written. `token_issued` and `token_revoked` wait for room (and for
    /// their commit); other events are dropped and counted when it is full.
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

/// Single logout: back-channel deliveries through the outbox (src/logout.rs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogoutConfig {
    /// How long one back-channel POST to a client may take.
    pub delivery_timeout: Seconds,
    /// How long a delivery that fails (network error, 5xx) is retried, with backoff, before it
    /// is given up and audited.
    pub retry_for: Seconds,
    /// How long a logout's response waits for its back-channel deliveries; those still running
    /// go on in the background (and through the outbox if they fail).
    pub page_wait: Seconds,
    /// How often each replica looks for due deliveries in the outbox.
    pub poll_interval: Seconds,
}

impl Default for LogoutConfig {
    fn default() -> Self {
        Self {
            delivery_timeout: Seconds(5),
            retry_for: Seconds(24 * 3600),
            page_wait: Seconds(2),
            poll_interval: Seconds(1),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve Prometheus metrics at `/metrics` on `listen`.
    pub enabled: bool,
    /// Where `/metrics` is served: a listener of its own, never the public one, so traffic
    /// figures are not published to whoever reaches the issuer. Loopback by default; in a
    /// container, the pod's address for the scraper (`0.0.0.0:9464`).
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
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
    pub format: LogFormat,
    /// A tracing filter: `info`, `portcullis=debug,tower_http=info`, …
    pub level: LogFilter,
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
    pub trusted_proxies: TrustedProxies,
    /// The header a request id is read from (trusted proxies only) and echoed in.
    pub request_id_header: HeaderNameValue,
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
    /// RFC 8628 §3.2 `expires_in`: how long a device code and its user code live.
    pub device_code_ttl: Seconds,
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
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
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
            logout: LogoutConfig::default(),
            housekeeping: HousekeepingConfig::default(),
            metrics: MetricsConfig::default(),
            client_assertions: ClientAssertionConfig::default(),
            dpop: DpopConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: LogFilter::info(),
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
            trusted_proxies: TrustedProxies::default(),
            request_id_header: HeaderNameValue::from_static("x-request-id"),
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
            device_code_ttl: Seconds(600),
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
        env::apply_env(&mut table, &defaults, ENV_PREFIX, &env);
        let config = Self::from_table(table)?;
        config.validate()?;
        Ok(config)
    }

    fn from_table(table: toml::Table) -> Result<Self, ConfigError> {
        // Deserialize key by key so an error names the key that failed, not just "the file".
        let text =
            toml::to_string(&table).map_err(|e| ConfigError::new("(file)", e.to_string()))?;
        toml::from_str::<Config>(&text).map_err(|e| {
            let key = env::key_of_error(&text, &e).unwrap_or_else(|| "(file)".into());
            ConfigError::new(key, e.message().to_string())
        })
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
