//! Private keys encrypted at rest: AES-256-GCM under a key-encryption key (KEK) that lives
//! outside the database (an environment variable or a mounted secret file).
//!
//! Envelope, self-describing so a wrong KEK is reported as such rather than as corruption:
//! `version (1 byte) || KEK id (8 bytes: SHA-256(KEK)[..8]) || nonce (12 random bytes) ||
//! ciphertext || tag (16 bytes)`. The AAD binds the envelope to its server and `kid`, so a
//! ciphertext copied to another row does not open.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::config::{KeyConfig, SecretValue};
use crate::security::{random_bytes, sha256, Secret};

const VERSION: u8 = 1;
const KEK_ID_LEN: usize = 8;
const HEADER_LEN: usize = 1 + KEK_ID_LEN + NONCE_LEN;

/// How a key's private part is stored (the `key_storage` column).
pub const PLAIN: &str = "plain";
pub const AES_256_GCM_STORAGE: &str = "aes-256-gcm";

/// One key-encryption key.
pub struct Kek {
    id: [u8; KEK_ID_LEN],
    key: LessSafeKey,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek({})", self.id_hex())
    }
}

impl Kek {
    /// A KEK from its base64 form (32 bytes).
    pub fn from_base64(value: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(value.trim())
            .map_err(|_| "is not base64".to_string())?;
        if bytes.len() != 32 {
            return Err(format!("must be 32 bytes, not {}", bytes.len()));
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| "is not an AES-256 key")?;
        let mut id = [0u8; KEK_ID_LEN];
        id.copy_from_slice(&sha256(&bytes)[..KEK_ID_LEN]);
        Ok(Self {
            id,
            key: LessSafeKey::new(key),
        })
    }

    /// A fresh random KEK, base64 (`portcullis keys generate-kek`).
    pub fn generate() -> Secret {
        Secret::new(STANDARD.encode(random_bytes(32)))
    }

    /// The identifier every envelope sealed under this KEK carries after its version byte.
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// The KEK's public identifier, for messages: the first bytes of its SHA-256.
    pub fn id_hex(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn seal(&self, plaintext: &[u8], server_id: &str, kid: &str) -> Result<Vec<u8>, String> {
        self.seal_with_aad(plaintext, &aad(server_id, kid))
    }

    /// Seal under an AAD of the caller's (a TOTP secret binds its user, `mfa::secret`).
    fn seal_with_aad(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&random_bytes(NONCE_LEN));
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + 16);
        out.push(VERSION);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| "encryption failed".to_string())?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn open(&self, envelope: &[u8], aad: &[u8], kid: &str) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&envelope[1 + KEK_ID_LEN..HEADER_LEN]);
        let mut body = envelope[HEADER_LEN..].to_vec();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| {
                format!("key {kid} does not decrypt: it was altered or belongs to another row")
            })?;
        Ok(plain.to_vec())
    }
}

fn aad(server_id: &str, kid: &str) -> Vec<u8> {
    format!("portcullis signing key v1\0{server_id}\0{kid}").into_bytes()
}

/// The KEKs a process holds: `current` encrypts (and decrypts); `previous` only decrypts, so
/// replicas keep reading keys wrapped under the old KEK during a KEK roll.
#[derive(Debug, Default)]
pub struct Keks {
    pub current: Option<Kek>,
    pub previous: Option<Kek>,
}

impl Keks {
    /// From `keys.kek` / `keys.kek_file` and `keys.previous_kek` / `keys.previous_kek_file`.
    /// Errors name the key at fault and never contain the KEK.
    pub fn from_config(keys: &KeyConfig) -> Result<Self, String> {
        Ok(Self {
            current: load_one("keys.kek", &keys.kek, &keys.kek_file)?,
            previous: load_one(
                "keys.previous_kek",
                &keys.previous_kek,
                &keys.previous_kek_file,
            )?,
        })
    }

    pub fn with_current(current: Option<Kek>) -> Self {
        Self {
            current,
            previous: None,
        }
    }

    /// Seal `plaintext` under the current KEK; without one, store it as is.
    pub fn wrap(
        &self,
        plaintext: &[u8],
        server_id: &str,
        kid: &str,
    ) -> Result<(&'static str, Vec<u8>), String> {
        self.wrap_with_aad(plaintext, &aad(server_id, kid))
    }

    /// [`Keks::wrap`] with the caller's AAD: the same envelope for other secrets (TOTP).
    pub fn wrap_with_aad(
        &self,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<(&'static str, Vec<u8>), String> {
        match &self.current {
            Some(kek) => Ok((AES_256_GCM_STORAGE, kek.seal_with_aad(plaintext, aad)?)),
            None => Ok((PLAIN, plaintext.to_vec())),
        }
    }

    /// The PKCS#8 DER of a stored key.
    pub fn unwrap(
        &self,
        storage: &str,
        stored: &[u8],
        server_id: &str,
        kid: &str,
    ) -> Result<Vec<u8>, String> {
        self.unwrap_with_aad(storage, stored, &aad(server_id, kid), kid)
    }

    /// [`Keks::unwrap`] with the caller's AAD; `kid` names the secret in messages.
    pub fn unwrap_with_aad(
        &self,
        storage: &str,
        stored: &[u8],
        aad: &[u8],
        kid: &str,
    ) -> Result<Vec<u8>, String> {
        match storage {
            PLAIN => Ok(stored.to_vec()),
            AES_256_GCM_STORAGE => {
                if stored.len() < HEADER_LEN + 16 || stored[0] != VERSION {
                    return Err(format!("key {kid}: unknown envelope version"));
                }
                let id = &stored[1..1 + KEK_ID_LEN];
                let kek = [&self.current, &self.previous]
                    .into_iter()
                    .flatten()
                    .find(|k| k.id == id);
                match kek {
                    Some(kek) => kek.open(stored, aad, kid),
                    None if self.current.is_none() && self.previous.is_none() => Err(format!(
                        "key {kid} is encrypted, but no KEK is configured (set keys.kek or keys.kek_file)"
                    )),
                    None => Err(format!(
                        "key {kid} is encrypted under KEK {}, which is neither keys.kek nor keys.previous_kek: wrong KEK",
                        id.iter().map(|b| format!("{b:02x}")).collect::<String>()
                    )),
                }
            }
            other => Err(format!("key {kid}: unknown storage `{other}`")),
        }
    }

    /// Is a key stored this way already under the current KEK (nothing to re-encrypt)?
    pub fn is_current(&self, storage: &str, stored: &[u8]) -> bool {
        match &self.current {
            None => storage == PLAIN,
            Some(kek) => {
                storage == AES_256_GCM_STORAGE
                    && stored.len() > HEADER_LEN
                    && stored[1..1 + KEK_ID_LEN] == kek.id
            }
        }
    }
}

fn load_one(key: &str, value: &SecretValue, file: &str) -> Result<Option<Kek>, String> {
    let text = match (value.expose().is_empty(), file.is_empty()) {
        (true, true) => return Ok(None),
        (false, false) => {
            return Err(format!("{key}: set {key} or {key}_file, not both"));
        }
        (false, true) => value.expose().to_string(),
        (true, false) => std::fs::read_to_string(file)
            .map_err(|e| format!("{key}_file: cannot read {file}: {e}"))?,
    };
    Kek::from_base64(&text)
        .map(Some)
        .map_err(|e| format!("{key}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> Kek {
        Kek::from_base64(Kek::generate().expose()).unwrap()
    }

    #[test]
    fn a_sealed_key_opens_only_for_its_row_and_kek() {
        let keks = Keks::with_current(Some(kek()));
        let (storage, sealed) = keks.wrap(b"pkcs8 bytes", "default", "kid1").unwrap();
        assert_eq!(storage, AES_256_GCM_STORAGE);
        assert!(!sealed.windows(11).any(|w| w == b"pkcs8 bytes"));
        assert_eq!(
            keks.unwrap(storage, &sealed, "default", "kid1").unwrap(),
            b"pkcs8 bytes"
        );
        assert!(keks.unwrap(storage, &sealed, "default", "kid2").is_err());
        assert!(keks.unwrap(storage, &sealed, "other", "kid1").is_err());
        let other = Keks::with_current(Some(kek()));
        let err = other
            .unwrap(storage, &sealed, "default", "kid1")
            .unwrap_err();
        assert!(err.contains("wrong KEK"), "{err}");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(keks.unwrap(storage, &tampered, "default", "kid1").is_err());
    }

    #[test]
    fn a_previous_kek_still_decrypts() {
        let old = kek();
        let (storage, sealed) = old
            .seal(b"der", "s", "k")
            .map(|s| ("aes-256-gcm", s))
            .unwrap();
        let keks = Keks {
            current: Some(kek()),
            previous: Some(old),
        };
        assert_eq!(keks.unwrap(storage, &sealed, "s", "k").unwrap(), b"der");
        assert!(!keks.is_current(storage, &sealed));
    }

    #[test]
    fn bad_keks_are_refused_without_echoing_them() {
        let err = Kek::from_base64("c2hvcnQ=").unwrap_err();
        assert!(
            err.contains("32 bytes") && !err.contains("c2hvcnQ"),
            "{err}"
        );
        assert!(Kek::from_base64("not base64!").is_err());
    }
}
