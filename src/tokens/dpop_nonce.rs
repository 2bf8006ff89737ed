//! DPoP server nonces (RFC 9449 §8): derived, not stored. A nonce is an HMAC of the current
//! time window under a key every replica shares (one row in the database, sealed under the KEK
//! when one is configured), so any replica accepts a nonce any other issued, with no table of
//! nonces and no write per request. Nonces rotate every `dpop.nonce_lifetime`; the previous
//! window's is still accepted, so a client that just received one is not refused at the turn.
//!
//! The key is read once per process and kept in memory: safe, because it never changes once
//! stored (the first replica's INSERT wins; the others read that row).

use tokio::sync::OnceCell;

use crate::clock::UnixTime;
use crate::config::Config;
use crate::error::Error;
use crate::keys::kek::Keks;
use crate::security::{base64url, constant_time_eq, random_bytes};
use crate::store::Store;

/// The envelope's associated data: what the sealed secret is.
const AAD: (&str, &str) = ("dpop-nonce", "nonce-key-v1");

pub struct DpopNonces {
    lifetime: i64,
    kek: Result<Keks, String>,
    key: OnceCell<aws_lc_rs::hmac::Key>,
}

impl DpopNonces {
    pub fn new(config: &Config) -> Self {
        Self {
            lifetime: config.dpop.nonce_lifetime.as_i64().max(1),
            kek: Keks::from_config(&config.keys),
            key: OnceCell::new(),
        }
    }

    /// The nonce to hand out at `now`.
    pub async fn current(&self, store: &Store, now: UnixTime) -> Result<String, Error> {
        self.derive(store, now.div_euclid(self.lifetime)).await
    }

    /// Is `nonce` this window's or the previous one's?
    pub async fn is_valid(&self, store: &Store, nonce: &str, now: UnixTime) -> Result<bool, Error> {
        let window = now.div_euclid(self.lifetime);
        for w in [window, window - 1] {
            if constant_time_eq(nonce, &self.derive(store, w).await?) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn derive(&self, store: &Store, window: i64) -> Result<String, Error> {
        let key = self.key.get_or_try_init(|| self.load(store)).await?;
        let mut message = b"portcullis dpop nonce\0".to_vec();
        message.extend_from_slice(&window.to_be_bytes());
        Ok(base64url(
            &aws_lc_rs::hmac::sign(key, &message).as_ref()[..16],
        ))
    }

    /// The shared key: stored by whichever replica needs it first.
    async fn load(&self, store: &Store) -> Result<aws_lc_rs::hmac::Key, Error> {
        let keks = self.kek.as_ref().map_err(Error::internal)?;
        if store.dpop_nonce_key().await?.is_none() {
            let secret = random_bytes(32);
            let (storage, sealed) = keks.wrap(&secret, AAD.0, AAD.1).map_err(Error::internal)?;
            store.insert_dpop_nonce_key(storage, &sealed).await?;
        }
        let (storage, sealed) = store
            .dpop_nonce_key()
            .await?
            .ok_or_else(|| Error::internal("the DPoP nonce key is missing"))?;
        let secret = keks
            .unwrap(&storage, &sealed, AAD.0, AAD.1)
            .map_err(Error::internal)?;
        Ok(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            &secret,
        ))
    }
}
