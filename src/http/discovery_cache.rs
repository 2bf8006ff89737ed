//! The discovery documents (`endpoints::discovery`), rendered once per server and kept until
//! the server's policy or its signing algorithms change.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;

/// Which of the two documents: RFC 8414's or OpenID Connect Discovery's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    OAuth,
    OpenId,
}

/// Rendered documents per server: the same bytes for every request until the server's policy
/// (the store cache's generation) or its published signing algorithms change, so they are
/// built once rather than per request (the JSON took a third of discovery's time).
#[derive(Default)]
pub struct DiscoveryCache {
    documents: Mutex<HashMap<String, [Option<Rendered>; 2]>>,
}

pub struct Rendered {
    pub policy_generation: u64,
    pub algs: Vec<&'static str>,
    pub body: Bytes,
}

impl DiscoveryCache {
    pub fn get(
        &self,
        server: &str,
        kind: DocumentKind,
        generation: u64,
        algs: &[&str],
    ) -> Option<Bytes> {
        let documents = self.documents.lock().ok()?;
        let rendered = documents.get(server)?[kind as usize].as_ref()?;
        (rendered.policy_generation == generation && rendered.algs == algs)
            .then(|| rendered.body.clone())
    }

    pub fn put(&self, server: &str, kind: DocumentKind, rendered: Rendered) {
        if let Ok(mut documents) = self.documents.lock() {
            // Only servers that exist get here (the extractor resolved them): a bounded map.
            documents.entry(server.to_string()).or_default()[kind as usize] = Some(rendered);
        }
    }
}
