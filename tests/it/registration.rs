//! Dynamic client registration (RFC 7591) and client configuration (RFC 7592), per server
//! policy: closed (404), token (an initial access token, single use when so made), open.
//! Metadata is checked as RFC 7591 §2 says, with its §3.2.2 errors, and refusals store nothing.

use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::common::snapshot::Snapshot;
use crate::common::{Backend, TestServer};
use crate::on_both_databases;
use portcullis::manage::registration::{create_initial_token, set_policy};
use portcullis::manage::Actor;
use portcullis::store::registration::RegistrationPolicy;

async fn register(server: &TestServer, token: Option<&str>, metadata: Value) -> Response {
    let mut request = server.http.post(server.url("/register")).json(&metadata);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("register")
}

async fn assert_error(response: Response, status: u16, error: &str) {
    assert_eq!(response.status().as_u16(), status, "status of {error}");
    let body: Value = response.json().await.expect("error JSON");
    assert_eq!(body["error"], error, "{body}");
}

async fn discovery(server: &TestServer) -> Value {
    server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn web_app() -> Value {
    json!({
        "client_name": "Photo printer",
        "redirect_uris": ["https://printer.example/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "openid profile",
    })
}

async fn registration_is_closed_by_default_and_opens_with_a_token_policy(backend: Backend) {
    let server = TestServer::start(backend).await;
    assert!(discovery(&server)
        .await
        .get("registration_endpoint")
        .is_none());
    assert_error(register(&server, None, web_app()).await, 404, "not_found").await;

    let now = server.clock_now();
    set_policy(
        server.store(),
        "default",
        RegistrationPolicy::Token,
        &Actor::Cli,
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        discovery(&server).await["registration_endpoint"],
        server.url("/register")
    );
    // No token, a wrong one: 401, nothing stored.
    let before = Snapshot::take(&server).await;
    let response = register(&server, None, web_app()).await;
    assert!(response.headers().contains_key("www-authenticate"));
    assert_error(response, 401, "invalid_token").await;
    assert_error(
        register(&server, Some("guess"), web_app()).await,
        401,
        "invalid_token",
    )
    .await;
    before.assert_unchanged_except(
        &Snapshot::take(&server).await,
        &["rate_limits"],
        "refused registrations",
    );

    // A single-use token registers once.
    let (_, token) =
        create_initial_token(server.store(), "default", 600, Some(1), &Actor::Cli, now)
            .await
            .unwrap();
    let response = register(&server, Some(token.expose()), web_app()).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let registered: Value = response.json().await.unwrap();
    assert!(registered["client_secret"].as_str().is_some());
    assert_eq!(registered["client_secret_expires_at"], 0);
    assert_eq!(
        registered["token_endpoint_auth_method"],
        "client_secret_basic"
    );
    assert_eq!(
        registered["redirect_uris"],
        json!(["https://printer.example/cb"])
    );
    let client_id = registered["client_id"].as_str().unwrap();
    let stored = server
        .store()
        .client(client_id)
        .await
        .unwrap()
        .expect("stored");
    assert!(!stored.first_party, "registered clients ask for consent");
    assert_error(
        register(&server, Some(token.expose()), web_app()).await,
        401,
        "invalid_token",
    )
    .await;

    // An expired token: refused.
    let (_, short) = create_initial_token(server.store(), "default", 60, None, &Actor::Cli, now)
        .await
        .unwrap();
    server.clock.advance(61);
    assert_error(
        register(&server, Some(short.expose()), web_app()).await,
        401,
        "invalid_token",
    )
    .await;
    // A token of another server: refused.
    server.create_server("tenant").await;
    let (_, foreign) = create_initial_token(
        server.store(),
        "tenant",
        600,
        None,
        &Actor::Cli,
        server.clock_now(),
    )
    .await
    .unwrap();
    assert_error(
        register(&server, Some(foreign.expose()), web_app()).await,
        401,
        "invalid_token",
    )
    .await;
}

async fn bad_metadata_gets_the_rfc_7591_errors_and_stores_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    set_policy(
        server.store(),
        "default",
        RegistrationPolicy::Open,
        &Actor::Cli,
        server.clock_now(),
    )
    .await
    .unwrap();
    let before = Snapshot::take(&server).await;
    let cases = [
        (
            json!({"redirect_uris": ["https://app.example/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://app.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["not a uri"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_client_metadata"),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["password"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "scope": "portcullis.clients.manage"}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "scope": "made.up"}),
            "invalid_client_metadata",
        ),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ];
    for (metadata, error) in cases {
        let response = register(&server, None, metadata.clone()).await;
        assert_eq!(response.status(), 400, "{metadata}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{metadata}: {body}");
    }
    let response = server
        .http
        .post(server.url("/register"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "invalid_client_metadata").await;
    before.assert_unchanged_except(
        &Snapshot::take(&server).await,
        &["rate_limits"],
        "bad metadata",
    );

    // A native app: loopback and private-use redirect URIs, public (PKCE), no secret.
    let response = register(
        &server,
        None,
        json!({
            "redirect_uris": ["http://127.0.0.1:7777/cb", "com.example.app:/oauth"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    assert_eq!(response.status(), 201);
    let native: Value = response.json().await.unwrap();
    assert!(native.get("client_secret").is_none());
    assert_eq!(native["grant_types"], json!(["authorization_code"]));
    assert_eq!(native["response_types"], json!(["code"]));
}

async fn a_registered_client_reads_updates_and_deletes_itself(backend: Backend) {
    let server = TestServer::start(backend).await;
    set_policy(
        server.store(),
        "default",
        RegistrationPolicy::Open,
        &Actor::Cli,
        server.clock_now(),
    )
    .await
    .unwrap();
    let registered: Value = register(&server, None, web_app())
        .await
        .json()
        .await
        .unwrap();
    let uri = registered["registration_client_uri"]
        .as_str()
        .unwrap()
        .to_string();
    let client_id = registered["client_id"].as_str().unwrap().to_string();
    assert_eq!(uri, server.url(&format!("/register/{client_id}")));
    let token = registered["registration_access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let call = |method: Method, token: &str, body: Option<Value>| {
        let mut request = server.http.request(method, &uri).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };

    let read: Value = call(Method::GET, &token, None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["client_id"], client_id.as_str());
    assert_eq!(read["client_name"], "Photo printer");
    assert!(read.get("client_secret").is_none());
    // Without the token, with another, for another client: 401 alike.
    assert_error(
        call(Method::GET, "wrong", None).await.unwrap(),
        401,
        "invalid_token",
    )
    .await;
    let other: Value = register(&server, None, web_app())
        .await
        .json()
        .await
        .unwrap();
    let other_token = other["registration_access_token"].as_str().unwrap();
    assert_error(
        call(Method::GET, other_token, None).await.unwrap(),
        401,
        "invalid_token",
    )
    .await;

    // Update: replaces the metadata and rotates the registration access token.
    let mut metadata = web_app();
    metadata["client_id"] = json!(client_id);
    metadata["client_name"] = json!("Photo printer 2");
    metadata["redirect_uris"] = json!(["https://printer.example/cb2"]);
    let response = call(Method::PUT, &token, Some(metadata.clone()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["client_name"], "Photo printer 2");
    assert_eq!(
        updated["redirect_uris"],
        json!(["https://printer.example/cb2"])
    );
    let new_token = updated["registration_access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_token, token);
    assert_error(
        call(Method::GET, &token, None).await.unwrap(),
        401,
        "invalid_token",
    )
    .await;
    // A bad update changes nothing.
    let before = Snapshot::take(&server).await;
    metadata["redirect_uris"] = json!(["http://evil.example/cb"]);
    assert_error(
        call(Method::PUT, &new_token, Some(metadata)).await.unwrap(),
        400,
        "invalid_redirect_uri",
    )
    .await;
    before.assert_unchanged(&Snapshot::take(&server).await, "a refused update");

    // Delete: 204, then the client is gone and the token opens nothing.
    assert_eq!(
        call(Method::DELETE, &new_token, None)
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(server.store().client(&client_id).await.unwrap().is_none());
    assert_error(
        call(Method::GET, &new_token, None).await.unwrap(),
        401,
        "invalid_token",
    )
    .await;
}

async fn open_registration_is_rate_limited_per_address(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.rate_limits.registrations_per_ip = 3;
    })
    .await;
    set_policy(
        server.store(),
        "default",
        RegistrationPolicy::Open,
        &Actor::Cli,
        server.clock_now(),
    )
    .await
    .unwrap();
    for _ in 0..3 {
        assert_eq!(register(&server, None, web_app()).await.status(), 201);
    }
    let response = register(&server, None, web_app()).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_error(response, 429, "temporarily_unavailable").await;
}

async fn the_admin_server_never_takes_registrations(backend: Backend) {
    let server = TestServer::start(backend).await;
    let refused = set_policy(
        server.store(),
        "admin",
        RegistrationPolicy::Open,
        &Actor::Cli,
        server.clock_now(),
    )
    .await;
    assert!(refused.is_err());
    let response = server
        .http
        .post(server.url("/oauth2/admin/register"))
        .json(&json!({"grant_types": ["client_credentials"], "scope": "portcullis.users.manage"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "not_found").await;
}

/// The operator's side with the binary: `server update --registration`, `registration-token
/// create|list|revoke`, all JSON, the token shown once and working once when `--uses 1`.
async fn the_cli_opens_registration_and_makes_initial_access_tokens(backend: Backend) {
    use crate::common::{OutputWithin, TestDatabase};
    let db = TestDatabase::create(backend).await;
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(args)
            .env("PORTCULLIS_DATABASE_URL", &db.url)
            .env_remove("PORTCULLIS_CONFIG")
            .bounded_output();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).expect("JSON on stdout")
    };
    let server = run(&[
        "server",
        "update",
        "--id",
        "default",
        "--registration",
        "token",
    ]);
    assert_eq!(server["registration"], "token");
    let created = run(&["registration-token", "create", "--ttl", "1h", "--uses", "1"]);
    let token = created["token"]
        .as_str()
        .expect("token shown once")
        .to_string();
    let listed = run(&["registration-token", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(
        !listed.to_string().contains(&token),
        "the list never shows the token"
    );
    let revoked = run(&[
        "registration-token",
        "revoke",
        created["id"].as_str().unwrap(),
    ]);
    assert_eq!(revoked["revoked"], created["id"]);
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "server",
            "update",
            "--id",
            "admin",
            "--registration",
            "open",
        ])
        .env("PORTCULLIS_DATABASE_URL", &db.url)
        .env_remove("PORTCULLIS_CONFIG")
        .bounded_output();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("admin"));
}

on_both_databases!(
    the_cli_opens_registration_and_makes_initial_access_tokens,
    registration_is_closed_by_default_and_opens_with_a_token_policy,
    bad_metadata_gets_the_rfc_7591_errors_and_stores_nothing,
    a_registered_client_reads_updates_and_deletes_itself,
    open_registration_is_rate_limited_per_address,
    the_admin_server_never_takes_registrations,
);
