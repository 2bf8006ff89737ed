//! Creating factors, for the enrolment page and `portcullis user mfa` alike: a TOTP secret
//! sealed under the KEK, and a fresh set of recovery codes (only their hashes stored).

use super::{recovery, secret, totp};
use crate::clock::UnixTime;
use crate::keys::kek::Keks;
use crate::security::{random_token, Secret};
use crate::store::{MfaFactor, Store, StoreError, TOTP};

/// A TOTP factor just stored, with its secret (shown once: on the page or the CLI's output).
pub struct NewTotp {
    pub factor: MfaFactor,
    pub secret: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot seal the secret: {0}")]
    Seal(String),
}

impl From<EnrolError> for crate::error::Error {
    fn from(e: EnrolError) -> Self {
        match e {
            EnrolError::Store(e) => e.into(),
            EnrolError::Seal(e) => crate::error::Error::internal(e),
        }
    }
}

/// Store a new TOTP factor: `confirmed` when an operator enrols it (`user mfa enroll-totp`),
/// pending when the user will confirm it with a first code.
pub async fn totp(
    store: &Store,
    keks: &Keks,
    user_id: &str,
    confirmed: bool,
    now: UnixTime,
) -> Result<NewTotp, EnrolError> {
    let secret_bytes = totp::generate_secret();
    let id = format!("totp_{}", random_token(9));
    let (storage, sealed) =
        secret::seal(keks, &secret_bytes, user_id, &id).map_err(EnrolError::Seal)?;
    let factor = MfaFactor {
        id,
        user_id: user_id.to_string(),
        kind: TOTP.to_string(),
        label: "Authenticator app".to_string(),
        secret_storage: storage.to_string(),
        secret: sealed,
        created_at: now,
        confirmed_at: confirmed.then_some(now),
        last_used_at: None,
    };
    store.insert_mfa_factor(&factor).await?;
    Ok(NewTotp {
        factor,
        secret: secret_bytes,
    })
}

/// Replace the user's recovery codes with ten new ones; the codes, to be shown once.
pub async fn recovery_codes(
    store: &Store,
    user_id: &str,
    now: UnixTime,
) -> Result<Vec<Secret>, StoreError> {
    let codes = recovery::generate();
    let hashes: Vec<Vec<u8>> = codes
        .iter()
        .filter_map(|c| recovery::normalize(c))
        .map(|n| recovery::hash(&n))
        .collect();
    store.replace_recovery_codes(user_id, &hashes, now).await?;
    Ok(codes.into_iter().map(Secret::new).collect())
}
