//! One module per endpoint. Each parses and validates with protocol types, calls the flow or
//! grant logic, and renders the response.

pub mod discovery;
pub mod health;
pub mod jwks;
pub mod token;

mod auth_server;
pub use auth_server::AuthServer;
