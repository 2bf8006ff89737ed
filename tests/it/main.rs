//! Black-box tests by capability, against the real router over HTTP, on SQLite and PostgreSQL.

mod common;

mod browser;
mod cli;
mod client_credentials;
mod discovery;
mod jwt;
mod keys;
mod servers;
mod token_errors;
