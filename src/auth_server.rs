//! The authorization server a request is addressed to, resolved: its record and its issuer.
//! Every flow below the endpoints works for one of these; the HTTP extractor that finds it from
//! the path is in `http::auth_server`.

use std::sync::Arc;

use crate::store::servers::issuer_of;
use crate::store::AuthorizationServer;

pub struct AuthServer {
    pub server: Arc<AuthorizationServer>,
    /// The issuer identifier, byte for byte as published.
    pub issuer: String,
}

impl AuthServer {
    /// `server` under the deployment's base URL (`issuer` in the configuration).
    pub fn new(base: &str, server: Arc<AuthorizationServer>) -> Self {
        let issuer = issuer_of(base, &server.id);
        Self { server, issuer }
    }

    pub fn id(&self) -> &str {
        &self.server.id
    }

    /// An absolute endpoint URL under this server's issuer.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}
