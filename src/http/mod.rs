//! HTTP plumbing every endpoint shares, and the router that puts the endpoints and it together:
//! the client's IP, the request id, request limits, security headers, cookies, the pages, and
//! form bodies, and RFC 9457 problems (the management API's errors).

pub mod auth_server;
pub mod client_ip;
pub mod cookies;
pub mod discovery_cache;
pub mod pages;
pub mod post_form;
pub mod problem;
pub mod request_id;
pub mod request_limits;
pub mod router;
pub mod security_headers;

pub use post_form::post_form;
pub use router::{metrics_router, router};
