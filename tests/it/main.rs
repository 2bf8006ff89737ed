//! Black-box tests by capability, against the real router over HTTP, on SQLite and PostgreSQL.

mod common;

mod audit;
mod browser;
mod cache;
mod cli;
mod client_credentials;
mod code_flow;
mod conformance;
mod discovery;
mod headers;
mod interaction;
mod introspection;
mod jwt;
mod keys;
mod lifecycle;
mod limits;
mod policy;
mod rate_limits;
mod replicas;
mod revocation;
mod servers;
mod token_errors;
mod users;
