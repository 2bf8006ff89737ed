//! What an operator changes, with its rules: the domain operations the CLI calls (and that the
//! management API will call), so one set of rules holds whichever way a change arrives.

pub mod clients;
pub mod logout;
// High-assurance clients (issue 21).
pub mod client_security;
