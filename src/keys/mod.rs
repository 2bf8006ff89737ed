//! Signing keys: generated on first need, stored in the database (so every replica signs with
//! the same keys), cached in memory per server, published as a JWKS, rotated.
//!
//! Nothing is done per server at start: a server's keys are read, unsealed and parsed when it
//! is first used on this replica (`KeyRing::key_set`), and its first key is generated then by
//! whichever replica gets there first; the unique (server, generation) lets exactly one first
//! key be stored, and the others read it. So creating a server costs one row, and start-up
//! does not grow with the number of servers.

pub mod generate;
pub mod kek;
pub mod rotation;
pub mod schedule;
pub mod signer;

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::body::Bytes;
use jsonwebtoken::DecodingKey;

use crate::audit::{self, Event, Kind};
use crate::bounded::BoundedMap;
use crate::clock::UnixTime;
use crate::config::Config;
use crate::store::{AuthorizationServer, Rewrapped, Store, StoredKey};
use kek::{Kek, Keks};
use schedule::{KeyStatus, KeyTimes};
pub use signer::{JwtType, Signer, SigningAlg};

/// One key, parsed once.
pub struct LoadedKey {
    pub kid: String,
    pub alg: SigningAlg,
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
    /// Set by `KeyRing::invalidate`: reload on next use, still reusing the parsed keys.
    invalidated: AtomicBool,
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
        let can_sign = |k: &&Arc<LoadedKey>| k.signer.unavailable_reason().is_none();
        self.keys
            .iter()
            .zip(&statuses)
            .find(|(_, s)| **s == KeyStatus::Active)
            .map(|(k, _)| k)
            .filter(can_sign)
            // Only pending keys (a clock set back), or an active key this replica cannot
            // decrypt (mid KEK roll): sign with the newest usable key rather than fail.
            .or_else(|| {
                self.keys
                    .iter()
                    .zip(&statuses)
                    .rev()
                    .filter(|(_, s)| s.is_published())
                    .map(|(k, _)| k)
                    .find(can_sign)
            })
    }

    /// Keys whose private part this process cannot decrypt, with the reason.
    pub fn undecryptable(&self) -> impl Iterator<Item = (&str, &str)> {
        self.keys.iter().filter_map(|k| {
            k.signer
                .unavailable_reason()
                .map(|reason| (k.kid.as_str(), reason))
        })
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

    /// The algorithms of the published keys, the signing key's first: what tokens verifiable
    /// at `now` may be signed with (both during a change of algorithm).
    pub fn published_algs(&self, now: UnixTime) -> Vec<&'static str> {
        let mut algs: Vec<&'static str> = self
            .signing_key(now)
            .map(|k| k.alg.as_str())
            .into_iter()
            .collect();
        for (key, status) in self.keys.iter().zip(self.statuses(now)) {
            if status.is_published() && !algs.contains(&key.alg.as_str()) {
                algs.push(key.alg.as_str());
            }
        }
        algs
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
    /// A key-encryption key is missing, malformed or not the one the keys were sealed under.
    #[error("{0}")]
    Kek(String),
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

/// Servers whose parsed keys one replica keeps: a bound on memory (a parsed RSA key with its
/// JWKS is a few KiB). A server beyond it in active use is read and parsed again when asked.
const MAX_KEY_SETS: usize = 2048;

/// Loads (and first-key generations) run one at a time per stripe of servers, so a stale entry
/// does not send every request for one server to the database, while other servers' loads go
/// on meanwhile (a first RSA key takes a while to generate).
const LOAD_STRIPES: usize = 64;

pub struct KeyRing {
    store: Store,
    /// The KEKs from the configuration, or why they could not be read (reported at start).
    keks: Result<Keks, String>,
    rsa_bits: usize,
    cache_ttl: std::time::Duration,
    default_max_ttl: i64,
    /// Each server's keys as last loaded; at most `MAX_KEY_SETS` servers.
    cache: RwLock<BoundedMap<String, Arc<KeySet>>>,
    /// One load at a time per stripe of servers (`LOAD_STRIPES`).
    reload: Vec<tokio::sync::Mutex<()>>,
}

impl KeyRing {
    pub fn new(store: Store, config: &Config) -> Self {
        Self {
            store,
            keks: Keks::from_config(&config.keys),
            rsa_bits: config.keys.rsa_bits,
            cache_ttl: config.keys.cache_ttl.as_duration(),
            default_max_ttl: config
                .tokens
                .access_token_ttl
                .as_i64()
                .max(config.tokens.id_token_ttl.as_i64()),
            cache: RwLock::new(BoundedMap::new(MAX_KEY_SETS)),
            reload: (0..LOAD_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The KEKs, for other secrets sealed the same way (TOTP secrets, `mfa::secret`).
    pub fn keks(&self) -> Result<&Keks, KeyError> {
        self.keks.as_ref().map_err(|e| KeyError::Kek(e.clone()))
    }

    /// Is a KEK configured (keys are sealed at rest)? Err when the configured one is unusable.
    pub fn encrypts(&self) -> Result<bool, KeyError> {
        Ok(self.keks()?.current.is_some())
    }

    fn cached(&self, server_id: &str, now: UnixTime) -> Option<Arc<KeySet>> {
        let cache = self.cache.read().ok()?;
        let set = cache.get(server_id)?;
        let fresh = set.loaded_at.elapsed() < self.cache_ttl
            && set.next_change.is_none_or(|at| now < at)
            && !set.invalidated.load(Ordering::Relaxed);
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
        let _guard = self.load_lock(&server.id).lock().await;
        if let Some(set) = self.cached(&server.id, now) {
            return Ok(set);
        }
        // The cache's age counts from before the read: what it holds is at least that old.
        let read_at = Instant::now();
        let mut stored = self.store.keys(&server.id).await?;
        if stored.is_empty() {
            // The first key, on first use. Two replicas may both get here: the unique
            // (server, generation 1) stores one of the two keys, and both read that one.
            let alg = server_alg(server)?;
            self.add_key(&server.id, alg, 1, now, now).await?;
            stored = self.store.keys(&server.id).await?;
        }
        let set = Arc::new(self.build_set(server, stored, now, read_at).await?);
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(server.id.clone(), set.clone());
        }
        Ok(set)
    }

    fn load_lock(&self, server_id: &str) -> &tokio::sync::Mutex<()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        server_id.hash(&mut hasher);
        &self.reload[(hasher.finish() as usize) % self.reload.len()]
    }

    async fn build_set(
        &self,
        server: &AuthorizationServer,
        stored: Vec<StoredKey>,
        now: UnixTime,
        read_at: Instant,
    ) -> Result<KeySet, KeyError> {
        let previous = self
            .cache
            .read()
            .ok()
            .and_then(|c| c.get(&server.id).cloned());
        let keks = self.keks()?;
        let mut keys = Vec::with_capacity(stored.len());
        for key in stored {
            // Keep keys parsed by an earlier load; parse only new ones.
            let reused = previous
                .as_ref()
                .and_then(|p| p.keys.iter().find(|k| k.kid == key.kid).cloned());
            keys.push(match reused {
                Some(k) => k,
                None => Arc::new(parse(key, keks)?),
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
            loaded_at: read_at,
            invalidated: AtomicBool::new(false),
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

    /// Generate and store a key of the given generation, sealed under the KEK if there is
    /// one. None if another writer took the generation first.
    async fn add_key(
        &self,
        server_id: &str,
        alg: SigningAlg,
        generation: i64,
        now: UnixTime,
        not_before: UnixTime,
    ) -> Result<Option<(String, UnixTime)>, KeyError> {
        let keks = self.keks()?;
        let bits = self.rsa_bits;
        let generating = Instant::now();
        let generated = tokio::task::spawn_blocking(move || generate::generate(alg, bits))
            .await
            .map_err(|e| KeyError::Material(e.to_string()))?
            .map_err(KeyError::Material)?;
        // The key is published when it is stored, not when the caller read the clock: RSA
        // generation can take seconds on a busy machine, and those must not come out of the
        // time relying parties have to learn the key before it signs.
        // (A first key has nothing to replace: it signs at once.)
        let not_before = if generation > 1 {
            not_before + generating.elapsed().as_secs() as i64
        } else {
            not_before
        };
        let (key_storage, private_key) = keks
            .wrap(&generated.pkcs8_der, server_id, &generated.kid)
            .map_err(KeyError::Kek)?;
        let stored = StoredKey {
            kid: generated.kid.clone(),
            server_id: server_id.to_string(),
            generation,
            alg: alg.as_str().into(),
            key_storage: key_storage.into(),
            private_key,
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
        Ok(inserted.then_some((generated.kid, not_before)))
    }

    /// Add a key of the server's algorithm that is published at once and signs from
    /// `now + activate_in`.
    pub async fn rotate(
        &self,
        server_id: &str,
        now: UnixTime,
        activate_in: i64,
    ) -> Result<Rotation, KeyError> {
        let server = self.store.server(server_id).await?.ok_or_else(|| {
            KeyError::Store(crate::store::StoreError::NotFound(format!(
                "server `{server_id}`"
            )))
        })?;
        let generation = self
            .store
            .latest_key_generation(server_id)
            .await?
            .unwrap_or(0)
            + 1;
        self.rotate_to(&server, generation, now, activate_in).await
    }

    /// Add generation `generation` (the newest seen + 1): when two writers decided to rotate
    /// on the same observation, the unique (server, generation) lets exactly one succeed.
    pub async fn rotate_to(
        &self,
        server: &AuthorizationServer,
        generation: i64,
        now: UnixTime,
        activate_in: i64,
    ) -> Result<Rotation, KeyError> {
        let server_id = server.id.as_str();
        let alg = server_alg(server)?;
        let not_before = now + activate_in;
        let outcome = match self
            .add_key(server_id, alg, generation, now, not_before)
            .await?
        {
            Some((kid, not_before)) => Rotation::Added { kid, not_before },
            None => Rotation::LostRace,
        };
        self.invalidate(server_id);
        Ok(outcome)
    }

    /// Refuse to start when keys are sealed but no KEK is configured: without this one query,
    /// a server's keys would be found unreadable only when it is first used.
    pub async fn check_readable_without_kek(&self) -> Result<(), KeyError> {
        if self.encrypts()? {
            return Ok(());
        }
        match self.store.a_sealed_key().await? {
            Some(kid) => Err(KeyError::Kek(format!(
                "key {kid} is encrypted, but no KEK is configured (set keys.kek or keys.kek_file)"
            ))),
            None => Ok(()),
        }
    }

    /// How many servers' keys this replica holds parsed (at most `MAX_KEY_SETS`).
    pub fn loaded_servers(&self) -> usize {
        self.cache.read().map(|c| c.len()).unwrap_or(0)
    }

    /// Forget the cached keys of a server; the next use reloads them. Keys already parsed
    /// are kept (a reload decrypts only keys it has not seen).
    pub fn invalidate(&self, server_id: &str) {
        if let Ok(cache) = self.cache.read() {
            if let Some(set) = cache.get(server_id) {
                set.invalidated.store(true, Ordering::Relaxed);
            }
        }
    }
}

impl KeyRing {
    /// Re-encrypt every key that is not under the current KEK (plaintext, or the previous
    /// KEK) in one transaction. Serve does this at start; returns how many were re-encrypted.
    pub async fn seal_stored_keys(&self) -> Result<usize, KeyError> {
        let keks = self.keks()?;
        let Some(current) = &keks.current else {
            return Ok(0);
        };
        let mut attempt = 0;
        loop {
            // Only the keys not yet under it are read: at start, usually none, however many
            // servers there are.
            let stale = self.store.keys_not_sealed_under(current.id()).await?;
            let outcome = self
                .rewrap_into(stale, keks, keks, |k| {
                    !keks.is_current(&k.key_storage, &k.private_key)
                })
                .await;
            match outcome {
                // Replicas starting together re-encrypt the same rows: the loser re-reads.
                Err(KeyError::Store(crate::store::StoreError::Conflict(_))) if attempt < 3 => {
                    attempt += 1
                }
                other => return other,
            }
        }
    }

    /// Re-encrypt every key from the current KEK (or plaintext) to `new`, in one transaction
    /// (`portcullis keys rewrap`).
    pub async fn rewrap(&self, new: Kek) -> Result<usize, KeyError> {
        let target = Keks::with_current(Some(new));
        let all = self.store.all_keys().await?;
        self.rewrap_into(all, self.keks()?, &target, |_| true).await
    }

    async fn rewrap_into(
        &self,
        keys: Vec<StoredKey>,
        from: &Keks,
        to: &Keks,
        wanted: impl Fn(&StoredKey) -> bool,
    ) -> Result<usize, KeyError> {
        let mut changes = Vec::new();
        for key in keys {
            if !wanted(&key) {
                continue;
            }
            let der = from
                .unwrap(&key.key_storage, &key.private_key, &key.server_id, &key.kid)
                .map_err(KeyError::Kek)?;
            let (key_storage, private_key) = to
                .wrap(&der, &key.server_id, &key.kid)
                .map_err(KeyError::Kek)?;
            changes.push(Rewrapped {
                kid: key.kid,
                old: key.private_key,
                key_storage: key_storage.into(),
                private_key,
            });
        }
        self.store.rewrap_keys(&changes).await?;
        Ok(changes.len())
    }
}

fn server_alg(server: &AuthorizationServer) -> Result<SigningAlg, KeyError> {
    SigningAlg::parse(&server.signing_alg).ok_or_else(|| {
        KeyError::Material(format!(
            "server {} has unsupported signing alg {}",
            server.id, server.signing_alg
        ))
    })
}

fn parse(key: StoredKey, keks: &Keks) -> Result<LoadedKey, KeyError> {
    let alg = SigningAlg::parse(&key.alg).ok_or_else(|| {
        KeyError::Material(format!("key {} has unsupported alg {}", key.kid, key.alg))
    })?;
    let jwk: serde_json::Value =
        serde_json::from_str(&key.public_jwk).map_err(|e| KeyError::Material(e.to_string()))?;
    let component = |name: &str| {
        jwk.get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| KeyError::Material(format!("key {} has no `{name}`", key.kid)))
    };
    let decoding_key = match alg {
        SigningAlg::Rs256 => DecodingKey::from_rsa_components(&component("n")?, &component("e")?),
        SigningAlg::Es256 => DecodingKey::from_ec_components(&component("x")?, &component("y")?),
    }
    .map_err(|e| KeyError::Material(e.to_string()))?;
    let signer = match keks.unwrap(&key.key_storage, &key.private_key, &key.server_id, &key.kid) {
        Ok(der) => Signer::from_pkcs8(alg, &key.kid, &der).map_err(KeyError::Material)?,
        // Start-up refuses this (serve::prepare); at run time the key still verifies.
        Err(reason) => {
            tracing::error!(kid = %key.kid, "{reason}");
            Signer::unavailable(alg, &key.kid, reason)
        }
    };
    Ok(LoadedKey {
        kid: key.kid,
        alg,
        generation: key.generation,
        created_at: key.created_at,
        not_before: key.not_before,
        jwk,
        signer,
        decoding_key,
    })
}
