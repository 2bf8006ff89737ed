//! Portcullis: a standalone OAuth 2.0 / OpenID Connect authorization server.
//!
//! A request flows one way: router (`http::router`) → endpoint (`endpoints`, parsing with
//! `protocol` types) → flow or grant logic (`authorize`, `grants`) → `issuer` → `store` →
//! response. Nothing below the endpoints knows about routing; nothing above the store writes
//! SQL. ARCHITECTURE.md draws the layers and what each may use.

// Entry points.
pub mod cli;
pub mod http;

// Endpoints and the flows behind them.
pub mod admin;
pub mod authorize;
pub mod endpoints;
pub mod grants;
pub mod issuer;
pub mod logout;

// What a request works with.
pub mod accounts;
pub mod auth_server;
pub mod client_auth;
pub mod dpop;
pub mod sessions;
pub mod state;

// Domain services.
pub mod audit;
pub mod client_keys;
pub mod housekeeping;
pub mod keys;
pub mod manage;
pub mod metrics;
pub mod mfa;
pub mod passwords;
pub mod policy;
pub mod rate_limit;
pub mod tokens;
pub mod used_jtis;

// Storage.
pub mod store;

// Foundations: no dependencies on anything above.
pub mod bounded;
pub mod clock;
pub mod config;
pub mod error;
pub mod protocol;
pub mod security;
