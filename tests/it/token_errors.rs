//! Every bad input of the token endpoint gets the RFC 6749 §5.2 error, with the right status
//! and headers, and leaves the store as it was.

use base64::Engine;
use portcullis::manage::clients::ClientRequest;
use portcullis::protocol::GrantType;

use crate::common::{assert_oauth_error, Backend, TestServer};
use crate::on_both_databases;

async fn token_endpoint_refuses_bad_client_authentication(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, secret) = server.service_client("default", &["a"]).await;
    let id = client.id.as_str();
    let cc = ("grant_type", "client_credentials");

    // Unknown client, with Basic: 401 and a Basic challenge (RFC 6749 §5.2).
    let headers = assert_oauth_error(
        server
            .post_form("/token", Some(("nobody", "x")), &[cc])
            .await,
        401,
        "invalid_client",
    )
    .await;
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic "));

    // Wrong secret.
    let headers = assert_oauth_error(
        server.post_form("/token", Some((id, "wrong")), &[cc]).await,
        401,
        "invalid_client",
    )
    .await;
    assert!(headers.contains_key("www-authenticate"));

    // The secret sent by a method the client did not register (it registered Basic).
    assert_oauth_error(
        server
            .post_form(
                "/token",
                None,
                &[cc, ("client_id", id), ("client_secret", secret.expose())],
            )
            .await,
        401,
        "invalid_client",
    )
    .await;

    // No credentials at all.
    assert_oauth_error(
        server.post_form("/token", None, &[cc]).await,
        401,
        "invalid_client",
    )
    .await;

    // Only a client_id for a confidential client.
    assert_oauth_error(
        server
            .post_form("/token", None, &[cc, ("client_id", id)])
            .await,
        401,
        "invalid_client",
    )
    .await;

    // Two methods at once.
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth(id, Some(secret.expose()))
        .form(&[cc, ("client_secret", secret.expose())])
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;

    // Malformed Basic header.
    let response = server
        .http
        .post(server.url("/token"))
        .header(
            "authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("no-colon")
            ),
        )
        .form(&[cc])
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 401, "invalid_client").await;

    // The right credentials still work afterwards: nothing was locked or corrupted.
    let response = server
        .post_form("/token", Some((id, secret.expose())), &[cc])
        .await;
    assert_eq!(response.status(), 200);
}

async fn token_endpoint_refuses_a_public_client_and_disallowed_grants(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (public, _) = server
        .register(ClientRequest {
            server_id: "default".into(),
            name: "spa".into(),
            grant_types: vec![GrantType::AuthorizationCode],
            redirect_uris: vec!["http://127.0.0.1:9/cb".into()],
            post_logout_redirect_uris: vec![],
            scopes: vec!["a".into()],
            default_scopes: vec![],
            public: true,
            first_party: false,
            auth_method: None,
        })
        .await;
    assert_oauth_error(
        server
            .post_form(
                "/token",
                None,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &public.id),
                ],
            )
            .await,
        400,
        "unauthorized_client",
    )
    .await;
    // A public client presenting a secret fails authentication.
    assert_oauth_error(
        server
            .post_form(
                "/token",
                Some((&public.id, "made-up")),
                &[("grant_type", "client_credentials")],
            )
            .await,
        401,
        "invalid_client",
    )
    .await;
}

async fn token_endpoint_refuses_bad_requests(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, secret) = server.service_client("default", &["a", "b"]).await;
    let auth = Some((client.id.as_str(), secret.expose()));

    // Missing grant_type.
    assert_oauth_error(
        server.post_form("/token", auth, &[("scope", "a")]).await,
        400,
        "invalid_request",
    )
    .await;
    // Unknown grant types, and implicit (never at the token endpoint).
    for grant in [
        "magic",
        "implicit",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ] {
        assert_oauth_error(
            server
                .post_form("/token", auth, &[("grant_type", grant)])
                .await,
            400,
            "unsupported_grant_type",
        )
        .await;
    }
    // A scope the client may not have, a user scope, and a malformed scope.
    for scope in ["c", "a c", "openid", "a\"b"] {
        assert_oauth_error(
            server
                .post_form(
                    "/token",
                    auth,
                    &[("grant_type", "client_credentials"), ("scope", scope)],
                )
                .await,
            400,
            "invalid_scope",
        )
        .await;
    }
    // Duplicated parameters (RFC 6749 §3.2).
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth(&client.id, Some(secret.expose()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=a&scope=b")
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
    // A JSON body.
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth(&client.id, Some(secret.expose()))
        .json(&serde_json::json!({ "grant_type": "client_credentials" }))
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
    // Non-UTF-8 bytes.
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth(&client.id, Some(secret.expose()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=%FF")
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
    // GET: 405 with Allow.
    let response = server.http.get(server.url("/token")).send().await.unwrap();
    let headers = assert_oauth_error(response, 405, "invalid_request").await;
    assert_eq!(headers["allow"], "POST");
    // An oversized body.
    let huge = "x".repeat(200 * 1024);
    let response = server
        .post_form(
            "/token",
            auth,
            &[("grant_type", "client_credentials"), ("scope", &huge)],
        )
        .await;
    assert_eq!(response.status(), 413);

    // Nothing stored changed: one client, still working.
    assert_eq!(server.store().clients(None).await.unwrap().len(), 1);
    let ok = server
        .post_form("/token", auth, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(ok.status(), 200);
}

/// A client belongs to one server: to every other it does not exist.
async fn a_client_of_one_server_cannot_authenticate_at_another(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_server("tenant").await;
    let (client, secret) = server.service_client("default", &["a"]).await;
    assert_oauth_error(
        server
            .post_form(
                "/oauth2/tenant/token",
                Some((&client.id, secret.expose())),
                &[("grant_type", "client_credentials")],
            )
            .await,
        401,
        "invalid_client",
    )
    .await;
}

on_both_databases!(
    token_endpoint_refuses_bad_client_authentication,
    token_endpoint_refuses_a_public_client_and_disallowed_grants,
    token_endpoint_refuses_bad_requests,
    a_client_of_one_server_cannot_authenticate_at_another,
);
