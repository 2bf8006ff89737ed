//! Signing JWTs with a key parsed once.
//!
//! jsonwebtoken's `encode` re-parses the RSA key on every call (1,154 signatures/s on one core
//! here); an aws-lc-rs key pair parsed once and reused signs about 2,790/s. So the key ring
//! parses each key when it loads it, and signing is header + payload + one signature.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use serde::Serialize;

use crate::security::base64url;

/// The JWS algorithms a server may sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    Rs256,
    /// ECDSA P-256 with SHA-256; the signature is the fixed-width r || s of RFC 7518 §3.4.
    Es256,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 2] = [SigningAlg::Rs256, SigningAlg::Es256];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == value)
    }

    pub fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            SigningAlg::Rs256 => jsonwebtoken::Algorithm::RS256,
            SigningAlg::Es256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

impl std::str::FromStr for SigningAlg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s).ok_or_else(|| format!("`{s}` is not RS256 or ES256"))
    }
}

impl std::fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `typ` header of what is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtType {
    /// RFC 9068 §2.1: `at+jwt`.
    AccessToken,
    /// OIDC ID tokens and other plain JWTs.
    Jwt,
    /// OpenID Connect Back-Channel Logout 1.0 §2.4: `logout+jwt`.
    LogoutToken,
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    /// The private key could not be decrypted with this process's KEKs (a replica still on the
    /// old KEK meeting a key sealed under the new one): published and verifying, not signing.
    Unavailable(String),
}

pub struct Signer {
    kid: String,
    alg: SigningAlg,
    pair: Pair,
    rng: SystemRandom,
    access_token_header: String,
    jwt_header: String,
    logout_token_header: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

impl Signer {
    pub fn from_pkcs8(alg: SigningAlg, kid: &str, der: &[u8]) -> Result<Self, String> {
        let pair = match alg {
            SigningAlg::Rs256 => {
                Pair::Rsa(RsaKeyPair::from_pkcs8(der).map_err(|e| format!("key {kid}: {e}"))?)
            }
            SigningAlg::Es256 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|e| format!("key {kid}: {e}"))?,
            ),
        };
        let header = |typ: &str| {
            let json = serde_json::json!({ "alg": alg.as_str(), "kid": kid, "typ": typ });
            base64url(json.to_string().as_bytes())
        };
        Ok(Self {
            kid: kid.to_string(),
            alg,
            access_token_header: header("at+jwt"),
            jwt_header: header("JWT"),
            logout_token_header: header("logout+jwt"),
            pair,
            rng: SystemRandom::new(),
        })
    }

    /// A signer for a key whose private part this process cannot read; `reason` says why.
    pub fn unavailable(alg: SigningAlg, kid: &str, reason: String) -> Self {
        Self {
            kid: kid.to_string(),
            alg,
            pair: Pair::Unavailable(reason),
            rng: SystemRandom::new(),
            access_token_header: String::new(),
            jwt_header: String::new(),
            logout_token_header: String::new(),
        }
    }

    /// Why this key cannot sign here, if it cannot.
    pub fn unavailable_reason(&self) -> Option<&str> {
        match &self.pair {
            Pair::Unavailable(reason) => Some(reason),
            _ => None,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// A compact JWS of `claims`.
    pub fn sign(&self, typ: JwtType, claims: &impl Serialize) -> Result<String, String> {
        let header = match typ {
            JwtType::AccessToken => &self.access_token_header,
            JwtType::Jwt => &self.jwt_header,
            JwtType::LogoutToken => &self.logout_token_header,
        };
        let payload = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
        let mut jwt = String::with_capacity(header.len() + payload.len() * 4 / 3 + 360);
        jwt.push_str(header);
        jwt.push('.');
        jwt.push_str(&base64url(&payload));
        let failed = |_| format!("signing with key {} failed", self.kid);
        let signature = match &self.pair {
            Pair::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.rng, jwt.as_bytes(), &mut signature)
                    .map_err(failed)?;
                signature
            }
            Pair::Ec(pair) => pair
                .sign(&self.rng, jwt.as_bytes())
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            Pair::Unavailable(reason) => return Err(reason.clone()),
        };
        jwt.push('.');
        jwt.push_str(&base64url(&signature));
        Ok(jwt)
    }
}
