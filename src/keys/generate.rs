//! Key generation (RSA with the `rsa` crate, P-256 with aws-lc-rs) and JWK export.

use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::json;

use super::signer::SigningAlg;
use crate::security::{base64url, sha256};

pub struct GeneratedKey {
    pub kid: String,
    /// PKCS#8 DER of the private key.
    pub pkcs8_der: Vec<u8>,
    /// The public JWK, as published.
    pub jwk: serde_json::Value,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Generate a key for `alg`. CPU-heavy for RSA: call it off the async runtime.
pub fn generate(alg: SigningAlg, rsa_bits: usize) -> Result<GeneratedKey, String> {
    match alg {
        SigningAlg::Rs256 => generate_rsa(rsa_bits),
        SigningAlg::Es256 => generate_p256(),
    }
}

/// Generate a P-256 key for ES256 (RFC 7518 §3.4; JWK per RFC 7518 §6.2.1).
pub fn generate_p256() -> Result<GeneratedKey, String> {
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|e| e.to_string())?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref())
        .map_err(|e| e.to_string())?;
    // The uncompressed point: 0x04 || x || y, 32 bytes each.
    let point = pair.public_key().as_ref();
    if point.len() != 65 || point[0] != 4 {
        return Err("unexpected P-256 public key encoding".into());
    }
    let x = base64url(&point[1..33]);
    let y = base64url(&point[33..65]);
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = base64url(&sha256(canonical.as_bytes()));
    let jwk = json!({
        "kty": "EC",
        "crv": "P-256",
        "use": "sig",
        "alg": "ES256",
        "kid": kid,
        "x": x,
        "y": y,
    });
    Ok(GeneratedKey {
        kid,
        pkcs8_der: der.as_ref().to_vec(),
        jwk,
    })
}

/// Generate an RSA key for RS256. CPU-heavy (tens to hundreds of milliseconds): call it off
/// the async runtime.
pub fn generate_rsa(bits: usize) -> Result<GeneratedKey, String> {
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).map_err(|e| e.to_string())?;
    let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
    let n = base64url(&key.n().to_bytes_be());
    let e = base64url(&key.e().to_bytes_be());
    let kid = rsa_thumbprint(&n, &e);
    let jwk = json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": n,
        "e": e,
    });
    Ok(GeneratedKey {
        kid,
        pkcs8_der: der.as_bytes().to_vec(),
        jwk,
    })
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic order.
fn rsa_thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    base64url(&sha256(canonical.as_bytes()))
}
