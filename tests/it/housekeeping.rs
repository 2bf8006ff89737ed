//! Housekeeping: what has expired goes, what can still be used stays (and keeps working over
//! HTTP), in batches, and two runs at once do no harm.

use portcullis::config::HousekeepingConfig;
use portcullis::housekeeping::{self, Report};
use portcullis::protocol::GrantType;

use crate::common::rp::Rp;
use crate::common::{Backend, Landing, TestServer, UserAgent};
use crate::on_both_databases;

const DAY: i64 = 86400;

/// Rows in `table`, read straight from the test's database.
async fn count(server: &TestServer, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    match server.db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
            let n: i64 = sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&server.db.url).await.unwrap();
            let n: i64 = sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        }
    }
}

/// The row counts of every table housekeeping touches, in `Report::tables` order.
async fn counts(server: &TestServer) -> [i64; 7] {
    [
        count(server, "authorization_codes").await,
        count(server, "refresh_tokens").await,
        count(server, "grants").await,
        count(server, "sessions").await,
        count(server, "interactions").await,
        count(server, "revoked_tokens").await,
        count(server, "rate_limits").await,
    ]
}

async fn insert_rate_limit(server: &TestServer, bucket: &str, window_start: i64) {
    let sql = "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, 1)";
    match server.db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
            sqlx::query(sql)
                .bind(bucket)
                .bind(window_start)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&server.db.url).await.unwrap();
            sqlx::query(sql)
                .bind(bucket)
                .bind(window_start)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

async fn run(server: &TestServer) -> Report {
    housekeeping::run(
        server.store(),
        &server.state.config.housekeeping,
        server.state.config.audit.retention,
        server.clock_now(),
    )
    .await
    .expect("housekeeping run")
}

/// Rows deleted per table, in `counts` order (audit events have their own test).
fn deleted(report: &Report) -> [u64; 7] {
    assert!(report.ran);
    let tables = report.tables();
    std::array::from_fn(|i| tables[i].1)
}

fn refresh_token_of(tokens: &serde_json::Value) -> String {
    tokens["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh token in {tokens}"))
        .to_string()
}

async fn refreshed(rp: &Rp, refresh_token: &str) -> serde_json::Value {
    let response = rp.refresh(refresh_token).await;
    assert_eq!(response.status(), 200, "refresh");
    response.json().await.unwrap()
}

async fn expired_rows_go_and_live_ones_keep_working(backend: Backend) {
    let rp = Rp::start_with(
        backend,
        true,
        false,
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
    )
    .await;
    let server = &rp.server;
    // Family A: a code exchanged, then refreshed once (a1 retired, a2 current).
    let a = rp.code_flow("").await;
    let a1 = refresh_token_of(&a);
    let a2 = refresh_token_of(&refreshed(&rp, &a1).await);
    // Family B: revoked at once.
    let b1 = refresh_token_of(&rp.code_flow("").await);
    let response = server
        .post_form("/revoke", Some(rp.credentials()), &[("token", &b1)])
        .await;
    assert_eq!(response.status(), 200);
    // A revoked access token: a denylist entry until its exp (1h).
    let access = a["access_token"].as_str().unwrap();
    let response = server
        .post_form("/revoke", Some(rp.credentials()), &[("token", access)])
        .await;
    assert_eq!(response.status(), 200);
    // A code never exchanged (60s), and a stranger left at the login page (15 min).
    let unused = rp
        .authorize("response_type=code&scope=openid&state=unused")
        .await;
    assert!(unused.query().unwrap_or("").contains("code="), "{unused}");
    let stranger = UserAgent::new();
    let landing = stranger
        .navigate(
            &rp.authorize_url("response_type=code&scope=openid&state=s"),
            &server.base,
        )
        .await;
    assert!(matches!(landing, Landing::Page { .. }));
    // codes, refresh tokens, grants, sessions, interactions, revocations, rate limits (the
    // sign-in's attempts and failures per client IP and failures per username, and the
    // sign-ins started from the IP)
    assert_eq!(counts(server).await, [3, 3, 3, 1, 1, 1, 4]);

    // Two hours on: the unused code, the interaction, the denylist entry and family B's token
    // have expired or been revoked; a session (12h) and family A (idle 7d) have not.
    server.clock.advance(2 * 3600);
    let now = server.clock_now();
    insert_rate_limit(server, "stale", now - 3601).await;
    insert_rate_limit(server, "current", now - 10).await;
    let report = run(server).await;
    assert_eq!(deleted(&report), [1, 1, 0, 0, 1, 1, 5], "{report:?}");
    // Consumed codes stay with their grants (a replay must still find them); a1 stays too.
    assert_eq!(counts(server).await, [2, 2, 3, 1, 0, 0, 1]);
    // A run with nothing to do deletes nothing.
    assert_eq!(deleted(&run(server).await), [0; 7]);

    // Family A still refreshes; the session still signs the user in without a password.
    let a3 = refresh_token_of(&refreshed(&rp, &a2).await);
    match rp.go("response_type=code&scope=openid&state=sso").await {
        Landing::Client(url) => assert!(url.query().unwrap_or("").contains("code=")),
        Landing::Page { url, body, .. } => panic!("session lost: {url}: {body}"),
    }
    assert_eq!(counts(server).await, [3, 3, 4, 1, 0, 0, 1]);

    // Eight days on: family A has been idle too long, the session is over, the new code and
    // the current rate-limit window are stale. Grants live 30 days.
    server.clock.advance(8 * DAY);
    let report = run(server).await;
    assert_eq!(deleted(&report), [1, 3, 0, 1, 0, 0, 1], "{report:?}");
    assert_eq!(counts(server).await, [2, 0, 4, 0, 0, 0, 0]);
    let response = rp.refresh(&a3).await;
    assert_eq!(
        response.status(),
        400,
        "an expired family is refused either way"
    );

    // A month on: the grants expire, and the consumed codes go with them.
    server.clock.advance(30 * DAY);
    let report = run(server).await;
    assert_eq!(deleted(&report), [0, 0, 4, 0, 0, 0, 0], "{report:?}");
    assert_eq!(counts(server).await, [0; 7]);
}

/// A retired refresh token of a live family is kept, so presenting it again is still detected
/// as reuse and withdraws the family (RFC 9700 §4.14.2).
async fn a_retired_refresh_token_still_detects_reuse(backend: Backend) {
    let rp = Rp::start_with(
        backend,
        true,
        false,
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
    )
    .await;
    let server = &rp.server;
    let first = refresh_token_of(&rp.code_flow("").await);
    let second = refresh_token_of(&refreshed(&rp, &first).await);
    // Past the reuse grace period.
    server.clock.advance(3600);
    // Nothing of the family goes (the sign-in's rate-limit counters may: not this test's
    // subject, see the test above).
    assert_eq!(deleted(&run(server).await)[..6], [0; 6]);
    assert_eq!(count(server, "refresh_tokens").await, 2);
    let reuse = rp.refresh(&first).await;
    assert_eq!(reuse.status(), 400);
    let withdrawn = rp.refresh(&second).await;
    assert_eq!(withdrawn.status(), 400, "reuse revoked the family");
    // Now the family is unusable, and housekeeping takes it.
    let report = run(server).await;
    assert_eq!(report.refresh_tokens, 2, "{report:?}");
}

async fn revoke_expired(server: &TestServer, prefix: &str, n: usize, expires_at: i64) {
    for i in 0..n {
        server
            .store()
            .revoke_jti(
                &format!("{prefix}-{i}"),
                "default",
                server.clock_now(),
                expires_at,
            )
            .await
            .unwrap();
    }
}

async fn deletes_in_batches_until_one_is_short(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.housekeeping.batch_size = 2).await;
    let now = server.clock_now();
    revoke_expired(&server, "expired", 5, now - 1).await;
    revoke_expired(&server, "live", 1, now + 60).await;
    let report = run(&server).await;
    // 2 + 2 + 1: three statements, the last one short.
    assert_eq!(report.revoked_tokens, 5, "{report:?}");
    assert_eq!(count(&server, "revoked_tokens").await, 1);
    // Exactly a multiple of the batch size: 2 + 2 + 0.
    revoke_expired(&server, "again", 4, now).await;
    assert_eq!(run(&server).await.revoked_tokens, 4);
    assert_eq!(count(&server, "revoked_tokens").await, 1);
}

async fn concurrent_runs_are_harmless(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.housekeeping.batch_size = 7).await;
    let now = server.clock_now();
    revoke_expired(&server, "expired", 60, now - 1).await;
    revoke_expired(&server, "live", 3, now + 60).await;
    let config = server.state.config.housekeeping.clone();
    let retention = server.state.config.audit.retention;
    let (one, two) = tokio::join!(
        housekeeping::run(server.store(), &config, retention, now),
        housekeeping::run(server.store(), &config, retention, now),
    );
    let (one, two) = (one.expect("first run"), two.expect("second run"));
    assert!(one.ran || two.ran);
    // Each row is deleted once, whichever run (or both, on SQLite) did the work.
    assert_eq!(one.revoked_tokens + two.revoked_tokens, 60);
    assert_eq!(count(&server, "revoked_tokens").await, 3);
    // The lock was released: the next run works.
    assert!(run(&server).await.ran);
}

/// The task `serve` spawns runs on its own, and an interval of 0 turns it off.
async fn the_background_task_runs_on_its_interval(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.housekeeping = HousekeepingConfig {
            interval: portcullis::config::Seconds(1),
            ..HousekeepingConfig::default()
        }
    })
    .await;
    let now = server.clock_now();
    revoke_expired(&server, "expired", 3, now - 1).await;
    let task = housekeeping::spawn(server.state.clone()).expect("enabled");
    // The rows go first, then the run reports them to the metrics: wait for both.
    let counted = "portcullis_housekeeping_deleted_rows_total{table=\"revoked_tokens\"} 3";
    let (mut remaining, mut scraped) = (3, String::new());
    for _ in 0..50 {
        remaining = count(&server, "revoked_tokens").await;
        scraped = server
            .http
            .get(server.metrics_url())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if remaining == 0 && scraped.contains(counted) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    task.abort();
    assert_eq!(remaining, 0);
    assert!(scraped.contains(counted), "{scraped}");

    let disabled = TestServer::start_with(backend, |c| {
        c.housekeeping.interval = portcullis::config::Seconds(0)
    })
    .await;
    assert!(housekeeping::spawn(disabled.state.clone()).is_none());
}

/// Audit events older than `audit.retention` go, in batches; younger ones stay.
async fn audit_events_past_retention_go(backend: Backend) {
    use portcullis::audit::{self, Event, Kind};
    let server = TestServer::start_with(backend, |c| {
        c.audit.retention = portcullis::config::Seconds(DAY as u64);
        c.housekeeping.batch_size = 2;
    })
    .await;
    let now = server.clock_now();
    let before = count(&server, "audit_events").await;
    for (i, at) in [now - 3 * DAY, now - 2 * DAY, now - DAY - 1, now - 60]
        .into_iter()
        .enumerate()
    {
        let event = Event::new(Kind::SignInFailed, at).subject(format!("user{i}"));
        audit::write(server.store(), event).await;
    }
    assert_eq!(count(&server, "audit_events").await, before + 4);
    let report = run(&server).await;
    assert_eq!(report.audit_events, 3);
    assert_eq!(count(&server, "audit_events").await, before + 1);
    assert_eq!(run(&server).await.audit_events, 0);
}

/// How the database would find `table`'s rows by `column`: SQLite's `EXPLAIN QUERY PLAN`, or
/// PostgreSQL's `EXPLAIN` with sequential scans priced out (a tiny table is otherwise scanned
/// whatever its indexes).
async fn lookup_plan(server: &TestServer, table: &str, column: &str) -> String {
    let lookup = format!("SELECT 1 FROM {table} WHERE {column} = 'x'");
    match server.db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
            let rows: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(&format!("EXPLAIN QUERY PLAN {lookup}"))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            pool.close().await;
            rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ")
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&server.db.url).await.unwrap();
            sqlx::query("SET enable_seqscan = off")
                .execute(&mut conn)
                .await
                .unwrap();
            let rows: Vec<(String,)> = sqlx::query_as(&format!("EXPLAIN {lookup}"))
                .fetch_all(&mut conn)
                .await
                .unwrap();
            rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("; ")
        }
    }
}

/// Deleting a grant or a user cascades to the rows that hang off it (ON DELETE CASCADE), once
/// per row deleted. Housekeeping deletes expired grants a thousand at a time, so each child
/// column must be indexed, or every deleted grant costs a scan of the whole child table.
async fn cascades_find_their_rows_by_index(backend: Backend) {
    let server = TestServer::start(backend).await;
    for (table, column) in [
        ("authorization_codes", "grant_id"),
        ("refresh_tokens", "grant_id"),
        ("grants", "user_id"),
        ("sessions", "user_id"),
    ] {
        let plan = lookup_plan(&server, table, column).await;
        let indexed = match backend {
            Backend::Sqlite => {
                plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX")
            }
            Backend::Postgres => plan.contains("Index") && !plan.contains("Seq Scan"),
        };
        assert!(
            indexed,
            "{table}.{column} is looked up without an index: {plan}"
        );
    }
}

on_both_databases!(
    cascades_find_their_rows_by_index,
    audit_events_past_retention_go,
    expired_rows_go_and_live_ones_keep_working,
    a_retired_refresh_token_still_detects_reuse,
    deletes_in_batches_until_one_is_short,
    concurrent_runs_are_harmless,
    the_background_task_runs_on_its_interval,
);
