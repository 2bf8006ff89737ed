//! Multi-factor sign-in, the rules without HTTP: the policy (which sign-ins need a second
//! factor), TOTP (RFC 6238), recovery codes, the factors a session carries (RFC 8176 `amr`)
//! and the secrets sealed under the KEK. The flow that checks a factor at sign-in is
//! `accounts::second_factor`; the pages are `endpoints::mfa`.

pub mod amr;
pub mod base32;
pub mod enrol;
pub mod policy;
pub mod qr;
pub mod recovery;
pub mod secret;
pub mod totp;
pub mod webauthn;

pub use amr::Amr;
pub use policy::{ClientMfa, MfaPolicy};
