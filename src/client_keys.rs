//! Clients' public keys, for `private_key_jwt` assertions (RFC 7523) and signed request
//! objects (RFC 9101): the JWK Set registered inline, or the one published at the client's
//! `jwks_uri` (RFC 7591 §2), fetched with a timeout and a size cap, cached, and fetched again
//! for an unknown `kid` at most once a minute (OIDC Core §10.1.1: key rotation).
//!
//! The fetch is a request from our network to a URL a client chose (SSRF): https only, except
//! plain http to a loopback host in development mode; no redirects; and in production mode
//! never to a loopback, private, link-local or otherwise non-public address. The name is
//! resolved once and the connection pinned to the checked address, so DNS cannot answer
//! differently between the check and the connection.
//!
//! The cache is per replica, and safe to be: it holds public keys the client publishes, each
//! replica fetches them for itself, and a replica that has not yet seen a rotation fetches on
//! the first unknown `kid`. Nothing in it must agree across replicas. Within a replica,
//! concurrent requests that need the same set share one fetch and its outcome.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use jsonwebtoken::jwk::JwkSet;

use crate::clock::UnixTime;
use crate::config::{ClientAssertionConfig, Mode};
use crate::store::Client;

/// An unknown `kid` fetches the set again at most this often.
const REFETCH_AFTER: i64 = 60;

/// `jwks_uri`s remembered beyond which the map is emptied rather than grown.
const MAX_ENTRIES: usize = 10_000;

pub struct ClientKeys {
    config: ClientAssertionConfig,
    mode: Mode,
    /// By `jwks_uri`.
    slots: RwLock<HashMap<String, Arc<Slot>>>,
}

/// One `jwks_uri`: the set last fetched from it, and its fetches, one at a time. Requests that
/// need the set while it is being fetched wait for that fetch and share its outcome (the set,
/// or the reason it could not be had) instead of each fetching: a burst of assertions naming a
/// new `kid` costs the client's server one GET, not one per request.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    /// Held for the length of a fetch.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct SlotState {
    fetched: Option<Fetched>,
    /// Fetches finished so far, and the outcome of the last: a request that waited on a fetch
    /// sees the count move and takes that outcome.
    fetches: u64,
    outcome: Option<Result<Arc<JwkSet>, String>>,
}

#[derive(Clone)]
struct Fetched {
    set: Arc<JwkSet>,
    fetched_at: UnixTime,
}

impl ClientKeys {
    pub fn new(config: &ClientAssertionConfig, mode: Mode) -> Self {
        Self {
            config: config.clone(),
            mode,
            slots: RwLock::new(HashMap::new()),
        }
    }

    /// The client's keys, for a JWT naming `kid` (if it names one). Err(description) when it
    /// has none or they cannot be had.
    pub async fn keys_for(
        &self,
        client: &Client,
        kid: Option<&str>,
        now: UnixTime,
    ) -> Result<Arc<JwkSet>, String> {
        // Parsed once per cached client, not per assertion (docs/performance.md, issue 21).
        if let Some(inline) = client.inline_jwks(|json| parse_set(json.as_bytes())) {
            return inline;
        }
        let Some(uri) = &client.security.jwks_uri else {
            return Err("the client has no registered keys (jwks or jwks_uri)".into());
        };
        let slot = self.slot(uri);
        let seen = {
            let state = lock(&slot.state);
            if let Some(cached) = &state.fetched {
                let age = now - cached.fetched_at;
                let fresh = (0..self.config.jwks_cache_ttl.as_i64()).contains(&age);
                let has_kid = kid.is_none_or(|kid| cached.set.find(kid).is_some());
                // A rotation: an unknown kid fetches again, but not more than once a minute.
                if fresh && (has_kid || age < REFETCH_AFTER) {
                    return Ok(cached.set.clone());
                }
            }
            state.fetches
        };
        let _fetching = slot.fetching.lock().await;
        {
            // Another request fetched while this one waited: its outcome is as fresh as ours
            // would be.
            let state = lock(&slot.state);
            if state.fetches != seen {
                if let Some(outcome) = &state.outcome {
                    return outcome.clone();
                }
            }
        }
        let outcome = self.fetch(uri).await.map(Arc::new);
        let mut state = lock(&slot.state);
        state.fetches += 1;
        if let Ok(set) = &outcome {
            state.fetched = Some(Fetched {
                set: set.clone(),
                fetched_at: now,
            });
        }
        state.outcome = Some(outcome.clone());
        outcome
    }

    /// The slot of `uri`, made on first use.
    fn slot(&self, uri: &str) -> Arc<Slot> {
        if let Some(slot) = self.slots.read().ok().and_then(|s| s.get(uri).cloned()) {
            return slot;
        }
        let Ok(mut slots) = self.slots.write() else {
            return Arc::default();
        };
        if slots.len() >= MAX_ENTRIES && !slots.contains_key(uri) {
            slots.clear();
        }
        slots.entry(uri.to_string()).or_default().clone()
    }

    /// GET the JWK Set at `uri` under the rules above.
    async fn fetch(&self, uri: &str) -> Result<JwkSet, String> {
        let url = url::Url::parse(uri).map_err(|_| "the registered jwks_uri is not a URL")?;
        let host = url
            .host_str()
            .ok_or("the registered jwks_uri has no host")?;
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| "the jwks_uri host does not resolve")?
            .collect();
        let address = self.allowed_address(&url, &addresses)?;
        // The process's TLS provider; an error means one is installed already, which is fine.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let timeout = self.config.jwks_fetch_timeout.as_duration();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .resolve(host, address)
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| "cannot build an HTTP client")?;
        let mut response = http
            .get(url)
            .header(
                reqwest::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "fetching the jwks_uri timed out".to_string()
                } else {
                    "the jwks_uri cannot be reached".to_string()
                }
            })?;
        if !response.status().is_success() {
            return Err(format!(
                "the jwks_uri answered HTTP {}",
                response.status().as_u16()
            ));
        }
        let cap = self.config.jwks_max_bytes as usize;
        let mut body = Vec::new();
        while let Some(chunk) = tokio::time::timeout(timeout, response.chunk())
            .await
            .map_err(|_| "fetching the jwks_uri timed out")?
            .map_err(|_| "the jwks_uri response broke off")?
        {
            if body.len() + chunk.len() > cap {
                return Err(format!("the jwks_uri document exceeds {cap} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        parse_set(&body)
    }

    /// The address to connect to: https anywhere public; in development, also http to a
    /// loopback host and any address; in production never a non-public address.
    fn allowed_address(
        &self,
        url: &url::Url,
        addresses: &[SocketAddr],
    ) -> Result<SocketAddr, String> {
        let development = self.mode == Mode::Development;
        match url.scheme() {
            "https" => {}
            "http" if development && addresses.iter().all(|a| a.ip().is_loopback()) => {}
            _ => {
                return Err(
                    "the jwks_uri must be https (plain http only to loopback in development mode)"
                        .into(),
                )
            }
        }
        if !development && addresses.iter().any(|a| !is_public(a.ip())) {
            return Err("the jwks_uri resolves to a private or reserved address".into());
        }
        addresses
            .first()
            .copied()
            .ok_or_else(|| "the jwks_uri host does not resolve".into())
    }
}

/// A slot's state, also after a panic elsewhere left the lock poisoned (the state is a cache:
/// any value of it is safe to use).
fn lock(state: &Mutex<SlotState>) -> MutexGuard<'_, SlotState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn parse_set(bytes: &[u8]) -> Result<JwkSet, String> {
    serde_json::from_slice(bytes).map_err(|_| "the client's JWK Set is not valid".into())
}

/// Is `ip` a public unicast address? Not loopback, private (RFC 1918, RFC 4193), link-local,
/// shared (RFC 6598), documentation, benchmarking, multicast, broadcast or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_public;

    #[test]
    fn private_and_reserved_ranges_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
