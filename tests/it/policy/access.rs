//! Access policies and their rules, app assignments: set with the real binary on the running
//! server's database, observed at the token and authorization endpoints. The policy decides
//! every grant (code, implicit, password, client credentials, refresh as the grant that started
//! its family); a server without policies behaves as before.

use std::time::{Duration, Instant};

use portcullis::config::Seconds;
use portcullis::manage::clients::ClientRequest;
use portcullis::protocol::GrantType;
use serde_json::Value;

use super::{ok, refused};
use crate::common::agent::{fragment_param, query_param};
use crate::common::rp::{Rp, PASSWORD, REDIRECT, USER};
use crate::common::snapshot::Snapshot;
use crate::common::{assert_oauth_error, Backend, TestServer};
use crate::on_both_databases;

const ALICE: &str = "alice";
const BOB: &str = "bob";
const CAROL: &str = "carol";
const SECRET_WORD: &str = "pw-123-secret";

/// A server with scopes `read` and `admin`, one confidential client allowed every token
/// endpoint grant, users alice (in `admins`), bob and carol (in `contractors`).
struct Setup {
    server: TestServer,
    id: String,
    secret: String,
}

impl Setup {
    async fn start(backend: Backend) -> Self {
        Self::start_on(TestServer::start(backend).await).await
    }

    async fn start_on(server: TestServer) -> Self {
        for scope in ["read", "admin"] {
            ok(
                &server,
                &format!("scope create --server default --name {scope}"),
            );
        }
        let (client, secret) = server
            .register(ClientRequest {
                server_id: "default".into(),
                name: "app".into(),
                grant_types: vec![
                    GrantType::AuthorizationCode,
                    GrantType::Password,
                    GrantType::ClientCredentials,
                    GrantType::RefreshToken,
                ],
                redirect_uris: vec![REDIRECT.into()],
                post_logout_redirect_uris: vec![],
                scopes: vec!["read".into(), "admin".into()],
                default_scopes: vec![],
                public: false,
                first_party: true,
                auth_method: None,
            })
            .await;
        for user in [ALICE, BOB, CAROL] {
            server.create_user(user, SECRET_WORD).await;
        }
        ok(&server, "group create --name admins");
        ok(&server, "group create --name contractors");
        ok(&server, &format!("group add-member admins --user {ALICE}"));
        ok(
            &server,
            &format!("group add-member contractors --user {CAROL}"),
        );
        Self {
            server,
            id: client.id,
            secret: secret.expect("secret").expose().to_string(),
        }
    }

    async fn password(&self, user: &str, scope: &str) -> reqwest::Response {
        self.server
            .post_form(
                "/token",
                Some((&self.id, &self.secret)),
                &[
                    ("grant_type", "password"),
                    ("username", user),
                    ("password", SECRET_WORD),
                    ("scope", scope),
                ],
            )
            .await
    }

    async fn client_credentials(&self, scope: &str) -> reqwest::Response {
        self.server
            .post_form(
                "/token",
                Some((&self.id, &self.secret)),
                &[("grant_type", "client_credentials"), ("scope", scope)],
            )
            .await
    }

    async fn refresh(&self, token: &str) -> reqwest::Response {
        self.server
            .post_form(
                "/token",
                Some((&self.id, &self.secret)),
                &[("grant_type", "refresh_token"), ("refresh_token", token)],
            )
            .await
    }
}

/// 200 with this scope and lifetime.
async fn granted(response: reqwest::Response, scope: &str, expires_in: i64, what: &str) -> Value {
    assert_eq!(response.status(), 200, "{what}");
    let body: Value = response.json().await.expect("token JSON");
    assert_eq!(body["scope"], scope, "{what}: {body}");
    assert_eq!(body["expires_in"], expires_in, "{what}: {body}");
    body
}

/// The error, and that its description names `policy`.
async fn refused_naming(response: reqwest::Response, status: u16, code: &str, policy: &str) {
    assert_eq!(response.status().as_u16(), status, "{code}");
    let body: Value = response.json().await.expect("error JSON");
    assert_eq!(body["error"], code, "{body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains(policy), "{body}");
}

/// The policy of the README: `admins` get 5-minute tokens with any scope, everyone else 1 hour
/// with `read` only (password and code), services `read` by client credentials; contractors
/// may not use the password grant.
fn readme_policy(server: &TestServer) {
    ok(
        server,
        "policy create --server default --name apps --all-clients",
    );
    ok(
        server,
        "rule create --server default --policy apps --name no-contractor-passwords \
         --group contractors --grant-type password --deny",
    );
    ok(
        server,
        "rule create --server default --policy apps --name admins --group admins \
         --access-token-ttl 5m",
    );
    ok(
        server,
        "rule create --server default --policy apps --name people --everyone \
         --grant-type password --grant-type authorization_code \
         --scope openid --scope read --scope offline_access --access-token-ttl 1h",
    );
    ok(
        server,
        "rule create --server default --policy apps --name services \
         --grant-type client_credentials --scope read",
    );
}

async fn the_first_matching_rule_decides_by_grant_type_group_and_scope(backend: Backend) {
    let s = Setup::start(backend).await;
    readme_policy(&s.server);
    // grant type × group membership × scope → allow (scope, lifetime) or deny.
    granted(
        s.password(ALICE, "read admin").await,
        "admin read",
        300,
        "admin, both",
    )
    .await;
    granted(
        s.password(BOB, "read admin").await,
        "read",
        3600,
        "bob: narrowed",
    )
    .await;
    granted(s.password(BOB, "read").await, "read", 3600, "bob: read").await;
    let response = s.password(BOB, "admin").await;
    refused_naming(response, 400, "invalid_scope", "apps").await;
    let response = s.password(CAROL, "read").await;
    refused_naming(response, 400, "invalid_grant", "apps").await;
    granted(
        s.client_credentials("read admin").await,
        "read",
        3600,
        "service: narrowed",
    )
    .await;
    let response = s.client_credentials("admin").await;
    refused_naming(response, 400, "invalid_scope", "apps").await;

    // Without the services rule no rule matches a client on its own behalf.
    ok(
        &s.server,
        "rule delete --server default --policy apps --name services",
    );
    let response = s.client_credentials("read").await;
    refused_naming(response, 400, "unauthorized_client", "apps").await;
    // Without the people rule, bob matches nothing either.
    ok(
        &s.server,
        "rule delete --server default --policy apps --name people",
    );
    let response = s.password(BOB, "read").await;
    refused_naming(response, 400, "invalid_grant", "apps").await;
    granted(s.password(ALICE, "read").await, "read", 300, "alice still").await;
}

async fn code_flow_and_its_exchange_follow_the_policy(backend: Backend) {
    let rp = Rp::start_with(
        backend,
        true,
        false,
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
    )
    .await;
    let server = &rp.server;
    ok(server, "group create --name admins");
    ok(
        server,
        "policy create --server default --name web --all-clients",
    );
    ok(
        server,
        "rule create --server default --policy web --name admins --group admins \
         --access-token-ttl 5m",
    );
    // Not an admin: no rule matches; the client learns access_denied after sign-in.
    let url = rp
        .authorize("response_type=code&scope=openid&state=st")
        .await;
    assert_eq!(
        query_param(&url, "error").as_deref(),
        Some("access_denied"),
        "{url}"
    );
    assert!(query_param(&url, "error_description")
        .unwrap_or_default()
        .contains("web"));
    assert_eq!(query_param(&url, "state").as_deref(), Some("st"));

    ok(server, &format!("group add-member admins --user {USER}"));
    let tokens = rp.code_flow("").await;
    assert_eq!(tokens["expires_in"], 300, "{tokens}");

    // Removed from the group between the authorization request and the exchange: no tokens.
    let url = rp
        .authorize("response_type=code&scope=openid&state=st")
        .await;
    let code = query_param(&url, "code").expect("code");
    ok(server, &format!("group remove-member admins --user {USER}"));
    let response = server
        .post_form(
            "/token",
            Some(rp.credentials()),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    refused_naming(response, 400, "invalid_grant", "web").await;
    let _ = PASSWORD;
}

async fn the_first_policy_by_priority_that_includes_the_client_applies(backend: Backend) {
    let s = Setup::start(backend).await;
    let (other, other_secret) = s.server.service_client("default", &["read"]).await;
    let other_secret = other_secret.expose().to_string();
    ok(
        &s.server,
        &format!(
            "policy create --server default --name strict --priority 1 --client {}",
            s.id
        ),
    );
    ok(
        &s.server,
        "rule create --server default --policy strict --name nobody --deny",
    );
    ok(
        &s.server,
        "policy create --server default --name open --priority 2 --all-clients",
    );
    ok(
        &s.server,
        "rule create --server default --policy open --name all --access-token-ttl 10m",
    );
    refused_naming(
        s.client_credentials("read").await,
        400,
        "unauthorized_client",
        "strict",
    )
    .await;
    refused_naming(
        s.password(BOB, "read").await,
        400,
        "invalid_grant",
        "strict",
    )
    .await;
    let response = s
        .server
        .post_form(
            "/token",
            Some((&other.id, &other_secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    granted(response, "read", 600, "the other client: open").await;

    ok(
        &s.server,
        "policy update --server default --name strict --priority 3",
    );
    granted(s.password(BOB, "read").await, "read", 600, "open first now").await;
    let listed = ok(&s.server, "policy list --server default");
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["open", "strict"], "listed in evaluation order");
}

async fn a_server_without_policies_behaves_as_before(backend: Backend) {
    let s = Setup::start(backend).await;
    granted(
        s.password(CAROL, "read admin").await,
        "admin read",
        3600,
        "default",
    )
    .await;
    granted(
        s.client_credentials("admin").await,
        "admin",
        3600,
        "default",
    )
    .await;
    // A policy for another client only leaves this one under the implicit default.
    let (other, _) = s.server.service_client("default", &["read"]).await;
    ok(
        &s.server,
        &format!(
            "policy create --server default --name theirs --client {}",
            other.id
        ),
    );
    granted(
        s.password(CAROL, "admin").await,
        "admin",
        3600,
        "not its policy",
    )
    .await;
    // The client's own lifetime applies when no rule sets one; a rule's wins over it.
    ok(
        &s.server,
        &format!("client update {} --access-token-ttl 20m", s.id),
    );
    granted(
        s.password(CAROL, "read").await,
        "read",
        1200,
        "client lifetime",
    )
    .await;
    ok(
        &s.server,
        "policy create --server default --name mine --all-clients --priority 0",
    );
    ok(
        &s.server,
        "rule create --server default --policy mine --name all --access-token-ttl 2m",
    );
    granted(
        s.password(CAROL, "read").await,
        "read",
        120,
        "the rule's lifetime wins",
    )
    .await;
}

async fn a_user_removed_from_the_group_loses_the_refresh(backend: Backend) {
    let s = Setup::start(backend).await;
    ok(
        &s.server,
        "policy create --server default --name apps --all-clients",
    );
    // A rule for `password` covers that family's refreshes.
    ok(
        &s.server,
        "rule create --server default --policy apps --name admins --group admins \
         --grant-type password --access-token-ttl 5m",
    );
    let body = granted(s.password(ALICE, "read").await, "read", 300, "admin").await;
    let refresh = body["refresh_token"].as_str().expect("refresh token");
    let body = granted(s.refresh(refresh).await, "read", 300, "refresh as password").await;
    let refresh = body["refresh_token"].as_str().expect("rotated").to_string();

    ok(
        &s.server,
        &format!("group remove-member admins --user {ALICE}"),
    );
    refused_naming(s.refresh(&refresh).await, 400, "invalid_grant", "apps").await;
    ok(
        &s.server,
        &format!("group add-member admins --user {ALICE}"),
    );
    granted(s.refresh(&refresh).await, "read", 300, "back in the group").await;
}

async fn only_assigned_users_get_tokens_directly_or_through_a_group(backend: Backend) {
    let s = Setup::start(backend).await;
    let body = granted(s.password(BOB, "read").await, "read", 3600, "before").await;
    let bob_refresh = body["refresh_token"].as_str().expect("refresh").to_string();
    ok(
        &s.server,
        &format!("client update {} --assignment-required true", s.id),
    );
    let response = s.password(BOB, "read").await;
    assert_oauth_error(response, 400, "invalid_grant").await;
    assert_oauth_error(s.refresh(&bob_refresh).await, 400, "invalid_grant").await;
    // Client credentials have no user to assign.
    granted(s.client_credentials("read").await, "read", 3600, "service").await;

    ok(&s.server, "group create --name staff");
    let shown = ok(
        &s.server,
        &format!("client assign {} --group staff --user {ALICE}", s.id),
    );
    assert_eq!(shown["assignment_required"], true);
    assert_eq!(shown["assignments"].as_array().unwrap().len(), 2, "{shown}");
    granted(
        s.password(ALICE, "read").await,
        "read",
        3600,
        "assigned directly",
    )
    .await;
    ok(&s.server, &format!("group add-member staff --user {BOB}"));
    let body = granted(s.password(BOB, "read").await, "read", 3600, "through staff").await;
    let refresh = body["refresh_token"].as_str().expect("refresh").to_string();
    ok(
        &s.server,
        &format!("client unassign {} --group staff", s.id),
    );
    assert_oauth_error(s.refresh(&refresh).await, 400, "invalid_grant").await;
    ok(
        &s.server,
        &format!("client update {} --assignment-required false", s.id),
    );
    granted(
        s.refresh(&refresh).await,
        "read",
        3600,
        "no longer required",
    )
    .await;
}

async fn an_unassigned_user_gets_access_denied_at_the_authorization_endpoint(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let server = &rp.server;
    ok(
        server,
        &format!("client update {} --assignment-required true", rp.client_id),
    );
    let url = rp
        .authorize("response_type=code&scope=openid&state=st")
        .await;
    assert_eq!(
        query_param(&url, "error").as_deref(),
        Some("access_denied"),
        "{url}"
    );
    ok(
        server,
        &format!("client assign {} --user {USER}", rp.client_id),
    );
    let tokens = rp.code_flow("").await;
    assert!(tokens["access_token"].is_string());

    // The implicit flow is decided as `implicit`: its rule's lifetime, and a deny for it alone.
    ok(
        server,
        "policy create --server default --name web --all-clients",
    );
    ok(
        server,
        "rule create --server default --policy web --name implicit --grant-type implicit \
         --access-token-ttl 2m",
    );
    ok(
        server,
        "rule create --server default --policy web --name code --grant-type authorization_code",
    );
    let url = rp
        .authorize("response_type=token&scope=openid&state=i1")
        .await;
    assert_eq!(
        fragment_param(&url, "expires_in").as_deref(),
        Some("120"),
        "{url}"
    );
    ok(
        server,
        "rule update --server default --policy web --name implicit --deny true",
    );
    let url = rp
        .authorize("response_type=token&scope=openid&state=i2")
        .await;
    assert_eq!(
        fragment_param(&url, "error").as_deref(),
        Some("access_denied"),
        "{url}"
    );
    assert!(
        rp.code_flow("").await["access_token"].is_string(),
        "code still allowed"
    );
}

async fn rule_and_policy_errors_change_nothing(backend: Backend) {
    let s = Setup::start(backend).await;
    readme_policy(&s.server);
    let before = Snapshot::take(&s.server).await;
    for (line, says) in [
        (
            "policy create --server default --name apps --all-clients",
            "already exists",
        ),
        (
            "policy create --server nowhere --name x --all-clients",
            "no authorization server",
        ),
        (
            "policy create --server default --name x --client nobody",
            "no client",
        ),
        (
            "policy create --server default --name x --all-clients --priority -1",
            "priority",
        ),
        (
            "policy show --server default --name nope",
            "no access policy",
        ),
        (
            "policy update --server default --name nope --priority 3",
            "no access policy",
        ),
        (
            "policy delete --server default --name nope",
            "no access policy",
        ),
        (
            "rule create --server default --policy nope --name r",
            "no access policy",
        ),
        (
            "rule create --server default --policy apps --name admins",
            "already exists",
        ),
        (
            "rule create --server default --policy apps --name r --group nobody",
            "no group",
        ),
        (
            "rule create --server default --policy apps --name r --user nobody",
            "no user",
        ),
        (
            "rule create --server default --policy apps --name r --scope nope",
            "no scope",
        ),
        (
            "rule create --server default --policy apps --name r --grant-type magic",
            "unknown grant type",
        ),
        (
            "rule update --server default --policy apps --name nope --deny true",
            "no rule",
        ),
        (
            "rule update --server default --policy apps --name admins --group nobody",
            "no group",
        ),
        (
            "rule delete --server default --policy apps --name nope",
            "no rule",
        ),
        ("group delete admins", "apps/admins"),
        ("group delete contractors", "apps/no-contractor-passwords"),
        ("group create --name admins", "already exists"),
        ("group update admins --name contractors", "already exists"),
        ("group add-member admins --user nobody", "no user"),
        ("group add-member nobody --user alice", "no group"),
        (
            "group remove-member admins --user alice --user nobody",
            "no user",
        ),
        ("client assign nobody --group admins", "no client"),
    ] {
        let stderr = refused(&s.server, 1, line);
        assert!(stderr.contains(says), "{line}: {stderr}");
    }
    let stderr = refused(
        &s.server,
        2,
        "rule create --server default --policy apps --name r --everyone --group admins",
    );
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    let after = Snapshot::take(&s.server).await;
    // Every CLI run ensures the default server exists; on PostgreSQL that statement bumps the
    // configuration counter even when it changes nothing.
    before.assert_unchanged_except(&after, &["config_version"], "refused commands");
}

async fn every_change_is_audited(backend: Backend) {
    let s = Setup::start(backend).await;
    readme_policy(&s.server);
    ok(
        &s.server,
        "rule update --server default --policy apps --name admins --access-token-ttl 10m",
    );
    ok(
        &s.server,
        "rule delete --server default --policy apps --name services",
    );
    ok(
        &s.server,
        "policy update --server default --name apps --description 'All apps'",
    );
    ok(&s.server, "policy delete --server default --name apps");
    let kinds = super::audit_kinds(&s.server);
    for kind in [
        "group_created",
        "group_members_added",
        "access_policy_created",
        "access_policy_updated",
        "access_policy_deleted",
        "access_rule_created",
        "access_rule_updated",
        "access_rule_deleted",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

/// The CLI is another process: the running server sees its change through `config_version`
/// within `cache.refresh_interval`, as another replica's would.
async fn a_replica_picks_up_a_policy_change_within_the_refresh_interval(backend: Backend) {
    const INTERVAL: Duration = Duration::from_secs(1);
    const SLACK: Duration = Duration::from_secs(3);
    let server = TestServer::start_with(backend, |config| {
        config.cache.refresh_interval = Seconds(INTERVAL.as_secs());
    })
    .await;
    let s = Setup::start_on(server).await;
    granted(s.client_credentials("read").await, "read", 3600, "before").await;
    let changed = Instant::now();
    ok(
        &s.server,
        "policy create --server default --name apps --all-clients",
    );
    ok(
        &s.server,
        "rule create --server default --policy apps --name services --access-token-ttl 5m",
    );
    let mut seen = false;
    while changed.elapsed() <= INTERVAL + SLACK {
        let body: Value = s.client_credentials("read").await.json().await.unwrap();
        if body["expires_in"] == 300 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "the policy never applied");
    let changed = Instant::now();
    ok(
        &s.server,
        "rule update --server default --policy apps --name services --deny true",
    );
    let mut seen = false;
    while changed.elapsed() <= INTERVAL + SLACK {
        if s.client_credentials("read").await.status() == 400 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "the deny never applied");
}

on_both_databases!(
    the_first_matching_rule_decides_by_grant_type_group_and_scope,
    code_flow_and_its_exchange_follow_the_policy,
    the_first_policy_by_priority_that_includes_the_client_applies,
    a_server_without_policies_behaves_as_before,
    a_user_removed_from_the_group_loses_the_refresh,
    only_assigned_users_get_tokens_directly_or_through_a_group,
    an_unassigned_user_gets_access_denied_at_the_authorization_endpoint,
    rule_and_policy_errors_change_nothing,
    every_change_is_audited,
    a_replica_picks_up_a_policy_change_within_the_refresh_interval,
);
