//! TOTP secrets at rest: sealed under the KEK exactly as signing keys are (`keys::kek`, the
//! same envelope), with the AAD bound to the user and the factor, so a sealed secret copied to
//! another user's row does not open. Without a KEK they are stored as signing keys are then:
//! plain.

use crate::keys::kek::Keks;

fn aad(user_id: &str, factor_id: &str) -> Vec<u8> {
    format!("portcullis mfa secret v1\0{user_id}\0{factor_id}").into_bytes()
}

pub fn seal(
    keks: &Keks,
    secret: &[u8],
    user_id: &str,
    factor_id: &str,
) -> Result<(&'static str, Vec<u8>), String> {
    keks.wrap_with_aad(secret, &aad(user_id, factor_id))
}

pub fn open(
    keks: &Keks,
    storage: &str,
    stored: &[u8],
    user_id: &str,
    factor_id: &str,
) -> Result<Vec<u8>, String> {
    keks.unwrap_with_aad(storage, stored, &aad(user_id, factor_id), factor_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::kek::Kek;

    #[test]
    fn a_sealed_secret_opens_only_for_its_user_and_factor() {
        let keks = Keks::with_current(Some(Kek::from_base64(Kek::generate().expose()).unwrap()));
        let (storage, sealed) = seal(&keks, b"0123456789abcdefghij", "u1", "f1").unwrap();
        assert_eq!(storage, "aes-256-gcm");
        assert_eq!(
            open(&keks, storage, &sealed, "u1", "f1").unwrap(),
            b"0123456789abcdefghij"
        );
        assert!(open(&keks, storage, &sealed, "u2", "f1").is_err());
        assert!(open(&keks, storage, &sealed, "u1", "f2").is_err());
    }
}
