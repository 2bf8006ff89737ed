//! The client's IP address: the TCP peer, unless the peer is a trusted proxy
//! (`http.trusted_proxies`), in which case `X-Forwarded-For` is walked from the right, past
//! the trusted proxies, to the first address none of them vouches for. The leftmost entries
//! are whatever the client chose to send, so they are never believed on their own.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::TrustedProxies;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

/// The client's address, as the rate limiter and the logs see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

/// Walking `X-Forwarded-For` is this module's job; the list itself is configuration.
impl TrustedProxies {
    /// The client's address for a request that came from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            if headers.contains_key("x-forwarded-for") {
                warn_once(&WARNED_UNTRUSTED_FORWARDING, client);
            }
            return client;
        }
        // Several X-Forwarded-For headers are one list, in order (RFC 9110 §5.3).
        let entries = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect::<Vec<_>>();
        for entry in entries.into_iter().rev() {
            // Garbage from the right means a trusted proxy passed on what it could not parse:
            // nothing further left can be believed, so the last address we trust stands.
            let Some(ip) = parse_forwarded(entry) else {
                break;
            };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// Set once the warning about `X-Forwarded-For` from an untrusted peer has been logged. A
/// process-wide flag rather than state in `AppState`, and safe as one: it only silences a
/// repeated log line and decides nothing about any request; each replica (process) warns once
/// in its own log, which is what an operator reading that replica's log needs; and a lost race
/// between two requests costs at most one extra line, never a missed warning.
static WARNED_UNTRUSTED_FORWARDING: AtomicBool = AtomicBool::new(false);

/// Behind a proxy that is not in `http.trusted_proxies`, every client has the proxy's address:
/// the sign-in limits then count the whole world as one client. Say so, once (not per request:
/// any client may send the header, and the log must not be theirs to fill). True if it warned.
fn warn_once(warned: &AtomicBool, peer: IpAddr) -> bool {
    if warned.swap(true, Ordering::Relaxed) {
        return false;
    }
    tracing::warn!(
        %peer,
        "a request carries X-Forwarded-For from a peer that is not a trusted proxy: the header \
         is ignored and the peer is taken as the client; if this server runs behind a proxy, \
         add it to http.trusted_proxies (PORTCULLIS_HTTP_TRUSTED_PROXIES), or the rate limits \
         count every client as that proxy (logged once per process)"
    );
    true
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // The request-id middleware has usually worked it out already.
        if let Some(ip) = parts.extensions.get::<ClientIp>() {
            return Ok(*ip);
        }
        Ok(ClientIp(
            match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
                Some(ConnectInfo(peer)) => state
                    .config
                    .http
                    .trusted_proxies
                    .client_ip(peer.ip(), &parts.headers),
                // Only a router driven without a socket (never `serve`) lacks the peer.
                None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("valid")
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let headers = xff(&["203.0.113.9"]);
        assert_eq!(
            trusted.client_ip(ip("198.51.100.7"), &headers),
            ip("198.51.100.7")
        );
        assert_eq!(
            proxies(&[]).client_ip(ip("10.0.0.1"), &headers),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn spoofed_leftmost_entries_are_ignored() {
        let trusted = proxies(&["10.0.0.0/8"]);
        // The client sent "1.1.1.1, 2.2.2.2"; the proxy appended the real peer, 203.0.113.9.
        let headers = xff(&["1.1.1.1, 2.2.2.2, 203.0.113.9"]);
        assert_eq!(
            trusted.client_ip(ip("10.1.2.3"), &headers),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_chain_of_trusted_proxies_is_walked() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.1"]);
        let headers = xff(&["6.6.6.6, 203.0.113.9, 192.0.2.1", "10.0.0.5"]);
        assert_eq!(
            trusted.client_ip(ip("10.0.0.9"), &headers),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn an_all_trusted_chain_yields_its_leftmost_address() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let headers = xff(&["10.0.0.3, 10.0.0.2"]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &headers), ip("10.0.0.3"));
        // No header at all: the trusted peer itself.
        assert_eq!(
            trusted.client_ip(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_trusted_address() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let headers = xff(&["203.0.113.9, unknown, 10.0.0.2"]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &headers), ip("10.0.0.2"));
        let headers = xff(&["203.0.113.9, "]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &headers), ip("10.0.0.1"));
        // Garbage left of the client is never reached.
        let headers = xff(&["<script>, 203.0.113.9"]);
        assert_eq!(
            trusted.client_ip(ip("10.0.0.1"), &headers),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn ipv6_and_ports_are_understood() {
        let trusted = proxies(&["fd00::/8", "127.0.0.1"]);
        let headers = xff(&["2001:db8::1, fd00::2"]);
        assert_eq!(
            trusted.client_ip(ip("fd00::1"), &headers),
            ip("2001:db8::1")
        );
        let headers = xff(&["[2001:db8::7]:4711"]);
        assert_eq!(
            trusted.client_ip(ip("fd00::1"), &headers),
            ip("2001:db8::7")
        );
        let headers = xff(&["198.51.100.1:80"]);
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &headers),
            ip("198.51.100.1")
        );
        // An IPv4 peer on a dual-stack socket arrives IPv4-mapped; it is still the trusted proxy.
        let headers = xff(&["203.0.113.9"]);
        assert_eq!(
            trusted.client_ip(ip("::ffff:127.0.0.1"), &headers),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn forwarding_from_an_untrusted_peer_is_warned_about_once() {
        let warned = AtomicBool::new(false);
        assert!(warn_once(&warned, ip("198.51.100.7")));
        assert!(!warn_once(&warned, ip("198.51.100.7")));
        assert!(!warn_once(&warned, ip("203.0.113.1")));
    }

    #[test]
    fn entries_parse_as_blocks_or_addresses() {
        assert!(proxies(&["192.0.2.1"]).contains(ip("192.0.2.1")));
        assert!(!proxies(&["192.0.2.1"]).contains(ip("192.0.2.2")));
        // Host bits are dropped: 10.1.2.3/8 means 10.0.0.0/8.
        assert!(proxies(&["10.1.2.3/8"]).contains(ip("10.200.0.1")));
        for bad in ["10.0.0.0/33", "example.com", "", "10.0.0.0/8/8"] {
            assert!(TrustedProxies::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
