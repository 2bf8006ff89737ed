//! Protocol values as types: parsed once at the edge, trusted afterwards.

pub mod admin_scopes;
pub mod client_auth;
pub mod form;
pub mod grant_type;
pub mod pkce;
pub mod prompt;
pub mod redirect_uri;
pub mod response_type;
pub mod scope;
pub mod token_request;
pub mod user_code;
// High-assurance clients (issue 21).
pub mod dpop;
pub mod jose;

pub use client_auth::{ClientAuthMethod, PresentedCredentials};
pub use form::FormParams;
pub use grant_type::GrantType;
pub use prompt::Prompt;
pub use response_type::{ResponseMode, ResponseType};
pub use scope::ScopeSet;
pub use token_request::{TokenGrant, TokenRequest};
pub use user_code::UserCode;
