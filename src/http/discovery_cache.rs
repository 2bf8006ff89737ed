//! The discovery documents (`endpoints::discovery`), rendered once per server and kept until
//! the server's policy or its signing algorithms change.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;

use crate::bounded::BoundedMap;
use crate::store::{AuthorizationServer, CustomClaim};

/// Which of the two documents: RFC 8414's or OpenID Connect Discovery's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    OAuth,
    OpenId,
}

/// Servers whose documents are kept: a bound on memory (two documents of a few KiB each per
/// server). A server beyond it is rendered again when asked, not refused.
const MAX_SERVERS: usize = 2048;

/// Rendered documents per server: the same bytes for every request until what they were built
/// from changes, so they are built once rather than per request (the JSON took a third of
/// discovery's time). "What they were built from" is the store cache's entries themselves: a
/// change to one server replaces that server's entries in the store cache (`store/cache.rs`),
/// so comparing the shared pointers notices it without re-rendering every other server's
/// documents. The `Arc`s held here keep those pointers from being reused meanwhile.
pub struct DiscoveryCache {
    documents: Mutex<BoundedMap<String, [Option<Rendered>; 2]>>,
}

impl Default for DiscoveryCache {
    fn default() -> Self {
        Self {
            documents: Mutex::new(BoundedMap::new(MAX_SERVERS)),
        }
    }
}

/// What a document was rendered from.
#[derive(Clone)]
pub struct Sources {
    pub server: Arc<AuthorizationServer>,
    pub scope_names: Arc<Vec<String>>,
    pub claims: Arc<Vec<CustomClaim>>,
    pub algs: Vec<&'static str>,
}

impl Sources {
    fn same_as(&self, other: &Sources) -> bool {
        Arc::ptr_eq(&self.server, &other.server)
            && Arc::ptr_eq(&self.scope_names, &other.scope_names)
            && Arc::ptr_eq(&self.claims, &other.claims)
            && self.algs == other.algs
    }
}

pub struct Rendered {
    pub sources: Sources,
    pub body: Bytes,
}

impl DiscoveryCache {
    pub fn get(&self, kind: DocumentKind, sources: &Sources) -> Option<Bytes> {
        let documents = self.documents.lock().ok()?;
        let rendered = documents.get(&sources.server.id)?[kind as usize].as_ref()?;
        rendered
            .sources
            .same_as(sources)
            .then(|| rendered.body.clone())
    }

    pub fn put(&self, kind: DocumentKind, rendered: Rendered) {
        if let Ok(mut documents) = self.documents.lock() {
            // Only servers that exist get here (the extractor resolved them).
            let id = rendered.sources.server.id.clone();
            let mut both = documents.remove(&id).unwrap_or_default();
            both[kind as usize] = Some(rendered);
            documents.insert(id, both);
        }
    }
}
