//! Groups, custom user attributes and the claims that read them, through the real binary:
//! `group …`, `user create|update --attribute`, `claim create --attribute|--groups`.

use serde_json::{json, Value};

use super::{access_claims, discovery, ok, refused, strings};
use crate::common::snapshot::Snapshot;
use crate::common::{Backend, TestServer};
use crate::on_both_databases;

const SECRET_WORD: &str = "pw-123-secret";

async fn groups_and_members_round_trip_through_the_cli(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", SECRET_WORD).await;
    server.create_user("grace", SECRET_WORD).await;
    let created = ok(
        &server,
        "group create --name admins --description 'Operators'",
    );
    assert_eq!(created["name"], "admins");
    assert_eq!(created["description"], "Operators");
    ok(&server, "group create --name readers");
    let listed = ok(&server, "group list");
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let shown = ok(&server, "group add-member admins --user ada --user grace");
    assert_eq!(shown["added"], 2);
    let members: Vec<&str> = shown["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["ada", "grace"]);
    assert_eq!(
        ok(&server, "group add-member admins --user ada")["added"],
        0,
        "idempotent"
    );
    ok(&server, "group add-member readers --user ada");
    assert_eq!(
        ok(&server, "user show ada")["groups"],
        json!(["admins", "readers"])
    );

    let shown = ok(&server, "group remove-member admins --user ada");
    assert_eq!(shown["removed"], 1);
    assert_eq!(ok(&server, "user show ada")["groups"], json!(["readers"]));

    let renamed = ok(&server, "group update admins --name operators");
    assert_eq!(renamed["name"], "operators");
    assert_eq!(renamed["description"], "Operators", "kept");
    assert_eq!(
        ok(&server, "user show grace")["groups"],
        json!(["operators"])
    );
    assert_eq!(
        ok(
            &server,
            &format!("group show {}", created["id"].as_str().unwrap())
        )["name"],
        "operators",
        "by id too"
    );
    ok(&server, "group delete operators");
    assert_eq!(ok(&server, "user show grace")["groups"], json!([]));
    let kinds = super::audit_kinds(&server);
    for kind in [
        "group_created",
        "group_updated",
        "group_deleted",
        "group_members_added",
        "group_members_removed",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

async fn password_token(server: &TestServer, id: &str, secret: &str, user: &str) -> Value {
    let response = server
        .post_form(
            "/token",
            Some((id, secret)),
            &[
                ("grant_type", "password"),
                ("username", user),
                ("password", SECRET_WORD),
                ("scope", "openid hr"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200, "password grant");
    response.json().await.expect("token JSON")
}

/// A password-grant client allowed the `hr` scope.
async fn hr_client(server: &TestServer) -> (String, String) {
    ok(server, "scope create --server default --name hr");
    let created = ok(
        server,
        "client create --server default --name hr-app --grant-type password --scope hr",
    );
    (
        created["client_id"].as_str().unwrap().to_string(),
        created["client_secret"].as_str().unwrap().to_string(),
    )
}

async fn attribute_claims_read_attributes_set_from_the_cli(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (id, secret) = hr_client(&server).await;
    let created = ok(
        &server,
        "user create --username eve --attribute department=Sales --attribute 'motto=a b'",
    );
    assert_eq!(
        created["attributes"],
        json!({ "department": "Sales", "motto": "a b" })
    );
    server.create_user("ada", SECRET_WORD).await;
    let updated = ok(
        &server,
        "user update ada --attribute department=Engineering --attribute level=3",
    );
    assert_eq!(
        updated["attributes"],
        json!({ "department": "Engineering", "level": 3 })
    );
    assert_eq!(
        updated["claims"]["email"], "ada@example.com",
        "claims untouched"
    );
    ok(
        &server,
        "claim create --server default --name department --attribute department --scope hr",
    );
    ok(
        &server,
        "claim create --server default --name level --attribute level --scope hr",
    );
    let tokens = password_token(&server, &id, &secret, "ada").await;
    let claims = access_claims(&server, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["department"], "Engineering");
    assert_eq!(claims["level"], 3, "a JSON value stays JSON");

    let updated = ok(
        &server,
        "user update ada --attribute 'teams=[\"core\",\"infra\"]' --unset-attribute level",
    );
    assert_eq!(
        updated["attributes"],
        json!({ "department": "Engineering", "teams": ["core", "infra"] })
    );
    let tokens = password_token(&server, &id, &secret, "ada").await;
    let claims = access_claims(&server, tokens["access_token"].as_str().unwrap()).await;
    assert!(claims.get("level").is_none(), "unset: left out");

    let before = Snapshot::take(&server).await;
    for (line, says) in [
        (
            "user update ada --attribute email=x@example.com",
            "standard claim",
        ),
        ("user update ada --attribute sub=someone", "standard claim"),
        ("user update ada --attribute username=eve", "standard claim"),
        ("user update ada --attribute novalue", "KEY=VALUE"),
        ("user update ada --unset-attribute nothing", "no attribute"),
        (
            "user update ada --attribute a=1 --unset-attribute a",
            "both set and unset",
        ),
        ("user update nobody --attribute a=1", "no user"),
        (
            "user create --username eve --attribute name=Eve",
            "standard claim",
        ),
    ] {
        let output = super::portcullis(&server, line);
        assert!(!output.status.success(), "{line}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{line}: {stderr}");
    }
    let after = Snapshot::take(&server).await;
    before.assert_unchanged_except(&after, &["config_version"], "refused attribute changes");
}

async fn the_groups_claim_is_filtered_and_capped(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (id, secret) = hr_client(&server).await;
    server.create_user("ada", SECRET_WORD).await;
    for group in ["app-billing", "app-hr", "staff"] {
        ok(&server, &format!("group create --name {group}"));
        ok(&server, &format!("group add-member {group} --user ada"));
    }
    let groups_of = |claims: &Value, name: &str| claims.get(name).cloned();
    let created = ok(
        &server,
        "claim create --server default --name groups --groups --scope hr",
    );
    assert_eq!(created["groups"], json!({ "filter": "all", "max": 100 }));
    ok(
        &server,
        "claim create --server default --name apps --groups --filter-prefix app- --scope hr",
    );
    ok(
        &server,
        "claim create --server default --name hr_groups --groups --filter-regex '.*-hr' \
         --scope hr --token-type id_token",
    );
    ok(
        &server,
        "claim create --server default --name chosen --groups --filter-equals staff \
         --filter-equals nobody --scope hr",
    );
    ok(
        &server,
        "claim create --server default --name capped --groups --max-groups 2 --scope hr",
    );
    assert!(strings(&discovery(&server).await["claims_supported"]).contains(&"groups"));

    let tokens = password_token(&server, &id, &secret, "ada").await;
    let access = access_claims(&server, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(
        groups_of(&access, "groups"),
        Some(json!(["app-billing", "app-hr", "staff"]))
    );
    assert_eq!(
        groups_of(&access, "apps"),
        Some(json!(["app-billing", "app-hr"]))
    );
    assert_eq!(groups_of(&access, "chosen"), Some(json!(["staff"])));
    assert_eq!(
        groups_of(&access, "capped"),
        None,
        "three groups, at most two: left out"
    );
    assert_eq!(groups_of(&access, "hr_groups"), None, "for ID tokens only");
    let id_token = crate::jwt::payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(groups_of(&id_token, "hr_groups"), Some(json!(["app-hr"])));

    // Membership is read when the token is issued.
    ok(&server, "group remove-member staff --user ada");
    let tokens = password_token(&server, &id, &secret, "ada").await;
    let access = access_claims(&server, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(
        groups_of(&access, "capped"),
        Some(json!(["app-billing", "app-hr"]))
    );
    assert_eq!(groups_of(&access, "chosen"), Some(json!([])));

    let before = Snapshot::take(&server).await;
    for (code, line, says) in [
        (1, "claim create --server default --name bad --groups --filter-regex '(' --scope hr", "regular expression"),
        (1, "claim create --server default --name big --groups --max-groups 0 --scope hr", "--max-groups"),
        (1, "claim create --server default --name groups --groups --scope hr", "already exists"),
        (2, "claim create --server default --name two --groups --filter-prefix a --filter-regex b --scope hr", "cannot be used with"),
        (1, "claim create --server default --name nog --value 1 --filter-prefix a --scope hr", "--groups"),
    ] {
        let stderr = refused(&server, code, line);
        assert!(stderr.contains(says), "{line}: {stderr}");
    }
    let after = Snapshot::take(&server).await;
    before.assert_unchanged_except(&after, &["config_version"], "refused claim definitions");
}

on_both_databases!(
    groups_and_members_round_trip_through_the_cli,
    attribute_claims_read_attributes_set_from_the_cli,
    the_groups_claim_is_filtered_and_capped,
);
