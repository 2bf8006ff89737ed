//! Property tests (proptest) over every parser of untrusted input: any input gives a value or
//! the RFC's error, never a panic, and what is accepted is exactly what the grammar allows.
//! The HTTP-level properties (arbitrary requests to /token and /authorize) are in
//! attacks/bad_input.rs.

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use portcullis::endpoints::userinfo::bearer_token;
use portcullis::protocol::{pkce, redirect_uri, FormParams, PresentedCredentials, ScopeSet};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::common::{Backend, TestServer};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Arbitrary text weighted towards the characters parsers care about.
fn texty() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ a-zA-Z0-9:/?#@!$&'()*+,;=%._~\\[\\]\"\\\\\t\n-]{0,40}",
    ]
}

fn scope_token_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

proptest! {
    #![proptest_config(config(512))]

    /// RFC 6749 §3.3: a scope string parses iff every space-separated token is in the grammar;
    /// the set prints and parses back to itself.
    #[test]
    fn scope_parsing_follows_the_grammar(raw in texty()) {
        let grammatical = raw
            .split(' ')
            .filter(|t| !t.is_empty())
            .all(|t| t.bytes().all(scope_token_char));
        match ScopeSet::parse(&raw) {
            Ok(set) => {
                prop_assert!(grammatical);
                prop_assert_eq!(ScopeSet::parse(&set.to_string()).unwrap(), set);
            }
            Err(_) => prop_assert!(!grammatical),
        }
    }

    #[test]
    fn scope_order_and_repetition_do_not_matter(
        tokens in proptest::collection::vec("[!#-\\[\\]-~]{1,8}", 0..6),
        seed in any::<u64>(),
    ) {
        let mut shuffled = tokens.clone();
        shuffled.extend(tokens.iter().take((seed % 3) as usize).cloned());
        let by = if shuffled.is_empty() { 0 } else { (seed as usize) % shuffled.len() };
        shuffled.rotate_left(by);
        prop_assert_eq!(
            ScopeSet::parse(&tokens.join(" ")).unwrap(),
            ScopeSet::parse(&shuffled.join("  ")).unwrap()
        );
    }

    /// RFC 6749 §3.1.2.3 and RFC 9700 §4.1.3: a non-loopback registration matches only itself.
    #[test]
    fn a_redirect_uri_matches_only_byte_for_byte(requested in texty(), mutation in mutated("https://app.example/cb")) {
        let registered = vec!["https://app.example/cb".to_string()];
        for candidate in [requested, mutation] {
            let matched = redirect_uri::find_match(&registered, &candidate).is_some();
            prop_assert_eq!(matched, candidate == registered[0], "{:?}", candidate);
        }
    }

    /// RFC 8252 §7.3: a loopback registration matches itself with any port, and nothing else.
    #[test]
    fn a_loopback_redirect_uri_matches_with_any_port_only(
        // An explicit :80 is refused: it is not what the URL parser keeps (see the matcher).
        port in (1u16..).prop_filter("default port", |p| *p != 80),
        mutation in mutated("http://127.0.0.1/cb"),
    ) {
        let registered = vec!["http://127.0.0.1/cb".to_string()];
        let with_port = format!("http://127.0.0.1:{port}/cb");
        prop_assert!(redirect_uri::find_match(&registered, &with_port).is_some());
        let matched = redirect_uri::find_match(&registered, &mutation).is_some();
        let allowed = mutation == registered[0]
            || mutation
                .strip_prefix("http://127.0.0.1:")
                .and_then(|rest| rest.strip_suffix("/cb"))
                .and_then(|p| p.parse::<u16>().ok().filter(|n| *n != 0 && *n != 80 && p == n.to_string()))
                .is_some();
        prop_assert_eq!(matched, allowed, "{:?}", mutation);
    }

    /// RFC 7636 §4.1: 43 to 128 unreserved characters, and only those.
    #[test]
    fn pkce_verifier_grammar(verifier in prop_oneof![any::<String>(), "[A-Za-z0-9._~+/=-]{40,130}"]) {
        let expected = (43..=128).contains(&verifier.len())
            && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        prop_assert_eq!(pkce::is_valid_verifier(&verifier), expected);
    }

    /// RFC 7636 §4.6: a verifier matches its own S256 challenge and no other.
    #[test]
    fn pkce_challenge_matches_only_its_verifier(
        v in "[A-Za-z0-9._~-]{43,128}",
        w in "[A-Za-z0-9._~-]{43,128}",
        junk in any::<String>(),
    ) {
        let challenge = pkce::s256(&v);
        prop_assert!(pkce::is_valid_s256_challenge(&challenge));
        prop_assert!(pkce::verify_s256(&v, &challenge));
        prop_assert_eq!(pkce::verify_s256(&w, &challenge), v == w);
        prop_assert!(!pkce::verify_s256(&junk, &challenge) || junk == v);
        prop_assert!(!pkce::verify_s256(&v, &junk) || junk == challenge);
    }

    /// RFC 6749 §2.3.1: any Authorization header is Basic credentials or invalid_client (or
    /// invalid_request for two methods at once), never a panic.
    #[test]
    fn any_authorization_header_is_credentials_or_invalid_client(
        raw in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..80),
            any::<Vec<u8>>().prop_map(|b| format!("Basic {}", STANDARD.encode(b)).into_bytes()),
            "[a-zA-Z0-9:%+ ]{0,30}".prop_map(|s| format!("Basic {}", STANDARD.encode(s)).into_bytes()),
        ],
        body in "(client_id=[a-z]{0,3})?(&client_secret=[a-z]{0,3})?",
    ) {
        let Ok(value) = HeaderValue::from_bytes(&raw) else { return Ok(()); };
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value);
        let form = FormParams::parse(body.as_bytes()).unwrap();
        match PresentedCredentials::from_request(&headers, &form) {
            Ok(creds) => {
                prop_assert!(!creds.client_id().is_empty());
            }
            Err(e) => prop_assert!(
                matches!(e.code.as_str(), "invalid_client" | "invalid_request"),
                "{}", e.code.as_str()
            ),
        }
    }

    /// The client's side of RFC 6749 §2.3.1 (form-urlencode id and secret, then Basic) parses
    /// back to exactly what was sent, whatever the characters (a client_id's printable: a
    /// control character in one is invalid_client).
    #[test]
    fn basic_credentials_round_trip(id in "[^\\p{Cc}]{1,30}", secret in ".{1,30}") {
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let value = format!("Basic {}", STANDARD.encode(format!("{}:{}", encode(&id), encode(&secret))));
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
        match PresentedCredentials::from_request(&headers, &FormParams::default()).unwrap() {
            PresentedCredentials::Basic { client_id, secret: s } => {
                prop_assert_eq!(client_id, id);
                prop_assert_eq!(s.expose(), secret.as_str());
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// A client_id holding a control character (NUL above all) names no client.
    #[test]
    fn a_basic_client_id_with_a_control_character_is_invalid_client(
        before in "[a-z]{0,8}",
        control in "\\p{Cc}",
        after in "[a-z]{0,8}",
    ) {
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let id = format!("{before}{control}{after}");
        let value = format!("Basic {}", STANDARD.encode(format!("{}:secret", encode(&id))));
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
        let error = PresentedCredentials::from_request(&headers, &FormParams::default()).unwrap_err();
        prop_assert_eq!(error.code.as_str(), "invalid_client");
    }

    /// RFC 6750 §2.1: a bearer header is the token after `Bearer ` or invalid_token.
    #[test]
    fn any_bearer_header_is_a_token_or_invalid_token(
        raw in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..60),
            "(Bearer|bearer|BEARER|Basic|Bearer:)? ?[ -~]{0,40}".prop_map(String::into_bytes),
        ],
    ) {
        let Ok(value) = HeaderValue::from_bytes(&raw) else { return Ok(()); };
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value);
        let text = std::str::from_utf8(&raw).ok();
        match bearer_token(&Method::GET, &headers, Ok(Bytes::new())) {
            Ok(token) => {
                let text = text.expect("a token from UTF-8 only");
                let (scheme, rest) = text.split_once(' ').expect("scheme and token");
                prop_assert!(scheme.eq_ignore_ascii_case("bearer"));
                prop_assert_eq!(token.as_str(), rest.trim());
                prop_assert!(!token.is_empty());
            }
            Err(e) => prop_assert_eq!(e.code.as_str(), "invalid_token"),
        }
    }

    #[test]
    fn bearer_round_trip(token in "[A-Za-z0-9._~+/=-]{1,200}") {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        prop_assert_eq!(bearer_token(&Method::GET, &headers, Ok(Bytes::new())).unwrap(), token);
    }

    /// RFC 6749 §3.1: any byte string is a form or invalid_request; a parameter repeated with
    /// values is refused; bytes that are not UTF-8 are refused, not replaced.
    #[test]
    fn any_bytes_are_a_form_or_invalid_request(raw in prop_oneof![
        any::<Vec<u8>>(),
        "([a-c%=&+]|%[0-9A-Fa-f]{2}){0,40}".prop_map(String::into_bytes),
    ]) {
        match FormParams::parse(&raw) {
            Ok(form) => {
                let mut seen = std::collections::BTreeSet::new();
                for pair in url::form_urlencoded::parse(&raw) {
                    if !pair.1.is_empty() {
                        prop_assert!(seen.insert(pair.0.to_string()), "a repeated parameter was accepted");
                    }
                }
                for (name, value) in form.iter() {
                    prop_assert!(!value.is_empty(), "{}", name);
                }
            }
            Err(e) => prop_assert_eq!(e.code.as_str(), "invalid_request"),
        }
    }

    #[test]
    fn forms_round_trip_and_repetition_is_refused(
        // NUL is refused in any parameter (PostgreSQL text cannot hold it): see bad_input.
        params in proptest::collection::btree_map("[^\\x00]{1,12}", "[^\\x00]{1,40}", 0..8),
        repeat in any::<proptest::sample::Index>(),
    ) {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        let form = FormParams::parse(encoded.as_bytes()).unwrap();
        let parsed: std::collections::BTreeMap<String, String> =
            form.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        prop_assert_eq!(&parsed, &params);
        if !params.is_empty() {
            let (name, value) = params.iter().nth(repeat.index(params.len())).unwrap();
            let twice = url::form_urlencoded::Serializer::new(encoded.clone())
                .append_pair(name, value)
                .finish();
            prop_assert_eq!(FormParams::parse(twice.as_bytes()).unwrap_err().code.as_str(), "invalid_request");
            let non_utf8 = format!("{encoded}&x=%FF%FE");
            prop_assert!(FormParams::parse(non_utf8.as_bytes()).is_err());
        }
    }
}

/// `base` with one character inserted, removed or replaced (or unchanged).
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    let chars: Vec<char> = base.chars().collect();
    let len = chars.len();
    (
        0..4u8,
        0..=len,
        prop_oneof![
            Just(':'),
            Just('/'),
            Just('.'),
            Just('@'),
            Just('%'),
            Just('\\'),
            Just('#'),
            Just('?'),
            Just('A'),
            Just('1'),
            Just('0'),
            Just(' '),
            Just('\u{430}'),
            any::<char>()
        ],
    )
        .prop_map(move |(op, at, c)| {
            let mut out = chars.clone();
            match op {
                0 => out.insert(at, c),
                1 if at < len => {
                    out.remove(at);
                }
                2 if at < len => out[at] = c,
                _ => {}
            }
            out.into_iter().collect()
        })
}

fn verify_error(
    token: &str,
    keys: &portcullis::keys::KeySet,
    issuer: &str,
    audience: &str,
    now: i64,
) -> bool {
    portcullis::tokens::verify::verify::<serde_json::Value>(
        token,
        keys,
        issuer,
        audience,
        portcullis::tokens::verify::Expected::AccessToken {
            audience_check: true,
        },
        now,
    )
    .is_err()
}

/// tokens::verify: an arbitrary string is never accepted, and a genuine token changed in any
/// one character (or cut, or extended) is never accepted either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_accepts_only_unmodified_genuine_tokens() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (client, secret) = server.service_client("default", &["a"]).await;
    let genuine = server
        .client_credentials_token("", (&client.id, secret.expose()))
        .await;
    let now = server.clock_now();
    let stored = server.store().server("default").await.unwrap().unwrap();
    let keys = server.state.keys.key_set(&stored, now).await.unwrap();
    let issuer = server.issuer("default");
    let audience = stored.audience.clone();
    assert!(
        !verify_error(&genuine, &keys, &issuer, &audience, now),
        "control"
    );
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        failure_persistence: None,
        ..Config::default()
    });
    let len = genuine.len();
    let strategy = (
        0..len,
        0..3u8,
        prop_oneof![
            proptest::char::range('A', 'Z'),
            proptest::char::range('a', 'z'),
            proptest::char::range('0', '9'),
            Just('-'),
            Just('_'),
            Just('.'),
            Just('='),
            Just('+'),
            Just('/'),
        ],
    );
    runner
        .run(&strategy, |(at, op, c)| {
            let mut token: Vec<char> = genuine.chars().collect();
            match op {
                0 => token[at] = c,
                1 => token.insert(at, c),
                _ => {
                    token.remove(at);
                }
            }
            let token: String = token.into_iter().collect();
            if token != genuine {
                prop_assert!(
                    verify_error(&token, &keys, &issuer, &audience, now),
                    "accepted {}",
                    token
                );
            }
            Ok(())
        })
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 500,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &prop_oneof![any::<String>(), "[A-Za-z0-9_.-]{0,400}"],
            |s| {
                prop_assert!(verify_error(&s, &keys, &issuer, &audience, now));
                Ok(())
            },
        )
        .unwrap();
}
