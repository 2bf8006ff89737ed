//! Black-box tests by capability, against the real router over HTTP, on SQLite and PostgreSQL.

mod common;

mod attacks;
mod browser;
mod cli;
mod client_credentials;
mod code_flow;
mod conformance;
mod discovery;
mod interaction;
mod introspection;
mod jwt;
mod keys;
mod lifecycle;
mod policy;
mod properties;
mod revocation;
mod servers;
mod token_errors;
mod users;
