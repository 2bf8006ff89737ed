//! A per-replica cache of what every request reads and operators rarely change: servers,
//! clients, custom claims and scopes. Without it a client-credentials token costs four
//! queries before its one signature (docs/performance.md).
//!
//! Invalidation across replicas: every write to `authorization_servers`, `clients`, `scopes`,
//! `claims`, `access_policies` or `access_rules` bumps the single-row `config_version` counter
//! and records the server it touched in `config_changes` under the new version, by trigger
//! (migrations 0004 and 0013), so the CLI, another replica and a hand-written UPDATE all count.
//! Each replica reads the counter at most once per `cache.refresh_interval` (on the first cached
//! read after it elapses); when it moved it reads the changes since the version it last saw and
//! drops only the entries of the servers named there, so the cost of a change does not grow
//! with the number of servers. When it cannot account for every version in between (more than
//! `MAX_INCREMENTAL` changes, rows already purged by housekeeping, a TRUNCATE) it drops
//! everything. A change therefore reaches every replica within that interval (plus one or two
//! queries); writes through this process's own `Store` drop that server's entries at once.
//!
//! Bounds: only rows that exist are cached, so unknown ids (anyone can send them) cannot grow
//! it, and each kind holds at most `MAX_ENTRIES` entries (`BoundedMap`: the least recently
//! loaded go first), so ten thousand servers cost at most that many entries per kind.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::{on_pool, AccessPolicy, AuthorizationServer, Client, CustomClaim, Store, StoreError};
use crate::bounded::BoundedMap;
use crate::protocol::ScopeSet;

/// Entries per kind (servers, clients, claims, scopes, policies): a bound on memory. Servers
/// beyond it in active use are reloaded from the database now and then, not refused.
const MAX_ENTRIES: usize = 4096;

/// The most changes a replica applies one by one; more since its last check and it drops
/// everything instead (a bulk change: one reload per server is cheaper than reading them all).
const MAX_INCREMENTAL: i64 = 1000;

pub(crate) struct Cache {
    refresh_interval: RwLock<Duration>,
    entries: RwLock<Entries>,
    /// One version check at a time; other requests use the cache meanwhile.
    checking: tokio::sync::Mutex<()>,
}

struct Entries {
    /// Moves on every invalidation; a load that began before one is not stored.
    generation: u64,
    /// `config_version` when last read.
    version: Option<i64>,
    checked_at: Option<Instant>,
    // Shared, not cloned per request: a client or server is a dozen strings and lists.
    servers: BoundedMap<String, Arc<AuthorizationServer>>,
    clients: BoundedMap<String, Arc<Client>>,
    claims: BoundedMap<String, Arc<Vec<CustomClaim>>>,
    default_scopes: BoundedMap<String, ScopeSet>,
    scope_names: BoundedMap<String, Arc<Vec<String>>>,
    access_policies: BoundedMap<String, Arc<Vec<AccessPolicy>>>,
}

impl Default for Entries {
    fn default() -> Self {
        Self {
            generation: 0,
            version: None,
            checked_at: None,
            servers: BoundedMap::new(MAX_ENTRIES),
            clients: BoundedMap::new(MAX_ENTRIES),
            claims: BoundedMap::new(MAX_ENTRIES),
            default_scopes: BoundedMap::new(MAX_ENTRIES),
            scope_names: BoundedMap::new(MAX_ENTRIES),
            access_policies: BoundedMap::new(MAX_ENTRIES),
        }
    }
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

    /// Drop one server's entries (its record, clients, claims, scopes and policies).
    fn forget_server(&mut self, server_id: &str) {
        self.generation += 1;
        self.servers.remove(server_id);
        self.clients.retain(|_, c| c.server_id != server_id);
        self.claims.remove(server_id);
        self.default_scopes.remove(server_id);
        self.scope_names.remove(server_id);
        self.access_policies.remove(server_id);
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

    /// After a write through this process that may touch any server: nothing cached survives.
    pub(crate) fn invalidate(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }

    /// After a write through this process to one server's configuration.
    pub(crate) fn invalidate_server(&self, server_id: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.forget_server(server_id);
        }
    }

    /// After a write through this process to one client.
    pub(crate) fn invalidate_client(&self, client_id: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.generation += 1;
            entries.clients.remove(client_id);
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

impl Store {
    /// How stale a replica may be: `cache.refresh_interval` (0: check on every read).
    pub fn set_cache_refresh_interval(&self, interval: Duration) {
        if let Ok(mut current) = self.cache.refresh_interval.write() {
            *current = interval;
        }
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
        let seen = self.cache.entries.read().ok().and_then(|e| e.version);
        // The servers changed since the version last seen, when every change is accounted for.
        let changed = match seen {
            Some(seen) if seen == version => Some(Vec::new()),
            Some(seen) if seen < version && version - seen <= MAX_INCREMENTAL => {
                let changes = self.config_changes(seen, version).await?;
                (changes.len() as i64 == version - seen).then_some(changes)
            }
            _ => None,
        };
        if let Ok(mut entries) = self.cache.entries.write() {
            // Another check (interval 0) may have moved on meanwhile: apply only forward.
            if entries.version == seen {
                match changed {
                    Some(servers) => {
                        for server in servers.iter().filter(|s| !s.is_empty()) {
                            entries.forget_server(server);
                        }
                    }
                    None => entries.clear(),
                }
                entries.version = Some(version);
            }
            entries.checked_at = Some(checked_at);
        }
        Ok(())
    }

    /// The servers named by the changes with a version in `(after, upto]`, one per version.
    async fn config_changes(&self, after: i64, upto: i64) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT server_id FROM config_changes WHERE version > $1 AND version <= $2",
        )
        .bind(after)
        .bind(upto)
        .fetch_all(pool)
        .await?);
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    /// Housekeeping: forget changes recorded before `cutoff`, at most `limit` of them. A
    /// replica that has not checked since then drops its whole cache instead.
    pub async fn delete_config_changes_before(
        &self,
        cutoff: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query(
            "DELETE FROM config_changes WHERE version IN \
             (SELECT version FROM config_changes WHERE changed_at < $1 ORDER BY version LIMIT $2)",
        )
        .bind(cutoff)
        .bind(i64::from(limit))
        .execute(pool)
        .await?
        .rows_affected()))
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
                e.servers.insert(id.to_string(), server.clone())
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
                e.clients.insert(id.to_string(), client.clone())
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
            e.claims.insert(server_id.to_string(), loaded.clone())
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
            e.default_scopes
                .insert(server_id.to_string(), loaded.clone())
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
            e.scope_names.insert(server_id.to_string(), loaded.clone())
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
            e.access_policies
                .insert(server_id.to_string(), loaded.clone())
        });
        Ok(loaded)
    }
}
