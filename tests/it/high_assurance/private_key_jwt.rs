//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9) at /token,
//! /introspect and /revoke: assertions signed by keys the test generates, every refusal an
//! `invalid_client` (401) that is audited and issues nothing.

use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use jsonwebtoken::Algorithm;
use portcullis::manage::client_security::{update_client_security, SecurityChanges};
use portcullis::protocol::ClientAuthMethod;
use portcullis::store::Client;
use serde_json::{json, Value};

use super::{
    assertion_claims, audit_count, forged, jwks, post, use_private_key_jwt, TestKey, ASSERTION_TYPE,
};
use crate::common::{assert_oauth_error, Backend, TestServer};
use crate::on_both_databases;

/// A client credentials request authenticated by `assertion`.
async fn token_with(server: &TestServer, assertion: &str) -> reqwest::Response {
    post(
        server,
        "/token",
        &[],
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ],
    )
    .await
}

async fn private_key_jwt_works_with_each_algorithm_at_token_introspect_and_revoke(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let keys = [
        TestKey::rsa("rs", Algorithm::RS256),
        TestKey::rsa("ps", Algorithm::PS256),
        TestKey::es256("es"),
        TestKey::ed25519("ed"),
    ];
    let (client, _) = server.service_client("default", &["invoices.read"]).await;
    let client =
        use_private_key_jwt(&server, &client, &jwks(&keys.iter().collect::<Vec<_>>())).await;
    assert_eq!(client.auth_method, ClientAuthMethod::PrivateKeyJwt);
    // The old secret is gone: moving to keys drops it.
    let response = server
        .post_form(
            "/token",
            Some((&client.id, "anything")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_oauth_error(response, 401, "invalid_client").await;

    let now = server.clock_now();
    // aud may be the token endpoint URL or the issuer (RFC 7523 §3, RFC 9126 §2).
    let audiences = [server.url("/token"), server.base.clone()];
    let mut tokens = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let claims = assertion_claims(&client.id, &audiences[i % 2], now, &format!("jti-{i}"));
        let assertion = key.sign(json!({"kid": key.kid, "typ": "JWT"}), &claims);
        let response = token_with(&server, &assertion).await;
        assert_eq!(response.status(), 200, "{}", key.alg_name());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        tokens.push(body["access_token"].as_str().unwrap().to_string());
    }
    // Without a kid, any registered key of the algorithm's kind is tried.
    let claims = assertion_claims(&client.id, &server.base, now, "no-kid");
    let response = token_with(&server, &keys[2].sign(json!({}), &claims)).await;
    assert_eq!(response.status(), 200, "ES256 without kid");

    // Introspection and revocation take the same assertions (client_id in the body too).
    let assertion = keys[0].sign(
        json!({"kid": "rs"}),
        &assertion_claims(&client.id, &server.url("/token"), now, "introspect"),
    );
    let response = post(
        &server,
        "/introspect",
        &[],
        &[
            ("token", &tokens[0]),
            ("client_id", &client.id),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["client_id"], client.id.as_str());
    let assertion = keys[3].sign(
        json!({"kid": "ed"}),
        &assertion_claims(&client.id, &server.base, now, "revoke"),
    );
    let response = post(
        &server,
        "/revoke",
        &[],
        &[
            ("token", &tokens[0]),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    assert_eq!(response.status(), 200, "revocation");
    let assertion = keys[1].sign(
        json!({"kid": "ps"}),
        &assertion_claims(&client.id, &server.base, now, "introspect-2"),
    );
    let response = post(
        &server,
        "/introspect",
        &[],
        &[
            ("token", &tokens[0]),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["active"], false, "revoked with an assertion");
}

async fn every_bad_assertion_is_invalid_client_audited_and_issues_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rsa = TestKey::rsa("rs", Algorithm::RS256);
    let ec = TestKey::es256("es");
    let stranger = TestKey::es256("es"); // same kid, not registered
    let (client, _) = server.service_client("default", &["invoices.read"]).await;
    let (other, _) = server.service_client("default", &["invoices.read"]).await;
    let client = use_private_key_jwt(&server, &client, &jwks(&[&rsa, &ec])).await;
    let now = server.clock_now();
    let token_url = server.url("/token");
    let good = |jti: &str| assertion_claims(&client.id, &token_url, now, jti);
    let with = |jti: &str, name: &str, value: Value| {
        let mut claims = good(jti);
        claims[name] = value;
        claims
    };
    let without = |jti: &str, name: &str| {
        let mut claims = good(jti);
        claims.as_object_mut().unwrap().remove(name);
        claims
    };
    let [none, hs256] = forged(&rsa, &good("forged"));
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong aud",
            ec.sign(
                json!({"kid": "es"}),
                &with("a", "aud", json!("https://elsewhere.example/token")),
            ),
        ),
        (
            "expired",
            ec.sign(json!({"kid": "es"}), &with("b", "exp", json!(now - 1))),
        ),
        (
            "exp too far after iat",
            ec.sign(json!({"kid": "es"}), &with("c", "exp", json!(now + 3600))),
        ),
        (
            "no exp",
            ec.sign(json!({"kid": "es"}), &without("d", "exp")),
        ),
        (
            "no jti",
            ec.sign(json!({"kid": "es"}), &without("e", "jti")),
        ),
        (
            "iss of another client",
            ec.sign(json!({"kid": "es"}), &with("f", "iss", json!(other.id))),
        ),
        (
            "sub of another client",
            ec.sign(json!({"kid": "es"}), &with("g", "sub", json!(other.id))),
        ),
        (
            "iat in the future",
            ec.sign(json!({"kid": "es"}), &with("h", "iat", json!(now + 600))),
        ),
        (
            "signed by an unregistered key",
            stranger.sign(json!({"kid": "es"}), &good("i")),
        ),
        ("unknown kid", ec.sign(json!({"kid": "nope"}), &good("j"))),
        // The RSA key's kid under ES256: the key does not fit the algorithm.
        (
            "algorithm of another key",
            ec.sign(json!({"kid": "rs"}), &good("k")),
        ),
        ("alg none", none),
        ("HS256 with the public key", hs256),
        (
            "a DPoP proof is not an assertion",
            ec.sign(json!({"kid": "es", "typ": "dpop+jwt"}), &good("l")),
        ),
        ("not a JWT", "not.a.jwt".to_string()),
        // Signed, but which `exp` counts would be up to the parser: the expired one first, a
        // good one last (RFC 7519 §4).
        ("exp named twice", {
            let claims = good("n").to_string();
            let twice = format!(r#"{{"exp":{},{}"#, now - 60, &claims[1..]);
            ec.sign_text(r#"{"alg":"ES256","kid":"es"}"#, &twice)
        }),
        (
            "kid not a string",
            ec.sign_text(r#"{"alg":"ES256","kid":7}"#, &good("o").to_string()),
        ),
    ];
    for (case, assertion) in &cases {
        let response = post(
            &server,
            "/token",
            &[],
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client.id),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", assertion),
            ],
        )
        .await;
        assert_eq!(response.status(), 401, "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{case}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{case}: a description"
        );
    }
    // Every refusal of a registered client's assertion is audited (the malformed ones that
    // name no client by `sub` are refused before a client is known: all of ours carry it).
    assert_eq!(
        audit_count(&server, "client_authentication_failed").await,
        cases.len()
    );
    assert_eq!(
        audit_count(&server, "token_issued").await,
        0,
        "nothing issued"
    );

    // The wrong assertion type, and two methods at once.
    let assertion = ec.sign(json!({"kid": "es"}), &good("m"));
    let response = post(
        &server,
        "/token",
        &[],
        &[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    assert_oauth_error(response, 401, "invalid_client").await;
    let response = post(
        &server,
        "/token",
        &[],
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", "s"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    assert_oauth_error(response, 400, "invalid_request").await;
    // A client registered for secrets cannot present an assertion instead.
    let response = post(
        &server,
        "/token",
        &[],
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &other.id),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    assert_oauth_error(response, 401, "invalid_client").await;
    // Still usable with a good assertion: the refusals spent nothing.
    let response = token_with(&server, &ec.sign(json!({"kid": "es"}), &good("n"))).await;
    assert_eq!(response.status(), 200);
}

async fn an_assertion_is_single_use_across_replicas(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = TestKey::es256("k1");
    let (client, _) = server.service_client("default", &["invoices.read"]).await;
    let client = use_private_key_jwt(&server, &client, &jwks(&[&key])).await;
    // A second replica on the same database, serving the same issuer.
    let issuer = server.base.clone();
    let replica = server
        .replica(move |c| c.issuer = issuer)
        .await
        .expect("replica");
    let now = server.clock_now();
    let assertion = key.sign(
        json!({"kid": "k1"}),
        &assertion_claims(&client.id, &server.url("/token"), now, "once"),
    );
    assert_eq!(token_with(&server, &assertion).await.status(), 200);
    let replayed = token_with(&replica, &assertion).await;
    let body: Value = {
        assert_eq!(replayed.status(), 401, "replayed on another replica");
        replayed.json().await.unwrap()
    };
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"].as_str().unwrap().contains("jti"));
    let replayed = token_with(&server, &assertion).await;
    assert_oauth_error(replayed, 401, "invalid_client").await;
    // Another client may use the same jti: ids are per issuer.
    let (second, _) = server.service_client("default", &["invoices.read"]).await;
    let second = use_private_key_jwt(&server, &second, &jwks(&[&key])).await;
    let theirs = key.sign(
        json!({"kid": "k1"}),
        &assertion_claims(&second.id, &server.url("/token"), now, "once"),
    );
    assert_eq!(token_with(&server, &theirs).await.status(), 200);
}

/// Client credentials requests, each authenticated by its assertion at its server, sent at
/// once; their statuses in order.
async fn tokens_at_once(requests: Vec<(&TestServer, String)>) -> Vec<u16> {
    let sent: Vec<_> = requests
        .into_iter()
        .map(|(server, assertion)| {
            let request = server.http.post(server.url("/token")).form(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", assertion.as_str()),
            ]);
            // The tests' HTTP client bounds each request (common::process::HTTP_LIMIT).
            tokio::spawn(async move { request.send().await.expect("request").status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for request in sent {
        statuses.push(request.await.expect("task").as_u16());
    }
    statuses
}

/// `client`, authenticating with `private_key_jwt` by the keys published at `uri`.
async fn use_jwks_uri(server: &TestServer, client: &Client, uri: &str) -> Client {
    let (client, _) = update_client_security(
        server.store(),
        client,
        Some(ClientAuthMethod::PrivateKeyJwt),
        SecurityChanges {
            jwks_uri: Some(uri.to_string()),
            ..SecurityChanges::default()
        },
        server.clock_now(),
    )
    .await
    .expect("jwks_uri client");
    client
}

/// A client's JWK Set served over HTTP on loopback, counting fetches; each answer can be made
/// to take a while (`delay_ms`) or to fail (`status`).
struct JwksHost {
    uri: String,
    keys: Arc<std::sync::Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
    delay_ms: Arc<AtomicU64>,
    status: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JwksHost {
    async fn start(keys: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let keys = Arc::new(std::sync::Mutex::new(keys));
        let fetches = Arc::new(AtomicUsize::new(0));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let status = Arc::new(AtomicU16::new(200));
        let (k, f, d, st) = (
            keys.clone(),
            fetches.clone(),
            delay_ms.clone(),
            status.clone(),
        );
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let (k, f, d, st) = (k.clone(), f.clone(), d.clone(), st.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    let delay = d.load(Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                    let status = axum::http::StatusCode::from_u16(st.load(Ordering::SeqCst))
                        .expect("status");
                    let body = k.lock().unwrap().to_string();
                    (status, [("content-type", "application/json")], body)
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            uri,
            keys,
            fetches,
            delay_ms,
            status,
            task,
        }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn jwks_uri_keys_are_cached_and_refetched_for_a_new_kid_at_most_once_a_minute(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let old = TestKey::es256("2026-11");
    let new = TestKey::ed25519("2026-12");
    let host = JwksHost::start(jwks(&[&old])).await;
    let (client, _) = server.service_client("default", &["invoices.read"]).await;
    let client = use_jwks_uri(&server, &client, &host.uri).await;
    let assertion = |key: &TestKey, jti: &str| {
        key.sign(
            json!({"kid": key.kid}),
            &assertion_claims(&client.id, &server.base, server.clock_now(), jti),
        )
    };
    assert_eq!(
        token_with(&server, &assertion(&old, "1")).await.status(),
        200
    );
    assert_eq!(
        token_with(&server, &assertion(&old, "2")).await.status(),
        200
    );
    assert_eq!(host.fetches(), 1, "cached");
    // The client rotates: the new kid fetches the set again, but not twice within a minute.
    *host.keys.lock().unwrap() = jwks(&[&old, &new]);
    server.clock.advance(10);
    let response = token_with(&server, &assertion(&new, "3")).await;
    assert_oauth_error(response, 401, "invalid_client").await;
    assert_eq!(host.fetches(), 1, "no fetch within a minute of the last");
    server.clock.advance(60);
    assert_eq!(
        token_with(&server, &assertion(&new, "4")).await.status(),
        200
    );
    assert_eq!(host.fetches(), 2, "fetched again for the unknown kid");
    assert_eq!(
        token_with(&server, &assertion(&old, "5")).await.status(),
        200
    );
    assert_eq!(host.fetches(), 2);
    // Past the cache lifetime, fetched again.
    server.clock.advance(301);
    assert_eq!(
        token_with(&server, &assertion(&old, "6")).await.status(),
        200
    );
    assert_eq!(host.fetches(), 3);
}

/// Requests that need a `jwks_uri`'s set while it is being fetched share that one fetch and
/// its outcome: the first burst of assertions, a burst naming a new `kid`, and a burst while the
/// client's server fails each cost it one GET.
async fn concurrent_requests_share_one_jwks_uri_fetch(backend: Backend) {
    let server = TestServer::start(backend).await;
    let old = TestKey::es256("2026-11");
    let new = TestKey::ed25519("2026-12");
    let host = JwksHost::start(jwks(&[&old])).await;
    // Long enough that every request of a burst arrives while the fetch is under way.
    host.delay_ms.store(700, Ordering::SeqCst);
    let (client, _) = server.service_client("default", &["invoices.read"]).await;
    let client = use_jwks_uri(&server, &client, &host.uri).await;
    let burst = |key: &TestKey, round: &str| {
        let assertions = (0..8).map(|i| {
            key.sign(
                json!({"kid": key.kid}),
                &assertion_claims(
                    &client.id,
                    &server.base,
                    server.clock_now(),
                    &format!("{round}-{i}"),
                ),
            )
        });
        tokens_at_once(assertions.map(|a| (&server, a)).collect())
    };
    let statuses = burst(&old, "first").await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(host.fetches(), 1, "the first burst shares one fetch");

    // The client rotates; a minute later a burst names the new kid.
    *host.keys.lock().unwrap() = jwks(&[&old, &new]);
    server.clock.advance(61);
    let statuses = burst(&new, "rotated").await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(host.fetches(), 2, "the rotation burst shares one fetch");

    // Past the cache lifetime the client's server fails: the burst shares the failure.
    host.status.store(503, Ordering::SeqCst);
    server.clock.advance(301);
    let statuses = burst(&old, "failing").await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(host.fetches(), 3, "the failing burst shares one fetch");
    // The next request after the failure tries again, and succeeds once the host is back.
    host.status.store(200, Ordering::SeqCst);
    host.delay_ms.store(0, Ordering::SeqCst);
    let statuses = burst(&old, "recovered").await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(host.fetches(), 4);
    assert_eq!(
        audit_count(&server, "client_authentication_failed").await,
        8,
        "each refused request is audited"
    );
}

async fn jwks_uri_is_never_fetched_from_private_addresses_in_production(backend: Backend) {
    let kek = portcullis::keys::kek::Kek::generate();
    let server = TestServer::start_with(backend, |c| {
        c.mode = portcullis::config::Mode::Production;
        c.keys.kek = portcullis::config::SecretValue::new(kek.expose());
    })
    .await;
    let key = TestKey::es256("k");
    let host = JwksHost::start(jwks(&[&key])).await;
    let (client, _) = server.service_client("default", &["invoices.read"]).await;
    for uri in [
        host.uri.clone(),
        host.uri.replace("http://", "https://"),
        "https://10.0.0.1/jwks.json".to_string(),
        "https://169.254.169.254/latest/meta-data".to_string(),
    ] {
        let client = use_jwks_uri(&server, &client, &uri).await;
        let assertion = key.sign(
            json!({"kid": "k"}),
            &assertion_claims(&client.id, &server.base, server.clock_now(), &uri),
        );
        let response = token_with(&server, &assertion).await;
        assert_eq!(response.status(), 401, "{uri}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{uri}");
    }
    assert_eq!(host.fetches(), 0, "nothing fetched");
}

async fn registration_refuses_client_secret_jwt_and_bad_keys(backend: Backend) {
    let server = TestServer::start(backend).await;
    let refused = "client_secret_jwt".parse::<ClientAuthMethod>().unwrap_err();
    assert!(refused.contains("stores only its hash"), "{refused}");
    let (client, _) = server.service_client("default", &["invoices.read"]).await;
    let key = TestKey::es256("k");
    let mut private = key.registered_jwk();
    private["d"] = json!("c2VjcmV0");
    let bad: Vec<(&str, SecurityChanges)> = vec![
        ("no keys", SecurityChanges::default()),
        (
            "a private key",
            SecurityChanges {
                jwks: Some(json!({ "keys": [private] }).to_string()),
                ..SecurityChanges::default()
            },
        ),
        (
            "a symmetric key",
            SecurityChanges {
                jwks: Some(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}).to_string()),
                ..SecurityChanges::default()
            },
        ),
        (
            "not a set",
            SecurityChanges {
                jwks: Some(key.registered_jwk().to_string()),
                ..SecurityChanges::default()
            },
        ),
        (
            "plain http elsewhere than loopback",
            SecurityChanges {
                jwks_uri: Some("http://keys.example.com/jwks.json".into()),
                ..SecurityChanges::default()
            },
        ),
    ];
    for (case, changes) in bad {
        let result = update_client_security(
            server.store(),
            &client,
            Some(ClientAuthMethod::PrivateKeyJwt),
            changes,
            server.clock_now(),
        )
        .await;
        assert!(result.is_err(), "{case}");
    }
    let unchanged = server.store().client(&client.id).await.unwrap().unwrap();
    assert_eq!(unchanged.auth_method, ClientAuthMethod::ClientSecretBasic);
    assert_eq!(unchanged.security, client.security, "nothing stored");
}

async fn a_device_authenticates_with_private_key_jwt_at_device_authorize(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = TestKey::ed25519("tv");
    let (client, _) = server
        .register(portcullis::manage::clients::ClientRequest {
            server_id: "default".into(),
            name: "living-room tv".into(),
            grant_types: vec![portcullis::protocol::GrantType::DeviceCode],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: vec!["tv.watch".into()],
            default_scopes: vec![],
            public: false,
            first_party: false,
            auth_method: None,
        })
        .await;
    let client = use_private_key_jwt(&server, &client, &jwks(&[&key])).await;
    let device_authorize = |assertion: String| {
        let server = &server;
        async move {
            post(
                server,
                "/device/authorize",
                &[],
                &[
                    ("scope", "tv.watch"),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", assertion.as_str()),
                ],
            )
            .await
        }
    };
    let now = server.clock_now();
    let good = key.sign(
        json!({"kid": "tv"}),
        &assertion_claims(&client.id, &server.base, now, "tv-1"),
    );
    let response = device_authorize(good.clone()).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["device_code"].is_string() && body["user_code"].is_string());
    // Replayed, and for another audience: invalid_client.
    let response = device_authorize(good).await;
    assert_oauth_error(response, 401, "invalid_client").await;
    let elsewhere = key.sign(
        json!({"kid": "tv"}),
        &assertion_claims(&client.id, "https://other.example", now, "tv-2"),
    );
    let response = device_authorize(elsewhere).await;
    assert_oauth_error(response, 401, "invalid_client").await;
}

async fn housekeeping_deletes_expired_jtis_and_a_replay_stays_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = TestKey::es256("k");
    let (client, _) = server.service_client("default", &["invoices.read"]).await;
    let client = use_private_key_jwt(&server, &client, &jwks(&[&key])).await;
    let assertion = key.sign(
        json!({"kid": "k"}),
        &assertion_claims(&client.id, &server.base, server.clock_now(), "kept"),
    );
    assert_eq!(token_with(&server, &assertion).await.status(), 200);
    let run = |now| {
        portcullis::housekeeping::run(
            server.store(),
            &server.state.config.housekeeping,
            server.state.config.audit.retention,
            now,
        )
    };
    // Until the assertion expires its jti is kept; after, housekeeping deletes it, and the
    // assertion is refused as expired rather than replayed.
    let report = run(server.clock_now()).await.unwrap();
    assert_eq!(report.used_jtis, 0);
    server.clock.advance(61);
    let report = run(server.clock_now()).await.unwrap();
    assert_eq!(report.used_jtis, 1);
    let response = token_with(&server, &assertion).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("expired"));
}

/// The same assertion sent many times at once, to two replicas: the ids are recorded in batches
/// (`portcullis::used_jtis`), and exactly one request gets a token, however the batches fall.
/// Distinct assertions sent at once all get theirs.
async fn an_assertion_sent_many_times_at_once_is_accepted_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = TestKey::es256("k1");
    let (client, _) = server.service_client("default", &["invoices.read"]).await;
    let client = use_private_key_jwt(&server, &client, &jwks(&[&key])).await;
    let issuer = server.base.clone();
    let replica = server
        .replica(move |c| c.issuer = issuer)
        .await
        .expect("replica");
    let now = server.clock_now();
    let audience = server.url("/token");
    let send_all = |assertions: Vec<String>| {
        let replicas = [&server, &replica];
        let requests = assertions.into_iter().enumerate();
        tokens_at_once(requests.map(|(i, a)| (replicas[i % 2], a)).collect())
    };
    let once = key.sign(
        json!({"kid": "k1"}),
        &assertion_claims(&client.id, &audience, now, "burst"),
    );
    let statuses = send_all(vec![once; 24]).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        23,
        "{statuses:?}"
    );
    let distinct = (0..24)
        .map(|i| {
            key.sign(
                json!({"kid": "k1"}),
                &assertion_claims(&client.id, &audience, now, &format!("burst-{i}")),
            )
        })
        .collect();
    let statuses = send_all(distinct).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

/// The parsed JWK Set is kept with the cached client: a change of keys takes effect at once
/// on the replica that made it (the old key refused, the new one accepted).
async fn a_changed_jwks_is_used_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (old, new) = (TestKey::es256("old"), TestKey::es256("new"));
    let (client, _) = server.service_client("default", &["invoices.read"]).await;
    let client = use_private_key_jwt(&server, &client, &jwks(&[&old])).await;
    let now = server.clock_now();
    let audience = server.url("/token");
    let sign = |key: &TestKey, jti: &str| {
        key.sign(
            json!({"kid": key.kid}),
            &assertion_claims(&client.id, &audience, now, jti),
        )
    };
    assert_eq!(token_with(&server, &sign(&old, "a")).await.status(), 200);
    use_private_key_jwt(&server, &client, &jwks(&[&new])).await;
    let response = token_with(&server, &sign(&old, "b")).await;
    assert_oauth_error(response, 401, "invalid_client").await;
    assert_eq!(token_with(&server, &sign(&new, "c")).await.status(), 200);
}

on_both_databases!(
    an_assertion_sent_many_times_at_once_is_accepted_once,
    a_changed_jwks_is_used_at_once,
    a_device_authenticates_with_private_key_jwt_at_device_authorize,
    housekeeping_deletes_expired_jtis_and_a_replay_stays_refused,
    private_key_jwt_works_with_each_algorithm_at_token_introspect_and_revoke,
    every_bad_assertion_is_invalid_client_audited_and_issues_nothing,
    an_assertion_is_single_use_across_replicas,
    jwks_uri_keys_are_cached_and_refetched_for_a_new_kid_at_most_once_a_minute,
    concurrent_requests_share_one_jwks_uri_fetch,
    jwks_uri_is_never_fetched_from_private_addresses_in_production,
    registration_refuses_client_secret_jwt_and_bad_keys,
);
