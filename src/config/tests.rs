//! Loading, the environment overlay and validation, without touching the process environment.

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
    assert_eq!(config.listen, "0.0.0.0:9000".parse().unwrap());
    assert_eq!(config.database_max_connections, 4);
    assert_eq!(config.tokens.access_token_ttl, Seconds(900));
    assert_eq!(config.log.format, LogFormat::Json);
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
        ("PORTCULLIS_LOG_LEVEL", "portcullis=loud", "log.level"),
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
        TrustedProxies::parse(&["10.0.0.0/8", "192.168.1.1/32", "fd00::/8"]).unwrap()
    );
    assert_eq!(config.http.request_id_header.as_str(), "x-correlation-id");
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
