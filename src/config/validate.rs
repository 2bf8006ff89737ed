//! The checks a loaded configuration must pass before anything starts: the ones a value's type
//! cannot express (ranges, relations between keys, secrets). An error names the key.

use super::{Config, ConfigError, MAX_ARGON2_PARALLELISM};

impl Config {
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
            ("tokens.device_code_ttl", self.tokens.device_code_ttl),
            ("keys.cache_ttl", self.keys.cache_ttl),
            ("sessions.ttl", self.sessions.ttl),
            ("rate_limits.window", self.rate_limits.window),
            ("audit.retention", self.audit.retention),
            ("logout.delivery_timeout", self.logout.delivery_timeout),
            ("logout.poll_interval", self.logout.poll_interval),
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
        if self.tokens.device_code_ttl.0 > 3600 {
            return Err(ConfigError::new(
                "tokens.device_code_ttl",
                "must be at most 1h (RFC 8628 §5.2: a short-lived code limits guessing)",
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

    /// Housekeeping.
    fn validate_operations(&self) -> Result<(), ConfigError> {
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
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
