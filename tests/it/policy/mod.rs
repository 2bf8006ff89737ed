//! Per-server policy, set by an operator with the real binary against the running server's
//! database and observed over HTTP: custom scopes and their descriptions, custom claims and
//! the scopes and tokens that carry them, token lifetimes (client over server over default),
//! and clients narrowed to fewer grant types or scopes. `cli` covers the commands themselves.

mod access;
mod cli;
mod groups;

use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::common::agent::{fragment_param, query_param};
use crate::common::rp::{Rp, PASSWORD, REDIRECT, USER};
use crate::common::{assert_oauth_error, Backend, OutputWithin, TestServer, UserAgent};
use crate::jwt::{fetch_jwks, kid_of, verify};
use crate::on_both_databases;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// A command line as an operator types it: words split on spaces, `'…'` quoting one word
/// (`''` is the empty word).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            ' ' if !quoted => out.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(word);
    out
}

/// `portcullis LINE` on the test server's database, as an operator beside it would run it.
pub fn portcullis(server: &TestServer, line: &str) -> Output {
    Command::new(BIN)
        .args(words(line))
        .env("PORTCULLIS_DATABASE_URL", &server.db.url)
        .env("PORTCULLIS_ISSUER", &server.base)
        .env("PORTCULLIS_LOG_LEVEL", "warn")
        .env_remove("PORTCULLIS_CONFIG")
        .bounded_output()
}

/// A command that must succeed: its JSON.
pub fn ok(server: &TestServer, line: &str) -> Value {
    let output = portcullis(server, line);
    assert!(
        output.status.success(),
        "portcullis {line} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

/// A command that must be refused with exit `code` (1: refused, 2: usage): its stderr.
pub fn refused(server: &TestServer, code: i32, line: &str) -> String {
    let output = portcullis(server, line);
    assert_eq!(
        output.status.code(),
        Some(code),
        "portcullis {line}: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The kinds of the audit log's newest events (`audit --json`, one object per line).
pub fn audit_kinds(server: &TestServer) -> Vec<String> {
    let output = portcullis(server, "audit --limit 500 --json");
    assert!(output.status.success(), "audit");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|event| event["kind"].as_str().map(str::to_string))
        .collect()
}

/// A relying party whose user has an attribute beyond the standard claims.
async fn employee_rp(backend: Backend, first_party: bool) -> Rp {
    let server = TestServer::start(backend).await;
    let hash = server
        .state
        .passwords
        .hash(&portcullis::security::Secret::new(PASSWORD))
        .await
        .expect("hash");
    let claims = json!({ "family_name": "Lovelace", "department": "Engineering" });
    let user = server
        .store()
        .insert_user(
            &portcullis::store::NewUser {
                username: portcullis::store::Username::parse(USER).expect("username"),
                password_hash: Some(hash),
                claims: claims.as_object().cloned().unwrap_or_default(),
            },
            server.clock_now(),
        )
        .await
        .expect("insert user");
    let (client, secret) = server.web_client(REDIRECT, first_party, false).await;
    Rp {
        agent: UserAgent::new(),
        client_id: client.id,
        secret: secret.map(|s| s.expose().to_string()).unwrap_or_default(),
        user_id: user.id,
        server,
    }
}

async fn discovery(server: &TestServer) -> Value {
    server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("discovery JSON")
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

pub async fn client_token(
    server: &TestServer,
    id: &str,
    secret: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    server.post_form("/token", Some((id, secret)), &form).await
}

async fn access_claims(server: &TestServer, token: &str) -> Value {
    let jwks = fetch_jwks(&server.http, &server.url("/keys")).await;
    verify(token, &jwks, &server.base, "api://default").expect("access token verifies")
}

fn lifetime(claims: &Value) -> i64 {
    claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat")
}

async fn a_custom_scope_is_described_in_discovery_and_on_the_consent_page(backend: Backend) {
    let rp = employee_rp(backend, false).await;
    let server = &rp.server;
    ok(
        server,
        "scope create --server default --name hr --description 'Read your HR record'",
    );
    let id = &rp.client_id;
    ok(
        server,
        &format!("client update {id} --scope invoices.read --scope hr"),
    );
    assert!(strings(&discovery(server).await["scopes_supported"]).contains(&"hr"));

    let landing = rp.go("response_type=code&scope=openid%20hr").await;
    let (url, status, body) = rp
        .agent
        .sign_in(landing, USER, PASSWORD, &server.base)
        .await
        .page();
    assert_eq!(status, 200);
    assert!(url.path().ends_with("/consent"), "{url}");
    assert!(body.contains("Read your HR record"), "{body}");

    // A new description shows the next time consent is asked.
    ok(
        server,
        "scope update --server default --name hr --description 'See your employee file'",
    );
    let (_, _, body) = rp
        .go("response_type=code&scope=openid%20hr&prompt=consent")
        .await
        .page();
    assert!(body.contains("See your employee file"), "{body}");
}

/// Attribute and static claims go exactly into the tokens their token types name, and only
/// when a scope that releases them is granted.
async fn custom_claims_follow_their_scopes_and_token_types(backend: Backend) {
    let rp = employee_rp(backend, true).await;
    let server = &rp.server;
    let id = &rp.client_id;
    ok(server, "scope create --server default --name hr");
    ok(
        server,
        &format!("client update {id} --scope invoices.read --scope hr"),
    );
    let created = ok(
        server,
        "claim create --server default --name department --attribute department --scope hr \
         --token-type id_token --token-type userinfo",
    );
    assert_eq!(created["attribute"], "department");
    assert_eq!(created["token_types"], json!(["id_token", "userinfo"]));
    let created = ok(
        server,
        r#"claim create --server default --name tier --value '{"level":2}' --scope hr --token-type access_token"#,
    );
    assert_eq!(created["value"], json!({ "level": 2 }));
    let created = ok(
        server,
        "claim create --server default --name login --attribute username --scope hr",
    );
    assert_eq!(
        created["token_types"],
        json!(["access_token", "id_token", "userinfo"]),
        "all three by default"
    );
    ok(
        server,
        "claim create --server default --name badge --attribute badge_number --scope hr",
    );
    let supported = discovery(server).await;
    for name in ["department", "tier", "login", "badge"] {
        assert!(
            strings(&supported["claims_supported"]).contains(&name),
            "{name} in claims_supported"
        );
    }

    // Code flow with the releasing scope.
    let url = rp
        .authorize("response_type=code&scope=openid%20hr&state=s")
        .await;
    let tokens = rp.exchange(&query_param(&url, "code").unwrap()).await;
    let at = tokens["access_token"].as_str().unwrap();
    let access = access_claims(server, at).await;
    assert_eq!(access["tier"], json!({ "level": 2 }));
    assert_eq!(access["login"], USER);
    assert!(access.get("department").is_none(), "not for access tokens");
    assert!(
        access.get("badge").is_none(),
        "a missing attribute is omitted"
    );
    let id_token = rp.id_claims(tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(id_token["department"], "Engineering");
    assert_eq!(id_token["login"], USER);
    assert!(id_token.get("tier").is_none(), "not for ID tokens");
    assert!(id_token.get("badge").is_none());
    let info: Value = rp.userinfo(at).await.json().await.unwrap();
    assert_eq!(info["sub"], rp.user_id.as_str());
    assert_eq!(info["department"], "Engineering");
    assert_eq!(info["login"], USER);
    assert!(info.get("tier").is_none(), "not for userinfo");
    assert!(info.get("badge").is_none());

    // Without the scope: none of them.
    let url = rp
        .authorize("response_type=code&scope=openid&state=s")
        .await;
    let tokens = rp.exchange(&query_param(&url, "code").unwrap()).await;
    let at = tokens["access_token"].as_str().unwrap();
    let access = access_claims(server, at).await;
    let id_token = rp.id_claims(tokens["id_token"].as_str().unwrap()).await;
    let info: Value = rp.userinfo(at).await.json().await.unwrap();
    for name in ["department", "tier", "login"] {
        assert!(access.get(name).is_none(), "{name} in the access token");
        assert!(id_token.get(name).is_none(), "{name} in the ID token");
        assert!(info.get(name).is_none(), "{name} at userinfo");
    }

    // The implicit flow mints the same way.
    let url = rp
        .authorize("response_type=id_token%20token&scope=openid%20hr&nonce=n&state=i")
        .await;
    let access = access_claims(server, &fragment_param(&url, "access_token").unwrap()).await;
    assert_eq!(access["tier"], json!({ "level": 2 }));
    assert!(access.get("department").is_none());
    let id_token = rp
        .id_claims(&fragment_param(&url, "id_token").unwrap())
        .await;
    assert_eq!(id_token["department"], "Engineering");
    assert!(id_token.get("tier").is_none());

    // Deleted: no longer released.
    ok(server, "claim delete --server default --name tier");
    let url = rp
        .authorize("response_type=code&scope=openid%20hr&state=s")
        .await;
    let tokens = rp.exchange(&query_param(&url, "code").unwrap()).await;
    let access = access_claims(server, tokens["access_token"].as_str().unwrap()).await;
    assert!(access.get("tier").is_none());
    assert_eq!(access["login"], USER);
}

/// Client credentials: static claims are released without a user; attribute claims are not.
async fn a_static_claim_is_in_a_client_credentials_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, secret) = server.service_client("default", &["svc", "other"]).await;
    ok(
        &server,
        r#"claim create --server default --name tier --value '"gold"' --scope svc --token-type access_token"#,
    );
    ok(
        &server,
        "claim create --server default --name login --attribute username --scope svc",
    );
    let response = client_token(&server, &client.id, secret.expose(), Some("svc")).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let claims = access_claims(&server, body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["tier"], "gold");
    assert_eq!(claims["sub"], client.id.as_str());
    assert!(claims.get("login").is_none(), "no user, no attribute");
    let response = client_token(&server, &client.id, secret.expose(), Some("other")).await;
    let body: Value = response.json().await.unwrap();
    let claims = access_claims(&server, body["access_token"].as_str().unwrap()).await;
    assert!(claims.get("tier").is_none(), "not released by `other`");
}

/// Lifetimes: the client's override beats the server's, which beats the configuration's.
async fn client_lifetimes_beat_server_lifetimes_beat_the_default(backend: Backend) {
    let rp = employee_rp(backend, true).await;
    let server = &rp.server;
    let (client, secret) = server.service_client("default", &["a"]).await;
    let id = &client.id;
    let issue = || async {
        let response = client_token(server, id, secret.expose(), None).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let claims = access_claims(server, body["access_token"].as_str().unwrap()).await;
        assert_eq!(body["expires_in"].as_i64(), Some(lifetime(&claims)));
        lifetime(&claims)
    };
    assert_eq!(issue().await, 3600, "the configuration's default");
    ok(server, "server update --id default --access-token-ttl 10m");
    assert_eq!(issue().await, 600, "the server's override");
    ok(server, &format!("client update {id} --access-token-ttl 2m"));
    assert_eq!(issue().await, 120, "the client's override");
    ok(
        server,
        &format!("client update {id} --access-token-ttl default"),
    );
    assert_eq!(issue().await, 600, "back to the server's");
    ok(
        server,
        "server update --id default --access-token-ttl default",
    );
    assert_eq!(issue().await, 3600, "back to the default");

    // ID tokens, from the token endpoint and from the authorization endpoint.
    ok(server, "server update --id default --id-token-ttl 5m");
    let tokens = rp.code_flow("").await;
    let id_token = rp.id_claims(tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(lifetime(&id_token), 300);
    let web = &rp.client_id;
    ok(
        server,
        &format!("client update {web} --id-token-ttl 1m --access-token-ttl 90"),
    );
    let tokens = rp.code_flow("").await;
    let id_token = rp.id_claims(tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(lifetime(&id_token), 60);
    assert_eq!(tokens["expires_in"], 90);
    let url = rp
        .authorize("response_type=id_token%20token&scope=openid&nonce=n&state=i")
        .await;
    assert_eq!(fragment_param(&url, "expires_in").as_deref(), Some("90"));
    let id_token = rp
        .id_claims(&fragment_param(&url, "id_token").unwrap())
        .await;
    assert_eq!(lifetime(&id_token), 60);
}

/// A retired key stays published as long as the server's override says a token it signed may
/// live, not only the configuration's default.
async fn a_server_lifetime_keeps_a_retired_key_published(backend: Backend) {
    let server = TestServer::start(backend).await;
    ok(&server, "server update --id default --access-token-ttl 2h");
    let (client, secret) = server.service_client("default", &["a"]).await;
    let response = client_token(&server, &client.id, secret.expose(), None).await;
    let body: Value = response.json().await.unwrap();
    let old_kid = kid_of(body["access_token"].as_str().unwrap());
    server
        .state
        .keys
        .rotate("default", server.clock_now(), 0)
        .await
        .expect("rotate");
    server.clock.advance(3600 + 60);
    let jwks = fetch_jwks(&server.http, &server.url("/keys")).await;
    assert!(
        jwks.find(&old_kid).is_some(),
        "still published after the default lifetime"
    );
    server.clock.advance(3600);
    let jwks = fetch_jwks(&server.http, &server.url("/keys")).await;
    assert!(
        jwks.find(&old_kid).is_none(),
        "gone once its tokens expired"
    );
}

async fn a_client_that_loses_a_grant_type_is_unauthorized(backend: Backend) {
    let rp = employee_rp(backend, true).await;
    let server = &rp.server;
    let (client, secret) = server.service_client("default", &["a"]).await;
    let id = &client.id;
    let response = client_token(server, id, secret.expose(), None).await;
    assert_eq!(response.status(), 200);
    ok(
        server,
        &format!("client update {id} --grant-type authorization_code --redirect-uri {REDIRECT}"),
    );
    let response = client_token(server, id, secret.expose(), None).await;
    assert_oauth_error(response, 400, "unauthorized_client").await;

    // At the authorization endpoint too: the web app loses the implicit grant.
    let web = &rp.client_id;
    ok(
        server,
        &format!("client update {web} --grant-type authorization_code"),
    );
    let url = rp
        .authorize("response_type=id_token%20token&scope=openid&nonce=n&state=i")
        .await;
    assert_eq!(
        fragment_param(&url, "error").as_deref(),
        Some("unauthorized_client")
    );
}

async fn a_client_that_loses_a_scope_gets_invalid_scope(backend: Backend) {
    let rp = employee_rp(backend, true).await;
    let server = &rp.server;
    let (client, secret) = server.service_client("default", &["a", "b"]).await;
    let id = &client.id;
    let response = client_token(server, id, secret.expose(), Some("b")).await;
    assert_eq!(response.status(), 200);
    ok(server, &format!("client update {id} --scope a"));
    let response = client_token(server, id, secret.expose(), Some("b")).await;
    assert_oauth_error(response, 400, "invalid_scope").await;

    let web = &rp.client_id;
    ok(server, &format!("client update {web} --scope reports"));
    let url = rp
        .authorize("response_type=code&scope=openid%20invoices.read&state=s")
        .await;
    assert_eq!(query_param(&url, "error").as_deref(), Some("invalid_scope"));
}

/// A server's default scopes go to a client that asks for none and has no defaults of its own.
async fn server_default_scopes_apply_when_none_is_requested(backend: Backend) {
    let server = TestServer::start(backend).await;
    ok(
        &server,
        "scope create --server default --name reports --default",
    );
    let (client, secret) = server
        .service_client("default", &["reports", "other"])
        .await;
    let id = &client.id;
    let granted = || async {
        let body: Value = client_token(&server, id, secret.expose(), None)
            .await
            .json()
            .await
            .unwrap();
        body["scope"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(granted().await, "reports");
    ok(
        &server,
        &format!("client update {id} --default-scope other"),
    );
    assert_eq!(granted().await, "other", "the client's own defaults win");
    ok(
        &server,
        "scope update --server default --name reports --default false",
    );
    ok(&server, &format!("client update {id} --default-scope ''"));
    assert_eq!(
        granted().await,
        "other reports",
        "no defaults: all its scopes"
    );
}

on_both_databases!(
    a_custom_scope_is_described_in_discovery_and_on_the_consent_page,
    custom_claims_follow_their_scopes_and_token_types,
    a_static_claim_is_in_a_client_credentials_token,
    client_lifetimes_beat_server_lifetimes_beat_the_default,
    a_server_lifetime_keeps_a_retired_key_published,
    a_client_that_loses_a_grant_type_is_unauthorized,
    a_client_that_loses_a_scope_gets_invalid_scope,
    server_default_scopes_apply_when_none_is_requested,
);
