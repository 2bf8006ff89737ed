//! The client credentials grant (RFC 6749 §4.4) with a real OAuth client library, and the
//! token (RFC 9068) verified by an independent JWT library against the published JWKS.

use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use portcullis::manage::clients::{rotate_client_secret, ClientRequest};
use portcullis::protocol::{ClientAuthMethod, GrantType};
use portcullis::security::hash_secret;

use crate::common::snapshot::Snapshot;
use crate::common::{Backend, TestServer};
use crate::jwt::{fetch_jwks, typ_of, verify};
use crate::on_both_databases;

fn oauth_client(
    server: &TestServer,
    id: &str,
    secret: &str,
) -> BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
> {
    BasicClient::new(ClientId::new(id.into()))
        .set_client_secret(ClientSecret::new(secret.into()))
        .set_token_uri(TokenUrl::new(server.url("/token")).unwrap())
}

async fn client_credentials_token_verifies_against_the_jwks(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, secret) = server
        .service_client("default", &["invoices.read", "invoices.write"])
        .await;
    let token = oauth_client(&server, &client.id, secret.expose())
        .exchange_client_credentials()
        .add_scope(Scope::new("invoices.read".into()))
        .request_async(&server.http)
        .await
        .expect("client credentials token");
    assert!(
        token.refresh_token().is_none(),
        "RFC 6749 §4.4.3: no refresh token"
    );
    assert_eq!(
        token
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        Some(vec!["invoices.read".to_string()])
    );
    assert_eq!(token.expires_in().map(|d| d.as_secs()), Some(3600));

    let access_token = token.access_token().secret();
    // RFC 9068 §2.1: typ at+jwt.
    assert_eq!(typ_of(access_token).as_deref(), Some("at+jwt"));
    let jwks = fetch_jwks(&server.http, &server.url("/keys")).await;
    let claims = verify(access_token, &jwks, &server.base, "api://default").expect("verifies");
    assert_eq!(claims["sub"], client.id.as_str());
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(claims["scope"], "invoices.read");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
}

async fn client_secret_post_is_accepted_when_registered(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, secret) = server
        .register(ClientRequest {
            server_id: "default".into(),
            name: "poster".into(),
            grant_types: vec![GrantType::ClientCredentials],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: vec!["a".into()],
            default_scopes: vec![],
            public: false,
            first_party: false,
            auth_method: Some(ClientAuthMethod::ClientSecretPost),
        })
        .await;
    let secret = secret.unwrap();
    let token = oauth_client(&server, &client.id, secret.expose())
        .set_auth_type(AuthType::RequestBody)
        .exchange_client_credentials()
        .request_async(&server.http)
        .await
        .expect("client_secret_post");
    assert!(!token.access_token().secret().is_empty());
}

/// No scope requested: the client's default scopes (all its scopes when it has none).
async fn no_scope_requested_grants_the_default_scopes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, secret) = server.service_client("default", &["b", "a"]).await;
    let response = server
        .post_form(
            "/token",
            Some((&client.id, secret.expose())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "a b");
    assert_eq!(body["token_type"], "Bearer");
}

/// RFC 6749 §5.1: token responses are not cached.
async fn token_responses_are_not_cached(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, secret) = server.service_client("default", &["a"]).await;
    let response = server
        .post_form(
            "/token",
            Some((&client.id, secret.expose())),
            &[("grant_type", "client_credentials"), ("scope", "a")],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
}

/// A client's secret is stored only as its SHA-256 hash: no row of any table holds it, on
/// either database, and neither do SQLite's files.
async fn client_secret_is_not_stored_in_clear(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, secret) = server.service_client("default", &["a"]).await;
    let secret = secret.expose();
    // Every row of every table, rendered by the database (blobs as hex), on either backend.
    let snapshot = Snapshot::take(&server).await;
    let rows: Vec<String> = snapshot
        .0
        .values()
        .flatten()
        .map(|r| r.to_lowercase())
        .collect();
    // The check sees the client's row, and in it the SHA-256 of the secret ...
    assert!(
        rows.iter().any(|r| r.contains(&client.id.to_lowercase())),
        "the client's row is not in the snapshot"
    );
    assert!(
        rows.iter().any(|r| r.contains(&hex(&hash_secret(secret)))),
        "the secret's hash is not stored"
    );
    // ... but nowhere the secret, as text or as the hex of its bytes.
    for needle in [secret.to_lowercase(), hex(secret.as_bytes())] {
        assert!(
            !rows.iter().any(|r| r.contains(&needle)),
            "a row holds the client secret"
        );
    }
    // Nor do SQLite's files: the database and its write-ahead log, where new rows sit until a
    // checkpoint.
    if backend == Backend::Sqlite {
        let path = server.db.url.trim_start_matches("sqlite://").to_string();
        let mut bytes = std::fs::read(&path).expect("the SQLite file");
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        assert!(
            contains(&bytes, client.id.as_bytes()),
            "the client is in neither {path} nor its -wal"
        );
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "{path} or its -wal holds the secret"
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Rotating a secret: the new one works at once and the old one is refused with the same 401
/// as any wrong secret; a public client has no secret to rotate.
async fn a_rotated_secret_replaces_the_old_one_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, old) = server.service_client("default", &["a"]).await;
    let cc = [("grant_type", "client_credentials")];
    let token = |secret: String| {
        let (server, id) = (&server, client.id.clone());
        async move { server.post_form("/token", Some((&id, &secret)), &cc).await }
    };
    assert_eq!(token(old.expose().to_string()).await.status(), 200);

    let (rotated, new) = rotate_client_secret(server.store(), &client.id, server.clock_now() + 1)
        .await
        .expect("rotate");
    assert_eq!(rotated.id, client.id);
    assert_eq!(rotated.updated_at, server.clock_now() + 1);
    assert_ne!(new.expose(), old.expose());
    assert!(new.expose().len() >= 43, "256 bits, base64url");

    let refused = token(old.expose().to_string()).await;
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().contains_key("www-authenticate"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    let accepted = token(new.expose().to_string()).await;
    assert_eq!(accepted.status(), 200);
    let body: serde_json::Value = accepted.json().await.unwrap();
    assert_eq!(body["scope"], "a");

    // A public client is refused, and stays public: no secret appears.
    let (public, none) = server
        .register(ClientRequest {
            server_id: "default".into(),
            name: "spa".into(),
            grant_types: vec![GrantType::AuthorizationCode],
            redirect_uris: vec!["https://spa.example/cb".into()],
            post_logout_redirect_uris: vec![],
            scopes: vec![],
            default_scopes: vec![],
            public: true,
            first_party: false,
            auth_method: None,
        })
        .await;
    assert!(none.is_none());
    let error = rotate_client_secret(server.store(), &public.id, server.clock_now())
        .await
        .expect_err("a public client has no secret");
    assert!(error.to_string().contains("public"), "{error}");
    let still = server.store().client(&public.id).await.unwrap().unwrap();
    assert!(still.is_public());
    assert!(!still.secret_matches(""));
    // An unknown client.
    let error = rotate_client_secret(server.store(), "nobody", server.clock_now())
        .await
        .expect_err("no such client");
    assert!(error.to_string().contains("no client"), "{error}");
}

on_both_databases!(
    client_credentials_token_verifies_against_the_jwks,
    client_secret_post_is_accepted_when_registered,
    no_scope_requested_grants_the_default_scopes,
    token_responses_are_not_cached,
    client_secret_is_not_stored_in_clear,
    a_rotated_secret_replaces_the_old_one_at_once,
);
