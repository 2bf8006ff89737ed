//! The command line of high-assurance clients: `client create|update … --auth-method
//! private_key_jwt (--jwks-file | --jwks | --jwks-uri)`, `--require-dpop`, `--require-par`,
//! `--require-signed-request-object`, and `server update --require-par`, run as an operator
//! runs them, against the test server's database.

use serde_json::{json, Value};

use super::{assertion_claims, jwks, post, TestKey, ASSERTION_TYPE};
use crate::common::{Backend, TestServer};
use crate::on_both_databases;
use crate::policy::{ok, refused};

async fn the_cli_registers_keys_and_requirements_and_refuses_client_secret_jwt(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = TestKey::ed25519("cli-key");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks(&[&key]).to_string()).unwrap();
    let created = ok(
        &server,
        &format!(
            "client create --name payments --grant-type client_credentials --scope pay \
             --auth-method private_key_jwt --jwks-file {}",
            path.display()
        ),
    );
    assert_eq!(created["token_endpoint_auth_method"], "private_key_jwt");
    assert!(
        created.get("client_secret").is_none(),
        "no secret: {created}"
    );
    assert_eq!(created["jwks"]["keys"][0]["kid"], "cli-key");
    let id = created["client_id"].as_str().unwrap().to_string();

    // The client the CLI made authenticates with an assertion by that key.
    let now = server.clock_now();
    let assertion = key.sign(
        json!({"kid": "cli-key"}),
        &assertion_claims(&id, &server.url("/token"), now, "cli-1"),
    );
    let response = post(
        &server,
        "/token",
        &[],
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion.as_str()),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);

    // Refused: private_key_jwt without keys, client_secret_jwt, a private key, both sources.
    let stderr = refused(
        &server,
        1,
        "client create --name nokeys --grant-type client_credentials --auth-method private_key_jwt",
    );
    assert!(stderr.contains("--jwks"), "{stderr}");
    let stderr = refused(
        &server,
        2,
        "client create --name hmac --grant-type client_credentials --auth-method client_secret_jwt",
    );
    assert!(stderr.contains("stores only its hash"), "{stderr}");
    let mut private = key.registered_jwk();
    private["d"] = json!("c2VjcmV0");
    let stderr = refused(
        &server,
        1,
        &format!(
            "client update {id} --jwks '{}'",
            json!({ "keys": [private] }).to_string().replace(' ', "")
        ),
    );
    assert!(stderr.contains("public key"), "{stderr}");
    let stderr = refused(
        &server,
        2,
        &format!(
            "client update {id} --jwks-file {} --jwks-uri https://keys.example/jwks.json",
            path.display()
        ),
    );
    assert!(!stderr.is_empty());

    // Requirements, and the per-server PAR requirement.
    let updated = ok(
        &server,
        &format!(
            "client update {id} --require-dpop true --require-par true \
             --require-signed-request-object true"
        ),
    );
    assert_eq!(updated["require_dpop"], true);
    assert_eq!(updated["require_pushed_authorization_requests"], true);
    assert_eq!(updated["require_signed_request_object"], true);
    let shown: Value = ok(&server, &format!("client show {id}"));
    assert_eq!(shown["require_dpop"], true);
    let server_json = ok(&server, "server update --id default --require-par true");
    assert_eq!(server_json["require_pushed_authorization_requests"], true);

    // Back to a secret: a new one, shown once; the keys stay registered.
    let back = ok(
        &server,
        &format!("client update {id} --auth-method client_secret_basic"),
    );
    assert_eq!(back["token_endpoint_auth_method"], "client_secret_basic");
    assert!(back["client_secret"]
        .as_str()
        .is_some_and(|s| s.len() >= 32));
    // A jwks_uri replaces the inline keys.
    let moved = ok(
        &server,
        &format!("client update {id} --jwks-uri https://keys.example/jwks.json"),
    );
    assert_eq!(moved["jwks_uri"], "https://keys.example/jwks.json");
    assert_eq!(moved["jwks"], Value::Null);
}

on_both_databases!(the_cli_registers_keys_and_requirements_and_refuses_client_secret_jwt);
