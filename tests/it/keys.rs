//! Key rotation: a new key is published before it signs; a retired key keeps verifying its
//! tokens until they expire, then leaves the JWKS (oidcc-server-rotate-keys).

use portcullis::keys::{rotation, Rotation};
use portcullis::registration::{update_client, ClientChanges};

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
    let rotation = server
        .state
        .keys
        .rotate("default", now, delay)
        .await
        .expect("rotate");
    let not_before = activation(&rotation, now + delay);
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
    server.clock.set(not_before);
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

const DAY: i64 = 86400;

/// Scheduled rotation every day (the defaults otherwise: activation 600s, JWKS max-age 300s).
fn daily(config: &mut portcullis::config::Config) {
    config.keys.rotation_interval = portcullis::config::Seconds(DAY as u64);
}

/// When the key a rotation added starts signing: `earliest` (the activation delay after the
/// rotation's clock reading), plus the seconds RSA generation took, which src/keys adds so a
/// slow generation does not shorten the time relying parties have to learn the key. On a busy
/// machine that is a second or two, so the tests take the time from the outcome, bounded.
fn activation(outcome: &Rotation, earliest: i64) -> i64 {
    match outcome {
        Rotation::Added { not_before, .. } => {
            assert!(
                (earliest..=earliest + 30).contains(not_before),
                "the new key signs from {not_before}, expected {earliest} plus the generation time"
            );
            *not_before
        }
        other => panic!("expected a key added, got {other:?}"),
    }
}

fn added(outcomes: &[(String, Rotation)]) -> usize {
    outcomes
        .iter()
        .filter(|(_, r)| matches!(r, Rotation::Added { .. }))
        .count()
}

/// Two replicas on one database checking the schedule at the same moment: exactly one key is
/// added per due rotation, whichever way their reads and inserts interleave.
async fn replicas_ticking_together_rotate_once(backend: Backend) {
    let a = TestServer::start_with(backend, daily).await;
    let b = a.replica(daily).await.expect("second replica starts");
    b.clock.set(a.clock_now());
    for round in 1..=3 {
        let before = a.store().keys("default").await.unwrap().len();
        // Not due yet: nothing happens.
        let not_yet = rotation::tick(&a.state, a.clock_now() + DAY - 1)
            .await
            .unwrap();
        assert_eq!(
            added(&not_yet),
            0,
            "round {round}: a key younger than the interval"
        );
        a.clock.advance(DAY);
        b.clock.advance(DAY);
        let now = a.clock_now();
        let (x, y) = tokio::join!(rotation::tick(&a.state, now), rotation::tick(&b.state, now));
        let (x, y) = (x.expect("tick a"), y.expect("tick b"));
        assert_eq!(added(&x) + added(&y), 1, "round {round}: {x:?} {y:?}");
        let keys = a.store().keys("default").await.unwrap();
        assert_eq!(keys.len(), before + 1, "round {round}: exactly one new key");
        assert_eq!(keys.last().unwrap().created_at, now);
        // Ticking again at the same moment: the new key is fresh, nothing to do.
        let again = rotation::tick(&b.state, now).await.unwrap();
        assert!(again.is_empty(), "{again:?}");
    }
}

/// A scheduled key is in /keys from the moment it is added, and nothing is signed with it
/// before relying parties' cached JWKS (max-age) and the replicas' key caches have it.
async fn a_scheduled_key_is_published_before_it_signs(backend: Backend) {
    let server = TestServer::start_with(backend, daily).await;
    let (client, secret) = server.service_client("default", &["a"]).await;
    let old_kid = kid_of(&issue(&server, &client.id, secret.expose()).await);
    server.clock.advance(DAY);
    let published_at = server.clock_now();
    let outcomes = rotation::tick(&server.state, published_at).await.unwrap();
    let (new_kid, not_before) = match &outcomes[..] {
        [(id, rotated @ Rotation::Added { kid, .. })] => {
            assert_eq!(id, "default");
            let keys = &server.state.config.keys;
            let not_before = activation(rotated, published_at + keys.activation_delay.as_i64());
            (kid.clone(), not_before)
        }
        other => panic!("expected one rotation, got {other:?}"),
    };
    assert!(kids(&fetch_jwks(&server.http, &server.url("/keys")).await).contains(&new_kid));
    let keys = &server.state.config.keys;
    let must_wait = keys.jwks_max_age.as_i64() + keys.cache_ttl.as_i64();
    for at in [0, 1, keys.jwks_max_age.as_i64(), must_wait - 1] {
        server.clock.set(published_at + at);
        let kid = kid_of(&issue(&server, &client.id, secret.expose()).await);
        assert_eq!(
            kid, old_kid,
            "{at}s after publication the old key still signs"
        );
    }
    server.clock.set(not_before);
    let token = issue(&server, &client.id, secret.expose()).await;
    assert_eq!(kid_of(&token), new_kid);
    let jwks = fetch_jwks(&server.http, &server.url("/keys")).await;
    verify(&token, &jwks, &server.base, "api://default").expect("new token verifies");
}

/// The old key stays in /keys until the last token it signed has expired, counting a client's
/// longer access token lifetime, then leaves.
async fn a_retired_key_stays_published_until_its_last_token_expired(backend: Backend) {
    let server = TestServer::start_with(backend, daily).await;
    let (client, secret) = server.service_client("default", &["a"]).await;
    // One client's tokens live 3 hours (the configuration's default is 1 hour).
    let long = 3 * 3600;
    update_client(
        server.store(),
        &client.id,
        ClientChanges {
            access_token_ttl: Some(Some(long)),
            ..ClientChanges::default()
        },
        server.clock_now(),
    )
    .await
    .expect("client override");
    server.clock.advance(DAY);
    let rotated_at = server.clock_now();
    let outcomes = rotation::tick(&server.state, rotated_at).await.unwrap();
    assert_eq!(added(&outcomes), 1);
    let delay = server.state.config.keys.activation_delay.as_i64();
    let superseded_at = activation(&outcomes[0].1, rotated_at + delay);

    // The last token the old key signs, a second before the new key takes over.
    server.clock.set(superseded_at - 1);
    let last = issue(&server, &client.id, secret.expose()).await;
    let old_kid = kid_of(&last);
    let exp = verify(
        &last,
        &fetch_jwks(&server.http, &server.url("/keys")).await,
        &server.base,
        "api://default",
    )
    .expect("verifies")["exp"]
        .as_i64()
        .unwrap();
    assert_eq!(exp, superseded_at - 1 + long);

    server.clock.set(exp - 1);
    let jwks = fetch_jwks(&server.http, &server.url("/keys")).await;
    assert!(
        kids(&jwks).contains(&old_kid),
        "published while its last token is valid"
    );
    assert!(server.is_active((&client.id, secret.expose()), &last).await);

    server.clock.set(superseded_at + long);
    let jwks = fetch_jwks(&server.http, &server.url("/keys")).await;
    assert!(
        !kids(&jwks).contains(&old_kid),
        "gone once every token expired"
    );
    assert_eq!(kids(&jwks).len(), 1);
}

/// `keys.rotation_interval = 0` turns the schedule off.
async fn a_zero_interval_never_rotates(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.keys.rotation_interval = portcullis::config::Seconds(0);
    })
    .await;
    for years in [1, 10] {
        let outcomes = rotation::tick(&server.state, server.clock_now() + years * 365 * DAY)
            .await
            .unwrap();
        assert!(outcomes.is_empty(), "{outcomes:?}");
    }
    assert_eq!(server.store().keys("default").await.unwrap().len(), 1);
}

on_both_databases!(
    oidcc_server_rotate_keys,
    concurrent_rotations_add_one_key,
    replicas_ticking_together_rotate_once,
    a_scheduled_key_is_published_before_it_signs,
    a_retired_key_stays_published_until_its_last_token_expired,
    a_zero_interval_never_rotates,
);
