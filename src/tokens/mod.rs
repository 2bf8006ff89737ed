//! Minting and checking tokens.

pub mod access_token;
pub mod claims;
pub mod dpop_nonce;
pub mod id_token;
pub mod logout_token;
pub mod presented;
pub mod verify;

pub use access_token::{AccessTokenClaims, IssuedAccessToken};
