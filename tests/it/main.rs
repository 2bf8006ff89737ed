//! Black-box tests by capability, against the real router over HTTP, on SQLite and PostgreSQL.

mod common;

mod attacks;
mod audit;
mod browser;
mod cache;
mod cli;
mod client_credentials;
mod code_flow;
mod conformance;
mod cookies;
mod device_flow;
mod discovery;
mod es256;
mod faults;
mod headers;
mod housekeeping;
mod interaction;
mod introspection;
mod jwt;
mod key_encryption;
mod keys;
mod lifecycle;
mod limits;
mod metrics;
mod policy;
mod properties;
mod rate_limits;
mod replicas;
mod request_id;
mod revocation;
mod servers;
mod token_errors;
mod token_exchange;
mod users;
mod wal;
