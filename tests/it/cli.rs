//! The `portcullis` binary, as an operator uses it: serve, create a client, get a token,
//! verify it with the JWKS; add a server; rotate keys; configuration errors.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::replicas::serve_on_free_port;
use crate::common::{http, Backend, OutputWithin, TestDatabase};
use crate::jwt::{fetch_jwks, kid_of, verify};
use crate::on_both_databases;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn portcullis(env: &[(String, String)], args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env_remove("PORTCULLIS_CONFIG")
        .bounded_output()
}

fn json_of(output: &std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "portcullis failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

async fn the_readme_walkthrough_works_with_the_binary(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env_for = |port: u16| {
        vec![
            ("PORTCULLIS_DATABASE_URL".to_string(), db.url.clone()),
            (
                "PORTCULLIS_ISSUER".to_string(),
                format!("http://127.0.0.1:{port}"),
            ),
            ("PORTCULLIS_KEYS_CACHE_TTL".to_string(), "1s".to_string()),
        ]
    };
    // Its log is shown if the test fails.
    let mut serve = serve_on_free_port(env_for, dir.path().join("serve.log"), false).await;
    let base = format!("http://{}", serve.addr());
    let env = serve.env().to_vec();
    let http = http();

    let created = json_of(&portcullis(
        &env,
        &[
            "client",
            "create",
            "--server",
            "default",
            "--name",
            "billing",
            "--grant-type",
            "client_credentials",
            "--scope",
            "invoices.read",
        ],
    ));
    let id = created["client_id"].as_str().expect("client_id");
    let secret = created["client_secret"]
        .as_str()
        .expect("client_secret shown once");
    let shown = json_of(&portcullis(&env, &["client", "show", id]));
    assert!(
        shown.get("client_secret").is_none(),
        "the secret is shown only at creation"
    );

    let response = http
        .post(format!("{base}/token"))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "invoices.read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_string();
    let jwks = fetch_jwks(&http, &format!("{base}/keys")).await;
    let claims = verify(&token, &jwks, &base, "api://default").expect("verifies with the JWKS");
    assert_eq!(claims["scope"], "invoices.read");

    // A second authorization server, with its own issuer.
    let server = json_of(&portcullis(&env, &["server", "create", "--id", "partners"]));
    assert_eq!(server["issuer"], format!("{base}/oauth2/partners"));
    // RFC 9700 §2.1.1: a new server requires PKCE of every client unless told otherwise.
    assert_eq!(server["require_pkce"], true);
    let legacy = json_of(&portcullis(
        &env,
        &[
            "server",
            "create",
            "--id",
            "legacy",
            "--require-pkce",
            "false",
        ],
    ));
    assert_eq!(legacy["require_pkce"], false);
    // default, admin (built in), tenant and legacy.
    let listed = json_of(&portcullis(&env, &["server", "list"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(4));

    // Rotation from the CLI reaches the running server (its key cache lives 1s).
    let rotated = json_of(&portcullis(
        &env,
        &[
            "keys",
            "rotate",
            "--server",
            "default",
            "--activate-in",
            "0s",
        ],
    ));
    let new_kid = rotated["kid"].as_str().unwrap().to_string();
    let keys = json_of(&portcullis(&env, &["keys", "list", "--server", "default"]));
    let statuses: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["retired", "active"]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let response = http
        .post(format!("{base}/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let new_token = body["access_token"].as_str().unwrap();
    assert_eq!(kid_of(new_token), new_kid);
    let jwks = fetch_jwks(&http, &format!("{base}/keys")).await;
    verify(&token, &jwks, &base, "api://default").expect("the old token still verifies");
    verify(new_token, &jwks, &base, "api://default").expect("the new token verifies");

    // SIGTERM: a graceful shutdown, exit status 0.
    let status = serve.terminate().await;
    assert!(
        status.success(),
        "serve exits cleanly on SIGTERM: {status:?}\n{}",
        serve.log_text()
    );

    let deleted = json_of(&portcullis(&env, &["client", "delete", id]));
    assert_eq!(deleted["deleted"], id);
    let client = portcullis(&env, &["client", "show", id]);
    assert!(!client.status.success(), "deleted");
}

/// Invalid configuration fails at start with a message naming the key.
#[test]
fn config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("x.db").display());
    let cases: [(&str, &str, &str); 4] = [
        (
            "PORTCULLIS_TOKENS_ACCESS_TOKEN_TTL",
            "soon",
            "tokens.access_token_ttl",
        ),
        ("PORTCULLIS_LISTEN", "not-an-address", "listen"),
        ("PORTCULLIS_ISSUER", "ftp://example.com", "issuer"),
        ("PORTCULLIS_DATABASE_URL", "mysql://db", "database_url"),
    ];
    for (var, value, key) in cases {
        let mut env = vec![("PORTCULLIS_DATABASE_URL".to_string(), db.clone())];
        env.push((var.to_string(), value.to_string()));
        let output = portcullis(&env, &["serve"]);
        assert_eq!(output.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{var}={value}: {stderr}");
    }
    // A file with an unknown key, and one with a bad value.
    for (text, key) in [
        ("listen = \"127.0.0.1:1\"\nlisten_port = 3\n", "listen_port"),
        (
            "[tokens]\nid_token_ttl = \"forever\"\n",
            "tokens.id_token_ttl",
        ),
    ] {
        let file = dir.path().join("portcullis.toml");
        std::fs::write(&file, text).unwrap();
        let env = vec![("PORTCULLIS_DATABASE_URL".to_string(), db.clone())];
        let output = portcullis(&env, &["--config", file.to_str().unwrap(), "migrate"]);
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{text}: {stderr}");
    }
}

/// The documented configuration file is itself valid and lists the defaults.
#[test]
fn documented_config_file_loads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/portcullis.toml");
    let config =
        portcullis::config::Config::load_with_env(Some(std::path::Path::new(path)), |_| None)
            .expect("config/portcullis.toml is valid");
    let defaults = portcullis::config::Config::default();
    assert_eq!(
        toml::to_string(&config).unwrap(),
        toml::to_string(&defaults).unwrap(),
        "config/portcullis.toml documents exactly the defaults"
    );
}

on_both_databases!(the_readme_walkthrough_works_with_the_binary);
