//! A user agent: an HTTP client with a cookie jar that follows the login form like a browser
//! without JavaScript would.

use reqwest::header::LOCATION;
use reqwest::StatusCode;
use url::Url;

pub struct UserAgent {
    pub http: reqwest::Client,
}

/// Where a navigation ended.
#[derive(Debug)]
pub enum Landing {
    /// Redirected to the client: the final URL.
    Client(Url),
    /// A page of ours (login, consent, error), with status and body.
    Page {
        url: Url,
        status: StatusCode,
        body: String,
    },
}

impl Landing {
    pub fn client_url(self) -> Url {
        match self {
            Landing::Client(url) => url,
            Landing::Page { url, status, body } => {
                panic!("expected a redirect to the client, got {status} at {url}: {body}")
            }
        }
    }
    pub fn page(self) -> (Url, StatusCode, String) {
        match self {
            Landing::Page { url, status, body } => (url, status, body),
            Landing::Client(url) => panic!("expected a page, got a redirect to {url}"),
        }
    }
}

impl Default for UserAgent {
    fn default() -> Self {
        Self::new()
    }
}

impl UserAgent {
    pub fn new() -> Self {
        let http = super::http_client()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("user agent");
        Self { http }
    }

    /// GET `url` and follow redirects while they stay on `server_base`.
    pub async fn navigate(&self, url: &str, server_base: &str) -> Landing {
        let response = self.http.get(url).send().await.expect("navigate");
        self.follow(response, server_base).await
    }

    pub async fn follow(&self, mut response: reqwest::Response, server_base: &str) -> Landing {
        for _ in 0..10 {
            if response.status().is_redirection() {
                let location = response.headers()[LOCATION]
                    .to_str()
                    .expect("location")
                    .to_string();
                let next = response.url().join(&location).expect("absolute location");
                if !next.as_str().starts_with(server_base) {
                    return Landing::Client(next);
                }
                response = self.http.get(next).send().await.expect("follow");
                continue;
            }
            let url = response.url().clone();
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Landing::Page { url, status, body };
        }
        panic!("too many redirects");
    }

    /// Submit the form on `page` (the login or consent page) with `fields` added to its hidden
    /// inputs; follow the redirects.
    pub async fn submit(
        &self,
        page_url: &Url,
        page: &str,
        fields: &[(&str, &str)],
        server_base: &str,
    ) -> Landing {
        let action = attribute(page, "<form method=\"post\" action=\"", "\"").expect("form action");
        let mut form: Vec<(String, String)> = hidden_inputs(page);
        form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let target = page_url.join(&html_unescape(&action)).expect("action URL");
        let response = self
            .http
            .post(target)
            .form(&form)
            .send()
            .await
            .expect("submit");
        self.follow(response, server_base).await
    }

    /// Sign in on the login page we landed on.
    pub async fn sign_in(
        &self,
        landing: Landing,
        username: &str,
        password: &str,
        server_base: &str,
    ) -> Landing {
        let (url, status, body) = landing.page();
        assert_eq!(status, 200, "login page: {body}");
        assert!(
            url.path().ends_with("/login"),
            "expected the login page, got {url}"
        );
        self.submit(
            &url,
            &body,
            &[("username", username), ("password", password)],
            server_base,
        )
        .await
    }
}

/// The text between `start` and `end` after the first `start`.
pub fn attribute(html: &str, start: &str, end: &str) -> Option<String> {
    let from = html.find(start)? + start.len();
    let to = html[from..].find(end)? + from;
    Some(html[from..to].to_string())
}

pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .filter_map(|rest| {
            let name = attribute(rest, "name=\"", "\"")?;
            let value = attribute(rest, "value=\"", "\"")?;
            Some((name, html_unescape(&value)))
        })
        .collect()
}

pub fn html_unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2f;", "/")
}

pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn fragment_param(url: &Url, name: &str) -> Option<String> {
    url::form_urlencoded::parse(url.fragment().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
