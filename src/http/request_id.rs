//! Every request gets an id, echoed in the response (`http.request_id_header`) and carried by
//! the request's log span together with the client's IP. A trusted proxy's id is kept, so one
//! id follows a request through the whole chain; anyone else's is replaced, so a client cannot
//! forge or flood the logs' correlation ids.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::client_ip::ClientIp;
use crate::config::TrustedProxies;
use crate::security::unique_id;

/// Longest id accepted from a proxy.
pub const MAX_LEN: usize = 128;
/// Length of a generated id (16 of [A-Za-z0-9]: about 95 bits).
const GENERATED_LEN: usize = 16;

/// The request's id, in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// What the middleware needs: built once in the router.
#[derive(Clone)]
pub struct Tagging {
    pub header: HeaderName,
    pub proxies: Arc<TrustedProxies>,
}

impl RequestId {
    /// The incoming id when a trusted proxy sent a sane one, otherwise a fresh one.
    pub fn choose(incoming: Option<&HeaderValue>, from_trusted_proxy: bool) -> Self {
        match incoming {
            Some(value) if from_trusted_proxy && is_sane(value.as_bytes()) => {
                // Visible ASCII, checked just above.
                Self(String::from_utf8_lossy(value.as_bytes()).into_owned())
            }
            _ => Self(unique_id(GENERATED_LEN)),
        }
    }
}

/// Bounded and printable: no control characters, spaces or non-ASCII in log lines.
fn is_sane(value: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&value.len()) && value.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// Work out the client IP and the request id, put both in the request's extensions (the
/// trace span and `ClientIp` read them there), and echo the id in the response.
pub async fn tag(State(tagging): State<Tagging>, mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let (client_ip, trusted) = match peer {
        Some(peer) => (
            tagging.proxies.client_ip(peer, request.headers()),
            tagging.proxies.contains(peer),
        ),
        None => (std::net::Ipv4Addr::UNSPECIFIED.into(), false),
    };
    let id = RequestId::choose(request.headers().get(&tagging.header), trusted);
    let echoed = HeaderValue::from_str(&id.0).ok();
    request.extensions_mut().insert(ClientIp(client_ip));
    request.extensions_mut().insert(id);
    let mut response = next.run(request).await;
    if let Some(value) = echoed {
        response.headers_mut().insert(tagging.header, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_sane_id_is_kept() {
        let value = HeaderValue::from_static("req-42.abc_DEF:1");
        assert_eq!(RequestId::choose(Some(&value), true).0, "req-42.abc_DEF:1");
    }

    #[test]
    fn an_untrusted_or_insane_id_is_replaced() {
        let long = "a".repeat(MAX_LEN + 1);
        let max = "a".repeat(MAX_LEN);
        assert_eq!(
            RequestId::choose(Some(&HeaderValue::from_str(&max).unwrap()), true).0,
            max
        );
        for (value, trusted) in [
            (HeaderValue::from_static("good-id"), false),
            (HeaderValue::from_str(&long).unwrap(), true),
            (HeaderValue::from_static("has space"), true),
            (HeaderValue::from_static(""), true),
            (HeaderValue::from_bytes(b"tab\there").unwrap(), true),
            (HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(), true),
        ] {
            let id = RequestId::choose(Some(&value), trusted).0;
            assert_ne!(id.as_bytes(), value.as_bytes());
            assert_eq!(id.len(), GENERATED_LEN);
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        }
        let a = RequestId::choose(None, true);
        let b = RequestId::choose(None, true);
        assert_ne!(a, b, "generated ids are random");
    }
}
