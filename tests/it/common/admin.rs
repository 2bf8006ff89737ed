//! A caller of the management API in tests: a client of the built-in `admin` server with a
//! token carrying the scopes it was made with, and the checks every API test makes (problems,
//! ETags, pages that follow `Link: rel="next"`).

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

use super::TestServer;

/// A caller of the API: a client of the `admin` server and a token of its.
pub struct Admin<'a> {
    pub server: &'a TestServer,
    pub client_id: String,
    pub token: String,
}

impl<'a> Admin<'a> {
    pub async fn with_scopes(server: &'a TestServer, scopes: &[&str]) -> Admin<'a> {
        let (client, secret) = server.service_client("admin", scopes).await;
        let scope = scopes.join(" ");
        let response = server
            .post_form(
                "/oauth2/admin/token",
                Some((&client.id, secret.expose())),
                &[("grant_type", "client_credentials"), ("scope", &scope)],
            )
            .await;
        assert_eq!(response.status(), 200, "admin token");
        let body: Value = response.json().await.expect("token JSON");
        let token = body["access_token"].as_str().expect("token").to_string();
        Admin {
            server,
            client_id: client.id,
            token,
        }
    }

    pub fn actor(&self) -> String {
        format!("client:{}", self.client_id)
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        self.send_with(method, path, body, &[]).await
    }

    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self
            .server
            .http
            .request(method, self.server.url(path))
            .bearer_auth(&self.token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("admin request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path, None).await
    }

    /// A JSON body of a response with `status`.
    pub async fn expect(&self, response: Response, status: u16) -> Value {
        let got = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(got, status, "{body}");
        body
    }

    /// POST `body` to `path`: 201 with a Location that serves the same resource and ETag.
    pub async fn create(&self, path: &str, body: Value) -> (String, Value) {
        let response = self.send(Method::POST, path, Some(body)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created_etag = etag(&response);
        let location = response.headers()["location"].to_str().unwrap().to_string();
        let created: Value = response.json().await.unwrap();
        let response = self.get(&location).await;
        assert_eq!(response.status(), 200, "GET {location}");
        assert_eq!(etag(&response), created_etag, "ETag of {location}");
        assert_eq!(response.json::<Value>().await.unwrap(), created);
        (location, created)
    }

    /// Every item of a list, following `Link: <…>; rel="next"` with pages of `limit`.
    pub async fn walk(&self, path: &str, limit: usize) -> Vec<Value> {
        let mut items = Vec::new();
        let mut next = Some(format!("{path}?limit={limit}"));
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            assert!(pages < 100, "pages never end at {url}");
            let response = self.get(&url).await;
            assert_eq!(response.status(), 200, "{url}");
            let link = response
                .headers()
                .get("link")
                .map(|l| l.to_str().unwrap().to_string());
            let body: Value = response.json().await.unwrap();
            let page = body["items"].as_array().unwrap();
            assert!(page.len() <= limit);
            items.extend(page.iter().cloned());
            match (link, body.get("next_cursor")) {
                (Some(link), Some(_)) => {
                    let target = link
                        .strip_prefix('<')
                        .and_then(|l| l.split_once(">; rel=\"next\""))
                        .map(|(target, _)| target.to_string())
                        .expect("Link: <…>; rel=\"next\"");
                    next = Some(target);
                }
                (None, None) => {}
                other => panic!("Link and next_cursor disagree: {other:?}"),
            }
        }
        items
    }
}

pub fn etag(response: &Response) -> String {
    response.headers()["etag"]
        .to_str()
        .expect("ETag")
        .to_string()
}

/// Asserts an RFC 9457 problem of `slug` with `status` and a `detail`, and returns its body.
pub async fn assert_problem(response: Response, status: u16, slug: &str) -> Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status of a {slug} problem"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "problem content type"
    );
    let body: Value = response.json().await.expect("problem JSON");
    assert_eq!(
        body["type"],
        format!("urn:portcullis:problem:{slug}"),
        "{body}"
    );
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}
