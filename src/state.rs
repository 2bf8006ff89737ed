//! Application state: everything a request needs, built once at start and shared through axum
//! state. No globals. Below the endpoints and the flows, which all take it; it knows nothing of
//! routing.

use std::sync::Arc;

use crate::accounts::turns::UserTurns;
use crate::audit::AuditLog;
use crate::client_keys::ClientKeys;
use crate::clock::{Clock, UnixTime};
use crate::config::Config;
use crate::http::discovery_cache::DiscoveryCache;
use crate::http::pages::Pages;
use crate::keys::KeyRing;
use crate::metrics::Metrics;
use crate::passwords::PasswordHasher;
use crate::rate_limit::RateLimiter;
use crate::store::Store;
use crate::tokens::dpop_nonce::DpopNonces;
use crate::used_jtis::UsedJtis;

/// One `Arc`: axum clones the state for every extractor and middleware that asks for it, so a
/// clone is one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub config: Arc<Config>,
    pub store: Store,
    pub keys: Arc<KeyRing>,
    pub clock: Arc<dyn Clock>,
    pub pages: Arc<Pages>,
    /// One per process, so `passwords.max_concurrent` bounds every login path together.
    pub passwords: Arc<PasswordHasher>,
    /// Password checks of one user take turns on this replica (`accounts`).
    pub login_turns: UserTurns,
    /// The in-memory (per-replica) rate limits; the shared ones live in the store.
    pub rate_limits: Arc<RateLimiter>,
    /// Buffered audit events (needs a tokio runtime: the writer is spawned here).
    pub audit: AuditLog,
    pub metrics: Arc<Metrics>,
    pub discovery: DiscoveryCache,
    /// Clients' public keys, registered or fetched from their `jwks_uri` (issue 21).
    pub client_keys: Arc<ClientKeys>,
    /// DPoP server nonces, valid on every replica (issue 21).
    pub dpop_nonces: Arc<DpopNonces>,
    /// Single use of assertion, proof and request object ids, group-committed (needs a tokio
    /// runtime: the writer is spawned here).
    pub used_jtis: UsedJtis,
}

impl AppState {
    pub fn new(config: Config, store: Store, clock: Arc<dyn Clock>) -> Self {
        let keys = Arc::new(KeyRing::new(store.clone(), &config));
        let passwords = Arc::new(PasswordHasher::new(&config.passwords));
        let audit = AuditLog::start(store.clone(), config.audit.buffer);
        let metrics = Arc::new(Metrics::new(config.database_pool_size()));
        let client_keys = Arc::new(ClientKeys::new(&config.client_assertions, config.mode));
        let dpop_nonces = Arc::new(DpopNonces::new(&config));
        let used_jtis = UsedJtis::start(store.clone());
        Self(Arc::new(Shared {
            config: Arc::new(config),
            store,
            keys,
            clock,
            pages: Arc::new(Pages::new()),
            passwords,
            login_turns: UserTurns::default(),
            rate_limits: Arc::new(RateLimiter::default()),
            audit,
            metrics,
            discovery: DiscoveryCache::default(),
            client_keys,
            dpop_nonces,
            used_jtis,
        }))
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }
}
