//! The authorization code flow (with and without PKCE) end to end, driven by the
//! `openidconnect` client library and a cookie-jar user agent, plus its bad inputs.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    RedirectUrl, Scope, TokenResponse,
};

use crate::common::agent::query_param;
use crate::common::{assert_oauth_error, Backend, TestServer, UserAgent};
use crate::on_both_databases;
use portcullis::store::Redemption;

pub const REDIRECT: &str = "http://127.0.0.1:9/cb";

pub type Oidc = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

pub async fn oidc_client(server: &TestServer, client_id: &str, secret: Option<&str>) -> Oidc {
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(server.base.clone()).unwrap(),
        &server.http,
    )
    .await
    .expect("discovery");
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.into()),
        secret.map(|s| ClientSecret::new(s.into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
}

async fn authorization_code_flow_with_pkce_works_with_an_oidc_library(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server
        .create_user("ada", "correct horse battery staple")
        .await;
    let (client, secret) = server.web_client(REDIRECT, true, false).await;
    let oidc = oidc_client(&server, &client.id, secret.as_ref().map(|s| s.expose())).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = oidc
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();

    let agent = UserAgent::new();
    let login = agent.navigate(url.as_str(), &server.base).await;
    let back = agent
        .sign_in(login, "ada", "correct horse battery staple", &server.base)
        .await
        .client_url();
    assert!(back.as_str().starts_with(REDIRECT));
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(state.secret().as_str()),
        "state echoed"
    );
    // RFC 9207: the issuer is in the response.
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(server.base.as_str())
    );
    let code = query_param(&back, "code").expect("code");

    let tokens = oidc
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&server.http)
        .await
        .expect("token exchange");
    let id_token = tokens
        .id_token()
        .expect("an ID token with the openid scope");
    let verifier = oidc.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("ID token verifies (signature, iss, aud, nonce)");
    assert_eq!(claims.subject().as_str(), user.id);
    assert!(claims.auth_time().is_some());
    // at_hash matches the access token issued with it.
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected));
    // OIDC Core §5.4: with an access token, profile claims come from /userinfo, not the ID token.
    assert!(claims.email().is_none());

    let info: CoreUserInfoClaims = oidc
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&server.http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), user.id);
    assert_eq!(info.email().map(|e| e.as_str()), Some("ada@example.com"));
    assert_eq!(
        info.given_name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str()),
        Some("Ada")
    );
    // The phone scope was not granted: no phone number.
    assert!(info.phone_number().is_none());
}

/// Drive a first-party authorization to the code, signing in as ada.
async fn code_for(server: &TestServer, agent: &UserAgent, client_id: &str, extra: &str) -> String {
    let url = format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri={REDIRECT}&scope=openid&state=s1{extra}",
        server.base
    );
    let landing = agent.navigate(&url, &server.base).await;
    let landing = match landing {
        crate::common::Landing::Page { .. } => {
            agent
                .sign_in(landing, "ada", "pw-ada-123", &server.base)
                .await
        }
        other => other,
    };
    let back = landing.client_url();
    query_param(&back, "code").unwrap_or_else(|| panic!("no code in {back}"))
}

async fn public_client_must_use_pkce_and_the_right_verifier(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", "pw-ada-123").await;
    let (client, _) = server.web_client(REDIRECT, true, true).await;
    let agent = UserAgent::new();
    // No code_challenge: refused, back to the client.
    let url = format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri={REDIRECT}&scope=openid&state=x",
        server.base, client.id
    );
    let back = agent.navigate(&url, &server.base).await.client_url();
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some("x"));
    // plain is refused.
    let plain = format!(
        "&code_challenge={}&code_challenge_method=plain",
        "a".repeat(43)
    );
    let back = agent
        .navigate(&format!("{url}{plain}"), &server.base)
        .await
        .client_url();
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("invalid_request")
    );

    let verifier = "v".repeat(50);
    let challenge = portcullis::protocol::pkce::s256(&verifier);
    let extra = format!("&code_challenge={challenge}&code_challenge_method=S256");
    // Wrong verifier: invalid_grant, and the code is burnt.
    let code = code_for(&server, &agent, &client.id, &extra).await;
    let wrong = "w".repeat(50);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("client_id", &client.id),
        ("code_verifier", &wrong),
    ];
    assert_oauth_error(
        server.post_form("/token", None, &form).await,
        400,
        "invalid_grant",
    )
    .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("client_id", &client.id),
        ("code_verifier", &verifier),
    ];
    assert_oauth_error(
        server.post_form("/token", None, &form).await,
        400,
        "invalid_grant",
    )
    .await;
    // Missing verifier.
    let code = code_for(&server, &agent, &client.id, &extra).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("client_id", &client.id),
    ];
    assert_oauth_error(
        server.post_form("/token", None, &form).await,
        400,
        "invalid_grant",
    )
    .await;
    // The right verifier, no secret: tokens.
    let code = code_for(&server, &agent, &client.id, &extra).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("client_id", &client.id),
        ("code_verifier", &verifier),
    ];
    let response = server.post_form("/token", None, &form).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["id_token"].is_string());
    assert!(body.get("refresh_token").is_none());
}

/// oidcc-codereuse / oidcc-codereuse-30seconds: a code works once; a replay fails and revokes
/// the access token issued from it.
async fn oidcc_codereuse(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", "pw-ada-123").await;
    let (client, secret) = server.web_client(REDIRECT, true, false).await;
    let secret = secret.unwrap();
    let agent = UserAgent::new();
    let code = code_for(&server, &agent, &client.id, "").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let first = server
        .post_form("/token", Some((&client.id, secret.expose())), &form)
        .await;
    assert_eq!(first.status(), 200);
    let body: serde_json::Value = first.json().await.unwrap();
    let access_token = body["access_token"].as_str().unwrap().to_string();
    let userinfo = |token: String| {
        let http = server.http.clone();
        let url = server.url("/userinfo");
        async move { http.get(url).bearer_auth(token).send().await.unwrap() }
    };
    assert_eq!(userinfo(access_token.clone()).await.status(), 200);

    server.clock.advance(30);
    let replay = server
        .post_form("/token", Some((&client.id, secret.expose())), &form)
        .await;
    assert_oauth_error(replay, 400, "invalid_grant").await;
    let after = userinfo(access_token).await;
    assert_eq!(
        after.status(),
        401,
        "the access token issued from a replayed code is revoked"
    );
    assert!(after.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
}

/// A code whose grant was withdrawn between the authorization and the exchange (here the
/// user's grants, as a password change revokes them; the user stays active) is refused, and
/// stays consumed.
async fn a_code_of_a_withdrawn_grant_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.create_user("ada", "pw-ada-123").await;
    let (client, secret) = server.web_client(REDIRECT, true, false).await;
    let secret = secret.unwrap();
    let agent = UserAgent::new();
    let code = code_for(&server, &agent, &client.id, "").await;
    server
        .store()
        .revoke_user_grants(&user.id, server.clock_now())
        .await
        .unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    for _ in 0..2 {
        let response = server
            .post_form("/token", Some((&client.id, secret.expose())), &form)
            .await;
        assert_oauth_error(response, 400, "invalid_grant").await;
    }
}

/// The store's redemption, on both databases: the first consumes the code and reads its grant's
/// state with it (active, then withdrawn by disabling the user), a second is a replay naming the
/// grant, and an unknown hash is unknown.
async fn redemption_reports_consumed_replayed_and_unknown(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.create_user("ada", "pw-ada-123").await;
    let (client, _) = server.web_client(REDIRECT, true, false).await;
    let agent = UserAgent::new();
    let live = code_for(&server, &agent, &client.id, "").await;
    let withdrawn = code_for(&server, &agent, &client.id, "").await;
    let store = server.store();
    let now = server.clock_now();
    let redeem = |code: String| async move {
        store
            .redeem_code(&portcullis::security::hash_secret(&code), now)
            .await
            .unwrap()
    };
    let grant_id = match redeem(live.clone()).await {
        Redemption::Redeemed { code, grant_active } => {
            assert!(grant_active);
            assert_eq!(code.user_id, user.id);
            assert_eq!(code.client_id, client.id);
            assert_eq!(code.redirect_uri, REDIRECT);
            code.grant_id
        }
        other => panic!("first redemption: {other:?}"),
    };
    match redeem(live).await {
        Redemption::Replayed { grant_id: replayed } => assert_eq!(replayed, grant_id),
        other => panic!("second redemption: {other:?}"),
    }
    store.set_user_disabled(&user.id, true, now).await.unwrap();
    match redeem(withdrawn).await {
        Redemption::Redeemed { grant_active, .. } => {
            assert!(!grant_active, "disabling the user withdrew the grant")
        }
        other => panic!("redemption after disabling: {other:?}"),
    }
    assert!(matches!(
        redeem("no-such-code".into()).await,
        Redemption::Unknown
    ));
}

async fn code_is_bound_to_client_and_redirect_uri_and_expires(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", "pw-ada-123").await;
    let (client, secret) = server.web_client(REDIRECT, true, false).await;
    let (other, other_secret) = server.web_client(REDIRECT, true, false).await;
    let agent = UserAgent::new();
    let auth = Some((client.id.as_str(), secret.as_ref().unwrap().expose()));

    // Another client cannot redeem it.
    let code = code_for(&server, &agent, &client.id, "").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let response = server
        .post_form(
            "/token",
            Some((&other.id, other_secret.as_ref().unwrap().expose())),
            &form,
        )
        .await;
    assert_oauth_error(response, 400, "invalid_grant").await;

    // A different redirect_uri, or none.
    let code = code_for(&server, &agent, &client.id, "").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1:9/other"),
    ];
    assert_oauth_error(
        server.post_form("/token", auth, &form).await,
        400,
        "invalid_grant",
    )
    .await;
    let code = code_for(&server, &agent, &client.id, "").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
    ];
    assert_oauth_error(
        server.post_form("/token", auth, &form).await,
        400,
        "invalid_grant",
    )
    .await;

    // Expired after 60 seconds.
    let code = code_for(&server, &agent, &client.id, "").await;
    server.clock.advance(61);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    assert_oauth_error(
        server.post_form("/token", auth, &form).await,
        400,
        "invalid_grant",
    )
    .await;

    // A made-up code; a missing code.
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "made-up"),
        ("redirect_uri", REDIRECT),
    ];
    assert_oauth_error(
        server.post_form("/token", auth, &form).await,
        400,
        "invalid_grant",
    )
    .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("redirect_uri", REDIRECT),
    ];
    assert_oauth_error(
        server.post_form("/token", auth, &form).await,
        400,
        "invalid_request",
    )
    .await;
}

/// A code of one authorization server is worthless at another, even to a client there.
async fn a_code_of_one_server_is_refused_by_another(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", "pw-ada-123").await;
    server.create_server("tenant").await;
    let (client, secret) = server.web_client(REDIRECT, true, false).await;
    let (tenant_client, tenant_secret) = server
        .register(portcullis::manage::clients::ClientRequest {
            server_id: "tenant".into(),
            name: "tenant app".into(),
            grant_types: vec![portcullis::protocol::GrantType::AuthorizationCode],
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![],
            scopes: vec![],
            default_scopes: vec![],
            public: false,
            first_party: true,
            auth_method: None,
        })
        .await;
    let agent = UserAgent::new();
    let code = code_for(&server, &agent, &client.id, "").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    // The default server's client cannot authenticate at the tenant…
    let response = server
        .post_form(
            "/oauth2/tenant/token",
            Some((&client.id, secret.as_ref().unwrap().expose())),
            &form,
        )
        .await;
    assert_oauth_error(response, 401, "invalid_client").await;
    // …and the tenant's client cannot redeem the default server's code.
    let response = server
        .post_form(
            "/oauth2/tenant/token",
            Some((&tenant_client.id, tenant_secret.as_ref().unwrap().expose())),
            &form,
        )
        .await;
    assert_oauth_error(response, 400, "invalid_grant").await;
}

/// PKCE downgrade: a verifier sent for a code issued without a challenge is refused.
async fn verifier_without_challenge_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", "pw-ada-123").await;
    let (client, secret) = server.web_client(REDIRECT, true, false).await;
    let agent = UserAgent::new();
    let code = code_for(&server, &agent, &client.id, "").await;
    let verifier = "v".repeat(50);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", &verifier),
    ];
    let response = server
        .post_form(
            "/token",
            Some((&client.id, secret.as_ref().unwrap().expose())),
            &form,
        )
        .await;
    assert_oauth_error(response, 400, "invalid_grant").await;
}

/// The implicit flows (`id_token token` and `id_token`) through the same library: it builds the
/// request, and verifies the ID token from the fragment (signature, issuer, audience, nonce).
async fn implicit_flows_work_with_an_oidc_library(backend: Backend) {
    use crate::common::agent::fragment_param;
    use openidconnect::core::CoreIdToken;
    let server = TestServer::start(backend).await;
    let user = server.create_user("ada", "pw-ada-123").await;
    let (client, secret) = server.web_client(REDIRECT, true, false).await;
    let oidc = oidc_client(&server, &client.id, secret.as_ref().map(|s| s.expose())).await;
    let agent = UserAgent::new();
    for include_token in [true, false] {
        let (url, state, nonce) = oidc
            .authorize_url(
                CoreAuthenticationFlow::Implicit(include_token),
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .url();
        let landing = agent.navigate(url.as_str(), &server.base).await;
        let back = match landing {
            crate::common::Landing::Client(url) => url,
            page => agent
                .sign_in(page, "ada", "pw-ada-123", &server.base)
                .await
                .client_url(),
        };
        assert_eq!(
            fragment_param(&back, "state").as_deref(),
            Some(state.secret().as_str())
        );
        let id_token: CoreIdToken = fragment_param(&back, "id_token")
            .expect("id_token")
            .parse()
            .expect("ID token");
        let verifier = oidc.id_token_verifier();
        let claims = id_token.claims(&verifier, &nonce).expect("verifies");
        assert_eq!(claims.subject().as_str(), user.id);
        match fragment_param(&back, "access_token") {
            Some(at) if include_token => {
                let at = openidconnect::AccessToken::new(at);
                let expected = AccessTokenHash::from_token(
                    &at,
                    id_token.signing_alg().unwrap(),
                    id_token.signing_key(&verifier).unwrap(),
                )
                .unwrap();
                assert_eq!(claims.access_token_hash(), Some(&expected));
                assert!(
                    claims.email().is_none(),
                    "with an access token, email comes from /userinfo"
                );
            }
            None if !include_token => {
                assert_eq!(
                    claims.email().map(|e| e.as_str()),
                    Some("ada@example.com"),
                    "no access token: claims in the ID token"
                );
            }
            other => panic!("access_token {other:?} with include_token={include_token}"),
        }
    }
}

on_both_databases!(
    a_code_of_one_server_is_refused_by_another,
    implicit_flows_work_with_an_oidc_library,
    authorization_code_flow_with_pkce_works_with_an_oidc_library,
    public_client_must_use_pkce_and_the_right_verifier,
    oidcc_codereuse,
    code_is_bound_to_client_and_redirect_uri_and_expires,
    a_code_of_a_withdrawn_grant_is_refused,
    redemption_reports_consumed_replayed_and_unknown,
    verifier_without_challenge_is_refused,
);
