//! JWT forgery and algorithm confusion (RFC 8725 §2-3, RFC 7515 §4.1.11, RFC 9068 §4), refused
//! everywhere a token of ours comes back: /userinfo (Bearer header and form body),
//! /introspect (`active: false`), /revoke (nothing recorded), and `id_token_hint` at
//! /authorize and /logout.
//!
//! Each forgery changes one thing of a token that is otherwise accepted: the control, signed
//! by the same helper with the server's own key and the genuine claims, is accepted, so every
//! refusal is the defence against that one change.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use portcullis::manage::clients::ClientRequest;
use portcullis::protocol::GrantType;
use portcullis::security::base64url;
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{json, Value};

use super::{assert_error_page, enc};
use crate::common::agent::query_param;
use crate::common::rp::{Rp, PASSWORD, REDIRECT, USER};
use crate::common::snapshot::Snapshot;
use crate::common::TestServer;
use crate::common::{Backend, Credentials};
use crate::jwt::kid_of;
use crate::on_both_databases;

fn b64(value: &Value) -> String {
    base64url(value.to_string().as_bytes())
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

enum Alg {
    Rs256,
    Ps256,
}

/// A JWS signed by the RSA key `pkcs8` (PKCS#8 DER), with exactly `header` as its header.
fn sign_rsa(pkcs8: &[u8], alg: Alg, header: &Value, claims: &Value) -> String {
    let pair = RsaKeyPair::from_pkcs8(pkcs8).expect("RSA key");
    let input = format!("{}.{}", b64(header), b64(claims));
    let mut signature = vec![0u8; pair.public_modulus_len()];
    let padding = match alg {
        Alg::Rs256 => &RSA_PKCS1_SHA256,
        Alg::Ps256 => &RSA_PSS_SHA256,
    };
    pair.sign(
        padding,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .expect("sign");
    format!("{input}.{}", base64url(&signature))
}

/// A JWS "signed" with HMAC-SHA256 keyed by `secret` (algorithm confusion: the public key).
fn sign_hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", base64url(tag.as_ref()))
}

/// The server's signing key: PKCS#8 DER and its public key in every encoding an HS256
/// confusion might use as the secret.
struct OurKey {
    kid: String,
    pkcs8: Vec<u8>,
    public_encodings: Vec<(&'static str, Vec<u8>)>,
}

async fn our_key(server: &TestServer, kid: &str) -> OurKey {
    let stored = server
        .store()
        .keys("default")
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == kid)
        .expect("the signing key");
    let jwk: Value = serde_json::from_str(&stored.public_jwk).unwrap();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let public = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&n),
        rsa::BigUint::from_bytes_be(&e),
    )
    .unwrap();
    let public_encodings = vec![
        (
            "SPKI PEM",
            public
                .to_public_key_pem(LineEnding::LF)
                .unwrap()
                .into_bytes(),
        ),
        (
            "PKCS#1 PEM",
            public.to_pkcs1_pem(LineEnding::LF).unwrap().into_bytes(),
        ),
        (
            "SPKI DER",
            public.to_public_key_der().unwrap().as_bytes().to_vec(),
        ),
        (
            "PKCS#1 DER",
            public.to_pkcs1_der().unwrap().as_bytes().to_vec(),
        ),
        ("JWK", stored.public_jwk.clone().into_bytes()),
        ("modulus", n),
    ];
    OurKey {
        kid: stored.kid,
        pkcs8: stored.private_key,
        public_encodings,
    }
}

/// Forgeries of a token of type `typ` with `claims`, each with what it changes.
fn forgeries(
    ours: &OurKey,
    typ: &str,
    claims: &Value,
    genuine: &str,
    other_issuer: &str,
) -> Vec<(String, String)> {
    let attacker = portcullis::keys::generate::generate_rsa(2048).unwrap();
    let header = json!({ "alg": "RS256", "kid": ours.kid, "typ": typ });
    let with = |changes: Value| {
        let mut h = header.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                h.as_object_mut().unwrap().remove(k);
            } else {
                h[k] = v.clone();
            }
        }
        h
    };
    let claim = |name: &str, value: Value| {
        let mut c = claims.clone();
        c[name] = value;
        c
    };
    let now = claims["iat"].as_i64().unwrap();
    let ours_signs = |h: &Value, c: &Value| sign_rsa(&ours.pkcs8, Alg::Rs256, h, c);
    let mut out = vec![];
    for alg in ["none", "None", "NONE"] {
        out.push((
            format!("alg {alg}"),
            format!("{}.{}.", b64(&with(json!({ "alg": alg }))), b64(claims)),
        ));
    }
    out.push((
        "RS256 without a signature".into(),
        format!("{}.{}.", b64(&header), b64(claims)),
    ));
    for (name, secret) in &ours.public_encodings {
        for alg in ["HS256", "HS384"] {
            out.push((
                format!("{alg} keyed with our public key ({name})"),
                sign_hs256(secret, &with(json!({ "alg": alg })), claims),
            ));
        }
    }
    out.push((
        "PS256 by our own key".into(),
        sign_rsa(
            &ours.pkcs8,
            Alg::Ps256,
            &with(json!({ "alg": "PS256" })),
            claims,
        ),
    ));
    out.push((
        "an unknown kid".into(),
        ours_signs(&with(json!({ "kid": "no-such-key" })), claims),
    ));
    out.push((
        "no kid".into(),
        ours_signs(&with(json!({ "kid": null })), claims),
    ));
    out.push((
        "a key we never published, under our kid".into(),
        sign_rsa(&attacker.pkcs8_der, Alg::Rs256, &header, claims),
    ));
    out.push((
        "a key we never published, under its own kid".into(),
        sign_rsa(
            &attacker.pkcs8_der,
            Alg::Rs256,
            &with(json!({ "kid": attacker.kid })),
            claims,
        ),
    ));
    for injected in [
        json!({ "kid": attacker.kid, "jwk": attacker.jwk }),
        json!({ "jwk": attacker.jwk }),
        json!({ "jku": "https://evil.example/jwks.json" }),
        json!({ "kid": attacker.kid, "jku": "https://evil.example/jwks.json" }),
        json!({ "kid": attacker.kid, "x5u": "https://evil.example/cert.pem" }),
    ] {
        out.push((
            format!("header injection {injected}"),
            sign_rsa(&attacker.pkcs8_der, Alg::Rs256, &with(injected), claims),
        ));
    }
    out.push((
        "another issuer, signed by our key".into(),
        ours_signs(&header, &claim("iss", json!(other_issuer))),
    ));
    out.push((
        "nbf in the future".into(),
        ours_signs(&header, &claim("nbf", json!(now + 3600))),
    ));
    out.push((
        "a crit header we do not understand".into(),
        ours_signs(
            &with(json!({ "crit": ["urn:example:must-understand"], "urn:example:must-understand": "yes" })),
            claims,
        ),
    ));
    out.push((
        "a crit header naming a registered claim".into(),
        ours_signs(&with(json!({ "crit": ["exp"] })), claims),
    ));
    let other_typ = if typ == "JWT" { "at+jwt" } else { "JWT" };
    out.push((
        format!("typ {other_typ}"),
        ours_signs(&with(json!({ "typ": other_typ })), claims),
    ));
    let (h, _, s) = {
        let mut parts = genuine.split('.');
        (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        )
    };
    for (name, value) in [("sub", json!("someone-else")), ("exp", json!(now + 86400))] {
        out.push((
            format!("tampered {name}"),
            format!("{h}.{}.{s}", b64(&claim(name, value))),
        ));
    }
    out.push((
        "signature of another token".into(),
        format!("{h}.{}.{s}", b64(&claim("jti", json!("other")))),
    ));
    out.push((
        "truncated signature".into(),
        genuine[..genuine.len() - 4].into(),
    ));
    out.push(("four parts".into(), format!("{genuine}.x")));
    out
}

/// Tokens of a second server of the same deployment, from its password grant.
async fn other_servers_tokens(server: &TestServer) -> (String, String) {
    server.create_server("other").await;
    let (client, secret) = server
        .register(ClientRequest {
            server_id: "other".into(),
            name: "other app".into(),
            grant_types: vec![GrantType::Password],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: vec![],
            default_scopes: vec![],
            public: false,
            first_party: true,
            auth_method: None,
        })
        .await;
    let response = server
        .post_form(
            "/oauth2/other/token",
            Some((&client.id, secret.unwrap().expose())),
            &[
                ("grant_type", "password"),
                ("username", USER),
                ("password", PASSWORD),
                ("scope", "openid"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().to_string(),
        body["id_token"].as_str().unwrap().to_string(),
    )
}

async fn userinfo_refuses(server: &TestServer, token: &str, what: &str) {
    let response = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "{what}: /userinfo");
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("invalid_token"),
        "{what}: {challenge}"
    );
    let response = server
        .http
        .post(server.url("/userinfo"))
        .form(&[("access_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "{what}: POST /userinfo");
}

async fn introspection_says_inactive(server: &TestServer, client: Credentials<'_>, token: &str) {
    let answer = server.introspect("", client, token, None).await;
    assert_eq!(answer, json!({ "active": false }), "{token}");
}

async fn forged_access_tokens_are_refused_everywhere(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let tokens = rp.code_flow("").await;
    let genuine = tokens["access_token"].as_str().unwrap();
    let ours = our_key(&rp.server, &kid_of(genuine)).await;
    let (foreign_at, foreign_id) = other_servers_tokens(&rp.server).await;
    let claims = claims_of(genuine);
    // Control: the helper's own signature with the genuine claims is accepted everywhere.
    let control = sign_rsa(
        &ours.pkcs8,
        Alg::Rs256,
        &json!({ "alg": "RS256", "kid": ours.kid, "typ": "at+jwt" }),
        &claims,
    );
    assert_eq!(rp.userinfo(&control).await.status(), 200);
    assert!(rp.server.is_active(rp.credentials(), &control).await);
    let mut forged = forgeries(
        &ours,
        "at+jwt",
        &claims,
        genuine,
        &rp.server.issuer("other"),
    );
    forged.push(("another server's access token".into(), foreign_at));
    forged.push((
        "an ID token".into(),
        tokens["id_token"].as_str().unwrap().into(),
    ));
    forged.push(("another server's ID token".into(), foreign_id));
    let other_audience = {
        let mut c = claims.clone();
        c["aud"] = json!("api://other");
        c
    };
    forged.push((
        "another audience, signed by our key".into(),
        sign_rsa(
            &ours.pkcs8,
            Alg::Rs256,
            &json!({ "alg": "RS256", "kid": ours.kid, "typ": "at+jwt" }),
            &other_audience,
        ),
    ));
    let expired = {
        let mut c = claims.clone();
        c["exp"] = json!(rp.server.clock_now() - 1);
        c
    };
    forged.push((
        "expired, signed by our key".into(),
        sign_rsa(
            &ours.pkcs8,
            Alg::Rs256,
            &json!({ "alg": "RS256", "kid": ours.kid, "typ": "at+jwt" }),
            &expired,
        ),
    ));
    let before = Snapshot::take(&rp.server).await;
    for (what, token) in &forged {
        userinfo_refuses(&rp.server, token, what).await;
        introspection_says_inactive(&rp.server, rp.credentials(), token).await;
        // RFC 7009 §2.2: 200 whatever the token; a forgery must not be recorded as revoked.
        let response = rp
            .server
            .post_form("/revoke", Some(rp.credentials()), &[("token", token)])
            .await;
        assert_eq!(response.status(), 200, "{what}: /revoke");
    }
    before.assert_unchanged(&Snapshot::take(&rp.server).await, "forged access tokens");
    // The genuine token survived all of it.
    assert_eq!(rp.userinfo(genuine).await.status(), 200);
}

async fn forged_id_token_hints_are_refused(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let tokens = rp.code_flow("").await;
    let genuine = tokens["id_token"].as_str().unwrap();
    let ours = our_key(&rp.server, &kid_of(genuine)).await;
    let (foreign_at, foreign_id) = other_servers_tokens(&rp.server).await;
    let claims = claims_of(genuine);
    let control = sign_rsa(
        &ours.pkcs8,
        Alg::Rs256,
        &json!({ "alg": "RS256", "kid": ours.kid, "typ": "JWT" }),
        &claims,
    );
    let authorize = |hint: &str| {
        format!(
            "response_type=code&scope=openid&prompt=none&state=s&id_token_hint={}",
            enc(hint)
        )
    };
    // Control: the helper's signature is a good hint (signed in: a code comes back).
    let url = rp.authorize(&authorize(&control)).await;
    assert!(query_param(&url, "code").is_some(), "{url}");
    let mut forged = forgeries(&ours, "JWT", &claims, genuine, &rp.server.issuer("other"));
    forged.push(("another server's ID token".into(), foreign_id));
    forged.push(("another server's access token".into(), foreign_at));
    forged.push((
        "an access token".into(),
        tokens["access_token"].as_str().unwrap().into(),
    ));
    let before = Snapshot::take(&rp.server).await;
    for (what, hint) in &forged {
        let url = rp.authorize(&authorize(hint)).await;
        assert_eq!(
            query_param(&url, "error").as_deref(),
            Some("invalid_request"),
            "{what}: {url}"
        );
        let response = rp
            .agent
            .http
            .get(rp.server.url(&format!(
                "/logout?id_token_hint={}&post_logout_redirect_uri={}",
                enc(hint),
                enc(&format!("{REDIRECT}/logged-out"))
            )))
            .send()
            .await
            .unwrap();
        assert_error_page(response, 400, what).await;
    }
    // Nothing recorded, and the session was not ended by any of them.
    before.assert_unchanged(&Snapshot::take(&rp.server).await, "forged ID token hints");
    let url = rp
        .authorize("response_type=code&scope=openid&prompt=none")
        .await;
    assert!(
        query_param(&url, "code").is_some(),
        "still signed in: {url}"
    );
}

on_both_databases!(
    forged_access_tokens_are_refused_everywhere,
    forged_id_token_hints_are_refused
);
