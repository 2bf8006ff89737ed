//! Several authorization servers: each has its own issuer and keys, and a token of one is
//! never accepted by another.

use crate::common::{Backend, TestServer};
use crate::jwt::{fetch_jwks, verify};
use crate::on_both_databases;

async fn token(server: &TestServer, path: &str, id: &str, secret: &str) -> String {
    let response = server
        .post_form(
            path,
            Some((id, secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(response.status(), 200, "{path}");
    let body: serde_json::Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

async fn a_token_of_one_server_does_not_verify_with_another(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_server("tenant").await;
    let (a_client, a_secret) = server.service_client("default", &["x"]).await;
    let (b_client, b_secret) = server.service_client("tenant", &["x"]).await;
    let a_token = token(&server, "/token", &a_client.id, a_secret.expose()).await;
    let b_token = token(
        &server,
        "/oauth2/tenant/token",
        &b_client.id,
        b_secret.expose(),
    )
    .await;

    let a_jwks = fetch_jwks(&server.http, &server.url("/keys")).await;
    let b_jwks = fetch_jwks(&server.http, &server.url("/oauth2/tenant/keys")).await;
    let a_kids: Vec<_> = a_jwks
        .keys
        .iter()
        .map(|k| k.common.key_id.clone())
        .collect();
    let b_kids: Vec<_> = b_jwks
        .keys
        .iter()
        .map(|k| k.common.key_id.clone())
        .collect();
    assert!(
        a_kids.iter().all(|k| !b_kids.contains(k)),
        "each server has its own keys"
    );

    let b_issuer = server.issuer("tenant");
    verify(&a_token, &a_jwks, &server.base, "api://default").expect("A verifies with A");
    verify(&b_token, &b_jwks, &b_issuer, "api://tenant").expect("B verifies with B");
    assert!(verify(&a_token, &b_jwks, &b_issuer, "api://tenant").is_err());
    assert!(verify(&b_token, &a_jwks, &server.base, "api://default").is_err());

    // Even a relying party that ignores `kid` and tries every key of B fails on A's token.
    for jwk in &b_jwks.keys {
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.validate_aud = false;
        assert!(jsonwebtoken::decode::<serde_json::Value>(&a_token, &key, &validation).is_err());
    }
}

/// Where a server accepts tokens (/userinfo), another server's token is refused.
async fn another_servers_token_is_refused_at_userinfo(backend: Backend) {
    use crate::common::rp::Rp;
    let rp = Rp::start(backend, true).await;
    rp.server.create_server("tenant").await;
    let tokens = rp.code_flow("").await;
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(rp.userinfo(at).await.status(), 200);
    let foreign = rp
        .server
        .http
        .get(rp.server.url("/oauth2/tenant/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 401);
    assert!(foreign.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
}

on_both_databases!(
    a_token_of_one_server_does_not_verify_with_another,
    another_servers_token_is_refused_at_userinfo,
);
