//! A process killed under load (issue 16, item 16): `kill -9` gives `portcullis serve` no
//! shutdown at all, so whatever a client was handed must already be committed. Real processes:
//! the binary on a SQLite file or a fresh PostgreSQL database, workers issuing tokens over HTTP
//! until the kill, then the same database under a new process.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

use crate::common::agent::{query_param, UserAgent};
use crate::common::process::{http, OutputWithin};
use crate::common::replicas::{cli, serve_on_free_port};
use crate::common::{Backend, TestDatabase};
use crate::on_both_databases;

const PASSWORD: &str = "correct horse battery staple";
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
/// Workers that each hold one refresh token family and rotate it.
const REFRESH_WORKERS: usize = 2;
/// How long the workers run before the kill; each kind of token must have been issued by then.
const LOAD: Duration = Duration::from_millis(1500);
/// The longest the test waits for the workers to have issued some of each kind.
const LOAD_LIMIT: Duration = Duration::from_secs(60);

/// What the clients were given, as they saw it.
#[derive(Default)]
struct Received {
    /// Every access token's `jti`, from every grant.
    jtis: HashSet<String>,
    /// The newest refresh token each refresh worker holds, by worker.
    refresh_tokens: HashMap<usize, String>,
    /// Codes exchanged for tokens, with their PKCE verifier.
    redeemed_codes: Vec<(String, String)>,
    client_credentials: usize,
    refreshes: usize,
}

fn jti(access_token: &str) -> String {
    let payload = access_token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("JSON claims");
    claims["jti"].as_str().expect("jti").to_string()
}

/// A token request; `None` when the connection failed (the kill).
async fn token(
    http: &reqwest::Client,
    base: &str,
    client: (&str, &str),
    form: &[(&str, &str)],
) -> Option<(u16, Value)> {
    let response = http
        .post(format!("{base}/token"))
        .basic_auth(client.0, Some(client.1))
        .form(form)
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.ok()?))
}

/// Tokens from every grant, from several workers at once, the server killed with SIGKILL in the
/// middle; then, under a new process on the same database: every refresh token a client holds
/// still refreshes, every code it redeemed stays redeemed, and the audit log has every access
/// token a client received.
async fn a_kill_9_under_load_loses_nothing_a_client_was_given(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = db.url.clone();
    let env_for = move |port: u16| {
        vec![
            ("PORTCULLIS_DATABASE_URL".to_string(), url.clone()),
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
    let created = |args: &[&str]| {
        let client = cli(&env, args, "").expect("client create");
        (
            client["client_id"].as_str().expect("id").to_string(),
            client["client_secret"]
                .as_str()
                .expect("secret")
                .to_string(),
        )
    };
    let machine = created(&[
        "client",
        "create",
        "--server",
        "default",
        "--name",
        "machine",
        "--grant-type",
        "client_credentials",
    ]);
    let app = created(&[
        "client",
        "create",
        "--server",
        "default",
        "--name",
        "app",
        "--first-party",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "password",
        "--grant-type",
        "refresh_token",
        "--redirect-uri",
        REDIRECT_URI,
    ]);
    cli(
        &env,
        &["user", "create", "--username", "ada", "--password-stdin"],
        PASSWORD,
    )
    .expect("user create");

    let received = Arc::new(Mutex::new(Received::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..2 {
        let (base, machine, received, stop) = (
            base.clone(),
            machine.clone(),
            received.clone(),
            stop.clone(),
        );
        workers.push(tokio::spawn(async move {
            let http = http();
            let form = [("grant_type", "client_credentials")];
            while !stop.load(Ordering::Relaxed) {
                let Some((status, body)) =
                    token(&http, &base, (&machine.0, &machine.1), &form).await
                else {
                    continue;
                };
                assert_eq!(status, 200, "{body}");
                let mut received = received.lock().unwrap();
                received
                    .jtis
                    .insert(jti(body["access_token"].as_str().expect("access token")));
                received.client_credentials += 1;
            }
        }));
    }
    for worker in 0..REFRESH_WORKERS {
        let (base, app, received, stop) =
            (base.clone(), app.clone(), received.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let http = http();
            let client = (app.0.as_str(), app.1.as_str());
            let password = [
                ("grant_type", "password"),
                ("username", "ada"),
                ("password", PASSWORD),
            ];
            let (status, body) = token(&http, &base, client, &password)
                .await
                .expect("the first password grant, before the kill");
            assert_eq!(status, 200, "{body}");
            let mut held = body["refresh_token"].as_str().expect("refresh").to_string();
            {
                let mut received = received.lock().unwrap();
                received
                    .jtis
                    .insert(jti(body["access_token"].as_str().expect("access token")));
                received.refresh_tokens.insert(worker, held.clone());
            }
            while !stop.load(Ordering::Relaxed) {
                let form = [("grant_type", "refresh_token"), ("refresh_token", &held)];
                let Some((status, body)) = token(&http, &base, client, &form).await else {
                    continue;
                };
                assert_eq!(status, 200, "{body}");
                held = body["refresh_token"].as_str().expect("refresh").to_string();
                let mut received = received.lock().unwrap();
                received
                    .jtis
                    .insert(jti(body["access_token"].as_str().expect("access token")));
                received.refresh_tokens.insert(worker, held.clone());
                received.refreshes += 1;
            }
        }));
    }
    {
        let (base, app, received, stop) =
            (base.clone(), app.clone(), received.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let agent = UserAgent::new();
            let http = http();
            let client = (app.0.as_str(), app.1.as_str());
            let mut signed_in = false;
            while !stop.load(Ordering::Relaxed) {
                let verifier = format!("{:0>64}", received.lock().unwrap().jtis.len());
                let challenge = portcullis::protocol::pkce::s256(&verifier);
                let authorize = format!(
                    "{base}/authorize?response_type=code&client_id={}&redirect_uri={REDIRECT_URI}\
                     &scope=openid&state=s&code_challenge={challenge}&code_challenge_method=S256",
                    app.0
                );
                let redirect = if signed_in {
                    // Signed in already, a first-party client: straight back with a code. A
                    // request cut off by the kill is simply tried again.
                    let Ok(response) = agent.http.get(&authorize).send().await else {
                        continue;
                    };
                    assert_eq!(response.status(), 303, "{:?}", response.headers());
                    let location = response.headers()["location"].to_str().expect("location");
                    url::Url::parse(location).expect("absolute location")
                } else {
                    // The first time, before the kill can come: the login form.
                    let landing = agent.navigate(&authorize, &base).await;
                    signed_in = true;
                    agent
                        .sign_in(landing, "ada", PASSWORD, &base)
                        .await
                        .client_url()
                };
                let code = query_param(&redirect, "code").expect("a code");
                let form = [
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", REDIRECT_URI),
                    ("code_verifier", verifier.as_str()),
                ];
                let Some((status, body)) = token(&http, &base, client, &form).await else {
                    continue;
                };
                assert_eq!(status, 200, "{body}");
                let mut received = received.lock().unwrap();
                received
                    .jtis
                    .insert(jti(body["access_token"].as_str().expect("access token")));
                received.redeemed_codes.push((code, verifier));
            }
        }));
    }

    // Load until each kind of token has been issued and at least LOAD has passed, then the kill.
    let started = Instant::now();
    loop {
        let enough = {
            let received = received.lock().unwrap();
            received.client_credentials > 0
                && received.refreshes > 0
                && received.refresh_tokens.len() == REFRESH_WORKERS
                && !received.redeemed_codes.is_empty()
        };
        if enough && started.elapsed() >= LOAD {
            break;
        }
        assert!(
            started.elapsed() < LOAD_LIMIT,
            "the workers issued too little in {LOAD_LIMIT:?}:\n{}",
            serve.log_text()
        );
        assert!(
            workers.iter().all(|w| !w.is_finished()),
            "a worker stopped before the kill:\n{}",
            serve.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = serve.kill_9().await;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "killed, not exited");
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(60), worker)
            .await
            .expect("a worker ends once stopped")
            .expect("a worker saw only answers it expected");
    }
    let received = Arc::try_unwrap(received)
        .ok()
        .expect("workers are done")
        .into_inner()
        .unwrap();

    let http = http();
    serve.restart(&http).await;
    let client = (app.0.as_str(), app.1.as_str());
    // A refresh in flight at the kill may have rotated the token the worker still holds: the
    // retry gets the same successor (refresh_reuse_grace), so it refreshes either way.
    for held in received.refresh_tokens.values() {
        let form = [("grant_type", "refresh_token"), ("refresh_token", held)];
        let (status, body) = token(&http, &base, client, &form).await.expect("an answer");
        assert_eq!(status, 200, "a refresh token a client held: {body}");
    }
    for (code, verifier) in &received.redeemed_codes {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
        ];
        let (status, body) = token(&http, &base, client, &form).await.expect("an answer");
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "a redeemed code stays redeemed: {body}"
        );
    }
    let audited = audited_jtis(&env, received.jtis.len() * 4 + 1000);
    let missing: Vec<&String> = received.jtis.difference(&audited).collect();
    assert!(
        missing.is_empty(),
        "{} of {} access tokens clients received are not in the audit log: {missing:?}",
        missing.len(),
        received.jtis.len()
    );
    eprintln!(
        "{backend:?}: {} access tokens ({} client credentials, {} refreshes, {} codes) before the kill, all audited",
        received.jtis.len(),
        received.client_credentials,
        received.refreshes,
        received.redeemed_codes.len()
    );
}

/// The `jti` of every `token_issued` event, as `portcullis audit --json` (one object per line)
/// prints them.
fn audited_jtis(env: &[(String, String)], limit: usize) -> HashSet<String> {
    let output = std::process::Command::new(crate::common::replicas::BIN)
        .args([
            "audit",
            "--kind",
            "token_issued",
            "--since",
            "24h",
            "--json",
        ])
        .args(["--limit", &limit.to_string()])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .bounded_output();
    assert!(
        output.status.success(),
        "portcullis audit: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("a JSON object per line"))
        .filter_map(|event| event["detail"]["jti"].as_str().map(str::to_string))
        .collect()
}

on_both_databases!(a_kill_9_under_load_loses_nothing_a_client_was_given);
