//! TEMPORARY minimal password hasher; replaced by the `users` branch at merge.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::security::Secret;

#[derive(Default)]
pub struct PasswordHasher;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct PasswordError;

impl PasswordHasher {
    pub async fn hash(&self, password: &Secret) -> Result<String, PasswordError> {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| PasswordError)
    }

    pub async fn verify(&self, password: &Secret, stored: Option<&str>) -> bool {
        let Some(stored) = stored else { return false };
        let Ok(hash) = PasswordHash::new(stored) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.expose().as_bytes(), &hash)
            .is_ok()
    }
}
