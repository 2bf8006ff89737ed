//! The server configuration in the management API (`/admin/v1/servers/{id}/scopes`, `claims`,
//! `policies` and their `rules`): the rules and messages of `portcullis scope|claim|policy|rule`
//! (both call `manage/`), the API's conventions (problems, ETag and If-Match, merge patches,
//! pages read from the store with a next link), every change audited with the calling client
//! as actor, bad input changing nothing; and the paging of the four list commands.

use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::common::admin::{assert_problem, etag, Admin};
use crate::common::snapshot::Snapshot;
use crate::common::{Backend, TestServer};
use crate::on_both_databases;
use crate::policy::{ok, refused};

const SERVERS: &str = "portcullis.servers.manage";
const POLICIES: &str = "portcullis.policies.manage";

/// The `detail` of an RFC 9457 problem of `slug` with `status`.
async fn problem_detail(response: Response, status: u16, slug: &str) -> String {
    let body = assert_problem(response, status, slug).await;
    body["detail"].as_str().unwrap_or_default().to_string()
}

/// The kinds of the audit events `actor` caused, sorted (events of one second have no order).
async fn audit_kinds_by(server: &TestServer, actor: &str) -> Vec<String> {
    server.state.audit.flush().await;
    let events = server
        .store()
        .audit_events(&portcullis::store::AuditFilter {
            server_id: None,
            kind: None,
            since: None,
            limit: 1000,
        })
        .await
        .expect("audit events");
    let mut kinds: Vec<String> = events
        .into_iter()
        .filter(|e| e.actor.as_deref() == Some(actor) && e.kind != "token_issued")
        .map(|e| e.kind)
        .collect();
    kinds.sort();
    kinds
}

fn sorted(kinds: &[&str]) -> Vec<String> {
    let mut kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
    kinds.sort();
    kinds
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

async fn scopes_are_created_changed_and_deleted_under_the_cli_rules(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Admin::with_scopes(&server, &[SERVERS]).await;
    let scopes = "/admin/v1/servers/default/scopes";

    let (location, created) = admin
        .create(
            scopes,
            json!({"name": "invoices.read", "description": " Read invoices "}),
        )
        .await;
    assert_eq!(location, format!("{scopes}/invoices.read"));
    assert_eq!(created["server"], "default");
    assert_eq!(created["description"], "Read invoices");
    assert_eq!(created["default"], false);
    let current = etag(&admin.get(&location).await);

    // A stale If-Match: 412; the current one: changed.
    let response = admin
        .send_with(
            Method::PATCH,
            &location,
            Some(json!({"default": true})),
            &[("if-match", "\"stale\"")],
        )
        .await;
    assert_problem(response, 412, "precondition-failed").await;
    let response = admin
        .send_with(
            Method::PATCH,
            &location,
            Some(json!({"default": true, "description": "Invoices"})),
            &[("if-match", &current)],
        )
        .await;
    let changed = admin.expect(response, 200).await;
    assert_eq!(changed["default"], true);
    assert_eq!(changed["description"], "Invoices");
    assert!(server
        .store()
        .default_scopes("default")
        .await
        .unwrap()
        .contains("invoices.read"));

    // The CLI's refusals, with its messages.
    let detail = problem_detail(
        admin
            .send(Method::POST, scopes, Some(json!({"name": "invoices.read"})))
            .await,
        409,
        "conflict",
    )
    .await;
    assert!(
        detail.contains("already exists on server `default`"),
        "{detail}"
    );
    let detail = problem_detail(
        admin
            .send(Method::POST, scopes, Some(json!({"name": "openid"})))
            .await,
        400,
        "invalid",
    )
    .await;
    assert!(detail.contains("built-in OpenID Connect scope"), "{detail}");
    assert_problem(
        admin
            .send(Method::DELETE, &format!("{scopes}/profile"), None)
            .await,
        400,
        "invalid",
    )
    .await;
    assert_problem(
        admin
            .send(
                Method::POST,
                "/admin/v1/servers/nope/scopes",
                Some(json!({"name": "x"})),
            )
            .await,
        404,
        "not-found",
    )
    .await;

    // Still given to a client: 409, and the scope stays.
    let (client, _) = server.service_client("default", &["invoices.read"]).await;
    let detail = problem_detail(
        admin.send(Method::DELETE, &location, None).await,
        409,
        "conflict",
    )
    .await;
    assert!(detail.contains(&client.id), "{detail}");
    server.store().delete_client(&client.id).await.unwrap();

    // Deleted; deleting again is still 204; then it is gone.
    let response = admin.send(Method::DELETE, &location, None).await;
    assert_eq!(response.status(), 204);
    let response = admin.send(Method::DELETE, &location, None).await;
    assert_eq!(response.status(), 204);
    assert_problem(admin.get(&location).await, 404, "not-found").await;

    assert_eq!(
        audit_kinds_by(&server, &admin.actor()).await,
        sorted(&["scope_created", "scope_updated", "scope_deleted"])
    );
}

async fn claims_are_created_changed_and_deleted_under_the_cli_rules(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Admin::with_scopes(&server, &[SERVERS]).await;
    let base = "/admin/v1/servers/default";
    admin
        .create(&format!("{base}/scopes"), json!({"name": "hr"}))
        .await;

    let (location, created) = admin
        .create(
            &format!("{base}/claims"),
            json!({"name": "department", "attribute": "dept", "scopes": ["hr"],
                   "token_types": ["id_token"]}),
        )
        .await;
    assert_eq!(location, format!("{base}/claims/department"));
    assert_eq!(created["attribute"], "dept");
    assert_eq!(created["value"], Value::Null);
    assert_eq!(created["token_types"], json!(["id_token"]));

    // Releasing a scope: the scope cannot go.
    assert_problem(
        admin
            .send(Method::DELETE, &format!("{base}/scopes/hr"), None)
            .await,
        409,
        "conflict",
    )
    .await;

    // Switch the source from an attribute to a static value, under If-Match.
    let current = etag(&admin.get(&location).await);
    let response = admin
        .send_with(
            Method::PATCH,
            &location,
            Some(json!({"attribute": null, "value": {"level": 3}})),
            &[("if-match", &current)],
        )
        .await;
    let changed = admin.expect(response, 200).await;
    assert_eq!(changed["value"], json!({"level": 3}));
    assert_eq!(changed["attribute"], Value::Null);
    let stored = server.store().claims("default").await.unwrap();
    assert_eq!(
        stored[0].source,
        portcullis::store::ClaimSource::Static(json!({"level": 3}))
    );
    assert_problem(
        admin
            .send_with(
                Method::PATCH,
                &location,
                Some(json!({"scopes": ["hr", "profile"]})),
                &[("if-match", &current)],
            )
            .await,
        412,
        "precondition-failed",
    )
    .await;

    // A groups claim.
    let (_, groups) = admin
        .create(
            &format!("{base}/claims"),
            json!({"name": "teams", "groups": {"prefix": "team-", "max": 5}, "scopes": ["profile"]}),
        )
        .await;
    assert_eq!(groups["groups"]["prefix"], "team-");
    assert_eq!(groups["groups"]["max"], 5);
    assert_eq!(groups["token_types"].as_array().unwrap().len(), 3);

    assert_eq!(
        admin.send(Method::DELETE, &location, None).await.status(),
        204
    );
    assert_eq!(
        admin.send(Method::DELETE, &location, None).await.status(),
        204
    );
    assert_problem(admin.get(&location).await, 404, "not-found").await;
    assert_eq!(
        audit_kinds_by(&server, &admin.actor()).await,
        sorted(&[
            "scope_created",
            "claim_created",
            "claim_updated",
            "claim_created",
            "claim_deleted"
        ])
    );
}

async fn policies_and_rules_are_managed_by_id_under_the_cli_rules(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Admin::with_scopes(&server, &[POLICIES]).await;
    let (app, _) = server.service_client("default", &["read"]).await;
    let group = server
        .store()
        .insert_group("admins", "", server.clock_now())
        .await
        .unwrap();
    let policies = "/admin/v1/servers/default/policies";

    let (location, policy) = admin
        .create(
            policies,
            json!({"name": "apps", "clients": [app.id], "description": "Apps"}),
        )
        .await;
    let id = policy["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("{policies}/{id}"));
    assert_eq!(policy["priority"], 1);
    assert_eq!(policy["all_clients"], false);
    assert_eq!(policy["rules"], json!([]));

    // Rules: by group name (shown by id), deny; and an allow for everyone with scopes.
    let rules = format!("{location}/rules");
    let (rule_location, rule) = admin
        .create(
            &rules,
            json!({"name": "no-admins-by-password", "groups": ["admins"],
                   "grant_types": ["password"], "action": "deny"}),
        )
        .await;
    assert_eq!(rule["groups"], json!([group.id]));
    assert_eq!(rule["everyone"], false);
    assert_eq!(rule["action"], "deny");
    assert_eq!(rule["scopes"], Value::Null);
    let (_, allow) = admin
        .create(
            &rules,
            json!({"name": "read-only", "scopes": ["read"], "access_token_ttl": 300}),
        )
        .await;
    assert_eq!(allow["everyone"], true);
    assert_eq!(allow["priority"], 2);
    assert_eq!(allow["access_token_ttl"], 300);

    // The policy shows its rules in evaluation order, and the store has them.
    let shown = admin.expect(admin.get(&location).await, 200).await;
    assert_eq!(
        names(shown["rules"].as_array().unwrap()),
        ["no-admins-by-password", "read-only"]
    );
    let stored = server.store().access_policies("default").await.unwrap();
    assert_eq!(stored[0].rules.len(), 2);

    // A rule changed under If-Match: first, then for everyone with any scope.
    let current = etag(&admin.get(&rule_location).await);
    assert_problem(
        admin
            .send_with(
                Method::PATCH,
                &rule_location,
                Some(json!({"priority": 9})),
                &[("if-match", "\"stale\"")],
            )
            .await,
        412,
        "precondition-failed",
    )
    .await;
    let response = admin
        .send_with(
            Method::PATCH,
            &rule_location,
            Some(
                json!({"priority": 5, "everyone": true, "groups": [], "action": "allow",
                        "refresh_token_ttl": 3600}),
            ),
            &[("if-match", &current)],
        )
        .await;
    let changed = admin.expect(response, 200).await;
    assert_eq!(changed["priority"], 5);
    assert_eq!(changed["everyone"], true);
    assert_eq!(changed["action"], "allow");
    assert_eq!(changed["refresh_token_ttl"], 3600);
    let shown = admin.expect(admin.get(&location).await, 200).await;
    assert_eq!(
        names(shown["rules"].as_array().unwrap()),
        ["read-only", "no-admins-by-password"]
    );

    // The policy: every client now, renamed.
    let current = etag(&admin.get(&location).await);
    let response = admin
        .send_with(
            Method::PATCH,
            &location,
            Some(json!({"all_clients": true, "clients": [], "name": "everything"})),
            &[("if-match", &current)],
        )
        .await;
    let changed = admin.expect(response, 200).await;
    assert_eq!(changed["all_clients"], true);
    assert_eq!(changed["name"], "everything");
    assert_eq!(changed["id"], id.as_str());
    // The CLI finds it by its new name.
    let cli = ok(&server, "policy show --server default --name everything");
    assert_eq!(cli["clients"], "all");

    // Delete a rule, then the policy; each idempotent.
    for path in [&rule_location, &rule_location] {
        assert_eq!(admin.send(Method::DELETE, path, None).await.status(), 204);
    }
    assert_problem(admin.get(&rule_location).await, 404, "not-found").await;
    for _ in 0..2 {
        assert_eq!(
            admin.send(Method::DELETE, &location, None).await.status(),
            204
        );
    }
    assert_problem(admin.get(&location).await, 404, "not-found").await;
    assert!(server
        .store()
        .access_policies("default")
        .await
        .unwrap()
        .is_empty());

    assert_eq!(
        audit_kinds_by(&server, &admin.actor()).await,
        sorted(&[
            "access_policy_created",
            "access_rule_created",
            "access_rule_created",
            "access_rule_updated",
            "access_policy_updated",
            "access_rule_deleted",
            "access_policy_deleted"
        ])
    );
}

async fn configuration_routes_need_a_token_with_their_scope(backend: Backend) {
    let server = TestServer::start(backend).await;
    let servers = Admin::with_scopes(&server, &[SERVERS]).await;
    let policies = Admin::with_scopes(&server, &[POLICIES]).await;
    let (location, _) = policies
        .create(
            "/admin/v1/servers/default/policies",
            json!({"name": "p", "all_clients": true}),
        )
        .await;
    let before = Snapshot::take(&server).await;
    let rules = format!("{location}/rules");
    let scoped: &[(&str, &Admin, Method, Value)] = &[
        (
            "/admin/v1/servers/default/scopes",
            &policies,
            Method::GET,
            Value::Null,
        ),
        (
            "/admin/v1/servers/default/scopes",
            &policies,
            Method::POST,
            json!({"name": "x"}),
        ),
        (
            "/admin/v1/servers/default/claims",
            &policies,
            Method::GET,
            Value::Null,
        ),
        (
            "/admin/v1/servers/default/policies",
            &servers,
            Method::GET,
            Value::Null,
        ),
        (&location, &servers, Method::DELETE, Value::Null),
        (&rules, &servers, Method::POST, json!({"name": "r"})),
    ];
    for (path, caller, method, body) in scoped {
        // No token: 401.
        let response = server
            .http
            .request(method.clone(), server.url(path))
            .send()
            .await
            .unwrap();
        assert_problem(response, 401, "unauthorized").await;
        // A token without the route's scope: 403.
        let body = (!body.is_null()).then(|| body.clone());
        let response = caller.send(method.clone(), path, body).await;
        assert_problem(response, 403, "insufficient-scope").await;
    }
    before.assert_unchanged(&Snapshot::take(&server).await, "refused calls");
}

async fn bad_configuration_bodies_change_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Admin::with_scopes(&server, &[SERVERS, POLICIES]).await;
    let base = "/admin/v1/servers/default";
    admin
        .create(&format!("{base}/scopes"), json!({"name": "hr"}))
        .await;
    let (claim, _) = admin
        .create(
            &format!("{base}/claims"),
            json!({"name": "dept", "attribute": "dept", "scopes": ["hr"]}),
        )
        .await;
    let (policy, _) = admin
        .create(
            &format!("{base}/policies"),
            json!({"name": "p", "all_clients": true}),
        )
        .await;
    let (rule, _) = admin
        .create(&format!("{policy}/rules"), json!({"name": "r"}))
        .await;
    let scopes = format!("{base}/scopes");
    let claims = format!("{base}/claims");
    let policies = format!("{base}/policies");
    let rules = format!("{policy}/rules");
    let scope = format!("{base}/scopes/hr");

    let before = Snapshot::take(&server).await;
    let cases: &[(Method, &str, Value, u16, &str)] = &[
        (
            Method::POST,
            &scopes,
            json!({"name": "has space"}),
            400,
            "invalid",
        ),
        (
            Method::POST,
            &scopes,
            json!({"name": "x", "colour": 1}),
            400,
            "bad-request",
        ),
        (
            Method::PATCH,
            &scope,
            json!({"name": "other"}),
            400,
            "invalid",
        ),
        (
            Method::PATCH,
            &scope,
            json!({"default": "yes"}),
            400,
            "bad-request",
        ),
        (
            Method::POST,
            &claims,
            json!({"name": "sub", "attribute": "a", "scopes": ["hr"]}),
            400,
            "invalid",
        ),
        (
            Method::POST,
            &claims,
            json!({"name": "x", "scopes": ["hr"]}),
            400,
            "invalid",
        ),
        (
            Method::POST,
            &claims,
            json!({"name": "x", "attribute": "a", "value": 1, "scopes": ["hr"]}),
            400,
            "invalid",
        ),
        (
            Method::POST,
            &claims,
            json!({"name": "x", "attribute": "a", "scopes": ["nope"]}),
            400,
            "invalid",
        ),
        (
            Method::POST,
            &claims,
            json!({"name": "x", "groups": {"regex": "("}, "scopes": ["hr"]}),
            400,
            "invalid",
        ),
        (
            Method::POST,
            &claims,
            json!({"name": "dept", "attribute": "a", "scopes": ["hr"]}),
            409,
            "conflict",
        ),
        (Method::PATCH, &claim, json!({"value": 1}), 400, "invalid"),
        (Method::PATCH, &claim, json!({"scopes": []}), 400, "invalid"),
        (
            Method::POST,
            &policies,
            json!({"name": "q"}),
            400,
            "invalid",
        ),
        (
            Method::POST,
            &policies,
            json!({"name": "q", "clients": ["nobody"]}),
            400,
            "invalid",
        ),
        (
            Method::POST,
            &policies,
            json!({"name": "q", "all_clients": true, "priority": -1}),
            400,
            "invalid",
        ),
        (
            Method::POST,
            &policies,
            json!({"name": "p", "all_clients": true}),
            409,
            "conflict",
        ),
        (
            Method::PATCH,
            &policy,
            json!({"id": "other"}),
            400,
            "invalid",
        ),
        (
            Method::PATCH,
            &policy,
            json!({"all_clients": false}),
            400,
            "invalid",
        ),
        (
            Method::POST,
            &rules,
            json!({"name": "s", "groups": ["no-such-group"]}),
            400,
            "invalid",
        ),
        (
            Method::POST,
            &rules,
            json!({"name": "s", "grant_types": ["magic"]}),
            400,
            "invalid",
        ),
        (
            Method::POST,
            &rules,
            json!({"name": "s", "scopes": ["nope"]}),
            400,
            "invalid",
        ),
        (
            Method::POST,
            &rules,
            json!({"name": "s", "access_token_ttl": 0}),
            400,
            "invalid",
        ),
        (
            Method::POST,
            &rules,
            json!({"name": "s", "everyone": true, "users": ["x"]}),
            400,
            "invalid",
        ),
        (Method::POST, &rules, json!({"name": "r"}), 409, "conflict"),
        (
            Method::PATCH,
            &rule,
            json!({"everyone": false}),
            400,
            "invalid",
        ),
        (Method::PATCH, &rule, json!({"scopes": []}), 400, "invalid"),
        (
            Method::PATCH,
            &rule,
            json!({"action": "maybe"}),
            400,
            "bad-request",
        ),
    ];
    for (method, path, body, status, slug) in cases {
        let response = admin.send(method.clone(), path, Some(body.clone())).await;
        let got = response.status().as_u16();
        assert_eq!(got, *status, "{method} {path} {body}");
        assert_problem(response, *status, slug).await;
    }
    before.assert_unchanged(&Snapshot::take(&server).await, "bad bodies");
}

async fn configuration_lists_page_from_the_store_with_a_next_link(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_server("paged").await;
    let admin = Admin::with_scopes(&server, &[SERVERS, POLICIES]).await;
    let base = "/admin/v1/servers/paged";
    let mut scope_names = Vec::new();
    for i in 0..5 {
        let name = format!("s{i}");
        admin
            .create(&format!("{base}/scopes"), json!({"name": name}))
            .await;
        admin
            .create(
                &format!("{base}/claims"),
                json!({"name": format!("c{i}"), "value": i, "scopes": [name]}),
            )
            .await;
        scope_names.push(name);
    }
    // Policies in evaluation order: two share a priority (then by name).
    let mut policy_location = String::new();
    for (name, priority) in [("e", 3), ("d", 1), ("c", 2), ("b", 2), ("a", 5)] {
        let (location, _) = admin
            .create(
                &format!("{base}/policies"),
                json!({"name": name, "all_clients": true, "priority": priority}),
            )
            .await;
        if name == "a" {
            policy_location = location;
        }
    }
    for (name, priority) in [("r5", 5), ("r1", 1), ("r3", 3), ("r2", 3), ("r4", 4)] {
        admin
            .create(
                &format!("{policy_location}/rules"),
                json!({"name": name, "priority": priority}),
            )
            .await;
    }

    let scopes = admin.walk(&format!("{base}/scopes"), 2).await;
    assert_eq!(names(&scopes), scope_names);
    let claims = admin.walk(&format!("{base}/claims"), 2).await;
    assert_eq!(names(&claims), ["c0", "c1", "c2", "c3", "c4"]);
    let policies = admin.walk(&format!("{base}/policies"), 2).await;
    assert_eq!(names(&policies), ["d", "b", "c", "e", "a"]);
    let rules = admin.walk(&format!("{policy_location}/rules"), 2).await;
    assert_eq!(names(&rules), ["r1", "r2", "r3", "r4", "r5"]);
    // One page holds them all, without a link.
    let response = admin.get(&format!("{base}/scopes?limit=5")).await;
    assert!(response.headers().get("link").is_none());
    // A cursor this API did not give.
    assert_problem(
        admin.get(&format!("{base}/policies?cursor=bm9wZQ")).await,
        400,
        "bad-request",
    )
    .await;
}

/// `scope list`, `claim list`, `policy list` and `rule list` take `--limit` and `--after` (the
/// last name of the previous page), and keep their JSON.
async fn the_configuration_list_commands_page(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_server("paged").await;
    for i in 0..3 {
        ok(&server, &format!("scope create --server paged --name s{i}"));
        ok(
            &server,
            &format!("claim create --server paged --name c{i} --value {i} --scope s{i}"),
        );
    }
    for (name, priority) in [("b", 2), ("a", 2), ("z", 1)] {
        ok(
            &server,
            &format!(
                "policy create --server paged --name {name} --all-clients --priority {priority}"
            ),
        );
    }
    for (name, priority) in [("r2", 2), ("r1", 1), ("r0", 2)] {
        ok(
            &server,
            &format!("rule create --server paged --policy a --name {name} --priority {priority}"),
        );
    }
    let walk = |command: &str, key: &str| {
        let mut seen = Vec::new();
        let mut line = format!("{command} --limit 2");
        loop {
            let page = ok(&server, &line);
            let page = page.as_array().unwrap().clone();
            assert!(page.len() <= 2, "{line}");
            let Some(last) = page.last() else { break };
            let last = last[key].as_str().unwrap().to_string();
            seen.extend(page.iter().map(|i| i[key].as_str().unwrap().to_string()));
            line = format!("{command} --limit 2 --after {last}");
        }
        // Unpaged: the same list.
        let all = ok(&server, command);
        let all: Vec<String> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i[key].as_str().unwrap().to_string())
            .collect();
        assert_eq!(seen, all, "{command}");
        seen
    };
    assert_eq!(
        walk("scope list --server paged", "name"),
        ["s0", "s1", "s2"]
    );
    assert_eq!(
        walk("claim list --server paged", "name"),
        ["c0", "c1", "c2"]
    );
    assert_eq!(walk("policy list --server paged", "name"), ["z", "a", "b"]);
    assert_eq!(
        walk("rule list --server paged --policy a", "name"),
        ["r1", "r0", "r2"]
    );
    // The policy list still shows each policy's rules.
    let first = ok(&server, "policy list --server paged --after z --limit 1");
    assert_eq!(first[0]["name"], "a");
    assert_eq!(first[0]["rules"].as_array().unwrap().len(), 3);
    for bad in [
        "scope list --server paged --limit 0",
        "claim list --server paged --limit 1001",
        "policy list --server paged --limit x",
    ] {
        refused(&server, 2, bad);
    }
    let stderr = refused(&server, 1, "policy list --server paged --after nope");
    assert!(stderr.contains("no access policy `nope`"), "{stderr}");
    // The CLI's changes are audited too, as the CLI's.
    let kinds = crate::policy::audit_kinds(&server);
    for kind in [
        "scope_created",
        "claim_created",
        "access_policy_created",
        "access_rule_created",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

on_both_databases!(
    scopes_are_created_changed_and_deleted_under_the_cli_rules,
    claims_are_created_changed_and_deleted_under_the_cli_rules,
    policies_and_rules_are_managed_by_id_under_the_cli_rules,
    configuration_routes_need_a_token_with_their_scope,
    bad_configuration_bodies_change_nothing,
    configuration_lists_page_from_the_store_with_a_next_link,
    the_configuration_list_commands_page,
);
