//! One test per module of the OpenID Foundation's Basic and Config OP certification plans
//! (../shared/CONFORMANCE.md), checking what the module checks.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use portcullis::manage::clients::ClientRequest;
use portcullis::protocol::{ClientAuthMethod, GrantType};
use serde_json::Value;

use crate::common::agent::{attribute, query_param};
use crate::common::rp::{Rp, PASSWORD, REDIRECT, USER};
use crate::common::{Backend, Landing};
use crate::jwt::typ_of;
use crate::on_both_databases;

fn error_of(url: &url::Url) -> Option<String> {
    query_param(url, "error")
}

async fn oidcc_server(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let tokens = rp.code_flow("&nonce=n-0S6").await;
    let claims = rp.id_claims(tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], rp.user_id.as_str());
    assert_eq!(claims["nonce"], "n-0S6");
    assert_eq!(claims["azp"], rp.client_id.as_str());
    assert!(claims["sid"].is_string());
}

async fn oidcc_response_type_missing(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let url = rp.go("scope=openid&state=abc").await.client_url();
    assert_eq!(error_of(&url).as_deref(), Some("invalid_request"));
    assert_eq!(query_param(&url, "state").as_deref(), Some("abc"));
    assert_eq!(
        query_param(&url, "iss").as_deref(),
        Some(rp.server.base.as_str())
    );
}

async fn unknown_response_type_is_unsupported(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    for rt in ["magic", "code%20id_token", "none"] {
        let url = rp
            .go(&format!("response_type={rt}&scope=openid&state=abc"))
            .await
            .client_url();
        assert_eq!(
            error_of(&url).as_deref(),
            Some("unsupported_response_type"),
            "{rt}"
        );
    }
}

async fn oidcc_idtoken_signature(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let tokens = rp.code_flow("").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    rp.id_claims(id_token).await;
    assert_eq!(
        typ_of(tokens["access_token"].as_str().unwrap()).as_deref(),
        Some("at+jwt")
    );
}

/// We do not issue unsigned ID tokens, and discovery says so.
async fn oidcc_idtoken_unsigned(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let doc: Value = rp
        .server
        .http
        .get(rp.server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    // The header as sent: a JWT library's algorithm type has no `none` to compare with.
    let tokens = rp.code_flow("").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let parts: Vec<&str> = id_token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWS in compact form: {id_token}");
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("base64url header"))
            .expect("JSON header");
    assert_eq!(header["alg"], "RS256", "{header}");
    assert!(!parts[2].is_empty(), "the ID token carries a signature");
    rp.id_claims(id_token).await;
}

async fn oidcc_userinfo_get_post_header_post_body(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let tokens = rp.code_flow("").await;
    let at = tokens["access_token"].as_str().unwrap();
    let get = rp.userinfo(at).await;
    assert_eq!(get.status(), 200);
    assert_eq!(
        get.json::<Value>().await.unwrap()["sub"],
        rp.user_id.as_str()
    );
    let post_header = rp
        .server
        .http
        .post(rp.server.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(post_header.status(), 200);
    let post_body = rp
        .server
        .http
        .post(rp.server.url("/userinfo"))
        .form(&[("access_token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(post_body.status(), 200);
    assert_eq!(
        post_body.json::<Value>().await.unwrap()["sub"],
        rp.user_id.as_str()
    );
    // Both at once is refused (RFC 6750 §2).
    let both = rp
        .server
        .http
        .post(rp.server.url("/userinfo"))
        .bearer_auth(at)
        .form(&[("access_token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 400);
}

async fn userinfo_refuses_bad_tokens(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let none = rp
        .server
        .http
        .get(rp.server.url("/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(
        none.headers()["www-authenticate"],
        "Bearer realm=\"portcullis\""
    );
    let tokens = rp.code_flow("").await;
    let at = tokens["access_token"].as_str().unwrap().to_string();
    let mut tampered = at.clone();
    tampered.pop();
    tampered.push(if at.ends_with('A') { 'B' } else { 'A' });
    for bad in ["garbage", "a.b.c", tampered.as_str()] {
        let r = rp.userinfo(bad).await;
        assert_eq!(r.status(), 401, "{bad}");
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\""));
    }
    // Expired.
    rp.server.clock.advance(3601);
    assert_eq!(rp.userinfo(&at).await.status(), 401);
}

/// A client-credentials token has no user and no openid scope.
async fn userinfo_refuses_tokens_without_openid(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let (client, secret) = rp.server.service_client("default", &["a"]).await;
    let response = rp
        .server
        .post_form(
            "/token",
            Some((&client.id, secret.expose())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let at = response.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = rp.userinfo(&at).await;
    assert_eq!(r.status(), 403);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));
    // Revoked, it is no token at all: 401 before any question of scope (there is no user
    // row to read its standing with, so /userinfo asks for it on its own).
    let revoked = rp
        .server
        .post_form(
            "/revoke",
            Some((&client.id, secret.expose())),
            &[("token", at.as_str())],
        )
        .await;
    assert_eq!(revoked.status(), 200);
    let r = rp.userinfo(&at).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
}

async fn oidcc_ensure_request_without_nonce_succeeds_for_code_flow(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let tokens = rp.code_flow("").await;
    let claims = rp.id_claims(tokens["id_token"].as_str().unwrap()).await;
    assert!(claims.get("nonce").is_none());
}

async fn userinfo_claims(rp: &Rp, scope: &str) -> Value {
    let url = rp
        .authorize(&format!("response_type=code&scope={scope}&state=s"))
        .await;
    let tokens = rp.exchange(&query_param(&url, "code").unwrap()).await;
    rp.userinfo(tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap()
}

async fn oidcc_scope_profile_email_address_phone_all(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let profile = userinfo_claims(&rp, "openid%20profile").await;
    assert_eq!(profile["name"], "Ada Lovelace");
    assert_eq!(profile["preferred_username"], "ada");
    assert!(profile.get("email").is_none());
    let email = userinfo_claims(&rp, "openid%20email").await;
    assert_eq!(email["email"], "ada@example.com");
    assert_eq!(email["email_verified"], true);
    assert!(email.get("name").is_none());
    let address = userinfo_claims(&rp, "openid%20address").await;
    assert_eq!(address["address"]["locality"], "London");
    let phone = userinfo_claims(&rp, "openid%20phone").await;
    assert_eq!(phone["phone_number"], "+44 20 7946 0000");
    let all = userinfo_claims(&rp, "openid%20profile%20email%20address%20phone").await;
    for claim in ["sub", "name", "email", "address", "phone_number"] {
        assert!(all.get(claim).is_some(), "{claim}");
    }
}

/// oidcc-ensure-other-scope-order-succeeds: scope and parameter order do not matter.
async fn oidcc_ensure_other_scope_order_succeeds(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let url = rp
        .authorize(
            &format!("state=s&scope=email%20openid&redirect_uri={REDIRECT}&response_type=code")
                .replace(&format!("&redirect_uri={REDIRECT}"), ""),
        )
        .await;
    assert!(query_param(&url, "code").is_some(), "{url}");
}

async fn oidcc_display_page_and_popup(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    for display in ["page", "popup"] {
        let url = rp
            .authorize(&format!(
                "response_type=code&scope=openid&display={display}"
            ))
            .await;
        assert!(query_param(&url, "code").is_some());
    }
}

async fn oidcc_prompt_none_not_logged_in(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let url = rp
        .go("response_type=code&scope=openid&prompt=none&state=p")
        .await
        .client_url();
    assert_eq!(error_of(&url).as_deref(), Some("login_required"));
    assert_eq!(query_param(&url, "state").as_deref(), Some("p"));
}

async fn oidcc_prompt_none_logged_in(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    rp.code_flow("").await;
    let url = rp
        .go("response_type=code&scope=openid&prompt=none")
        .await
        .client_url();
    assert!(query_param(&url, "code").is_some(), "single sign-on: {url}");
}

async fn oidcc_prompt_login(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let first = rp.code_flow("").await;
    let first_auth = rp.id_claims(first["id_token"].as_str().unwrap()).await["auth_time"]
        .as_i64()
        .unwrap();
    rp.server.clock.advance(5);
    // prompt=login shows the login page although a session exists.
    let landing = rp.go("response_type=code&scope=openid&prompt=login").await;
    let back = rp
        .agent
        .sign_in(landing, "ada", "pw-ada-123", &rp.server.base)
        .await
        .client_url();
    let tokens = rp.exchange(&query_param(&back, "code").unwrap()).await;
    let second_auth = rp.id_claims(tokens["id_token"].as_str().unwrap()).await["auth_time"]
        .as_i64()
        .unwrap();
    assert!(second_auth > first_auth, "auth_time advances");
}

async fn oidcc_max_age_1(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    rp.code_flow("").await;
    rp.server.clock.advance(2);
    let landing = rp.go("response_type=code&scope=openid&max_age=1").await;
    assert!(
        matches!(landing, Landing::Page { ref url, .. } if url.path().ends_with("/login")),
        "re-authentication: {landing:?}"
    );
}

async fn oidcc_max_age_10000(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    rp.code_flow("").await;
    rp.server.clock.advance(2);
    let url = rp
        .go("response_type=code&scope=openid&max_age=10000")
        .await
        .client_url();
    let tokens = rp.exchange(&query_param(&url, "code").unwrap()).await;
    assert!(rp.id_claims(tokens["id_token"].as_str().unwrap()).await["auth_time"].is_i64());
}

async fn oidcc_ensure_request_with_unknown_parameter_succeeds(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let url = rp.authorize("response_type=code&scope=openid&extra_parameter=1&ui_locales=se&claims_locales=se&acr_values=1%202").await;
    assert!(query_param(&url, "code").is_some(), "{url}");
}

async fn oidcc_id_token_hint(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let tokens = rp.code_flow("").await;
    let hint = tokens["id_token"].as_str().unwrap();
    let url = rp
        .go(&format!(
            "response_type=code&scope=openid&prompt=none&id_token_hint={hint}"
        ))
        .await
        .client_url();
    assert!(query_param(&url, "code").is_some(), "{url}");
    // A tampered hint is refused.
    let bad = format!("{}x", &hint[..hint.len() - 1]);
    let url = rp
        .go(&format!(
            "response_type=code&scope=openid&prompt=none&id_token_hint={bad}"
        ))
        .await
        .client_url();
    assert_eq!(error_of(&url).as_deref(), Some("invalid_request"));
}

async fn oidcc_login_hint(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let (_, _, body) = rp
        .go("response_type=code&scope=openid&login_hint=ada")
        .await
        .page();
    assert_eq!(
        attribute(&body, "name=\"username\" value=\"", "\"").as_deref(),
        Some("ada")
    );
}

async fn oidcc_ensure_registered_redirect_uri(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    for redirect in [
        "http://127.0.0.1:9/cb/",
        "http://127.0.0.1:9/elsewhere",
        "https://evil.example/cb",
        "",
    ] {
        let url = format!(
            "{}/authorize?client_id={}&response_type=code&scope=openid&redirect_uri={redirect}",
            rp.server.base, rp.client_id
        );
        let response = rp.agent.http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 400, "{redirect}");
        assert!(
            response.headers().get("location").is_none(),
            "never a redirect to an unregistered URI"
        );
        assert!(response.text().await.unwrap().contains("redirect_uri"));
    }
    // Unknown client: an error page too.
    let url = format!(
        "{}/authorize?client_id=nobody&response_type=code&scope=openid&redirect_uri={REDIRECT}",
        rp.server.base
    );
    let response = rp.agent.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
}

async fn oidcc_ensure_post_request_succeeds(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let form = [
        ("client_id", rp.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "post"),
    ];
    let response = rp
        .agent
        .http
        .post(rp.server.url("/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let landing = rp.agent.follow(response, &rp.server.base).await;
    let url = rp
        .agent
        .sign_in(landing, "ada", "pw-ada-123", &rp.server.base)
        .await
        .client_url();
    assert!(query_param(&url, "code").is_some());
    assert_eq!(query_param(&url, "state").as_deref(), Some("post"));
}

/// oidcc-server-client-secret-post: a code flow whose client authenticates at the token
/// endpoint with client_secret_post, its registered method: the credentials in the form body,
/// no Authorization header. (A client registered for Basic sending them in the body is
/// refused: tests/it/token_errors.rs.)
async fn oidcc_server_client_secret_post(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let (client, secret) = rp
        .server
        .register(ClientRequest {
            server_id: "default".into(),
            name: "poster".into(),
            grant_types: vec![GrantType::AuthorizationCode],
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![],
            scopes: vec![],
            default_scopes: vec![],
            public: false,
            first_party: true,
            auth_method: Some(ClientAuthMethod::ClientSecretPost),
        })
        .await;
    let secret = secret.expect("a confidential client has a secret");
    let url = format!(
        "{}/authorize?client_id={}&redirect_uri={REDIRECT}&response_type=code&scope=openid\
         &state=post&nonce=n-post",
        rp.server.base, client.id
    );
    let landing = rp.agent.navigate(&url, &rp.server.base).await;
    let back = rp
        .agent
        .sign_in(landing, USER, PASSWORD, &rp.server.base)
        .await
        .client_url();
    let code = query_param(&back, "code").unwrap_or_else(|| panic!("no code: {back}"));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", client.id.as_str()),
        ("client_secret", secret.expose()),
    ];
    let response = rp.server.post_form("/token", None, &form).await;
    assert_eq!(response.status(), 200, "client_secret_post at /token");
    let tokens: Value = response.json().await.expect("token JSON");
    let jwks = crate::jwt::fetch_jwks(&rp.server.http, &rp.server.url("/keys")).await;
    let claims = crate::jwt::verify(
        tokens["id_token"].as_str().expect("an ID token"),
        &jwks,
        &rp.server.base,
        &client.id,
    )
    .expect("the ID token verifies");
    assert_eq!(claims["sub"], rp.user_id.as_str());
    assert_eq!(claims["nonce"], "n-post");
}

/// RFC 9101: an unsigned request object proves nothing and is refused; a request_uri that is
/// not one of our own pushed requests is not fetched.
async fn oidcc_unsigned_request_objects_and_foreign_request_uris_are_refused(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let url = rp
        .go("response_type=code&scope=openid&state=r&request=eyJhbGciOiJub25lIn0.e30.")
        .await
        .client_url();
    assert_eq!(error_of(&url).as_deref(), Some("invalid_request_object"));
    let url = rp
        .go("response_type=code&scope=openid&state=r&request_uri=https%3A%2F%2Frp.example%2Freq")
        .await
        .client_url();
    assert_eq!(error_of(&url).as_deref(), Some("request_uri_not_supported"));
    let doc: Value = rp
        .server
        .http
        .get(rp.server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["request_parameter_supported"], true);
    assert_eq!(doc["request_uri_parameter_supported"], false);
}

/// The claims parameter is accepted (and its JSON checked); scopes decide what is released.
async fn oidcc_claims_essential(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let claims = "%7B%22userinfo%22%3A%7B%22name%22%3A%7B%22essential%22%3Atrue%7D%7D%7D";
    let url = rp
        .authorize(&format!(
            "response_type=code&scope=openid%20profile&claims={claims}"
        ))
        .await;
    let tokens = rp.exchange(&query_param(&url, "code").unwrap()).await;
    let info: Value = rp
        .userinfo(tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["name"], "Ada Lovelace");
    let url = rp
        .go("response_type=code&scope=openid&claims=not-json")
        .await
        .client_url();
    assert_eq!(error_of(&url).as_deref(), Some("invalid_request"));
}

async fn oidcc_ensure_request_with_valid_pkce_succeeds(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let verifier = "x".repeat(64);
    let challenge = portcullis::protocol::pkce::s256(&verifier);
    let url = rp
        .authorize(&format!(
            "response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=S256"
        ))
        .await;
    let code = query_param(&url, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let response = rp
        .server
        .post_form("/token", Some((&rp.client_id, &rp.secret)), &form)
        .await;
    assert_eq!(response.status(), 200);
}

async fn succeeds_with(rp: &Rp, params: &str) {
    let url = rp
        .authorize(&format!("response_type=code&scope=openid&{params}"))
        .await;
    assert!(query_param(&url, "code").is_some(), "{params}: {url}");
}

async fn oidcc_ui_locales(backend: Backend) {
    succeeds_with(&Rp::start(backend, true).await, "ui_locales=se%20en").await;
}

async fn oidcc_claims_locales(backend: Backend) {
    succeeds_with(&Rp::start(backend, true).await, "claims_locales=se").await;
}

async fn oidcc_ensure_request_with_acr_values_succeeds(backend: Backend) {
    succeeds_with(&Rp::start(backend, true).await, "acr_values=1%202").await;
}

/// An unsigned request object carrying its own redirect_uri is refused, and the error sent to
/// the redirect URI of the (outer) request, never the object's.
async fn oidcc_ensure_request_object_with_redirect_uri(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let url = rp.go("response_type=code&scope=openid&state=ro&request=eyJhbGciOiJub25lIn0.eyJyZWRpcmVjdF91cmkiOiJodHRwczovL2V2aWwifQ.").await.client_url();
    assert!(url.as_str().starts_with(REDIRECT));
    assert_eq!(error_of(&url).as_deref(), Some("invalid_request_object"));
}

/// oidcc-refresh-token: a refresh returns new tokens for the same user, with a new ID token.
async fn oidcc_refresh_token(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let (refreshing, secret) = rp
        .server
        .register(portcullis::manage::clients::ClientRequest {
            server_id: "default".into(),
            name: "refreshing".into(),
            grant_types: vec![
                portcullis::protocol::GrantType::AuthorizationCode,
                portcullis::protocol::GrantType::RefreshToken,
            ],
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![],
            scopes: vec![],
            default_scopes: vec![],
            public: false,
            first_party: true,
            auth_method: None,
        })
        .await;
    let secret = secret.unwrap();
    let url = format!("{}/authorize?client_id={}&redirect_uri={REDIRECT}&response_type=code&scope=openid%20offline_access", rp.server.base, refreshing.id);
    let landing = rp.agent.navigate(&url, &rp.server.base).await;
    let back = rp
        .agent
        .sign_in(landing, "ada", "pw-ada-123", &rp.server.base)
        .await
        .client_url();
    let code = query_param(&back, "code").unwrap();
    let auth = Some((refreshing.id.as_str(), secret.expose()));
    let first: Value = rp
        .server
        .post_form(
            "/token",
            auth,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let rt = first["refresh_token"].as_str().expect("a refresh token");
    let second: Value = rp
        .server
        .post_form(
            "/token",
            auth,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await
        .json()
        .await
        .unwrap();
    let jwks = crate::jwt::fetch_jwks(&rp.server.http, &rp.server.url("/keys")).await;
    let claims = crate::jwt::verify(
        second["id_token"].as_str().unwrap(),
        &jwks,
        &rp.server.base,
        &refreshing.id,
    )
    .unwrap();
    assert_eq!(claims["sub"], rp.user_id.as_str());
    let rotated = second["refresh_token"]
        .as_str()
        .expect("a new refresh token");
    assert_ne!(rotated, rt);
}

on_both_databases!(
    oidcc_ui_locales,
    oidcc_claims_locales,
    oidcc_ensure_request_with_acr_values_succeeds,
    oidcc_ensure_request_object_with_redirect_uri,
    oidcc_refresh_token,
    oidcc_server,
    oidcc_response_type_missing,
    unknown_response_type_is_unsupported,
    oidcc_idtoken_signature,
    oidcc_idtoken_unsigned,
    oidcc_userinfo_get_post_header_post_body,
    userinfo_refuses_bad_tokens,
    userinfo_refuses_tokens_without_openid,
    oidcc_ensure_request_without_nonce_succeeds_for_code_flow,
    oidcc_scope_profile_email_address_phone_all,
    oidcc_ensure_other_scope_order_succeeds,
    oidcc_display_page_and_popup,
    oidcc_prompt_none_not_logged_in,
    oidcc_prompt_none_logged_in,
    oidcc_prompt_login,
    oidcc_max_age_1,
    oidcc_max_age_10000,
    oidcc_ensure_request_with_unknown_parameter_succeeds,
    oidcc_id_token_hint,
    oidcc_login_hint,
    oidcc_ensure_registered_redirect_uri,
    oidcc_ensure_post_request_succeeds,
    oidcc_server_client_secret_post,
    oidcc_unsigned_request_objects_and_foreign_request_uris_are_refused,
    oidcc_claims_essential,
    oidcc_ensure_request_with_valid_pkce_succeeds,
);
