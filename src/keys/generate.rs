//! Key generation (the `rsa` crate) and JWK export.

use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::json;

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
