//! The per-replica cache of servers, clients, scopes and claims (`cache.refresh_interval`): a
//! change made by another process (the CLI here, as an operator runs it beside the server) takes
//! effect on the running server within the interval; a change through the server's own store
//! at once. The CLI is the real binary on the test server's database.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Backend, TestServer};
use crate::on_both_databases;
use crate::policy::{client_token, ok};
use portcullis::config::Seconds;
use portcullis::store::ServerChanges;

/// The interval under test, and how much later than it a change may show (a CLI process, a
/// busy shared machine).
const INTERVAL: Duration = Duration::from_secs(1);
const SLACK: Duration = Duration::from_secs(3);

async fn with_interval(backend: Backend, interval: Duration) -> TestServer {
    TestServer::start_with(backend, |config| {
        config.cache.refresh_interval = Seconds(interval.as_secs());
    })
    .await
}

/// Ask `check` every 50 ms until it holds; how long that took (None: not within the interval
/// plus slack).
async fn within_interval<F, Fut>(since: Instant, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    while since.elapsed() <= INTERVAL + SLACK {
        if check().await {
            return Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

async fn token_status(server: &TestServer, id: &str, secret: &str, scope: Option<&str>) -> u16 {
    client_token(server, id, secret, scope)
        .await
        .status()
        .as_u16()
}

async fn a_client_deleted_with_the_cli_is_refused_within_the_interval(backend: Backend) {
    let server = with_interval(backend, INTERVAL).await;
    let (client, secret) = server.service_client("default", &["a"]).await;
    assert_eq!(
        token_status(&server, &client.id, secret.expose(), None).await,
        200
    );

    let changed = Instant::now();
    ok(&server, &format!("client delete {}", client.id));
    let took = within_interval(changed, || async {
        token_status(&server, &client.id, secret.expose(), None).await == 401
    })
    .await;
    assert!(took.is_some(), "a deleted client kept getting tokens");
    let response = client_token(&server, &client.id, secret.expose(), None).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

async fn a_scope_taken_from_a_client_with_the_cli_is_refused_within_the_interval(backend: Backend) {
    let server = with_interval(backend, INTERVAL).await;
    let (client, secret) = server.service_client("default", &["a", "b"]).await;
    assert_eq!(
        token_status(&server, &client.id, secret.expose(), Some("b")).await,
        200
    );

    let changed = Instant::now();
    ok(&server, &format!("client update {} --scope a", client.id));
    let took = within_interval(changed, || async {
        let response = client_token(&server, &client.id, secret.expose(), Some("b")).await;
        response.status() == 400
            && response.json::<Value>().await.unwrap()["error"] == "invalid_scope"
    })
    .await;
    assert!(took.is_some(), "a scope taken away kept being granted");
    assert_eq!(
        token_status(&server, &client.id, secret.expose(), Some("a")).await,
        200,
        "the scope it kept still works"
    );
}

async fn a_server_lifetime_changed_with_the_cli_applies_within_the_interval(backend: Backend) {
    let server = with_interval(backend, INTERVAL).await;
    let (client, secret) = server.service_client("default", &["a"]).await;
    let expires_in = || async {
        client_token(&server, &client.id, secret.expose(), None)
            .await
            .json::<Value>()
            .await
            .unwrap()["expires_in"]
            .as_i64()
    };
    assert_eq!(expires_in().await, Some(3600));

    let changed = Instant::now();
    ok(&server, "server update --id default --access-token-ttl 5m");
    let took = within_interval(changed, || async { expires_in().await == Some(300) }).await;
    assert!(took.is_some(), "the new lifetime never applied");
}

async fn a_custom_claim_deleted_with_the_cli_leaves_tokens_within_the_interval(backend: Backend) {
    let server = with_interval(backend, INTERVAL).await;
    let (client, secret) = server.service_client("default", &["a"]).await;
    ok(
        &server,
        "claim create --server default --name tier --value '\"gold\"' --scope a --token-type access_token",
    );
    let tier = || async {
        let body: Value = client_token(&server, &client.id, secret.expose(), None)
            .await
            .json()
            .await
            .unwrap();
        let token = body["access_token"].as_str().unwrap().to_string();
        crate::jwt::payload(&token)["tier"].clone()
    };
    let took = within_interval(Instant::now(), || async { tier().await == "gold" }).await;
    assert!(took.is_some(), "a new claim never appeared");

    let changed = Instant::now();
    ok(&server, "claim delete --server default --name tier");
    let took = within_interval(changed, || async { tier().await == Value::Null }).await;
    assert!(took.is_some(), "a deleted claim kept being released");
}

/// With a long interval a replica answers from memory (a change made elsewhere is not seen
/// yet: the database is not read per request), and a write through its own store clears
/// everything at once.
async fn a_replica_serves_from_memory_until_it_writes_itself(backend: Backend) {
    let server = with_interval(backend, Duration::from_secs(3600)).await;
    let (client, secret) = server.service_client("default", &["a"]).await;
    assert_eq!(
        token_status(&server, &client.id, secret.expose(), None).await,
        200
    );

    ok(&server, &format!("client delete {}", client.id));
    assert_eq!(
        token_status(&server, &client.id, secret.expose(), None).await,
        200,
        "served from the cache: the deletion elsewhere is not seen before the interval"
    );

    let changes = ServerChanges {
        access_token_ttl: Some(Some(600)),
        ..ServerChanges::default()
    };
    server
        .store()
        .update_server("default", &changes, server.clock_now())
        .await
        .expect("update server");
    let response = client_token(&server, &client.id, secret.expose(), None).await;
    assert_eq!(
        response.status(),
        401,
        "a write through this replica drops its cache, and the deleted client with it"
    );
}

on_both_databases!(
    a_client_deleted_with_the_cli_is_refused_within_the_interval,
    a_scope_taken_from_a_client_with_the_cli_is_refused_within_the_interval,
    a_server_lifetime_changed_with_the_cli_applies_within_the_interval,
    a_custom_claim_deleted_with_the_cli_leaves_tokens_within_the_interval,
    a_replica_serves_from_memory_until_it_writes_itself,
);
