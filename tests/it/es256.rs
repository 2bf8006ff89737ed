//! ES256: an authorization server may sign with ECDSA P-256 instead of RSA. Relying parties
//! verify with nothing but the JWKS and an independent library; switching the algorithm rotates
//! in a key of the new type while tokens of the old one keep verifying until they expire.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use openidconnect::core::{CoreAuthenticationFlow, CoreJwsSigningAlgorithm};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    TokenResponse,
};
use portcullis::store::ServerChanges;
use serde_json::Value;

use crate::code_flow::{oidc_client, REDIRECT};
use crate::common::agent::query_param;
use crate::common::{Backend, OutputWithin, TestServer, UserAgent};
use crate::jwt::{fetch_jwks, kid_of};
use crate::on_both_databases;

/// Verify with the JWK named by `kid`, accepting exactly `alg`.
fn verify_with(token: &str, jwks: &JwkSet, alg: Algorithm, issuer: &str) -> Result<Value, String> {
    let header = decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks
        .find(&kid)
        .ok_or_else(|| format!("{kid} not in JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false;
    decode::<Value>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

async fn set_alg(server: &TestServer, id: &str, alg: &str) {
    server
        .store()
        .update_server(
            id,
            &ServerChanges {
                signing_alg: Some(alg.into()),
                ..ServerChanges::default()
            },
            server.clock_now(),
        )
        .await
        .expect("set signing alg");
}

async fn discovered_algs(server: &TestServer, prefix: &str) -> Value {
    let metadata: Value = server
        .http
        .get(server.url(&format!("{prefix}/.well-known/openid-configuration")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    metadata["id_token_signing_alg_values_supported"].clone()
}

async fn client_credentials_on_an_es256_server_verify_from_the_jwks(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_server("ec").await;
    set_alg(&server, "ec", "ES256").await;
    let (client, secret) = server.service_client("ec", &["a"]).await;
    let token = server
        .client_credentials_token("/oauth2/ec", (&client.id, secret.expose()))
        .await;
    let header = decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    // RFC 7518 §3.4: the signature is r || s, 64 bytes.
    let signature = token.rsplit('.').next().unwrap();
    assert_eq!(signature.len(), 86, "64 bytes in base64url");

    let jwks = fetch_jwks(&server.http, &server.url("/oauth2/ec/keys")).await;
    assert_eq!(jwks.keys.len(), 1);
    let jwk = &jwks.keys[0];
    match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => assert_eq!(ec.curve, EllipticCurve::P256),
        other => panic!("not an EC key: {other:?}"),
    }
    let raw: Value = server
        .http
        .get(server.url("/oauth2/ec/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let raw = &raw["keys"][0];
    assert_eq!(raw["kty"], "EC");
    assert_eq!(raw["crv"], "P-256");
    assert_eq!(raw["alg"], "ES256");
    assert_eq!(raw["use"], "sig");
    assert!(raw.get("d").is_none(), "no private part published");

    let issuer = server.issuer("ec");
    let claims = verify_with(&token, &jwks, Algorithm::ES256, &issuer).expect("verifies");
    assert_eq!(claims["aud"], "api://ec");
    // The same token presented as RS256 is refused by a relying party pinned to RS256.
    assert!(verify_with(&token, &jwks, Algorithm::RS256, &issuer).is_err());
    // Our own checks (introspection) accept it too.
    let answer = server
        .introspect("/oauth2/ec", (&client.id, secret.expose()), &token, None)
        .await;
    assert_eq!(answer["active"], true, "{answer}");
    // A token whose header claims another algorithm than its key's is not ours.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let forged = serde_json::json!({ "alg": "RS256", "kid": header.kid, "typ": "at+jwt" });
    parts[0] = portcullis::security::base64url(forged.to_string().as_bytes());
    let answer = server
        .introspect(
            "/oauth2/ec",
            (&client.id, secret.expose()),
            &parts.join("."),
            None,
        )
        .await;
    assert_eq!(answer["active"], false, "{answer}");

    assert_eq!(
        discovered_algs(&server, "/oauth2/ec").await,
        serde_json::json!(["ES256"])
    );
    assert_eq!(
        discovered_algs(&server, "").await,
        serde_json::json!(["RS256"])
    );
}

/// The openidconnect crate runs the code flow against an ES256 server and verifies the ID
/// token (signature from the JWKS, at_hash with SHA-256).
async fn the_code_flow_verifies_an_es256_id_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    // Switch the default server and make the EC key sign at once.
    set_alg(&server, "default", "ES256").await;
    server
        .state
        .keys
        .rotate("default", server.clock_now(), 0)
        .await
        .expect("rotate");
    server.clock.advance(1);
    let user = server.create_user("ada", "pw-ada-123").await;
    let (client, secret) = server.web_client(REDIRECT, true, false).await;
    let oidc = oidc_client(&server, &client.id, secret.as_ref().map(|s| s.expose())).await;
    let (challenge, pkce) = PkceCodeChallenge::new_random_sha256();
    let (url, _state, nonce) = oidc
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let agent = UserAgent::new();
    let login = agent.navigate(url.as_str(), &server.base).await;
    let back = agent
        .sign_in(login, "ada", "pw-ada-123", &server.base)
        .await
        .client_url();
    let code = query_param(&back, "code").expect("code");
    let tokens = oidc
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(pkce)
        .request_async(&server.http)
        .await
        .expect("token exchange");
    let id_token = tokens.id_token().expect("ID token");
    assert_eq!(
        id_token.signing_alg().unwrap(),
        &CoreJwsSigningAlgorithm::EcdsaP256Sha256
    );
    // A relying party pinned to what discovery announces.
    let verifier = oidc
        .id_token_verifier()
        .set_allowed_algs([CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("ES256 ID token verifies");
    assert_eq!(claims.subject().as_str(), user.id);
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected));
}

/// `server update --signing-alg ES256` (the binary): the EC key is published at once and signs
/// after the activation delay; the RSA key keeps verifying its tokens until they expire.
async fn switching_the_algorithm_keeps_old_tokens_verifiable(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, secret) = server.service_client("default", &["a"]).await;
    let creds = (client.id.as_str(), secret.expose());
    let old = server.client_credentials_token("", creds).await;
    assert_eq!(decode_header(&old).unwrap().alg, Algorithm::RS256);

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "server",
            "update",
            "--id",
            "default",
            "--signing-alg",
            "ES256",
        ])
        .env("PORTCULLIS_DATABASE_URL", &server.db.url)
        .env_remove("PORTCULLIS_CONFIG")
        .bounded_output();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(shown["signing_alg"], "ES256");
    server.state.keys.invalidate("default");

    // Published, not yet signing: RS256 still signs; discovery lists both.
    let jwks = fetch_jwks(&server.http, &server.url("/keys")).await;
    assert_eq!(jwks.keys.len(), 2);
    assert_eq!(
        decode_header(&server.client_credentials_token("", creds).await)
            .unwrap()
            .alg,
        Algorithm::RS256
    );
    assert_eq!(
        discovered_algs(&server, "").await,
        serde_json::json!(["RS256", "ES256"])
    );

    // The CLI used the system clock; move past its activation.
    server
        .clock
        .advance(server.state.config.keys.activation_delay.as_i64() + 5);
    let new = server.client_credentials_token("", creds).await;
    assert_eq!(decode_header(&new).unwrap().alg, Algorithm::ES256);
    assert_ne!(kid_of(&new), kid_of(&old));
    assert_eq!(
        discovered_algs(&server, "").await,
        serde_json::json!(["ES256", "RS256"])
    );
    let jwks = fetch_jwks(&server.http, &server.url("/keys")).await;
    verify_with(&old, &jwks, Algorithm::RS256, &server.base).expect("old RS256 token verifies");
    verify_with(&new, &jwks, Algorithm::ES256, &server.base).expect("new ES256 token verifies");
    assert!(server.is_active(creds, &old).await);
    assert!(server.is_active(creds, &new).await);

    // After the old token's lifetime the RSA key leaves; only ES256 is announced.
    server.clock.advance(3600);
    let jwks = fetch_jwks(&server.http, &server.url("/keys")).await;
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(
        discovered_algs(&server, "").await,
        serde_json::json!(["ES256"])
    );
}

/// The flag other tools rely on: `server create --id NAME --signing-alg ES256`.
async fn server_create_takes_a_signing_alg(backend: Backend) {
    let server = TestServer::start(backend).await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(args)
            .env("PORTCULLIS_DATABASE_URL", &server.db.url)
            .env_remove("PORTCULLIS_CONFIG")
            .bounded_output()
    };
    let output = run(&["server", "create", "--id", "ec", "--signing-alg", "ES256"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed = run(&["keys", "list", "--server", "ec"]);
    let keys: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(keys[0]["alg"], "ES256", "{keys}");
    let output = run(&["server", "create", "--id", "rsa"]);
    assert!(output.status.success());
    let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(shown["signing_alg"], "RS256");
    let bad = run(&["server", "create", "--id", "hs", "--signing-alg", "HS256"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("HS256"));
}

on_both_databases!(
    client_credentials_on_an_es256_server_verify_from_the_jwks,
    the_code_flow_verifies_an_es256_id_token,
    switching_the_algorithm_keeps_old_tokens_verifiable,
    server_create_takes_a_signing_alg,
);
