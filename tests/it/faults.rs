//! Faults a running `portcullis serve` must survive (issue 16): the database going away and
//! coming back. Real processes: the binary, a PostgreSQL database of the test's own that is cut
//! off behind its back.

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Connection;

use crate::common::db::postgres_admin_url;
use crate::common::process::http;
use crate::common::replicas::{cli, serve_on_free_port};
use crate::common::{Backend, TestDatabase};

const PASSWORD: &str = "correct horse battery staple";

/// What a token request got: its status and body, and how long the answer took.
struct Answer {
    status: u16,
    no_store: bool,
    retry_after: Option<String>,
    body: Value,
    took: Duration,
}

async fn token(
    http: &reqwest::Client,
    base: &str,
    client: (&str, &str),
    form: &[(&str, &str)],
) -> Answer {
    let started = Instant::now();
    let response = http
        .post(format!("{base}/token"))
        .basic_auth(client.0, Some(client.1))
        .form(form)
        .send()
        .await
        .expect("an answer within the client's timeout: the server must not hang");
    let status = response.status().as_u16();
    let no_store = response
        .headers()
        .get("cache-control")
        .is_some_and(|v| v == "no-store");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        no_store,
        retry_after,
        body,
        took: started.elapsed(),
    }
}

async fn readyz(http: &reqwest::Client, base: &str) -> u16 {
    http.get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz answers")
        .status()
        .as_u16()
}

/// Poll `/readyz` until it answers `want`; how long that took, or None past `limit`.
async fn readyz_becomes(
    http: &reqwest::Client,
    base: &str,
    want: u16,
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if readyz(http, base).await == want {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Refuse new connections to `database` and end the open ones (`allow`: false), or let them in
/// again, as an outage or a failover does.
async fn set_reachable(database: &str, allow: bool) {
    let mut admin = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .expect("connect as admin");
    sqlx::query(&format!(
        "ALTER DATABASE {database} ALLOW_CONNECTIONS {allow}"
    ))
    .execute(&mut admin)
    .await
    .expect("alter database");
    if !allow {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(database)
        .execute(&mut admin)
        .await
        .expect("terminate backends");
    }
    let _ = admin.close().await;
}

/// With its database cut off, `serve` says so at `/readyz` within a second or two and answers
/// every token request at once with `503 temporarily_unavailable` and `Retry-After`, never
/// cached, never a hang or a panic; when the database is back, the same process serves again, and nothing was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_pg_tests),
    ignore = "set PORTCULLIS_TEST_POSTGRES_URL to run against PostgreSQL"
)]
async fn a_database_outage_is_answered_and_survived() {
    let db = TestDatabase::create(Backend::Postgres).await;
    let database = url::Url::parse(&db.url)
        .expect("url")
        .path()
        .trim_start_matches('/')
        .to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let env_for = |port: u16| {
        vec![
            ("PORTCULLIS_DATABASE_URL".to_string(), db.url.clone()),
            (
                "PORTCULLIS_ISSUER".to_string(),
                format!("http://127.0.0.1:{port}"),
            ),
            ("PORTCULLIS_LOG_FORMAT".to_string(), "json".to_string()),
        ]
    };
    let mut serve = serve_on_free_port(env_for, dir.path().join("serve.log"), false).await;
    let base = format!("http://{}", serve.addr());
    let env = serve.env().to_vec();
    let http = http();
    let created = cli(
        &env,
        &[
            "client",
            "create",
            "--server",
            "default",
            "--name",
            "app",
            "--grant-type",
            "password",
            "--grant-type",
            "refresh_token",
        ],
        "",
    )
    .expect("client create");
    let client = (
        created["client_id"].as_str().expect("id").to_string(),
        created["client_secret"]
            .as_str()
            .expect("secret")
            .to_string(),
    );
    let client = (client.0.as_str(), client.1.as_str());
    cli(
        &env,
        &["user", "create", "--username", "ada", "--password-stdin"],
        PASSWORD,
    )
    .expect("user create");
    let password_grant = [
        ("grant_type", "password"),
        ("username", "ada"),
        ("password", PASSWORD),
    ];
    let before = token(&http, &base, client, &password_grant).await;
    assert_eq!(before.status, 200, "{}", before.body);
    let refresh_token = before.body["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
    ];

    set_reachable(&database, false).await;
    let noticed = readyz_becomes(&http, &base, 503, Duration::from_secs(5)).await;
    assert!(
        noticed.is_some_and(|t| t <= Duration::from_secs(2)),
        "/readyz said 503 after {noticed:?}:\n{}",
        serve.log_text()
    );
    // Requests that need the database: each answered promptly with an error, never cached.
    for form in [
        &refresh[..],
        &password_grant[..],
        &refresh[..],
        &password_grant[..],
    ] {
        let answer = token(&http, &base, client, form).await;
        // RFC 6749's "try again later": clients and load balancers retry, not report a bug.
        assert_eq!(
            (answer.status, answer.body["error"].as_str()),
            (503, Some("temporarily_unavailable")),
            "{}",
            answer.body
        );
        assert_eq!(answer.retry_after.as_deref(), Some("1"));
        assert!(
            answer.no_store,
            "an error of the token endpoint is not cached"
        );
        assert!(
            answer.took < Duration::from_secs(12),
            "answered after {:?}",
            answer.took
        );
    }

    set_reachable(&database, true).await;
    let back = readyz_becomes(&http, &base, 200, Duration::from_secs(15)).await;
    assert!(back.is_some(), "not ready again:\n{}", serve.log_text());
    // The same process: the refresh token issued before the outage still works, once.
    let after = token(&http, &base, client, &refresh).await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert!(
        !serve.log_text().contains("panicked"),
        "{}",
        serve.log_text()
    );
    let status = serve.terminate().await;
    assert!(status.success(), "serve exited with {status}");
}

/// A SQLite database that cannot be opened (its directory does not exist) stops the start with
/// a message naming the database, and a non-zero exit: never a panic, never a server that
/// answers without a store.
#[test]
fn an_unusable_sqlite_file_stops_the_start_with_a_message() {
    use crate::common::process::OutputWithin;
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-directory").join("portcullis.db");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("serve")
        .env(
            "PORTCULLIS_DATABASE_URL",
            format!("sqlite://{}", missing.display()),
        )
        .env("PORTCULLIS_LISTEN", "127.0.0.1:0")
        .env("PORTCULLIS_METRICS_LISTEN", "127.0.0.1:0")
        .env_remove("PORTCULLIS_CONFIG")
        .bounded_output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("database"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
