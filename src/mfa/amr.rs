//! The factors a sign-in used, as RFC 8176 authentication method references: kept on the
//! session (space-separated), carried with its codes and refresh tokens, and put in ID tokens
//! as `amr` with the `acr` they amount to.

use super::policy::{ACR_MFA, ACR_PWD};

/// RFC 8176 §2: password.
pub const PWD: &str = "pwd";
/// RFC 8176 §2: one-time password (TOTP).
pub const OTP: &str = "otp";
/// A recovery code (a single-use code issued at enrolment). Not an RFC 8176 value: §2 lets
/// parties agree on others, and README documents this one, so a client can tell that a lost
/// authenticator was worked around.
pub const RECOVERY: &str = "recovery";
/// RFC 8176 §2: proof of possession of a hardware-secured key (a passkey bound to its
/// authenticator).
pub const HWK: &str = "hwk";
/// RFC 8176 §2: proof of possession of a software-secured key (a synced passkey).
pub const SWK: &str = "swk";
/// RFC 8176 §2: the user was verified on the authenticator (WebAuthn user verification).
pub const USER: &str = "user";
/// RFC 8176 §2: multiple-factor authentication.
pub const MFA: &str = "mfa";

/// The factors, in the order they were presented; never `mfa` itself (it is derived).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Amr(Vec<String>);

impl Amr {
    pub fn password() -> Self {
        Self(vec![PWD.to_string()])
    }

    /// From the stored, space-separated form.
    pub fn parse(stored: &str) -> Self {
        Self(
            stored
                .split_ascii_whitespace()
                .filter(|v| *v != MFA)
                .map(str::to_string)
                .collect(),
        )
    }

    pub fn with(mut self, factor: &str) -> Self {
        if !self.0.iter().any(|f| f == factor) {
            self.0.push(factor.to_string());
        }
        self
    }

    /// Two factors or more: a second factor on top of the password, or a passkey with user
    /// verification (`hwk`/`swk` + `user`). A passkey alone, like a password alone, is one.
    pub fn is_multi_factor(&self) -> bool {
        self.0.len() > 1
    }

    /// The `amr` claim: the factors, and `mfa` when there are more than one.
    pub fn claim(&self) -> Vec<String> {
        let mut values = self.0.clone();
        if self.is_multi_factor() {
            values.push(MFA.to_string());
        }
        values
    }

    /// The `acr` this sign-in amounts to.
    pub fn acr(&self) -> &'static str {
        if self.is_multi_factor() {
            ACR_MFA
        } else {
            ACR_PWD
        }
    }
}

impl std::fmt::Display for Amr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_factor_makes_the_sign_in_multi_factor() {
        let pwd = Amr::password();
        assert_eq!(pwd.claim(), ["pwd"]);
        assert_eq!(pwd.acr(), ACR_PWD);
        let both = pwd.with(OTP).with(OTP);
        assert_eq!(both.claim(), ["pwd", "otp", "mfa"]);
        assert_eq!(both.acr(), ACR_MFA);
        assert_eq!(Amr::parse(&both.to_string()), both);
        let passkey = Amr::default().with(HWK);
        assert!(!passkey.is_multi_factor());
        assert_eq!(passkey.acr(), ACR_PWD);
        assert_eq!(passkey.with(USER).claim(), ["hwk", "user", "mfa"]);
    }
}
