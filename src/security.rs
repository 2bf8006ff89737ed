//! Security helpers, in one place: random values, hashing of stored secrets, constant-time
//! comparison. Nothing else in the crate generates randomness or compares secrets.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A secret value that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// `len` random bytes from the OS generator (password salts).
pub fn random_bytes(len: usize) -> Vec<u8> {
    bytes_from(&mut rand::rngs::OsRng, len)
}

/// `bytes` random bytes from the OS generator, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(bytes))
}

/// A unique, unguessable value that is not a secret (a token's `jti`): `bytes` random bytes,
/// base64url, from the thread-local CSPRNG (ChaCha, seeded and reseeded from the OS) rather than
/// one `getrandom` system call per value.
pub fn unique_token(bytes: usize) -> String {
    URL_SAFE_NO_PAD.encode(bytes_from(&mut rand::thread_rng(), bytes))
}

fn bytes_from(rng: &mut impl RngCore, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    rng.fill_bytes(&mut buf);
    buf
}

/// An identifier of `len` characters from [A-Za-z0-9] (client and user ids): safe on a
/// command line (never starts with `-`) and in URLs. About 5.95 bits of entropy per character.
pub fn random_id(len: usize) -> String {
    id_from(&mut rand::rngs::OsRng, len)
}

/// Like `random_id`, for labels that are unique but not secret (request ids), from the
/// thread-local CSPRNG: no system call per request.
pub fn unique_id(len: usize) -> String {
    id_from(&mut rand::thread_rng(), len)
}

fn id_from(rng: &mut impl RngCore, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        rng.fill_bytes(&mut buf);
        // Rejection sampling: 248 = 4 * 62, so every character is equally likely.
        for b in buf.iter().filter(|b| **b < 248) {
            if out.len() == len {
                break;
            }
            out.push(ALPHABET[(*b % 62) as usize] as char);
        }
    }
    out
}

/// A 256-bit secret (client secrets, codes, refresh tokens, session ids).
pub fn random_secret() -> Secret {
    Secret(random_token(32))
}

/// The successor of a refresh token under rotation, derived rather than drawn: HMAC-SHA256 of
/// the presented token under a random key kept (server-side only) with it. A retry of the same
/// token within the reuse grace gets the same successor, never a second live one (RFC 9700
/// §4.14.2), and knowing a token without the key does not reveal its successor.
pub fn derive_successor(key: &[u8], presented: &str) -> Secret {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let mut message = b"portcullis refresh successor\0".to_vec();
    message.extend_from_slice(presented.as_bytes());
    Secret(base64url(aws_lc_rs::hmac::sign(&key, &message).as_ref()))
}

/// SHA-256 of a high-entropy secret. Client secrets, codes and refresh tokens are stored only
/// as this hash: they carry 256 bits of entropy, so a slow password hash adds nothing but cost.
pub fn hash_secret(value: &str) -> Vec<u8> {
    Sha256::digest(value.as_bytes()).to_vec()
}

/// Constant-time check of a presented secret against a stored SHA-256 hash.
pub fn verify_secret(presented: &str, stored_hash: &[u8]) -> bool {
    let presented_hash = hash_secret(presented);
    presented_hash.ct_eq(stored_hash).into()
}

/// Constant-time equality of two strings (CSRF tokens, PKCE challenges).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
    }

    #[test]
    fn verify_secret_accepts_only_the_same_value() {
        let secret = random_secret();
        let stored = hash_secret(secret.expose());
        assert!(verify_secret(secret.expose(), &stored));
        assert!(!verify_secret("something else", &stored));
        assert!(!verify_secret("", &stored));
    }

    #[test]
    fn random_ids_are_alphanumeric() {
        for _ in 0..200 {
            let id = random_id(20);
            assert_eq!(id.len(), 20);
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        }
    }

    #[test]
    fn a_successor_depends_on_the_key_and_the_token() {
        let (k1, k2) = (random_bytes(32), random_bytes(32));
        let a = derive_successor(&k1, "token");
        assert_eq!(a, derive_successor(&k1, "token"), "deterministic");
        assert_eq!(a.expose().len(), 43, "as long as a random secret");
        assert_ne!(a, derive_successor(&k2, "token"));
        assert_ne!(a, derive_successor(&k1, "other"));
    }

    #[test]
    fn random_secrets_are_256_bits_and_distinct() {
        let a = random_secret();
        let b = random_secret();
        assert_eq!(a.expose().len(), 43);
        assert_ne!(a, b);
    }
}
