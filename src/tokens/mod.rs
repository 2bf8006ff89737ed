//! Minting and checking tokens.

pub mod access_token;

pub use access_token::{AccessTokenClaims, IssuedAccessToken};
