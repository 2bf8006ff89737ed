//! Key rotation: a new key is published before it signs; a retired key keeps verifying its
//! tokens until they expire, then leaves the JWKS (oidcc-server-rotate-keys).

use crate::common::{Backend, TestServer};
use crate::jwt::{fetch_jwks, kid_of, verify};
use crate::on_both_databases;

async fn issue(server: &TestServer, id: &str, secret: &str) -> String {
    let response = server
        .post_form(
            "/token",
            Some((id, secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

fn kids(jwks: &jsonwebtoken::jwk::JwkSet) -> Vec<String> {
    jwks.keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect()
}

async fn oidcc_server_rotate_keys(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, secret) = server.service_client("default", &["a"]).await;
    let old_token = issue(&server, &client.id, secret.expose()).await;
    let old_kid = kid_of(&old_token);

    // Rotate with the default activation delay: published at once, not yet signing.
    let now = server.clock_now();
    let delay = server.state.config.keys.activation_delay.as_i64();
    server
        .state
        .keys
        .rotate("default", now, delay)
        .await
        .expect("rotate");
    let jwks = fetch_jwks(&server.http, &server.url("/keys")).await;
    assert_eq!(
        kids(&jwks).len(),
        2,
        "the new key is published before it signs"
    );
    assert_eq!(
        kid_of(&issue(&server, &client.id, secret.expose()).await),
        old_kid
    );

    // After the delay the new key signs; the old one still verifies the old token.
    server.clock.advance(delay);
    let new_token = issue(&server, &client.id, secret.expose()).await;
    let new_kid = kid_of(&new_token);
    assert_ne!(new_kid, old_kid);
    let jwks = fetch_jwks(&server.http, &server.url("/keys")).await;
    assert!(kids(&jwks).contains(&old_kid));
    assert!(kids(&jwks).contains(&new_kid));
    verify(&old_token, &jwks, &server.base, "api://default").expect("old token still verifies");
    verify(&new_token, &jwks, &server.base, "api://default").expect("new token verifies");

    // Once every token the old key signed has expired, it leaves the JWKS.
    server.clock.advance(3600);
    let jwks = fetch_jwks(&server.http, &server.url("/keys")).await;
    assert_eq!(kids(&jwks), vec![new_kid]);
}

/// Two writers rotating at once: exactly one key is added.
async fn concurrent_rotations_add_one_key(backend: Backend) {
    let server = TestServer::start(backend).await;
    let now = server.clock_now();
    let ring_a = portcullis::keys::KeyRing::new(server.store().clone(), &server.state.config);
    let ring_b = portcullis::keys::KeyRing::new(server.store().clone(), &server.state.config);
    let (a, b) = tokio::join!(
        ring_a.rotate("default", now, 0),
        ring_b.rotate("default", now, 0)
    );
    let added = [a.unwrap(), b.unwrap()]
        .iter()
        .filter(|r| matches!(r, portcullis::keys::Rotation::Added { .. }))
        .count();
    assert!(added >= 1);
    let keys = server.store().keys("default").await.unwrap();
    assert_eq!(keys.len(), 1 + added);
    let generations: std::collections::BTreeSet<i64> = keys.iter().map(|k| k.generation).collect();
    assert_eq!(generations.len(), keys.len(), "generations are unique");
}

on_both_databases!(oidcc_server_rotate_keys, concurrent_rotations_add_one_key);
