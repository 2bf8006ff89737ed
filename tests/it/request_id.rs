//! Request ids: an id on every response, a trusted proxy's id believed, anyone else's
//! replaced. That the id and the client IP are on every log line of a request is tested in
//! tests/logs.rs, a binary of its own.

use portcullis::config::{HeaderNameValue, TrustedProxies};
use reqwest::header::HeaderValue;

use crate::common::{Backend, TestServer};
use crate::on_both_databases;

fn is_generated(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

async fn get(server: &TestServer, path: &str, headers: &[(&str, HeaderValue)]) -> String {
    let mut request = server.http.get(server.url(path));
    for (name, value) in headers {
        request = request.header(*name, value.clone());
    }
    let response = request.send().await.expect("request");
    response
        .headers()
        .get("x-request-id")
        .expect("every response has a request id")
        .to_str()
        .expect("ASCII")
        .to_string()
}

async fn every_response_has_a_fresh_id(backend: Backend) {
    let server = TestServer::start(backend).await;
    let one = get(&server, "/healthz", &[]).await;
    let two = get(&server, "/healthz", &[]).await;
    // Errors too.
    let three = get(&server, "/no-such-page", &[]).await;
    for id in [&one, &two, &three] {
        assert!(is_generated(id), "{id}");
    }
    assert_ne!(one, two);
}

async fn an_untrusted_peers_id_is_replaced(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = get(
        &server,
        "/healthz",
        &[("x-request-id", HeaderValue::from_static("edge-1234"))],
    )
    .await;
    assert_ne!(id, "edge-1234");
    assert!(is_generated(&id), "{id}");
}

async fn a_trusted_proxys_sane_id_is_kept_and_a_hostile_one_replaced(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.http.trusted_proxies = TrustedProxies::parse(&["127.0.0.0/8"]).unwrap()
    })
    .await;
    let id = get(
        &server,
        "/healthz",
        &[("x-request-id", HeaderValue::from_static("edge-1234/abc"))],
    )
    .await;
    assert_eq!(id, "edge-1234/abc");
    let hostile = [
        HeaderValue::from_str(&"a".repeat(129)).unwrap(),
        HeaderValue::from_bytes(b"evil\tid").unwrap(),
        HeaderValue::from_bytes(b"evil id").unwrap(),
        HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
    ];
    for value in hostile {
        let id = get(&server, "/healthz", &[("x-request-id", value.clone())]).await;
        assert!(is_generated(&id), "{value:?} gave {id}");
    }
    let longest = "b".repeat(128);
    let id = get(
        &server,
        "/healthz",
        &[("x-request-id", HeaderValue::from_str(&longest).unwrap())],
    )
    .await;
    assert_eq!(id, longest);
}

async fn the_header_name_is_configurable(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.http.request_id_header = HeaderNameValue::from_static("x-correlation-id")
    })
    .await;
    let response = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-correlation-id"].to_str().unwrap();
    assert!(is_generated(id), "{id}");
    assert!(response.headers().get("x-request-id").is_none());
}

on_both_databases!(
    every_response_has_a_fresh_id,
    an_untrusted_peers_id_is_replaced,
    a_trusted_proxys_sane_id_is_kept_and_a_hostile_one_replaced,
    the_header_name_is_configurable,
);
