//! One module per endpoint. Each parses and validates with protocol types, calls the flow or
//! grant logic, and renders the response.

pub mod authorize;
pub mod consent;
pub mod device;
pub mod device_authorization;
pub mod discovery;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod login;
pub mod logout;
pub mod metrics;
pub mod mfa;
pub mod mfa_recovery;
pub mod passkey;
pub mod passkey_account;
pub mod register;
pub mod revoke;
pub mod token;
pub mod userinfo;
// High-assurance clients (issue 21).
pub mod par;
