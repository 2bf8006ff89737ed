//! The management API (`/admin/v1/`): only live access tokens of the `admin` server with the
//! route's scope open it; resources follow its conventions (problems, ETag and If-Match,
//! cursor pages, merge patches) and the CLI's rules; every change is audited with the calling
//! client as actor; bad input changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::admin::{assert_problem, etag, Admin};
use crate::common::snapshot::Snapshot;
use crate::common::{Backend, TestServer};
use crate::on_both_databases;

const ALL_SCOPES: &[&str] = &[
    "portcullis.servers.manage",
    "portcullis.clients.manage",
    "portcullis.users.manage",
    "portcullis.keys.manage",
    "portcullis.audit.read",
];

async fn token_of(
    server: &TestServer,
    prefix: &str,
    client_id: &str,
    secret: &str,
    scopes: &[&str],
) -> String {
    let scope = scopes.join(" ");
    let response = server
        .post_form(
            &format!("{prefix}/token"),
            Some((client_id, secret)),
            &[("grant_type", "client_credentials"), ("scope", &scope)],
        )
        .await;
    assert_eq!(response.status(), 200, "token for {client_id}");
    let body: Value = response.json().await.expect("token JSON");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

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
    events
        .into_iter()
        .filter(|e| e.actor.as_deref() == Some(actor))
        .map(|e| e.kind)
        .collect()
}

async fn only_admin_tokens_with_the_route_scope_open_the_api(backend: Backend) {
    let server = TestServer::start(backend).await;
    let path = "/admin/v1/clients";

    // No token: 401 with a bare Bearer challenge.
    let response = server.http.get(server.url(path)).send().await.unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"portcullis-admin\""
    );
    assert_problem(response, 401, "unauthorized").await;

    // Not the Bearer scheme, or garbage.
    for value in ["Basic YWRtaW46YWRtaW4=", "Bearer not-a-jwt"] {
        let response = server
            .http
            .get(server.url(path))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert_problem(response, 401, "unauthorized").await;
    }

    // A token of another authorization server, naming the very scope: refused.
    let (foreign, secret) = server
        .service_client("default", &["portcullis.clients.read"])
        .await;
    let foreign_token = token_of(
        &server,
        "",
        &foreign.id,
        secret.expose(),
        &["portcullis.clients.read"],
    )
    .await;
    let response = server
        .http
        .get(server.url(path))
        .bearer_auth(&foreign_token)
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, "unauthorized").await;

    // An admin token with the read scope reads, and may not write: 403 naming the scope.
    let reader = Admin::with_scopes(&server, &["portcullis.clients.read"]).await;
    assert_eq!(reader.get(path).await.status(), 200);
    let before = Snapshot::take(&server).await;
    let response = reader
        .send(
            Method::POST,
            path,
            Some(json!({"name": "x", "grant_types": ["client_credentials"]})),
        )
        .await;
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"portcullis.clients.manage\""),
        "{challenge}"
    );
    let body = assert_problem(response, 403, "insufficient-scope").await;
    assert_eq!(body["scope"], "portcullis.clients.manage");
    // Nor another resource's scope.
    assert_problem(
        reader.get("/admin/v1/users").await,
        403,
        "insufficient-scope",
    )
    .await;
    before.assert_unchanged(&Snapshot::take(&server).await, "a refused call");

    let manager = Admin::with_scopes(&server, &["portcullis.clients.manage"]).await;
    assert_eq!(manager.get(path).await.status(), 200, "manage covers read");

    // Expired: refused.
    server.clock.advance(3601);
    assert_problem(manager.get(path).await, 401, "unauthorized").await;
}

async fn a_revoked_token_or_a_deleted_client_opens_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, secret) = server
        .service_client("admin", &["portcullis.clients.manage"])
        .await;
    let token = token_of(
        &server,
        "/oauth2/admin",
        &client.id,
        secret.expose(),
        &["portcullis.clients.manage"],
    )
    .await;
    let admin = Admin {
        server: &server,
        client_id: client.id.clone(),
        token: token.clone(),
    };
    assert_eq!(admin.get("/admin/v1/clients").await.status(), 200);
    let response = server
        .post_form(
            "/oauth2/admin/revoke",
            Some((&client.id, secret.expose())),
            &[("token", &token)],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_problem(admin.get("/admin/v1/clients").await, 401, "unauthorized").await;

    // A second client's fresh token stops working when its client is deleted.
    let other = Admin::with_scopes(&server, &["portcullis.clients.manage"]).await;
    assert_eq!(other.get("/admin/v1/clients").await.status(), 200);
    server
        .store()
        .delete_client(&other.client_id)
        .await
        .unwrap();
    assert_problem(other.get("/admin/v1/clients").await, 401, "unauthorized").await;
}

async fn clients_are_created_changed_rotated_and_deleted_under_the_cli_rules(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Admin::with_scopes(&server, &["portcullis.clients.manage"]).await;

    let response = admin
        .send(
            Method::POST,
            "/admin/v1/clients",
            Some(json!({
                "name": "Billing",
                "grant_types": ["client_credentials"],
                "scope": "invoices.read invoices.write",
            })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created_etag = etag(&response);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let created: Value = response.json().await.unwrap();
    let id = created["client_id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/admin/v1/clients/{id}"));
    assert_eq!(created["server_id"], "default");
    let secret = created["client_secret"]
        .as_str()
        .expect("secret once")
        .to_string();
    // The secret works at the token endpoint.
    token_of(&server, "", &id, &secret, &["invoices.read"]).await;

    // Read back: no secret, the same ETag.
    let response = admin.get(&location).await;
    assert_eq!(response.status(), 200);
    assert_eq!(etag(&response), created_etag);
    let shown: Value = response.json().await.unwrap();
    assert!(shown.get("client_secret").is_none(), "{shown}");

    // A stale If-Match: 412, nothing changed.
    let before = Snapshot::take(&server).await;
    let stale = "\"stale\"";
    let response = admin
        .send_with(
            Method::PATCH,
            &location,
            Some(json!({"name": "Billing 2"})),
            &[("if-match", stale)],
        )
        .await;
    assert_problem(response, 412, "precondition-failed").await;
    // Rules of `client create`: an http redirect URI off loopback; a read-only field; an
    // unknown field; an unknown grant type. Each 400, nothing stored.
    for (patch, slug) in [
        (
            json!({"grant_types": ["authorization_code"], "redirect_uris": ["http://app.example/cb"]}),
            "invalid",
        ),
        (json!({"client_id": "other"}), "invalid"),
        (json!({"colour": "blue"}), "bad-request"),
        (json!({"grant_types": ["magic"]}), "invalid"),
        (json!({"access_token_ttl": 0}), "invalid"),
        (json!(["not", "an", "object"]), "bad-request"),
    ] {
        let response = admin
            .send_with(
                Method::PATCH,
                &location,
                Some(patch.clone()),
                &[("if-match", &created_etag)],
            )
            .await;
        assert_problem(response, 400, slug).await;
    }
    before.assert_unchanged(&Snapshot::take(&server).await, "refused client changes");

    // The current ETag: changed; a null lifetime goes back to the server's policy.
    let response = admin
        .send_with(
            Method::PATCH,
            &location,
            Some(json!({"name": "Billing 2", "access_token_ttl": 120})),
            &[
                ("if-match", &created_etag),
                ("content-type", "application/merge-patch+json"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let changed_etag = etag(&response);
    assert_ne!(changed_etag, created_etag);
    let changed: Value = response.json().await.unwrap();
    assert_eq!(changed["name"], "Billing 2");
    assert_eq!(changed["access_token_ttl"], 120);
    assert_eq!(
        changed["scope"], "invoices.read invoices.write",
        "untouched fields stay"
    );
    let response = admin
        .send(
            Method::PATCH,
            &location,
            Some(json!({"access_token_ttl": null})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let changed: Value = response.json().await.unwrap();
    assert!(changed["access_token_ttl"].is_null());

    // Rotation: the new secret works, the old one no longer.
    let response = admin
        .send(Method::POST, &format!("{location}/secret"), None)
        .await;
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let new_secret = rotated["client_secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    let old = server
        .post_form(
            "/token",
            Some((&id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(old.status(), 401);
    token_of(&server, "", &id, &new_secret, &["invoices.read"]).await;

    // Delete: a stale If-Match is refused; then 204, and 204 again (idempotent); then 404.
    let response = admin
        .send_with(
            Method::DELETE,
            &location,
            None,
            &[("if-match", &created_etag)],
        )
        .await;
    assert_problem(response, 412, "precondition-failed").await;
    assert_eq!(
        admin.send(Method::DELETE, &location, None).await.status(),
        204
    );
    assert_eq!(
        admin.send(Method::DELETE, &location, None).await.status(),
        204
    );
    assert_problem(admin.get(&location).await, 404, "not-found").await;

    // The caller cannot delete itself (it would lock itself out mid-script).
    let own = format!("/admin/v1/clients/{}", admin.client_id);
    assert_problem(
        admin.send(Method::DELETE, &own, None).await,
        409,
        "conflict",
    )
    .await;
    assert_eq!(admin.get(&own).await.status(), 200);

    let actor = format!("client:{}", admin.client_id);
    let kinds = audit_kinds_by(&server, &actor).await;
    for kind in [
        "client_created",
        "client_updated",
        "client_secret_rotated",
        "client_deleted",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} by {actor}: {kinds:?}"
        );
    }
}

async fn bad_bodies_are_problems_and_change_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Admin::with_scopes(&server, &["portcullis.users.manage"]).await;
    let before = Snapshot::take(&server).await;
    let url = server.url("/admin/v1/users");
    let send = |content_type: &str, body: Vec<u8>| {
        server
            .http
            .post(&url)
            .bearer_auth(&admin.token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_problem(
        send("text/plain", b"{\"username\":\"a\"}".to_vec())
            .await
            .unwrap(),
        415,
        "unsupported-media-type",
    )
    .await;
    assert_problem(
        send("application/json", b"{\"username\":".to_vec())
            .await
            .unwrap(),
        400,
        "bad-request",
    )
    .await;
    let huge = format!("{{\"username\":\"{}\"}}", "a".repeat(70 * 1024));
    assert_problem(
        send("application/json", huge.into_bytes()).await.unwrap(),
        413,
        "payload-too-large",
    )
    .await;
    for (body, slug) in [
        (json!({"username": "ada", "shoe_size": 9}), "bad-request"),
        (json!({"username": ""}), "invalid"),
        (
            json!({"username": "ada", "claims": {"email": "not-an-address"}}),
            "invalid",
        ),
        (
            json!({"username": "ada", "claims": {"favourite_colour": "blue"}}),
            "invalid",
        ),
        (
            json!({"username": "ada", "attributes": {"sub": "x"}}),
            "invalid",
        ),
        (json!({"username": "ada", "password": ""}), "invalid"),
    ] {
        let response = admin
            .send(Method::POST, "/admin/v1/users", Some(body.clone()))
            .await;
        assert_problem(response, 400, slug).await;
    }
    // Unknown routes and methods are problems too.
    assert_problem(admin.get("/admin/v1/nothing-here").await, 404, "not-found").await;
    assert_problem(
        admin.send(Method::PUT, "/admin/v1/users", None).await,
        405,
        "method-not-allowed",
    )
    .await;
    before.assert_unchanged(&Snapshot::take(&server).await, "refused bodies");
}

async fn users_are_managed_through_the_api_and_audited(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Admin::with_scopes(&server, &["portcullis.users.manage"]).await;
    let response = admin
        .send(
            Method::POST,
            "/admin/v1/users",
            Some(json!({
                "username": "grace",
                "password": "correct horse battery staple",
                "claims": {"name": "Grace Hopper", "email": "grace@example.com", "email_verified": true},
                "attributes": {"department": "navy"},
            })),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["username"], "grace");
    assert_eq!(user["has_password"], true);
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    // The same username again: 409.
    let response = admin
        .send(
            Method::POST,
            "/admin/v1/users",
            Some(json!({"username": "grace"})),
        )
        .await;
    assert_problem(response, 409, "conflict").await;

    // A merge patch: a new e-mail is unverified unless vouched for; null removes a claim.
    let response = admin
        .send(
            Method::PATCH,
            &location,
            Some(json!({"claims": {"email": "g@navy.example", "name": null}, "attributes": {"rank": "admiral"}})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["claims"]["email"], "g@navy.example");
    assert_eq!(user["claims"]["email_verified"], false);
    assert!(user["claims"].get("name").is_none());
    assert_eq!(
        user["attributes"],
        json!({"department": "navy", "rank": "admiral"})
    );

    // Disable, enable; set a password; unlock.
    let response = admin
        .send(Method::PATCH, &location, Some(json!({"disabled": true})))
        .await;
    assert_eq!(response.json::<Value>().await.unwrap()["disabled"], true);
    let response = admin
        .send(Method::PATCH, &location, Some(json!({"disabled": false})))
        .await;
    assert_eq!(response.json::<Value>().await.unwrap()["disabled"], false);
    let response = admin
        .send(
            Method::PUT,
            &format!("{location}/password"),
            Some(json!({"password": "another good one"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let response = admin
        .send(Method::POST, &format!("{location}/unlock"), None)
        .await;
    assert_eq!(response.status(), 200);

    // Sessions: none live; sign-out everywhere ends none; one unknown session is 204.
    let response = admin.get(&format!("{location}/sessions")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["items"], json!([]));
    let response = admin
        .send(Method::DELETE, &format!("{location}/sessions"), None)
        .await;
    assert_eq!(response.json::<Value>().await.unwrap()["sessions_ended"], 0);
    let response = admin
        .send(Method::DELETE, &format!("{location}/sessions/nope"), None)
        .await;
    assert_eq!(response.status(), 204);

    assert_eq!(
        admin.send(Method::DELETE, &location, None).await.status(),
        204
    );
    assert_problem(admin.get(&location).await, 404, "not-found").await;

    let kinds = audit_kinds_by(&server, &format!("client:{}", admin.client_id)).await;
    for kind in [
        "user_created",
        "user_updated",
        "user_disabled",
        "user_enabled",
        "user_password_changed",
        "user_unlocked",
        "sessions_revoked",
        "user_deleted",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind}: {kinds:?}");
    }
}

async fn lists_page_with_an_opaque_cursor_and_a_next_link(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Admin::with_scopes(&server, &["portcullis.users.manage"]).await;
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(server.create_user(&format!("user{i}"), "pw").await.id);
    }
    let mut seen = Vec::new();
    let mut path = "/admin/v1/users?limit=3".to_string();
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 5, "pagination does not end");
        let response = admin.get(&path).await;
        assert_eq!(response.status(), 200);
        let link = response
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_string());
        let body: Value = response.json().await.unwrap();
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|u| u["id"].as_str().unwrap().to_string()));
        match (link, body.get("next_cursor")) {
            (Some(link), Some(cursor)) => {
                let target = link
                    .strip_prefix('<')
                    .and_then(|l| l.split_once(">; rel=\"next\""))
                    .map(|(t, _)| t.to_string())
                    .expect("Link: <…>; rel=\"next\"");
                assert!(target.contains(cursor.as_str().unwrap()), "{target}");
                path = target;
            }
            (None, None) => break,
            other => panic!("Link and next_cursor disagree: {other:?}"),
        }
    }
    assert_eq!(pages, 3, "7 users in pages of 3");
    assert_eq!(seen, made, "every user once, in username order");

    for bad in [
        "limit=0",
        "limit=201",
        "limit=many",
        "cursor=%%%",
        "cursor=AAAA%00",
    ] {
        let response = admin.get(&format!("/admin/v1/users?{bad}")).await;
        assert_problem(response, 400, "bad-request").await;
    }
}

async fn servers_keys_and_the_audit_log_through_the_api(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Admin::with_scopes(&server, ALL_SCOPES).await;
    let response = admin.get("/admin/v1/servers").await;
    let body: Value = response.json().await.unwrap();
    let ids: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["admin", "default"]);

    let response = admin.get("/admin/v1/servers/default").await;
    let current = etag(&response);
    let response = admin
        .send_with(
            Method::PATCH,
            "/admin/v1/servers/default",
            Some(json!({"access_token_ttl": 600, "refresh_reuse_grace": 61})),
            &[("if-match", &current)],
        )
        .await;
    assert_problem(response, 400, "invalid").await;
    let response = admin
        .send_with(
            Method::PATCH,
            "/admin/v1/servers/default",
            Some(json!({"access_token_ttl": 600})),
            &[("if-match", &current)],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["access_token_ttl"],
        600
    );
    // The admin server's audience is what the API checks: it cannot be changed.
    let response = admin
        .send(
            Method::PATCH,
            "/admin/v1/servers/admin",
            Some(json!({"audience": "api://elsewhere"})),
        )
        .await;
    assert_problem(response, 400, "invalid").await;
    assert_eq!(admin.get("/admin/v1/servers").await.status(), 200);
    assert_problem(admin.get("/admin/v1/servers/nope").await, 404, "not-found").await;

    let response = admin.get("/admin/v1/servers/default/keys").await;
    let keys: Value = response.json().await.unwrap();
    assert_eq!(keys["items"].as_array().unwrap().len(), 1);
    let response = admin
        .send(
            Method::POST,
            "/admin/v1/servers/default/keys/rotation",
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    let rotated: Value = response.json().await.unwrap();
    let response = admin.get("/admin/v1/servers/default/keys").await;
    let keys: Value = response.json().await.unwrap();
    let kids: Vec<&str> = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&rotated["kid"].as_str().unwrap()));

    // The audit log: newest first, filtered, paged without repeats.
    server.state.audit.flush().await;
    let response = admin
        .get("/admin/v1/audit-events?kind=server_updated")
        .await;
    let events: Value = response.json().await.unwrap();
    let events = events["items"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor"], format!("client:{}", admin.client_id));
    let mut ids = Vec::new();
    let mut path = "/admin/v1/audit-events?limit=2".to_string();
    for _ in 0..50 {
        let body: Value = admin.get(&path).await.json().await.unwrap();
        ids.extend(
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        match body.get("next_cursor").and_then(Value::as_str) {
            Some(cursor) => path = format!("/admin/v1/audit-events?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(ids, sorted, "newest first, each once");
    assert!(ids.len() >= 3);
    assert_problem(
        admin.get("/admin/v1/audit-events?kind=nonsense").await,
        400,
        "bad-request",
    )
    .await;
}

async fn the_openapi_document_describes_every_route(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server
        .http
        .get(server.url("/admin/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        doc["components"]["securitySchemes"]["admin_token"]["scheme"],
        "bearer"
    );
    let expected = [
        ("/admin/v1/servers", "get"),
        ("/admin/v1/servers/{server_id}", "patch"),
        ("/admin/v1/servers/{server_id}/keys/rotation", "post"),
        ("/admin/v1/clients", "post"),
        ("/admin/v1/clients/{client_id}", "delete"),
        ("/admin/v1/clients/{client_id}/secret", "post"),
        ("/admin/v1/users/{user_id}", "patch"),
        ("/admin/v1/users/{user_id}/password", "put"),
        ("/admin/v1/users/{user_id}/sessions/{sid}", "delete"),
        ("/admin/v1/users/{user_id}/grants", "get"),
        ("/admin/v1/users/{user_id}/grants/{grant_id}", "delete"),
        ("/admin/v1/users/{user_id}/consents/{client_id}", "delete"),
        ("/admin/v1/users/{user_id}/factors", "delete"),
        ("/admin/v1/audit-events", "get"),
    ];
    for (path, method) in expected {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is documented");
        for status in ["401", "403", "500"] {
            assert_eq!(
                operation["responses"][status]["content"]["application/problem+json"]["schema"]
                    ["$ref"],
                "#/components/schemas/ProblemBody",
                "{method} {path} documents its {status}"
            );
        }
        assert!(operation["security"][0]["admin_token"][0]
            .as_str()
            .is_some_and(|s| s.starts_with("portcullis.")));
    }
}

async fn groups_and_members_through_the_api(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Admin::with_scopes(&server, &["portcullis.groups.manage"]).await;
    let ada = server.create_user("ada", "pw").await;
    let response = admin
        .send(
            Method::POST,
            "/admin/v1/groups",
            Some(json!({"name": "engineering", "description": "builders"})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let group: Value = response.json().await.unwrap();
    assert_eq!(group["members"], json!([]));
    // The same name again: 409; a blank name: 400.
    let response = admin
        .send(
            Method::POST,
            "/admin/v1/groups",
            Some(json!({"name": "engineering"})),
        )
        .await;
    assert_problem(response, 409, "conflict").await;
    let response = admin
        .send(
            Method::POST,
            "/admin/v1/groups",
            Some(json!({"name": "  "})),
        )
        .await;
    assert_problem(response, 400, "invalid").await;

    let member = format!("{location}/members/{}", ada.id);
    assert_eq!(admin.send(Method::PUT, &member, None).await.status(), 204);
    assert_eq!(admin.send(Method::PUT, &member, None).await.status(), 204);
    let shown: Value = admin.get(&location).await.json().await.unwrap();
    assert_eq!(shown["members"], json!([{"id": ada.id, "username": "ada"}]));
    assert_problem(
        admin
            .send(Method::PUT, &format!("{location}/members/nobody"), None)
            .await,
        404,
        "not-found",
    )
    .await;

    let response = admin
        .send(Method::PATCH, &location, Some(json!({"name": "platform"})))
        .await;
    assert_eq!(response.json::<Value>().await.unwrap()["name"], "platform");
    assert_eq!(
        admin.send(Method::DELETE, &member, None).await.status(),
        204
    );
    assert_eq!(
        admin.send(Method::DELETE, &location, None).await.status(),
        204
    );
    assert_problem(admin.get(&location).await, 404, "not-found").await;

    // Another resource's scope does not open groups.
    let users_only = Admin::with_scopes(&server, &["portcullis.users.manage"]).await;
    assert_problem(
        users_only.get("/admin/v1/groups").await,
        403,
        "insufficient-scope",
    )
    .await;
    let kinds = audit_kinds_by(&server, &format!("client:{}", admin.client_id)).await;
    for kind in [
        "group_created",
        "group_members_added",
        "group_updated",
        "group_members_removed",
        "group_deleted",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind}: {kinds:?}");
    }
}

/// A first-party password-grant app on `default`, for grants that belong to a user.
async fn password_app(server: &TestServer) -> (String, String) {
    let (client, secret) = server
        .register(portcullis::manage::clients::ClientRequest {
            server_id: "default".into(),
            name: "Password app".into(),
            grant_types: vec![
                portcullis::protocol::GrantType::Password,
                portcullis::protocol::GrantType::RefreshToken,
            ],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: vec!["invoices.read".into()],
            default_scopes: vec![],
            public: false,
            first_party: true,
            auth_method: None,
        })
        .await;
    (client.id, secret.unwrap().expose().to_string())
}

/// Signs `user` in to `app` with the password grant: (access token, refresh token).
async fn password_tokens(
    server: &TestServer,
    app: &(String, String),
    user: &str,
) -> (String, String) {
    let response = server
        .post_form(
            "/token",
            Some((app.0.as_str(), app.1.as_str())),
            &[
                ("grant_type", "password"),
                ("username", user),
                ("password", "pw-of-the-user-1"),
                ("scope", "openid invoices.read"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200, "password grant");
    let body: Value = response.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().to_string(),
        body["refresh_token"].as_str().unwrap().to_string(),
    )
}

async fn refresh_status(server: &TestServer, app: &(String, String), refresh_token: &str) -> u16 {
    server
        .post_form(
            "/token",
            Some((app.0.as_str(), app.1.as_str())),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
        .status()
        .as_u16()
}

async fn a_users_grants_and_consents_are_listed_and_withdrawn_with_their_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.create_user("ada", "pw-of-the-user-1").await;
    let other = server.create_user("grace", "pw-of-the-user-1").await;
    let app = password_app(&server).await;
    let second_app = password_app(&server).await;
    let (first_access, first_refresh) = password_tokens(&server, &app, "ada").await;
    let (kept_access, _) = password_tokens(&server, &app, "ada").await;
    let (second_access, second_refresh) = password_tokens(&server, &second_app, "ada").await;
    let (others_access, others_refresh) = password_tokens(&server, &app, "grace").await;
    let scope = portcullis::protocol::ScopeSet::parse("openid invoices.read").unwrap();
    server
        .store()
        .save_consent(
            "default",
            &user.id,
            &second_app.0,
            &scope,
            server.clock_now(),
        )
        .await
        .unwrap();
    let admin = Admin::with_scopes(&server, &["portcullis.users.manage"]).await;
    let grants_path = format!("/admin/v1/users/{}/grants", user.id);

    // Listed newest first, in pages.
    let response = admin.get(&format!("{grants_path}?limit=2")).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("link"), "a next page");
    let first_page: Value = response.json().await.unwrap();
    let cursor = first_page["next_cursor"].as_str().unwrap().to_string();
    let response = admin
        .get(&format!("{grants_path}?limit=2&cursor={cursor}"))
        .await;
    let second_page: Value = response.json().await.unwrap();
    assert!(second_page.get("next_cursor").is_none(), "{second_page}");
    let grants: Vec<Value> = first_page["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second_page["items"].as_array().unwrap())
        .cloned()
        .collect();
    assert_eq!(
        grants.len(),
        3,
        "ada's three grants, not grace's: {grants:?}"
    );
    let keys: Vec<(i64, String)> = grants
        .iter()
        .map(|g| {
            (
                g["created_at"].as_i64().unwrap(),
                g["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut newest_first = keys.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, newest_first, "newest first");
    assert!(grants.iter().all(|g| g["scope"] == "invoices.read openid"));

    // Revoke one: its refresh token and access token stop; the user's other grants do not.
    let introspect = |token: String| {
        let server = &server;
        let app = &app;
        async move {
            server
                .is_active((app.0.as_str(), app.1.as_str()), &token)
                .await
        }
    };
    // The access token names its grant (`gid`).
    let target = {
        use base64::Engine;
        let payload = first_access.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        claims["gid"].as_str().expect("gid").to_string()
    };
    assert!(keys.iter().any(|(_, id)| *id == target), "listed");
    // Through another user's path the grant is not theirs: nothing is withdrawn.
    let response = admin
        .send(
            Method::DELETE,
            &format!("/admin/v1/users/{}/grants/{target}", other.id),
            None,
        )
        .await;
    assert_eq!(response.status(), 204);
    assert!(
        introspect(first_access.clone()).await,
        "ada's grant is untouched"
    );
    let response = admin
        .send(
            Method::DELETE,
            &format!("/admin/v1/users/{}/consents/{}", other.id, second_app.0),
            None,
        )
        .await;
    assert_eq!(response.status(), 204);
    assert!(server
        .store()
        .consented_scope("default", &user.id, &second_app.0)
        .await
        .unwrap()
        .is_some());
    let response = admin
        .send(Method::DELETE, &format!("{grants_path}/{target}"), None)
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(refresh_status(&server, &app, &first_refresh).await, 400);
    assert!(!introspect(first_access.clone()).await);
    assert!(introspect(kept_access.clone()).await);
    // Again: nothing in force, still 204, and audited once.
    let response = admin
        .send(Method::DELETE, &format!("{grants_path}/{target}"), None)
        .await;
    assert_eq!(response.status(), 204);
    let actor = format!("client:{}", admin.client_id);
    let kinds = audit_kinds_by(&server, &actor).await;
    assert_eq!(kinds.iter().filter(|k| *k == "grants_revoked").count(), 1);

    // Consents: listed; revoking one forgets it and withdraws that client's grants.
    let consents_path = format!("/admin/v1/users/{}/consents", user.id);
    let body: Value = admin.get(&consents_path).await.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["items"][0]["client_id"], second_app.0.as_str());
    let response = admin
        .send(
            Method::DELETE,
            &format!("{consents_path}/{}", second_app.0),
            None,
        )
        .await;
    assert_eq!(response.status(), 204);
    assert!(server
        .store()
        .consented_scope("default", &user.id, &second_app.0)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        refresh_status(&server, &second_app, &second_refresh).await,
        400
    );
    assert!(
        !server
            .is_active(
                (second_app.0.as_str(), second_app.1.as_str()),
                &second_access
            )
            .await
    );
    let response = admin
        .send(
            Method::DELETE,
            &format!("{consents_path}/{}", second_app.0),
            None,
        )
        .await;
    assert_eq!(response.status(), 204, "idempotent");
    let kinds = audit_kinds_by(&server, &actor).await;
    assert_eq!(kinds.iter().filter(|k| *k == "consent_revoked").count(), 1);

    // Revoke all: what is left of ada's goes; grace keeps hers.
    let response = admin.send(Method::DELETE, &grants_path, None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["grants_revoked"], 1, "{body}");
    assert!(!introspect(kept_access).await);
    let body: Value = admin.get(&grants_path).await.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 0);
    assert!(
        introspect(others_access).await,
        "another user's grant is untouched"
    );
    assert_eq!(refresh_status(&server, &app, &others_refresh).await, 200);

    // A reader may list but not revoke; an unknown user is a 404; a bad cursor a 400.
    let reader = Admin::with_scopes(&server, &["portcullis.users.read"]).await;
    assert_eq!(reader.get(&grants_path).await.status(), 200);
    let response = reader.send(Method::DELETE, &grants_path, None).await;
    assert_problem(response, 403, "insufficient-scope").await;
    assert_problem(
        admin.get("/admin/v1/users/nobody/grants").await,
        404,
        "not-found",
    )
    .await;
    assert_problem(
        admin.get(&format!("{grants_path}?cursor=bm9kb3Q")).await,
        400,
        "bad-request",
    )
    .await;
}

async fn a_users_second_factors_are_listed_and_reset(backend: Backend) {
    let kek = portcullis::keys::kek::Kek::generate().expose().to_string();
    let server = TestServer::start_with(backend, move |c| {
        c.keys.kek = portcullis::config::SecretValue::new(kek)
    })
    .await;
    let user = server.create_user("ada", "pw-of-the-user-1").await;
    let keks = server.state.keys.keks().unwrap();
    let now = server.clock_now();
    let first = portcullis::mfa::enrol::totp(server.store(), keks, &user.id, true, now)
        .await
        .unwrap();
    portcullis::mfa::enrol::recovery_codes(server.store(), &user.id, now)
        .await
        .unwrap();
    let admin = Admin::with_scopes(&server, &["portcullis.users.manage"]).await;
    let path = format!("/admin/v1/users/{}/factors", user.id);

    let body: Value = admin.get(&path).await.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["items"][0]["id"], first.factor.id.as_str());
    assert_eq!(body["items"][0]["kind"], "totp");
    assert_eq!(body["recovery_codes_left"], 10);
    assert!(
        !body.to_string().contains("secret"),
        "never a secret: {body}"
    );

    // One factor: removed, then 204 again (idempotent).
    let one = format!("{path}/{}", first.factor.id);
    assert_eq!(admin.send(Method::DELETE, &one, None).await.status(), 204);
    assert_eq!(admin.send(Method::DELETE, &one, None).await.status(), 204);
    let body: Value = admin.get(&path).await.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 0);
    assert_eq!(
        body["recovery_codes_left"], 10,
        "one factor leaves the codes"
    );

    // All: factors and recovery codes.
    portcullis::mfa::enrol::totp(server.store(), keks, &user.id, true, now)
        .await
        .unwrap();
    let response = admin.send(Method::DELETE, &path, None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["factors_removed"], 1);
    let body: Value = admin.get(&path).await.json().await.unwrap();
    assert_eq!(body["recovery_codes_left"], 0);
    let kinds = audit_kinds_by(&server, &format!("client:{}", admin.client_id)).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "mfa_reset").count(),
        2,
        "{kinds:?}"
    );
}

/// RFC 8037 §A.2's Ed25519 public key.
fn ed25519_jwks() -> Value {
    json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})
}

async fn client_keys_requirements_and_mfa_are_managed_through_the_api(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Admin::with_scopes(&server, &["portcullis.clients.manage"]).await;
    let before = Snapshot::take(&server).await;

    // private_key_jwt without keys, or with a private key, is refused and stores nothing.
    for body in [
        json!({"name": "bank", "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"name": "bank", "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}}),
        json!({"name": "bank", "grant_types": ["client_credentials"],
            "jwks_uri": "http://internal.example/keys"}),
        json!({"name": "bank", "grant_types": ["client_credentials"], "mfa": "sometimes"}),
    ] {
        let response = admin
            .send(Method::POST, "/admin/v1/clients", Some(body))
            .await;
        assert_problem(response, 400, "invalid").await;
    }
    before.assert_unchanged(&Snapshot::take(&server).await, "a refused client");

    let response = admin
        .send(
            Method::POST,
            "/admin/v1/clients",
            Some(
                json!({"name": "bank", "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt", "jwks": ed25519_jwks(),
                "require_dpop": true, "mfa": "required"}),
            ),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert!(
        created.get("client_secret").is_none(),
        "no secret: {created}"
    );
    assert_eq!(created["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(created["jwks"], ed25519_jwks());
    assert_eq!(created["require_dpop"], true);
    assert_eq!(created["mfa"], "required");
    let id = created["client_id"].as_str().unwrap().to_string();
    let stored = server.store().client(&id).await.unwrap().unwrap();
    assert!(stored.security.require_dpop);
    assert!(stored.security.jwks.is_some());

    // Back to a secret: the new secret is in this response only, and it works.
    let path = format!("/admin/v1/clients/{id}");
    let response = admin
        .send_with(
            Method::PATCH,
            &path,
            Some(
                json!({"token_endpoint_auth_method": "client_secret_basic", "jwks": null,
                "require_dpop": false}),
            ),
            &[("content-type", "application/merge-patch+json")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let changed: Value = response.json().await.unwrap();
    let secret = changed["client_secret"]
        .as_str()
        .expect("a new secret")
        .to_string();
    assert_eq!(changed["jwks"], Value::Null);
    assert_eq!(changed["require_dpop"], false);
    server
        .client_credentials_token("", (id.as_str(), secret.as_str()))
        .await;
    let shown: Value = admin.get(&path).await.json().await.unwrap();
    assert!(shown.get("client_secret").is_none());

    // A patch that would leave private_key_jwt without keys changes nothing.
    let before = Snapshot::take(&server).await;
    let response = admin
        .send(
            Method::PATCH,
            &path,
            Some(json!({"token_endpoint_auth_method": "private_key_jwt", "name": "renamed"})),
        )
        .await;
    assert_problem(response, 400, "invalid").await;
    before.assert_unchanged(&Snapshot::take(&server).await, "a refused client");

    let kinds = audit_kinds_by(&server, &format!("client:{}", admin.client_id)).await;
    assert!(kinds.iter().any(|k| k == "mfa_policy_changed"), "{kinds:?}");
    assert!(
        kinds.iter().filter(|k| *k == "client_updated").count() >= 2,
        "{kinds:?}"
    );
}

async fn concurrent_writes_with_the_same_etag_let_exactly_one_through(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Admin::with_scopes(&server, &["portcullis.servers.manage"]).await;
    let path = "/admin/v1/servers/default";
    let response = admin.get(path).await;
    let tag = etag(&response);
    let writers = (0..6).map(|i| {
        let admin = &admin;
        let tag = tag.clone();
        async move {
            admin
                .send_with(
                    Method::PATCH,
                    path,
                    Some(json!({"name": format!("writer {i}")})),
                    &[("if-match", tag.as_str())],
                )
                .await
                .status()
                .as_u16()
        }
    });
    let mut statuses = futures_util::future::join_all(writers).await;
    statuses.sort();
    assert_eq!(
        statuses,
        vec![200, 412, 412, 412, 412, 412],
        "one writer wins"
    );
    // Without If-Match there is nothing to protect: every write goes through.
    let response = admin
        .send(Method::PATCH, path, Some(json!({"name": "last"})))
        .await;
    assert_eq!(response.status(), 200);
    // The server's mfa policy is a field like the others.
    let response = admin
        .send(Method::PATCH, path, Some(json!({"mfa": "optional"})))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["mfa"], "optional");
    let response = admin
        .send(Method::PATCH, path, Some(json!({"mfa": "always"})))
        .await;
    assert_problem(response, 400, "invalid").await;
}

on_both_databases!(
    groups_and_members_through_the_api,
    only_admin_tokens_with_the_route_scope_open_the_api,
    a_revoked_token_or_a_deleted_client_opens_nothing,
    clients_are_created_changed_rotated_and_deleted_under_the_cli_rules,
    bad_bodies_are_problems_and_change_nothing,
    users_are_managed_through_the_api_and_audited,
    lists_page_with_an_opaque_cursor_and_a_next_link,
    servers_keys_and_the_audit_log_through_the_api,
    the_openapi_document_describes_every_route,
    a_users_grants_and_consents_are_listed_and_withdrawn_with_their_tokens,
    a_users_second_factors_are_listed_and_reset,
    client_keys_requirements_and_mfa_are_managed_through_the_api,
    concurrent_writes_with_the_same_etag_let_exactly_one_through,
);
