//! Delivering an authorization response (or error) to the client's redirect URI, in the
//! response mode the request asked for. A `RedirectTarget` exists only once the redirect URI
//! has been matched against the client's registration, so no error can be redirected earlier.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::Error;
use crate::http::pages::{form_target, Pages};
use crate::protocol::ResponseMode;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RedirectTarget {
    redirect_uri: String,
    mode: ResponseMode,
    state: Option<String>,
    /// RFC 9207: `iss` in every authorization response (mix-up defence).
    issuer: String,
}

impl RedirectTarget {
    /// Only `authorize::request` calls this, after the redirect URI check.
    pub(super) fn new(
        redirect_uri: String,
        mode: ResponseMode,
        state: Option<String>,
        issuer: String,
    ) -> Self {
        Self {
            redirect_uri,
            mode,
            state,
            issuer,
        }
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Send `params` (plus `state` and `iss`) to the client.
    pub fn respond(
        &self,
        pages: &Pages,
        mut params: Vec<(&'static str, String)>,
        extra_headers: HeaderMap,
    ) -> Response {
        if let Some(state) = &self.state {
            params.push(("state", state.clone()));
        }
        params.push(("iss", self.issuer.clone()));
        match self.mode {
            ResponseMode::FormPost => pages.render(
                StatusCode::OK,
                "form_post.html",
                serde_json::json!({ "action": self.redirect_uri, "fields": params }),
                &form_target(&self.redirect_uri)
                    .into_iter()
                    .collect::<Vec<_>>(),
                extra_headers,
            ),
            ResponseMode::Query | ResponseMode::Fragment => {
                let location = match url::Url::parse(&self.redirect_uri) {
                    Ok(mut url) => {
                        if self.mode == ResponseMode::Query {
                            url.query_pairs_mut()
                                .extend_pairs(params.iter().map(|(k, v)| (*k, v)));
                        } else {
                            let fragment = url::form_urlencoded::Serializer::new(String::new())
                                .extend_pairs(params.iter().map(|(k, v)| (*k, v)))
                                .finish();
                            url.set_fragment(Some(&fragment));
                        }
                        url.to_string()
                    }
                    Err(_) => {
                        return pages.error(
                            StatusCode::BAD_REQUEST,
                            "invalid_request",
                            "unusable redirect URI",
                        )
                    }
                };
                let mut response = StatusCode::SEE_OTHER.into_response();
                let headers = response.headers_mut();
                headers.extend(extra_headers);
                if let Ok(v) = HeaderValue::from_str(&location) {
                    headers.insert(header::LOCATION, v);
                }
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                headers.insert(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                );
                response
            }
        }
    }

    pub fn error(&self, pages: &Pages, error: &Error, extra_headers: HeaderMap) -> Response {
        let mut params = vec![("error", error.code.as_str().to_string())];
        if let Some(d) = &error.description {
            params.push(("error_description", d.to_string()));
        }
        self.respond(pages, params, extra_headers)
    }
}

/// Where an authorization error goes.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Before the client and redirect URI are known good: an error page, never a redirect.
    Page(Error),
    /// After: back to the client.
    Redirect(Box<RedirectTarget>, Error),
}

impl AuthorizeError {
    pub fn page(error: Error) -> Self {
        Self::Page(error)
    }

    pub fn render(self, pages: &Pages) -> Response {
        match self {
            Self::Page(e) => {
                if e.code == crate::error::ErrorCode::ServerError {
                    tracing::error!(error = %e, "authorization failed");
                }
                // An error page is not an HTTP authentication challenge: no 401 without one.
                let status = if e.status == StatusCode::UNAUTHORIZED {
                    StatusCode::BAD_REQUEST
                } else {
                    e.status
                };
                pages.error(status, e.code.as_str(), e.description())
            }
            Self::Redirect(target, e) => {
                if e.code == crate::error::ErrorCode::ServerError {
                    tracing::error!(error = %e, "authorization failed");
                }
                target.error(pages, &e, HeaderMap::new())
            }
        }
    }
}

impl From<Error> for AuthorizeError {
    fn from(e: Error) -> Self {
        Self::Page(e)
    }
}
