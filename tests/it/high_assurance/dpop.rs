//! DPoP (RFC 9449): proofs at /token bind the tokens to the proof's key (`cnf.jkt`, token
//! type `DPoP`); every bad proof is `invalid_dpop_proof` and issues nothing; server nonces hold
//! on every replica; a bound token at /userinfo needs a proof by its key and is refused as a
//! Bearer token; codes (`dpop_jkt`) and public clients' refresh tokens are bound too.

use jsonwebtoken::Algorithm;
use portcullis::manage::client_security::{update_client_security, SecurityChanges};
use portcullis::protocol::GrantType;
use serde_json::{json, Value};

use super::{ath, audit_count, dpop_proof, forged, post, TestKey};
use crate::common::agent::query_param;
use crate::common::rp::{Rp, REDIRECT};
use crate::common::{assert_oauth_error, Backend, TestServer};
use crate::jwt::payload;
use crate::on_both_databases;

/// client_credentials with Basic `client` and the given DPoP header.
async fn cc_with_proof(
    server: &TestServer,
    client: (&str, &str),
    proof: Option<&str>,
) -> reqwest::Response {
    let mut request = server
        .http
        .post(server.url("/token"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("grant_type", "client_credentials")]);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request.send().await.expect("token request")
}

async fn a_dpop_proof_binds_the_access_token_to_its_key(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, secret) = server.service_client("default", &["invoices.read"]).await;
    let key = TestKey::es256("holder");
    let url = server.url("/token");
    for key in [
        key,
        TestKey::ed25519("e"),
        TestKey::rsa("r", Algorithm::PS256),
    ] {
        let proof = dpop_proof(&key, "POST", &url, server.clock_now(), json!({}));
        let response = cc_with_proof(&server, (&client.id, secret.expose()), Some(&proof)).await;
        assert_eq!(response.status(), 200, "{}", key.alg_name());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "DPoP");
        let token = body["access_token"].as_str().unwrap();
        // RFC 9449 §6.1: cnf.jkt is the key's RFC 7638 thumbprint, computed independently.
        assert_eq!(payload(token)["cnf"]["jkt"], key.thumbprint().as_str());
        // §6.2: introspection tells the binding.
        let answer = server
            .introspect("", (&client.id, secret.expose()), token, None)
            .await;
        assert_eq!(answer["active"], true);
        assert_eq!(answer["token_type"], "DPoP");
        assert_eq!(answer["cnf"]["jkt"], key.thumbprint().as_str());
    }
    // Without a proof, a plain bearer token as before.
    let response = cc_with_proof(&server, (&client.id, secret.expose()), None).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(payload(body["access_token"].as_str().unwrap())
        .get("cnf")
        .is_none());
    let doc: Value = server
        .http
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        json!(["RS256", "PS256", "ES256", "EdDSA"])
    );
}

async fn every_bad_proof_is_invalid_dpop_proof_and_issues_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, secret) = server.service_client("default", &["invoices.read"]).await;
    let key = TestKey::es256("holder");
    let other = TestKey::es256("other");
    let url = server.url("/token");
    let now = server.clock_now();
    let claims = |extra: Value| {
        let mut c = json!({"jti": "j", "htm": "POST", "htu": url, "iat": now});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let mut private_jwk = key.public_jwk();
    private_jwk["d"] = json!("c2VjcmV0");
    let [none, hs256] = forged(&key, &claims(json!({})));
    let replayed = dpop_proof(&key, "POST", &url, now, json!({}));
    assert_eq!(
        cc_with_proof(&server, (&client.id, secret.expose()), Some(&replayed))
            .await
            .status(),
        200
    );
    let cases: Vec<(&str, String)> = vec![
        (
            "another method",
            dpop_proof(&key, "GET", &url, now, json!({})),
        ),
        (
            "another URL",
            dpop_proof(&key, "POST", &server.url("/userinfo"), now, json!({})),
        ),
        (
            "too old",
            dpop_proof(&key, "POST", &url, now - 301, json!({})),
        ),
        (
            "from the future",
            dpop_proof(&key, "POST", &url, now + 120, json!({})),
        ),
        ("replayed jti", replayed),
        (
            "typ JWT",
            key.sign(
                json!({"typ": "JWT", "jwk": key.public_jwk()}),
                &claims(json!({})),
            ),
        ),
        (
            "a private key in the header",
            key.sign(
                json!({"typ": "dpop+jwt", "jwk": private_jwk}),
                &claims(json!({})),
            ),
        ),
        (
            "signed by another key than its jwk",
            other.sign(
                json!({"typ": "dpop+jwt", "jwk": key.public_jwk()}),
                &claims(json!({})),
            ),
        ),
        (
            "no jwk",
            key.sign(json!({"typ": "dpop+jwt"}), &claims(json!({}))),
        ),
        ("alg none", none),
        ("HS256 with the public key", hs256),
        ("not a JWT", "garbage".into()),
    ];
    for (case, proof) in &cases {
        let response = cc_with_proof(&server, (&client.id, secret.expose()), Some(proof)).await;
        assert_oauth_error(response, 400, "invalid_dpop_proof").await;
        let _ = case;
    }
    // Two DPoP headers.
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth(&client.id, Some(secret.expose()))
        .header("DPoP", dpop_proof(&key, "POST", &url, now, json!({})))
        .header("DPoP", dpop_proof(&key, "POST", &url, now, json!({})))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_dpop_proof").await;
    assert_eq!(
        audit_count(&server, "token_issued").await,
        1,
        "only the first"
    );
}

async fn a_client_that_requires_dpop_gets_no_bearer_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, secret) = server.service_client("default", &["invoices.read"]).await;
    update_client_security(
        server.store(),
        &client,
        None,
        SecurityChanges {
            require_dpop: Some(true),
            ..SecurityChanges::default()
        },
        server.clock_now(),
    )
    .await
    .expect("require DPoP");
    let response = cc_with_proof(&server, (&client.id, secret.expose()), None).await;
    assert_oauth_error(response, 400, "invalid_dpop_proof").await;
    let key = TestKey::ed25519("k");
    let proof = dpop_proof(
        &key,
        "POST",
        &server.url("/token"),
        server.clock_now(),
        json!({}),
    );
    let response = cc_with_proof(&server, (&client.id, secret.expose()), Some(&proof)).await;
    assert_eq!(response.status(), 200);
}

async fn server_nonces_are_demanded_rotate_and_hold_on_every_replica(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.dpop.require_nonce = true).await;
    let issuer = server.base.clone();
    let replica = server
        .replica(move |c| {
            c.issuer = issuer;
            c.dpop.require_nonce = true;
        })
        .await
        .expect("replica");
    let (client, secret) = server.service_client("default", &["invoices.read"]).await;
    let key = TestKey::es256("k");
    let url = server.url("/token");
    let now = server.clock_now();
    // §8: no nonce, 400 use_dpop_nonce with the nonce to use.
    let proof = dpop_proof(&key, "POST", &url, now, json!({}));
    let response = cc_with_proof(&server, (&client.id, secret.expose()), Some(&proof)).await;
    let headers = assert_oauth_error(response, 400, "use_dpop_nonce").await;
    let nonce = headers["dpop-nonce"].to_str().unwrap().to_string();
    // Issued by one replica, accepted by the other; the answer carries the next nonce.
    let proof = dpop_proof(&key, "POST", &url, now, json!({ "nonce": nonce }));
    let response = cc_with_proof(&replica, (&client.id, secret.expose()), Some(&proof)).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("dpop-nonce"));
    // A made-up nonce, and one two windows old, are refused.
    let proof = dpop_proof(&key, "POST", &url, now, json!({ "nonce": "made-up" }));
    let response = cc_with_proof(&server, (&client.id, secret.expose()), Some(&proof)).await;
    assert_oauth_error(response, 400, "use_dpop_nonce").await;
    server.clock.advance(2 * 300);
    replica.clock.advance(2 * 300);
    let later = server.clock_now();
    let proof = dpop_proof(&key, "POST", &url, later, json!({ "nonce": nonce }));
    let response = cc_with_proof(&server, (&client.id, secret.expose()), Some(&proof)).await;
    let headers = assert_oauth_error(response, 400, "use_dpop_nonce").await;
    let fresh = headers["dpop-nonce"].to_str().unwrap().to_string();
    assert_ne!(fresh, nonce, "nonces rotate");
    let proof = dpop_proof(&key, "POST", &url, later, json!({ "nonce": fresh }));
    let response = cc_with_proof(&server, (&client.id, secret.expose()), Some(&proof)).await;
    assert_eq!(response.status(), 200);
}

/// A code bound with `dpop_jkt` to `key`.
async fn bound_code(rp: &Rp, key: &TestKey) -> String {
    let url = rp
        .authorize(&format!(
            "response_type=code&scope=openid&state=st&dpop_jkt={}",
            key.thumbprint()
        ))
        .await;
    query_param(&url, "code").expect("code")
}

/// Exchange `code` at /token with a DPoP proof by `key`.
async fn exchange_with_proof(rp: &Rp, code: &str, key: &TestKey) -> reqwest::Response {
    let token_url = rp.server.url("/token");
    let proof = dpop_proof(key, "POST", &token_url, rp.server.clock_now(), json!({}));
    rp.server
        .http
        .post(&token_url)
        .header("DPoP", proof)
        .basic_auth(&rp.client_id, Some(&rp.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .expect("token request")
}

/// The refresh grant for `rp`'s public client, with `proof` as its DPoP header.
async fn refresh_with(rp: &Rp, refresh_token: &str, proof: Option<String>) -> reqwest::Response {
    let proof = proof.unwrap_or_default();
    let headers: Vec<(&str, &str)> = if proof.is_empty() {
        vec![]
    } else {
        vec![("DPoP", proof.as_str())]
    };
    post(
        &rp.server,
        "/token",
        &headers,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", rp.client_id.as_str()),
        ],
    )
    .await
}

/// A DPoP-bound user token from a code flow whose code was bound with `dpop_jkt` (§10).
async fn bound_code_flow(rp: &Rp, key: &TestKey) -> Value {
    // §10.1: a proof by another key gets nothing for the code (which it burns, as a wrong
    // PKCE verifier does).
    let code = bound_code(rp, key).await;
    let response = exchange_with_proof(rp, &code, &TestKey::es256("thief")).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
    let code = bound_code(rp, key).await;
    let response = exchange_with_proof(rp, &code, key).await;
    assert_eq!(response.status(), 200, "exchange with the bound key");
    response.json().await.unwrap()
}

async fn userinfo_demands_a_proof_by_the_bound_key_and_refuses_bearer(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let key = TestKey::es256("holder");
    let tokens = bound_code_flow(&rp, &key).await;
    assert_eq!(tokens["token_type"], "DPoP");
    let token = tokens["access_token"].as_str().unwrap();
    let userinfo = rp.server.url("/userinfo");
    let call = |scheme: &str, proof: Option<String>| {
        let mut request = rp
            .server
            .http
            .get(&userinfo)
            .header("Authorization", format!("{scheme} {token}"));
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        request.send()
    };
    let now = rp.server.clock_now();
    let good = || dpop_proof(&key, "GET", &userinfo, now, json!({ "ath": ath(token) }));
    let response = call("DPoP", Some(good())).await.unwrap();
    assert_eq!(response.status(), 200);
    let claims: Value = response.json().await.unwrap();
    assert_eq!(claims["sub"], rp.user_id.as_str());
    // A stolen token: as Bearer, without a proof, with another key, another token's ath.
    let thief = TestKey::es256("thief");
    let refusals = [
        ("Bearer", None, "invalid_token"),
        ("Bearer", Some(good()), "invalid_token"),
        ("DPoP", None, "invalid_dpop_proof"),
        (
            "DPoP",
            Some(dpop_proof(
                &thief,
                "GET",
                &userinfo,
                now,
                json!({ "ath": ath(token) }),
            )),
            "invalid_token",
        ),
        (
            "DPoP",
            Some(dpop_proof(
                &key,
                "GET",
                &userinfo,
                now,
                json!({ "ath": ath("other") }),
            )),
            "invalid_dpop_proof",
        ),
        (
            "DPoP",
            Some(dpop_proof(
                &key,
                "POST",
                &userinfo,
                now,
                json!({ "ath": ath(token) }),
            )),
            "invalid_dpop_proof",
        ),
    ];
    for (scheme, proof, code) in refusals {
        let response = call(scheme, proof).await.unwrap();
        assert_eq!(response.status(), 401, "{scheme} {code}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            challenge.starts_with("DPoP ") && challenge.contains(&format!("error=\"{code}\"")),
            "{challenge}"
        );
    }
}

/// RFC 9449 §9, with `dpop.require_nonce_at_userinfo`: a proof without our nonce (or with one
/// we did not issue) is `401 use_dpop_nonce` with the nonce to use, and answers nothing; the
/// retry with it is answered, with the next nonce. /token does not demand one meanwhile.
async fn userinfo_demands_a_nonce_when_configured(backend: Backend) {
    let rp = Rp::start_configured(backend, true, false, &[GrantType::AuthorizationCode], |c| {
        c.dpop.require_nonce_at_userinfo = true
    })
    .await;
    let key = TestKey::es256("holder");
    let tokens = bound_code_flow(&rp, &key).await;
    let token = tokens["access_token"].as_str().unwrap();
    let userinfo = rp.server.url("/userinfo");
    let now = rp.server.clock_now();
    let call = |extra: Value| {
        let mut claims = json!({ "ath": ath(token) });
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        rp.server
            .http
            .get(&userinfo)
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", dpop_proof(&key, "GET", &userinfo, now, claims))
            .send()
    };
    let mut nonce = String::new();
    for extra in [json!({}), json!({ "nonce": "made-up" })] {
        let response = call(extra).await.unwrap();
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with("DPoP ") && challenge.contains("error=\"use_dpop_nonce\""),
            "{challenge}"
        );
        nonce = response.headers()["dpop-nonce"]
            .to_str()
            .unwrap()
            .to_string();
        let body: Value = response.json().await.unwrap();
        assert!(body.get("sub").is_none(), "nothing answered: {body}");
    }
    let response = call(json!({ "nonce": nonce })).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("dpop-nonce"));
    let claims: Value = response.json().await.unwrap();
    assert_eq!(claims["sub"], rp.user_id.as_str());
}

async fn a_public_clients_refresh_token_is_bound_to_its_dpop_key(backend: Backend) {
    let rp = Rp::start_with(
        backend,
        true,
        true,
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
    )
    .await;
    let key = TestKey::ed25519("app");
    let verifier = "a-verifier-of-enough-length-for-pkce-0123456789";
    let challenge = portcullis::protocol::pkce::s256(verifier);
    let url = rp
        .authorize(&format!(
            "response_type=code&scope=openid%20offline_access&state=st&code_challenge={challenge}&code_challenge_method=S256"
        ))
        .await;
    let code = query_param(&url, "code").expect("code");
    let token_url = rp.server.url("/token");
    let now = rp.server.clock_now();
    let response = post(
        &rp.server,
        "/token",
        &[(
            "DPoP",
            &dpop_proof(&key, "POST", &token_url, now, json!({})),
        )],
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &rp.client_id),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().expect("refresh token");
    let thief = TestKey::ed25519("thief");
    let response = refresh_with(&rp, refresh, None).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
    let response = refresh_with(
        &rp,
        refresh,
        Some(dpop_proof(&thief, "POST", &token_url, now, json!({}))),
    )
    .await;
    assert_oauth_error(response, 400, "invalid_grant").await;
    let response = refresh_with(
        &rp,
        refresh,
        Some(dpop_proof(&key, "POST", &token_url, now, json!({}))),
    )
    .await;
    assert_eq!(response.status(), 200, "refresh with the bound key");
    let refreshed: Value = response.json().await.unwrap();
    assert_eq!(refreshed["token_type"], "DPoP");
    assert_eq!(
        payload(refreshed["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.thumbprint().as_str()
    );
}

on_both_databases!(
    a_dpop_proof_binds_the_access_token_to_its_key,
    every_bad_proof_is_invalid_dpop_proof_and_issues_nothing,
    a_client_that_requires_dpop_gets_no_bearer_token,
    server_nonces_are_demanded_rotate_and_hold_on_every_replica,
    userinfo_demands_a_proof_by_the_bound_key_and_refuses_bearer,
    userinfo_demands_a_nonce_when_configured,
    a_public_clients_refresh_token_is_bound_to_its_dpop_key,
);
