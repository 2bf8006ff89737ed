//! Portcullis: a standalone OAuth 2.0 / OpenID Connect authorization server.
//!
//! A request flows one way: router (`app`) → endpoint (`endpoints`, parsing with `protocol`
//! types) → grant or flow logic (`grants`) → `store` → response. Nothing below the endpoints
//! knows about axum routing; nothing above the store writes SQL.

pub mod accounts;
pub mod app;
pub mod audit;
pub mod authorize;
pub mod cli;
pub mod client_auth;
pub mod client_ip;
pub mod clock;
pub mod config;
pub mod cookies;
pub mod endpoints;
pub mod error;
pub mod grants;
pub mod housekeeping;
pub mod keys;
pub mod metrics;
pub mod pages;
pub mod passwords;
pub mod policy;
pub mod protocol;
pub mod rate_limit;
pub mod registration;
pub mod request_id;
pub mod request_limits;
pub mod security;
pub mod security_headers;
pub mod serve;
pub mod sessions;
pub mod store;
pub mod tokens;
