//! A per-replica cache of what every request reads and operators rarely change: servers,
//! clients, custom claims and scopes. Without it a client-credentials token costs four
//! queries before its one signature (docs/performance.md).
//!
//! Invalidation across replicas: every write to `authorization_servers`, `clients`, `scopes`,
//! `claims`, `access_policies` or `access_rules` bumps the single-row `config_version` counter, by trigger (migration 0004), so the
//! CLI, another replica and a hand-written UPDATE all count. Each replica reads the counter at
//! most once per `cache.refresh_interval` (on the first cached read after it elapses) and drops
//! everything when it moved. A change therefore reaches every replica within that interval
//! (plus one query); writes through this process's own `Store` clear the cache at once.
//!
//! Only rows that exist are cached, so unknown ids (anyone can send them) cannot grow it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::{on_pool, AccessPolicy, AuthorizationServer, Client, CustomClaim, Store, StoreError};
use crate::protocol::ScopeSet;

/// Entries per kind beyond which the map is emptied rather than grown (a bound on memory, far
/// above any real deployment's number of clients).
const MAX_ENTRIES: usize = 10_000;

pub(crate) struct Cache {
    refresh_interval: RwLock<Duration>,
    entries: RwLock<Entries>,
    /// One version check at a time; other requests use the cache meanwhile.
    checking: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Entries {
    /// Moves on every invalidation; a load that began before one is not stored.
    generation: u64,
    /// `config_version` when last read.
    version: Option<i64>,
    checked_at: Option<Instant>,
    // Shared, not cloned per request: a client or server is a dozen strings and lists.
    servers: HashMap<String, Arc<AuthorizationServer>>,
    clients: HashMap<String, Arc<Client>>,
    claims: HashMap<String, Arc<Vec<CustomClaim>>>,
    default_scopes: HashMap<String, ScopeSet>,
    scope_names: HashMap<String, Arc<Vec<String>>>,
    access_policies: HashMap<String, Arc<Vec<AccessPolicy>>>,
}

impl Entries {
    fn clear(&mut self) {
        self.generation += 1;
        self.servers.clear();
        self.clients.clear();
        self.claims.clear();
        self.default_scopes.clear();
        self.scope_names.clear();
        self.access_policies.clear();
    }
}

impl Cache {
    pub(crate) fn new() -> Self {
        Self {
            refresh_interval: RwLock::new(Duration::from_secs(1)),
            entries: RwLock::new(Entries::default()),
            checking: tokio::sync::Mutex::new(()),
        }
    }

    /// After a write through this process: nothing cached survives it.
    pub(crate) fn invalidate(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }

    fn generation(&self) -> u64 {
        self.entries.read().map(|e| e.generation).unwrap_or(0)
    }

    fn get<T: Clone>(&self, pick: impl FnOnce(&Entries) -> Option<&T>) -> Option<T> {
        self.entries.read().ok().and_then(|e| pick(&e).cloned())
    }

    /// Store what a load read, unless the cache was invalidated since it began.
    fn put(&self, generation: u64, put: impl FnOnce(&mut Entries)) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.generation == generation {
                put(&mut entries);
            }
        }
    }
}

/// Insert into a bounded map.
fn bounded_insert<T>(map: &mut HashMap<String, T>, key: &str, value: T) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key.to_string(), value);
}

impl Store {
    /// How stale a replica may be: `cache.refresh_interval` (0: check on every read).
    pub fn set_cache_refresh_interval(&self, interval: Duration) {
        if let Ok(mut current) = self.cache.refresh_interval.write() {
            *current = interval;
        }
    }

    /// Moves whenever the cache is dropped (a local write, or `config_version` moved): what was
    /// derived from cached policy before is stale once it differs.
    pub fn cache_generation(&self) -> u64 {
        self.cache.generation()
    }

    /// The counter every write to servers, clients, scopes and claims bumps.
    pub async fn config_version(&self) -> Result<i64, StoreError> {
        let row: (i64,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT version FROM config_version WHERE id = 1",
        )
        .fetch_one(pool)
        .await?);
        Ok(row.0)
    }

    /// Drop the cache if the interval has passed and `config_version` moved.
    async fn revalidate_cache(&self) -> Result<(), StoreError> {
        let interval = self
            .cache
            .refresh_interval
            .read()
            .map(|i| *i)
            .unwrap_or_default();
        let due = self
            .cache
            .entries
            .read()
            .map(|e| e.checked_at.is_none_or(|at| at.elapsed() >= interval))
            .unwrap_or(true);
        if !due {
            return Ok(());
        }
        // With an interval of 0 every read waits for its own check; otherwise a read that finds
        // a check under way uses the cache, at most one query's time staler.
        let _guard = if interval.is_zero() {
            self.cache.checking.lock().await
        } else {
            match self.cache.checking.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(()),
            }
        };
        let checked_at = Instant::now();
        let version = self.config_version().await?;
        if let Ok(mut entries) = self.cache.entries.write() {
            if entries.version != Some(version) {
                entries.clear();
                entries.version = Some(version);
            }
            entries.checked_at = Some(checked_at);
        }
        Ok(())
    }

    /// `server`, from the cache.
    pub async fn cached_server(
        &self,
        id: &str,
    ) -> Result<Option<Arc<AuthorizationServer>>, StoreError> {
        self.revalidate_cache().await?;
        if let Some(hit) = self.cache.get(|e| e.servers.get(id)) {
            return Ok(Some(hit));
        }
        let generation = self.cache.generation();
        let loaded = self.server(id).await?.map(Arc::new);
        if let Some(server) = &loaded {
            self.cache.put(generation, |e| {
                bounded_insert(&mut e.servers, id, server.clone())
            });
        }
        Ok(loaded)
    }

    /// `client`, from the cache.
    pub async fn cached_client(&self, id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        self.revalidate_cache().await?;
        if let Some(hit) = self.cache.get(|e| e.clients.get(id)) {
            return Ok(Some(hit));
        }
        let generation = self.cache.generation();
        let loaded = self.client(id).await?.map(Arc::new);
        if let Some(client) = &loaded {
            self.cache.put(generation, |e| {
                bounded_insert(&mut e.clients, id, client.clone())
            });
        }
        Ok(loaded)
    }

    /// `claims`, from the cache (only for servers that exist: callers resolved the server).
    pub async fn cached_claims(
        &self,
        server_id: &str,
    ) -> Result<Arc<Vec<CustomClaim>>, StoreError> {
        self.revalidate_cache().await?;
        if let Some(hit) = self.cache.get(|e| e.claims.get(server_id)) {
            return Ok(hit);
        }
        let generation = self.cache.generation();
        let loaded = Arc::new(self.claims(server_id).await?);
        self.cache.put(generation, |e| {
            bounded_insert(&mut e.claims, server_id, loaded.clone())
        });
        Ok(loaded)
    }

    /// `default_scopes`, from the cache.
    pub async fn cached_default_scopes(&self, server_id: &str) -> Result<ScopeSet, StoreError> {
        self.revalidate_cache().await?;
        if let Some(hit) = self.cache.get(|e| e.default_scopes.get(server_id)) {
            return Ok(hit);
        }
        let generation = self.cache.generation();
        let loaded = self.default_scopes(server_id).await?;
        self.cache.put(generation, |e| {
            bounded_insert(&mut e.default_scopes, server_id, loaded.clone())
        });
        Ok(loaded)
    }

    /// `scope_names`, from the cache.
    pub async fn cached_scope_names(
        &self,
        server_id: &str,
    ) -> Result<Arc<Vec<String>>, StoreError> {
        self.revalidate_cache().await?;
        if let Some(hit) = self.cache.get(|e| e.scope_names.get(server_id)) {
            return Ok(hit);
        }
        let generation = self.cache.generation();
        let loaded = Arc::new(self.scope_names(server_id).await?);
        self.cache.put(generation, |e| {
            bounded_insert(&mut e.scope_names, server_id, loaded.clone())
        });
        Ok(loaded)
    }

    /// `access_policies` (with their rules), from the cache.
    pub async fn cached_access_policies(
        &self,
        server_id: &str,
    ) -> Result<Arc<Vec<AccessPolicy>>, StoreError> {
        self.revalidate_cache().await?;
        if let Some(hit) = self.cache.get(|e| e.access_policies.get(server_id)) {
            return Ok(hit);
        }
        let generation = self.cache.generation();
        let loaded = Arc::new(self.access_policies(server_id).await?);
        self.cache.put(generation, |e| {
            bounded_insert(&mut e.access_policies, server_id, loaded.clone())
        });
        Ok(loaded)
    }
}
