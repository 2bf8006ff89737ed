//! Mix-up defence (RFC 9207, RFC 9700 §4.4): every authorization response, success or error,
//! in every response mode, carries `iss`, the issuer of the server that answered, so a client
//! talking to several servers can tell which one a code or error came from.

use portcullis::manage::clients::ClientRequest;
use portcullis::protocol::GrantType;
use url::Url;

use crate::common::agent::{fragment_param, hidden_inputs, query_param};
use crate::common::rp::{Rp, PASSWORD, REDIRECT, USER};
use crate::common::{Backend, Landing};
use crate::on_both_databases;

/// `iss` of a redirect (query or fragment), checked against `issuer`, with the parameter that
/// says what the response is.
fn assert_iss(url: &Url, issuer: &str, expect: &str) {
    let from_query = query_param(url, expect).is_some();
    let get = |name: &str| {
        if from_query {
            query_param(url, name)
        } else {
            fragment_param(url, name)
        }
    };
    assert!(get(expect).is_some(), "no {expect} in {url}");
    assert_eq!(get("iss").as_deref(), Some(issuer), "{url}");
}

async fn every_authorization_response_names_its_issuer(backend: Backend) {
    let rp = Rp::start(backend, false).await;
    let issuer = rp.server.issuer("default");
    // Before signing in: prompt=none errors, request errors in query and fragment.
    let cases = [
        ("response_type=code&scope=openid&prompt=none", "error"),
        ("response_type=bogus", "error"),
        ("response_type=code&scope=unknown", "error"),
        ("response_type=id_token&scope=openid", "error"), // no nonce: in the fragment
        (
            "response_type=token&scope=openid&response_mode=query",
            "error",
        ),
    ];
    for (params, expect) in cases {
        let url = rp.go(params).await.client_url();
        assert_iss(&url, &issuer, expect);
    }
    // Consent denied.
    let landing = rp.go("response_type=code&scope=openid&state=d").await;
    let (url, _, body) = rp
        .agent
        .sign_in(landing, USER, PASSWORD, &rp.server.base)
        .await
        .page();
    let back = rp
        .agent
        .submit(&url, &body, &[("decision", "deny")], &rp.server.base)
        .await
        .client_url();
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    assert_iss(&back, &issuer, "error");
    // Consent given: a code (query), tokens (fragment), each with iss.
    let landing = rp.go("response_type=code&scope=openid&state=c").await;
    let (url, _, body) = landing.page();
    let back = rp
        .agent
        .submit(&url, &body, &[("decision", "allow")], &rp.server.base)
        .await
        .client_url();
    assert_iss(&back, &issuer, "code");
    let url = rp
        .authorize("response_type=id_token%20token&scope=openid&nonce=n")
        .await;
    assert_iss(&url, &issuer, "access_token");
    // form_post: success and error both post iss.
    for params in [
        "response_type=code&scope=openid&response_mode=form_post",
        "response_type=code&scope=nope&response_mode=form_post",
    ] {
        let (_, status, body) = match rp.go(params).await {
            page @ Landing::Page { .. } => page.page(),
            other => panic!("{other:?}"),
        };
        assert_eq!(status, 200);
        let fields = hidden_inputs(&body);
        let iss = fields.iter().find(|(k, _)| k == "iss").map(|(_, v)| v);
        assert_eq!(iss, Some(&issuer), "{params}: {fields:?}");
        assert!(
            fields.iter().any(|(k, _)| k == "code" || k == "error"),
            "{fields:?}"
        );
    }
}

/// A second server names itself, not the deployment's default.
async fn another_servers_responses_name_that_server(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    rp.server.create_server("other").await;
    let (client, _) = rp
        .server
        .register(ClientRequest {
            server_id: "other".into(),
            name: "other app".into(),
            grant_types: vec![GrantType::AuthorizationCode],
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![],
            scopes: vec![],
            default_scopes: vec![],
            public: false,
            first_party: true,
            auth_method: None,
        })
        .await;
    let issuer = rp.server.issuer("other");
    assert_ne!(issuer, rp.server.issuer("default"));
    let url = |params: &str| {
        format!(
            "{issuer}/authorize?client_id={}&redirect_uri={REDIRECT}&{params}",
            client.id
        )
    };
    let back = rp
        .agent
        .navigate(&url("response_type=bogus"), &rp.server.base)
        .await
        .client_url();
    assert_iss(&back, &issuer, "error");
    let landing = rp
        .agent
        .navigate(&url("response_type=code&scope=openid"), &rp.server.base)
        .await;
    let back = rp
        .agent
        .sign_in(landing, USER, PASSWORD, &rp.server.base)
        .await
        .client_url();
    assert_iss(&back, &issuer, "code");
}

on_both_databases!(
    every_authorization_response_names_its_issuer,
    another_servers_responses_name_that_server
);
