//! The audit log (issue 7 item 5): every kind of event is recorded after the real action, over
//! HTTP or the CLI; no row ever holds a password, a client secret, a token or a code; and
//! `portcullis audit` filters and orders what it prints.

use std::process::{Command, Output};

use portcullis::manage::clients::ClientRequest;
use portcullis::protocol::GrantType;
use portcullis::store::{AuditEvent, AuditFilter};
use serde_json::Value;

use crate::common::agent::{fragment_param, query_param};
use crate::common::rp::{Rp, PASSWORD, REDIRECT, USER};
use crate::common::{Backend, OutputWithin, TestDatabase, TestServer};
use crate::on_both_databases;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

on_both_databases!(
    a_whole_flow_is_audited_without_any_secret,
    implicit_issuance_is_audited,
    lockout_reuse_and_replay_are_audited,
    key_generation_and_rotation_are_audited,
    cli_changes_are_audited_and_the_audit_command_filters,
    old_events_are_deleted_in_batches,
    failed_sign_ins_store_a_hash_of_the_typed_username,
);

/// The first 16 hex digits of the SHA-256 of `s`, computed here independently of the server.
fn sha256_16(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A password typed into the username field must not land in the audit log: a failed (or
/// rate-limited) sign-in stores `username_sha256`, a hash of the name as typed (trimmed,
/// lower-cased), on the login form and the password grant alike. A successful sign-in names
/// the real username.
async fn failed_sign_ins_store_a_hash_of_the_typed_username(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let server = &rp.server;
    let pasted = "Correct-Horse-Battery-9";
    let page = rp.go("response_type=code&scope=openid&state=st").await;
    let (url, _, body) = page.page();
    let (_, status, _) = rp
        .agent
        .submit(
            &url,
            &body,
            &[("username", pasted), ("password", pasted)],
            &server.base,
        )
        .await
        .page();
    assert_eq!(status, 401);
    let app = password_client(server).await;
    let r = password_grant(server, &app, &format!(" {pasted} "), pasted).await;
    assert_eq!(r.status(), 400);
    let all = events(server).await;
    for event in &all {
        let row = format!("{event:?}");
        assert!(
            !row.to_lowercase().contains(&pasted.to_lowercase()),
            "{row}"
        );
    }
    let failed = of_kind(&all, "sign_in_failed");
    assert_eq!(failed.len(), 2, "{all:#?}");
    for event in failed {
        let detail = detail(event);
        assert_eq!(detail["username_sha256"], sha256_16(&pasted.to_lowercase()));
        assert!(detail.get("username").is_none(), "{detail}");
    }
}

/// Every value of a one-column query, as text (tests read tables the store has no query for).
pub async fn all_rows(server: &TestServer, sql: &str) -> Vec<String> {
    match server.db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
            let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&server.db.url).await.unwrap();
            let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
    }
}

/// Every stored event, after the writer has caught up.
async fn events(server: &TestServer) -> Vec<AuditEvent> {
    server.state.audit.flush().await;
    server
        .store()
        .audit_events(&AuditFilter {
            limit: 10_000,
            ..AuditFilter::default()
        })
        .await
        .expect("audit events")
}

fn of_kind<'a>(events: &'a [AuditEvent], kind: &str) -> Vec<&'a AuditEvent> {
    events.iter().filter(|e| e.kind == kind).collect()
}

fn detail(e: &AuditEvent) -> Value {
    serde_json::from_str(&e.detail).expect("detail is JSON")
}

fn field(tokens: &Value, name: &str) -> String {
    tokens[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {tokens}"))
        .to_string()
}

async fn password_client(server: &TestServer) -> (String, String) {
    let (client, secret) = server
        .register(ClientRequest {
            server_id: "default".into(),
            name: "Trusted app".into(),
            grant_types: vec![GrantType::Password, GrantType::RefreshToken],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: vec![],
            default_scopes: vec![],
            public: false,
            first_party: true,
            auth_method: None,
        })
        .await;
    (client.id, secret.expect("secret").expose().to_string())
}

async fn password_grant(
    server: &TestServer,
    app: &(String, String),
    username: &str,
    password: &str,
) -> reqwest::Response {
    server
        .post_form(
            "/token",
            Some((&app.0, &app.1)),
            &[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
                ("scope", "openid"),
            ],
        )
        .await
}

async fn a_whole_flow_is_audited_without_any_secret(backend: Backend) {
    let rp = Rp::start_with(
        backend,
        true,
        false,
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
    )
    .await;
    let server = &rp.server;
    let mut secrets: Vec<String> = vec![PASSWORD.into(), rp.secret.clone()];

    // A failed sign-in on the form, then the code flow.
    let page = rp.go("response_type=code&scope=openid&state=st").await;
    let (url, _, body) = page.page();
    let failed = rp
        .agent
        .submit(
            &url,
            &body,
            &[("username", USER), ("password", "wrong-guess-1")],
            &server.base,
        )
        .await;
    secrets.push("wrong-guess-1".into());
    let (url, status, body) = failed.page();
    assert_eq!(status, 401);
    let landed = rp
        .agent
        .submit(
            &url,
            &body,
            &[("username", USER), ("password", PASSWORD)],
            &server.base,
        )
        .await
        .client_url();
    let code = query_param(&landed, "code").expect("code");
    let tokens = rp.exchange(&code).await;
    secrets.push(code);
    for name in ["access_token", "refresh_token", "id_token"] {
        secrets.push(field(&tokens, name));
    }
    // Refresh, then revoke the new refresh token.
    let refreshed: Value = rp
        .refresh(&field(&tokens, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    secrets.push(field(&refreshed, "access_token"));
    secrets.push(field(&refreshed, "refresh_token"));
    let revoked = server
        .post_form(
            "/revoke",
            Some(rp.credentials()),
            &[("token", field(&refreshed, "refresh_token").as_str())],
        )
        .await;
    assert_eq!(revoked.status(), 200);
    // Client credentials and the password grant.
    let (service, service_secret) = server.service_client("default", &[]).await;
    secrets.push(service_secret.expose().to_string());
    let access = server
        .client_credentials_token("", (service.id.as_str(), service_secret.expose()))
        .await;
    secrets.push(access);
    let app = password_client(server).await;
    secrets.push(app.1.clone());
    let r = password_grant(server, &app, USER, PASSWORD).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    secrets.push(field(&body, "access_token"));
    secrets.push(field(&body, "refresh_token"));
    secrets.push(field(&body, "id_token"));
    // An access token revoked.
    let r = server
        .post_form(
            "/revoke",
            Some((&app.0, &app.1)),
            &[("token", field(&body, "access_token").as_str())],
        )
        .await;
    assert_eq!(r.status(), 200);

    let all = events(server).await;
    let sign_ins = of_kind(&all, "sign_in");
    assert_eq!(sign_ins.len(), 2, "form and password grant: {all:#?}");
    assert!(sign_ins
        .iter()
        .all(|e| e.subject.as_deref() == Some(rp.user_id.as_str())));
    let via: Vec<Value> = sign_ins.iter().map(|e| detail(e)["via"].clone()).collect();
    assert!(via.contains(&"login".into()) && via.contains(&"password_grant".into()));
    let failed = of_kind(&all, "sign_in_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(detail(failed[0])["username_sha256"], sha256_16(USER));
    assert_eq!(failed[0].actor.as_deref(), Some("ip:127.0.0.1"));
    let issued = of_kind(&all, "token_issued");
    let mut grants: Vec<String> = issued
        .iter()
        .map(|e| detail(e)["grant"].as_str().unwrap().to_string())
        .collect();
    grants.sort();
    assert_eq!(
        grants,
        [
            "authorization_code",
            "client_credentials",
            "password",
            "refresh_token"
        ]
    );
    assert!(issued
        .iter()
        .all(|e| detail(e)["jti"].as_str().is_some_and(|j| !j.is_empty())));
    let revocations = of_kind(&all, "token_revoked");
    let mut types: Vec<String> = revocations
        .iter()
        .map(|e| detail(e)["token_type"].as_str().unwrap().to_string())
        .collect();
    types.sort();
    assert_eq!(types, ["access_token", "refresh_token"]);

    // No row holds a secret: not whole, not as the stored detail.
    let rows = all_rows(
        server,
        "SELECT kind || '|' || COALESCE(server_id, '') || '|' || COALESCE(actor, '') || '|' || \
         COALESCE(subject, '') || '|' || detail FROM audit_events",
    )
    .await;
    assert_eq!(rows.len(), all.len());
    for row in &rows {
        for secret in &secrets {
            assert!(
                !row.contains(secret.as_str()),
                "an audit row holds a secret: {row}"
            );
        }
    }
}

/// Tokens the authorization endpoint hands out (the implicit flow) are audited like those of
/// the token endpoint: with the access token's `jti`, and none for an ID token alone.
async fn implicit_issuance_is_audited(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let url = rp
        .authorize("response_type=id_token%20token&scope=openid%20email&nonce=n1")
        .await;
    let access_token = fragment_param(&url, "access_token").expect("access token");
    let claims = crate::jwt::payload(&access_token);
    let url = rp
        .authorize("response_type=id_token&scope=openid&nonce=n2")
        .await;
    assert!(fragment_param(&url, "id_token").is_some());
    let all = events(&rp.server).await;
    let mut issued = of_kind(&all, "token_issued");
    issued.sort_by_key(|e| e.id);
    assert_eq!(issued.len(), 2, "{issued:?}");
    for e in &issued {
        assert_eq!(detail(e)["grant"], "implicit");
        assert_eq!(detail(e)["client_id"], rp.client_id.as_str());
        assert_eq!(e.subject.as_deref(), Some(rp.user_id.as_str()));
        assert_eq!(
            e.actor.as_deref(),
            Some(format!("client:{}", rp.client_id).as_str())
        );
    }
    assert_eq!(detail(issued[0])["jti"], claims["jti"]);
    let scope = field(&detail(issued[0]), "scope");
    assert!(scope.split(' ').any(|s| s == "email"), "{scope}");
    assert!(
        detail(issued[1]).get("jti").is_none(),
        "an ID token alone has no jti"
    );
    assert!(!all.iter().any(|e| e.detail.contains(&access_token)));
}

async fn lockout_reuse_and_replay_are_audited(backend: Backend) {
    let rp = Rp::start_with(
        backend,
        true,
        false,
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
    )
    .await;
    let server = &rp.server;
    // A code used twice.
    let url = rp
        .authorize("response_type=code&scope=openid&state=st")
        .await;
    let code = query_param(&url, "code").expect("code");
    let tokens = rp.exchange(&code).await;
    let replay = server
        .post_form(
            "/token",
            Some(rp.credentials()),
            &[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(replay.status(), 400);
    // A refresh token reused after its rotation, past the grace period.
    let rp2 = rp.code_flow("").await;
    let old = field(&rp2, "refresh_token");
    assert_eq!(rp.refresh(&old).await.status(), 200);
    server.clock.advance(31);
    assert_eq!(rp.refresh(&old).await.status(), 400);
    // Five failures lock the account.
    let app = password_client(server).await;
    for _ in 0..5 {
        assert_eq!(
            password_grant(server, &app, USER, "wrong").await.status(),
            400
        );
    }

    let all = events(server).await;
    let replays = of_kind(&all, "code_replay");
    assert_eq!(replays.len(), 1, "{all:#?}");
    assert!(!replays[0].detail.contains(&code));
    let reuse = of_kind(&all, "refresh_reuse");
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0].subject.as_deref(), Some(rp.user_id.as_str()));
    assert!(!reuse[0].detail.contains(&old));
    let lockouts = of_kind(&all, "lockout");
    assert_eq!(lockouts.len(), 1);
    assert_eq!(lockouts[0].subject.as_deref(), Some(rp.user_id.as_str()));
    assert_eq!(of_kind(&all, "sign_in_failed").len(), 5);
    let _ = tokens;
}

async fn key_generation_and_rotation_are_audited(backend: Backend) {
    let server = TestServer::start(backend).await;
    let now = server.clock_now();
    server
        .state
        .keys
        .rotate("default", now, 0)
        .await
        .expect("rotate");
    let all = events(&server).await;
    // The built-in admin server's first key is generated at start too.
    let generated: Vec<_> = of_kind(&all, "key_generated")
        .into_iter()
        .filter(|e| e.server_id.as_deref() != Some("admin"))
        .collect();
    assert_eq!(generated.len(), 1, "{all:#?}");
    assert_eq!(generated[0].server_id.as_deref(), Some("default"));
    let rotated = of_kind(&all, "key_rotated");
    assert_eq!(rotated.len(), 1);
    assert_eq!(detail(rotated[0])["generation"], 2);
    // Never the private key.
    assert!(!rotated[0].detail.contains("PRIVATE") && !rotated[0].detail.contains("\"d\""));
}

/// Run the binary on `db`, with `stdin` if given.
fn portcullis(db: &TestDatabase, args: &[&str], stdin: Option<&str>) -> Output {
    let output = Command::new(BIN)
        .args(args)
        .env("PORTCULLIS_DATABASE_URL", &db.url)
        .env("PORTCULLIS_PASSWORDS_ARGON2_MEMORY_KIB", "64")
        .env("PORTCULLIS_PASSWORDS_ARGON2_ITERATIONS", "1")
        .env("PORTCULLIS_LOG_LEVEL", "warn")
        .env_remove("PORTCULLIS_CONFIG")
        .bounded_output_with_stdin(stdin.unwrap_or_default().as_bytes());
    assert!(
        output.status.success(),
        "portcullis {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Run the binary on `db`, expecting it to refuse; its standard error.
fn refused(db: &TestDatabase, args: &[&str]) -> String {
    let output = Command::new(BIN)
        .args(args)
        .env("PORTCULLIS_DATABASE_URL", &db.url)
        .env_remove("PORTCULLIS_CONFIG")
        .bounded_output();
    assert!(!output.status.success(), "portcullis {args:?} succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `portcullis audit ARGS --json`: one JSON object per line.
fn audit_json(db: &TestDatabase, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    stdout(&portcullis(db, &all, None))
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn kinds(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn cli_changes_are_audited_and_the_audit_command_filters(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let password = "cli-pw-Secret-42";
    let user: Value = serde_json::from_str(&stdout(&portcullis(
        &db,
        &["user", "create", "--username", "grace", "--password-stdin"],
        Some(&format!("{password}\n")),
    )))
    .unwrap();
    let user_id = user["id"].as_str().unwrap().to_string();
    portcullis(
        &db,
        &["user", "set-password", "grace", "--password-stdin"],
        Some("another-Pw-7\n"),
    );
    portcullis(&db, &["user", "unlock", "grace"], None);
    portcullis(&db, &["user", "disable", "grace"], None);
    portcullis(&db, &["user", "enable", "grace"], None);
    let client: Value = serde_json::from_str(&stdout(&portcullis(
        &db,
        &[
            "client",
            "create",
            "--name",
            "svc",
            "--grant-type",
            "client_credentials",
        ],
        None,
    )))
    .unwrap();
    let client_id = client["client_id"].as_str().unwrap().to_string();
    let client_secret = client["client_secret"].as_str().unwrap().to_string();
    portcullis(
        &db,
        &["client", "update", &client_id, "--name", "svc2"],
        None,
    );
    let rotated: Value = serde_json::from_str(&stdout(&portcullis(
        &db,
        &["client", "rotate-secret", &client_id],
        None,
    )))
    .unwrap();
    assert_eq!(rotated["client_id"], client_id.as_str());
    let new_secret = rotated["client_secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, client_secret);
    // No such client: refused, and nothing audited.
    assert!(refused(&db, &["client", "rotate-secret", "nobody"]).contains("no client"));
    portcullis(&db, &["client", "delete", &client_id], None);
    portcullis(&db, &["user", "delete", "grace"], None);

    // Newest first, everything.
    let all = audit_json(&db, &[]);
    assert_eq!(
        kinds(&all),
        [
            "user_deleted",
            "client_deleted",
            "client_secret_rotated",
            "client_updated",
            "client_created",
            "user_enabled",
            "user_disabled",
            "user_unlocked",
            "user_password_changed",
            "user_created",
        ]
    );
    assert!(all.iter().all(|l| l["actor"] == "cli"));
    assert_eq!(all[2]["subject"], client_id.as_str());
    assert_eq!(all[4]["subject"], client_id.as_str());
    assert_eq!(all[9]["subject"], user_id.as_str());
    assert_eq!(all[9]["detail"]["username"], "grace");
    for line in &all {
        let text = line.to_string();
        for secret in [
            password,
            "another-Pw-7",
            client_secret.as_str(),
            new_secret.as_str(),
            "$argon2",
        ] {
            assert!(!text.contains(secret), "{text}");
        }
    }
    // Filters.
    assert_eq!(
        kinds(&audit_json(&db, &["--kind", "client_created"])),
        ["client_created"]
    );
    assert_eq!(
        kinds(&audit_json(&db, &["--limit", "2"])),
        ["user_deleted", "client_deleted"]
    );
    assert_eq!(audit_json(&db, &["--since", "1h"]).len(), 10);
    assert_eq!(
        audit_json(&db, &["--since", "2999-01-01T00:00:00Z"]).len(),
        0
    );
    assert_eq!(
        audit_json(&db, &["--since", "2000-01-01T00:00:00Z"]).len(),
        10
    );
    // Client changes name the client's server; user changes have none.
    assert_eq!(
        kinds(&audit_json(&db, &["--server", "default"])),
        [
            "client_deleted",
            "client_secret_rotated",
            "client_updated",
            "client_created"
        ]
    );
    assert!(audit_json(&db, &["--server", "nope"]).is_empty());
    // Text output: one line per event, newest first.
    let text = stdout(&portcullis(&db, &["audit", "--limit", "1"], None));
    assert_eq!(text.lines().count(), 1);
    assert!(
        text.contains("user_deleted") && text.contains("actor=cli"),
        "{text}"
    );
    // A kind that does not exist is a usage error.
    assert!(refused(&db, &["audit", "--kind", "nonsense"]).contains("unknown kind"));
}

async fn old_events_are_deleted_in_batches(backend: Backend) {
    let server = TestServer::start(backend).await;
    let now = server.clock_now();
    let store = server.store();
    let old: Vec<_> = (0..5)
        .map(|i| {
            portcullis::audit::Event::new(portcullis::audit::Kind::SignIn, now - 1000 + i)
                .into_new()
        })
        .collect();
    store.insert_audit_events(&old).await.unwrap();
    let before = events(&server).await.len();
    assert_eq!(store.delete_audit_before(now - 500, 3).await.unwrap(), 3);
    assert_eq!(store.delete_audit_before(now - 500, 3).await.unwrap(), 2);
    assert_eq!(store.delete_audit_before(now - 500, 3).await.unwrap(), 0);
    assert_eq!(events(&server).await.len(), before - 5);
}
