//! Token revocation (RFC 7009): a refresh token takes its family with it, an access token goes
//! alone, a client revokes only its own tokens, and every token (even an unknown one) gets 200.

use portcullis::protocol::GrantType;
use serde_json::Value;

use crate::common::agent::query_param;
use crate::common::rp::{Rp, REDIRECT};
use crate::common::{assert_oauth_error, Backend, Credentials, TestServer};
use crate::on_both_databases;

/// A web app that gets refresh tokens from the code flow.
async fn rp_with_refresh_tokens(backend: Backend) -> Rp {
    Rp::start_with(
        backend,
        true,
        false,
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
    )
    .await
}

/// (access token, refresh token) of a token response.
fn pair(tokens: &Value) -> (String, String) {
    let field = |name: &str| {
        tokens[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {tokens}"))
            .to_string()
    };
    (field("access_token"), field("refresh_token"))
}

/// POST /revoke as `client`; §2.2: 200 with nothing to read, whatever happened.
async fn revoke(server: &TestServer, client: Credentials<'_>, token: &str, hint: Option<&str>) {
    let mut form = vec![("token", token)];
    if let Some(hint) = hint {
        form.push(("token_type_hint", hint));
    }
    let response = server.post_form("/revoke", Some(client), &form).await;
    assert_eq!(response.status(), 200, "revocation status");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.text().await.unwrap(), "");
}

/// §2.1: revoking a refresh token invalidates the grant: every refresh token of the family and
/// the access tokens issued under it.
async fn revoking_a_refresh_token_withdraws_its_family(backend: Backend) {
    let rp = rp_with_refresh_tokens(backend).await;
    let (first_access, first_refresh) = pair(&rp.code_flow("").await);
    let response = rp.refresh(&first_refresh).await;
    assert_eq!(response.status(), 200);
    let (second_access, second_refresh) = pair(&response.json().await.unwrap());
    assert_eq!(rp.userinfo(&second_access).await.status(), 200);

    revoke(
        &rp.server,
        rp.credentials(),
        &second_refresh,
        Some("refresh_token"),
    )
    .await;

    assert_oauth_error(rp.refresh(&second_refresh).await, 400, "invalid_grant").await;
    for access_token in [&first_access, &second_access] {
        assert_eq!(rp.userinfo(access_token).await.status(), 401);
        assert!(!rp.server.is_active(rp.credentials(), access_token).await);
    }
    assert!(!rp.server.is_active(rp.credentials(), &second_refresh).await);
    // Revoking again changes nothing and is still 200.
    revoke(&rp.server, rp.credentials(), &second_refresh, None).await;
}

/// An access token is withdrawn alone, by its `jti`: the refresh token it came with, and the
/// access tokens issued after it, keep working.
async fn revoking_an_access_token_withdraws_it_alone(backend: Backend) {
    let rp = rp_with_refresh_tokens(backend).await;
    let (access_token, refresh_token) = pair(&rp.code_flow("").await);
    let (other_access, _) = pair(&rp.code_flow("").await);

    revoke(
        &rp.server,
        rp.credentials(),
        &access_token,
        Some("access_token"),
    )
    .await;

    let response = rp.userinfo(&access_token).await;
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    assert!(!rp.server.is_active(rp.credentials(), &access_token).await);
    // Unaffected: another grant's access token, and this grant's refresh token and the
    // access token it now gives.
    assert_eq!(rp.userinfo(&other_access).await.status(), 200);
    assert!(rp.server.is_active(rp.credentials(), &refresh_token).await);
    let response = rp.refresh(&refresh_token).await;
    assert_eq!(response.status(), 200);
    let (next_access, _) = pair(&response.json().await.unwrap());
    assert_eq!(rp.userinfo(&next_access).await.status(), 200);
}

/// A client credentials token is revoked like any access token.
async fn revoking_a_client_credentials_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (service, secret) = server.service_client("default", &["a"]).await;
    let me = (service.id.as_str(), secret.expose());
    let token = server.client_credentials_token("", me).await;
    let kept = server.client_credentials_token("", me).await;
    revoke(&server, me, &token, None).await;
    assert!(!server.is_active(me, &token).await);
    assert!(server.is_active(me, &kept).await);
}

/// §2.1: the server checks the token was issued to the client asking. Another client's token
/// is left alone, and the answer is the same 200 as for an invalid one (§2.2).
async fn a_client_cannot_revoke_another_clients_tokens(backend: Backend) {
    let rp = rp_with_refresh_tokens(backend).await;
    let (intruder, intruder_secret) = rp.server.service_client("default", &["x"]).await;
    let intruder = (intruder.id.as_str(), intruder_secret.expose());
    let (access_token, refresh_token) = pair(&rp.code_flow("").await);
    let intruder_token = rp.server.client_credentials_token("", intruder).await;

    for hint in [None, Some("access_token"), Some("refresh_token")] {
        revoke(&rp.server, intruder, &access_token, hint).await;
        revoke(&rp.server, intruder, &refresh_token, hint).await;
        revoke(&rp.server, rp.credentials(), &intruder_token, hint).await;
    }

    assert_eq!(rp.userinfo(&access_token).await.status(), 200);
    assert!(rp.server.is_active(intruder, &intruder_token).await);
    assert!(rp.server.is_active(rp.credentials(), &refresh_token).await);
    assert_eq!(rp.refresh(&refresh_token).await.status(), 200);
}

/// §2.2: invalid, unknown, expired or foreign tokens get 200 too, and nothing changes.
async fn unknown_and_invalid_tokens_get_200(backend: Backend) {
    let rp = rp_with_refresh_tokens(backend).await;
    let (access_token, refresh_token) = pair(&rp.code_flow("").await);
    rp.server.create_server("tenant").await;
    let (tenant, tenant_secret) = rp.server.service_client("tenant", &["t"]).await;
    let tenant_token = rp
        .server
        .client_credentials_token("/oauth2/tenant", (&tenant.id, tenant_secret.expose()))
        .await;
    for token in ["garbage", "a.b.c", tenant_token.as_str()] {
        revoke(&rp.server, rp.credentials(), token, None).await;
        revoke(&rp.server, rp.credentials(), token, Some("refresh_token")).await;
    }
    assert_eq!(rp.userinfo(&access_token).await.status(), 200);
    assert!(rp.server.is_active(rp.credentials(), &refresh_token).await);

    // Expired: nothing left to revoke, and still 200.
    rp.server.clock.advance(3600);
    revoke(&rp.server, rp.credentials(), &access_token, None).await;
}

/// §2.1: the hint only orders the search: a wrong or unknown hint still finds the token.
async fn a_wrong_or_unknown_hint_still_revokes(backend: Backend) {
    let rp = rp_with_refresh_tokens(backend).await;
    let (access_token, _) = pair(&rp.code_flow("").await);
    let (_, refresh_token) = pair(&rp.code_flow("").await);
    revoke(
        &rp.server,
        rp.credentials(),
        &access_token,
        Some("refresh_token"),
    )
    .await;
    revoke(
        &rp.server,
        rp.credentials(),
        &refresh_token,
        Some("id_token"),
    )
    .await;
    assert_eq!(rp.userinfo(&access_token).await.status(), 401);
    assert_oauth_error(rp.refresh(&refresh_token).await, 400, "invalid_grant").await;
}

/// §2.1: a public client identifies itself with its client_id, as at the token endpoint.
async fn a_public_client_revokes_with_its_client_id(backend: Backend) {
    let rp = Rp::start_with(
        backend,
        true,
        true,
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
    )
    .await;
    let verifier = "v".repeat(50);
    let challenge = portcullis::protocol::pkce::s256(&verifier);
    let url = rp
        .authorize(&format!(
            "response_type=code&scope=openid&state=s&code_challenge={challenge}&code_challenge_method=S256"
        ))
        .await;
    let code = query_param(&url, "code").expect("code");
    let response = rp
        .server
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", &rp.client_id),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let (access_token, refresh_token) = pair(&response.json().await.unwrap());

    let response = rp
        .server
        .post_form(
            "/revoke",
            None,
            &[("client_id", &rp.client_id), ("token", &refresh_token)],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(rp.userinfo(&access_token).await.status(), 401);
    let response = rp
        .server
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_token),
                ("client_id", &rp.client_id),
            ],
        )
        .await;
    assert_oauth_error(response, 400, "invalid_grant").await;
}

/// RFC 6749 §5.2 errors for a client that does not authenticate, and for a missing token.
async fn revocation_requires_client_authentication(backend: Backend) {
    let rp = rp_with_refresh_tokens(backend).await;
    let (access_token, _) = pair(&rp.code_flow("").await);
    let with_token = [("token", access_token.as_str())];

    assert_oauth_error(
        rp.server.post_form("/revoke", None, &with_token).await,
        401,
        "invalid_client",
    )
    .await;
    let headers = assert_oauth_error(
        rp.server
            .post_form("/revoke", Some((&rp.client_id, "wrong")), &with_token)
            .await,
        401,
        "invalid_client",
    )
    .await;
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic "));
    // A confidential client cannot pass for a public one by leaving its secret out.
    assert_oauth_error(
        rp.server
            .post_form(
                "/revoke",
                None,
                &[("client_id", &rp.client_id), ("token", &access_token)],
            )
            .await,
        401,
        "invalid_client",
    )
    .await;
    assert_oauth_error(
        rp.server
            .post_form("/revoke", Some(rp.credentials()), &[])
            .await,
        400,
        "invalid_request",
    )
    .await;
    let response = rp
        .server
        .http
        .get(rp.server.url("/revoke"))
        .send()
        .await
        .unwrap();
    let headers = assert_oauth_error(response, 405, "invalid_request").await;
    assert_eq!(headers["allow"], "POST");
    // None of it revoked anything.
    assert_eq!(rp.userinfo(&access_token).await.status(), 200);
}

/// Browser apps (public clients) revoke on sign-out, from their own origin.
async fn revocation_allows_cross_origin_calls(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server
        .http
        .request(reqwest::Method::OPTIONS, server.url("/revoke"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

on_both_databases!(
    revoking_a_refresh_token_withdraws_its_family,
    revoking_an_access_token_withdraws_it_alone,
    revoking_a_client_credentials_token,
    a_client_cannot_revoke_another_clients_tokens,
    unknown_and_invalid_tokens_get_200,
    a_wrong_or_unknown_hint_still_revokes,
    a_public_client_revokes_with_its_client_id,
    revocation_requires_client_authentication,
    revocation_allows_cross_origin_calls,
);
