//! Black-box tests by capability, against the real router over HTTP, on SQLite and PostgreSQL.

mod common;

mod browser;
mod cli;
mod client_credentials;
mod code_flow;
mod conformance;
mod discovery;
mod es256;
mod interaction;
mod introspection;
mod jwt;
mod key_encryption;
mod keys;
mod lifecycle;
mod policy;
mod revocation;
mod servers;
mod token_errors;
mod users;
