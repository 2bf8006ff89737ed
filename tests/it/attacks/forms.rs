//! Cross-site request forgery on the login, consent and logout forms, and session fixation.
//!
//! Also proven elsewhere: the login form without a CSRF token, with a forged one, or from
//! another browser (interaction::login_form_without_a_valid_csrf_token_is_refused); the session
//! cookie after sign-in is not a planted value (interaction::signing_in_issues_a_new_session_id).

use std::sync::Arc;

use reqwest::cookie::Jar;
use url::Url;

use crate::common::agent::{hidden_inputs, query_param};
use crate::common::rp::{Rp, PASSWORD, USER};
use crate::common::snapshot::Snapshot;
use crate::common::{Backend, Landing};
use crate::on_both_databases;

type Form = Vec<(String, String)>;

fn with(form: &[(String, String)], name: &str, value: Option<&str>) -> Form {
    let mut out: Form = form.iter().filter(|(k, _)| k != name).cloned().collect();
    if let Some(v) = value {
        out.push((name.into(), v.into()));
    }
    out
}

fn field(form: &[(String, String)], name: &str) -> String {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {name} in {form:?}"))
}

async fn post(http: &reqwest::Client, url: Url, form: &[(String, String)]) -> reqwest::Response {
    http.post(url).form(form).send().await.expect("POST")
}

/// The consent form refuses a missing, forged or wrong-purpose CSRF token and another
/// browser: 403, no code, no consent remembered.
async fn consent_form_requires_its_csrf_token(backend: Backend) {
    let rp = Rp::start(backend, false).await;
    let (login_url, status, login_page) = rp
        .go("response_type=code&scope=openid%20email&state=s")
        .await
        .page();
    // The login form's CSRF token of this very interaction and browser: wrong purpose.
    let login_token = field(&hidden_inputs(&login_page), "csrf_token");
    let landing = Landing::Page {
        url: login_url,
        status,
        body: login_page,
    };
    let (url, status, body) = rp
        .agent
        .sign_in(landing, USER, PASSWORD, &rp.server.base)
        .await
        .page();
    assert_eq!(status, 200);
    assert!(url.path().ends_with("/consent"), "{url}");
    let form = with(&hidden_inputs(&body), "decision", Some("allow"));
    let before = Snapshot::take(&rp.server).await;
    for csrf in [None, Some("forged"), Some(login_token.as_str()), Some("")] {
        let response = post(
            &rp.agent.http,
            url.clone(),
            &with(&form, "csrf_token", csrf),
        )
        .await;
        assert_eq!(response.status(), 403, "{csrf:?}");
        assert!(response.headers().get("location").is_none());
    }
    // Another browser with every field of the page.
    let stranger = crate::common::http_client()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = post(&stranger, url.clone(), &form).await;
    assert!(
        response.status() == 403 || response.status() == 400,
        "{}",
        response.status()
    );
    assert!(response.headers().get("location").is_none());
    before.assert_unchanged(&Snapshot::take(&rp.server).await, "forged consent");
    // Control: the form as rendered is accepted.
    let back = rp
        .agent
        .follow(post(&rp.agent.http, url, &form).await, &rp.server.base)
        .await
        .client_url();
    assert!(query_param(&back, "code").is_some(), "{back}");
}

/// A login form's CSRF token works for its own interaction only.
async fn login_csrf_token_is_bound_to_its_interaction(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let (url_a, _, page_a) = rp
        .go("response_type=code&scope=openid&state=a")
        .await
        .page();
    let (_, _, page_b) = rp
        .go("response_type=code&scope=openid&state=b")
        .await
        .page();
    let a = hidden_inputs(&page_a);
    let b = hidden_inputs(&page_b);
    assert_ne!(field(&a, "csrf_token"), field(&b, "csrf_token"));
    let credentials = |form: Form| {
        let mut f = form;
        f.push(("username".into(), USER.into()));
        f.push(("password".into(), PASSWORD.into()));
        f
    };
    let before = Snapshot::take(&rp.server).await;
    let swapped = with(&a, "csrf_token", Some(&field(&b, "csrf_token")));
    let response = post(&rp.agent.http, url_a.clone(), &credentials(swapped)).await;
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("set-cookie").is_none());
    before.assert_unchanged(&Snapshot::take(&rp.server).await, "swapped CSRF token");
    // Control.
    let response = post(&rp.agent.http, url_a, &credentials(a)).await;
    assert_eq!(response.status(), 303);
}

/// Confirming a logout needs the page's CSRF token: a third-party page cannot sign users out.
async fn logout_confirmation_requires_its_csrf_token(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    rp.code_flow("").await;
    let logout = Url::parse(&rp.server.url("/logout")).unwrap();
    let before = Snapshot::take(&rp.server).await;
    for csrf in [None, Some("forged")] {
        let form = with(&[("confirm".into(), "yes".into())], "csrf_token", csrf);
        let response = post(&rp.agent.http, logout.clone(), &form).await;
        assert_eq!(response.status(), 400, "{csrf:?}");
    }
    before.assert_unchanged(&Snapshot::take(&rp.server).await, "forged logout");
    let url = rp
        .authorize("response_type=code&scope=openid&prompt=none")
        .await;
    assert!(
        query_param(&url, "code").is_some(),
        "still signed in: {url}"
    );
}

/// Session fixation: a session cookie planted before sign-in is never the session after it,
/// and never becomes valid; an attacker's own session planted in the victim's browser is not
/// upgraded to the victim.
async fn planted_session_cookies_never_become_the_victims_session(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let mallory = rp.server.create_user("mallory", "pw-mallory-1").await;
    let session_of = |response: &reqwest::Response| {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("portcullis_session="))
            .map(|c| c.split(';').next().unwrap().to_string())
    };
    // The attacker's own, genuine session.
    let attacker = crate::common::UserAgent::new();
    let landing = attacker
        .navigate(
            &rp.authorize_url("response_type=code&scope=openid"),
            &rp.server.base,
        )
        .await;
    let (url, _, body) = landing.page();
    let mut form = hidden_inputs(&body);
    form.push(("username".into(), "mallory".into()));
    form.push(("password".into(), "pw-mallory-1".into()));
    let response = post(&attacker.http, url.join("login").unwrap(), &form).await;
    let attackers_session = session_of(&response).expect("attacker's session");
    let invented = "A".repeat(43);
    for planted in [invented.as_str(), attackers_session.as_str()] {
        let jar = Arc::new(Jar::default());
        let base = Url::parse(&rp.server.base).unwrap();
        jar.add_cookie_str(&format!("portcullis_session={planted}; Path=/"), &base);
        let victim = crate::common::http_client()
            .cookie_provider(jar)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        // prompt=login: the victim signs in although a session cookie is present.
        let response = victim
            .get(rp.authorize_url("response_type=code&scope=openid&prompt=login"))
            .send()
            .await
            .unwrap();
        let login = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        let login = base.join(login.as_str()).unwrap();
        let page = victim.get(login.clone()).send().await.unwrap();
        let mut form = hidden_inputs(&page.text().await.unwrap());
        form.push(("username".into(), USER.into()));
        form.push(("password".into(), PASSWORD.into()));
        let response = post(&victim, login.join("login").unwrap(), &form).await;
        assert_eq!(response.status(), 303);
        let new = session_of(&response).expect("a session cookie at sign-in");
        assert_ne!(new, planted, "the planted session survived sign-in");
        // The planted value alone, in a fresh browser: at most the attacker's own session.
        let jar = Arc::new(Jar::default());
        jar.add_cookie_str(&format!("portcullis_session={planted}; Path=/"), &base);
        let replay = crate::common::http_client()
            .cookie_provider(jar)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = replay
            .get(rp.authorize_url("response_type=code&scope=openid&prompt=none"))
            .send()
            .await
            .unwrap();
        let back = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        match query_param(&back, "code") {
            None => assert_eq!(
                query_param(&back, "error").as_deref(),
                Some("login_required"),
                "{back}"
            ),
            Some(code) => {
                assert_eq!(planted, attackers_session, "an invented cookie signed in");
                let tokens = rp.exchange(&code).await;
                let claims = rp.id_claims(tokens["id_token"].as_str().unwrap()).await;
                assert_eq!(claims["sub"], mallory.id.as_str(), "upgraded to the victim");
            }
        }
    }
}

/// RP-Initiated Logout §2: an `id_token_hint` whose `sub` is not the signed-in user proves
/// nothing about this browser's session: the user is asked, and a third-party page holding
/// its own ID token cannot sign the victim out (no session ended, no cookie cleared).
async fn logout_with_another_users_id_token_hint_asks_the_user(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    rp.server.create_user("mallory", "pw-mallory-1").await;
    // Mallory's own ID token, from her own browser.
    let mallory = crate::common::UserAgent::new();
    let landing = mallory
        .navigate(
            &rp.authorize_url("response_type=code&scope=openid&state=m"),
            &rp.server.base,
        )
        .await;
    let url = mallory
        .sign_in(landing, "mallory", "pw-mallory-1", &rp.server.base)
        .await
        .client_url();
    let tokens = rp.exchange(&query_param(&url, "code").unwrap()).await;
    let hint = tokens["id_token"].as_str().unwrap().to_string();
    // The victim is signed in; a page sends their browser to /logout with Mallory's hint.
    rp.code_flow("").await;
    let before = Snapshot::take(&rp.server).await;
    let bye = format!("{}/logged-out", crate::common::rp::REDIRECT);
    let response = rp
        .agent
        .http
        .get(rp.server.url("/logout"))
        .query(&[
            ("id_token_hint", hint.as_str()),
            ("post_logout_redirect_uri", bye.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let clears_session = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("portcullis_session="));
    assert!(!clears_session, "the session cookie is left alone");
    let body = response.text().await.unwrap();
    assert!(
        body.contains("name=\"confirm\""),
        "the confirmation page: {body}"
    );
    before.assert_unchanged(&Snapshot::take(&rp.server).await, "foreign id_token_hint");
    let url = rp
        .authorize("response_type=code&scope=openid&prompt=none")
        .await;
    assert!(
        query_param(&url, "code").is_some(),
        "still signed in: {url}"
    );
}

on_both_databases!(
    logout_with_another_users_id_token_hint_asks_the_user,
    consent_form_requires_its_csrf_token,
    login_csrf_token_is_bound_to_its_interaction,
    logout_confirmation_requires_its_csrf_token,
    planted_session_cookies_never_become_the_victims_session
);
