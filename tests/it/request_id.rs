//! Request ids and the client IP: an id on every response, a trusted proxy's id and
//! `X-Forwarded-For` believed, anyone else's ignored; both on every JSON log line of a request.

use std::io::Write;
use std::sync::{Arc, Mutex};

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

/// JSON log lines written while `serve` runs, captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The JSON lines logged inside a request's span.
    fn request_lines(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("JSON line"))
            .filter(|line| line["span"]["name"] == "request")
            .collect()
    }
}

/// One request through a server with `trusted_proxies`, logging JSON (as `log.format = "json"`
/// does): the log lines of that request (the only one) and its id.
async fn logged_request(
    trusted_proxies: &[&str],
    forwarded_for: &str,
) -> (Vec<serde_json::Value>, String) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread runtime (this test's), so the server's tasks log through this
    // subscriber too.
    let _guard = tracing::subscriber::set_default(subscriber);
    let proxies = TrustedProxies::parse(trusted_proxies).unwrap();
    let server =
        TestServer::start_with(Backend::Sqlite, |c| c.http.trusted_proxies = proxies).await;
    let id = get(
        &server,
        "/healthz",
        &[(
            "x-forwarded-for",
            HeaderValue::from_str(forwarded_for).unwrap(),
        )],
    )
    .await;
    (captured.request_lines(), id)
}

#[tokio::test]
async fn an_untrusted_peers_forwarded_for_is_ignored() {
    let (lines, id) = logged_request(&[], "203.0.113.9").await;
    assert!(!lines.is_empty(), "the request logged nothing");
    for line in &lines {
        assert_eq!(line["span"]["client_ip"], "127.0.0.1", "{line}");
        assert_eq!(line["span"]["request_id"], id.as_str(), "{line}");
    }
}

#[tokio::test]
async fn a_trusted_proxys_forwarded_for_names_the_client() {
    // The client spoofed 6.6.6.6; the proxy at 127.0.0.1 appended the real peer, 203.0.113.9.
    let (lines, id) = logged_request(&["127.0.0.1/32"], "6.6.6.6, 203.0.113.9").await;
    assert!(!lines.is_empty(), "the request logged nothing");
    // Every line of the request, including the one that reports its answer, carries both.
    assert!(lines
        .iter()
        .any(|l| l["fields"]["message"] == "finished processing request"));
    for line in &lines {
        assert_eq!(line["span"]["client_ip"], "203.0.113.9", "{line}");
        assert_eq!(line["span"]["request_id"], id.as_str(), "{line}");
    }
}
