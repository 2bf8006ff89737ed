//! Black-box tests by capability, against the real router over HTTP, on SQLite and PostgreSQL.

mod common;

mod cli;
mod client_credentials;
mod code_flow;
mod conformance;
mod discovery;
mod interaction;
mod jwt;
mod keys;
mod policy;
mod servers;
mod token_errors;
mod users;
