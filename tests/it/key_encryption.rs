//! Private signing keys encrypted at rest under a key-encryption key (KEK): what is stored,
//! what start-up refuses, and a KEK roll with `portcullis keys rewrap`.

use portcullis::cli::serve::ServeError;
use portcullis::config::{Config, Mode, SecretValue};
use portcullis::keys::kek::{Kek, Keks};
use portcullis::keys::{Signer, SigningAlg};
use portcullis::store::Rewrapped;

use crate::common::{Backend, OutputWithin, TestDatabase, TestServer};
use crate::jwt::{fetch_jwks, kid_of, verify};
use crate::on_both_databases;

fn with_kek(kek: &str) -> impl FnOnce(&mut Config) + '_ {
    move |c| c.keys.kek = SecretValue::new(kek)
}

fn new_kek() -> String {
    Kek::generate().expose().to_string()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn token(server: &TestServer, creds: (&str, &str)) -> String {
    server.client_credentials_token("", creds).await
}

/// The stored bytes are an AES-256-GCM envelope: the PKCS#8 key is not in them, and it opens
/// with the KEK into a key that signs.
async fn stored_keys_do_not_contain_the_private_key(backend: Backend) {
    let kek = new_kek();
    let server = TestServer::start_with(backend, with_kek(&kek)).await;
    let stored = server.store().keys("default").await.unwrap();
    assert_eq!(stored.len(), 1);
    let key = &stored[0];
    assert_eq!(key.key_storage, "aes-256-gcm");
    let keks = Keks::with_current(Some(Kek::from_base64(&kek).unwrap()));
    let der = keks
        .unwrap(&key.key_storage, &key.private_key, &key.server_id, &key.kid)
        .expect("opens with the KEK");
    Signer::from_pkcs8(SigningAlg::Rs256, &key.kid, &der).expect("a PKCS#8 RSA key");
    assert!(
        !contains(&key.private_key, &der),
        "the PKCS#8 key is not stored"
    );
    // Not even its first 32 bytes (the PKCS#8 header and the start of the modulus).
    assert!(!contains(&key.private_key, &der[..32]));
    // The SQLite file itself does not hold it either.
    if backend == Backend::Sqlite {
        let path = server.db.url.trim_start_matches("sqlite://").to_string();
        // The database file exists; its write-ahead log may have been checkpointed away.
        let mut bytes = std::fs::read(&path).expect("the SQLite file");
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        assert!(
            contains(&bytes, key.kid.as_bytes()),
            "the key's row is in neither {path} nor its -wal"
        );
        assert!(
            !contains(&bytes, &der[..64]),
            "{path} or its -wal holds the key"
        );
    }
    // ES256 keys are sealed too.
    server.create_server("ec").await;
    server
        .store()
        .update_server(
            "ec",
            &portcullis::store::ServerChanges {
                signing_alg: Some("ES256".into()),
                ..Default::default()
            },
            server.clock_now(),
        )
        .await
        .unwrap();
    let ec = server.store().server("ec").await.unwrap().unwrap();
    server
        .state
        .keys
        .key_set(&ec, server.clock_now())
        .await
        .unwrap();
    let stored = server.store().keys("ec").await.unwrap();
    assert_eq!(stored[0].key_storage, "aes-256-gcm");
    assert_eq!(stored[0].alg, "ES256");
}

/// Keys stored in the clear (development without a KEK) are sealed when a replica starts with
/// a KEK, and keep their kid.
async fn a_kek_at_start_seals_plaintext_keys(backend: Backend) {
    let plain = TestServer::start(backend).await;
    let stored = plain.store().keys("default").await.unwrap();
    assert_eq!(stored[0].key_storage, "plain");
    let kek = new_kek();
    let sealed = plain
        .replica(with_kek(&kek))
        .await
        .expect("starts with a KEK");
    let stored = sealed.store().keys("default").await.unwrap();
    assert_eq!(stored[0].key_storage, "aes-256-gcm");
    let (client, secret) = sealed.service_client("default", &["a"]).await;
    let t = token(&sealed, (&client.id, secret.expose())).await;
    assert_eq!(kid_of(&t), stored[0].kid);
    // Now a process without the KEK cannot read them: it refuses to start, even in development.
    let err = plain.replica(|_| {}).await.err().expect("refused");
    assert!(err.to_string().contains("no KEK is configured"), "{err}");
}

/// A KEK other than the one the keys were sealed under stops start-up with a clear error that
/// does not contain either KEK.
async fn a_wrong_kek_refuses_to_start(backend: Backend) {
    let right = new_kek();
    let server = TestServer::start_with(backend, with_kek(&right)).await;
    let wrong = new_kek();
    let err = server
        .replica(with_kek(&wrong))
        .await
        .err()
        .expect("a wrong KEK is refused at start");
    let message = err.to_string();
    assert!(message.contains("wrong KEK"), "{message}");
    assert!(!message.contains(&right) && !message.contains(&wrong));
    // A malformed KEK is a configuration error naming the key.
    let mut config = server.state.config.as_ref().clone();
    config.keys.kek = SecretValue::new("dG9vIHNob3J0");
    let err = config.validate().expect_err("short KEK");
    assert_eq!(err.key, "keys.kek");
}

/// mode = production without a KEK refuses to start; with one it starts.
async fn production_requires_a_kek(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let err = TestServer::start_on(db.shared(), |c| c.mode = Mode::Production)
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, ServeError::NoKek), "{err}");
    assert!(err.to_string().contains("keys.kek"));
    let kek = new_kek();
    TestServer::start_on(db.shared(), |c| {
        c.mode = Mode::Production;
        c.keys.kek = SecretValue::new(&kek);
    })
    .await
    .expect("production with a KEK starts");
}

/// The binary: `serve` in production without a KEK exits non-zero with the reason.
#[test]
fn the_binary_refuses_production_without_a_kek() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("serve")
        .env("PORTCULLIS_MODE", "production")
        .env(
            "PORTCULLIS_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("p.db").display()),
        )
        .env("PORTCULLIS_LISTEN", "127.0.0.1:0")
        .env_remove("PORTCULLIS_CONFIG")
        .env_remove("PORTCULLIS_KEYS_KEK")
        .env_remove("PORTCULLIS_KEYS_KEK_FILE")
        .bounded_output();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("requires a key-encryption key"), "{stderr}");
}

/// A KEK roll: `keys rewrap` to a new KEK, then start with it (and the old one as
/// `previous_kek` for the roll); the same kid keeps signing and verifying. A replica still
/// running with the old KEK keeps serving from the keys it has loaded.
async fn rewrap_then_start_with_the_new_kek(backend: Backend) {
    let old_kek = new_kek();
    let server = TestServer::start_with(backend, with_kek(&old_kek)).await;
    let (client, secret) = server.service_client("default", &["a"]).await;
    let creds = (client.id.as_str(), secret.expose());
    let before = token(&server, creds).await;
    let kid = kid_of(&before);

    let new_kek = new_kek();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("new.kek");
    std::fs::write(&file, format!("{new_kek}\n")).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["keys", "rewrap", "--new-kek-file"])
        .arg(&file)
        .env("PORTCULLIS_DATABASE_URL", &server.db.url)
        .env("PORTCULLIS_KEYS_KEK", &old_kek)
        .env_remove("PORTCULLIS_CONFIG")
        .bounded_output();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!stdout.contains(&new_kek) && !stdout.contains(&old_kek));
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["rewrapped"], 1);

    // The old KEK alone no longer opens the keys.
    let err = server
        .replica(with_kek(&old_kek))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("wrong KEK"), "{err}");

    // The new KEK, given as a file: same kid, tokens verify from the JWKS.
    let kek_file = file.to_string_lossy().to_string();
    let rolled = server
        .replica(|c| c.keys.kek_file = kek_file.clone())
        .await
        .expect("starts with the new KEK");
    let after = token(&rolled, creds).await;
    assert_eq!(kid_of(&after), kid);
    let jwks = fetch_jwks(&rolled.http, &rolled.url("/keys")).await;
    verify(&before, &jwks, &server.base, "api://default").expect("old token verifies");
    verify(&after, &jwks, &rolled.base, "api://default").expect("new token verifies");

    // The replica that kept running on the old KEK still signs with the key it loaded.
    server.state.keys.invalidate("default");
    assert_eq!(kid_of(&token(&server, creds).await), kid);

    // During the roll, a key rotated in by an old replica (sealed under the old KEK) is read by
    // replicas holding the old one as previous_kek, and re-sealed under the new one at start.
    server
        .state
        .keys
        .rotate("default", server.clock_now(), 0)
        .await
        .unwrap();
    let both = server
        .replica(|c| {
            c.keys.kek = SecretValue::new(&new_kek);
            c.keys.previous_kek = SecretValue::new(&old_kek);
        })
        .await
        .expect("starts with kek + previous_kek");
    let keks = Keks::with_current(Some(Kek::from_base64(&new_kek).unwrap()));
    for key in both.store().keys("default").await.unwrap() {
        assert!(
            keks.is_current(&key.key_storage, &key.private_key),
            "{key:?}"
        );
    }
}

/// The envelope is bound to its row: a ciphertext copied onto another key does not decrypt,
/// and start-up says so.
async fn a_ciphertext_moved_to_another_row_does_not_decrypt(backend: Backend) {
    let kek = new_kek();
    let server = TestServer::start_with(backend, with_kek(&kek)).await;
    server
        .state
        .keys
        .rotate("default", server.clock_now(), 0)
        .await
        .unwrap();
    let keys = server.store().keys("default").await.unwrap();
    assert_eq!(keys.len(), 2);
    // Both keys are valid envelopes under the same KEK; put the first one's on the second row.
    server
        .store()
        .rewrap_keys(&[Rewrapped {
            kid: keys[1].kid.clone(),
            old: keys[1].private_key.clone(),
            key_storage: keys[0].key_storage.clone(),
            private_key: keys[0].private_key.clone(),
        }])
        .await
        .unwrap();
    let err = server
        .replica(with_kek(&kek))
        .await
        .err()
        .expect("a moved ciphertext is refused at start");
    let message = err.to_string();
    assert!(message.contains(&keys[1].kid), "{message}");
    assert!(message.contains("does not decrypt"), "{message}");
}

on_both_databases!(
    stored_keys_do_not_contain_the_private_key,
    a_kek_at_start_seals_plaintext_keys,
    a_wrong_kek_refuses_to_start,
    production_requires_a_kek,
    rewrap_then_start_with_the_new_kek,
    a_ciphertext_moved_to_another_row_does_not_decrypt,
);
