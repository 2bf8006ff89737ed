//! Redirect URI tricks (RFC 6749 §3.1.2.3, RFC 9700 §4.1.3): a redirect URI that is not
//! byte-for-byte a registered one (RFC 8252 §7.3's loopback port aside) gets an error page,
//! never a redirect, at /authorize and at /logout. Each request is one that would otherwise be
//! answered by a redirect carrying an error (`response_type=bogus`), so a matcher that accepted
//! the trick would send the browser to it, and the control request shows it.
//!
//! Unit tests of the matcher: src/protocol/redirect_uri.rs; its properties: tests/it/properties.rs.

use portcullis::manage::clients::ClientRequest;
use portcullis::protocol::GrantType;

use super::{assert_error_page, enc, get};
use crate::common::snapshot::Snapshot;
use crate::common::{Backend, TestServer};
use crate::on_both_databases;

const APP: &str = "https://app.example/cb";
const LOOPBACK: &str = "http://127.0.0.1/cb";
const LOOPBACK6: &str = "http://[::1]/cb";
const BYE: &str = "https://app.example/bye";

async fn client(server: &TestServer) -> String {
    let (client, _) = server
        .register(ClientRequest {
            server_id: "default".into(),
            name: "tricked".into(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::Implicit],
            redirect_uris: vec![APP.into(), LOOPBACK.into(), LOOPBACK6.into()],
            post_logout_redirect_uris: vec![BYE.into()],
            scopes: vec![],
            default_scopes: vec![],
            public: false,
            first_party: true,
            auth_method: None,
        })
        .await;
    client.id
}

/// Variations of `https://app.example/cb`, none of them registered.
fn app_tricks() -> Vec<String> {
    let cyrillic = "https://\u{430}pp.example/cb"; // а (U+0430) for a
    let punycode = url::Url::parse(cyrillic).unwrap().to_string();
    assert!(punycode.contains("xn--"), "{punycode}");
    [
        "https://app.example/cb/",
        "https://app.example/cb/.",
        "https://app.example/cb/x",
        "https://app.example/cbx",
        "https://app.example/cb?",
        "https://app.example/cb?x=1",
        "https://app.example/cb#",
        "https://app.example/cb#x",
        "https://app.example:443/cb",
        "https://app.example:8443/cb",
        "http://app.example/cb",
        "HTTPS://app.example/cb",
        "https://APP.example/cb",
        "https://app.EXAMPLE/cb",
        "https://app.example/CB",
        "https://app.example/%63b",
        "https://app.example/c%62",
        "https://app.example/cb%2F",
        "https://app.example/cb%00",
        "https://%61pp.example/cb",
        "https://app.example/x/../cb",
        "https://app.example/./cb",
        "https://app.example//cb",
        "https://app.example\\cb",
        "https://app.example\\@evil.example/cb",
        "https://app.example@evil.example/cb",
        "https://user@app.example/cb",
        "https://user:pw@app.example/cb",
        "https://evil.example/cb",
        "https://evil.example/https://app.example/cb",
        "https://app.example.evil.example/cb",
        "https://app.example./cb",
        "//app.example/cb",
        "/cb",
        " https://app.example/cb",
        "https://app.example/cb ",
        "https://app.example/cb\n",
        "javascript:alert(1)//https://app.example/cb",
        "data:text/html,https://app.example/cb",
        cyrillic,
        punycode.as_str(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Variations of the loopback registrations; any port is fine (RFC 8252 §7.3), nothing else.
fn loopback_tricks() -> Vec<&'static str> {
    vec![
        "http://localhost:8080/cb",
        "http://localhost/cb",
        "https://127.0.0.1:8080/cb",
        "http://127.0.0.2:8080/cb",
        "http://127.1:8080/cb",
        "http://2130706433:8080/cb",
        "http://0x7f.0.0.1:8080/cb",
        "http://0177.0.0.1:8080/cb",
        "http://[::ffff:127.0.0.1]:8080/cb",
        "http://[0:0:0:0:0:0:0:1]:8080/cb",
        "http://[::1]:8080/cb/",
        "http://127.0.0.1:/cb",
        "http://127.0.0.1:08080/cb",
        "http://127.0.0.1:99999/cb",
        "http://127.0.0.1:8080/cb/",
        "http://127.0.0.1:8080/CB",
        "http://127.0.0.1:8080/%63b",
        "http://127.0.0.1:8080/x/../cb",
        "http://127.0.0.1:8080/cb?x=1",
        "http://127.0.0.1:8080/cb#x",
        "http://u@127.0.0.1:8080/cb",
        "http://127.0.0.1:8080@evil.example/cb",
        "http://127.0.0.1:8080\\@evil.example/cb",
        "http://127.0.0.1.evil.example:8080/cb",
        "HTTP://127.0.0.1:8080/cb",
    ]
}

fn authorize(client_id: &str, redirect_uri: &str, extra: &str) -> String {
    format!(
        "/authorize?client_id={client_id}&redirect_uri={}&response_type=bogus&state=s{extra}",
        enc(redirect_uri)
    )
}

async fn authorize_never_redirects_to_an_unregistered_uri(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client_id = client(&server).await;
    // Controls: the registered URIs (and a loopback one on another port) are redirected to.
    for (uri, port) in [
        (APP, APP),
        (LOOPBACK, "http://127.0.0.1:8080/cb"),
        (LOOPBACK6, "http://[::1]:8080/cb"),
    ] {
        let response = get(&server, &authorize(&client_id, port, "")).await;
        assert_eq!(response.status(), 303, "control {uri}");
        let location = response.headers()["location"].to_str().unwrap();
        assert!(
            location.starts_with(&format!("{port}?error=unsupported_response_type")),
            "{location}"
        );
    }
    let before = Snapshot::take(&server).await;
    let tricks: Vec<String> = app_tricks()
        .into_iter()
        .chain(loopback_tricks().into_iter().map(str::to_string))
        .collect();
    for trick in &tricks {
        // Every response mode: query, fragment, and form_post (an auto-submitting form is a
        // redirect too).
        for extra in ["", "&response_mode=fragment", "&response_mode=form_post"] {
            let response = get(&server, &authorize(&client_id, trick, extra)).await;
            let body = assert_error_page(response, 400, &format!("{trick:?}{extra}")).await;
            assert!(
                !body.contains("<form"),
                "{trick:?}{extra}: a form on the error page"
            );
        }
        // POST /authorize too.
        let response = server
            .http
            .post(server.url("/authorize"))
            .form(&[
                ("client_id", client_id.as_str()),
                ("redirect_uri", trick),
                ("response_type", "bogus"),
            ])
            .send()
            .await
            .unwrap();
        assert_error_page(response, 400, &format!("POST {trick:?}")).await;
    }
    // Duplicated redirect_uri (one registered, one not) is refused as a whole.
    let response = get(
        &server,
        &format!(
            "{}&redirect_uri={}",
            authorize(&client_id, APP, ""),
            enc("https://evil.example/cb")
        ),
    )
    .await;
    assert_error_page(response, 400, "duplicated redirect_uri").await;
    before.assert_unchanged(&Snapshot::take(&server).await, "redirect URI tricks");
}

async fn logout_never_redirects_to_an_unregistered_uri(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client_id = client(&server).await;
    let logout = |uri: &str| {
        format!(
            "/logout?client_id={client_id}&post_logout_redirect_uri={}&state=s",
            enc(uri)
        )
    };
    // Control: the registered URI is accepted (the confirmation page carries it along).
    let response = get(&server, &logout(BYE)).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Sign out?"));
    let before = Snapshot::take(&server).await;
    let tricks = app_tricks()
        .into_iter()
        .map(|t| t.replace("/cb", "/bye"))
        .chain(loopback_tricks().into_iter().map(str::to_string))
        .chain([APP.to_string()]); // a redirect_uri is not a post-logout URI
    for trick in tricks {
        let body = assert_error_page(get(&server, &logout(&trick)).await, 400, &trick).await;
        assert!(
            !body.contains("<form"),
            "{trick:?}: a form on the error page"
        );
        let response = server
            .http
            .post(server.url("/logout"))
            .form(&[
                ("client_id", client_id.as_str()),
                ("post_logout_redirect_uri", trick.as_str()),
                ("confirm", "yes"),
            ])
            .send()
            .await
            .unwrap();
        assert_error_page(response, 400, &format!("POST {trick:?}")).await;
    }
    before.assert_unchanged(
        &Snapshot::take(&server).await,
        "post-logout redirect tricks",
    );
}

on_both_databases!(
    authorize_never_redirects_to_an_unregistered_uri,
    logout_never_redirects_to_an_unregistered_uri
);
