//! Three replicas of the real binary behind nginx, on one PostgreSQL database, configured by
//! environment only as the container image is. One flow whose consecutive steps land on
//! different replicas; then a bounded load of complete flows while one replica is stopped with
//! SIGTERM and started again and a signing key is rotated. Failures seen by the clients, and
//! tokens that a relying party caching the JWKS as `Cache-Control` allows cannot verify, must
//! both be zero.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use oauth2::PkceCodeChallenge;
use reqwest::header::{CACHE_CONTROL, LOCATION};
use serde_json::Value;
use url::Url;

use crate::common::agent::{attribute, hidden_inputs, html_unescape, query_param};
use crate::common::replicas::{cli_status, serve_on_free_port, Access, Deployment};
use crate::jwt::{kid_of, verify};

const REDIRECT: &str = "http://127.0.0.1:9/cb";
const USER: &str = "ada";
const PASSWORD: &str = "correct horse battery staple";
/// Concurrent complete flows during the restart and the rotation.
const WORKERS: usize = 4;
const SHUTDOWN_LOG: &str = "shutting down: finishing in-flight requests";

/// Added to the image's environment. Key timings short enough for a rotation to complete within
/// the test: the activation delay covers the JWKS max-age plus the replicas' key cache, with
/// three seconds to spare: activation times are whole seconds, and under CI load the CLI's RSA
/// key generation and start-up take their share (the server discounts whole seconds of it).
const SETTINGS: &[(&str, &str)] = &[
    ("PORTCULLIS_KEYS_JWKS_MAX_AGE", "2s"),
    ("PORTCULLIS_KEYS_CACHE_TTL", "1s"),
    ("PORTCULLIS_KEYS_ACTIVATION_DELAY", "6s"),
    // Cheap argon2 through the operators' settings (the defaults are OWASP's).
    ("PORTCULLIS_PASSWORDS_ARGON2_MEMORY_KIB", "64"),
    ("PORTCULLIS_PASSWORDS_ARGON2_ITERATIONS", "1"),
    ("PORTCULLIS_DATABASE_MAX_CONNECTIONS", "4"),
    // nginx is the proxy whose X-Forwarded-For is believed, as in deploy/.
    ("PORTCULLIS_HTTP_TRUSTED_PROXIES", "127.0.0.1/32"),
    // The load signs one user in hundreds of times a minute from one address: exactly what the
    // sign-in limits exist to stop, so a load test raises them.
    ("PORTCULLIS_RATE_LIMITS_SIGN_IN_PER_IP", "1000000"),
    ("PORTCULLIS_RATE_LIMITS_SIGN_IN_PER_USERNAME", "1000000"),
    ("PORTCULLIS_RATE_LIMITS_SIGN_IN_ATTEMPTS_PER_IP", "1000000"),
    ("PORTCULLIS_RATE_LIMITS_INTERACTIONS_PER_IP", "1000000"),
    // tower_http's request lines (debug) show which replica served which request.
    ("PORTCULLIS_LOG_LEVEL", "info,tower_http=debug"),
];

struct Client {
    id: String,
    secret: String,
}

/// What one flow got: access and ID tokens (code redemption, then refresh) and userinfo's `sub`.
struct Issued {
    access_tokens: Vec<String>,
    id_tokens: Vec<String>,
    nonce: String,
    userinfo_sub: String,
}

enum Landing {
    Page(Url, String),
    Client(Url),
}

/// Follow redirects while they stay on `base`, like a browser without JavaScript.
async fn follow(
    browser: &reqwest::Client,
    mut response: reqwest::Response,
    base: &str,
) -> Result<Landing, String> {
    for _ in 0..10 {
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("{status} without Location at {}", response.url()))?;
            let next = response.url().join(location).map_err(|e| e.to_string())?;
            if !next.as_str().starts_with(&format!("{base}/")) {
                return Ok(Landing::Client(next));
            }
            response = browser
                .get(next.clone())
                .send()
                .await
                .map_err(|e| format!("GET {}: {e}", next.path()))?;
            continue;
        }
        let url = response.url().clone();
        let body = response.text().await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("{status} at {}: {body}", url.path()));
        }
        return Ok(Landing::Page(url, body));
    }
    Err("too many redirects".into())
}

async fn token_request(
    base: &str,
    client: &Client,
    form: &[(&str, &str)],
    what: &str,
) -> Result<Value, String> {
    let response = crate::common::http()
        .post(format!("{base}/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(form)
        .send()
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| format!("{what}: {e}"))?;
    if status != 200 {
        return Err(format!("{what}: {status}: {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("{what}: {e}"))
}

fn field(body: &Value, name: &str) -> Result<String, String> {
    body[name]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no {name} in {body}"))
}

/// One complete flow as a browser and a web app do it: sign in through the login form, the
/// code with PKCE, its redemption, a refresh, `/userinfo`. Any non-success is an error.
async fn flow(base: &str, client: &Client) -> Result<Issued, String> {
    let browser = crate::common::http_client()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = portcullis::security::random_token(16);
    let nonce = portcullis::security::random_token(16);
    let mut authorize = Url::parse(&format!("{base}/authorize")).map_err(|e| e.to_string())?;
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid profile email")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256");
    let response = browser
        .get(authorize)
        .send()
        .await
        .map_err(|e| format!("authorize: {e}"))?;
    let (page_url, page) = match follow(&browser, response, base).await? {
        Landing::Page(url, body) => (url, body),
        Landing::Client(url) => return Err(format!("no login page, sent to {url}")),
    };
    let action = attribute(&page, "<form method=\"post\" action=\"", "\"")
        .ok_or_else(|| format!("no form at {}", page_url.path()))?;
    let mut form = hidden_inputs(&page);
    form.push(("username".into(), USER.into()));
    form.push(("password".into(), PASSWORD.into()));
    let target = page_url
        .join(&html_unescape(&action))
        .map_err(|e| e.to_string())?;
    let response = browser
        .post(target)
        .form(&form)
        .send()
        .await
        .map_err(|e| format!("sign in: {e}"))?;
    let callback = match follow(&browser, response, base).await? {
        Landing::Client(url) => url,
        Landing::Page(url, body) => return Err(format!("sign in stopped at {url}: {body}")),
    };
    if query_param(&callback, "state").as_deref() != Some(state.as_str())
        || query_param(&callback, "iss").as_deref() != Some(base)
    {
        return Err(format!("callback without our state and iss: {callback}"));
    }
    let code = query_param(&callback, "code").ok_or_else(|| format!("no code in {callback}"))?;

    let redeemed = token_request(
        base,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.secret().as_str()),
        ],
        "code redemption",
    )
    .await?;
    let refresh_token = field(&redeemed, "refresh_token")?;
    let refreshed = token_request(
        base,
        client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ],
        "refresh",
    )
    .await?;
    let access_token = field(&refreshed, "access_token")?;
    let response = crate::common::http()
        .get(format!("{base}/userinfo"))
        .bearer_auth(&access_token)
        .send()
        .await
        .map_err(|e| format!("userinfo: {e}"))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!(
            "userinfo ({}): {status}: {body}",
            kid_of(&access_token)
        ));
    }
    let userinfo: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    Ok(Issued {
        access_tokens: vec![field(&redeemed, "access_token")?, access_token],
        id_tokens: vec![
            field(&redeemed, "id_token")?,
            field(&refreshed, "id_token")?,
        ],
        nonce,
        userinfo_sub: field(&userinfo, "sub")?,
    })
}

/// A relying party that fetches the JWKS through the balancer and keeps it exactly as long as
/// its `Cache-Control: max-age` says: a token whose `kid` it does not know is a failure, not a
/// reason to refetch early.
struct RelyingParty {
    http: reqwest::Client,
    issuer: String,
    client_id: String,
    cache: tokio::sync::Mutex<Option<(Arc<JwkSet>, Instant)>>,
    fetches: AtomicUsize,
}

impl RelyingParty {
    fn new(issuer: &str, client_id: &str) -> Self {
        Self {
            http: crate::common::http(),
            issuer: issuer.into(),
            client_id: client_id.into(),
            cache: tokio::sync::Mutex::new(None),
            fetches: AtomicUsize::new(0),
        }
    }

    async fn jwks(&self) -> Result<Arc<JwkSet>, String> {
        let mut cache = self.cache.lock().await;
        if let Some((set, until)) = cache.as_ref() {
            if Instant::now() < *until {
                return Ok(set.clone());
            }
        }
        // Freshness counts from the request (RFC 9111 §4.2.3), so the copy never outlives it.
        let asked = Instant::now();
        let response = self
            .http
            .get(format!("{}/keys", self.issuer))
            .send()
            .await
            .map_err(|e| format!("GET /keys: {e}"))?;
        if response.status() != 200 {
            return Err(format!("GET /keys: {}", response.status()));
        }
        let max_age = response
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.split(',')
                    .find_map(|d| d.trim().strip_prefix("max-age="))
                    .and_then(|s| s.parse::<u64>().ok())
            })
            .ok_or("JWKS without Cache-Control max-age")?;
        let set: Arc<JwkSet> = Arc::new(response.json().await.map_err(|e| e.to_string())?);
        *cache = Some((set.clone(), asked + Duration::from_secs(max_age)));
        self.fetches.fetch_add(1, Ordering::Relaxed);
        Ok(set)
    }

    /// Verify signature, `iss`, `aud` and `exp` of every token of a flow, the ID tokens' nonce
    /// and that `/userinfo` spoke of the same user; the `kid` of each token verified.
    async fn check(&self, issued: &Issued) -> Result<Vec<String>, String> {
        let jwks = self.jwks().await?;
        let mut kids = Vec::new();
        for token in &issued.access_tokens {
            verify(token, &jwks, &self.issuer, "api://default")
                .map_err(|e| format!("access token ({}): {e}", kid_of(token)))?;
            kids.push(kid_of(token));
        }
        for (i, token) in issued.id_tokens.iter().enumerate() {
            let claims = verify(token, &jwks, &self.issuer, &self.client_id)
                .map_err(|e| format!("ID token ({}): {e}", kid_of(token)))?;
            if i == 0 && claims["nonce"] != issued.nonce.as_str() {
                return Err(format!("ID token nonce: {claims}"));
            }
            if claims["sub"] != issued.userinfo_sub.as_str() {
                return Err(format!(
                    "userinfo sub differs from the ID token's: {claims}"
                ));
            }
            kids.push(kid_of(token));
        }
        Ok(kids)
    }
}

#[derive(Default)]
struct Tally {
    flows: AtomicUsize,
    client_failures: Mutex<Vec<String>>,
    verify_failures: Mutex<Vec<String>>,
    tokens_by_kid: Mutex<HashMap<String, usize>>,
}

impl Tally {
    fn signed_by(&self, kid: &str) -> usize {
        self.tokens_by_kid
            .lock()
            .unwrap()
            .get(kid)
            .copied()
            .unwrap_or(0)
    }
}

async fn worker(
    base: String,
    client: Arc<Client>,
    rp: Arc<RelyingParty>,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        match flow(&base, &client).await {
            Ok(issued) => {
                tally.flows.fetch_add(1, Ordering::Relaxed);
                match rp.check(&issued).await {
                    Ok(kids) => {
                        let mut by_kid = tally.tokens_by_kid.lock().unwrap();
                        for kid in kids {
                            *by_kid.entry(kid).or_default() += 1;
                        }
                    }
                    Err(e) => tally.verify_failures.lock().unwrap().push(e),
                }
            }
            Err(e) => tally.client_failures.lock().unwrap().push(e),
        }
    }
}

fn replica_name(deployment: &Deployment, access: &Access) -> String {
    match deployment.replica_at(access.upstream()) {
        Some(i) => format!("replica {i}"),
        None => format!("unknown upstream {:?}", access.upstreams),
    }
}

/// The `nth` request of `method` and `path` among `steps`.
fn step<'a>(steps: &'a [Access], method: &str, path: &str, nth: usize) -> &'a Access {
    steps
        .iter()
        .filter(|a| a.method == method && a.path == path)
        .nth(nth)
        .unwrap_or_else(|| panic!("{method} {path} #{nth} in {steps:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_pg_tests),
    ignore = "set PORTCULLIS_TEST_POSTGRES_URL to run against PostgreSQL"
)]
async fn three_replicas_behind_nginx_survive_a_restart_and_a_key_rotation() {
    let started = Instant::now();
    let mut deployment = Deployment::start(SETTINGS).await;
    let base = deployment.base();

    // Set up as an operator does: the CLI, with the deployment's environment.
    let created = deployment.cli(&[
        "client",
        "create",
        "--server",
        "default",
        "--name",
        "webapp",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--redirect-uri",
        REDIRECT,
        "--first-party",
    ]);
    let client = Arc::new(Client {
        id: created["client_id"].as_str().expect("client_id").into(),
        secret: created["client_secret"]
            .as_str()
            .expect("client_secret")
            .into(),
    });
    deployment.cli_with_stdin(
        &[
            "user",
            "create",
            "--username",
            USER,
            "--password-stdin",
            "--email",
            "ada@example.com",
            "--email-verified",
            "--name",
            "Ada Lovelace",
        ],
        &format!("{PASSWORD}\n"),
    );
    // The image's HEALTHCHECK (`portcullis healthcheck`) against each replica, with its env.
    for replica in &deployment.replicas {
        assert!(
            cli_status(replica.env(), &["healthcheck"]),
            "healthcheck of replica {}",
            replica.port
        );
    }
    let rp = Arc::new(RelyingParty::new(&base, &client.id));

    // 1. One flow through the balancer: each request on another replica than the one before,
    // as nginx's log says and each replica's own log confirms.
    let before = deployment.nginx.access_log().len();
    let issued = flow(&base, &client).await.expect("a flow through nginx");
    // nginx writes a request's log line after sending the answer: wait for the last one.
    let deadline = Instant::now() + Duration::from_secs(5);
    let steps: Vec<Access> = loop {
        let steps = deployment.nginx.access_log()[before..].to_vec();
        if steps.iter().any(|a| a.path == "/userinfo") || Instant::now() > deadline {
            break steps;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let initial_kid = rp.check(&issued).await.expect("its tokens verify")[0].clone();
    for access in &steps {
        println!(
            "{} {} -> {} ({})",
            access.method,
            access.path,
            replica_name(&deployment, access),
            access.status
        );
        assert_eq!(access.upstreams.len(), 1, "no retry needed: {access:?}");
        assert!(access.status < 400, "{access:?}");
        let replica = &deployment.replicas[deployment
            .replica_at(access.upstream())
            .expect("a replica answered")];
        assert!(
            replica.log_lines().iter().any(|line| {
                line["span"]["method"] == access.method.as_str()
                    && line["span"]["path"] == access.path.as_str()
            }),
            "replica {} logged {} {}",
            replica.port,
            access.method,
            access.path
        );
    }
    let named = [
        ("sign in", step(&steps, "POST", "/login", 0)),
        ("code redemption", step(&steps, "POST", "/token", 0)),
        ("refresh", step(&steps, "POST", "/token", 1)),
        ("userinfo", step(&steps, "GET", "/userinfo", 0)),
    ];
    for pair in steps.windows(2) {
        assert_ne!(
            pair[0].upstream(),
            pair[1].upstream(),
            "consecutive requests on one replica: {steps:#?}"
        );
    }
    for pair in named.windows(2) {
        assert_ne!(
            pair[0].1.upstream(),
            pair[1].1.upstream(),
            "{} and {} on one replica",
            pair[0].0,
            pair[1].0
        );
    }
    let served: HashSet<&str> = steps.iter().map(Access::upstream).collect();
    assert_eq!(served.len(), 3, "every replica took part: {steps:#?}");

    // 2. A bounded load of complete flows ...
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let load_started = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            tokio::spawn(worker(
                base.clone(),
                client.clone(),
                rp.clone(),
                tally.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // (a) ... while one replica is stopped with SIGTERM, stays down a moment (a pod being
    // replaced) and starts again on the same port.
    let victim = 1;
    let mark = deployment.nginx.access_log().len();
    let status = deployment.replicas[victim].terminate().await;
    assert!(
        status.success(),
        "graceful exit: {status}\n{}",
        deployment.replicas[victim].log_text()
    );
    assert!(
        deployment.replicas[victim]
            .log_lines()
            .iter()
            .any(|line| line["fields"]["message"] == SHUTDOWN_LOG),
        "the replica logged its graceful shutdown"
    );
    assert!(
        !cli_status(deployment.replicas[victim].env(), &["healthcheck"]),
        "a stopped replica fails its health check"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let http = deployment.http.clone();
    deployment.replicas[victim].restart(&http).await;
    let restarted = deployment.nginx.access_log().len();

    // (b) ... and a signing key is rotated; the load runs until tokens signed by the new key
    // have been verified.
    let rotated = deployment.cli(&["keys", "rotate", "--server", "default"]);
    let new_kid = rotated["kid"].as_str().expect("kid").to_string();
    println!("keys rotate: {rotated}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while tally.signed_by(&new_kid) < 4 * WORKERS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("worker");
    }
    let load_time = load_started.elapsed();

    let access = deployment.nginx.access_log();
    let flows = tally.flows.load(Ordering::Relaxed);
    let retried: Vec<&Access> = access[mark..]
        .iter()
        .filter(|a| a.upstreams.len() > 1)
        .collect();
    let by_kid = tally.tokens_by_kid.lock().unwrap().clone();
    println!(
        "{flows} flows in {load_time:.1?} ({:.1}/s) by {WORKERS} workers; {} requests through \
         nginx, {} moved on to another replica; {} JWKS fetches; tokens by kid: {by_kid:?}; \
         whole test {:.1?}",
        flows as f64 / load_time.as_secs_f64(),
        access.len(),
        retried.len(),
        rp.fetches.load(Ordering::Relaxed),
        started.elapsed(),
    );
    let client_failures = tally.client_failures.lock().unwrap().clone();
    assert!(
        client_failures.is_empty(),
        "{} client failures: {:#?}",
        client_failures.len(),
        &client_failures[..client_failures.len().min(10)]
    );
    let verify_failures = tally.verify_failures.lock().unwrap().clone();
    assert!(
        verify_failures.is_empty(),
        "{} verification failures: {:#?}",
        verify_failures.len(),
        &verify_failures[..verify_failures.len().min(10)]
    );
    let server_errors: Vec<&Access> = access.iter().filter(|a| a.status >= 500).collect();
    assert!(server_errors.is_empty(), "{server_errors:#?}");
    assert!(flows >= 20, "a healthy number of flows completed: {flows}");
    assert!(
        by_kid.get(&initial_kid).copied().unwrap_or(0) > 0 && tally.signed_by(&new_kid) > 0,
        "tokens signed by the old key {initial_kid} and the new {new_kid} were verified: {by_kid:?}"
    );
    assert!(
        rp.fetches.load(Ordering::Relaxed) >= 2,
        "the relying party refetched the JWKS when its copy expired"
    );
    // The stopped replica was really in the rotation: nginx found it down and moved on ...
    let victim_addr = deployment.replicas[victim].addr();
    assert!(
        retried
            .iter()
            .any(|a| a.upstreams[0] == victim_addr && a.status < 400),
        "nginx tried the stopped replica and moved on: {retried:#?}"
    );
    // ... and took it back after its restart.
    assert!(
        access[restarted..]
            .iter()
            .any(|a| a.upstreams == [victim_addr.clone()]),
        "the restarted replica served requests again"
    );
}

/// Graceful shutdown (src/cli/serve.rs): a connection the server took just before SIGTERM is
/// answered even when its request arrives after the signal, and a new connection is refused, so
/// a load balancer moves on to another replica before sending anything. Runs without PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_connections_already_taken_and_refuses_new_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("portcullis.db");
    let env_for = |port: u16| -> Vec<(String, String)> {
        vec![
            ("PORTCULLIS_LOG_FORMAT".into(), "json".into()),
            (
                "PORTCULLIS_DATABASE_URL".into(),
                format!("sqlite://{}", db.display()),
            ),
            (
                "PORTCULLIS_ISSUER".into(),
                format!("http://127.0.0.1:{port}"),
            ),
        ]
    };
    let mut replica = serve_on_free_port(env_for, dir.path().join("serve.log"), false).await;

    let mut early = tokio::net::TcpStream::connect(replica.addr())
        .await
        .expect("connect");
    tokio::time::sleep(Duration::from_millis(200)).await;
    replica.sigterm();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !replica
        .log_lines()
        .iter()
        .any(|line| line["fields"]["message"] == SHUTDOWN_LOG)
    {
        assert!(Instant::now() < deadline, "no shutdown log line");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        tokio::net::TcpStream::connect(replica.addr())
            .await
            .is_err(),
        "a new connection is refused once shutdown has begun"
    );

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    early
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("send the request");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), early.read_to_end(&mut answer))
        .await
        .expect("the answer within 30 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the connection taken before SIGTERM is answered: {answer:?}"
    );
    let status = replica.wait_exit().await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
}
