//! Token introspection (RFC 7662): what an active token of each kind says, every reason a token
//! is inactive (all answered alike, `{"active": false}`), the hint, and the client
//! authentication the endpoint requires.

use portcullis::manage::clients::ClientRequest;
use portcullis::protocol::{ClientAuthMethod, GrantType};
use serde_json::{json, Value};

use crate::common::rp::{Rp, REDIRECT, USER};
use crate::common::{assert_oauth_error, Backend, TestServer};
use crate::on_both_databases;

/// §2.2: all an inactive token gets.
fn inactive() -> Value {
    json!({ "active": false })
}

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

/// Tokens of a code flow: (access token, refresh token, ID token).
async fn user_tokens(rp: &Rp) -> (String, String, String) {
    let tokens = rp.code_flow("").await;
    let field = |name: &str| {
        tokens[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {tokens}"))
            .to_string()
    };
    (
        field("access_token"),
        field("refresh_token"),
        field("id_token"),
    )
}

fn str_of<'a>(answer: &'a Value, name: &str) -> &'a str {
    answer[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {answer}"))
}

/// §2.2 for a client credentials token: its claims; `sub` is the client, no username. Any
/// confidential client of the server may ask (a resource server), the token's client too.
async fn client_credentials_access_token_is_active_with_its_claims(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (service, service_secret) = server
        .service_client("default", &["invoices.read", "invoices.write"])
        .await;
    let (api, api_secret) = server.service_client("default", &["x"]).await;
    let issued_at = server.clock_now();
    let token = server
        .client_credentials_token("", (&service.id, service_secret.expose()))
        .await;

    let answer = server
        .introspect("", (&api.id, api_secret.expose()), &token, None)
        .await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["scope"], "invoices.read invoices.write");
    assert_eq!(answer["client_id"], service.id.as_str());
    assert_eq!(answer["sub"], service.id.as_str());
    assert!(answer.get("username").is_none(), "no user: {answer}");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["iat"], issued_at);
    assert_eq!(answer["exp"], issued_at + 3600);
    assert_eq!(answer["aud"], "api://default");
    assert_eq!(answer["iss"], server.base.as_str());
    assert!(str_of(&answer, "jti").len() >= 16);

    let own = server
        .introspect("", (&service.id, service_secret.expose()), &token, None)
        .await;
    assert_eq!(own, answer);
}

/// A user's access token from the code flow names the user by id (`sub`) and `username`.
async fn user_access_token_is_active_with_the_username(backend: Backend) {
    let rp = rp_with_refresh_tokens(backend).await;
    let (api, api_secret) = rp.server.service_client("default", &["x"]).await;
    let (access_token, _, _) = user_tokens(&rp).await;
    let answer = rp
        .server
        .introspect("", (&api.id, api_secret.expose()), &access_token, None)
        .await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["sub"], rp.user_id.as_str());
    assert_eq!(answer["username"], USER);
    assert_eq!(answer["client_id"], rp.client_id.as_str());
    assert_eq!(answer["scope"], "openid");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["iss"], rp.server.base.as_str());
    assert_eq!(answer["aud"], "api://default");
}

/// A refresh token is active for the client it was issued to, expiring at its idle expiry
/// (earlier than the family's absolute one); to any other client it is inactive.
async fn refresh_token_is_active_for_its_own_client_only(backend: Backend) {
    let rp = rp_with_refresh_tokens(backend).await;
    let (api, api_secret) = rp.server.service_client("default", &["x"]).await;
    let issued_at = rp.server.clock_now();
    let (_, refresh_token, _) = user_tokens(&rp).await;

    let answer = rp
        .server
        .introspect("", rp.credentials(), &refresh_token, None)
        .await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["token_type"], "refresh_token");
    assert_eq!(answer["client_id"], rp.client_id.as_str());
    assert_eq!(answer["sub"], rp.user_id.as_str());
    assert_eq!(answer["username"], USER);
    assert_eq!(answer["scope"], "openid");
    assert_eq!(answer["iat"], issued_at);
    // refresh_idle_ttl (7 days) is earlier than refresh_token_ttl (30 days).
    assert_eq!(answer["exp"], issued_at + 7 * 86400);
    assert_eq!(answer["iss"], rp.server.base.as_str());
    assert!(answer.get("jti").is_none());

    let other = rp
        .server
        .introspect("", (&api.id, api_secret.expose()), &refresh_token, None)
        .await;
    assert_eq!(other, inactive());
}

/// Expiry against the server's clock: access tokens after their lifetime, refresh tokens after
/// their idle lifetime.
async fn expired_tokens_are_inactive(backend: Backend) {
    let rp = rp_with_refresh_tokens(backend).await;
    let (service, service_secret) = rp.server.service_client("default", &["x"]).await;
    let me = (service.id.as_str(), service_secret.expose());
    let cc_token = rp.server.client_credentials_token("", me).await;
    let (access_token, refresh_token, _) = user_tokens(&rp).await;

    rp.server.clock.advance(3599);
    assert!(rp.server.is_active(me, &cc_token).await);
    assert!(rp.server.is_active(me, &access_token).await);
    rp.server.clock.advance(1);
    assert_eq!(
        rp.server.introspect("", me, &cc_token, None).await,
        inactive()
    );
    assert_eq!(
        rp.server.introspect("", me, &access_token, None).await,
        inactive()
    );
    assert!(rp.server.is_active(rp.credentials(), &refresh_token).await);

    rp.server.clock.advance(7 * 86400);
    assert_eq!(
        rp.server
            .introspect("", rp.credentials(), &refresh_token, None)
            .await,
        inactive()
    );
}

/// Withdrawn tokens: an access token by its `jti`, and a whole grant (here by refresh token
/// reuse detection), which takes its access and refresh tokens with it.
async fn revoked_tokens_are_inactive(backend: Backend) {
    let rp = rp_with_refresh_tokens(backend).await;
    let (service, service_secret) = rp.server.service_client("default", &["x"]).await;
    let me = (service.id.as_str(), service_secret.expose());

    let cc_token = rp.server.client_credentials_token("", me).await;
    let answer = rp.server.introspect("", me, &cc_token, None).await;
    rp.server
        .store()
        .revoke_jti(
            str_of(&answer, "jti"),
            "default",
            rp.server.clock_now(),
            answer["exp"].as_i64().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        rp.server.introspect("", me, &cc_token, None).await,
        inactive()
    );

    let (first_access, first_refresh, _) = user_tokens(&rp).await;
    let refreshed: Value = rp.refresh(&first_refresh).await.json().await.unwrap();
    let second_refresh = str_of(&refreshed, "refresh_token");
    let second_access = str_of(&refreshed, "access_token");
    assert!(rp.server.is_active(me, second_access).await);
    assert!(rp.server.is_active(rp.credentials(), second_refresh).await);
    // Presenting the retired token after the grace period revokes the family.
    rp.server.clock.advance(31);
    assert_eq!(rp.refresh(&first_refresh).await.status(), 400);
    for token in [first_access.as_str(), second_access] {
        assert_eq!(rp.server.introspect("", me, token, None).await, inactive());
    }
    assert_eq!(
        rp.server
            .introspect("", rp.credentials(), second_refresh, None)
            .await,
        inactive()
    );
}

/// RFC 9700 §4.14.2: after a rotation only the successor is current.
async fn a_rotated_refresh_token_is_inactive_and_its_successor_active(backend: Backend) {
    let rp = rp_with_refresh_tokens(backend).await;
    let (_, first_refresh, _) = user_tokens(&rp).await;
    let response = rp.refresh(&first_refresh).await;
    assert_eq!(response.status(), 200);
    let refreshed: Value = response.json().await.unwrap();
    let successor = str_of(&refreshed, "refresh_token");
    assert_eq!(
        rp.server
            .introspect("", rp.credentials(), &first_refresh, None)
            .await,
        inactive()
    );
    assert!(rp.server.is_active(rp.credentials(), successor).await);
}

/// Anything that is not one of this server's tokens is inactive, never an error.
async fn malformed_unknown_and_other_tokens_are_inactive(backend: Backend) {
    let rp = rp_with_refresh_tokens(backend).await;
    let (api, api_secret) = rp.server.service_client("default", &["x"]).await;
    let me = (api.id.as_str(), api_secret.expose());
    let (access_token, _, id_token) = user_tokens(&rp).await;
    let mut tampered = access_token.clone();
    let last = if tampered.ends_with('A') { "B" } else { "A" };
    tampered.replace_range(tampered.len() - 1.., last);
    let unsigned = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.{}.",
        access_token.split('.').nth(1).unwrap()
    );
    for token in [
        "garbage",
        "a.b.c",
        "x".repeat(5000).as_str(),
        tampered.as_str(),
        unsigned.as_str(),
        // An ID token is signed by the same keys but is no access token (RFC 9068 §4: typ).
        id_token.as_str(),
    ] {
        assert_eq!(
            rp.server.introspect("", me, token, None).await,
            inactive(),
            "{token}"
        );
    }

    // Another server's token is unknown here, and this server's unknown there.
    rp.server.create_server("tenant").await;
    let (tenant, tenant_secret) = rp.server.service_client("tenant", &["t"]).await;
    let tenant_me = (tenant.id.as_str(), tenant_secret.expose());
    let tenant_token = rp
        .server
        .client_credentials_token("/oauth2/tenant", tenant_me)
        .await;
    assert_eq!(
        rp.server.introspect("", me, &tenant_token, None).await,
        inactive()
    );
    let there = rp
        .server
        .introspect("/oauth2/tenant", tenant_me, &tenant_token, None)
        .await;
    assert_eq!(there["active"], true, "{there}");
    assert_eq!(there["iss"], rp.server.issuer("tenant"));
    assert_eq!(there["aud"], "api://tenant");
    assert_eq!(
        rp.server
            .introspect("/oauth2/tenant", tenant_me, &access_token, None)
            .await,
        inactive()
    );
}

/// §2.1: `token_type_hint` orders the search; a wrong or unknown hint is still answered.
async fn the_hint_is_honoured_and_a_wrong_hint_still_finds_the_token(backend: Backend) {
    let rp = rp_with_refresh_tokens(backend).await;
    let (access_token, refresh_token, _) = user_tokens(&rp).await;
    for hint in [
        None,
        Some("access_token"),
        Some("refresh_token"),
        Some("id_token"),
    ] {
        let answer = rp
            .server
            .introspect("", rp.credentials(), &access_token, hint)
            .await;
        assert_eq!(answer["active"], true, "{hint:?}: {answer}");
        assert_eq!(answer["token_type"], "Bearer", "{hint:?}");
        let answer = rp
            .server
            .introspect("", rp.credentials(), &refresh_token, hint)
            .await;
        assert_eq!(answer["active"], true, "{hint:?}: {answer}");
        assert_eq!(answer["token_type"], "refresh_token", "{hint:?}");
    }
}

/// §2.1: the caller authenticates as at the token endpoint, must be confidential, and sends
/// `token`; RFC 6749 §5.2 errors otherwise.
async fn introspection_requires_an_authenticated_confidential_client(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (api, api_secret) = server.service_client("default", &["x"]).await;
    let token = server
        .client_credentials_token("", (&api.id, api_secret.expose()))
        .await;
    let with_token = [("token", token.as_str())];

    assert_oauth_error(
        server.post_form("/introspect", None, &with_token).await,
        401,
        "invalid_client",
    )
    .await;
    for basic in [(api.id.as_str(), "wrong"), ("nobody", "x")] {
        let headers = assert_oauth_error(
            server
                .post_form("/introspect", Some(basic), &with_token)
                .await,
            401,
            "invalid_client",
        )
        .await;
        assert!(headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic "));
    }
    // A public client cannot keep a secret, so it cannot be trusted to introspect.
    let (public, _) = server.web_client(REDIRECT, true, true).await;
    assert_oauth_error(
        server
            .post_form(
                "/introspect",
                None,
                &[("client_id", public.id.as_str()), ("token", &token)],
            )
            .await,
        401,
        "invalid_client",
    )
    .await;
    // A client of another server does not exist here.
    server.create_server("tenant").await;
    let (tenant, tenant_secret) = server.service_client("tenant", &["t"]).await;
    assert_oauth_error(
        server
            .post_form(
                "/introspect",
                Some((&tenant.id, tenant_secret.expose())),
                &with_token,
            )
            .await,
        401,
        "invalid_client",
    )
    .await;
    // No token.
    assert_oauth_error(
        server
            .post_form("/introspect", Some((&api.id, api_secret.expose())), &[])
            .await,
        400,
        "invalid_request",
    )
    .await;
    // GET: 405 with Allow.
    let response = server
        .http
        .get(server.url("/introspect"))
        .send()
        .await
        .unwrap();
    let headers = assert_oauth_error(response, 405, "invalid_request").await;
    assert_eq!(headers["allow"], "POST");

    // client_secret_post, for a client registered with it.
    let (poster, poster_secret) = server
        .register(ClientRequest {
            server_id: "default".into(),
            name: "poster".into(),
            grant_types: vec![GrantType::ClientCredentials],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: vec![],
            default_scopes: vec![],
            public: false,
            first_party: false,
            auth_method: Some(ClientAuthMethod::ClientSecretPost),
        })
        .await;
    let poster_secret = poster_secret.unwrap();
    let response = server
        .post_form(
            "/introspect",
            None,
            &[
                ("client_id", poster.id.as_str()),
                ("client_secret", poster_secret.expose()),
                ("token", &token),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["active"], true);
}

/// A deleted client's tokens go with it, client credentials tokens included (they have no
/// grant to be withdrawn with).
async fn a_deleted_clients_tokens_are_inactive(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (api, api_secret) = server.service_client("default", &["x"]).await;
    let (service, service_secret) = server.service_client("default", &["a"]).await;
    let token = server
        .client_credentials_token("", (&service.id, service_secret.expose()))
        .await;
    let me = (api.id.as_str(), api_secret.expose());
    assert!(server.is_active(me, &token).await);
    assert!(server.store().delete_client(&service.id).await.unwrap());
    assert_eq!(server.introspect("", me, &token, None).await, inactive());
}

/// Disabling a user withdraws their grants: their tokens go inactive with them.
async fn a_disabled_users_tokens_are_inactive(backend: Backend) {
    let rp = rp_with_refresh_tokens(backend).await;
    let (access_token, refresh_token, _) = user_tokens(&rp).await;
    rp.server
        .store()
        .set_user_disabled(&rp.user_id, true, rp.server.clock_now())
        .await
        .unwrap();
    assert_eq!(
        rp.server
            .introspect("", rp.credentials(), &access_token, None)
            .await,
        inactive()
    );
    assert_eq!(
        rp.server
            .introspect("", rp.credentials(), &refresh_token, None)
            .await,
        inactive()
    );
}

on_both_databases!(
    client_credentials_access_token_is_active_with_its_claims,
    user_access_token_is_active_with_the_username,
    refresh_token_is_active_for_its_own_client_only,
    expired_tokens_are_inactive,
    revoked_tokens_are_inactive,
    a_rotated_refresh_token_is_inactive_and_its_successor_active,
    malformed_unknown_and_other_tokens_are_inactive,
    the_hint_is_honoured_and_a_wrong_hint_still_finds_the_token,
    introspection_requires_an_authenticated_confidential_client,
    a_deleted_clients_tokens_are_inactive,
    a_disabled_users_tokens_are_inactive,
);
