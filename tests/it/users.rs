//! `portcullis user …`, as an operator uses it: the real binary on a fresh database, the
//! password on standard input. What the CLI cannot show (the stored hash, whether a password
//! verifies, revoked grants) is checked in-process through the store and the hasher.

use std::process::{Command, Output};

use portcullis::config::PasswordConfig;
use portcullis::passwords::PasswordHasher;
use portcullis::security::Secret;
use portcullis::store::{Store, User};
use serde_json::{json, Value};
use sqlx::Connection;

use crate::common::{Backend, OutputWithin, TestDatabase};
use crate::on_both_databases;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// A test's database and the environment the binary runs with: argon2 made cheap through its
/// configuration, nothing else changed.
struct Operator {
    db: TestDatabase,
    env: Vec<(&'static str, String)>,
}

impl Operator {
    async fn new(backend: Backend) -> Self {
        let db = TestDatabase::create(backend).await;
        let env = vec![
            ("PORTCULLIS_DATABASE_URL", db.url.clone()),
            ("PORTCULLIS_PASSWORDS_ARGON2_MEMORY_KIB", "64".to_string()),
            ("PORTCULLIS_PASSWORDS_ARGON2_ITERATIONS", "1".to_string()),
            ("PORTCULLIS_LOG_LEVEL", "warn".to_string()),
        ];
        Self { db, env }
    }

    /// Run `portcullis ARGS`, writing `stdin` (if any) to its standard input.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env_remove("PORTCULLIS_CONFIG");
        match stdin {
            Some(input) => command.bounded_output_with_stdin(input.as_bytes()),
            None => command.bounded_output(),
        }
    }

    /// Run a command that must succeed; its JSON output.
    fn json(&self, args: &[&str], stdin: Option<&str>) -> Value {
        let output = self.run(args, stdin);
        assert!(
            output.status.success(),
            "portcullis {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            !stdout.contains("$argon2") && !stdout.contains("password_hash"),
            "portcullis {args:?} printed a password hash: {stdout}"
        );
        serde_json::from_str(&stdout).expect("JSON on stdout")
    }

    /// `user create USERNAME` with a password.
    fn create(&self, username: &str, password: &str) -> Value {
        self.json(
            &["user", "create", "--username", username, "--password-stdin"],
            Some(&format!("{password}\n")),
        )
    }

    async fn store(&self) -> Store {
        Store::connect(&self.db.url, 2).await.expect("open store")
    }

    async fn stored(&self, username: &str) -> User {
        let store = self.store().await;
        let user = store
            .user_by_username(username)
            .await
            .expect("query")
            .expect("user exists");
        store.close().await;
        user
    }

    /// Raw SQL, for rows the store has no API for yet (grants, sessions, refresh tokens) and
    /// for reading what the store does not expose.
    async fn sql_counts(&self, sql: &str, user_id: &str) -> Vec<i64> {
        macro_rules! run {
            ($conn:ty) => {{
                let mut conn = <$conn>::connect(&self.db.url).await.expect("connect");
                let row: (i64, i64, i64) = sqlx::query_as(sql)
                    .bind(user_id)
                    .fetch_one(&mut conn)
                    .await
                    .expect("query");
                vec![row.0, row.1, row.2]
            }};
        }
        match self.db.backend {
            Backend::Sqlite => run!(sqlx::SqliteConnection),
            Backend::Postgres => run!(sqlx::PgConnection),
        }
    }

    /// A client, and for `user_id` a grant with a refresh token and a browser session, all live.
    async fn give_access(&self, user_id: &str) {
        let grant = format!("grant-{user_id}");
        let statements: [(&str, Vec<Bind>); 4] = [
            (
                "INSERT INTO clients (id, server_id, name, token_endpoint_auth_method, \
                 grant_types, created_at, updated_at) VALUES ('app', 'default', 'app', 'none', \
                 'authorization_code', 0, 0) ON CONFLICT (id) DO NOTHING",
                vec![],
            ),
            (
                "INSERT INTO grants (id, server_id, client_id, user_id, scope, created_at, \
                 expires_at) VALUES ($1, 'default', 'app', $2, 'openid', 0, 9999999999)",
                vec![Bind::Text(grant.clone()), Bind::Text(user_id.into())],
            ),
            (
                "INSERT INTO refresh_tokens (token_hash, grant_id, server_id, client_id, user_id, \
                 scope, auth_time, created_at, expires_at, idle_expires_at) \
                 VALUES ($1, $2, 'default', 'app', $3, 'openid', 0, 0, 9999999999, 9999999999)",
                vec![
                    Bind::Bytes(format!("rt-{user_id}").into_bytes()),
                    Bind::Text(grant),
                    Bind::Text(user_id.into()),
                ],
            ),
            (
                "INSERT INTO sessions (id_hash, sid, server_id, user_id, auth_time, created_at, \
                 last_seen_at, expires_at) VALUES ($1, $2, 'default', $3, 0, 0, 0, 9999999999)",
                vec![
                    Bind::Bytes(format!("session-{user_id}").into_bytes()),
                    Bind::Text(format!("sid-{user_id}")),
                    Bind::Text(user_id.into()),
                ],
            ),
        ];
        for (sql, binds) in statements {
            self.execute(sql, binds).await;
        }
    }

    /// Run one statement with its parameters.
    async fn execute(&self, sql: &str, binds: Vec<Bind>) {
        macro_rules! run {
            ($conn:ty) => {{
                let mut conn = <$conn>::connect(&self.db.url).await.expect("connect");
                let mut query = sqlx::query(sql);
                for bind in binds {
                    query = match bind {
                        Bind::Text(s) => query.bind(s),
                        Bind::Bytes(b) => query.bind(b),
                    };
                }
                query.execute(&mut conn).await.expect("execute");
            }};
        }
        match self.db.backend {
            Backend::Sqlite => run!(sqlx::SqliteConnection),
            Backend::Postgres => run!(sqlx::PgConnection),
        }
    }

    /// Unrevoked grants, unrevoked refresh tokens, unended sessions of a user.
    async fn live_access(&self, user_id: &str) -> Vec<i64> {
        self.sql_counts(
            "SELECT \
             (SELECT COUNT(*) FROM grants WHERE user_id = $1 AND revoked_at IS NULL), \
             (SELECT COUNT(*) FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL), \
             (SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND ended_at IS NULL)",
            user_id,
        )
        .await
    }

    /// Grants, refresh tokens and sessions of a user, revoked or not.
    async fn all_access(&self, user_id: &str) -> Vec<i64> {
        self.sql_counts(
            "SELECT \
             (SELECT COUNT(*) FROM grants WHERE user_id = $1), \
             (SELECT COUNT(*) FROM refresh_tokens WHERE user_id = $1), \
             (SELECT COUNT(*) FROM sessions WHERE user_id = $1)",
            user_id,
        )
        .await
    }
}

enum Bind {
    Text(String),
    Bytes(Vec<u8>),
}

/// The hasher the tests verify with; a stored hash carries its own parameters anyway.
fn hasher() -> PasswordHasher {
    PasswordHasher::new(&PasswordConfig {
        argon2_memory_kib: 64,
        argon2_iterations: 1,
        ..PasswordConfig::default()
    })
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn create_then_show_prints_claims_and_never_the_hash(backend: Backend) {
    let op = Operator::new(backend).await;
    let created = op.json(
        &[
            "user",
            "create",
            "--username",
            "alice",
            "--password-stdin",
            "--email",
            "alice@example.com",
            "--email-verified",
            "--name",
            "Alice Liddell",
            "--given-name",
            "Alice",
            "--birthdate",
            "1852-05-04",
            "--phone-number",
            "+44 1865 000000",
            "--address-locality",
            "Oxford",
            "--address-country",
            "GB",
        ],
        Some("curiouser and curiouser\n"),
    );
    assert_eq!(created["username"], "alice");
    assert_eq!(created["has_password"], true);
    assert_eq!(created["disabled"], false);
    let claims = &created["claims"];
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["given_name"], "Alice");
    assert_eq!(claims["birthdate"], "1852-05-04");
    assert_eq!(claims["phone_number"], "+44 1865 000000");
    assert_eq!(claims["phone_number_verified"], false);
    assert_eq!(claims["address"]["locality"], "Oxford");
    assert_eq!(claims["address"]["country"], "GB");

    // By username and by id, the same user.
    let id = created["id"].as_str().expect("id");
    let by_name = op.json(&["user", "show", "alice"], None);
    let by_id = op.json(&["user", "show", id], None);
    assert_eq!(by_name, created);
    assert_eq!(by_id, created);
    let listed = op.json(&["user", "list"], None);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["id"], id);

    let missing = op.run(&["user", "show", "nobody"], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr_of(&missing).contains("no user `nobody`"));
}

/// `user update`: a claim flag replaces that claim, address parts join the stored address,
/// `--unset` removes a claim; a refused update changes nothing; the audit log names the claims
/// changed, never their values.
async fn update_changes_only_the_claims_named(backend: Backend) {
    let op = Operator::new(backend).await;
    op.json(
        &[
            "user",
            "create",
            "--username",
            "carol",
            "--email",
            "carol@example.com",
            "--email-verified",
            "--name",
            "Carol",
            "--nickname",
            "caz",
            "--address-street",
            "1 Lane",
            "--address-country",
            "GB",
        ],
        None,
    );
    let updated = op.json(
        &[
            "user",
            "update",
            "carol",
            "--email",
            "carol@new.example",
            "--address-locality",
            "Leeds",
            "--unset",
            "nickname",
        ],
        None,
    );
    let claims = &updated["claims"];
    assert_eq!(claims["email"], "carol@new.example");
    assert_eq!(
        claims["email_verified"], false,
        "a new address is unverified"
    );
    assert_eq!(claims["name"], "Carol");
    assert!(claims.get("nickname").is_none());
    assert_eq!(
        claims["address"],
        json!({ "street_address": "1 Lane", "locality": "Leeds", "country": "GB" })
    );
    assert_eq!(op.json(&["user", "show", "carol"], None), updated);

    for (args, message) in [
        (vec!["user", "update", "carol"], "nothing to change"),
        (
            vec!["user", "update", "carol", "--unset", "sub"],
            "not a claim",
        ),
        (
            vec!["user", "update", "carol", "--name", "X", "--unset", "name"],
            "both set and unset",
        ),
        (
            vec!["user", "update", "carol", "--email", "not-an-address"],
            "not an e-mail address",
        ),
        (
            vec!["user", "update", "nobody", "--name", "X"],
            "no user `nobody`",
        ),
    ] {
        let refused = op.run(&args, None);
        assert_eq!(refused.status.code(), Some(1), "{args:?}");
        assert!(
            stderr_of(&refused).contains(message),
            "{args:?}: {}",
            stderr_of(&refused)
        );
    }
    assert_eq!(op.json(&["user", "show", "carol"], None), updated);

    let audit = op.run(&["audit", "--json", "--kind", "user_updated"], None);
    assert!(audit.status.success());
    let events: Vec<Value> = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(events.len(), 1, "refused updates are not audited");
    assert_eq!(events[0]["subject"], updated["id"]);
    assert_eq!(
        events[0]["detail"]["claims"],
        json!(["address", "email", "email_verified", "nickname"])
    );
    assert!(!events[0].to_string().contains("new.example"));
}

async fn stored_password_is_an_argon2id_phc_string(backend: Backend) {
    let op = Operator::new(backend).await;
    op.create("alice", "s3cret pass");
    let user = op.stored("alice").await;
    let hash = user.password_hash().expect("a password hash");
    assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
    assert!(
        hasher()
            .verify(&Secret::new("s3cret pass"), Some(hash))
            .await,
        "the password as typed, without its newline, verifies"
    );
    assert!(user.password_changed_at.is_some());
}

async fn a_user_created_without_a_password_cannot_sign_in(backend: Backend) {
    let op = Operator::new(backend).await;
    let created = op.json(&["user", "create", "--username", "bob"], None);
    assert_eq!(created["has_password"], false);
    let user = op.stored("bob").await;
    assert_eq!(user.password_hash(), None);
    assert!(
        !hasher()
            .verify(&Secret::new(""), user.password_hash())
            .await
    );
    assert!(
        !hasher()
            .verify(&Secret::new("x"), user.password_hash())
            .await
    );
}

async fn an_empty_password_is_refused(backend: Backend) {
    let op = Operator::new(backend).await;
    for input in ["\n", "", "\r\n"] {
        let output = op.run(
            &["user", "create", "--username", "alice", "--password-stdin"],
            Some(input),
        );
        assert_eq!(output.status.code(), Some(1), "{input:?}");
        assert!(stderr_of(&output).contains("empty"), "{input:?}");
    }
    let listed = op.json(&["user", "list"], None);
    assert_eq!(listed, serde_json::json!([]));
}

async fn a_duplicate_username_fails_with_a_clear_message(backend: Backend) {
    let op = Operator::new(backend).await;
    op.create("alice", "first");
    // Surrounding whitespace is trimmed, so this is the same username.
    let output = op.run(
        &[
            "user",
            "create",
            "--username",
            " alice ",
            "--password-stdin",
        ],
        Some("second\n"),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("user `alice` already exists"),
        "stderr: {stderr}"
    );
    assert!(output.stdout.is_empty());
    // Usernames are case-sensitive: `Alice` is another user.
    op.create("Alice", "third");
    let listed = op.json(&["user", "list"], None);
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    assert!(
        hasher()
            .verify(
                &Secret::new("first"),
                op.stored("alice").await.password_hash()
            )
            .await,
        "the first alice keeps her password"
    );
}

async fn invalid_usernames_and_claims_are_refused(backend: Backend) {
    let op = Operator::new(backend).await;
    let long = "x".repeat(129);
    let cases: [(&[&str], &str); 5] = [
        (&["--username", "   "], "empty"),
        (&["--username", &long], "at most 128"),
        (&["--username", "a", "--email-verified"], "--email"),
        (&["--username", "a", "--website", "ftp://x"], "--website"),
        (
            &["--username", "a", "--birthdate", "04/05/1852"],
            "birthdate",
        ),
    ];
    for (args, message) in cases {
        let args = [&["user", "create"][..], args].concat();
        let output = op.run(&args, None);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = stderr_of(&output);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

async fn disable_then_enable(backend: Backend) {
    let op = Operator::new(backend).await;
    let id = op.create("alice", "pw")["id"].as_str().unwrap().to_string();
    let disabled = op.json(&["user", "disable", "alice"], None);
    assert_eq!(disabled["disabled"], true);
    assert!(op.stored("alice").await.disabled);
    let enabled = op.json(&["user", "enable", &id], None);
    assert_eq!(enabled["disabled"], false);
    assert!(!op.stored("alice").await.disabled);
    let missing = op.run(&["user", "disable", "nobody"], None);
    assert_eq!(missing.status.code(), Some(1));
}

async fn disabling_a_user_revokes_their_grants_refresh_tokens_and_sessions(backend: Backend) {
    let op = Operator::new(backend).await;
    let alice = op.create("alice", "pw")["id"].as_str().unwrap().to_string();
    let bob = op.create("bob", "pw")["id"].as_str().unwrap().to_string();
    op.give_access(&alice).await;
    op.give_access(&bob).await;
    assert_eq!(op.live_access(&alice).await, [1, 1, 1]);

    op.json(&["user", "disable", "alice"], None);
    assert_eq!(op.live_access(&alice).await, [0, 0, 0]);
    assert_eq!(
        op.all_access(&alice).await,
        [1, 1, 1],
        "revoked, not deleted"
    );
    assert_eq!(op.live_access(&bob).await, [1, 1, 1], "only alice's");

    op.json(&["user", "enable", "alice"], None);
    assert_eq!(
        op.live_access(&alice).await,
        [0, 0, 0],
        "enabling does not bring back what was revoked"
    );
}

async fn set_password_replaces_the_old_one_and_revokes_access(backend: Backend) {
    let op = Operator::new(backend).await;
    let alice = op.create("alice", "old password")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = op.stored("alice").await;
    op.give_access(&alice).await;

    let changed = op.json(
        &["user", "set-password", "alice", "--password-stdin"],
        Some("new password\n"),
    );
    assert_eq!(changed["has_password"], true);
    let after = op.stored("alice").await;
    assert_ne!(after.password_hash(), before.password_hash());
    let hasher = hasher();
    assert!(
        !hasher
            .verify(&Secret::new("old password"), after.password_hash())
            .await
    );
    assert!(
        hasher
            .verify(&Secret::new("new password"), after.password_hash())
            .await
    );
    assert_eq!(op.live_access(&alice).await, [0, 0, 0]);

    // The password comes only from standard input, and never empty.
    let no_flag = op.run(&["user", "set-password", "alice"], Some("x\n"));
    assert_eq!(no_flag.status.code(), Some(2));
    let empty = op.run(
        &["user", "set-password", "alice", "--password-stdin"],
        Some("\n"),
    );
    assert_eq!(empty.status.code(), Some(1));
    assert_eq!(
        op.stored("alice").await.password_hash(),
        after.password_hash()
    );
}

async fn set_password_and_unlock_clear_a_lockout(backend: Backend) {
    let op = Operator::new(backend).await;
    let alice = op.create("alice", "pw")["id"].as_str().unwrap().to_string();
    let lock = || {
        op.execute(
            "UPDATE users SET failed_logins = 5, locked_until = 9999999999 WHERE id = $1",
            vec![Bind::Text(alice.clone())],
        )
    };

    lock().await;
    let shown = op.json(&["user", "show", "alice"], None);
    assert_eq!(shown["failed_logins"], 5);
    assert_eq!(shown["locked_until"], 9999999999_i64);
    let unlocked = op.json(&["user", "unlock", "alice"], None);
    assert_eq!(unlocked["failed_logins"], 0);
    assert_eq!(unlocked["locked_until"], Value::Null);

    lock().await;
    let changed = op.json(
        &["user", "set-password", &alice, "--password-stdin"],
        Some("fresh\n"),
    );
    assert_eq!(changed["failed_logins"], 0);
    assert_eq!(changed["locked_until"], Value::Null);
}

async fn delete_removes_the_user_with_their_grants_and_sessions(backend: Backend) {
    let op = Operator::new(backend).await;
    let alice = op.create("alice", "pw")["id"].as_str().unwrap().to_string();
    op.give_access(&alice).await;
    let deleted = op.json(&["user", "delete", "alice"], None);
    assert_eq!(deleted["deleted"], alice.as_str());
    assert_eq!(deleted["username"], "alice");

    let store = op.store().await;
    assert!(store.user(&alice).await.unwrap().is_none());
    store.close().await;
    assert_eq!(op.all_access(&alice).await, [0, 0, 0], "cascaded");
    let again = op.run(&["user", "delete", "alice"], None);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr_of(&again).contains("no user `alice`"));
    // The name is free again.
    op.create("alice", "pw");
}

on_both_databases!(
    create_then_show_prints_claims_and_never_the_hash,
    update_changes_only_the_claims_named,
    stored_password_is_an_argon2id_phc_string,
    a_user_created_without_a_password_cannot_sign_in,
    an_empty_password_is_refused,
    a_duplicate_username_fails_with_a_clear_message,
    invalid_usernames_and_claims_are_refused,
    disable_then_enable,
    disabling_a_user_revokes_their_grants_refresh_tokens_and_sessions,
    set_password_replaces_the_old_one_and_revokes_access,
    set_password_and_unlock_clear_a_lockout,
    delete_removes_the_user_with_their_grants_and_sessions,
);
