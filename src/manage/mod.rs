//! What an operator changes, with its rules: the domain operations the CLI and the management
//! API (`admin/`) both call, so one set of rules holds whichever way a change arrives, and
//! every change is audited with who made it.

pub mod claims;
pub mod clients;
pub mod groups;
pub mod logout;
pub mod mfa;
pub mod policies;
pub mod registration;
pub mod scopes;
pub mod servers;
pub mod user_access;
pub mod users;

/// Who made a change, for the audit log's `actor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// `portcullis …` on the command line (straight on the database).
    Cli,
    /// A client of the `admin` server, calling the management API with its token.
    Client(String),
    /// Dynamic client registration (RFC 7591) from this address, or (RFC 7592) the
    /// registered client itself.
    Registrant(String),
}

impl Actor {
    pub fn label(&self) -> String {
        match self {
            Self::Cli => "cli".to_string(),
            Self::Client(id) => format!("client:{id}"),
            Self::Registrant(who) => format!("registration:{who}"),
        }
    }
}
// High-assurance clients (issue 21).
pub mod client_security;
