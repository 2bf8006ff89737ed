//! `GET /authorize` before it touches the store: an arbitrary query string through the form
//! parser and the validation steps of `authorize::request` (client, redirect URI, then every
//! other rule) for a registered client. Any input must give a validated request, an error page
//! (never a redirect before the redirect URI matched) or an error for the client, never a
//! panic; a validated request's redirect URI is always a registered one.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::authorize::request::{check_redirect, check_rest};
use portcullis::authorize::AuthorizeError;
use portcullis::protocol::{ClientAuthMethod, FormParams, GrantType, ScopeSet};
use portcullis::store::{Client, NewClient};

fn client(public: bool) -> Client {
    NewClient {
        id: "client".into(),
        server_id: "default".into(),
        name: "fuzzed".into(),
        secret_hash: None,
        auth_method: if public {
            ClientAuthMethod::None
        } else {
            ClientAuthMethod::ClientSecretBasic
        },
        first_party: false,
        grant_types: vec![GrantType::AuthorizationCode, GrantType::Implicit],
        redirect_uris: vec![
            "https://app.example/cb".into(),
            "http://127.0.0.1/cb".into(),
        ],
        post_logout_redirect_uris: vec![],
        scopes: ScopeSet::parse("invoices.read").unwrap(),
        default_scopes: ScopeSet::default(),
    }
    .into_client(0)
}

fuzz_target!(|data: &[u8]| {
    let Ok(params) = FormParams::parse(data) else {
        return;
    };
    for public in [false, true] {
        let client = client(public);
        let target = match check_redirect(&params, &client, "https://issuer.example") {
            Ok(target) => target,
            Err(AuthorizeError::Page(e)) => {
                assert!(e.status.is_client_error());
                continue;
            }
            Err(AuthorizeError::Redirect(..)) => panic!("redirect before the redirect URI check"),
        };
        let requested = params.get("redirect_uri").unwrap_or_default();
        assert!(
            portcullis::protocol::redirect_uri::find_match(&client.redirect_uris, requested)
                .is_some()
        );
        match check_rest(&params, &client, &ScopeSet::default(), false, target) {
            Ok(request) => {
                assert_eq!(request.redirect_uri, requested);
                if public && request.response_type == "code" {
                    assert!(
                        request.code_challenge.is_some(),
                        "public client without PKCE"
                    );
                }
            }
            Err(AuthorizeError::Redirect(_, e)) => assert!(e.status.is_client_error()),
            Err(AuthorizeError::Page(e)) => panic!("an error page after the redirect URI: {e}"),
        }
    }
});
