//! Passkeys (issue 18, W3C WebAuthn): registration at the enrolment step, a passkey as the
//! second factor, passwordless sign-in with a discoverable credential, `amr` in the ID token,
//! `user mfa list/reset`, and every refusal (wrong origin, wrong RP ID, replayed or stale
//! challenge, another user's or another relying party's credential, bad signature, oversized
//! payload, counter regression) answered with the sign-in page's error and nothing stored. The
//! authenticator is the test's own: a P-256 key generated here, clientDataJSON, authenticator
//! data, attestation object and assertion built by hand.

use std::process::Command;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use base64::Engine;
use ciborium::value::Value as Cbor;
use portcullis::audit::Kind;
use portcullis::store::{AuditFilter, Passkey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;

use crate::common::agent::{attribute, hidden_inputs, html_unescape, query_param};
use crate::common::rp::{Rp, PASSWORD, USER};
use crate::common::{Backend, Landing, OutputWithin, UserAgent};
use crate::on_both_databases;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const CODE_FLOW: &str = "response_type=code&scope=openid&state=st";
const PAGE_ERROR: &str = "That passkey could not be used.";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64url")
}

/// What a test does wrong on purpose.
#[derive(Default, Clone)]
struct Tamper {
    origin: Option<String>,
    rp_id: Option<String>,
    bad_signature: bool,
    /// The counter the authenticator reports (instead of the next one).
    count: Option<u32>,
    no_user_verification: bool,
    user_handle: Option<Vec<u8>>,
    challenge: Option<String>,
}

/// A software authenticator: one P-256 credential.
struct Authenticator {
    key: EcdsaKeyPair,
    credential_id: Vec<u8>,
    count: u32,
    user_handle: Vec<u8>,
}

impl Authenticator {
    fn new() -> Self {
        Self {
            key: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("key"),
            credential_id: portcullis::security::random_bytes(16),
            count: 0,
            user_handle: Vec::new(),
        }
    }

    /// RFC 9052 COSE_Key of the public key (EC2, ES256, P-256).
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        let map = Cbor::Map(vec![
            (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
            (Cbor::Integer(3.into()), Cbor::Integer((-7).into())),
            (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
            (
                Cbor::Integer((-2).into()),
                Cbor::Bytes(point[1..33].to_vec()),
            ),
            (
                Cbor::Integer((-3).into()),
                Cbor::Bytes(point[33..65].to_vec()),
            ),
        ]);
        let mut out = Vec::new();
        ciborium::ser::into_writer(&map, &mut out).expect("cbor");
        out
    }

    fn client_data(kind: &str, options: &Value, origin: &str, t: &Tamper) -> Vec<u8> {
        let challenge = t.challenge.clone().unwrap_or_else(|| {
            options["publicKey"]["challenge"]
                .as_str()
                .unwrap()
                .to_string()
        });
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge,
            "origin": t.origin.as_deref().unwrap_or(origin),
            "crossOrigin": false,
        }))
        .unwrap()
    }

    fn auth_data(&mut self, rp_id: &str, t: &Tamper, attested: bool) -> Vec<u8> {
        self.count += 1;
        let count = t.count.unwrap_or(self.count);
        let mut data = Sha256::digest(t.rp_id.as_deref().unwrap_or(rp_id).as_bytes()).to_vec();
        // UP, UV unless tampered, AT when a credential is attested.
        let mut flags = 0x01u8;
        if !t.no_user_verification {
            flags |= 0x04;
        }
        if attested {
            flags |= 0x40;
        }
        data.push(flags);
        data.extend_from_slice(&count.to_be_bytes());
        if attested {
            data.extend_from_slice(&[0u8; 16]);
            data.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
            data.extend_from_slice(&self.credential_id);
            data.extend_from_slice(&self.cose_key());
        }
        data
    }

    /// `navigator.credentials.create()` for the options the page carries.
    fn create(&mut self, options: &Value, origin: &str, t: &Tamper) -> String {
        let pk = &options["publicKey"];
        assert_eq!(options["mode"], "create");
        self.user_handle = unb64(pk["user"]["id"].as_str().unwrap());
        let client_data = Self::client_data("webauthn.create", options, origin, t);
        let auth_data = self.auth_data(pk["rp"]["id"].as_str().unwrap(), t, true);
        let object = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]);
        let mut attestation = Vec::new();
        ciborium::ser::into_writer(&object, &mut attestation).unwrap();
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&attestation),
                "transports": ["internal"],
            }
        })
        .to_string()
    }

    /// `navigator.credentials.get()` for the options the page carries.
    fn get(&mut self, options: &Value, origin: &str, t: &Tamper) -> String {
        let pk = &options["publicKey"];
        assert_eq!(options["mode"], "get");
        let client_data = Self::client_data("webauthn.get", options, origin, t);
        let auth_data = self.auth_data(pk["rpId"].as_str().unwrap(), t, false);
        let mut message = auth_data.clone();
        message.extend_from_slice(&Sha256::digest(&client_data));
        let mut signature = self
            .key
            .sign(&SystemRandom::new(), &message)
            .expect("sign")
            .as_ref()
            .to_vec();
        if t.bad_signature {
            message.push(0);
            signature = self
                .key
                .sign(&SystemRandom::new(), &message)
                .unwrap()
                .as_ref()
                .to_vec();
        }
        let handle = t.user_handle.clone().unwrap_or(self.user_handle.clone());
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&auth_data),
                "signature": b64(&signature),
                "userHandle": b64(&handle),
            }
        })
        .to_string()
    }
}

/// Press the passkey button of `page` (it posts the page's form to its `formaction`).
async fn start_ceremony(
    rp: &Rp,
    agent: &UserAgent,
    page: &(Url, String),
    ceremony: &str,
) -> CeremonyPage {
    let marker = format!("name=\"ceremony\" value=\"{ceremony}\"");
    let button = page
        .1
        .split("<button ")
        .find(|b| b.contains(&marker))
        .unwrap_or_else(|| panic!("no {ceremony} button: {}", page.1));
    let action = attribute(button, "formaction=\"", "\"").expect("formaction");
    let target = page.0.join(&html_unescape(&action)).unwrap();
    let mut form = hidden_inputs(&page.1);
    form.push(("ceremony".into(), ceremony.into()));
    let response = agent.http.post(target).form(&form).send().await.unwrap();
    let (url, status, body) = agent.follow(response, &rp.server.base).await.page();
    assert_eq!(status, 200, "passkey page: {body}");
    let csp = body.contains("<script nonce=\"");
    assert!(csp, "the script is loaded under the page's nonce: {body}");
    let options = attribute(&body, "data-options=\"", "\"").expect("options");
    let options: Value = serde_json::from_str(&html_unescape(&options)).expect("options JSON");
    CeremonyPage { url, body, options }
}

struct CeremonyPage {
    url: Url,
    body: String,
    options: Value,
}

impl CeremonyPage {
    /// Post `credential` (the JSON the script would post) with the page's form.
    async fn finish(&self, rp: &Rp, agent: &UserAgent, credential: &str) -> Landing {
        agent
            .submit(
                &self.url,
                &self.body,
                &[("credential", credential)],
                &rp.server.base,
            )
            .await
    }
}

/// Sign in with the password on a fresh /authorize; the page we land on.
async fn password_step(rp: &Rp, agent: &UserAgent) -> (Url, String) {
    let landing = agent
        .navigate(&rp.authorize_url(CODE_FLOW), &rp.server.base)
        .await;
    let (url, status, body) = agent
        .sign_in(landing, USER, PASSWORD, &rp.server.base)
        .await
        .page();
    assert_eq!(status, 200, "{body}");
    assert!(url.path().ends_with("/mfa"), "{url}");
    (url, body)
}

async fn login_page(rp: &Rp, agent: &UserAgent) -> (Url, String) {
    let (url, status, body) = agent
        .navigate(&rp.authorize_url(CODE_FLOW), &rp.server.base)
        .await
        .page();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Sign in with a passkey"), "{body}");
    (url, body)
}

async fn id_claims_from(rp: &Rp, client_url: Url) -> Value {
    let code = query_param(&client_url, "code").unwrap_or_else(|| panic!("no code: {client_url}"));
    let tokens = rp.exchange(&code).await;
    rp.id_claims(tokens["id_token"].as_str().expect("id_token"))
        .await
}

async fn required_mfa(backend: Backend) -> Rp {
    let rp = Rp::start(backend, true).await;
    rp.server
        .store()
        .set_server_mfa("default", "required", rp.server.clock_now())
        .await
        .unwrap();
    rp
}

/// Register `authenticator` at the enrolment step; the client URL the sign-in ends at.
async fn register(rp: &Rp, authenticator: &mut Authenticator) -> Url {
    register_in(rp, &UserAgent::new(), authenticator).await
}

async fn register_in(rp: &Rp, agent: &UserAgent, authenticator: &mut Authenticator) -> Url {
    let mfa = password_step(rp, agent).await;
    let ceremony = start_ceremony(rp, agent, &mfa, "register").await;
    let origin = rp.server.base.clone();
    assert_eq!(ceremony.options["publicKey"]["rp"]["id"], "127.0.0.1");
    let credential = authenticator.create(&ceremony.options, &origin, &Tamper::default());
    let (_, status, body) = ceremony.finish(rp, agent, &credential).await.page();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<li><code>"),
        "recovery codes shown once: {body}"
    );
    let interaction = hidden_inputs(&body)
        .into_iter()
        .find(|(k, _)| k == "interaction")
        .unwrap()
        .1;
    let resume = Url::parse_with_params(
        &format!("{}/authorize/resume", rp.server.base),
        &[("interaction", interaction)],
    )
    .unwrap();
    agent
        .navigate(resume.as_str(), &rp.server.base)
        .await
        .client_url()
}

async fn stored_passkeys(rp: &Rp) -> Vec<Passkey> {
    rp.server.store().passkeys_of(&rp.user_id).await.unwrap()
}

async fn audit_count(rp: &Rp, kind: Kind) -> usize {
    rp.server.state.audit.flush().await;
    rp.server
        .store()
        .audit_events(&AuditFilter {
            kind: Some(kind.as_str().to_string()),
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .len()
}

fn cli_json(rp: &Rp, args: &[&str]) -> Value {
    let output = Command::new(BIN)
        .args(args)
        .env("PORTCULLIS_DATABASE_URL", &rp.server.db.url)
        .env("PORTCULLIS_ISSUER", &rp.server.base)
        .env("PORTCULLIS_LOG_LEVEL", "warn")
        .env_remove("PORTCULLIS_CONFIG")
        .bounded_output();
    assert!(
        output.status.success(),
        "portcullis {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON")
}

async fn a_passkey_registers_at_enrolment_and_serves_as_second_factor_and_without_password(
    backend: Backend,
) {
    let rp = required_mfa(backend).await;
    let mut authenticator = Authenticator::new();
    let url = register(&rp, &mut authenticator).await;
    // Creating the passkey (with user verification) was the second factor.
    let claims = id_claims_from(&rp, url).await;
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "user", "mfa"]));
    assert_eq!(claims["acr"], "urn:portcullis:acr:mfa");
    let stored = stored_passkeys(&rp).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].credential_id, b64(&authenticator.credential_id));
    assert_eq!(stored[0].rp_id, "127.0.0.1");
    assert_eq!(stored[0].transports, "internal");
    assert_eq!(audit_count(&rp, Kind::MfaEnrolled).await, 1);
    let origin = rp.server.base.clone();

    // Second factor after the password, in another browser.
    let agent = UserAgent::new();
    let mfa = password_step(&rp, &agent).await;
    let ceremony = start_ceremony(&rp, &agent, &mfa, "authenticate").await;
    assert_eq!(
        ceremony.options["publicKey"]["allowCredentials"][0]["id"],
        b64(&authenticator.credential_id)
    );
    let assertion = authenticator.get(&ceremony.options, &origin, &Tamper::default());
    let url = ceremony.finish(&rp, &agent, &assertion).await.client_url();
    let claims = id_claims_from(&rp, url).await;
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "user", "mfa"]));
    assert_eq!(audit_count(&rp, Kind::MfaVerified).await, 1);
    assert_eq!(stored_passkeys(&rp).await[0].sign_count, 2);

    // Without a password: a discoverable credential, user verified: multi-factor by itself.
    let agent = UserAgent::new();
    let login = login_page(&rp, &agent).await;
    let ceremony = start_ceremony(&rp, &agent, &login, "passwordless").await;
    assert_eq!(ceremony.options["publicKey"]["allowCredentials"], json!([]));
    let assertion = authenticator.get(&ceremony.options, &origin, &Tamper::default());
    let url = ceremony.finish(&rp, &agent, &assertion).await.client_url();
    let claims = id_claims_from(&rp, url).await;
    assert_eq!(claims["amr"], json!(["hwk", "user", "mfa"]));
    assert_eq!(claims["acr"], "urn:portcullis:acr:mfa");
    assert_eq!(claims["sub"], rp.user_id.as_str());

    // Without user verification the passkey is one factor: the required second one is asked.
    let agent = UserAgent::new();
    let login = login_page(&rp, &agent).await;
    let ceremony = start_ceremony(&rp, &agent, &login, "passwordless").await;
    let no_uv = Tamper {
        no_user_verification: true,
        ..Tamper::default()
    };
    let assertion = authenticator.get(&ceremony.options, &origin, &no_uv);
    let (url, status, _) = ceremony.finish(&rp, &agent, &assertion).await.page();
    assert_eq!(status, 200);
    assert!(
        url.path().ends_with("/mfa"),
        "asked for a second factor: {url}"
    );

    // The operator sees the passkey and can remove it.
    let listed = cli_json(&rp, &["user", "mfa", "list", USER]);
    let passkey = listed["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "passkey")
        .expect("passkey listed")
        .clone();
    assert_eq!(passkey["sign_count"], 4);
    let id = passkey["id"].as_str().unwrap();
    let reset = cli_json(&rp, &["user", "mfa", "reset", USER, "--factor", id]);
    assert_eq!(reset["removed"], 1);
    assert!(stored_passkeys(&rp).await.is_empty());
}

/// One refused passwordless attempt: the login page's error, 401, and nothing changed.
async fn refused_passwordless(
    rp: &Rp,
    authenticator: &mut Authenticator,
    tamper: Tamper,
    what: &str,
) {
    let before = stored_passkeys(rp).await;
    let sign_ins = audit_count(rp, Kind::SignIn).await;
    let agent = UserAgent::new();
    let login = login_page(rp, &agent).await;
    let ceremony = start_ceremony(rp, &agent, &login, "passwordless").await;
    let assertion = authenticator.get(&ceremony.options, &rp.server.base, &tamper);
    let (url, status, body) = ceremony.finish(rp, &agent, &assertion).await.page();
    assert_eq!(status, 401, "{what}: {body}");
    assert!(url.path().ends_with("/mfa/passkey/finish"), "{what}: {url}");
    assert!(
        body.contains(PAGE_ERROR),
        "{what}: the sign-in page's error: {body}"
    );
    assert!(
        body.contains("id=\"sign-in\""),
        "{what}: the login page again"
    );
    let after = stored_passkeys(rp).await;
    assert_eq!(
        before.iter().map(|p| p.sign_count).collect::<Vec<_>>(),
        after.iter().map(|p| p.sign_count).collect::<Vec<_>>(),
        "{what}: nothing stored"
    );
    assert_eq!(
        audit_count(rp, Kind::SignIn).await,
        sign_ins,
        "{what}: no session"
    );
    // `what` is the reason the refusal is audited with.
    assert!(
        failure_reasons(rp).await.iter().any(|r| r == what),
        "refused for the reason {what}: {:?}",
        failure_reasons(rp).await
    );
}

/// The reasons of the refusals audited so far.
async fn failure_reasons(rp: &Rp) -> Vec<String> {
    rp.server.state.audit.flush().await;
    rp.server
        .store()
        .audit_events(&AuditFilter {
            kind: Some(Kind::MfaFailed.as_str().to_string()),
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            let detail: Value = serde_json::from_str(&e.detail).unwrap();
            detail["reason"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

async fn bad_passkey_input_is_refused_with_the_sign_in_pages_error_and_nothing_stored(
    backend: Backend,
) {
    let rp = required_mfa(backend).await;
    let mut authenticator = Authenticator::new();
    register(&rp, &mut authenticator).await;
    let other_origin = rp.server.base.replace("127.0.0.1", "localhost");
    for (what, tamper) in [
        (
            "wrong_origin",
            Tamper {
                origin: Some(other_origin.clone()),
                ..Tamper::default()
            },
        ),
        (
            "wrong_rp_id",
            Tamper {
                rp_id: Some("evil.example".into()),
                ..Tamper::default()
            },
        ),
        (
            "bad_signature",
            Tamper {
                bad_signature: true,
                ..Tamper::default()
            },
        ),
        (
            "counter_regression",
            Tamper {
                count: Some(1),
                ..Tamper::default()
            },
        ),
        (
            "credential_of_another_user",
            Tamper {
                user_handle: Some(b"someone-else".to_vec()),
                ..Tamper::default()
            },
        ),
        (
            "unknown_challenge",
            Tamper {
                challenge: Some(b64(&[7; 32])),
                ..Tamper::default()
            },
        ),
    ] {
        refused_passwordless(&rp, &mut authenticator, tamper, what).await;
    }
    let failures = audit_count(&rp, Kind::MfaFailed).await;
    assert!(failures >= 6, "refusals audited: {failures}");

    // A stale challenge: older than its lifetime.
    let agent = UserAgent::new();
    let login = login_page(&rp, &agent).await;
    let ceremony = start_ceremony(&rp, &agent, &login, "passwordless").await;
    rp.server
        .clock
        .advance(portcullis::endpoints::passkey::CHALLENGE_TTL + 1);
    let assertion = authenticator.get(&ceremony.options, &rp.server.base, &Tamper::default());
    let (_, status, body) = ceremony.finish(&rp, &agent, &assertion).await.page();
    assert_eq!(status, 401, "stale: {body}");
    assert!(failure_reasons(&rp)
        .await
        .contains(&"stale_challenge".to_string()));
    assert!(body.contains(PAGE_ERROR));

    // A replayed challenge: the first use signs in, the same assertion again is refused.
    let agent = UserAgent::new();
    let login = login_page(&rp, &agent).await;
    let ceremony = start_ceremony(&rp, &agent, &login, "passwordless").await;
    let assertion = authenticator.get(&ceremony.options, &rp.server.base, &Tamper::default());
    ceremony.finish(&rp, &agent, &assertion).await.client_url();
    let agent = UserAgent::new();
    let login = login_page(&rp, &agent).await;
    let again = start_ceremony(&rp, &agent, &login, "passwordless").await;
    let (_, status, body) = again.finish(&rp, &agent, &assertion).await.page();
    assert_eq!(status, 401, "replay: {body}");
    assert_eq!(
        failure_reasons(&rp)
            .await
            .iter()
            .filter(|r| *r == "unknown_challenge")
            .count(),
        2,
        "a replayed challenge is unknown: it was taken"
    );
    assert!(body.contains(PAGE_ERROR));

    // A challenge is bound to the browser and interaction it was handed to: another browser's
    // challenge, posted in this one's ceremony, is refused.
    let (agent_a, agent_b) = (UserAgent::new(), UserAgent::new());
    let login_a = login_page(&rp, &agent_a).await;
    let ceremony_a = start_ceremony(&rp, &agent_a, &login_a, "passwordless").await;
    let login_b = login_page(&rp, &agent_b).await;
    let ceremony_b = start_ceremony(&rp, &agent_b, &login_b, "passwordless").await;
    let stolen = authenticator.get(&ceremony_a.options, &rp.server.base, &Tamper::default());
    let (_, status, body) = ceremony_b.finish(&rp, &agent_b, &stolen).await.page();
    assert_eq!(status, 401, "another browser's challenge: {body}");
    assert!(failure_reasons(&rp)
        .await
        .contains(&"challenge_of_another_ceremony".to_string()));

    // An oversized payload is refused before it is parsed.
    let agent = UserAgent::new();
    let login = login_page(&rp, &agent).await;
    let ceremony = start_ceremony(&rp, &agent, &login, "passwordless").await;
    let huge = format!("{{\"pad\":\"{}\"}}", "A".repeat(20_000));
    let (_, status, body) = ceremony.finish(&rp, &agent, &huge).await.page();
    assert_eq!(status, 401, "oversized: {body}");
    assert!(failure_reasons(&rp)
        .await
        .contains(&"oversized".to_string()));
    assert!(body.contains(PAGE_ERROR));

    // Another user's credential, as the second factor of this user: refused.
    let other = rp.server.create_user("mallory", "mallory's password").await;
    let mut mallorys = Authenticator::new();
    rp.server
        .store()
        .insert_passkey(&Passkey {
            id: "passkey_mallory".into(),
            credential_id: b64(&mallorys.credential_id),
            user_id: other.id.clone(),
            rp_id: "127.0.0.1".into(),
            public_key: mallorys.cose_key(),
            sign_count: 0,
            name: "Passkey".into(),
            transports: String::new(),
            created_at: rp.server.clock_now(),
            last_used_at: None,
        })
        .await
        .unwrap();
    mallorys.user_handle = rp.user_id.as_bytes().to_vec();
    let agent = UserAgent::new();
    let mfa = password_step(&rp, &agent).await;
    let ceremony = start_ceremony(&rp, &agent, &mfa, "authenticate").await;
    let assertion = mallorys.get(&ceremony.options, &rp.server.base, &Tamper::default());
    let (url, status, body) = ceremony.finish(&rp, &agent, &assertion).await.page();
    assert_eq!(status, 401, "another user's credential: {body}");
    assert_eq!(
        failure_reasons(&rp)
            .await
            .iter()
            .filter(|r| *r == "credential_of_another_user")
            .count(),
        2
    );
    assert!(
        body.contains(PAGE_ERROR) && body.contains("name=\"otp\""),
        "the second-factor page's error: {url}"
    );
    assert_eq!(audit_count(&rp, Kind::MfaVerified).await, 0);

    // A credential registered for another relying party: refused.
    let mut foreign = Authenticator::new();
    rp.server
        .store()
        .insert_passkey(&Passkey {
            id: "passkey_foreign".into(),
            credential_id: b64(&foreign.credential_id),
            user_id: rp.user_id.clone(),
            rp_id: "other.example".into(),
            public_key: foreign.cose_key(),
            sign_count: 0,
            name: "Passkey".into(),
            transports: String::new(),
            created_at: rp.server.clock_now(),
            last_used_at: None,
        })
        .await
        .unwrap();
    foreign.user_handle = rp.user_id.as_bytes().to_vec();
    refused_passwordless(
        &rp,
        &mut foreign,
        Tamper::default(),
        "credential_of_another_relying_party",
    )
    .await;

    // Registration with a wrong origin stores no passkey.
    rp.server
        .store()
        .reset_mfa(&rp.user_id, None)
        .await
        .unwrap();
    let agent = UserAgent::new();
    let mfa = password_step(&rp, &agent).await;
    let ceremony = start_ceremony(&rp, &agent, &mfa, "register").await;
    let mut fresh = Authenticator::new();
    let credential = fresh.create(
        &ceremony.options,
        &rp.server.base,
        &Tamper {
            origin: Some(other_origin),
            ..Tamper::default()
        },
    );
    let (_, status, body) = ceremony.finish(&rp, &agent, &credential).await.page();
    assert_eq!(status, 401, "{body}");
    assert!(body.contains(PAGE_ERROR));
    assert!(stored_passkeys(&rp).await.is_empty(), "nothing stored");
    assert!(failure_reasons(&rp)
        .await
        .contains(&"wrong_origin".to_string()));
}

/// The options and form of a passkey page reached by following `landing`.
fn ceremony_page(landing: Landing) -> CeremonyPage {
    let (url, status, body) = landing.page();
    assert_eq!(status, 200, "passkey page: {body}");
    let options = attribute(&body, "data-options=\"", "\"").expect("options");
    let options: Value = serde_json::from_str(&html_unescape(&options)).expect("options JSON");
    CeremonyPage { url, body, options }
}

async fn a_signed_in_user_adds_passkeys_on_the_passkeys_page_after_a_second_factor(
    backend: Backend,
) {
    let rp = required_mfa(backend).await;
    let agent = UserAgent::new();
    let mut first = Authenticator::new();
    register_in(&rp, &agent, &mut first).await;
    let page_url = format!("{}/mfa/passkeys", rp.server.base);
    let (url, status, body) = agent.navigate(&page_url, &rp.server.base).await.page();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&stored_passkeys(&rp).await[0].id),
        "listed: {body}"
    );

    let ceremony = ceremony_page(agent.submit(&url, &body, &[], &rp.server.base).await);
    assert_eq!(
        ceremony.options["publicKey"]["excludeCredentials"][0]["id"],
        b64(&first.credential_id),
        "the passkeys the user has are excluded"
    );
    let mut second = Authenticator::new();
    let credential = second.create(&ceremony.options, &rp.server.base, &Tamper::default());
    let (_, status, body) = ceremony.finish(&rp, &agent, &credential).await.page();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Passkey added."), "{body}");
    assert_eq!(stored_passkeys(&rp).await.len(), 2);

    // The same credential again, or a challenge used twice: refused, nothing stored.
    let (url, _, body) = agent.navigate(&page_url, &rp.server.base).await.page();
    let ceremony = ceremony_page(agent.submit(&url, &body, &[], &rp.server.base).await);
    let again = first.create(&ceremony.options, &rp.server.base, &Tamper::default());
    let (_, status, body) = ceremony.finish(&rp, &agent, &again).await.page();
    assert_eq!(status, 401, "{body}");
    assert!(body.contains(PAGE_ERROR));
    let (_, status, _) = ceremony.finish(&rp, &agent, &credential).await.page();
    assert_eq!(status, 401, "a spent challenge");
    assert_eq!(stored_passkeys(&rp).await.len(), 2);
    let reasons = failure_reasons(&rp).await;
    assert!(
        reasons.contains(&"credential_already_registered".to_string()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"unknown_challenge".to_string()),
        "{reasons:?}"
    );

    // The user removes one; someone else's id is refused.
    let (url, _, body) = agent.navigate(&page_url, &rp.server.base).await.page();
    let csrf = hidden_inputs(&body)
        .into_iter()
        .find(|(k, _)| k == "csrf_token")
        .unwrap()
        .1;
    let remove = url.join("/mfa/passkeys/remove").unwrap();
    let refused = agent
        .http
        .post(remove.clone())
        .form(&[("csrf_token", csrf.as_str()), ("passkey", "passkey_nobody")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let id = stored_passkeys(&rp).await[0].id.clone();
    let removed = agent
        .http
        .post(remove)
        .form(&[("csrf_token", csrf.as_str()), ("passkey", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 200);
    assert!(removed.text().await.unwrap().contains("Passkey removed."));
    assert_eq!(stored_passkeys(&rp).await.len(), 1);
    assert_eq!(audit_count(&rp, Kind::MfaReset).await, 1);

    // A password-only session cannot add a factor.
    rp.server
        .store()
        .set_server_mfa("default", "off", rp.server.clock_now())
        .await
        .unwrap();
    let password_only = UserAgent::new();
    let landing = password_only
        .navigate(&rp.authorize_url(CODE_FLOW), &rp.server.base)
        .await;
    password_only
        .sign_in(landing, USER, PASSWORD, &rp.server.base)
        .await
        .client_url();
    let (_, status, _) = password_only
        .navigate(&page_url, &rp.server.base)
        .await
        .page();
    assert_eq!(status, 403);
}

on_both_databases!(
    a_signed_in_user_adds_passkeys_on_the_passkeys_page_after_a_second_factor,
    a_passkey_registers_at_enrolment_and_serves_as_second_factor_and_without_password,
    bad_passkey_input_is_refused_with_the_sign_in_pages_error_and_nothing_stored,
);
