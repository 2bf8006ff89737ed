//! Oversized requests (issue 7 item 3): a body over `http.body_limit` is 413, a request target
//! over `http.max_uri_length` 414, headers over `http.max_header_bytes` 431; each an RFC 6749
//! `invalid_request`, never a 500.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{assert_oauth_error, Backend, TestServer};
use crate::on_both_databases;

on_both_databases!(
    an_oversized_body_is_413_at_every_endpoint,
    a_chunked_oversized_body_is_413,
    a_long_request_target_is_414,
    oversized_headers_are_431,
    oversized_authorization_parameters_are_refused_and_store_nothing,
    pending_sign_ins_are_limited_per_ip,
);

const POST_ENDPOINTS: &[&str] = &[
    "/token",
    "/introspect",
    "/revoke",
    "/userinfo",
    "/login",
    "/consent",
    "/logout",
    "/authorize",
    "/oauth2/default/token",
    "/keys",
];

async fn an_oversized_body_is_413_at_every_endpoint(backend: Backend) {
    let server = TestServer::start(backend).await;
    let limit = server.state.config.http.body_limit;
    let big = format!("grant_type=client_credentials&pad={}", "a".repeat(limit));
    for path in POST_ENDPOINTS {
        let response = server
            .http
            .post(server.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        // The body was not read: the connection cannot be reused, and the client is told.
        assert_eq!(
            response.headers().get("connection").map(|v| v.as_bytes()),
            Some(&b"close"[..]),
            "{path}"
        );
        assert_oauth_error(response, 413, "invalid_request").await;
    }
    // At the limit, the body is read (and judged on its content).
    let fits = format!("grant_type=x&pad={}", "a".repeat(limit - 17));
    assert_eq!(fits.len(), limit);
    let response = server
        .http
        .post(server.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(fits)
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "unsupported_grant_type").await;
}

/// Send raw HTTP/1.1 and return the status code and the whole response text.
async fn raw(server: &TestServer, head: &str, body: &[u8]) -> (u16, String) {
    let addr = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (and close) before reading everything.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, text)
}

async fn a_chunked_oversized_body_is_413(backend: Backend) {
    let server = TestServer::start(backend).await;
    let limit = server.state.config.http.body_limit;
    let mut body = Vec::new();
    // Chunks of 4 KiB, more than the limit in all, no Content-Length.
    for _ in 0..(limit / 4096 + 2) {
        body.extend_from_slice(b"1000\r\n");
        body.extend_from_slice(&[b'a'; 4096]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    for path in ["/token", "/login", "/revoke"] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        let (status, text) = raw(&server, &head, &body).await;
        assert_eq!(status, 413, "{path}: {text}");
        assert!(text.contains("invalid_request"), "{path}: {text}");
    }
}

async fn a_long_request_target_is_414(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.http.max_uri_length = 2048).await;
    for path in [
        "/authorize",
        "/.well-known/openid-configuration",
        "/login",
        "/nowhere",
    ] {
        let url = server.url(&format!("{path}?pad={}", "a".repeat(2048)));
        let response = server.http.get(url).send().await.unwrap();
        assert_oauth_error(response, 414, "invalid_request").await;
    }
    // Just under the limit: served.
    let path = "/.well-known/openid-configuration?pad=";
    let url = server.url(&format!("{path}{}", "a".repeat(2048 - path.len())));
    assert_eq!(server.http.get(url).send().await.unwrap().status(), 200);
    // The default is 8 KiB.
    let default = TestServer::start(backend).await;
    let url = default.url(&format!("/keys?pad={}", "a".repeat(8 * 1024)));
    assert_oauth_error(
        default.http.get(url).send().await.unwrap(),
        414,
        "invalid_request",
    )
    .await;
    let url = default.url(&format!("/keys?pad={}", "a".repeat(7 * 1024)));
    assert_eq!(default.http.get(url).send().await.unwrap().status(), 200);
}

async fn oversized_headers_are_431(backend: Backend) {
    let server = TestServer::start(backend).await;
    let limit = server.state.config.http.max_header_bytes;
    // One large header.
    let response = server
        .http
        .get(server.url("/keys"))
        .header("x-pad", "a".repeat(limit))
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 431, "invalid_request").await;
    // Many headers, each small, too large together.
    let mut request = server.http.post(server.url("/token"));
    for i in 0..(limit / 1000 + 1) {
        request = request.header(format!("x-pad-{i}"), "a".repeat(1000));
    }
    let response = request.send().await.unwrap();
    assert_oauth_error(response, 431, "invalid_request").await;
    // Well within the limit: served.
    let response = server
        .http
        .get(server.url("/keys"))
        .header("x-pad", "a".repeat(limit / 2))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// An /authorize request without a session stores its parameters for the sign-in: each is
/// capped, so an anonymous request cannot park 60 KB in the database. An oversized `state` is
/// refused on an error page (it cannot be echoed to the client); others, once the redirect URI
/// is known, go back to the client as `invalid_request` (RFC 6749 §4.1.2.1). Nothing stored.
async fn oversized_authorization_parameters_are_refused_and_store_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let redirect = "http://127.0.0.1:9/cb";
    let (client, _) = server.web_client(redirect, true, false).await;
    let count = || async {
        crate::audit::all_rows(&server, "SELECT CAST(COUNT(*) AS TEXT) FROM interactions").await
    };
    let before = count().await;
    let base = [
        ("client_id", client.id.as_str()),
        ("redirect_uri", redirect),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    let huge = "s".repeat(60 * 1024);
    let mut form = base.to_vec();
    form.push(("state", &huge));
    let response = server
        .http
        .post(server.url("/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    assert!(response.text().await.unwrap().contains("invalid_request"));
    let long = "n".repeat(2049);
    for name in [
        "nonce",
        "login_hint",
        "acr_values",
        "ui_locales",
        "id_token_hint",
        "max_age",
    ] {
        let mut form = base.to_vec();
        form.push(("state", "st"));
        form.push((name, &long));
        let response = server
            .http
            .post(server.url("/authorize"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{name}");
        let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        assert!(
            location.as_str().starts_with(redirect),
            "{name}: {location}"
        );
        let pairs: std::collections::HashMap<_, _> = location.query_pairs().collect();
        assert_eq!(
            pairs.get("error").map(|e| e.as_ref()),
            Some("invalid_request"),
            "{name}"
        );
        assert_eq!(pairs.get("state").map(|e| e.as_ref()), Some("st"), "{name}");
    }
    // Within the caps, the request starts a sign-in, as before.
    let mut form = base.to_vec();
    let fine = "s".repeat(2048);
    form.push(("state", &fine));
    let response = server
        .http
        .post(server.url("/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(response.headers()["location"]
        .to_str()
        .unwrap()
        .contains("/login?"));
    let after = count().await;
    assert_eq!(
        after[0].parse::<u64>().unwrap(),
        before[0].parse::<u64>().unwrap() + 1,
        "only the request within the caps stored an interaction"
    );
}

/// Each /authorize request without a session stores a pending sign-in: one address may start
/// `rate_limits.interactions_per_ip` per window (counted in the database, so across replicas);
/// past it the client gets `temporarily_unavailable` (RFC 6749 §4.1.2.1) and nothing is stored.
async fn pending_sign_ins_are_limited_per_ip(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.rate_limits.interactions_per_ip = 2;
        c.rate_limits.window = portcullis::config::Seconds(60);
    })
    .await;
    let now = server.clock_now();
    server.clock.set(now - now % 60 + 60);
    let redirect = "http://127.0.0.1:9/cb";
    let (client, _) = server.web_client(redirect, true, false).await;
    let url = server.url(&format!(
        "/authorize?client_id={}&redirect_uri={redirect}&response_type=code&scope=openid&state=p",
        client.id
    ));
    let count = || async {
        crate::audit::all_rows(&server, "SELECT CAST(COUNT(*) AS TEXT) FROM interactions").await[0]
            .clone()
    };
    for _ in 0..2 {
        let response = server.http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 303);
        assert!(response.headers()["location"]
            .to_str()
            .unwrap()
            .contains("/login?"));
    }
    assert_eq!(count().await, "2");
    let response = server.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(redirect), "{location}");
    let pairs: std::collections::HashMap<_, _> = location.query_pairs().collect();
    assert_eq!(pairs["error"], "temporarily_unavailable");
    assert_eq!(pairs["state"], "p");
    assert_eq!(count().await, "2", "nothing stored past the limit");
    // The next window.
    server.clock.advance(60);
    let response = server.http.get(&url).send().await.unwrap();
    assert!(response.headers()["location"]
        .to_str()
        .unwrap()
        .contains("/login?"));
}
