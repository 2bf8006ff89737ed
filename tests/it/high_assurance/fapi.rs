//! Pushed authorization requests (RFC 9126) and signed request objects (RFC 9101), and the
//! FAPI 2.0 security profile's shape: PAR + private_key_jwt + DPoP + PKCE in one code flow.

use jsonwebtoken::Algorithm;
use portcullis::manage::client_security::{update_client_security, SecurityChanges};
use portcullis::protocol::ClientAuthMethod;
use portcullis::store::ServerChanges;
use serde_json::{json, Value};

use super::{
    assertion_claims, ath, audit_count, dpop_proof, jwks, post, use_private_key_jwt, TestKey,
    ASSERTION_TYPE,
};
use crate::common::agent::query_param;
use crate::common::rp::{Rp, REDIRECT};
use crate::common::{assert_oauth_error, Backend, Landing};
use crate::jwt::payload;
use crate::on_both_databases;

const VERIFIER: &str = "fapi-code-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";

/// An assertion by `key` for `rp`'s client, with a fresh jti.
fn assertion(rp: &Rp, key: &TestKey) -> String {
    key.sign(
        json!({"kid": key.kid}),
        &assertion_claims(
            &rp.client_id,
            &rp.server.base,
            rp.server.clock_now(),
            &portcullis::security::random_token(12),
        ),
    )
}

/// POST /par as `rp`'s private_key_jwt client with `params`.
async fn push(rp: &Rp, key: &TestKey, params: &[(&str, &str)]) -> reqwest::Response {
    push_with(rp, key, params, &[]).await
}

/// POST /par with extra headers.
async fn push_with(
    rp: &Rp,
    key: &TestKey,
    params: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let assertion = assertion(rp, key);
    let mut form: Vec<(&str, &str)> = vec![
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion.as_str()),
    ];
    form.extend_from_slice(params);
    post(&rp.server, "/par", headers, &form).await
}

/// The authorization request's parameters, for PKCE S256 and a DPoP-bound code.
fn request_params(challenge: &str, jkt: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", String::new()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "openid".into()),
        ("state", "fapi-state".into()),
        ("nonce", "fapi-nonce".into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
        ("dpop_jkt", jkt.into()),
    ]
}

/// A first-party confidential web app made a FAPI-style client: private_key_jwt, PAR and DPoP
/// required.
async fn fapi_client(backend: Backend, key: &TestKey) -> Rp {
    let rp = Rp::start(backend, true).await;
    let client = rp
        .server
        .store()
        .client(&rp.client_id)
        .await
        .unwrap()
        .unwrap();
    let client = use_private_key_jwt(&rp.server, &client, &jwks(&[key])).await;
    update_client_security(
        rp.server.store(),
        &client,
        None,
        SecurityChanges {
            require_par: Some(true),
            require_dpop: Some(true),
            ..SecurityChanges::default()
        },
        rp.server.clock_now(),
    )
    .await
    .expect("FAPI client");
    rp
}

async fn a_fapi_code_flow_combines_par_private_key_jwt_dpop_and_pkce(backend: Backend) {
    let client_key = TestKey::rsa("client-2026", Algorithm::PS256);
    let dpop_key = TestKey::es256("dpop");
    let rp = fapi_client(backend, &client_key).await;
    let challenge = portcullis::protocol::pkce::s256(VERIFIER);
    let mut params = request_params(&challenge, &dpop_key.thumbprint());
    params[1].1 = rp.client_id.clone();
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // RFC 9126 §2.2: 201 with a request_uri URN and its lifetime.
    let response = push(&rp, &client_key, &pairs).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let pushed: Value = response.json().await.unwrap();
    let request_uri = pushed["request_uri"].as_str().unwrap().to_string();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert_eq!(pushed["expires_in"], 60);

    // §4: the browser carries only client_id and request_uri; a scope added in the front
    // channel is ignored (the pushed parameters are the only ones used).
    let url = rp
        .agent
        .navigate(
            &format!(
                "{}/authorize?client_id={}&request_uri={}&scope=openid%20invoices.read",
                rp.server.base,
                rp.client_id,
                urlencode(&request_uri)
            ),
            &rp.server.base,
        )
        .await;
    let back = match url {
        Landing::Client(url) => url,
        page => rp
            .agent
            .sign_in(
                page,
                crate::common::rp::USER,
                crate::common::rp::PASSWORD,
                &rp.server.base,
            )
            .await
            .client_url(),
    };
    assert_eq!(query_param(&back, "state").as_deref(), Some("fapi-state"));
    let code = query_param(&back, "code").unwrap_or_else(|| panic!("no code: {back}"));

    // Token request: private_key_jwt, a DPoP proof by the key the code is bound to, PKCE.
    let token_url = rp.server.url("/token");
    let proof = dpop_proof(
        &dpop_key,
        "POST",
        &token_url,
        rp.server.clock_now(),
        json!({}),
    );
    let client_assertion = assertion(&rp, &client_key);
    let response = post(
        &rp.server,
        "/token",
        &[("DPoP", &proof)],
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &client_assertion),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
    let access_token = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        payload(access_token)["cnf"]["jkt"],
        dpop_key.thumbprint().as_str()
    );
    assert_eq!(
        payload(access_token)["scope"],
        "openid",
        "the pushed scope only"
    );
    let id_claims = rp.id_claims(tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(id_claims["nonce"], "fapi-nonce");

    // /userinfo with the DPoP scheme and a proof naming the token.
    let userinfo = rp.server.url("/userinfo");
    let proof = dpop_proof(
        &dpop_key,
        "GET",
        &userinfo,
        rp.server.clock_now(),
        json!({ "ath": ath(access_token) }),
    );
    let response = rp
        .server
        .http
        .get(&userinfo)
        .header("Authorization", format!("DPoP {access_token}"))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let claims: Value = response.json().await.unwrap();
    assert_eq!(claims["sub"], rp.user_id.as_str());

    // §4: a request_uri is single use.
    let again = rp
        .agent
        .navigate(
            &format!(
                "{}/authorize?client_id={}&request_uri={}",
                rp.server.base,
                rp.client_id,
                urlencode(&request_uri)
            ),
            &rp.server.base,
        )
        .await;
    let (_, status, body) = again.page();
    assert_eq!(status, 400, "a reused request_uri");
    assert!(body.contains("invalid_request_uri"), "{body}");
}

async fn par_refusals_reuse_expiry_and_requirements(backend: Backend) {
    let client_key = TestKey::es256("k");
    let rp = fapi_client(backend, &client_key).await;
    let challenge = portcullis::protocol::pkce::s256(VERIFIER);
    let jkt = TestKey::es256("d").thumbprint();
    let mut params = request_params(&challenge, &jkt);
    params[1].1 = rp.client_id.clone();
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // A plain authorization request from a client that must push: refused.
    let landing = rp
        .go(&format!(
            "response_type=code&scope=openid&state=s&code_challenge={challenge}&code_challenge_method=S256"
        ))
        .await;
    let (_, status, body) = landing.page();
    assert_eq!(status, 400);
    assert!(body.contains("push its authorization requests"), "{body}");

    // The push itself needs client authentication, and a valid request.
    let response = post(&rp.server, "/par", &[], &pairs).await;
    assert_oauth_error(response, 401, "invalid_client").await;
    let mut bad_redirect = pairs.clone();
    bad_redirect[2].1 = "https://evil.example/cb";
    let response = push(&rp, &client_key, &bad_redirect).await;
    assert_oauth_error(response, 400, "invalid_request").await;
    let mut with_uri = pairs.clone();
    with_uri.push(("request_uri", "urn:ietf:params:oauth:request_uri:x"));
    let response = push(&rp, &client_key, &with_uri).await;
    assert_oauth_error(response, 400, "invalid_request").await;

    // Expired after 60 s.
    let response = push(&rp, &client_key, &pairs).await;
    assert_eq!(response.status(), 201);
    let pushed: Value = response.json().await.unwrap();
    let request_uri = pushed["request_uri"].as_str().unwrap();
    rp.server.clock.advance(61);
    let landing = rp
        .agent
        .navigate(
            &format!(
                "{}/authorize?client_id={}&request_uri={}",
                rp.server.base,
                rp.client_id,
                urlencode(request_uri)
            ),
            &rp.server.base,
        )
        .await;
    let (_, status, body) = landing.page();
    assert_eq!(status, 400, "expired request_uri");
    assert!(body.contains("invalid_request_uri"), "{body}");

    // Another client's request_uri is not ours to use.
    let response = push(&rp, &client_key, &pairs).await;
    let pushed: Value = response.json().await.unwrap();
    let request_uri = pushed["request_uri"].as_str().unwrap();
    let (other, _) = rp.server.web_client(REDIRECT, true, false).await;
    let landing = rp
        .agent
        .navigate(
            &format!(
                "{}/authorize?client_id={}&request_uri={}",
                rp.server.base,
                other.id,
                urlencode(request_uri)
            ),
            &rp.server.base,
        )
        .await;
    let (_, status, _) = landing.page();
    assert_eq!(status, 400, "another client's request_uri");

    // A request_uri that is not one of ours: request_uri_not_supported, at the redirect URI.
    let landing = rp
        .server
        .http
        .get(format!(
            "{}/authorize?client_id={}&redirect_uri={REDIRECT}&response_type=code&state=s&request_uri=https%3A%2F%2Frp.example%2Freq",
            rp.server.base, other.id
        ))
        .send()
        .await
        .unwrap();
    let location = landing.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.contains("error=request_uri_not_supported"),
        "{location}"
    );

    // Discovery advertises PAR; the server-wide requirement shows there too.
    let doc = || async {
        rp.server
            .http
            .get(rp.server.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let before = doc().await;
    assert_eq!(
        before["pushed_authorization_request_endpoint"],
        rp.server.url("/par")
    );
    assert_eq!(before["require_pushed_authorization_requests"], false);
    rp.server
        .store()
        .update_server(
            "default",
            &ServerChanges {
                require_pushed_authorization_requests: Some(true),
                ..ServerChanges::default()
            },
            rp.server.clock_now(),
        )
        .await
        .unwrap();
    assert_eq!(doc().await["require_pushed_authorization_requests"], true);
    // Now even a client without its own requirement must push.
    let landing = rp
        .server
        .http
        .get(format!(
            "{}/authorize?client_id={}&redirect_uri={REDIRECT}&response_type=code&scope=openid&state=s",
            rp.server.base, other.id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(landing.status(), 400, "server requires PAR");
}

async fn signed_request_objects_are_the_only_parameters_and_are_checked(backend: Backend) {
    let client_key = TestKey::ed25519("ro");
    let rp = Rp::start(backend, true).await;
    let client = rp
        .server
        .store()
        .client(&rp.client_id)
        .await
        .unwrap()
        .unwrap();
    let client = use_private_key_jwt(&rp.server, &client, &jwks(&[&client_key])).await;
    let (client, _) = update_client_security(
        rp.server.store(),
        &client,
        Some(ClientAuthMethod::PrivateKeyJwt),
        SecurityChanges {
            require_signed_request_object: Some(true),
            ..SecurityChanges::default()
        },
        rp.server.clock_now(),
    )
    .await
    .unwrap();
    let now = rp.server.clock_now();
    let claims = |jti: &str| {
        json!({
            "iss": client.id,
            "aud": rp.server.base,
            "exp": now + 300,
            "nbf": now,
            "jti": jti,
            "client_id": client.id,
            "response_type": "code",
            "redirect_uri": REDIRECT,
            "scope": "openid",
            "state": "signed-state",
            "nonce": "n",
            "max_age": 3600,
        })
    };
    let object = |jti: &str| {
        client_key.sign(
            json!({"kid": "ro", "typ": "oauth-authz-req+jwt"}),
            &claims(jti),
        )
    };
    // By value: the object's parameters only (the outer state is ignored).
    let url = rp
        .agent
        .navigate(
            &format!(
                "{}/authorize?client_id={}&state=outer&request={}",
                rp.server.base,
                client.id,
                object("one")
            ),
            &rp.server.base,
        )
        .await;
    let back = match url {
        Landing::Client(url) => url,
        page => rp
            .agent
            .sign_in(
                page,
                crate::common::rp::USER,
                crate::common::rp::PASSWORD,
                &rp.server.base,
            )
            .await
            .client_url(),
    };
    assert_eq!(query_param(&back, "state").as_deref(), Some("signed-state"));
    assert!(query_param(&back, "code").is_some());

    // Replayed, unsigned, expired, for another audience, by another key: refused.
    let mut expired = claims("two");
    expired["exp"] = json!(now - 1);
    let mut elsewhere = claims("three");
    elsewhere["aud"] = json!("https://other.example");
    let stranger = TestKey::ed25519("ro");
    let refused = [
        ("replayed", object("one")),
        ("expired", client_key.sign(json!({"kid": "ro"}), &expired)),
        (
            "another audience",
            client_key.sign(json!({"kid": "ro"}), &elsewhere),
        ),
        (
            "another key",
            stranger.sign(json!({"kid": "ro"}), &claims("four")),
        ),
        (
            "unsigned",
            super::forged(&client_key, &claims("five"))[0].clone(),
        ),
    ];
    for (case, object) in refused {
        let response = rp
            .server
            .http
            .get(format!(
                "{}/authorize?client_id={}&redirect_uri={REDIRECT}&request={object}",
                rp.server.base, client.id
            ))
            .send()
            .await
            .unwrap();
        let location = response.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with(REDIRECT), "{case}: {location}");
        assert!(
            location.contains("error=invalid_request_object"),
            "{case}: {location}"
        );
    }
    // Plain parameters, where a signed request object is required: refused.
    let landing = rp.go("response_type=code&scope=openid&state=plain").await;
    let (_, status, body) = landing.page();
    assert_eq!(status, 400);
    assert!(body.contains("signed request object"), "{body}");
    // A pushed signed request object is accepted; a pushed unsigned request is not.
    let response = push(&rp, &client_key, &[("request", &object("six"))]).await;
    assert_eq!(response.status(), 201);
    let response = push(
        &rp,
        &client_key,
        &[
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_oauth_error(response, 400, "invalid_request").await;
    assert_eq!(audit_count(&rp.server, "token_issued").await, 0);
}

async fn a_dpop_proof_at_par_binds_the_code_to_its_key(backend: Backend) {
    let client_key = TestKey::es256("c");
    let dpop_key = TestKey::ed25519("holder");
    let rp = fapi_client(backend, &client_key).await;
    let challenge = portcullis::protocol::pkce::s256(VERIFIER);
    let mut params = request_params(&challenge, "");
    params[1].1 = rp.client_id.clone();
    params.retain(|(name, _)| *name != "dpop_jkt");
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let par_url = rp.server.url("/par");
    let now = rp.server.clock_now();
    // A proof for another endpoint, and a dpop_jkt naming another key: refused.
    let wrong_url = dpop_proof(&dpop_key, "POST", &rp.server.url("/token"), now, json!({}));
    let response = push_with(&rp, &client_key, &pairs, &[("DPoP", &wrong_url)]).await;
    assert_oauth_error(response, 400, "invalid_dpop_proof").await;
    let other_jkt = TestKey::es256("other").thumbprint();
    let mut mismatched = pairs.clone();
    mismatched.push(("dpop_jkt", &other_jkt));
    let proof = dpop_proof(&dpop_key, "POST", &par_url, now, json!({}));
    let response = push_with(&rp, &client_key, &mismatched, &[("DPoP", &proof)]).await;
    assert_oauth_error(response, 400, "invalid_dpop_proof").await;
    // RFC 9449 §10.1: the proof's key binds the code: another key gets nothing for it, the
    // proof's key gets a token bound to it.
    let thief = TestKey::ed25519("thief");
    for (exchanging_key, status) in [(&thief, 400), (&dpop_key, 200)] {
        let proof = dpop_proof(
            &dpop_key,
            "POST",
            &par_url,
            rp.server.clock_now(),
            json!({}),
        );
        let response = push_with(&rp, &client_key, &pairs, &[("DPoP", &proof)]).await;
        assert_eq!(response.status(), 201);
        let pushed: Value = response.json().await.unwrap();
        let landing = rp
            .agent
            .navigate(
                &format!(
                    "{}/authorize?client_id={}&request_uri={}",
                    rp.server.base,
                    rp.client_id,
                    urlencode(pushed["request_uri"].as_str().unwrap())
                ),
                &rp.server.base,
            )
            .await;
        let back = match landing {
            Landing::Client(url) => url,
            page => rp
                .agent
                .sign_in(
                    page,
                    crate::common::rp::USER,
                    crate::common::rp::PASSWORD,
                    &rp.server.base,
                )
                .await
                .client_url(),
        };
        let code = query_param(&back, "code").unwrap_or_else(|| panic!("no code: {back}"));
        let token_url = rp.server.url("/token");
        let proof = dpop_proof(
            exchanging_key,
            "POST",
            &token_url,
            rp.server.clock_now(),
            json!({}),
        );
        let client_assertion = assertion(&rp, &client_key);
        let response = post(
            &rp.server,
            "/token",
            &[("DPoP", &proof)],
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &client_assertion),
            ],
        )
        .await;
        assert_eq!(
            response.status(),
            status,
            "exchanged with {}",
            exchanging_key.kid
        );
        let body: Value = response.json().await.unwrap();
        if status == 200 {
            let token = body["access_token"].as_str().unwrap();
            assert_eq!(payload(token)["cnf"]["jkt"], dpop_key.thumbprint().as_str());
        } else {
            assert_eq!(body["error"], "invalid_grant");
        }
    }
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

on_both_databases!(
    a_dpop_proof_at_par_binds_the_code_to_its_key,
    a_fapi_code_flow_combines_par_private_key_jwt_dpop_and_pkce,
    par_refusals_reuse_expiry_and_requirements,
    signed_request_objects_are_the_only_parameters_and_are_checked,
);
