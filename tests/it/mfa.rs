//! Multi-factor sign-in (issue 18): TOTP enrolment through the pages and the CLI, codes single
//! use with ±1 step of drift, wrong codes toward the lockout, step-up of a password session,
//! `acr_values`, `amr`/`acr` in the ID token, recovery codes, reset, the password grant, and
//! bad input refused with nothing stored. The codes are computed here from the secret the page
//! or the CLI shows, by an implementation of RFC 6238 of the test's own.

use std::process::{Command, Output};

use portcullis::audit::Kind;
use portcullis::config::SecretValue;
use portcullis::keys::kek::Kek;
use portcullis::manage::clients::ClientRequest;
use portcullis::protocol::GrantType;
use portcullis::store::{AuditFilter, User};
use serde_json::Value;
use url::Url;

use crate::common::agent::{attribute, hidden_inputs, query_param};
use crate::common::rp::{Rp, PASSWORD, REDIRECT, USER};
use crate::common::snapshot::Snapshot;
use crate::common::{Backend, Landing, OutputWithin, UserAgent};
use crate::on_both_databases;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const ACR_MFA: &str = "urn:portcullis:acr:mfa";
const ACR_PWD: &str = "urn:portcullis:acr:pwd";
const CODE_FLOW: &str = "response_type=code&scope=openid&state=st";

/// RFC 4648 base32, as an authenticator app reads the secret.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u64, 0);
    for c in text.chars().filter(|c| *c != ' ') {
        let v = ALPHABET.find(c.to_ascii_uppercase()).expect("base32") as u64;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// RFC 6238 TOTP (HMAC-SHA-1, 6 digits, 30 s) at `now` moved by `offset` steps.
fn totp(secret: &[u8], now: i64, offset: i64) -> String {
    use aws_lc_rs::hmac;
    let counter = now.div_euclid(30) + offset;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let o = (mac[19] & 0xf) as usize;
    let n = u32::from_be_bytes([mac[o] & 0x7f, mac[o + 1], mac[o + 2], mac[o + 3]]);
    format!("{:06}", n % 1_000_000)
}

/// `portcullis ARGS` against the test's database.
fn cli(rp: &Rp, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("PORTCULLIS_DATABASE_URL", &rp.server.db.url)
        .env("PORTCULLIS_ISSUER", &rp.server.base)
        .env("PORTCULLIS_LOG_LEVEL", "warn")
        .env_remove("PORTCULLIS_CONFIG")
        .bounded_output()
}

fn cli_json(rp: &Rp, args: &[&str]) -> Value {
    let output = cli(rp, args);
    assert!(
        output.status.success(),
        "portcullis {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

async fn set_server_mfa(rp: &Rp, policy: &str) {
    rp.server
        .store()
        .set_server_mfa("default", policy, rp.server.clock_now())
        .await
        .expect("set policy");
}

/// A TOTP factor enrolled by the operator; its secret.
fn enrol_with_cli(rp: &Rp) -> Vec<u8> {
    let enrolled = cli_json(rp, &["user", "mfa", "enroll-totp", USER]);
    base32_decode(enrolled["secret"].as_str().expect("secret"))
}

/// Sign in with the password on a fresh /authorize; where the browser lands next.
async fn password_step(rp: &Rp, agent: &UserAgent, params: &str) -> Landing {
    let landing = agent
        .navigate(&rp.authorize_url(params), &rp.server.base)
        .await;
    agent
        .sign_in(landing, USER, PASSWORD, &rp.server.base)
        .await
}

/// The second-factor page we landed on (asserting it is one).
fn mfa_page(landing: Landing) -> (Url, String) {
    let (url, status, body) = landing.page();
    assert_eq!(status, 200, "second-factor page: {body}");
    assert!(url.path().ends_with("/mfa"), "expected /mfa, got {url}");
    // Password managers and phones fill this field.
    assert!(
        body.contains(r#"name="otp" autocomplete="one-time-code" inputmode="numeric""#),
        "{body}"
    );
    (url, body)
}

async fn submit(
    rp: &Rp,
    agent: &UserAgent,
    page: &(Url, String),
    fields: &[(&str, &str)],
) -> Landing {
    agent
        .submit(&page.0, &page.1, fields, &rp.server.base)
        .await
}

/// The code the client received, exchanged; the ID token's verified claims.
async fn id_claims_from(rp: &Rp, client_url: Url) -> Value {
    let code = query_param(&client_url, "code").unwrap_or_else(|| panic!("no code: {client_url}"));
    let tokens = rp.exchange(&code).await;
    rp.id_claims(tokens["id_token"].as_str().expect("id_token"))
        .await
}

/// Self-service enrolment through the pages, after the password: the secret shown, the
/// recovery codes shown once, and where the browser ends.
async fn enrol_through_pages(rp: &Rp, agent: &UserAgent) -> (Vec<u8>, Vec<String>, Url) {
    let page = mfa_page(password_step(rp, agent, CODE_FLOW).await);
    assert!(page.1.contains("<svg"), "an inline SVG QR code");
    let secret = attribute(&page.1, "<code id=\"totp-secret\">", "</code>").expect("secret");
    let secret = base32_decode(&secret);
    let code = totp(&secret, rp.server.clock_now(), 0);
    let (_, status, body) = submit(rp, agent, &page, &[("otp", &code)]).await.page();
    assert_eq!(status, 200, "{body}");
    let codes = listed_codes(&body);
    assert_eq!(codes.len(), 10, "ten recovery codes: {body}");
    let interaction = hidden_inputs(&body)
        .into_iter()
        .find(|(k, _)| k == "interaction")
        .expect("interaction")
        .1;
    let resume = Url::parse_with_params(
        &format!("{}/authorize/resume", rp.server.base),
        &[("interaction", interaction)],
    )
    .unwrap();
    let url = agent
        .navigate(resume.as_str(), &rp.server.base)
        .await
        .client_url();
    (secret, codes, url)
}

/// The recovery codes a page lists.
fn listed_codes(body: &str) -> Vec<String> {
    body.split("<li><code>")
        .skip(1)
        .filter_map(|s| s.split("</code>").next().map(str::to_string))
        .collect()
}

async fn audit_kinds(rp: &Rp, kind: Kind) -> Vec<Value> {
    rp.server.state.audit.flush().await;
    rp.server
        .store()
        .audit_events(&AuditFilter {
            kind: Some(kind.as_str().to_string()),
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .expect("audit")
        .into_iter()
        .map(|e| serde_json::from_str(&e.detail).expect("detail JSON"))
        .collect()
}

async fn stored_user(rp: &Rp) -> User {
    rp.server
        .store()
        .user(&rp.user_id)
        .await
        .unwrap()
        .expect("user")
}

async fn enrolment_through_the_pages_completes_after_a_valid_code(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    set_server_mfa(&rp, "required").await;
    let agent = UserAgent::new();
    let (secret, _, url) = enrol_through_pages(&rp, &agent).await;
    let claims = id_claims_from(&rp, url).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], ACR_MFA);
    assert_eq!(claims["auth_time"], rp.server.clock_now());
    assert_eq!(audit_kinds(&rp, Kind::MfaEnrolled).await.len(), 1);
    assert_eq!(
        audit_kinds(&rp, Kind::MfaRecoveryCodesGenerated)
            .await
            .len(),
        1
    );

    // Next time, in another browser: the password, then a code (of the next step: the one
    // used at enrolment is spent).
    rp.server.clock.advance(30);
    let other = UserAgent::new();
    let page = mfa_page(password_step(&rp, &other, CODE_FLOW).await);
    assert!(
        !page.1.contains("<svg"),
        "no enrolment for an enrolled user"
    );
    let code = totp(&secret, rp.server.clock_now(), 0);
    let url = submit(&rp, &other, &page, &[("otp", &code)])
        .await
        .client_url();
    let claims = id_claims_from(&rp, url).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(audit_kinds(&rp, Kind::MfaVerified).await.len(), 2);
}

async fn an_abandoned_enrolment_stores_no_factor(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    set_server_mfa(&rp, "required").await;
    let agent = UserAgent::new();
    let page = mfa_page(password_step(&rp, &agent, CODE_FLOW).await);
    // A reload shows the same secret (the one the app scanned).
    let again = mfa_page(agent.navigate(page.0.as_str(), &rp.server.base).await);
    let secret = |body: &str| attribute(body, "<code id=\"totp-secret\">", "</code>");
    assert_eq!(secret(&page.1), secret(&again.1));
    let listed = cli_json(&rp, &["user", "mfa", "list", USER]);
    assert_eq!(listed["factors"][0]["confirmed"], false);
    // A wrong code does not complete it.
    let (_, status, body) = submit(&rp, &agent, &page, &[("otp", "000000")])
        .await
        .page();
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("That code is not right."));
    assert!(!rp.server.store().has_mfa_factor(&rp.user_id).await.unwrap());
}

async fn cli_enrolment_list_and_reset(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let enrolled = cli_json(&rp, &["user", "mfa", "enroll-totp", USER]);
    let secret = enrolled["secret"].as_str().unwrap();
    let uri = enrolled["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(uri.contains("algorithm=SHA1&digits=6&period=30"), "{uri}");
    // Once: a second enrolment is refused, and nothing is added.
    let output = cli(&rp, &["user", "mfa", "enroll-totp", USER]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("reset` it first"), "{stderr}");
    let listed = cli_json(&rp, &["user", "mfa", "list", USER]);
    let factors = listed["factors"].as_array().unwrap();
    assert_eq!(factors.len(), 1);
    assert_eq!(factors[0]["kind"], "totp");
    assert_eq!(factors[0]["confirmed"], true);
    assert!(
        !listed.to_string().contains(secret),
        "list never shows the secret"
    );
    let id = factors[0]["id"].as_str().unwrap().to_string();

    // The policy, through the CLI: `server update --mfa` and `client update --mfa`.
    let server = cli_json(
        &rp,
        &["server", "update", "--id", "default", "--mfa", "optional"],
    );
    assert_eq!(server["mfa"], "optional");
    let client = cli_json(
        &rp,
        &["client", "update", &rp.client_id, "--mfa", "required"],
    );
    assert_eq!(client["mfa"], "required");
    for bad in [
        vec!["server", "update", "--id", "default", "--mfa", "sometimes"],
        vec!["client", "update", &rp.client_id, "--mfa", "always"],
        vec!["user", "mfa", "reset", USER, "--factor", "totp_nope"],
        vec!["user", "mfa", "list", "nobody"],
    ] {
        let output = cli(&rp, &bad);
        assert!(!output.status.success(), "{bad:?} must fail");
        assert!(output.stdout.is_empty(), "{bad:?}: errors go to stderr");
    }
    assert_eq!(audit_kinds(&rp, Kind::MfaPolicyChanged).await.len(), 2);

    // The enrolled factor signs in.
    let agent = UserAgent::new();
    let page = mfa_page(password_step(&rp, &agent, CODE_FLOW).await);
    let code = totp(&base32_decode(secret), rp.server.clock_now(), 0);
    submit(&rp, &agent, &page, &[("otp", &code)])
        .await
        .client_url();

    // Reset (a lost phone): the factor is gone, and a required policy enrols again.
    let reset = cli_json(&rp, &["user", "mfa", "reset", USER, "--factor", &id]);
    assert_eq!(reset["removed"], 1);
    let listed = cli_json(&rp, &["user", "mfa", "list", USER]);
    assert_eq!(listed["factors"], serde_json::json!([]));
    let page = mfa_page(password_step(&rp, &UserAgent::new(), CODE_FLOW).await);
    assert!(page.1.contains("<svg"), "enrolment again after a reset");
    let reset = cli_json(&rp, &["user", "mfa", "reset", USER]);
    assert_eq!(reset["recovery_codes_removed"], true);
    assert_eq!(audit_kinds(&rp, Kind::MfaReset).await.len(), 2);
    assert_eq!(audit_kinds(&rp, Kind::MfaEnrolled).await.len(), 1);
}

async fn a_code_is_accepted_once(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let secret = enrol_with_cli(&rp);
    set_server_mfa(&rp, "required").await;
    let code = totp(&secret, rp.server.clock_now(), 0);
    let first = UserAgent::new();
    let page = mfa_page(password_step(&rp, &first, CODE_FLOW).await);
    submit(&rp, &first, &page, &[("otp", &code)])
        .await
        .client_url();
    // The same code again, within its step, in another browser: refused.
    let second = UserAgent::new();
    let page = mfa_page(password_step(&rp, &second, CODE_FLOW).await);
    let (_, status, body) = submit(&rp, &second, &page, &[("otp", &code)]).await.page();
    assert_eq!(status, 401);
    assert!(body.contains("That code is not right."));
    let failed = audit_kinds(&rp, Kind::MfaFailed).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["reason"], "replayed_code");
}

async fn one_step_of_drift_is_accepted_and_two_are_refused(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let secret = enrol_with_cli(&rp);
    set_server_mfa(&rp, "required").await;
    let now = rp.server.clock_now();
    // Refused first (a refused code spends nothing), then accepted in increasing order (an
    // accepted step makes every earlier one spent).
    for (offset, accepted) in [(-2, false), (2, false), (-1, true), (1, true)] {
        let agent = UserAgent::new();
        let page = mfa_page(password_step(&rp, &agent, CODE_FLOW).await);
        let landing = submit(&rp, &agent, &page, &[("otp", &totp(&secret, now, offset))]).await;
        match (accepted, landing) {
            (true, Landing::Client(_)) => {}
            (false, Landing::Page { status, .. }) => assert_eq!(status, 401, "offset {offset}"),
            (_, other) => panic!("offset {offset}: {other:?}"),
        }
    }
}

async fn wrong_codes_count_toward_the_lockout(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let secret = enrol_with_cli(&rp);
    set_server_mfa(&rp, "required").await;
    let agent = UserAgent::new();
    let page = mfa_page(password_step(&rp, &agent, CODE_FLOW).await);
    // The default lockout: 5 failed attempts. The password's own attempt was given back.
    for _ in 0..5 {
        let (_, status, _) = submit(&rp, &agent, &page, &[("otp", "000001")])
            .await
            .page();
        assert_eq!(status, 401);
    }
    assert!(stored_user(&rp).await.locked_until.is_some(), "locked");
    assert_eq!(audit_kinds(&rp, Kind::Lockout).await.len(), 1);
    // Locked: the right code is refused, and so is the right password.
    let code = totp(&secret, rp.server.clock_now(), 0);
    let (_, status, _) = submit(&rp, &agent, &page, &[("otp", &code)]).await.page();
    assert_eq!(status, 401);
    let (_, status, _) = password_step(&rp, &UserAgent::new(), CODE_FLOW)
        .await
        .page();
    assert_eq!(status, 401);
}

async fn wrong_codes_count_toward_the_sign_in_rate_limits(backend: Backend) {
    let server_tweak = |c: &mut portcullis::config::Config| {
        c.rate_limits.sign_in_per_username = 3;
    };
    let server = crate::common::TestServer::start_with(backend, server_tweak).await;
    let user = server.create_user(USER, PASSWORD).await;
    let (client, secret) = server.web_client(REDIRECT, true, false).await;
    let rp = Rp {
        server,
        agent: UserAgent::new(),
        client_id: client.id,
        secret: secret.map(|s| s.expose().to_string()).unwrap_or_default(),
        user_id: user.id,
    };
    enrol_with_cli(&rp);
    set_server_mfa(&rp, "required").await;
    let agent = UserAgent::new();
    let page = mfa_page(password_step(&rp, &agent, CODE_FLOW).await);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (_, status, _) = submit(&rp, &agent, &page, &[("otp", "000001")])
            .await
            .page();
        statuses.push(status.as_u16());
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 429],
        "the fourth failure of the window is limited"
    );
}

async fn a_password_session_steps_up_without_the_password(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let secret = enrol_with_cli(&rp);
    // Policy off: a password is enough, and the ID token says so (no acr: none asked for).
    let agent = UserAgent::new();
    let url = password_step(&rp, &agent, CODE_FLOW).await.client_url();
    let claims = id_claims_from(&rp, url).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert!(claims.get("acr").is_none(), "{claims}");
    let signed_in_at = rp.server.clock_now();

    // prompt=none cannot step up.
    let url = agent
        .navigate(
            &rp.authorize_url(&format!("{CODE_FLOW}&prompt=none&acr_values={ACR_MFA}")),
            &rp.server.base,
        )
        .await
        .client_url();
    assert_eq!(
        query_param(&url, "error").as_deref(),
        Some("interaction_required")
    );

    // acr_values asks for a second factor: the session is asked for it, not for the password.
    rp.server.clock.advance(100);
    let landing = agent
        .navigate(
            &rp.authorize_url(&format!("{CODE_FLOW}&acr_values={ACR_MFA}%20{ACR_PWD}")),
            &rp.server.base,
        )
        .await;
    let page = mfa_page(landing);
    let code = totp(&secret, rp.server.clock_now(), 0);
    let url = submit(&rp, &agent, &page, &[("otp", &code)])
        .await
        .client_url();
    let claims = id_claims_from(&rp, url).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], ACR_MFA);
    // auth_time is the time of the last factor.
    assert_eq!(claims["auth_time"], signed_in_at + 100);
    // The stepped-up session now satisfies the request without a page.
    let url = agent
        .navigate(
            &rp.authorize_url(&format!("{CODE_FLOW}&acr_values={ACR_MFA}")),
            &rp.server.base,
        )
        .await
        .client_url();
    assert!(query_param(&url, "code").is_some(), "{url}");
}

async fn acr_values_are_advertised_and_force_a_second_factor(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let discovery: Value = rp
        .server
        .http
        .get(rp.server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let supported = discovery["acr_values_supported"].as_array().unwrap();
    assert!(supported.contains(&Value::from(ACR_MFA)));
    assert!(supported.contains(&Value::from(ACR_PWD)));
    // A user without a factor, asked for one: enrols.
    let page = mfa_page(
        password_step(
            &rp,
            &UserAgent::new(),
            &format!("{CODE_FLOW}&acr_values={ACR_MFA}"),
        )
        .await,
    );
    assert!(page.1.contains("<svg"));
    // Asking for the password class only: no second factor, and acr says what was done.
    let url = password_step(
        &rp,
        &UserAgent::new(),
        &format!("{CODE_FLOW}&acr_values={ACR_PWD}"),
    )
    .await
    .client_url();
    let claims = id_claims_from(&rp, url).await;
    assert_eq!(claims["acr"], ACR_PWD);
}

async fn the_stricter_of_server_and_client_policy_applies(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    enrol_with_cli(&rp);
    let store = rp.server.store();
    let now = rp.server.clock_now();
    // Server optional: a user with a factor is asked for it.
    set_server_mfa(&rp, "optional").await;
    mfa_page(password_step(&rp, &UserAgent::new(), CODE_FLOW).await);
    // Server required, client off: still required.
    set_server_mfa(&rp, "required").await;
    store
        .set_client_mfa(&rp.client_id, "off", now)
        .await
        .unwrap();
    mfa_page(password_step(&rp, &UserAgent::new(), CODE_FLOW).await);
    // Server off, client required: required.
    set_server_mfa(&rp, "off").await;
    store
        .set_client_mfa(&rp.client_id, "required", now)
        .await
        .unwrap();
    mfa_page(password_step(&rp, &UserAgent::new(), CODE_FLOW).await);
    // Both off: the password is enough.
    store
        .set_client_mfa(&rp.client_id, "default", now)
        .await
        .unwrap();
    password_step(&rp, &UserAgent::new(), CODE_FLOW)
        .await
        .client_url();
}

async fn optional_asks_only_users_who_have_a_factor(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    set_server_mfa(&rp, "optional").await;
    let url = password_step(&rp, &UserAgent::new(), CODE_FLOW)
        .await
        .client_url();
    let claims = id_claims_from(&rp, url).await;
    // A policy applied: acr is there.
    assert_eq!(claims["acr"], ACR_PWD);
    enrol_with_cli(&rp);
    mfa_page(password_step(&rp, &UserAgent::new(), CODE_FLOW).await);
}

async fn the_password_grant_refuses_a_required_second_factor(backend: Backend) {
    let rp = Rp::start_with(backend, true, false, &[GrantType::Password]).await;
    let grant = || {
        rp.server.post_form(
            "/token",
            Some(rp.credentials()),
            &[
                ("grant_type", "password"),
                ("username", USER),
                ("password", PASSWORD),
                ("scope", "openid"),
            ],
        )
    };
    let response = grant().await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let claims = rp.id_claims(tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    set_server_mfa(&rp, "required").await;
    let response = grant().await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("second factor"),
        "{body}"
    );
    // A wrong password still gets the generic answer, not the policy's.
    let response = rp
        .server
        .post_form(
            "/token",
            Some(rp.credentials()),
            &[
                ("grant_type", "password"),
                ("username", USER),
                ("password", "wrong"),
            ],
        )
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_description"], "invalid username or password");
}

async fn recovery_codes_are_single_use_and_show_in_amr(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    set_server_mfa(&rp, "required").await;
    let enrolling = UserAgent::new();
    let (_, codes, _) = enrol_through_pages(&rp, &enrolling).await;
    let agent = UserAgent::new();
    let page = mfa_page(password_step(&rp, &agent, CODE_FLOW).await);
    // As typed from paper: lower case, spaces for dashes.
    let typed = codes[3].to_lowercase().replace('-', " ");
    let url = submit(&rp, &agent, &page, &[("recovery_code", &typed)])
        .await
        .client_url();
    let claims = id_claims_from(&rp, url).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "recovery", "mfa"]));
    assert_eq!(claims["acr"], ACR_MFA);
    let used = audit_kinds(&rp, Kind::MfaRecoveryCodeUsed).await;
    assert_eq!(used.len(), 1);
    assert_eq!(used[0]["left"], 9);
    // Used once: refused the second time.
    let agent = UserAgent::new();
    let page = mfa_page(password_step(&rp, &agent, CODE_FLOW).await);
    let (_, status, _) = submit(&rp, &agent, &page, &[("recovery_code", &codes[3])])
        .await
        .page();
    assert_eq!(status, 401);
    // Regenerated: the old ones stop working.
    let fresh = cli_json(&rp, &["user", "mfa", "recovery-codes", USER]);
    assert_eq!(fresh["recovery_codes"].as_array().unwrap().len(), 10);
    let (_, status, _) = submit(&rp, &agent, &page, &[("recovery_code", &codes[4])])
        .await
        .page();
    assert_eq!(status, 401);
    let fresh_code = fresh["recovery_codes"][0].as_str().unwrap();
    submit(&rp, &agent, &page, &[("recovery_code", fresh_code)])
        .await
        .client_url();

    // Self-service: a session that presented its second factor makes new codes, shown once;
    // the previous ones stop working.
    let url = rp.server.url("/mfa/recovery-codes");
    let (page_url, status, body) = enrolling.navigate(&url, &rp.server.base).await.page();
    assert_eq!(status, 200, "{body}");
    let (_, status, body) = enrolling
        .submit(&page_url, &body, &[], &rp.server.base)
        .await
        .page();
    assert_eq!(status, 200, "{body}");
    let mine = listed_codes(&body);
    assert_eq!(mine.len(), 10);
    let agent = UserAgent::new();
    let page = mfa_page(password_step(&rp, &agent, CODE_FLOW).await);
    let stale = fresh["recovery_codes"][1].as_str().unwrap();
    let (_, status, _) = submit(&rp, &agent, &page, &[("recovery_code", stale)])
        .await
        .page();
    assert_eq!(status, 401);
    submit(&rp, &agent, &page, &[("recovery_code", &mine[0])])
        .await
        .client_url();
    // Not without a session, nor with a password-only one, nor without the CSRF token.
    let (_, status, _) = UserAgent::new()
        .navigate(&url, &rp.server.base)
        .await
        .page();
    assert_eq!(status, 403);
    set_server_mfa(&rp, "off").await;
    let password_only = UserAgent::new();
    password_step(&rp, &password_only, CODE_FLOW)
        .await
        .client_url();
    let (_, status, _) = password_only.navigate(&url, &rp.server.base).await.page();
    assert_eq!(status, 403);
    let response = enrolling
        .http
        .post(&url)
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        rp.server
            .store()
            .recovery_codes_left(&rp.user_id)
            .await
            .unwrap(),
        9
    );
}

async fn bad_second_factor_input_is_refused_with_nothing_stored(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let secret = enrol_with_cli(&rp);
    set_server_mfa(&rp, "required").await;
    let agent = UserAgent::new();
    let page = mfa_page(password_step(&rp, &agent, CODE_FLOW).await);
    let long = "1".repeat(10_000);
    let malformed: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("otp", "")],
        vec![("otp", "12345")],
        vec![("otp", "1234567")],
        vec![("otp", "12a456")],
        vec![("otp", "１２３４５６")],
        vec![("otp", "-12345")],
        vec![("otp", &long)],
        vec![("recovery_code", "short")],
        vec![("recovery_code", "0000-0000-0000-0000")],
        vec![("recovery_code", &long)],
    ];
    let before = Snapshot::take(&rp.server).await;
    for fields in &malformed {
        let (url, status, body) = submit(&rp, &agent, &page, fields).await.page();
        assert_eq!(status, 400, "{fields:?}: {body}");
        assert!(url.path().ends_with("/mfa"));
        assert!(body.contains("Enter the six-digit code"), "{fields:?}");
    }
    // Nothing counted, nothing spent, nothing audited: every row of every table as it was.
    before.assert_unchanged(
        &Snapshot::take(&rp.server).await,
        "malformed second factors",
    );
    // Without the CSRF token, or from another browser: refused before anything is read.
    let interaction = hidden_inputs(&page.1)
        .into_iter()
        .find(|(k, _)| k == "interaction")
        .unwrap()
        .1;
    let code = totp(&secret, rp.server.clock_now(), 0);
    let response = agent
        .http
        .post(page.0.clone())
        .form(&[("interaction", interaction.as_str()), ("otp", &code)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = crate::common::http()
        .post(page.0.clone())
        .form(&hidden_inputs(&page.1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // Another user's valid code is a wrong code for this one.
    let other = rp.server.create_user("grace", "pw-grace-123").await;
    let keks = rp.server.state.keys.keks().unwrap();
    let theirs = portcullis::mfa::enrol::totp(
        rp.server.store(),
        keks,
        &other.id,
        true,
        rp.server.clock_now(),
    )
    .await
    .unwrap();
    let (_, status, _) = submit(
        &rp,
        &agent,
        &page,
        &[("otp", &totp(&theirs.secret, rp.server.clock_now(), 0))],
    )
    .await
    .page();
    assert_eq!(status, 401);
    // The right code still works: the refusals spent nothing.
    submit(&rp, &agent, &page, &[("otp", &code)])
        .await
        .client_url();
    // The page needs a signed-in browser: with none, an error page, not a form.
    let (_, status, _) = UserAgent::new()
        .navigate(page.0.as_str(), &rp.server.base)
        .await
        .page();
    assert_eq!(status, 400);
}

async fn totp_secrets_are_sealed_under_the_kek_for_their_user(backend: Backend) {
    let kek = Kek::generate().expose().to_string();
    let server =
        crate::common::TestServer::start_with(backend, move |c| c.keys.kek = SecretValue::new(kek))
            .await;
    let user = server.create_user(USER, PASSWORD).await;
    let other = server.create_user("grace", "pw-grace-123").await;
    let keks = server.state.keys.keks().unwrap();
    let new =
        portcullis::mfa::enrol::totp(server.store(), keks, &user.id, true, server.clock_now())
            .await
            .unwrap();
    let stored = &server.store().mfa_factors_of(&user.id).await.unwrap()[0];
    assert_eq!(stored.secret_storage, "aes-256-gcm");
    assert!(!stored
        .secret
        .windows(new.secret.len())
        .any(|w| w == new.secret.as_slice()));
    let opened = portcullis::mfa::secret::open(
        keks,
        &stored.secret_storage,
        &stored.secret,
        &user.id,
        &stored.id,
    )
    .unwrap();
    assert_eq!(opened, new.secret);
    // Bound to its user: the same envelope does not open as another user's.
    assert!(portcullis::mfa::secret::open(
        keks,
        &stored.secret_storage,
        &stored.secret,
        &other.id,
        &stored.id
    )
    .is_err());
}

async fn the_device_page_cannot_approve_without_a_needed_second_factor(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    set_server_mfa(&rp, "required").await;
    let (tv, _) = rp
        .server
        .register(ClientRequest {
            server_id: "default".into(),
            name: "Living-room TV".into(),
            grant_types: vec![GrantType::DeviceCode],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: vec![],
            default_scopes: vec![],
            public: true,
            first_party: false,
            auth_method: None,
        })
        .await;
    let started: Value = rp
        .server
        .post_form(
            "/device/authorize",
            None,
            &[("client_id", tv.id.as_str()), ("scope", "openid")],
        )
        .await
        .json()
        .await
        .unwrap();
    let agent = UserAgent::new();
    let verification = started["verification_uri"].as_str().unwrap();
    let (url, status, body) = agent.navigate(verification, &rp.server.base).await.page();
    assert_eq!(status, 200, "{body}");
    let user_code = started["user_code"].as_str().unwrap();
    let (url, status, body) = agent
        .submit(
            &url,
            &body,
            &[
                ("user_code", user_code),
                ("username", USER),
                ("password", PASSWORD),
            ],
            &rp.server.base,
        )
        .await
        .page();
    assert_eq!(status, 200, "decision page: {body}");
    let (_, status, body) = agent
        .submit(&url, &body, &[("decision", "allow")], &rp.server.base)
        .await
        .page();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("second factor"), "{body}");
    // Not approved: the device keeps waiting.
    let response = rp
        .server
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", tv.id.as_str()),
                ("device_code", started["device_code"].as_str().unwrap()),
            ],
        )
        .await;
    crate::common::assert_oauth_error(response, 400, "authorization_pending").await;
}

on_both_databases!(
    enrolment_through_the_pages_completes_after_a_valid_code,
    an_abandoned_enrolment_stores_no_factor,
    cli_enrolment_list_and_reset,
    a_code_is_accepted_once,
    one_step_of_drift_is_accepted_and_two_are_refused,
    wrong_codes_count_toward_the_lockout,
    wrong_codes_count_toward_the_sign_in_rate_limits,
    a_password_session_steps_up_without_the_password,
    acr_values_are_advertised_and_force_a_second_factor,
    the_stricter_of_server_and_client_policy_applies,
    optional_asks_only_users_who_have_a_factor,
    the_password_grant_refuses_a_required_second_factor,
    recovery_codes_are_single_use_and_show_in_amr,
    bad_second_factor_input_is_refused_with_nothing_stored,
    totp_secrets_are_sealed_under_the_kek_for_their_user,
    the_device_page_cannot_approve_without_a_needed_second_factor,
);
