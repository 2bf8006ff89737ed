//! Token exchange (RFC 8693): an API (the gateway) trades a user's access token for one meant
//! for another API, narrowed; with an actor token the new token says who acts (`act`);
//! revoking the user's grant withdraws the exchanged token; every bad request gets its error.

use portcullis::manage::clients::{update_client, ClientChanges, ClientRequest};
use portcullis::protocol::GrantType;
use serde_json::Value;

use crate::common::{assert_oauth_error, Backend, TestServer};
use crate::jwt::{fetch_jwks, verify};
use crate::on_both_databases;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

struct Setup {
    server: TestServer,
    /// The app the user signs in to (password grant, for brevity).
    app: (String, String),
    /// The API that exchanges the user's token to call the orders API.
    gateway: (String, String),
    /// The user's access token, issued to the app.
    user_token: String,
}

async fn confidential(
    server: &TestServer,
    name: &str,
    grants: &[GrantType],
    scopes: &[&str],
) -> (String, String) {
    let (client, secret) = server
        .register(ClientRequest {
            server_id: "default".into(),
            name: name.into(),
            grant_types: grants.to_vec(),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            default_scopes: vec![],
            public: false,
            first_party: true,
            auth_method: None,
        })
        .await;
    (client.id, secret.expect("secret").expose().to_string())
}

async fn allow_audiences(server: &TestServer, client_id: &str, audiences: &[&str]) {
    update_client(
        server.store(),
        client_id,
        ClientChanges {
            token_exchange_audiences: Some(audiences.iter().map(|s| s.to_string()).collect()),
            ..ClientChanges::default()
        },
        server.clock_now(),
    )
    .await
    .expect("allow audiences");
}

async fn user_token(server: &TestServer, app: &(String, String), scope: &str) -> String {
    let response = server
        .post_form(
            "/token",
            Some((&app.0, &app.1)),
            &[
                ("grant_type", "password"),
                ("username", "ada"),
                ("password", "correct horse"),
                ("scope", scope),
            ],
        )
        .await;
    assert_eq!(response.status(), 200, "password grant");
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

async fn setup(backend: Backend) -> Setup {
    let server = TestServer::start(backend).await;
    server.create_user("ada", "correct horse").await;
    let app = confidential(
        &server,
        "Shop",
        &[GrantType::Password, GrantType::RefreshToken],
        &["orders.read", "orders.write"],
    )
    .await;
    let gateway = confidential(
        &server,
        "Gateway",
        &[GrantType::TokenExchange, GrantType::ClientCredentials],
        &["orders.read", "orders.write"],
    )
    .await;
    allow_audiences(
        &server,
        &gateway.0,
        &["api://orders", "https://billing.example/"],
    )
    .await;
    let user_token = user_token(&server, &app, "openid orders.read orders.write").await;
    Setup {
        server,
        app,
        gateway,
        user_token,
    }
}

async fn exchange(
    server: &TestServer,
    client: &(String, String),
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut all = vec![("grant_type", EXCHANGE)];
    all.extend_from_slice(form);
    server
        .post_form("/token", Some((&client.0, &client.1)), &all)
        .await
}

async fn verified(server: &TestServer, token: &str, audience: &str) -> Value {
    let jwks = fetch_jwks(&server.http, &server.url("/keys")).await;
    verify(token, &jwks, &server.base, audience).expect("exchanged token verifies")
}

async fn a_user_token_is_exchanged_for_another_audience_narrowed(backend: Backend) {
    let s = setup(backend).await;
    let response = exchange(
        &s.server,
        &s.gateway,
        &[
            ("subject_token", &s.user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "api://orders"),
            ("scope", "orders.read"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "orders.read");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body.get("id_token").is_none(), "{body}");
    let claims = verified(
        &s.server,
        body["access_token"].as_str().unwrap(),
        "api://orders",
    )
    .await;
    let subject = verified(&s.server, &s.user_token, "api://default").await;
    assert_eq!(claims["sub"], subject["sub"], "the same user");
    assert_eq!(claims["aud"], "api://orders");
    assert_eq!(claims["client_id"], s.gateway.0.as_str());
    assert_eq!(claims["gid"], subject["gid"], "under the subject's grant");
    assert!(claims.get("act").is_none(), "no actor token, no act");
    // `resource` names the target just as well; no scope: all the subject's that the client may have.
    let response = exchange(
        &s.server,
        &s.gateway,
        &[
            ("subject_token", &s.user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("resource", "https://billing.example/"),
            ("requested_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "openid orders.read orders.write");
}

async fn delegation_nests_the_actors_in_act(backend: Backend) {
    let s = setup(backend).await;
    let gateway_token = s
        .server
        .client_credentials_token("", (&s.gateway.0, &s.gateway.1))
        .await;
    let response = exchange(
        &s.server,
        &s.gateway,
        &[
            ("subject_token", &s.user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("actor_token", &gateway_token),
            ("actor_token_type", ACCESS_TOKEN),
            ("audience", "api://orders"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let first = body["access_token"].as_str().unwrap().to_string();
    let claims = verified(&s.server, &first, "api://orders").await;
    assert_eq!(claims["act"]["sub"], s.gateway.0.as_str());
    assert!(claims["act"].get("act").is_none());
    // The orders API, itself a client, exchanges again to call billing: the gateway nests.
    let orders = confidential(
        &s.server,
        "Orders API",
        &[GrantType::TokenExchange, GrantType::ClientCredentials],
        &["orders.read"],
    )
    .await;
    allow_audiences(&s.server, &orders.0, &["https://billing.example/"]).await;
    let orders_token = s
        .server
        .client_credentials_token("", (&orders.0, &orders.1))
        .await;
    let response = exchange(
        &s.server,
        &orders,
        &[
            ("subject_token", &first),
            ("subject_token_type", ACCESS_TOKEN),
            ("actor_token", &orders_token),
            ("actor_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let second = verified(
        &s.server,
        body["access_token"].as_str().unwrap(),
        "https://billing.example/",
    )
    .await;
    assert_eq!(
        second["act"]["sub"],
        orders.0.as_str(),
        "the current actor outermost"
    );
    assert_eq!(
        second["act"]["act"]["sub"],
        s.gateway.0.as_str(),
        "the earlier one inside"
    );
    assert_eq!(
        second["scope"], "openid orders.read",
        "only what the orders API may have"
    );
}

async fn revoking_the_subjects_grant_withdraws_exchanged_tokens(backend: Backend) {
    let s = setup(backend).await;
    let response = exchange(
        &s.server,
        &s.gateway,
        &[
            ("subject_token", &s.user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "api://orders"),
        ],
    )
    .await;
    let body: Value = response.json().await.unwrap();
    let exchanged = body["access_token"].as_str().unwrap().to_string();
    let gateway = (s.gateway.0.as_str(), s.gateway.1.as_str());
    assert!(s.server.is_active(gateway, &exchanged).await);
    let subject = verified(&s.server, &s.user_token, "api://default").await;
    s.server
        .store()
        .revoke_grant(subject["gid"].as_str().unwrap(), s.server.clock_now())
        .await
        .unwrap();
    assert!(
        !s.server.is_active(gateway, &exchanged).await,
        "withdrawn with the grant"
    );
    // And the revoked subject token cannot be exchanged any more.
    let response = exchange(
        &s.server,
        &s.gateway,
        &[
            ("subject_token", &s.user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "api://orders"),
        ],
    )
    .await;
    assert_oauth_error(response, 400, "invalid_request").await;
}

/// A bad exchange: what it is, the client, the form, the status and error it gets.
type Case<'a> = (
    &'a str,
    &'a (String, String),
    Vec<(String, String)>,
    u16,
    &'a str,
);

async fn token_exchange_errors(backend: Backend) {
    let s = setup(backend).await;
    let server = &s.server;
    let subject = s.user_token.as_str();
    // A token of another server, an expired one, a client's own token.
    server.create_server("other").await;
    let (other_service, other_secret) = server.service_client("other", &["x"]).await;
    let foreign = server
        .client_credentials_token("/oauth2/other", (&other_service.id, other_secret.expose()))
        .await;
    let (no_user_client, no_user_secret) = server.service_client("default", &["orders.read"]).await;
    let client_token = server
        .client_credentials_token("", (&no_user_client.id, no_user_secret.expose()))
        .await;
    // Clients: one without the grant, one with the grant but no audience.
    let idle = confidential(
        server,
        "Idle",
        &[GrantType::TokenExchange],
        &["orders.read"],
    )
    .await;
    let base = [
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "api://orders"),
    ];
    let with = |changes: &[(&'static str, Option<&'static str>)]| -> Vec<(String, String)> {
        let mut form: Vec<(String, String)> = base
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in changes {
            form.retain(|(name, _)| name != k);
            if let Some(v) = v {
                form.push((k.to_string(), v.to_string()));
            }
        }
        form
    };
    let leaked: &'static str = Box::leak(foreign.into_boxed_str());
    let client_token: &'static str = Box::leak(client_token.into_boxed_str());
    let cases: Vec<Case> = vec![
        (
            "a client without the grant",
            &s.app,
            with(&[]),
            400,
            "unauthorized_client",
        ),
        (
            "a client with no audience configured",
            &idle,
            with(&[]),
            400,
            "unauthorized_client",
        ),
        (
            "an audience not allowed",
            &s.gateway,
            with(&[("audience", Some("api://payroll"))]),
            400,
            "invalid_target",
        ),
        (
            "a resource not allowed",
            &s.gateway,
            with(&[
                ("audience", None),
                ("resource", Some("https://payroll.example/")),
            ]),
            400,
            "invalid_target",
        ),
        (
            "audience and resource apart",
            &s.gateway,
            with(&[("resource", Some("https://billing.example/"))]),
            400,
            "invalid_target",
        ),
        (
            "no target, several allowed",
            &s.gateway,
            with(&[("audience", None)]),
            400,
            "invalid_request",
        ),
        (
            "no subject_token",
            &s.gateway,
            with(&[("subject_token", None)]),
            400,
            "invalid_request",
        ),
        (
            "no subject_token_type",
            &s.gateway,
            with(&[("subject_token_type", None)]),
            400,
            "invalid_request",
        ),
        (
            "a subject_token that is no JWT",
            &s.gateway,
            with(&[("subject_token", Some("garbage"))]),
            400,
            "invalid_request",
        ),
        (
            "an ID token type",
            &s.gateway,
            with(&[(
                "subject_token_type",
                Some("urn:ietf:params:oauth:token-type:id_token"),
            )]),
            400,
            "invalid_request",
        ),
        (
            "a refresh token requested",
            &s.gateway,
            with(&[(
                "requested_token_type",
                Some("urn:ietf:params:oauth:token-type:refresh_token"),
            )]),
            400,
            "invalid_request",
        ),
        (
            "an actor_token without its type",
            &s.gateway,
            with(&[("actor_token", Some("x"))]),
            400,
            "invalid_request",
        ),
        (
            "an actor_token_type without a token",
            &s.gateway,
            with(&[("actor_token_type", Some(ACCESS_TOKEN))]),
            400,
            "invalid_request",
        ),
        (
            "an actor_token that is not ours",
            &s.gateway,
            with(&[
                ("actor_token", Some(leaked)),
                ("actor_token_type", Some(ACCESS_TOKEN)),
            ]),
            400,
            "invalid_request",
        ),
        (
            "a token of another server",
            &s.gateway,
            with(&[("subject_token", Some(leaked))]),
            400,
            "invalid_request",
        ),
        (
            "a client's own token (no user)",
            &s.gateway,
            with(&[("subject_token", Some(client_token))]),
            400,
            "invalid_request",
        ),
        (
            "a scope the subject lacks",
            &s.gateway,
            with(&[("scope", Some("orders.admin"))]),
            400,
            "invalid_scope",
        ),
        (
            "a malformed scope",
            &s.gateway,
            with(&[("scope", Some("a\"b"))]),
            400,
            "invalid_scope",
        ),
    ];
    for (case, client, form, status, code) in cases {
        let mut all = vec![("grant_type".to_string(), EXCHANGE.to_string())];
        all.extend(form);
        let response = server
            .http
            .post(server.url("/token"))
            .basic_auth(&client.0, Some(&client.1))
            .form(&all)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], code, "{case}: {body}");
    }
    // An expired subject token.
    server.clock.advance(3601);
    let response = exchange(server, &s.gateway, &base).await;
    assert_oauth_error(response, 400, "invalid_request").await;
    // None of these issued anything.
    server.state.audit.flush().await;
    let exchanged = server
        .store()
        .audit_events(&portcullis::store::AuditFilter {
            kind: Some("token_exchanged".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(exchanged.is_empty(), "{exchanged:?}");
}

async fn a_public_client_cannot_be_given_token_exchange(backend: Backend) {
    let server = TestServer::start(backend).await;
    let result = portcullis::manage::clients::register_client(
        server.store(),
        ClientRequest {
            server_id: "default".into(),
            name: "spa".into(),
            grant_types: vec![GrantType::TokenExchange],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: vec![],
            default_scopes: vec![],
            public: true,
            first_party: false,
            auth_method: None,
        },
        server.clock_now(),
    )
    .await;
    assert!(result.is_err());
}

/// `client update ID --token-exchange-audience AUD …`: stored per client, replaced as a whole,
/// emptied with `''`; never for a public client; audited.
async fn the_cli_sets_the_audiences_a_client_may_exchange_for(backend: Backend) {
    use crate::common::replicas::cli;
    let s = setup(backend).await;
    let env = vec![(
        "PORTCULLIS_DATABASE_URL".to_string(),
        s.server.db.url.clone(),
    )];
    let created = cli(
        &env,
        &[
            "client",
            "create",
            "--name",
            "Reports",
            "--grant-type",
            "token-exchange",
            "--scope",
            "orders.read",
        ],
        "",
    )
    .expect("client create");
    let id = created["client_id"].as_str().unwrap().to_string();
    assert_eq!(created["token_exchange_audiences"], serde_json::json!([]));
    let updated = cli(
        &env,
        &[
            "client",
            "update",
            &id,
            "--token-exchange-audience",
            "api://orders",
            "--token-exchange-audience",
            "https://billing.example/",
        ],
        "",
    )
    .expect("client update");
    assert_eq!(
        updated["token_exchange_audiences"],
        serde_json::json!(["api://orders", "https://billing.example/"])
    );
    let secret = created["client_secret"].as_str().unwrap().to_string();
    let reports = (id.clone(), secret);
    let response = exchange(
        &s.server,
        &reports,
        &[
            ("subject_token", &s.user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "api://orders"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let emptied = cli(
        &env,
        &["client", "update", &id, "--token-exchange-audience", ""],
        "",
    )
    .expect("emptied");
    assert_eq!(emptied["token_exchange_audiences"], serde_json::json!([]));
    let response = exchange(
        &s.server,
        &reports,
        &[
            ("subject_token", &s.user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "api://orders"),
        ],
    )
    .await;
    assert_oauth_error(response, 400, "unauthorized_client").await;
    let refused = cli(
        &env,
        &[
            "client",
            "update",
            &id,
            "--token-exchange-audience",
            "two words",
        ],
        "",
    )
    .unwrap_err();
    assert!(refused.contains("without spaces"), "{refused}");
    let public = cli(
        &env,
        &[
            "client",
            "create",
            "--name",
            "SPA",
            "--public",
            "--grant-type",
            "device_code",
        ],
        "",
    )
    .unwrap();
    let public_id = public["client_id"].as_str().unwrap();
    let refused = cli(
        &env,
        &[
            "client",
            "update",
            public_id,
            "--token-exchange-audience",
            "api://orders",
        ],
        "",
    )
    .unwrap_err();
    assert!(refused.contains("public client"), "{refused}");
    let updates = s
        .server
        .store()
        .audit_events(&portcullis::store::AuditFilter {
            kind: Some("client_updated".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(updates.len(), 2, "the two accepted updates");
}

/// Introspection knows an exchanged token only while its audience is one its client may
/// exchange for: any other audience, even signed by the server's key, is not the server's.
async fn an_exchanged_token_is_introspected_while_its_audience_is_configured(backend: Backend) {
    let s = setup(backend).await;
    let response = exchange(
        &s.server,
        &s.gateway,
        &[
            ("subject_token", &s.user_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "api://orders"),
        ],
    )
    .await;
    let body: Value = response.json().await.unwrap();
    let exchanged = body["access_token"].as_str().unwrap().to_string();
    let gateway = (s.gateway.0.as_str(), s.gateway.1.as_str());
    let answer = s.server.introspect("", gateway, &exchanged, None).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["aud"], "api://orders");
    allow_audiences(&s.server, &s.gateway.0, &["https://billing.example/"]).await;
    assert!(!s.server.is_active(gateway, &exchanged).await);
}

on_both_databases!(
    a_user_token_is_exchanged_for_another_audience_narrowed,
    delegation_nests_the_actors_in_act,
    revoking_the_subjects_grant_withdraws_exchanged_tokens,
    token_exchange_errors,
    a_public_client_cannot_be_given_token_exchange,
    the_cli_sets_the_audiences_a_client_may_exchange_for,
    an_exchanged_token_is_introspected_while_its_audience_is_configured,
);
