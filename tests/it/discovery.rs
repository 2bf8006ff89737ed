//! Discovery (RFC 8414, OIDC Discovery 1.0) and JWKS contents.

use serde_json::Value;

use crate::common::{Backend, TestServer};
use crate::on_both_databases;

async fn get_json(server: &TestServer, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = server.http.get(server.url(path)).send().await.expect("GET");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// oidcc-discovery-endpoint-verification: issuer, endpoints and what the server supports.
async fn discovery_documents_describe_the_default_server(backend: Backend) {
    let server = TestServer::start(backend).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let (status, headers, doc) = get_json(&server, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        // Byte for byte: clients compare the issuer exactly.
        assert_eq!(doc["issuer"], server.base.as_str(), "{path}");
        assert_eq!(doc["token_endpoint"], server.url("/token"));
        assert_eq!(doc["jwks_uri"], server.url("/keys"));
        assert_eq!(doc["authorization_endpoint"], server.url("/authorize"));
        assert_eq!(doc["introspection_endpoint"], server.url("/introspect"));
        assert_eq!(
            strings(&doc["introspection_endpoint_auth_methods_supported"]),
            [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt"
            ]
        );
        assert_eq!(doc["revocation_endpoint"], server.url("/revoke"));
        assert_eq!(
            strings(&doc["revocation_endpoint_auth_methods_supported"]),
            [
                "client_secret_basic",
                "client_secret_post",
                "none",
                "private_key_jwt"
            ]
        );
        assert_eq!(
            strings(&doc["grant_types_supported"]),
            [
                "authorization_code",
                "client_credentials",
                "password",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:device_code",
                "urn:ietf:params:oauth:grant-type:token-exchange",
                "implicit"
            ]
        );
        assert_eq!(
            strings(&doc["token_endpoint_auth_methods_supported"]),
            [
                "client_secret_basic",
                "client_secret_post",
                "none",
                "private_key_jwt"
            ]
        );
        assert_eq!(
            strings(&doc["response_types_supported"]),
            ["code", "token", "id_token", "id_token token"]
        );
        assert_eq!(strings(&doc["code_challenge_methods_supported"]), ["S256"]);
        assert!(strings(&doc["scopes_supported"]).contains(&"openid"));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    }
    let (_, _, oidc) = get_json(&server, "/.well-known/openid-configuration").await;
    assert_eq!(
        strings(&oidc["id_token_signing_alg_values_supported"]),
        ["RS256"]
    );
    assert_eq!(strings(&oidc["subject_types_supported"]), ["public"]);
    assert_eq!(oidc["userinfo_endpoint"], server.url("/userinfo"));
    assert_eq!(oidc["end_session_endpoint"], server.url("/logout"));
    // Signed request objects by value (RFC 9101); request_uri only from our own /par.
    assert_eq!(oidc["request_parameter_supported"], true);
    assert_eq!(oidc["request_uri_parameter_supported"], false);
}

/// Scopes registered with clients appear in `scopes_supported`.
async fn discovery_lists_registered_scopes(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .service_client("default", &["invoices.read", "invoices.write"])
        .await;
    let (_, _, doc) = get_json(&server, "/.well-known/oauth-authorization-server").await;
    let scopes = strings(&doc["scopes_supported"]);
    assert!(scopes.contains(&"invoices.read") && scopes.contains(&"invoices.write"));
    assert!(scopes.contains(&"openid") && scopes.contains(&"profile"));
}

/// RFC 8414 §3 and OIDC Discovery §4: where the documents of an issuer with a path live.
async fn path_issuer_documents_are_served_where_the_specs_put_them(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_server("tenant").await;
    let issuer = server.issuer("tenant");
    for path in [
        "/.well-known/oauth-authorization-server/oauth2/tenant",
        "/oauth2/tenant/.well-known/openid-configuration",
        "/oauth2/tenant/.well-known/oauth-authorization-server",
    ] {
        let (status, _, doc) = get_json(&server, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(doc["issuer"], issuer.as_str(), "{path}");
        assert_eq!(doc["token_endpoint"], format!("{issuer}/token"));
        assert_eq!(doc["jwks_uri"], format!("{issuer}/keys"));
        assert_eq!(
            doc["introspection_endpoint"],
            format!("{issuer}/introspect")
        );
        assert_eq!(doc["revocation_endpoint"], format!("{issuer}/revoke"));
    }
}

async fn unknown_servers_are_not_found(backend: Backend) {
    let server = TestServer::start(backend).await;
    for path in [
        "/oauth2/nope/.well-known/openid-configuration",
        "/oauth2/nope/keys",
        "/.well-known/oauth-authorization-server/oauth2/nope",
        // The default server lives at the root only.
        "/oauth2/default/keys",
        "/no-such-endpoint",
    ] {
        let (status, _, body) = get_json(&server, path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["error"], "not_found", "{path}");
    }
    let response = server
        .post_form(
            "/oauth2/nope/token",
            None,
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(response.status(), 404);
}

/// JWKS: public RSA signing keys only, with a cache lifetime.
async fn jwks_publishes_public_signing_keys_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, headers, jwks) = get_json(&server, "/keys").await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "public, max-age=300");
    let keys = jwks["keys"].as_array().expect("keys array");
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().expect("JWK object");
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert_eq!(key["e"], "AQAB");
    // 2048-bit modulus: 256 bytes, 342 base64url characters.
    assert_eq!(key["n"].as_str().map(str::len), Some(342));
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        assert!(!key.contains_key(private), "JWKS leaks `{private}`");
    }
}

/// Browser apps fetch discovery and keys cross-origin.
async fn discovery_and_keys_allow_cross_origin_reads(backend: Backend) {
    let server = TestServer::start(backend).await;
    for path in ["/keys", "/.well-known/openid-configuration"] {
        let response = server
            .http
            .get(server.url(path))
            .header("origin", "https://app.example.com")
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
    }
}

on_both_databases!(
    discovery_documents_describe_the_default_server,
    discovery_lists_registered_scopes,
    path_issuer_documents_are_served_where_the_specs_put_them,
    unknown_servers_are_not_found,
    jwks_publishes_public_signing_keys_only,
    discovery_and_keys_allow_cross_origin_reads,
);
