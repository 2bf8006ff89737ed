//! Signing keys: generated on first need, stored in the database (so every replica signs with
//! the same keys), cached in memory per server, published as a JWKS, rotated.

pub mod generate;
pub mod schedule;
pub mod signer;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::body::Bytes;
use jsonwebtoken::DecodingKey;

use crate::audit::{self, Event, Kind};
use crate::clock::UnixTime;
use crate::config::Config;
use crate::store::{AuthorizationServer, Store, StoredKey};
use schedule::{KeyStatus, KeyTimes};
pub use signer::{JwtType, Signer};

/// One key, parsed once.
pub struct LoadedKey {
    pub kid: String,
    pub generation: i64,
    pub created_at: UnixTime,
    pub not_before: UnixTime,
    pub jwk: serde_json::Value,
    pub signer: Signer,
    pub decoding_key: DecodingKey,
}

/// A server's keys as cached by one replica.
pub struct KeySet {
    loaded_at: Instant,
    /// Re-render when the clock reaches this (a key activates or leaves the JWKS).
    next_change: Option<UnixTime>,
    pub max_ttl: i64,
    pub keys: Vec<Arc<LoadedKey>>,
    /// The JWKS document, rendered once per load.
    pub jwks: Bytes,
}

impl KeySet {
    fn times(&self) -> Vec<KeyTimes> {
        times_of(&self.keys)
    }

    pub fn statuses(&self, now: UnixTime) -> Vec<KeyStatus> {
        schedule::statuses(&self.times(), now, self.max_ttl)
    }

    /// The key that signs at `now`.
    pub fn signing_key(&self, now: UnixTime) -> Option<&Arc<LoadedKey>> {
        let statuses = self.statuses(now);
        self.keys
            .iter()
            .zip(&statuses)
            .find(|(_, s)| **s == KeyStatus::Active)
            .map(|(k, _)| k)
            // Only pending keys (a clock set back): sign with the newest rather than fail.
            .or_else(|| self.keys.last())
    }

    /// A published key by `kid`, for verifying our own tokens.
    pub fn published_key(&self, kid: &str, now: UnixTime) -> Option<&Arc<LoadedKey>> {
        let statuses = self.statuses(now);
        self.keys
            .iter()
            .zip(statuses)
            .find(|(k, s)| k.kid == kid && s.is_published())
            .map(|(k, _)| k)
    }
}

fn times_of(keys: &[Arc<LoadedKey>]) -> Vec<KeyTimes> {
    keys.iter()
        .map(|k| KeyTimes {
            generation: k.generation,
            not_before: k.not_before,
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("key material: {0}")]
    Material(String),
}

impl From<KeyError> for crate::error::Error {
    fn from(e: KeyError) -> Self {
        crate::error::Error::internal(e)
    }
}

/// What a rotation did.
#[derive(Debug)]
pub enum Rotation {
    Added {
        kid: String,
        not_before: UnixTime,
    },
    /// Another writer rotated at the same moment; its key stands.
    LostRace,
}

pub struct KeyRing {
    store: Store,
    rsa_bits: usize,
    cache_ttl: std::time::Duration,
    default_max_ttl: i64,
    cache: RwLock<HashMap<String, Arc<KeySet>>>,
    /// One reload at a time, so a stale cache does not send every request to the database.
    reload: tokio::sync::Mutex<()>,
}

impl KeyRing {
    pub fn new(store: Store, config: &Config) -> Self {
        Self {
            store,
            rsa_bits: config.keys.rsa_bits,
            cache_ttl: config.keys.cache_ttl.as_duration(),
            default_max_ttl: config
                .tokens
                .access_token_ttl
                .as_i64()
                .max(config.tokens.id_token_ttl.as_i64()),
            cache: RwLock::new(HashMap::new()),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self, server_id: &str, now: UnixTime) -> Option<Arc<KeySet>> {
        let cache = self.cache.read().ok()?;
        let set = cache.get(server_id)?;
        let fresh =
            set.loaded_at.elapsed() < self.cache_ttl && set.next_change.is_none_or(|at| now < at);
        fresh.then(|| set.clone())
    }

    /// The server's keys, from the cache or (re)loaded; a first key is generated if it has none.
    pub async fn key_set(
        &self,
        server: &AuthorizationServer,
        now: UnixTime,
    ) -> Result<Arc<KeySet>, KeyError> {
        if let Some(set) = self.cached(&server.id, now) {
            return Ok(set);
        }
        let _guard = self.reload.lock().await;
        if let Some(set) = self.cached(&server.id, now) {
            return Ok(set);
        }
        let mut stored = self.store.keys(&server.id).await?;
        if stored.is_empty() {
            self.add_key(&server.id, 1, now, now).await?;
            stored = self.store.keys(&server.id).await?;
        }
        let set = Arc::new(self.build_set(server, stored, now).await?);
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(server.id.clone(), set.clone());
        }
        Ok(set)
    }

    async fn build_set(
        &self,
        server: &AuthorizationServer,
        stored: Vec<StoredKey>,
        now: UnixTime,
    ) -> Result<KeySet, KeyError> {
        let previous = self
            .cache
            .read()
            .ok()
            .and_then(|c| c.get(&server.id).cloned());
        let mut keys = Vec::with_capacity(stored.len());
        for key in stored {
            // Keep keys parsed by an earlier load; parse only new ones.
            let reused = previous
                .as_ref()
                .and_then(|p| p.keys.iter().find(|k| k.kid == key.kid).cloned());
            keys.push(match reused {
                Some(k) => k,
                None => Arc::new(parse(key)?),
            });
        }
        let max_ttl = self.max_ttl(server).await?;
        let times = times_of(&keys);
        let statuses = schedule::statuses(&times, now, max_ttl);
        let published: Vec<&serde_json::Value> = keys
            .iter()
            .zip(&statuses)
            .filter(|(_, s)| s.is_published())
            .map(|(k, _)| &k.jwk)
            .collect();
        let jwks = serde_json::to_vec(&serde_json::json!({ "keys": published }))
            .map_err(|e| KeyError::Material(e.to_string()))?;
        Ok(KeySet {
            loaded_at: Instant::now(),
            next_change: schedule::next_change(&times, now, max_ttl),
            max_ttl,
            keys,
            jwks: Bytes::from(jwks),
        })
    }

    /// The longest a JWT signed for this server may live. The overrides are read from the
    /// database rather than from `server`, which a caller may have loaded before an operator
    /// changed them.
    async fn max_ttl(&self, server: &AuthorizationServer) -> Result<i64, KeyError> {
        let overrides = self.store.max_jwt_ttl(&server.id).await?.unwrap_or(0);
        Ok(self.default_max_ttl.max(overrides))
    }

    /// Generate and store a key of the given generation. False if another writer won.
    async fn add_key(
        &self,
        server_id: &str,
        generation: i64,
        now: UnixTime,
        not_before: UnixTime,
    ) -> Result<Option<String>, KeyError> {
        let bits = self.rsa_bits;
        let generated = tokio::task::spawn_blocking(move || generate::generate_rsa(bits))
            .await
            .map_err(|e| KeyError::Material(e.to_string()))?
            .map_err(KeyError::Material)?;
        let stored = StoredKey {
            kid: generated.kid.clone(),
            server_id: server_id.to_string(),
            generation,
            alg: "RS256".into(),
            private_key: generated.pkcs8_der,
            public_jwk: generated.jwk.to_string(),
            created_at: now,
            not_before,
        };
        let inserted = self.store.insert_key(&stored).await?;
        if inserted {
            let kind = if generation == 1 {
                Kind::KeyGenerated
            } else {
                Kind::KeyRotated
            };
            let event = Event::new(kind, now)
                .server(server_id)
                .subject(generated.kid.as_str())
                .detail("generation", generation)
                .detail("not_before", not_before);
            // Rare: written at once rather than through a replica's queue.
            audit::write(&self.store, event).await;
        }
        Ok(inserted.then_some(generated.kid))
    }

    /// Add a key that is published at once and signs from `now + activate_in`.
    pub async fn rotate(
        &self,
        server_id: &str,
        now: UnixTime,
        activate_in: i64,
    ) -> Result<Rotation, KeyError> {
        let generation = self
            .store
            .latest_key_generation(server_id)
            .await?
            .unwrap_or(0)
            + 1;
        let not_before = now + activate_in;
        let outcome = match self.add_key(server_id, generation, now, not_before).await? {
            Some(kid) => Rotation::Added { kid, not_before },
            None => Rotation::LostRace,
        };
        self.invalidate(server_id);
        Ok(outcome)
    }

    /// Forget the cached keys of a server; the next use reloads them.
    pub fn invalidate(&self, server_id: &str) {
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(server_id);
        }
    }
}

fn parse(key: StoredKey) -> Result<LoadedKey, KeyError> {
    if key.alg != "RS256" {
        return Err(KeyError::Material(format!(
            "key {} has unsupported alg {}",
            key.kid, key.alg
        )));
    }
    let jwk: serde_json::Value =
        serde_json::from_str(&key.public_jwk).map_err(|e| KeyError::Material(e.to_string()))?;
    let component = |name: &str| {
        jwk.get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| KeyError::Material(format!("key {} has no `{name}`", key.kid)))
    };
    let decoding_key = DecodingKey::from_rsa_components(&component("n")?, &component("e")?)
        .map_err(|e| KeyError::Material(e.to_string()))?;
    let signer = Signer::from_pkcs8(&key.kid, &key.private_key).map_err(KeyError::Material)?;
    Ok(LoadedKey {
        kid: key.kid,
        generation: key.generation,
        created_at: key.created_at,
        not_before: key.not_before,
        jwk,
        signer,
        decoding_key,
    })
}
