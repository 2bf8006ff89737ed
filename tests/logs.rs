//! The request id and the client IP (a trusted proxy's `X-Forwarded-For` believed, anyone
//! else's ignored) on every JSON log line of a request.
//!
//! A test binary of its own, with one global subscriber installed once: tracing caches whether
//! each call site is enabled, so a thread-local subscriber in one test can find call sites that
//! another test, running without one, has already switched off. Here no other test runs.

#[path = "it/common/mod.rs"]
mod common;
#[path = "it/jwt.rs"]
mod jwt;

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use reqwest::header::HeaderValue;
use serde_json::Value;

use common::{Backend, TestServer};

/// Every line logged by this binary's tests, JSON as `log.format = "json"` writes it.
static LOGGED: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGGED.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Install the capturing subscriber, once, before the first test starts its server.
fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(|| Capture)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("the only subscriber of this binary");
    });
}

/// The lines logged inside the span of the request whose id is `id`. Every request's lines
/// carry an id (the tests of this binary run side by side, so they are told apart by it).
fn request_lines(id: &str) -> Vec<Value> {
    let text = String::from_utf8(LOGGED.lock().unwrap().clone()).expect("UTF-8 log");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON line"))
        .filter(|line| line["span"]["name"] == "request")
        .collect();
    for line in &lines {
        assert!(
            line["span"]["request_id"].is_string(),
            "no request id: {line}"
        );
    }
    lines
        .into_iter()
        .filter(|line| line["span"]["request_id"] == id)
        .collect()
}

/// One request through a server with `trusted_proxies`: the log lines of that request and
/// its id.
async fn logged_request(trusted_proxies: &[&str], forwarded_for: &str) -> (Vec<Value>, String) {
    capture_logs();
    let proxies = portcullis::config::TrustedProxies::parse(trusted_proxies).unwrap();
    let server =
        TestServer::start_with(Backend::Sqlite, |c| c.http.trusted_proxies = proxies).await;
    let response = server
        .http
        .get(server.url("/healthz"))
        .header(
            "x-forwarded-for",
            HeaderValue::from_str(forwarded_for).unwrap(),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"]
        .to_str()
        .expect("ASCII")
        .to_string();
    (request_lines(&id), id)
}

/// The line that reports the answer is among them: the capture saw the whole request.
fn assert_finished(lines: &[Value]) {
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "finished processing request"),
        "the request's answer was not logged: {lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_peers_forwarded_for_is_ignored() {
    let (lines, _) = logged_request(&[], "203.0.113.9").await;
    assert_finished(&lines);
    for line in &lines {
        assert_eq!(line["span"]["client_ip"], "127.0.0.1", "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxys_forwarded_for_names_the_client() {
    // The client spoofed 6.6.6.6; the proxy at 127.0.0.1 appended the real peer, 203.0.113.9.
    let (lines, _) = logged_request(&["127.0.0.1/32"], "6.6.6.6, 203.0.113.9").await;
    // Every line of the request, including the one that reports its answer, carries both.
    assert_finished(&lines);
    for line in &lines {
        assert_eq!(line["span"]["client_ip"], "203.0.113.9", "{line}");
    }
}
