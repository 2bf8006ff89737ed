//! Token lifecycle: the password grant and lockout, refresh tokens with rotation, reuse
//! detection, the grace period, scope narrowing, client binding, expiry and concurrency.

use portcullis::manage::clients::ClientRequest;
use portcullis::protocol::GrantType;
use serde_json::Value;

use crate::common::{assert_oauth_error, Backend, TestServer};
use crate::on_both_databases;

const PASSWORD: &str = "pw-ada-123";

struct App {
    id: String,
    secret: String,
}

async fn trusted_app(server: &TestServer, grants: &[GrantType]) -> App {
    let (client, secret) = server
        .register(ClientRequest {
            server_id: "default".into(),
            name: "Trusted app".into(),
            grant_types: grants.to_vec(),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: vec!["invoices.read".into()],
            default_scopes: vec![],
            public: false,
            first_party: true,
            auth_method: None,
        })
        .await;
    App {
        id: client.id,
        secret: secret.unwrap().expose().to_string(),
    }
}

async fn password_grant(
    server: &TestServer,
    app: &App,
    user: &str,
    password: &str,
    scope: &str,
) -> reqwest::Response {
    server
        .post_form(
            "/token",
            Some((&app.id, &app.secret)),
            &[
                ("grant_type", "password"),
                ("username", user),
                ("password", password),
                ("scope", scope),
            ],
        )
        .await
}

async fn refresh(
    server: &TestServer,
    app: &App,
    token: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    server
        .post_form("/token", Some((&app.id, &app.secret)), &form)
        .await
}

async fn json(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200, "expected success");
    response.json().await.unwrap()
}

const ALL: &[GrantType] = &[GrantType::Password, GrantType::RefreshToken];

async fn password_grant_issues_tokens_with_an_id_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.create_user("ada", PASSWORD).await;
    let app = trusted_app(&server, ALL).await;
    let body =
        json(password_grant(&server, &app, "ada", PASSWORD, "openid invoices.read").await).await;
    assert_eq!(body["scope"], "invoices.read openid");
    assert!(body["refresh_token"]
        .as_str()
        .is_some_and(|t| t.len() == 43));
    let jwks = crate::jwt::fetch_jwks(&server.http, &server.url("/keys")).await;
    let id = crate::jwt::verify(
        body["id_token"].as_str().unwrap(),
        &jwks,
        &server.base,
        &app.id,
    )
    .unwrap();
    assert_eq!(id["sub"], user.id.as_str());
    let at = crate::jwt::verify(
        body["access_token"].as_str().unwrap(),
        &jwks,
        &server.base,
        "api://default",
    )
    .unwrap();
    assert_eq!(at["sub"], user.id.as_str());
    // Without the refresh_token grant: no refresh token.
    let no_refresh = trusted_app(&server, &[GrantType::Password]).await;
    let body = json(password_grant(&server, &no_refresh, "ada", PASSWORD, "openid").await).await;
    assert!(body.get("refresh_token").is_none());
}

async fn password_grant_failures_are_all_invalid_grant(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.create_user("ada", PASSWORD).await;
    server.create_user("bob", "pw-bob-123").await;
    let app = trusted_app(&server, ALL).await;
    for (u, p) in [("ada", "wrong"), ("nobody", PASSWORD), ("ADA", PASSWORD)] {
        assert_oauth_error(
            password_grant(&server, &app, u, p, "openid").await,
            400,
            "invalid_grant",
        )
        .await;
    }
    // Missing parameters are malformed requests.
    let response = server
        .post_form(
            "/token",
            Some((&app.id, &app.secret)),
            &[("grant_type", "password"), ("username", "ada")],
        )
        .await;
    assert_oauth_error(response, 400, "invalid_request").await;
    // A disabled user gets the same answer.
    server
        .store()
        .set_user_disabled(&user.id, true, server.clock_now())
        .await
        .unwrap();
    assert_oauth_error(
        password_grant(&server, &app, "ada", PASSWORD, "openid").await,
        400,
        "invalid_grant",
    )
    .await;
    // A client not allowed the grant.
    let cc = trusted_app(&server, &[GrantType::ClientCredentials]).await;
    assert_oauth_error(
        password_grant(&server, &cc, "bob", "pw-bob-123", "openid").await,
        400,
        "unauthorized_client",
    )
    .await;
    // A scope the client may not have.
    assert_oauth_error(
        password_grant(&server, &app, "bob", "pw-bob-123", "admin").await,
        400,
        "invalid_scope",
    )
    .await;
}

async fn repeated_failures_lock_the_account_until_unlocked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.create_user("ada", PASSWORD).await;
    let app = trusted_app(&server, ALL).await;
    for _ in 0..5 {
        assert_oauth_error(
            password_grant(&server, &app, "ada", "wrong", "openid").await,
            400,
            "invalid_grant",
        )
        .await;
    }
    // Locked: even the right password fails, with the same error.
    assert_oauth_error(
        password_grant(&server, &app, "ada", PASSWORD, "openid").await,
        400,
        "invalid_grant",
    )
    .await;
    let stored = server.store().user(&user.id).await.unwrap().unwrap();
    assert!(stored.is_locked(server.clock_now()));
    // The login form is locked too.
    let rp_landing = {
        let (client, _) = server
            .web_client("http://127.0.0.1:9/cb", true, false)
            .await;
        let agent = crate::common::UserAgent::new();
        let url = format!("{}/authorize?client_id={}&redirect_uri=http://127.0.0.1:9/cb&response_type=code&scope=openid", server.base, client.id);
        let landing = agent.navigate(&url, &server.base).await;
        agent.sign_in(landing, "ada", PASSWORD, &server.base).await
    };
    let (_, status, _) = rp_landing.page();
    assert_eq!(status, 401);
    // `portcullis user unlock` (the store call behind it) lifts it.
    server
        .store()
        .unlock_user(&user.id, server.clock_now())
        .await
        .unwrap();
    json(password_grant(&server, &app, "ada", PASSWORD, "openid").await).await;
    // And so does time.
    for _ in 0..5 {
        password_grant(&server, &app, "ada", "wrong", "openid").await;
    }
    assert_oauth_error(
        password_grant(&server, &app, "ada", PASSWORD, "openid").await,
        400,
        "invalid_grant",
    )
    .await;
    server.clock.advance(15 * 60 + 1);
    json(password_grant(&server, &app, "ada", PASSWORD, "openid").await).await;
}

async fn refresh_rotates_and_detects_reuse(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", PASSWORD).await;
    let app = trusted_app(&server, ALL).await;
    let first =
        json(password_grant(&server, &app, "ada", PASSWORD, "openid invoices.read").await).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_string();
    let second = json(refresh(&server, &app, &rt1, None).await).await;
    let rt2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2, "every use returns a new refresh token");
    assert!(second["id_token"].is_string(), "a new ID token with openid");
    assert_eq!(second["scope"], "invoices.read openid");
    // Past the grace period, presenting the retired token revokes the family.
    server.clock.advance(31);
    assert_oauth_error(
        refresh(&server, &app, &rt1, None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        refresh(&server, &app, &rt2, None).await,
        400,
        "invalid_grant",
    )
    .await;
    // …and the access tokens of the family.
    let at = second["access_token"].as_str().unwrap();
    let info = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 401);
}

/// RFC 9700 §4.14.2: a retry within the grace period (a lost response, a replay) gets the
/// successor the first use got, so the family never forks into a second live branch.
async fn a_retry_within_the_grace_period_gets_the_same_successor(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", PASSWORD).await;
    let app = trusted_app(&server, ALL).await;
    let first = json(password_grant(&server, &app, "ada", PASSWORD, "openid").await).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_string();
    let a = json(refresh(&server, &app, &rt1, None).await).await;
    server.clock.advance(10);
    let b = json(refresh(&server, &app, &rt1, None).await).await;
    assert_eq!(
        a["refresh_token"], b["refresh_token"],
        "the same successor, not a second branch"
    );
    assert_ne!(a["access_token"], b["access_token"], "fresh access tokens");
    let grant = grant_of(&server, &rt1).await;
    let live = |tokens: &[portcullis::store::RefreshToken]| {
        tokens
            .iter()
            .filter(|t| t.rotated_at.is_none() && t.revoked_at.is_none())
            .count()
    };
    let family = server
        .store()
        .refresh_tokens_of_grant(&grant)
        .await
        .unwrap();
    assert_eq!((family.len(), live(&family)), (2, 1), "one live token");
    // The successor works; past the grace period, replaying the first token revokes the
    // family, the replay's copy of the successor chain included.
    let c = json(refresh(&server, &app, a["refresh_token"].as_str().unwrap(), None).await).await;
    server.clock.advance(31);
    assert_oauth_error(
        refresh(&server, &app, &rt1, None).await,
        400,
        "invalid_grant",
    )
    .await;
    let rt3 = c["refresh_token"].as_str().unwrap();
    assert_oauth_error(
        refresh(&server, &app, rt3, None).await,
        400,
        "invalid_grant",
    )
    .await;
}

async fn refresh_may_narrow_but_not_widen_scope(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", PASSWORD).await;
    let app = trusted_app(&server, ALL).await;
    let first =
        json(password_grant(&server, &app, "ada", PASSWORD, "openid invoices.read").await).await;
    let rt = first["refresh_token"].as_str().unwrap().to_string();
    assert_oauth_error(
        refresh(&server, &app, &rt, Some("openid invoices.read email")).await,
        400,
        "invalid_scope",
    )
    .await;
    let narrowed = json(refresh(&server, &app, &rt, Some("invoices.read")).await).await;
    assert_eq!(narrowed["scope"], "invoices.read");
    assert!(narrowed.get("id_token").is_none(), "no openid, no ID token");
    // The new refresh token keeps the granted scope (RFC 6749 §6).
    let again = json(
        refresh(
            &server,
            &app,
            narrowed["refresh_token"].as_str().unwrap(),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(again["scope"], "invoices.read openid");
}

async fn a_refresh_token_is_bound_to_its_client(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", PASSWORD).await;
    let app = trusted_app(&server, ALL).await;
    let other = trusted_app(&server, ALL).await;
    let first = json(password_grant(&server, &app, "ada", PASSWORD, "openid").await).await;
    let rt = first["refresh_token"].as_str().unwrap();
    assert_oauth_error(
        refresh(&server, &other, rt, None).await,
        400,
        "invalid_grant",
    )
    .await;
    // The rightful client still can.
    json(refresh(&server, &app, rt, None).await).await;
    // Unknown and missing tokens.
    assert_oauth_error(
        refresh(&server, &app, "made-up", None).await,
        400,
        "invalid_grant",
    )
    .await;
    let response = server
        .post_form(
            "/token",
            Some((&app.id, &app.secret)),
            &[("grant_type", "refresh_token")],
        )
        .await;
    assert_oauth_error(response, 400, "invalid_request").await;
}

async fn refresh_tokens_expire_when_idle_and_absolutely(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.tokens.refresh_idle_ttl = portcullis::config::Seconds(600);
        c.tokens.refresh_token_ttl = portcullis::config::Seconds(1000);
    })
    .await;
    server.create_user("ada", PASSWORD).await;
    let app = trusted_app(&server, ALL).await;
    let first = json(password_grant(&server, &app, "ada", PASSWORD, "openid").await).await;
    server.clock.advance(601);
    assert_oauth_error(
        refresh(
            &server,
            &app,
            first["refresh_token"].as_str().unwrap(),
            None,
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    // Used within the idle time, it lives until the family's absolute expiry.
    let second = json(password_grant(&server, &app, "ada", PASSWORD, "openid").await).await;
    server.clock.advance(500);
    let third = json(
        refresh(
            &server,
            &app,
            second["refresh_token"].as_str().unwrap(),
            None,
        )
        .await,
    )
    .await;
    server.clock.advance(501);
    assert_oauth_error(
        refresh(
            &server,
            &app,
            third["refresh_token"].as_str().unwrap(),
            None,
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
}

async fn offline_access_can_be_required(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.tokens.refresh_requires_offline_access = true).await;
    server.create_user("ada", PASSWORD).await;
    let app = trusted_app(&server, ALL).await;
    let without = json(password_grant(&server, &app, "ada", PASSWORD, "openid").await).await;
    assert!(without.get("refresh_token").is_none());
    let with =
        json(password_grant(&server, &app, "ada", PASSWORD, "openid offline_access").await).await;
    assert!(with["refresh_token"].is_string());
}

async fn disabling_a_user_revokes_their_refresh_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.create_user("ada", PASSWORD).await;
    let app = trusted_app(&server, ALL).await;
    let first = json(password_grant(&server, &app, "ada", PASSWORD, "openid").await).await;
    server
        .store()
        .set_user_disabled(&user.id, true, server.clock_now())
        .await
        .unwrap();
    assert_oauth_error(
        refresh(
            &server,
            &app,
            first["refresh_token"].as_str().unwrap(),
            None,
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
}

/// A refresh token stored before successor keys were kept has no successor to give again: its
/// first use rotates it as before, a retry within the grace is refused (`invalid_grant`), and
/// the family is not revoked for it: the successor keeps working.
async fn a_retry_of_a_token_stored_without_a_successor_key_is_refused_without_revoking(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", PASSWORD).await;
    let app = trusted_app(&server, ALL).await;
    let first = json(password_grant(&server, &app, "ada", PASSWORD, "openid").await).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_string();
    // As a row from before migration 0006 looks.
    server
        .execute_sql("UPDATE refresh_tokens SET successor_key = NULL")
        .await;
    let second = json(refresh(&server, &app, &rt1, None).await).await;
    server.clock.advance(5);
    assert_oauth_error(
        refresh(&server, &app, &rt1, None).await,
        400,
        "invalid_grant",
    )
    .await;
    let rt2 = second["refresh_token"].as_str().unwrap();
    json(refresh(&server, &app, rt2, None).await).await;
}

/// Concurrent refreshes of one token: with no grace period exactly one succeeds (and the reuse
/// revokes the family); with a grace period all succeed, and all get the one successor, on
/// whichever replica they land.
async fn concurrent_refreshes_of_one_token(backend: Backend) {
    for grace in [0u64, 30] {
        let server = TestServer::start_with(backend, |c| {
            c.tokens.refresh_reuse_grace = portcullis::config::Seconds(grace)
        })
        .await;
        server.create_user("ada", PASSWORD).await;
        let app = trusted_app(&server, ALL).await;
        let first = json(password_grant(&server, &app, "ada", PASSWORD, "openid").await).await;
        let rt = first["refresh_token"].as_str().unwrap().to_string();
        // Half of them on a second replica of the same database.
        let replica = server
            .replica(|c| c.tokens.refresh_reuse_grace = portcullis::config::Seconds(grace))
            .await
            .expect("replica");
        replica.clock.set(server.clock_now());
        let (servers, app, rt) = ([&server, &replica], &app, &rt);
        let attempts = (0..8).map(|i| async move {
            let response = refresh(servers[i % 2], app, rt, None).await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body["refresh_token"].as_str().map(str::to_string))
        });
        let responses = join_all(attempts.collect()).await;
        let results: Vec<u16> = responses.iter().map(|(status, _)| *status).collect();
        let ok = results.iter().filter(|s| **s == 200).count();
        let successors: std::collections::BTreeSet<_> =
            responses.iter().filter_map(|(_, rt)| rt.clone()).collect();
        assert_eq!(successors.len(), 1, "one successor: {successors:?}");
        assert!(
            results.iter().all(|s| *s == 200 || *s == 400),
            "{results:?}"
        );
        if grace == 0 {
            assert_eq!(ok, 1, "exactly one rotation wins: {results:?}");
        } else {
            assert_eq!(ok, 8, "within the grace period all succeed: {results:?}");
        }
        let families: Vec<_> = server
            .store()
            .refresh_tokens_of_grant(&grant_of(&server, rt).await)
            .await
            .unwrap();
        assert_eq!(
            families.len(),
            2,
            "one grant, one successor: the family never forks"
        );
    }
}

/// The grant is checked, not only the token's own flag: a grant withdrawn by any path (an
/// operator's UPDATE, a revocation on another replica) stops its refresh tokens.
async fn a_refresh_token_of_a_withdrawn_grant_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", PASSWORD).await;
    let app = trusted_app(&server, ALL).await;
    let first = json(password_grant(&server, &app, "ada", PASSWORD, "openid").await).await;
    let rt = first["refresh_token"].as_str().unwrap();
    let grant = grant_of(&server, rt).await;
    server
        .execute_sql(&format!(
            "UPDATE grants SET revoked_at = {} WHERE id = '{grant}'",
            server.clock_now()
        ))
        .await;
    assert_oauth_error(refresh(&server, &app, rt, None).await, 400, "invalid_grant").await;
    let token = server
        .store()
        .refresh_token(&portcullis::security::hash_secret(rt))
        .await
        .unwrap()
        .unwrap();
    assert!(
        token.rotated_at.is_none(),
        "a refused refresh rotates nothing"
    );
}

async fn grant_of(server: &TestServer, rt: &str) -> String {
    let hash = portcullis::security::hash_secret(rt);
    server
        .store()
        .refresh_token(&hash)
        .await
        .unwrap()
        .unwrap()
        .grant_id
}

/// A minimal join_all (no futures crate): poll all concurrently on the runtime.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("ready")).collect()
}

/// A client that loses a scope does not get it back through an older refresh token.
async fn refresh_does_not_reissue_a_scope_the_client_lost(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", PASSWORD).await;
    let app = trusted_app(&server, ALL).await;
    let first =
        json(password_grant(&server, &app, "ada", PASSWORD, "openid invoices.read").await).await;
    let mut client = server.store().client(&app.id).await.unwrap().unwrap();
    client.scopes = portcullis::protocol::ScopeSet::default();
    server
        .store()
        .update_client(&client, server.clock_now())
        .await
        .unwrap();
    let rt = first["refresh_token"].as_str().unwrap();
    let refreshed = json(refresh(&server, &app, rt, None).await).await;
    assert_eq!(refreshed["scope"], "openid");
    let rt = refreshed["refresh_token"].as_str().unwrap();
    assert_oauth_error(
        refresh(&server, &app, rt, Some("invoices.read")).await,
        400,
        "invalid_scope",
    )
    .await;
}

on_both_databases!(
    refresh_does_not_reissue_a_scope_the_client_lost,
    password_grant_issues_tokens_with_an_id_token,
    password_grant_failures_are_all_invalid_grant,
    repeated_failures_lock_the_account_until_unlocked,
    a_burst_of_guesses_gets_at_most_max_failed_attempts,
    unknown_and_known_usernames_cost_the_same_write,
    refresh_rotates_and_detects_reuse,
    a_retry_within_the_grace_period_gets_the_same_successor,
    a_retry_of_a_token_stored_without_a_successor_key_is_refused_without_revoking,
    refresh_may_narrow_but_not_widen_scope,
    a_refresh_token_is_bound_to_its_client,
    refresh_tokens_expire_when_idle_and_absolutely,
    offline_access_can_be_required,
    disabling_a_user_revokes_their_refresh_tokens,
    a_refresh_token_of_a_withdrawn_grant_is_refused,
    concurrent_refreshes_of_one_token,
);

/// The lockout holds under concurrency: each guess reserves an attempt (an atomic increment)
/// before its password is hashed, so a burst of simultaneous guesses gets at most
/// `login.max_failed_attempts` password checks, not as many as arrive before the first failure
/// is written.
async fn a_burst_of_guesses_gets_at_most_max_failed_attempts(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.login.max_failed_attempts = 3;
        // A password check that takes a little while: the burst overlaps it.
        c.passwords.argon2_iterations = 20;
    })
    .await;
    server.create_user("ada", PASSWORD).await;
    let app = trusted_app(&server, ALL).await;
    let burst = (0..24)
        .map(|_| password_grant(&server, &app, "ada", "wrong", "openid"))
        .collect();
    for response in join_all(burst).await {
        assert_oauth_error(response, 400, "invalid_grant").await;
    }
    server.state.audit.flush().await;
    let reasons = crate::audit::all_rows(
        &server,
        "SELECT detail FROM audit_events WHERE kind = 'sign_in_failed'",
    )
    .await;
    assert_eq!(reasons.len(), 24);
    let checked = reasons
        .iter()
        .filter(|d| d.contains("unknown_user_or_wrong_password"))
        .count();
    assert!(checked <= 3, "{checked} guesses were checked: {reasons:?}");
    assert!(checked >= 1, "{reasons:?}");
    // Locked: the right password fails too.
    assert_oauth_error(
        password_grant(&server, &app, "ada", PASSWORD, "openid").await,
        400,
        "invalid_grant",
    )
    .await;
}

/// A failed sign-in costs one committed write whether or not the username exists (on
/// PostgreSQL a commit is the slow part): a wrong password counts toward the user's lockout,
/// an unknown username writes a row of the same cost, so timing does not tell them apart.
async fn unknown_and_known_usernames_cost_the_same_write(backend: Backend) {
    use crate::common::snapshot::Snapshot;
    let server = TestServer::start_with(backend, |c| c.rate_limits.enabled = false).await;
    server.create_user("ada", PASSWORD).await;
    let app = trusted_app(&server, ALL).await;
    let changed_rows = |before: &Snapshot, after: &Snapshot| -> usize {
        before
            .changed_tables(after)
            .iter()
            .filter(|t| t.as_str() != "audit_events")
            .map(|t| {
                let (b, a) = (&before.0[t], &after.0[t]);
                b.iter()
                    .filter(|r| !a.contains(r))
                    .count()
                    .max(a.iter().filter(|r| !b.contains(r)).count())
            })
            .sum()
    };
    for username in ["ada", "nobody", "ada", "nobody-else"] {
        let before = Snapshot::take(&server).await;
        assert_oauth_error(
            password_grant(&server, &app, username, "wrong", "openid").await,
            400,
            "invalid_grant",
        )
        .await;
        let after = Snapshot::take(&server).await;
        assert_eq!(changed_rows(&before, &after), 1, "{username}");
    }
}
