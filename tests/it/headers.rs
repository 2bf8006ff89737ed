//! Response headers (issue 7 item 4): pages are not cached, framed or referred; every response
//! has Referrer-Policy and nosniff; HSTS only behind an https issuer; token-bearing responses are
//! `no-store`; CORS exactly on discovery, JWKS, token, userinfo and revocation.

use reqwest::header::HeaderMap;
use reqwest::Method;

use crate::common::rp::Rp;
use crate::common::{Backend, Landing, TestServer};
use crate::on_both_databases;

on_both_databases!(
    pages_are_not_cached_framed_or_referred,
    every_response_has_referrer_policy_and_nosniff,
    hsts_only_when_the_issuer_is_https,
    token_userinfo_and_introspection_are_not_cached,
    cors_is_exactly_on_the_endpoints_browser_apps_call,
);

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().expect("ascii header"))
}

fn assert_page_headers(what: &str, headers: &HeaderMap) {
    assert_eq!(header(headers, "cache-control"), Some("no-store"), "{what}");
    assert_eq!(header(headers, "x-frame-options"), Some("DENY"), "{what}");
    let csp = header(headers, "content-security-policy").unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(
        header(headers, "referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(
        header(headers, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
}

async fn pages_are_not_cached_framed_or_referred(backend: Backend) {
    let rp = Rp::start(backend, false).await;
    let server = &rp.server;
    // The login page.
    let response = rp
        .agent
        .http
        .get(rp.authorize_url("response_type=code&scope=openid&state=s"))
        .send()
        .await
        .unwrap();
    let landing = rp.agent.follow(response, &server.base).await;
    let Landing::Page { url, .. } = &landing else {
        panic!("expected the login page");
    };
    let login = rp.agent.http.get(url.clone()).send().await.unwrap();
    assert_eq!(login.status(), 200);
    assert_page_headers("login page", login.headers());
    // The consent page (a third-party client), after signing in.
    let consent = rp
        .agent
        .sign_in(
            landing,
            crate::common::rp::USER,
            crate::common::rp::PASSWORD,
            &server.base,
        )
        .await;
    let (url, status, _) = consent.page();
    assert_eq!(status, 200);
    let consent = rp.agent.http.get(url).send().await.unwrap();
    assert_page_headers("consent page", consent.headers());
    // An authorization error shown as a page (unknown client), and the logout page.
    let error = server
        .http
        .get(server.url("/authorize?client_id=nobody&response_type=code"))
        .send()
        .await
        .unwrap();
    assert!(error.status().is_client_error());
    assert_page_headers("authorize error page", error.headers());
    let logout = rp
        .agent
        .http
        .get(server.url("/logout"))
        .send()
        .await
        .unwrap();
    assert_page_headers("logout page", logout.headers());
}

async fn every_response_has_referrer_policy_and_nosniff(backend: Backend) {
    let server = TestServer::start(backend).await;
    for (method, path) in [
        (Method::GET, "/.well-known/openid-configuration"),
        (Method::GET, "/keys"),
        (Method::POST, "/token"),
        (Method::GET, "/userinfo"),
        (Method::GET, "/healthz"),
        (Method::GET, "/no-such-path"),
    ] {
        let response = server
            .http
            .request(method.clone(), server.url(path))
            .send()
            .await
            .unwrap();
        let headers = response.headers();
        assert_eq!(
            header(headers, "referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
        assert_eq!(
            header(headers, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            header(headers, "strict-transport-security"),
            None,
            "{path}: http issuer"
        );
    }
}

async fn hsts_only_when_the_issuer_is_https(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.issuer = "https://id.example.com".into();
    })
    .await;
    for path in [
        "/.well-known/openid-configuration",
        "/healthz",
        "/no-such-path",
    ] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        let hsts = header(response.headers(), "strict-transport-security").unwrap_or_default();
        assert!(hsts.starts_with("max-age=31536000"), "{path}: {hsts}");
    }
}

async fn token_userinfo_and_introspection_are_not_cached(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let server = &rp.server;
    let url = rp
        .authorize("response_type=code&scope=openid&state=s")
        .await;
    let code = crate::common::agent::query_param(&url, "code").unwrap();
    let response = server
        .post_form(
            "/token",
            Some(rp.credentials()),
            &[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", crate::common::rp::REDIRECT),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(response.headers(), "cache-control"),
        Some("no-store")
    );
    let tokens: serde_json::Value = response.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let userinfo = rp.userinfo(access).await;
    assert_eq!(userinfo.status(), 200);
    assert_eq!(
        header(userinfo.headers(), "cache-control"),
        Some("no-store")
    );
    // `introspect` asserts 200 and no-store.
    server.introspect("", rp.credentials(), access, None).await;
}

/// A CORS preflight from a browser app's origin.
async fn preflight(server: &TestServer, path: &str, method: &str) -> reqwest::Response {
    server
        .http
        .request(Method::OPTIONS, server.url(path))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap()
}

async fn cors_is_exactly_on_the_endpoints_browser_apps_call(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_server("tenant").await;
    for prefix in ["", "/oauth2/tenant"] {
        for (path, method) in [
            ("/.well-known/openid-configuration", "GET"),
            ("/.well-known/oauth-authorization-server", "GET"),
            ("/keys", "GET"),
            ("/token", "POST"),
            ("/userinfo", "GET"),
            ("/revoke", "POST"),
        ] {
            let path = format!("{prefix}{path}");
            let response = preflight(&server, &path, method).await;
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            assert_eq!(
                header(response.headers(), "access-control-allow-origin"),
                Some("*"),
                "{path}"
            );
        }
        for (path, method) in [
            ("/introspect", "POST"),
            ("/login", "POST"),
            ("/authorize", "GET"),
            ("/consent", "POST"),
            ("/logout", "POST"),
        ] {
            let path = format!("{prefix}{path}");
            let response = preflight(&server, &path, method).await;
            assert_eq!(
                header(response.headers(), "access-control-allow-origin"),
                None,
                "{path} must not allow other origins"
            );
        }
    }
    // A simple cross-origin request: allowed on the JWKS, not on introspection.
    let keys = server
        .http
        .get(server.url("/keys"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(keys.headers(), "access-control-allow-origin"),
        Some("*")
    );
    let introspect = server
        .http
        .post(server.url("/introspect"))
        .header("origin", "https://app.example.com")
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(introspect.headers(), "access-control-allow-origin"),
        None
    );
}
