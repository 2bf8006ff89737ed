//! Cookies behind an https issuer are `__Host-` cookies (RFC 6265bis §4.1.3.2): Secure,
//! `Path=/`, no `Domain`, so a sibling subdomain cannot toss one in; the unprefixed names are
//! not read at all. The tests speak plain HTTP to the router, so the cookies are sent by hand
//! (a cookie jar would not send Secure cookies over http).

use portcullis::store::servers::DEFAULT_SERVER;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::common::agent::hidden_inputs;
use crate::common::{Backend, TestServer};
use crate::on_both_databases;

const ISSUER: &str = "https://id.example.com";
const REDIRECT: &str = "http://127.0.0.1:9/cb";
const PASSWORD: &str = "correct horse battery staple";

/// The `Set-Cookie` values of a response, by cookie name.
fn set_cookies(response: &reqwest::Response) -> Vec<(String, String)> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let (name, _) = v.split_once('=')?;
            Some((name.to_string(), v.to_string()))
        })
        .collect()
}

fn value_of(set_cookie: &str) -> String {
    let (_, rest) = set_cookie.split_once('=').unwrap();
    rest.split(';').next().unwrap().to_string()
}

/// Each attribute a `__Host-` cookie must have, and none it must not.
fn assert_host_cookie(set_cookie: &str) {
    let attributes: Vec<&str> = set_cookie.split(';').map(str::trim).collect();
    assert!(attributes.contains(&"Secure"), "{set_cookie}");
    assert!(attributes.contains(&"Path=/"), "{set_cookie}");
    assert!(attributes.contains(&"HttpOnly"), "{set_cookie}");
    assert!(
        !attributes.iter().any(|a| a.starts_with("Domain")),
        "{set_cookie}"
    );
}

/// The path and query of one of our redirects (its host is the https issuer).
fn local(location: &str) -> String {
    location
        .strip_prefix(ISSUER)
        .expect("a redirect of ours")
        .to_string()
}

/// Start at `/authorize` of `server_id` and sign in; the browser and session cookies set.
async fn sign_in(server: &TestServer, server_id: &str, client_id: &str) -> (String, String) {
    let prefix = if server_id == DEFAULT_SERVER {
        String::new()
    } else {
        format!("/oauth2/{server_id}")
    };
    let authorize = format!(
        "{prefix}/authorize?response_type=code&scope=openid&client_id={client_id}\
         &redirect_uri={REDIRECT}&state=s"
    );
    let response = server
        .http
        .get(server.url(&authorize))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    let cookies = set_cookies(&response);
    let (name, browser) = &cookies[0];
    assert_eq!(name, "__Host-portcullis_browser");
    assert_host_cookie(browser);
    let browser = format!("{name}={}", value_of(browser));
    let login = local(response.headers()[LOCATION].to_str().unwrap());
    let page = server
        .http
        .get(server.url(&login))
        .header(COOKIE, &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let mut form = hidden_inputs(&page.text().await.unwrap());
    form.push(("username".into(), "ada".into()));
    form.push(("password".into(), PASSWORD.into()));
    let response = server
        .http
        .post(server.url(&format!("{prefix}/login")))
        .header(COOKIE, &browser)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookies = set_cookies(&response);
    let (name, session) = cookies
        .iter()
        .find(|(name, _)| name.contains("portcullis_session"))
        .expect("a session cookie");
    assert_host_cookie(session);
    (browser, format!("{name}={}", value_of(session)))
}

/// Where `/authorize` sends a browser presenting `cookie`: the client (signed in) or the
/// login page.
async fn authorize_with(
    server: &TestServer,
    prefix: &str,
    client_id: &str,
    cookie: &str,
) -> String {
    let url = format!(
        "{prefix}/authorize?response_type=code&scope=openid&client_id={client_id}\
         &redirect_uri={REDIRECT}"
    );
    let response = server
        .http
        .get(server.url(&url))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    response.headers()[LOCATION].to_str().unwrap().to_string()
}

async fn https_cookies_are_host_prefixed_and_plain_names_are_not_read(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.issuer = ISSUER.into()).await;
    server.create_user("ada", PASSWORD).await;
    server.create_server("tenant").await;
    for (server_id, prefix) in [(DEFAULT_SERVER, ""), ("tenant", "/oauth2/tenant")] {
        let client = server
            .register(portcullis::manage::clients::ClientRequest {
                server_id: server_id.into(),
                name: "web".into(),
                grant_types: vec![portcullis::protocol::GrantType::AuthorizationCode],
                redirect_uris: vec![REDIRECT.into()],
                post_logout_redirect_uris: vec![],
                scopes: vec![],
                default_scopes: vec![],
                public: false,
                first_party: true,
                auth_method: None,
            })
            .await
            .0;
        let (browser, session) = sign_in(&server, server_id, &client.id).await;
        let expected = if server_id == DEFAULT_SERVER {
            "__Host-portcullis_session="
        } else {
            "__Host-portcullis_session_tenant="
        };
        assert!(session.starts_with(expected), "{session}");
        // The prefixed cookie is the session: straight back to the client with a code.
        let signed_in = authorize_with(&server, prefix, &client.id, &session).await;
        assert!(signed_in.starts_with(REDIRECT), "{signed_in}");
        assert!(signed_in.contains("code="), "{signed_in}");
        // The same value under the plain name (what a sibling subdomain could toss in) is not
        // read: the browser is sent to sign in.
        let tossed = session.trim_start_matches("__Host-");
        let location = authorize_with(&server, prefix, &client.id, tossed).await;
        assert!(
            location.starts_with(&format!("{ISSUER}{prefix}/login")),
            "{location}"
        );
        // Nor is a plain browser cookie: a new one is set.
        let response = server
            .http
            .get(server.url(&format!(
                "{prefix}/authorize?response_type=code&scope=openid&client_id={}\
                 &redirect_uri={REDIRECT}",
                client.id
            )))
            .header(COOKIE, browser.trim_start_matches("__Host-"))
            .send()
            .await
            .unwrap();
        let reset = set_cookies(&response);
        assert_eq!(reset.len(), 1, "{reset:?}");
        assert_ne!(value_of(&reset[0].1), browser.split_once('=').unwrap().1);
    }
}

/// Over plain http (loopback development) the prefix cannot be used: the plain names, with the
/// session cookie of another server scoped to its path.
async fn http_cookies_keep_their_plain_names(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_server("tenant").await;
    let (client, _) = server.web_client(REDIRECT, true, false).await;
    let response = server
        .http
        .get(server.url(&format!(
            "/authorize?response_type=code&scope=openid&client_id={}&redirect_uri={REDIRECT}",
            client.id
        )))
        .send()
        .await
        .unwrap();
    let cookies = set_cookies(&response);
    assert_eq!(cookies[0].0, "portcullis_browser");
    assert!(!cookies[0].1.contains("Secure"), "{}", cookies[0].1);
    let (name, path) = portcullis::http::cookies::session_cookie("tenant", false);
    assert_eq!(
        (name.as_str(), path.as_str()),
        ("portcullis_session_tenant", "/oauth2/tenant")
    );
}

on_both_databases!(
    https_cookies_are_host_prefixed_and_plain_names_are_not_read,
    http_cookies_keep_their_plain_names,
);
