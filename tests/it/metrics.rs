//! `/metrics`: Prometheus metrics that move by exactly what happened, with bounded labels,
//! served on a listener of their own (`metrics.listen`), never on the public one.

use portcullis::protocol::GrantType;

use crate::common::rp::REDIRECT;
use crate::common::{Backend, TestServer};
use crate::on_both_databases;

async fn scrape(server: &TestServer) -> String {
    let response = server.http.get(server.metrics_url()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    response.text().await.unwrap()
}

/// The sum of the samples of `name` whose labels include `labels` (0 when there are none).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            let present: Vec<(&str, &str)> = label_text
                .split(',')
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    Some((k, v.trim_matches('"')))
                })
                .collect();
            (metric == name && labels.iter().all(|l| present.contains(l)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

async fn counters_move_by_exactly_what_happened(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.login.max_failed_attempts = 2).await;
    server.create_server("acme").await;
    let (service, secret) = server.service_client("default", &["invoices.read"]).await;
    let (app, app_secret) = server
        .web_client_with(REDIRECT, true, false, &[GrantType::Password])
        .await;
    let app_secret = app_secret.expect("confidential");
    server.create_user("ada", "pw-ada-123").await;
    let before = scrape(&server).await;

    // One client credentials token.
    server
        .client_credentials_token("", (&service.id, secret.expose()))
        .await;
    // One failed client authentication.
    let response = server
        .post_form(
            "/token",
            Some((&service.id, "not-the-secret")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(response.status(), 401);
    // Two wrong passwords (the second locks the account), then a refusal because it is locked.
    for password in ["wrong-1", "wrong-2", "pw-ada-123"] {
        let response = server
            .post_form(
                "/token",
                Some((&app.id, app_secret.expose())),
                &[
                    ("grant_type", "password"),
                    ("username", "ada"),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(response.status(), 400, "{password}");
    }
    // Another server's token endpoint, and a path no route matches.
    let response = server
        .post_form(
            "/oauth2/acme/token",
            Some(("nobody", "x")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(response.status(), 401);
    let response = server.http.get(server.url("/nope")).send().await.unwrap();
    assert_eq!(response.status(), 404);

    let after = scrape(&server).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let cc = ("grant_type", "client_credentials");
    assert_eq!(
        moved(
            "portcullis_tokens_issued_total",
            &[cc, ("token_type", "access")]
        ),
        1.0
    );
    assert_eq!(moved("portcullis_tokens_issued_total", &[]), 1.0);
    // The wrong secret, and the unknown client at acme.
    assert_eq!(
        moved("portcullis_client_authentication_failures_total", &[]),
        2.0
    );
    assert_eq!(
        moved(
            "portcullis_login_failures_total",
            &[("reason", "bad_credentials")]
        ),
        2.0
    );
    assert_eq!(
        moved("portcullis_login_failures_total", &[("reason", "locked")]),
        1.0
    );
    let token = [("endpoint", "/token"), ("method", "POST")];
    let with_status = |status| [token[0], token[1], ("status", status)];
    assert_eq!(
        moved("portcullis_http_requests_total", &with_status("200")),
        1.0
    );
    // The acme request shares the `/token` series: no server id in any label.
    assert_eq!(
        moved("portcullis_http_requests_total", &with_status("401")),
        2.0
    );
    assert_eq!(
        moved("portcullis_http_requests_total", &with_status("400")),
        3.0
    );
    assert!(!after.contains("acme"), "{after}");
    assert_eq!(
        moved(
            "portcullis_http_requests_total",
            &[("endpoint", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "portcullis_http_request_duration_seconds_count",
            &[("endpoint", "/token")]
        ),
        6.0
    );
    // The scrape before this one was counted too.
    assert_eq!(
        moved(
            "portcullis_http_requests_total",
            &[("endpoint", "/metrics"), ("status", "200")]
        ),
        1.0
    );
    // Pool gauges, read at scrape time; the test configuration allows 4 connections.
    assert_eq!(
        sample(&after, "portcullis_db_pool_max_connections", &[]),
        4.0
    );
    let open = sample(&after, "portcullis_db_pool_connections", &[]);
    assert!((1.0..=4.0).contains(&open), "{after}");
    assert_eq!(
        sample(
            &after,
            "portcullis_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
}

async fn metrics_can_be_turned_off(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.metrics.enabled = false).await;
    assert!(server.metrics_base.is_none(), "no metrics listener");
    let response = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

/// The metrics listener serves them; the public listener does not, at the root or under a
/// server's path (issue 16: they were public in the shipped deployments).
async fn metrics_are_not_on_the_public_listener(backend: Backend) {
    let server = TestServer::start(backend).await;
    scrape(&server).await;
    for path in ["/metrics", "/oauth2/default/metrics"] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    // And the metrics listener serves nothing else.
    let base = server.metrics_base.clone().unwrap();
    let response = server
        .http
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

on_both_databases!(
    counters_move_by_exactly_what_happened,
    metrics_can_be_turned_off,
    metrics_are_not_on_the_public_listener,
);
