//! Authorization code injection, PKCE downgrade, and codes or refresh tokens carried to another
//! client or another authorization server (RFC 6749 §4.1.3, §6, §10.5; RFC 7636 §4.6;
//! RFC 9700 §4.5, §2.1.1). Each is refused with `invalid_grant`; the store changes only as the
//! protocol prescribes (a code is burnt by its first presentation; presented by another
//! client, its grant is revoked too).
//!
//! Also proven elsewhere: a public client without PKCE and a wrong verifier
//! (code_flow::public_client_must_use_pkce_and_the_right_verifier), a verifier for a code issued
//! without a challenge (code_flow::verifier_without_challenge_is_refused), a replayed code
//! revoking its tokens (code_flow::oidcc_codereuse).

use portcullis::manage::clients::ClientRequest;
use portcullis::protocol::pkce::s256;
use portcullis::protocol::GrantType;

use crate::common::agent::query_param;
use crate::common::rp::{Rp, REDIRECT};
use crate::common::snapshot::Snapshot;
use crate::common::{assert_oauth_error, Backend, TestServer};
use crate::on_both_databases;

const VERIFIER: &str = "victim-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
const OTHER_VERIFIER: &str = "attacker-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";

async fn rp(backend: Backend) -> Rp {
    Rp::start_with(
        backend,
        true,
        false,
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
    )
    .await
}

/// A code issued to the RP, with an S256 challenge of `verifier` when given.
async fn code(rp: &Rp, verifier: Option<&str>) -> String {
    let pkce = verifier
        .map(|v| format!("&code_challenge={}&code_challenge_method=S256", s256(v)))
        .unwrap_or_default();
    let url = rp
        .authorize(&format!("response_type=code&scope=openid&state=s{pkce}"))
        .await;
    query_param(&url, "code").unwrap_or_else(|| panic!("no code in {url}"))
}

async fn redeem(
    server: &TestServer,
    prefix: &str,
    client: (&str, &str),
    code: &str,
    verifier: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    server
        .post_form(&format!("{prefix}/token"), Some(client), &form)
        .await
}

/// A second confidential client on `server_id`, with the RP's redirect URI.
async fn other_client(server: &TestServer, server_id: &str) -> (String, String) {
    let (client, secret) = server
        .register(ClientRequest {
            server_id: server_id.into(),
            name: "attacker".into(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![],
            scopes: vec![],
            default_scopes: vec![],
            public: false,
            first_party: true,
            auth_method: None,
        })
        .await;
    (client.id, secret.unwrap().expose().to_string())
}

/// RFC 7636 §4.6, RFC 9700 §4.8: a code issued with a challenge is refused without a verifier
/// (downgrade) and with another verifier (a code injected into the victim's session carries
/// the attacker's challenge); `plain` is refused at /authorize.
async fn pkce_downgrade_and_code_injection_are_refused(backend: Backend) {
    let rp = rp(backend).await;
    for attempt in [None, Some(OTHER_VERIFIER), Some("short"), Some("")] {
        let code = code(&rp, Some(VERIFIER)).await;
        let before = Snapshot::take(&rp.server).await;
        let response = redeem(&rp.server, "", rp.credentials(), &code, attempt).await;
        assert_oauth_error(response, 400, "invalid_grant").await;
        let after = Snapshot::take(&rp.server).await;
        // The code is burnt (one guess per code), nothing else moved.
        assert_eq!(
            before.changed_tables(&after),
            ["authorization_codes"],
            "{attempt:?}"
        );
        // Burnt: the right verifier no longer helps.
        let response = redeem(&rp.server, "", rp.credentials(), &code, Some(VERIFIER)).await;
        assert_oauth_error(response, 400, "invalid_grant").await;
    }
    // Control: the right verifier on a fresh code.
    let code = code(&rp, Some(VERIFIER)).await;
    let response = redeem(&rp.server, "", rp.credentials(), &code, Some(VERIFIER)).await;
    assert_eq!(response.status(), 200);
    // The reverse downgrade: `plain`, or a method without a challenge, at /authorize.
    let before = Snapshot::take(&rp.server).await;
    for pkce in [
        format!("&code_challenge={VERIFIER}&code_challenge_method=plain"),
        format!("&code_challenge={VERIFIER}"),
        "&code_challenge_method=S256".to_string(),
        format!(
            "&code_challenge={}&code_challenge_method=S512",
            s256(VERIFIER)
        ),
    ] {
        let url = rp
            .authorize(&format!("response_type=code&scope=openid{pkce}"))
            .await;
        assert_eq!(
            query_param(&url, "error").as_deref(),
            Some("invalid_request"),
            "{pkce}"
        );
        assert!(query_param(&url, "code").is_none());
    }
    before.assert_unchanged(
        &Snapshot::take(&rp.server).await,
        "PKCE downgrade at /authorize",
    );
}

/// RFC 6749 §4.1.3: a code is redeemed only by the client it was issued to, at the server
/// that issued it. Presented by another client, it is burnt and its grant revoked, so the
/// tokens of a leaked code cannot be obtained by anyone.
async fn a_code_of_one_client_or_server_is_refused_for_another(backend: Backend) {
    let rp = rp(backend).await;
    let (b_id, b_secret) = other_client(&rp.server, "default").await;
    rp.server.create_server("other").await;
    let (c_id, c_secret) = other_client(&rp.server, "other").await;
    // Another server of the same deployment: its client cannot even authenticate here, and the
    // code means nothing there.
    let code = code(&rp, None).await;
    let before = Snapshot::take(&rp.server).await;
    let response = redeem(&rp.server, "/oauth2/other", (&c_id, &c_secret), &code, None).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
    let response = redeem(&rp.server, "/oauth2/other", rp.credentials(), &code, None).await;
    assert_oauth_error(response, 401, "invalid_client").await;
    let response = redeem(&rp.server, "", (&c_id, &c_secret), &code, None).await;
    assert_oauth_error(response, 401, "invalid_client").await;
    let after = Snapshot::take(&rp.server).await;
    // At the other server the code is looked up, found foreign, burnt and its grant revoked.
    assert_eq!(
        before.changed_tables(&after),
        ["authorization_codes", "grants"]
    );
    // Another client of the same server.
    let code = self::code(&rp, None).await;
    let before = Snapshot::take(&rp.server).await;
    let response = redeem(&rp.server, "", (&b_id, &b_secret), &code, None).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
    let after = Snapshot::take(&rp.server).await;
    assert_eq!(
        before.changed_tables(&after),
        ["authorization_codes", "grants"]
    );
    for table in ["authorization_codes", "grants"] {
        assert_eq!(before.rows(table), after.rows(table), "no row added");
    }
    // And the rightful client cannot use it any more either.
    let response = redeem(&rp.server, "", rp.credentials(), &code, None).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
}

/// RFC 6749 §6, RFC 9700 §4.14: a refresh token is bound to its client and server; presented
/// by another it is refused and nothing changes (the rightful client can still use it).
async fn a_refresh_token_of_one_client_or_server_is_refused_for_another(backend: Backend) {
    let rp = rp(backend).await;
    let (b_id, b_secret) = other_client(&rp.server, "default").await;
    rp.server.create_server("other").await;
    let (c_id, c_secret) = other_client(&rp.server, "other").await;
    let tokens = rp.code_flow("").await;
    let refresh_token = tokens["refresh_token"].as_str().expect("refresh token");
    let before = Snapshot::take(&rp.server).await;
    for (prefix, client) in [
        ("", (b_id.as_str(), b_secret.as_str())),
        ("/oauth2/other", (c_id.as_str(), c_secret.as_str())),
    ] {
        let response = rp
            .server
            .post_form(
                &format!("{prefix}/token"),
                Some(client),
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await;
        assert_oauth_error(response, 400, "invalid_grant").await;
    }
    // The rightful client at the other server: not a client there.
    let response = rp
        .server
        .post_form(
            "/oauth2/other/token",
            Some(rp.credentials()),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await;
    assert_oauth_error(response, 401, "invalid_client").await;
    before.assert_unchanged(&Snapshot::take(&rp.server).await, "foreign refresh");
    // Control: the rightful client still refreshes.
    assert_eq!(rp.refresh(refresh_token).await.status(), 200);
}

on_both_databases!(
    pkce_downgrade_and_code_injection_are_refused,
    a_code_of_one_client_or_server_is_refused_for_another,
    a_refresh_token_of_one_client_or_server_is_refused_for_another
);
