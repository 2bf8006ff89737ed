//! Single logout (issue 22): OpenID Connect Back-Channel Logout 1.0 through the durable outbox,
//! Front-Channel Logout 1.0 frames, and what a logout withdraws. Each application is a real HTTP
//! listener (`common::receiver`); the outbox poll is driven with the injected clock.

use std::time::{Duration, Instant};

use portcullis::manage::logout::{update_client_logout, LogoutChanges};
use portcullis::protocol::GrantType;
use serde_json::Value;

use crate::common::agent::query_param;
use crate::common::receiver::{Answer, Receiver};
use crate::common::{Backend, TestServer, UserAgent};
use crate::jwt::{fetch_jwks, typ_of, verify};
use crate::on_both_databases;

const REDIRECT: &str = "http://127.0.0.1:9/cb";
const PASSWORD: &str = "pw-ada-123";
/// How long a test waits for a delivery that should come at once.
const PROMPTLY: Duration = Duration::from_secs(10);

/// A server, a signed-in user agent, and one web app that received tokens in its session.
struct Setup {
    server: TestServer,
    agent: UserAgent,
    client_id: String,
    secret: String,
    user_id: String,
}

impl Setup {
    async fn start(backend: Backend, tweak: impl FnOnce(&mut portcullis::config::Config)) -> Self {
        let server = TestServer::start_with(backend, tweak).await;
        let user = server.create_user("ada", PASSWORD).await;
        let (client, secret) = server
            .web_client_with(
                REDIRECT,
                true,
                false,
                &[GrantType::AuthorizationCode, GrantType::RefreshToken],
            )
            .await;
        Self {
            server,
            agent: UserAgent::new(),
            client_id: client.id,
            secret: secret.expect("confidential").expose().to_string(),
            user_id: user.id,
        }
    }

    async fn set_logout(&self, client_id: &str, changes: LogoutChanges) {
        update_client_logout(self.server.store(), client_id, changes)
            .await
            .expect("logout settings");
    }

    /// A code flow in the agent's session (signing in the first time); the token response.
    async fn code_flow(&self, scope: &str) -> Value {
        let url = format!(
            "{}/authorize?client_id={}&redirect_uri={REDIRECT}&response_type=code&scope={scope}&state=s",
            self.server.base, self.client_id
        );
        let landing = self.agent.navigate(&url, &self.server.base).await;
        let url = match landing {
            crate::common::Landing::Client(url) => url,
            page => self
                .agent
                .sign_in(page, "ada", PASSWORD, &self.server.base)
                .await
                .client_url(),
        };
        let code = query_param(&url, "code").expect("code");
        let response = self
            .server
            .post_form(
                "/token",
                Some((&self.client_id, &self.secret)),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                ],
            )
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("token JSON")
    }

    /// RP-initiated logout with the ID token as hint (no confirmation page).
    async fn logout(&self, id_token: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut form = vec![("id_token_hint", id_token)];
        form.extend_from_slice(extra);
        self.agent
            .http
            .post(self.server.url("/logout"))
            .form(&form)
            .send()
            .await
            .expect("logout")
    }

    async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.server
            .post_form(
                "/token",
                Some((&self.client_id, &self.secret)),
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await
    }

    async fn outbox_depth(&self) -> i64 {
        self.server
            .store()
            .logout_outbox_depth()
            .await
            .expect("depth")
    }

    /// One outbox poll, as every replica runs it.
    async fn poll(&self) -> usize {
        portcullis::logout::send_due(&self.server.state)
            .await
            .expect("poll")
    }
}

fn backchannel(uri: &str) -> LogoutChanges {
    LogoutChanges {
        backchannel_logout_uri: Some(uri.to_string()),
        ..LogoutChanges::default()
    }
}

fn payload(token: &str) -> Value {
    crate::jwt::payload(token)
}

/// Back-Channel Logout §2.4–2.7: ending a session POSTs a logout token, signed with the
/// server's key, to every client that received tokens in it (and no other), before the logout
/// answers; the session's refresh tokens go with it unless they carry offline_access (§2.7
/// leaves it to the OP; README "Single logout").
async fn a_logout_tells_each_client_of_the_session_with_a_signed_logout_token(backend: Backend) {
    let app = Receiver::start(&[]).await;
    let bystander = Receiver::start(&[]).await;
    let s = Setup::start(backend, |_| {}).await;
    s.set_logout(&s.client_id, backchannel(&app.uri)).await;
    // A client with a back-channel URI that received nothing in this session hears nothing.
    let (other, _) = s
        .server
        .web_client_with(
            "http://127.0.0.1:9/other",
            true,
            false,
            &[GrantType::AuthorizationCode],
        )
        .await;
    s.set_logout(&other.id, backchannel(&bystander.uri)).await;

    let online = s.code_flow("openid").await;
    let offline = s.code_flow("openid%20offline_access").await;
    let id_token = online["id_token"].as_str().expect("id token");
    let sid = payload(id_token)["sid"].as_str().expect("sid").to_string();

    let response = s.logout(id_token, &[]).await;
    assert_eq!(response.status(), 200);
    // Sent before the answer (the app answers at once, well inside `logout.page_wait`).
    let tokens = app.tokens();
    assert_eq!(tokens.len(), 1, "one delivery for the one session");
    let token = &tokens[0];
    assert_eq!(typ_of(token).as_deref(), Some("logout+jwt"), "§2.4 typ");
    let jwks = fetch_jwks(&s.server.http, &s.server.url("/keys")).await;
    let claims = verify(token, &jwks, &s.server.base, &s.client_id).expect("signed, for the app");
    assert_eq!(claims["sub"], s.user_id.as_str());
    assert_eq!(claims["sid"], sid.as_str());
    assert!(
        claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object(),
        "{claims}"
    );
    assert!(claims.get("nonce").is_none(), "§2.4: never a nonce");
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!((1..=300).contains(&lifetime), "short-lived: {lifetime} s");
    assert!(
        bystander.tokens().is_empty(),
        "a client outside the session"
    );
    assert_eq!(
        s.outbox_depth().await,
        0,
        "delivered, so gone from the outbox"
    );

    let online_refresh = online["refresh_token"].as_str().expect("refresh token");
    let offline_refresh = offline["refresh_token"].as_str().expect("refresh token");
    crate::common::assert_oauth_error(s.refresh(online_refresh).await, 400, "invalid_grant").await;
    assert_eq!(
        s.refresh(offline_refresh).await.status(),
        200,
        "offline_access outlives the session"
    );
}

/// §2.8 and the outbox: a 503 and a dropped connection are retried with backoff (the same
/// `jti` each time), and a 2xx ends it; the metrics count each outcome.
async fn a_failed_delivery_is_retried_until_the_app_takes_it(backend: Backend) {
    let app = Receiver::start(&[Answer::Status(503), Answer::Drop]).await;
    let s = Setup::start(backend, |_| {}).await;
    s.set_logout(&s.client_id, backchannel(&app.uri)).await;
    let tokens = s.code_flow("openid").await;
    s.logout(tokens["id_token"].as_str().unwrap(), &[]).await;
    assert_eq!(app.tokens().len(), 1, "tried at once");
    assert_eq!(s.outbox_depth().await, 1, "kept for a retry");
    assert_eq!(s.poll().await, 0, "not due before its backoff");
    s.server.clock.advance(1);
    assert_eq!(s.poll().await, 1, "second attempt after 1 s");
    assert_eq!(app.tokens().len(), 2);
    assert_eq!(
        s.outbox_depth().await,
        1,
        "the dropped connection is retried too"
    );
    s.server.clock.advance(1);
    assert_eq!(s.poll().await, 0, "the backoff doubled to 2 s");
    s.server.clock.advance(1);
    assert_eq!(s.poll().await, 1);
    let received = app.tokens();
    assert_eq!(received.len(), 3);
    assert_eq!(s.outbox_depth().await, 0, "delivered");
    let jtis: Vec<Value> = received.iter().map(|t| payload(t)["jti"].clone()).collect();
    assert!(
        jtis.iter().all(|j| *j == jtis[0]),
        "one jti across retries: {jtis:?}"
    );
    let metrics = s.server.state.metrics.encode().expect("metrics");
    for line in [
        "portcullis_logout_deliveries_total{outcome=\"retried\"} 2",
        "portcullis_logout_deliveries_total{outcome=\"sent\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
}

/// After `logout.retry_for` a delivery is given up: out of the outbox, with an audit event.
/// A 400 ends it at once (§2.8: the app refused this token; a retry would not change that).
async fn a_delivery_is_given_up_after_retry_for_and_audited(backend: Backend) {
    let app = Receiver::start(&[Answer::Status(500), Answer::Status(502)]).await;
    let s = Setup::start(backend, |c| {
        c.logout.retry_for = portcullis::config::Seconds(10);
    })
    .await;
    s.set_logout(&s.client_id, backchannel(&app.uri)).await;
    let tokens = s.code_flow("openid").await;
    s.logout(tokens["id_token"].as_str().unwrap(), &[]).await;
    assert_eq!(s.outbox_depth().await, 1);
    s.server.clock.advance(11);
    assert_eq!(s.poll().await, 1);
    assert_eq!(s.outbox_depth().await, 0, "given up");
    assert_eq!(app.tokens().len(), 2);
    s.server.state.audit.flush().await;
    let events = s
        .server
        .store()
        .audit_events(&portcullis::store::AuditFilter {
            server_id: None,
            kind: Some("logout_delivery_failed".into()),
            since: None,
            limit: 10,
        })
        .await
        .expect("audit");
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].detail.contains(&s.client_id), "{:?}", events[0]);

    // A 400 ends a delivery at once.
    let refusing = Receiver::start(&[Answer::Status(400)]).await;
    s.set_logout(&s.client_id, backchannel(&refusing.uri)).await;
    let tokens = s.code_flow("openid").await;
    s.logout(tokens["id_token"].as_str().unwrap(), &[]).await;
    assert_eq!(refusing.tokens().len(), 1);
    assert_eq!(s.outbox_depth().await, 0, "a 400 is final");
}

/// The logout page never waits on a slow app beyond `logout.page_wait`; the delivery stays
/// in the outbox for a later attempt.
async fn the_logout_page_does_not_wait_for_an_app_that_never_answers(backend: Backend) {
    let app = Receiver::start(&[Answer::Hang]).await;
    let s = Setup::start(backend, |c| {
        c.logout.page_wait = portcullis::config::Seconds(1);
        c.logout.delivery_timeout = portcullis::config::Seconds(30);
    })
    .await;
    s.set_logout(&s.client_id, backchannel(&app.uri)).await;
    let tokens = s.code_flow("openid").await;
    let started = Instant::now();
    let response = s.logout(tokens["id_token"].as_str().unwrap(), &[]).await;
    let took = started.elapsed();
    assert_eq!(response.status(), 200);
    assert!(
        took < Duration::from_secs(5),
        "the page waited {took:?} for an app that never answers (page_wait 1 s, timeout 30 s)"
    );
    assert_eq!(
        app.wait_for(1, PROMPTLY).await.len(),
        1,
        "the attempt was made"
    );
    assert_eq!(s.outbox_depth().await, 1, "still owed");
}

/// Front-Channel Logout §2–3: the signed-out page frames each client's front-channel URI, with
/// `iss` and `sid` when the client requires them, allows exactly their origins in its CSP, and
/// then continues to the post_logout_redirect_uri.
async fn the_signed_out_page_frames_each_clients_frontchannel_uri(backend: Backend) {
    let s = Setup::start(backend, |_| {}).await;
    s.set_logout(
        &s.client_id,
        LogoutChanges {
            frontchannel_logout_uri: Some("http://127.0.0.1:9/fc".into()),
            ..LogoutChanges::default()
        },
    )
    .await;
    let tokens = s.code_flow("openid").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let sid = payload(id_token)["sid"].as_str().unwrap().to_string();
    let back = format!("{REDIRECT}/logged-out");
    let response = s
        .logout(
            id_token,
            &[("post_logout_redirect_uri", &back), ("state", "x")],
        )
        .await;
    assert_eq!(
        response.status(),
        200,
        "a page to hold the frames, not a redirect"
    );
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("frame-src http://127.0.0.1:9"), "{csp}");
    let body = crate::common::agent::html_unescape(&response.text().await.unwrap());
    let frame = format!(
        "<iframe src=\"http://127.0.0.1:9/fc?iss={}&sid={sid}\"",
        url::form_urlencoded::byte_serialize(s.server.base.as_bytes()).collect::<String>()
    );
    assert!(body.contains(&frame), "{frame} in:\n{body}");
    assert!(
        body.contains(&format!("content=\"3;url={back}?state=x\"")),
        "continues to the client: {body}"
    );
}

/// Disabling a user (and a new password, deleting them, `user sessions revoke`) ends their
/// sessions the same way: the deliveries are queued in the same transaction and any replica's
/// outbox poll sends them.
async fn disabling_a_user_tells_the_clients_of_their_sessions(backend: Backend) {
    let app = Receiver::start(&[]).await;
    let s = Setup::start(backend, |_| {}).await;
    s.set_logout(&s.client_id, backchannel(&app.uri)).await;
    let tokens = s.code_flow("openid").await;
    let sid = payload(tokens["id_token"].as_str().unwrap())["sid"].clone();
    let now = s.server.clock_now();
    assert!(s
        .server
        .store()
        .set_user_disabled(&s.user_id, true, now)
        .await
        .unwrap());
    assert_eq!(s.outbox_depth().await, 1, "queued with the change");
    assert_eq!(s.poll().await, 1);
    let received = app.wait_for(1, PROMPTLY).await;
    assert_eq!(received.len(), 1);
    assert_eq!(payload(&received[0])["sid"], sid);
    assert_eq!(s.outbox_depth().await, 0);
}

/// Discovery advertises both mechanisms and session support.
async fn discovery_advertises_single_logout(backend: Backend) {
    let server = TestServer::start(backend).await;
    let metadata: Value = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for key in [
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
        "frontchannel_logout_supported",
        "frontchannel_logout_session_supported",
    ] {
        assert_eq!(metadata[key], true, "{key}");
    }
}

/// A logout URI is checked like a redirect URI, before anything is stored.
async fn a_bad_logout_uri_is_refused_and_changes_nothing(backend: Backend) {
    let s = Setup::start(backend, |_| {}).await;
    for bad in [
        "http://app.example/logout",
        "https://app.example/logout#frag",
        "com.example.app:/logout",
        "not a uri",
    ] {
        let refused = update_client_logout(s.server.store(), &s.client_id, backchannel(bad)).await;
        assert!(refused.is_err(), "{bad} accepted");
    }
    let stored = s.server.store().client_logout(&s.client_id).await.unwrap();
    assert_eq!(stored.backchannel_logout_uri, None, "nothing stored");
}

on_both_databases!(
    a_logout_tells_each_client_of_the_session_with_a_signed_logout_token,
    a_failed_delivery_is_retried_until_the_app_takes_it,
    a_delivery_is_given_up_after_retry_for_and_audited,
    the_logout_page_does_not_wait_for_an_app_that_never_answers,
    the_signed_out_page_frames_each_clients_frontchannel_uri,
    disabling_a_user_tells_the_clients_of_their_sessions,
    discovery_advertises_single_logout,
    a_bad_logout_uri_is_refused_and_changes_nothing,
    the_cli_sets_logout_uris_and_refuses_bad_ones_storing_nothing,
);

/// Deliveries across replicas: real `serve` processes on one PostgreSQL database, the logout
/// queued by the CLI (`user sessions revoke`), sent by the replicas' outbox polls.
mod replicas {
    use std::collections::HashSet;
    use std::time::Duration;

    use serde_json::Value;

    use crate::common::agent::{query_param, UserAgent};
    use crate::common::process::http;
    use crate::common::receiver::{Answer, Receiver};
    use crate::common::replicas::{cli, serve_on_free_port, Replica};
    use crate::common::{Backend, TestDatabase};

    const REDIRECT: &str = "http://127.0.0.1:9/cb";
    const PASSWORD: &str = "pw-ada-123";

    struct Cluster {
        db: TestDatabase,
        dir: tempfile::TempDir,
        client: (String, String),
    }

    impl Cluster {
        async fn new(receiver: &Receiver) -> Self {
            let db = TestDatabase::create(Backend::Postgres).await;
            let dir = tempfile::tempdir().expect("tempdir");
            let mut cluster = Self {
                db,
                dir,
                client: (String::new(), String::new()),
            };
            let env = cluster.env(1);
            let created = cli(
                &env,
                &[
                    "client",
                    "create",
                    "--name",
                    "app",
                    "--first-party",
                    "--grant-type",
                    "authorization_code",
                    "--redirect-uri",
                    REDIRECT,
                    "--backchannel-logout-uri",
                    &receiver.uri,
                ],
                "",
            )
            .expect("client create");
            assert_eq!(created["backchannel_logout_uri"], receiver.uri.as_str());
            cluster.client = (
                created["client_id"].as_str().unwrap().to_string(),
                created["client_secret"].as_str().unwrap().to_string(),
            );
            cli(
                &env,
                &["user", "create", "--username", "ada", "--password-stdin"],
                PASSWORD,
            )
            .expect("user create");
            cluster
        }

        /// The configuration every process shares (a CLI run gets a placeholder port).
        fn env(&self, port: u16) -> Vec<(String, String)> {
            vec![
                ("PORTCULLIS_DATABASE_URL".into(), self.db.url.clone()),
                (
                    "PORTCULLIS_ISSUER".into(),
                    format!("http://127.0.0.1:{port}"),
                ),
                ("PORTCULLIS_LOG_FORMAT".into(), "json".into()),
                ("PORTCULLIS_LOGOUT_POLL_INTERVAL".into(), "1s".into()),
                ("PORTCULLIS_LOGOUT_DELIVERY_TIMEOUT".into(), "2s".into()),
            ]
        }

        async fn replica(&self, name: &str) -> Replica {
            let db_url = self.db.url.clone();
            let env_for = move |port: u16| {
                vec![
                    ("PORTCULLIS_DATABASE_URL".into(), db_url.clone()),
                    (
                        "PORTCULLIS_ISSUER".into(),
                        format!("http://127.0.0.1:{port}"),
                    ),
                    ("PORTCULLIS_LOG_FORMAT".into(), "json".into()),
                    ("PORTCULLIS_LOGOUT_POLL_INTERVAL".into(), "1s".into()),
                    ("PORTCULLIS_LOGOUT_DELIVERY_TIMEOUT".into(), "2s".into()),
                ]
            };
            serve_on_free_port(env_for, self.dir.path().join(format!("{name}.log")), false).await
        }

        /// A new browser session at `replica` in which the app received tokens.
        async fn session_with_tokens(&self, replica: &Replica) {
            let base = format!("http://{}", replica.addr());
            let agent = UserAgent::new();
            let url = format!(
                "{base}/authorize?client_id={}&redirect_uri={REDIRECT}&response_type=code&scope=openid&state=s",
                self.client.0
            );
            let landing = agent.navigate(&url, &base).await;
            let back = agent
                .sign_in(landing, "ada", PASSWORD, &base)
                .await
                .client_url();
            let code = query_param(&back, "code").expect("code");
            let response = http()
                .post(format!("{base}/token"))
                .basic_auth(&self.client.0, Some(&self.client.1))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", REDIRECT),
                ])
                .send()
                .await
                .expect("token");
            assert_eq!(response.status(), 200);
        }

        fn revoke_sessions(&self) -> Value {
            cli(&self.env(1), &["user", "sessions", "revoke", "ada"], "").expect("revoke")
        }
    }

    fn jti(token: &str) -> String {
        crate::jwt::payload(token)["jti"]
            .as_str()
            .expect("jti")
            .to_string()
    }

    /// Two replicas poll one outbox: every delivery is sent, and none twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(portcullis_pg_tests),
        ignore = "set PORTCULLIS_TEST_POSTGRES_URL to run against PostgreSQL"
    )]
    async fn two_replicas_deliver_each_logout_exactly_once() {
        let app = Receiver::start(&[]).await;
        let cluster = Cluster::new(&app).await;
        let a = cluster.replica("a").await;
        let b = cluster.replica("b").await;
        const SESSIONS: usize = 8;
        for i in 0..SESSIONS {
            cluster
                .session_with_tokens(if i % 2 == 0 { &a } else { &b })
                .await;
        }
        let revoked = cluster.revoke_sessions();
        assert_eq!(revoked["sessions_ended"], SESSIONS);
        assert_eq!(revoked["backchannel_logouts_queued"], SESSIONS);
        let received = app.wait_for(SESSIONS, Duration::from_secs(20)).await;
        assert_eq!(
            received.len(),
            SESSIONS,
            "every delivery sent:\n{}",
            a.log_text()
        );
        // Both replicas keep polling: a second delivery of any would arrive by now.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let received = app.tokens();
        let distinct: HashSet<String> = received.iter().map(|t| jti(t)).collect();
        assert_eq!(
            (received.len(), distinct.len()),
            (SESSIONS, SESSIONS),
            "each logout token once"
        );
    }

    /// A replica killed while it waits on an app's answer leaves the delivery leased; when the
    /// lease runs out another replica sends it (same jti), so nothing is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(portcullis_pg_tests),
        ignore = "set PORTCULLIS_TEST_POSTGRES_URL to run against PostgreSQL"
    )]
    async fn a_replica_killed_mid_delivery_leaves_it_to_another() {
        let app = Receiver::start(&[Answer::Hang]).await;
        let cluster = Cluster::new(&app).await;
        let mut a = cluster.replica("a").await;
        cluster.session_with_tokens(&a).await;
        assert_eq!(cluster.revoke_sessions()["backchannel_logouts_queued"], 1);
        let first = app.wait_for(1, Duration::from_secs(10)).await;
        assert_eq!(first.len(), 1, "replica a picked it up:\n{}", a.log_text());
        a.kill_9().await;
        let b = cluster.replica("b").await;
        // Lease: 2 × delivery_timeout + 5 s = 9 s from replica a's attempt.
        let both = app.wait_for(2, Duration::from_secs(30)).await;
        assert_eq!(both.len(), 2, "replica b delivered it:\n{}", b.log_text());
        assert_eq!(jti(&both[0]), jti(&both[1]), "the same logout, again");
    }
}

/// The CLI: the logout flags are stored and shown by `client create|update|show`; a bad URI
/// fails the command (non-zero, on stderr) and stores nothing, not even the client.
async fn the_cli_sets_logout_uris_and_refuses_bad_ones_storing_nothing(backend: Backend) {
    use crate::common::replicas::cli;
    let db = crate::common::TestDatabase::create(backend).await;
    let env = vec![
        ("PORTCULLIS_DATABASE_URL".to_string(), db.url.clone()),
        (
            "PORTCULLIS_ISSUER".to_string(),
            "http://127.0.0.1:1".to_string(),
        ),
    ];
    let create = |extra: &[&str]| {
        let mut args = vec![
            "client",
            "create",
            "--name",
            "app",
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
        ];
        args.extend_from_slice(extra);
        cli(&env, &args, "")
    };
    let refused = create(&["--backchannel-logout-uri", "http://app.example/logout"]);
    assert!(refused.is_err_and(|e| e.contains("plain http")), "refused");
    let clients = cli(&env, &["client", "list"], "").expect("list");
    assert_eq!(clients, serde_json::json!([]), "no client left behind");

    let created = create(&[
        "--backchannel-logout-uri",
        "https://app.example/bc",
        "--frontchannel-logout-uri",
        "https://app.example/fc",
        "--frontchannel-logout-session-required",
        "false",
    ])
    .expect("create");
    let id = created["client_id"].as_str().unwrap();
    assert_eq!(created["backchannel_logout_uri"], "https://app.example/bc");
    assert_eq!(created["backchannel_logout_session_required"], true);
    assert_eq!(created["frontchannel_logout_session_required"], false);
    let updated = cli(
        &env,
        &["client", "update", id, "--backchannel-logout-uri", ""],
        "",
    )
    .expect("update");
    assert_eq!(
        updated["backchannel_logout_uri"],
        Value::Null,
        "'' removes it"
    );
    assert!(cli(
        &env,
        &[
            "client",
            "update",
            id,
            "--frontchannel-logout-uri",
            "x:/y#z"
        ],
        ""
    )
    .is_err());
    let shown = cli(&env, &["client", "show", id], "").expect("show");
    assert_eq!(
        shown["frontchannel_logout_uri"], "https://app.example/fc",
        "unchanged"
    );
    assert_eq!(shown["backchannel_logout_uri"], Value::Null);
}
