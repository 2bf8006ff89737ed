//! The policy commands through the real binary: `server show|update`, `scope …`, `claim …`,
//! `client update`, each refusing what breaks a rule with a message that says which.

use serde_json::{json, Value};

use super::{client_token, ok, refused};
use crate::common::rp::REDIRECT;
use crate::common::{Backend, TestServer};
use crate::jwt::{fetch_jwks, verify};
use crate::on_both_databases;

async fn reserved_claim_names_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    ok(&server, "scope create --server default --name hr");
    let reserved =
        "sub iss aud exp iat nbf jti client_id scope auth_time nonce at_hash c_hash azp \
        sid gid acr amr cnf email email_verified name address phone_number preferred_username \
        updated_at";
    for name in reserved.split_whitespace() {
        let stderr = refused(
            &server,
            1,
            &format!("claim create --server default --name {name} --value 1 --scope hr"),
        );
        assert!(stderr.contains("reserved"), "{name}: {stderr}");
    }
    assert_eq!(ok(&server, "claim list --server default"), json!([]));
}

async fn server_policy_round_trips_through_the_cli(backend: Backend) {
    let server = TestServer::start(backend).await;
    let shown = ok(&server, "server show --id default");
    assert_eq!(shown["version"], 1);
    assert_eq!(shown["access_token_ttl"], Value::Null);
    assert_eq!(shown["issuer"], server.base.as_str());

    let update = "server update --id default --name Main --audience api://main \
        --access-token-ttl 15m --id-token-ttl 1h --refresh-token-ttl 30d \
        --refresh-idle-ttl 7d --refresh-reuse-grace 30s --refresh-requires-offline-access true";
    let updated = ok(&server, update);
    assert_eq!(updated["name"], "Main");
    assert_eq!(updated["audience"], "api://main");
    assert_eq!(updated["access_token_ttl"], 900);
    assert_eq!(updated["id_token_ttl"], 3600);
    assert_eq!(updated["refresh_token_ttl"], 30 * 86400);
    assert_eq!(updated["refresh_idle_ttl"], 7 * 86400);
    assert_eq!(updated["refresh_reuse_grace"], 30);
    assert_eq!(updated["refresh_requires_offline_access"], true);
    assert_eq!(updated["version"], 2);
    assert!(updated["updated_at"].as_i64() >= shown["updated_at"].as_i64());
    assert_eq!(
        ok(&server, update)["version"],
        2,
        "no change, no new version"
    );
    assert_eq!(ok(&server, "server show --id default"), updated);

    let cleared = ok(
        &server,
        "server update --id default --access-token-ttl default --refresh-reuse-grace 0 \
         --refresh-requires-offline-access false",
    );
    assert_eq!(cleared["access_token_ttl"], Value::Null);
    assert_eq!(cleared["id_token_ttl"], 3600, "other overrides stay");
    assert_eq!(cleared["refresh_reuse_grace"], 0);
    assert_eq!(cleared["refresh_requires_offline_access"], false);
    assert_eq!(cleared["version"], 3);

    // The running server follows at once: new tokens carry the new audience.
    let (client, secret) = server.service_client("default", &["a"]).await;
    let body: Value = client_token(&server, &client.id, secret.expose(), None)
        .await
        .json()
        .await
        .unwrap();
    let jwks = fetch_jwks(&server.http, &server.url("/keys")).await;
    verify(
        body["access_token"].as_str().unwrap(),
        &jwks,
        &server.base,
        "api://main",
    )
    .expect("the new audience");

    for (flags, why) in [
        ("--refresh-reuse-grace 61s", "longer than 60s"),
        ("--access-token-ttl 0", "at least 1s"),
        ("--id-token-ttl soon", "not a duration"),
        ("--refresh-requires-offline-access yes", "true or false"),
    ] {
        let stderr = refused(&server, 2, &format!("server update --id default {flags}"));
        assert!(stderr.contains(why), "{flags}: {stderr}");
    }
    for line in ["server update --id nope --name x", "server show --id nope"] {
        let stderr = refused(&server, 1, line);
        assert!(
            stderr.contains("no authorization server `nope`"),
            "{stderr}"
        );
    }
}

async fn scopes_round_trip_through_the_cli(backend: Backend) {
    let server = TestServer::start(backend).await;
    let created = ok(
        &server,
        "scope create --server default --name reports --description 'Read reports' --default",
    );
    assert_eq!(created["name"], "reports");
    assert_eq!(created["description"], "Read reports");
    assert_eq!(created["default"], true);
    assert_eq!(ok(&server, "scope list --server default"), json!([created]));
    let stderr = refused(&server, 1, "scope create --server default --name reports");
    assert!(stderr.contains("already exists"), "{stderr}");
    for builtin in [
        "openid",
        "profile",
        "email",
        "address",
        "phone",
        "offline_access",
    ] {
        for verb in ["create", "update", "delete"] {
            let stderr = refused(
                &server,
                1,
                &format!("scope {verb} --server default --name {builtin}"),
            );
            assert!(stderr.contains("built-in"), "{verb} {builtin}: {stderr}");
        }
    }
    let stderr = refused(
        &server,
        1,
        "scope create --server default --name bad\"scope",
    );
    assert!(stderr.contains("not a scope token"), "{stderr}");
    let stderr = refused(&server, 1, "scope list --server nope");
    assert!(stderr.contains("no authorization server"), "{stderr}");
    let updated = ok(
        &server,
        "scope update --server default --name reports --default false",
    );
    assert_eq!(updated["default"], false);
    assert_eq!(updated["description"], "Read reports", "unchanged");

    // A scope still in use by a client or a claim cannot be deleted.
    let (client, _) = server.service_client("default", &["reports"]).await;
    let delete = "scope delete --server default --name reports";
    let stderr = refused(&server, 1, delete);
    assert!(
        stderr.contains("still given to client") && stderr.contains(&client.id),
        "{stderr}"
    );
    ok(
        &server,
        &format!("client update {} --scope other", client.id),
    );
    ok(
        &server,
        r#"claim create --server default --name region --value '"eu"' --scope reports"#,
    );
    let stderr = refused(&server, 1, delete);
    assert!(
        stderr.contains("still releases claim") && stderr.contains("region"),
        "{stderr}"
    );
    ok(&server, "claim delete --server default --name region");
    assert_eq!(ok(&server, delete)["deleted"], "reports");
    let names: Vec<String> = ok(&server, "scope list --server default")
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["other"], "scopes given to clients are registered");
    let stderr = refused(&server, 1, delete);
    assert!(stderr.contains("no scope `reports`"), "{stderr}");
}

async fn claims_round_trip_through_the_cli(backend: Backend) {
    let server = TestServer::start(backend).await;
    ok(&server, "scope create --server default --name reports");
    let created = ok(
        &server,
        r#"claim create --server default --name region --value '"eu"' --scope reports --scope profile"#,
    );
    let listed = ok(&server, "claim list --server default");
    assert_eq!(listed, json!([created]));
    assert_eq!(
        created,
        json!({
            "server": "default",
            "name": "region",
            "value": "eu",
            "scopes": ["profile", "reports"],
            "token_types": ["access_token", "id_token", "userinfo"],
            "created_at": created["created_at"],
        })
    );
    let stderr = refused(
        &server,
        1,
        "claim create --server default --name region --value 1 --scope reports",
    );
    assert!(stderr.contains("already exists"), "{stderr}");

    let create = "claim create --server default --name c";
    for (flags, code, why) in [
        ("--value 'not json' --scope reports", 1, "must be JSON"),
        ("--value null --scope reports", 1, "null"),
        ("--value 1 --scope nosuch", 1, "no scope `nosuch`"),
        ("--attribute '' --scope reports", 1, "must not be empty"),
        ("--scope reports", 2, "--attribute"),
        (
            "--value 1 --attribute x --scope reports",
            2,
            "cannot be used with",
        ),
        ("--value 1", 2, "--scope"),
        (
            "--value 1 --scope reports --token-type cookie",
            2,
            "unknown token type",
        ),
    ] {
        let stderr = refused(&server, code, &format!("{create} {flags}"));
        assert!(stderr.contains(why), "{flags}: {stderr}");
    }
    let stderr = refused(
        &server,
        1,
        "claim create --server default --name 'two words' --value 1 --scope reports",
    );
    assert!(stderr.contains("without spaces"), "{stderr}");

    assert_eq!(
        ok(&server, "claim delete --server default --name region")["deleted"],
        "region"
    );
    let stderr = refused(&server, 1, "claim delete --server default --name region");
    assert!(stderr.contains("no claim `region`"), "{stderr}");
    assert_eq!(ok(&server, "claim list --server default"), json!([]));
}

async fn client_update_keeps_the_registration_rules(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (public, _) = server.web_client(REDIRECT, false, true).await;
    let id = &public.id;
    for (flags, why) in [
        ("--grant-type client_credentials", "public client"),
        ("--grant-type password", "public client"),
        ("--default-scope nope", "--default-scope"),
        ("--redirect-uri http://evil.example/cb", "plain http"),
        ("--redirect-uri https://app.example/cb#frag", "fragment"),
        ("--redirect-uri ''", "--redirect-uri"),
        ("--name ' '", "--name"),
    ] {
        let stderr = refused(&server, 1, &format!("client update {id} {flags}"));
        assert!(stderr.contains(why), "{flags}: {stderr}");
    }
    let stderr = refused(&server, 1, "client update nobody --name x");
    assert!(stderr.contains("no client `nobody`"), "{stderr}");

    let updated = ok(
        &server,
        &format!(
            "client update {id} --name Renamed --first-party true --scope a --scope b \
             --default-scope a --access-token-ttl 5m --id-token-ttl 1m --refresh-token-ttl 1d \
             --redirect-uri https://app.example/cb --redirect-uri com.example.app:/cb \
             --post-logout-redirect-uri https://app.example/bye"
        ),
    );
    assert_eq!(updated["name"], "Renamed");
    assert_eq!(updated["first_party"], true);
    assert_eq!(updated["public"], true);
    assert_eq!(updated["scope"], "a b");
    assert_eq!(updated["default_scope"], "a");
    assert_eq!(updated["access_token_ttl"], 300);
    assert_eq!(updated["id_token_ttl"], 60);
    assert_eq!(updated["refresh_token_ttl"], 86400);
    assert_eq!(
        updated["redirect_uris"],
        json!(["https://app.example/cb", "com.example.app:/cb"])
    );
    assert_eq!(
        updated["post_logout_redirect_uris"],
        json!(["https://app.example/bye"])
    );
    assert_eq!(ok(&server, &format!("client show {id}")), updated);
    let cleared = ok(
        &server,
        &format!("client update {id} --access-token-ttl default --post-logout-redirect-uri ''"),
    );
    assert_eq!(cleared["access_token_ttl"], Value::Null);
    assert_eq!(cleared["id_token_ttl"], 60, "other overrides stay");
    assert_eq!(cleared["post_logout_redirect_uris"], json!([]));
    assert!(cleared.get("client_secret").is_none());
}

/// Ids are base64url: one made before they stopped starting with `-` still works as an argument.
async fn client_ids_starting_with_a_dash_are_not_flags(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (template, _) = server.service_client("default", &["a"]).await;
    let old = portcullis::store::NewClient {
        id: "-old_id".into(),
        server_id: "default".into(),
        name: "old".into(),
        secret_hash: None,
        auth_method: template.auth_method,
        first_party: false,
        grant_types: template.grant_types.clone(),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        scopes: template.scopes.clone(),
        default_scopes: template.default_scopes.clone(),
    };
    server
        .store()
        .insert_client(&old, server.clock_now())
        .await
        .expect("insert");
    assert_eq!(
        ok(&server, "client update -old_id --name Renamed")["name"],
        "Renamed"
    );
    assert_eq!(ok(&server, "client show -old_id")["client_id"], "-old_id");
    assert_eq!(ok(&server, "client delete -old_id")["deleted"], "-old_id");
}

on_both_databases!(
    reserved_claim_names_are_refused,
    server_policy_round_trips_through_the_cli,
    scopes_round_trip_through_the_cli,
    claims_round_trip_through_the_cli,
    client_update_keeps_the_registration_rules,
    client_ids_starting_with_a_dash_are_not_flags,
    a_server_may_require_pkce_of_confidential_clients,
);

/// RFC 9700 §2.1.1: `server update --require-pkce true` makes PKCE (S256) required of
/// confidential clients too: an authorization request without a code_challenge gets
/// invalid_request at the client, with one the flow works; `false` lifts it.
async fn a_server_may_require_pkce_of_confidential_clients(backend: Backend) {
    use crate::common::agent::query_param;
    let rp = crate::common::rp::Rp::start(backend, true).await;
    assert_eq!(
        ok(&rp.server, "server show --id default")["require_pkce"],
        false
    );
    let code = rp
        .authorize("response_type=code&scope=openid&state=a")
        .await;
    assert!(query_param(&code, "code").is_some(), "{code}");
    let updated = ok(&rp.server, "server update --id default --require-pkce true");
    assert_eq!(updated["require_pkce"], true);
    let refused = rp
        .authorize("response_type=code&scope=openid&state=b")
        .await;
    assert_eq!(
        query_param(&refused, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&refused, "code"), None);
    let verifier = "v".repeat(43);
    let challenge = portcullis::protocol::pkce::s256(&verifier);
    let url = rp
        .authorize(&format!(
            "response_type=code&scope=openid&state=c&code_challenge={challenge}&code_challenge_method=S256"
        ))
        .await;
    let code = query_param(&url, "code").expect("a code with PKCE");
    let response = rp
        .server
        .post_form(
            "/token",
            Some(rp.credentials()),
            &[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier.as_str()),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    ok(
        &rp.server,
        "server update --id default --require-pkce false",
    );
    let code = rp
        .authorize("response_type=code&scope=openid&state=d")
        .await;
    assert!(query_param(&code, "code").is_some(), "{code}");
}
