//! Bad input, no 500 and nothing lost: arbitrary requests to /token and /authorize (proptest,
//! driving the real router over HTTP) and a table of hostile bodies and queries for every
//! endpoint. Every answer is the RFC's error with a 4xx status (or a page or redirect of the
//! flow), never a 5xx, and the store holds exactly what it held, except `interactions`: an
//! /authorize request that happens to be well formed legitimately stores the pending sign-in
//! it starts (it is how the login page continues), and nothing else.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

use crate::common::rp::{Rp, REDIRECT};
use crate::common::snapshot::Snapshot;
use crate::common::Backend;
use crate::on_both_databases;

const TOKEN_NAMES: &[&str] = &[
    "grant_type",
    "code",
    "redirect_uri",
    "client_id",
    "client_secret",
    "code_verifier",
    "refresh_token",
    "scope",
    "username",
    "password",
];
const AUTHORIZE_NAMES: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "code_challenge",
    "code_challenge_method",
    "id_token_hint",
    "login_hint",
    "claims",
    "request",
    "request_uri",
];

/// A form or query: pairs from a dictionary of the endpoint's parameter names and
/// interesting values, arbitrary names and values, repeats, and raw bytes.
fn query(names: &'static [&'static str], values: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    let name = prop_oneof![
        4 => proptest::sample::select(names).prop_map(str::to_string),
        1 => ".{0,8}",
    ];
    let value = prop_oneof![
        3 => proptest::sample::select(values),
        1 => ".{0,24}",
        1 => "[ -~]{0,300}",
    ];
    let structured = proptest::collection::vec((name, value), 0..10).prop_map(|pairs| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes()
    });
    prop_oneof![
        4 => structured,
        1 => proptest::collection::vec(any::<u8>(), 0..200),
        1 => "([a-z_]{1,12}=([A-Za-z0-9]|%[0-9A-F]{2}){0,12}&?){0,8}".prop_map(String::into_bytes),
    ]
}

fn values(rp: &Rp) -> Vec<String> {
    [
        rp.client_id.as_str(),
        REDIRECT,
        "authorization_code",
        "client_credentials",
        "password",
        "refresh_token",
        "implicit",
        "code",
        "token",
        "id_token",
        "id_token token",
        "none",
        "login",
        "consent",
        "query",
        "fragment",
        "form_post",
        "openid",
        "openid profile email",
        "S256",
        "plain",
        "0",
        "-1",
        "99999999999999999999",
        "{}",
        "{\"userinfo\":{}}",
        "eyJhbGciOiJub25lIn0.e30.",
        "\u{0}",
        "\u{202e}",
        "%",
        "ada",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Drive `check` over `strategy` on a blocking thread (proptest is synchronous; the server
/// runs on this test's runtime).
async fn run<S>(cases: u32, strategy: S, check: impl Fn(S::Value) + Send + 'static)
where
    S: Strategy + Send + 'static,
    S::Value: std::fmt::Debug,
{
    tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&strategy, |value| {
                check(value);
                Ok(())
            })
            .unwrap();
    })
    .await
    .unwrap();
}

async fn arbitrary_token_requests_get_rfc_errors(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let before = Snapshot::take(&rp.server).await;
    let http = rp.server.http.clone();
    let url = rp.server.url("/token");
    let handle = tokio::runtime::Handle::current();
    let basic = prop_oneof![
        Just(None),
        ".{0,30}".prop_map(|s| Some(format!("Basic {}", base64_of(&s)))),
        "[ -~]{0,40}".prop_map(Some),
    ];
    run(
        96,
        (query(TOKEN_NAMES, values(&rp)), basic),
        move |(body, authorization)| {
            handle.block_on(async {
                let mut request = http
                    .post(&url)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body.clone());
                if let Some(a) = &authorization {
                    request = request.header(AUTHORIZATION, a);
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                assert!(
                    [400, 401, 413].contains(&status),
                    "{status} for {:?} {authorization:?}",
                    String::from_utf8_lossy(&body)
                );
                assert_eq!(response.headers()["cache-control"], "no-store");
                let error: serde_json::Value = response.json().await.expect("a JSON error");
                let code = error["error"].as_str().unwrap_or_default();
                assert!(
                    [
                        "invalid_request",
                        "invalid_client",
                        "invalid_grant",
                        "unauthorized_client",
                        "unsupported_grant_type",
                        "invalid_scope"
                    ]
                    .contains(&code),
                    "{error}"
                );
            })
        },
    )
    .await;
    before.assert_unchanged(
        &Snapshot::take(&rp.server).await,
        "arbitrary /token requests",
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn arbitrary_authorization_requests_get_pages_or_redirects(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let before = Snapshot::take(&rp.server).await;
    let http = rp.server.http.clone();
    let base = rp.server.url("/authorize");
    let login = rp.server.url("/login?");
    let handle = tokio::runtime::Handle::current();
    run(
        96,
        (query(AUTHORIZE_NAMES, values(&rp)), any::<bool>()),
        move |(query, post)| {
            handle.block_on(async {
                let response = if post {
                    http.post(&base)
                        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(query.clone())
                        .send()
                        .await
                        .unwrap()
                } else {
                    // A URL carries only ASCII: bytes beyond it go percent-encoded.
                    let encoded: String = query
                        .iter()
                        .map(|b| match *b {
                            b'!'..=b'~' if *b != b'#' => (*b as char).to_string(),
                            _ => format!("%{b:02X}"),
                        })
                        .collect();
                    http.get(format!("{base}?{encoded}")).send().await.unwrap()
                };
                let status = response.status().as_u16();
                let lossy = String::from_utf8_lossy(&query).to_string();
                assert!(
                    [200, 303, 400, 413].contains(&status),
                    "{status} for {lossy:?}"
                );
                if let Some(location) = response.headers().get("location") {
                    // Only ever to the registered redirect URI or our own login page.
                    let location = location.to_str().unwrap();
                    assert!(
                        location.starts_with(&format!("{REDIRECT}?"))
                            || location.starts_with(&format!("{REDIRECT}#"))
                            || location.starts_with(&login),
                        "{location} for {lossy:?}"
                    );
                }
            })
        },
    )
    .await;
    before.assert_unchanged_except(
        &Snapshot::take(&rp.server).await,
        &["interactions"],
        "arbitrary /authorize requests",
    );
}

/// Hostile bodies and queries for every endpoint: never a 5xx, nothing changed.
async fn hostile_input_to_every_endpoint_is_a_client_error(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let big = format!("scope={}", "a".repeat(70 * 1024));
    let many = "a=1&".repeat(20_000);
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        (
            "non-UTF-8 bytes",
            b"grant_type=\xff\xfe&token=\xc3\x28".to_vec(),
        ),
        (
            "non-UTF-8 escapes",
            b"grant_type=%FF%FE&token=%C3%28".to_vec(),
        ),
        (
            "repeated",
            b"grant_type=password&grant_type=password&token=a&token=b".to_vec(),
        ),
        (
            "NUL",
            b"grant_type=pass%00word&token=%00&\x00=\x00".to_vec(),
        ),
        ("bare names", b"&&&=&==&grant_type&token".to_vec()),
        ("broken escapes", b"grant_type=%&token=%G1%1&%=%%".to_vec()),
        ("oversized value", big.clone().into_bytes()),
        ("many parameters", many.clone().into_bytes()),
        ("JSON", br#"{"grant_type":"client_credentials"}"#.to_vec()),
    ];
    let endpoints = [
        "/token",
        "/introspect",
        "/revoke",
        "/userinfo",
        "/authorize",
        "/logout",
        "/login",
        "/consent",
        "/oauth2/nope/token",
    ];
    let before = Snapshot::take(&rp.server).await;
    let http = &rp.server.http;
    for endpoint in endpoints {
        for (what, body) in &bodies {
            for content_type in ["application/x-www-form-urlencoded", "application/json"] {
                let response = http
                    .post(rp.server.url(endpoint))
                    .header(CONTENT_TYPE, content_type)
                    .basic_auth(&rp.client_id, Some(&rp.secret))
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                // /logout without a hint answers with its confirmation page; introspection
                // and revocation answer 200 for any token of a well-formed request.
                let may_succeed = ["/logout", "/introspect", "/revoke"].contains(&endpoint);
                assert!(
                    (400..500).contains(&status) || status == 200 && may_succeed,
                    "POST {endpoint} {what} ({content_type}): {status}"
                );
            }
        }
        for query in [
            "client_id=%FF",
            "client_id=a&client_id=a",
            "interaction=%00",
            "interaction=x&interaction=y",
            "id_token_hint=eyJhbGciOiJub25lIn0.e30.",
            "%%%",
        ] {
            let response = http
                .get(format!("{}?{query}", rp.server.url(endpoint)))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert!(
                (400..500).contains(&status) || status == 200 && endpoint == "/logout",
                "GET {endpoint}?{:.40}: {status}",
                query
            );
        }
    }
    before.assert_unchanged(&Snapshot::take(&rp.server).await, "hostile input");
}

/// A control character (NUL above all, which PostgreSQL cannot even compare) in a Basic
/// client_id names no client (401 invalid_client, RFC 6749 §5.2), and in a server path no
/// server (404): refused where they are parsed, on both databases alike.
async fn control_characters_in_identifiers_are_refused_where_they_are_parsed(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let before = Snapshot::take(&rp.server).await;
    let form = [("grant_type", "client_credentials")];
    for raw in [
        "a\u{0}b:secret",
        "a%00b:secret",
        "%00:secret",
        "a%0Ab:secret",
    ] {
        let response = rp
            .server
            .http
            .post(rp.server.url("/token"))
            .header(AUTHORIZATION, format!("Basic {}", base64_of(raw)))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{raw:?}");
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{raw:?}"
        );
        let error: serde_json::Value = response.json().await.expect("a JSON error");
        assert_eq!(error["error"], "invalid_client", "{raw:?}");
    }
    for path in [
        "/oauth2/%00/token",
        "/oauth2/a%00b/.well-known/openid-configuration",
        "/oauth2/%00/keys",
        "/oauth2/%0A/authorize?client_id=x",
    ] {
        let response = rp
            .server
            .http
            .post(rp.server.url(path))
            .basic_auth(&rp.client_id, Some(&rp.secret))
            .form(&form)
            .send()
            .await
            .unwrap();
        let get = rp
            .server
            .http
            .get(rp.server.url(path))
            .send()
            .await
            .unwrap();
        for status in [response.status(), get.status()] {
            assert!(status == 404 || status == 405, "{path}: {status}");
        }
        assert_eq!(get.status(), 404, "GET {path}");
    }
    before.assert_unchanged(&Snapshot::take(&rp.server).await, "control characters");
}

on_both_databases!(
    arbitrary_token_requests_get_rfc_errors,
    arbitrary_authorization_requests_get_pages_or_redirects,
    hostile_input_to_every_endpoint_is_a_client_error,
    control_characters_in_identifiers_are_refused_where_they_are_parsed
);
