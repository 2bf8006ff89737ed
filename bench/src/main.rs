//! `loadgen`: the load generator of `bench/run.sh`.
//!
//! Closed loop: each of `--connections` workers owns one HTTP/1.1 keep-alive connection and
//! sends its next request as soon as the previous answer is in. Every worker runs on one
//! current-thread runtime (pin the process to a core with `taskset`), so the generator uses one
//! core and the server the other. Every response is checked (status, and the fields the
//! scenario must return); a failed check or a transport error is an error, never assumed.
//!
//! Prints one machine-readable line per measured scenario:
//! `RESULT scenario=cc requests=… rps=… p50_ms=… p99_ms=… errors=…`

use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

mod high_assurance;

#[derive(Parser, Clone)]
#[command(name = "loadgen")]
struct Args {
    /// The issuer: http://HOST:PORT for `default`, http://HOST:PORT/oauth2/ID for another server.
    #[arg(long)]
    base: String,
    /// cc, code, refresh, userinfo, introspect, keys, discovery, storm, polls, floor (GET / of the
    /// `floor` server), or ready (wait until /readyz answers and print how long that took);
    /// cc-pkjwt and cc-dpop (client credentials with private_key_jwt, and DPoP-bound).
    #[arg(long)]
    scenario: String,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 8.0)]
    duration: f64,
    /// A client_credentials client.
    #[arg(long, default_value = "")]
    cc_id: String,
    #[arg(long, default_value = "")]
    cc_secret: String,
    /// A confidential first-party client with authorization_code, refresh_token and password.
    #[arg(long, default_value = "")]
    web_id: String,
    #[arg(long, default_value = "")]
    web_secret: String,
    #[arg(long, default_value = "http://127.0.0.1:9/callback")]
    redirect_uri: String,
    #[arg(long, default_value = "")]
    username: String,
    #[arg(long, default_value = "")]
    password: String,
    /// Connections running password grants beside client credentials in `storm`.
    #[arg(long, default_value_t = 4)]
    storm_connections: usize,
    /// A public client allowed the device grant, for `polls`.
    #[arg(long, default_value = "")]
    device_id: String,
    /// Devices polling /token at their interval beside client credentials in `polls`.
    #[arg(long, default_value_t = 2000)]
    devices: usize,
    /// Connections the devices' polls share in `polls`.
    #[arg(long, default_value_t = 16)]
    poll_connections: usize,
    /// A private_key_jwt client allowed client_credentials, for `cc-pkjwt`.
    #[arg(long, default_value = "")]
    pkjwt_id: String,
    /// Its Ed25519 private key, PKCS#8 DER (registered with kid `bench`).
    #[arg(long, default_value = "")]
    pkjwt_key: String,
}

/// `http://host:port/prefix` split into what a connection needs.
#[derive(Clone)]
struct Target {
    origin: String,
    authority: String,
    prefix: String,
}

impl Target {
    fn parse(base: &str) -> Result<Self, String> {
        let rest = base
            .strip_prefix("http://")
            .ok_or("--base must be an http:// URL")?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        Ok(Self {
            origin: format!("http://{authority}"),
            authority: authority.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

struct Response {
    status: StatusCode,
    location: Option<String>,
    set_cookies: Vec<String>,
    body: Bytes,
}

impl Response {
    fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    fn json_str(&self, field: &str) -> Option<String> {
        self.json()?.get(field)?.as_str().map(str::to_string)
    }
}

/// One keep-alive connection with its cookie jar (a browser, for the code flow).
struct Conn {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
    cookies: Vec<(String, String)>,
}

impl Conn {
    fn new(target: &Target) -> Self {
        Self {
            target: target.clone(),
            sender: None,
            cookies: Vec::new(),
        }
    }

    async fn connect(&mut self) -> Result<(), String> {
        let stream = TcpStream::connect(&self.target.authority)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Send a request; `path` is under the issuer unless it starts with the origin.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        form: Option<String>,
    ) -> Result<Response, String> {
        let uri = match path.strip_prefix(&self.target.origin) {
            Some(absolute) => absolute.to_string(),
            None if path.starts_with("/oauth2/") || path.starts_with("/.well-known/oauth-") => {
                path.to_string()
            }
            None => format!("{}{path}", self.target.prefix),
        };
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.connect().await?;
        }
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", &self.target.authority);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header("cookie", cookie);
        }
        let body = match form {
            Some(form) => {
                request = request.header("content-type", "application/x-www-form-urlencoded");
                Full::new(Bytes::from(form))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request.body(body).map_err(|e| e.to_string())?;
        let sender = self.sender.as_mut().ok_or("no connection")?;
        let result = async {
            sender.ready().await.map_err(|e| e.to_string())?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let set_cookies = response
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>(Response {
                status,
                location,
                set_cookies,
                body,
            })
        };
        // A request that never completes is an error, not a hung benchmark.
        let result = match tokio::time::timeout(Duration::from_secs(10), result).await {
            Ok(result) => result,
            Err(_) => Err("no response within 10 s".to_string()),
        };
        match result {
            Ok(response) => {
                self.store_cookies(&response.set_cookies);
                Ok(response)
            }
            Err(e) => {
                self.sender = None;
                Err(e)
            }
        }
    }

    fn store_cookies(&mut self, set_cookies: &[String]) {
        for line in set_cookies {
            let pair = line.split(';').next().unwrap_or("");
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim().to_string(), value.trim().to_string());
            self.cookies.retain(|(n, _)| *n != name);
            let expired = line.to_ascii_lowercase().contains("max-age=0");
            if !value.is_empty() && !expired {
                self.cookies.push((name, value));
            }
        }
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// application/x-www-form-urlencoded, for the few values we send.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))
    )
}

/// A request: method, path, headers, form body.
type RequestParts = (Method, String, Vec<(String, String)>, Option<String>);

/// What a scenario's step produced: success, or why it failed.
type Step = Result<(), String>;

/// Per worker: latencies of the measured successes, and errors.
#[derive(Default)]
struct Stats {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    /// Warm-up from now, then the measured window.
    fn from_now(args: &Args) -> Self {
        let start = Instant::now() + Duration::from_secs_f64(args.warmup);
        Self {
            start,
            end: start + Duration::from_secs_f64(args.duration),
        }
    }
}

/// A stateless request: the same request every time, checked by `check`.
async fn simple(
    window: Window,
    target: &Target,
    connections: usize,
    make: impl Fn() -> RequestParts + Clone + 'static,
    check: fn(&Response) -> Step,
) -> Stats {
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let make = make.clone();
        let target = target.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let mut conn = Conn::new(&target);
            let mut stats = Stats::default();
            loop {
                let began = Instant::now();
                if began >= window.end {
                    break;
                }
                let (method, path, headers, body) = make();
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                let result = match conn.send(method, &path, &headers, body).await {
                    Ok(response) => check(&response),
                    Err(e) => Err(e),
                };
                if began < window.start {
                    continue;
                }
                record(&mut stats, began, result);
            }
            stats
        }));
    }
    join(tasks).await
}

fn record(stats: &mut Stats, began: Instant, result: Step) {
    match result {
        Ok(()) => {
            let us = began.elapsed().as_micros().min(u32::MAX as u128) as u32;
            stats.latencies_us.push(us);
        }
        Err(e) => {
            stats.errors += 1;
            if stats.first_error.is_none() {
                stats.first_error = Some(e);
            }
        }
    }
}

async fn join(tasks: Vec<tokio::task::JoinHandle<Stats>>) -> Stats {
    let mut all = Stats::default();
    for task in tasks {
        match task.await {
            Ok(stats) => all.merge(stats),
            Err(e) => {
                all.errors += 1;
                all.first_error.get_or_insert(format!("worker failed: {e}"));
            }
        }
    }
    all
}

fn expect_status(response: &Response, status: StatusCode) -> Step {
    if response.status == status {
        Ok(())
    } else {
        Err(format!(
            "status {} (wanted {status}): {}",
            response.status,
            String::from_utf8_lossy(&response.body[..response.body.len().min(200)])
        ))
    }
}

fn check_token(response: &Response) -> Step {
    expect_status(response, StatusCode::OK)?;
    match response.json_str("access_token") {
        Some(t) if t.split('.').count() == 3 => Ok(()),
        _ => Err("token response without an access_token JWT".into()),
    }
}

fn check_floor(response: &Response) -> Step {
    expect_status(response, StatusCode::OK)?;
    if response.body.as_ref() == b"ok" {
        Ok(())
    } else {
        Err("the floor server did not answer `ok`".into())
    }
}

fn check_keys(response: &Response) -> Step {
    expect_status(response, StatusCode::OK)?;
    match response.json() {
        Some(v) if v["keys"].as_array().is_some_and(|k| !k.is_empty()) => Ok(()),
        _ => Err("JWKS without keys".into()),
    }
}

fn check_discovery(response: &Response) -> Step {
    expect_status(response, StatusCode::OK)?;
    match response.json() {
        Some(v) if v["issuer"].is_string() && v["token_endpoint"].is_string() => Ok(()),
        _ => Err("discovery document without issuer".into()),
    }
}

fn check_userinfo(response: &Response) -> Step {
    expect_status(response, StatusCode::OK)?;
    match response.json() {
        Some(v) if v["sub"].is_string() => Ok(()),
        _ => Err("userinfo without sub".into()),
    }
}

fn check_active(response: &Response) -> Step {
    expect_status(response, StatusCode::OK)?;
    match response.json() {
        Some(v) if v["active"] == serde_json::Value::Bool(true) => Ok(()),
        _ => Err("introspection says inactive".into()),
    }
}

/// The password grant, for setting up tokens and for the login storm.
async fn password_grant(conn: &mut Conn, args: &Args, scope: &str) -> Result<Response, String> {
    let body = form(&[
        ("grant_type", "password"),
        ("username", &args.username),
        ("password", &args.password),
        ("scope", scope),
    ]);
    let auth = basic(&args.web_id, &args.web_secret);
    let response = conn
        .send(
            Method::POST,
            "/token",
            &[("authorization", &auth)],
            Some(body),
        )
        .await?;
    check_token(&response)?;
    Ok(response)
}

/// The value of `<input … name="NAME" value="…">` in a page we render.
fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

/// Undo the HTML escaping of our templates (minijinja escapes `/` too).
fn unescape(value: &str) -> String {
    value
        .replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(std::array::from_fn::<u8, 32, _>(|i| {
        (i as u8).wrapping_mul(37) ^ (std::process::id() as u8)
    }));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_path(args: &Args, challenge: &str) -> String {
    format!(
        "/authorize?{}",
        form(&[
            ("response_type", "code"),
            ("client_id", &args.web_id),
            ("redirect_uri", &args.redirect_uri),
            ("scope", "openid profile"),
            ("state", "bench-state"),
            ("nonce", "bench-nonce"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
    )
}

/// The code in a redirect to the client, if that is where `location` goes.
fn code_of(args: &Args, location: &str) -> Option<String> {
    let query = location
        .strip_prefix(&args.redirect_uri)?
        .strip_prefix('?')?;
    query.split('&').find_map(|pair| {
        pair.strip_prefix("code=")
            .map(|c| c.replace("%2B", "+").replace("%2F", "/"))
    })
}

/// Sign the worker's browser in once: authorize → login page → POST login → back to the client.
async fn sign_in(conn: &mut Conn, args: &Args, challenge: &str) -> Result<(), String> {
    let mut location = authorize_path(args, challenge);
    for _ in 0..6 {
        if code_of(args, &location).is_some() {
            return Ok(());
        }
        let response = conn.send(Method::GET, &location, &[], None).await?;
        if response.status.is_redirection() {
            location = response.location.ok_or("redirect without Location")?;
            continue;
        }
        expect_status(&response, StatusCode::OK)?;
        let html = String::from_utf8_lossy(&response.body).to_string();
        let interaction = hidden_field(&html, "interaction").ok_or("no login form")?;
        let csrf = hidden_field(&html, "csrf_token").ok_or("no csrf_token in login form")?;
        let action = html
            .split("<form method=\"post\" action=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(unescape)
            .ok_or("no form action")?;
        let body = form(&[
            ("interaction", &interaction),
            ("csrf_token", &csrf),
            ("username", &args.username),
            ("password", &args.password),
        ]);
        let response = conn.send(Method::POST, &action, &[], Some(body)).await?;
        if !response.status.is_redirection() {
            return Err(format!("login answered {}", response.status));
        }
        location = response.location.ok_or("login redirect without Location")?;
    }
    Err("sign-in did not reach the client".into())
}

/// One code round trip with a live session: authorize → code → token with an ID token.
async fn code_round_trip(conn: &mut Conn, args: &Args, verifier: &str, challenge: &str) -> Step {
    let response = conn
        .send(Method::GET, &authorize_path(args, challenge), &[], None)
        .await?;
    if !response.status.is_redirection() {
        return Err(format!("authorize answered {}", response.status));
    }
    let location = response.location.unwrap_or_default();
    let code = code_of(args, &location).ok_or_else(|| format!("no code in {location}"))?;
    let auth = basic(&args.web_id, &args.web_secret);
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &args.redirect_uri),
        ("code_verifier", verifier),
    ]);
    let response = conn
        .send(
            Method::POST,
            "/token",
            &[("authorization", &auth)],
            Some(body),
        )
        .await?;
    check_token(&response)?;
    match response.json_str("id_token") {
        Some(t) if t.split('.').count() == 3 => Ok(()),
        _ => Err("code exchange without an id_token".into()),
    }
}

/// Prepare one connection per worker (`prepare`, concurrently), then start the clock: the
/// warm-up and the measured window begin once every worker is ready, so set-up that is not
/// the scenario (32 sign-ins, each an argon2 hash) never runs inside the window.
async fn prepared<T: 'static>(
    target: &Target,
    args: &Args,
    prepare: impl AsyncFn(&mut Conn, &Args) -> Result<T, String> + Clone + 'static,
) -> (Vec<(Conn, T)>, Stats, Window) {
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (target, args, prepare) = (target.clone(), args.clone(), prepare.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let mut conn = Conn::new(&target);
            let prepared = prepare(&mut conn, &args).await;
            prepared.map(|value| (conn, value))
        }));
    }
    let mut ready = Vec::new();
    let mut failed = Stats::default();
    for task in tasks {
        match task.await {
            Ok(Ok(worker)) => ready.push(worker),
            Ok(Err(e)) => record(&mut failed, Instant::now(), Err(format!("set-up: {e}"))),
            Err(e) => record(&mut failed, Instant::now(), Err(format!("set-up: {e}"))),
        }
    }
    (ready, failed, Window::from_now(args))
}

async fn run_code(target: &Target, args: &Args) -> Stats {
    let (verifier, challenge) = pkce();
    let sign_in = {
        let challenge = challenge.clone();
        async move |conn: &mut Conn, args: &Args| sign_in(conn, args, &challenge).await
    };
    let (workers, mut all, window) = prepared(target, args, sign_in).await;
    let mut tasks = Vec::new();
    for (mut conn, ()) in workers {
        let (args, verifier, challenge) = (args.clone(), verifier.clone(), challenge.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let mut stats = Stats::default();
            loop {
                let began = Instant::now();
                if began >= window.end {
                    break;
                }
                let result = code_round_trip(&mut conn, &args, &verifier, &challenge).await;
                if began >= window.start {
                    record(&mut stats, began, result);
                }
            }
            stats
        }));
    }
    all.merge(join(tasks).await);
    all
}

/// A refresh token of a new family (a password grant: set-up, not a refresh).
async fn new_family(conn: &mut Conn, args: &Args) -> Result<String, String> {
    password_grant(conn, args, "openid offline_access")
        .await?
        .json_str("refresh_token")
        .ok_or_else(|| "password grant without a refresh_token".to_string())
}

async fn run_refresh(target: &Target, args: &Args) -> Stats {
    let (workers, mut all, window) = prepared(target, args, new_family).await;
    let mut tasks = Vec::new();
    for (mut conn, first) in workers {
        let args = args.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let mut stats = Stats::default();
            let auth = basic(&args.web_id, &args.web_secret);
            let mut refresh_token = Some(first);
            loop {
                let began = Instant::now();
                if began >= window.end {
                    break;
                }
                let current = match refresh_token.take() {
                    Some(t) => t,
                    // After a failed refresh: a new family, outside the measurement.
                    None => match new_family(&mut conn, &args).await {
                        Ok(t) => t,
                        Err(e) => {
                            record(&mut stats, began, Err(e));
                            continue;
                        }
                    },
                };
                let began = Instant::now();
                let result = async {
                    let body =
                        form(&[("grant_type", "refresh_token"), ("refresh_token", &current)]);
                    let response = conn
                        .send(
                            Method::POST,
                            "/token",
                            &[("authorization", &auth)],
                            Some(body),
                        )
                        .await?;
                    check_token(&response)?;
                    if response.json_str("id_token").is_none() {
                        return Err("refresh without an id_token".to_string());
                    }
                    response
                        .json_str("refresh_token")
                        .ok_or_else(|| "refresh without a rotated refresh_token".to_string())
                }
                .await;
                let result = result.map(|rotated| refresh_token = Some(rotated));
                if began >= window.start && began < window.end {
                    record(&mut stats, began, result);
                }
            }
            stats
        }));
    }
    all.merge(join(tasks).await);
    all
}

fn cc_request(args: &Args) -> impl Fn() -> RequestParts + Clone {
    let auth = basic(&args.cc_id, &args.cc_secret);
    move || {
        (
            Method::POST,
            "/token".to_string(),
            vec![("authorization".to_string(), auth.clone())],
            Some("grant_type=client_credentials".to_string()),
        )
    }
}

async fn run_storm(window: Window, target: &Target, args: &Args) -> (Stats, Stats) {
    let mut logins = Vec::new();
    for _ in 0..args.storm_connections {
        let (target, args) = (target.clone(), args.clone());
        logins.push(tokio::task::spawn_local(async move {
            let mut conn = Conn::new(&target);
            let mut stats = Stats::default();
            loop {
                let began = Instant::now();
                if began >= window.end {
                    break;
                }
                let result = password_grant(&mut conn, &args, "openid").await.map(|_| ());
                if began >= window.start {
                    record(&mut stats, began, result);
                }
            }
            stats
        }));
    }
    let cc = simple(
        window,
        target,
        args.connections,
        cc_request(args),
        check_token,
    )
    .await;
    (cc, join(logins).await)
}

/// RFC 8628 §3.5: what a device waits between polls, and a margin, so that a poll sent late
/// by the scheduler is never counted too early by the server's whole seconds.
const POLL_EVERY: Duration = Duration::from_millis(5050);

/// The device-flow poll storm: `--devices` devices, each with its own pending device code,
/// poll `/token` at their interval (spread evenly over it, so the load is steady: devices / 5
/// polls a second), sharing `--poll-connections` connections, while `--connections` run client
/// credentials as fast as they can. Every poll must get `authorization_pending` (a
/// `slow_down` would mean the storm polls faster than a well-behaved device).
async fn run_polls(target: &Target, args: &Args) -> Result<(Stats, Stats), String> {
    let mut setup = Conn::new(target);
    let mut codes = Vec::with_capacity(args.devices);
    for _ in 0..args.devices {
        let response = setup
            .send(
                Method::POST,
                "/device/authorize",
                &[],
                Some(form(&[("client_id", &args.device_id)])),
            )
            .await?;
        expect_status(&response, StatusCode::OK)?;
        codes.push(response.json_str("device_code").ok_or("no device_code")?);
    }
    let window = Window::from_now(args);
    let per_connection = codes.len().div_ceil(args.poll_connections.max(1)).max(1);
    let begin = Instant::now();
    let spacing = POLL_EVERY / (codes.len().max(1) as u32);
    let mut pollers = Vec::new();
    for (c, chunk) in codes.chunks(per_connection).enumerate() {
        let (target, client_id) = (target.clone(), args.device_id.clone());
        // Device i first polls at i × spacing: evenly spread over one interval.
        let mut due: Vec<(Instant, String)> = chunk
            .iter()
            .enumerate()
            .map(|(i, code)| {
                (
                    begin + spacing * ((c * per_connection + i) as u32),
                    code.clone(),
                )
            })
            .collect();
        pollers.push(tokio::task::spawn_local(async move {
            let mut conn = Conn::new(&target);
            let mut stats = Stats::default();
            // The device whose poll is due first.
            while let Some(next) = (0..due.len()).min_by_key(|&i| due[i].0) {
                let at = due[next].0;
                if at >= window.end {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                let began = Instant::now();
                let body = form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("client_id", &client_id),
                    ("device_code", &due[next].1),
                ]);
                let result = conn
                    .send(Method::POST, "/token", &[], Some(body))
                    .await
                    .and_then(|r| check_pending(&r));
                due[next].0 = began + POLL_EVERY;
                if began >= window.start {
                    record(&mut stats, began, result);
                }
            }
            stats
        }));
    }
    let cc = simple(
        window,
        target,
        args.connections,
        cc_request(args),
        check_token,
    )
    .await;
    Ok((cc, join(pollers).await))
}

fn check_pending(response: &Response) -> Step {
    expect_status(response, StatusCode::BAD_REQUEST)?;
    match response.json_str("error").as_deref() {
        Some("authorization_pending") => Ok(()),
        other => Err(format!("a poll got {other:?}, not authorization_pending")),
    }
}

fn report(scenario: &str, stats: &mut Stats, seconds: f64) {
    stats.latencies_us.sort_unstable();
    let n = stats.latencies_us.len();
    let pct = |p: f64| -> f64 {
        if n == 0 {
            return 0.0;
        }
        let i = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        stats.latencies_us[i] as f64 / 1000.0
    };
    println!(
        "RESULT scenario={scenario} requests={n} rps={:.1} p50_ms={:.2} p99_ms={:.2} errors={} \
         p90_ms={:.2} p999_ms={:.2} max_ms={:.2}",
        n as f64 / seconds,
        pct(0.50),
        pct(0.99),
        stats.errors,
        pct(0.90),
        pct(0.999),
        pct(1.0),
    );
    if let Some(e) = &stats.first_error {
        eprintln!("{scenario}: first error: {e}");
    }
}

async fn wait_ready(target: &Target) -> Result<(), String> {
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(30) {
        let mut conn = Conn::new(target);
        if let Ok(response) = conn.send(Method::GET, "/readyz", &[], None).await {
            if response.status == StatusCode::OK {
                println!("READY ms={}", began.elapsed().as_millis());
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Err("the server did not become ready within 30 s".into())
}

async fn run(args: Args) -> Result<(), String> {
    // /readyz is at the root whatever the server.
    let target = Target::parse(&args.base)?;
    if args.scenario == "ready" {
        let root = Target {
            prefix: String::new(),
            ..target
        };
        return wait_ready(&root).await;
    }
    // The clock starts once a scenario's own set-up is done.
    let window = || Window::from_now(&args);
    let mut stats = match args.scenario.as_str() {
        "cc" => {
            simple(
                window(),
                &target,
                args.connections,
                cc_request(&args),
                check_token,
            )
            .await
        }
        "floor" => {
            // bench/src/floor.rs: what this machine and this load generator allow at all.
            let make = || (Method::GET, "/".to_string(), vec![], None);
            simple(window(), &target, args.connections, make, check_floor).await
        }
        "keys" => {
            let make = || (Method::GET, "/keys".to_string(), vec![], None);
            simple(window(), &target, args.connections, make, check_keys).await
        }
        "discovery" => {
            let make = || {
                let path = "/.well-known/openid-configuration".to_string();
                (Method::GET, path, vec![], None)
            };
            simple(window(), &target, args.connections, make, check_discovery).await
        }
        "userinfo" => {
            let mut conn = Conn::new(&target);
            let token = password_grant(&mut conn, &args, "openid profile email")
                .await?
                .json_str("access_token")
                .ok_or("no access token")?;
            let bearer = format!("Bearer {token}");
            let make = move || {
                let headers = vec![("authorization".to_string(), bearer.clone())];
                (Method::GET, "/userinfo".to_string(), headers, None)
            };
            simple(window(), &target, args.connections, make, check_userinfo).await
        }
        "introspect" => {
            let mut conn = Conn::new(&target);
            let auth = basic(&args.cc_id, &args.cc_secret);
            let response = conn
                .send(
                    Method::POST,
                    "/token",
                    &[("authorization", &auth)],
                    Some("grant_type=client_credentials".into()),
                )
                .await?;
            check_token(&response)?;
            let token = response.json_str("access_token").ok_or("no access token")?;
            let body = form(&[("token", &token)]);
            let make = move || {
                let headers = vec![("authorization".to_string(), auth.clone())];
                (
                    Method::POST,
                    "/introspect".to_string(),
                    headers,
                    Some(body.clone()),
                )
            };
            simple(window(), &target, args.connections, make, check_active).await
        }
        "code" => run_code(&target, &args).await,
        "refresh" => run_refresh(&target, &args).await,
        "storm" => {
            let (mut cc, mut logins) = run_storm(window(), &target, &args).await;
            report("storm-cc", &mut cc, args.duration);
            report("storm-logins", &mut logins, args.duration);
            return Ok(());
        }
        "polls" => {
            let (mut cc, mut polls) = run_polls(&target, &args).await?;
            report("polls-cc", &mut cc, args.duration);
            report("polls-device", &mut polls, args.duration);
            return Ok(());
        }
        // High-assurance clients (issue 21).
        "cc-pkjwt" => {
            let make = high_assurance::pkjwt_request(&args)?;
            simple(window(), &target, args.connections, make, check_token).await
        }
        "cc-dpop" => {
            let make = high_assurance::dpop_request(&args)?;
            let check = high_assurance::check_dpop_token;
            simple(window(), &target, args.connections, make, check).await
        }
        other => return Err(format!("unknown scenario `{other}`")),
    };
    report(&args.scenario, &mut stats, args.duration);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&runtime, run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
