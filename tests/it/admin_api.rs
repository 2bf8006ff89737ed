//! The management API (`/admin/v1/`): only live access tokens of the `admin` server with the
//! route's scope open it; resources follow its conventions (problems, ETag and If-Match,
//! cursor pages, merge patches) and the CLI's rules; every change is audited with the calling
//! client as actor; bad input changes nothing.

use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

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

/// A caller of the API: a client of the `admin` server and a token of its.
struct Admin<'a> {
    server: &'a TestServer,
    client_id: String,
    token: String,
}

impl<'a> Admin<'a> {
    async fn with_scopes(server: &'a TestServer, scopes: &[&str]) -> Admin<'a> {
        let (client, secret) = server.service_client("admin", scopes).await;
        let token = token_of(server, "/oauth2/admin", &client.id, secret.expose(), scopes).await;
        Admin {
            server,
            client_id: client.id,
            token,
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        self.send_with(method, path, body, &[]).await
    }

    async fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self
            .server
            .http
            .request(method, self.server.url(path))
            .bearer_auth(&self.token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("admin request")
    }

    async fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path, None).await
    }
}

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

/// Asserts an RFC 9457 problem of `slug` with `status`, and returns its body.
async fn assert_problem(response: Response, status: u16, slug: &str) -> Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status of a {slug} problem"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "problem content type"
    );
    let body: Value = response.json().await.expect("problem JSON");
    assert_eq!(
        body["type"],
        format!("urn:portcullis:problem:{slug}"),
        "{body}"
    );
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}

fn etag(response: &Response) -> String {
    response.headers()["etag"]
        .to_str()
        .expect("ETag")
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
    made.sort();
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
    assert_eq!(seen, made, "every user once, in id order");

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
);
