//! Redirect URI matching (RFC 6749 §3.1.2.3, RFC 9700 §4.1.3): exact string comparison with a
//! registered URI. The one exception is RFC 8252 §7.3: for a registered loopback IP literal
//! (`http://127.0.0.1/…`, `http://[::1]/…`) a native app may use any port.

/// The registered URI the requested one matches, if any.
pub fn find_match<'a>(registered: &'a [String], requested: &str) -> Option<&'a str> {
    registered
        .iter()
        .find(|r| r.as_str() == requested || loopback_port_match(r, requested))
        .map(String::as_str)
}

fn loopback_port_match(registered: &str, requested: &str) -> bool {
    let (Ok(reg), Ok(req)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        return false;
    };
    let loopback_ip = |u: &url::Url| {
        matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
            || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
    };
    if reg.scheme() != "http" || req.scheme() != "http" || !loopback_ip(&reg) {
        return false;
    }
    // Everything but the port must be identical, to the byte.
    let mut req_without_port = req.clone();
    let mut reg_without_port = reg.clone();
    if req_without_port.set_port(None).is_err() || reg_without_port.set_port(None).is_err() {
        return false;
    }
    req.username().is_empty()
        && req.password().is_none()
        && req_without_port.as_str() == reg_without_port.as_str()
        && requested_is_canonical(requested, &req)
}

/// The requested string must be what the parser understood (no normalisation tricks such as
/// `127.0.0.1:80` vs default ports, percent-encoding or case).
fn requested_is_canonical(raw: &str, parsed: &url::Url) -> bool {
    parsed.as_str() == raw || parsed.as_str() == format!("{raw}/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(uris: &[&str]) -> Vec<String> {
        uris.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_match_only() {
        let r = reg(&["https://app.example.com/cb"]);
        assert!(find_match(&r, "https://app.example.com/cb").is_some());
        for bad in [
            "https://app.example.com/cb/",
            "https://app.example.com/cb?x=1",
            "https://app.example.com/cb#x",
            "https://APP.example.com/cb",
            "https://app.example.com:443/cb",
            "http://app.example.com/cb",
            "https://app.example.com/c%62",
            "https://evil@app.example.com/cb",
            "https://app.example.com.evil.com/cb",
        ] {
            assert!(find_match(&r, bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn loopback_any_port() {
        let r = reg(&["http://127.0.0.1/callback", "http://[::1]/cb"]);
        assert!(find_match(&r, "http://127.0.0.1:51234/callback").is_some());
        assert!(find_match(&r, "http://[::1]:8080/cb").is_some());
        assert!(find_match(&r, "http://127.0.0.1:51234/other").is_none());
        assert!(find_match(&r, "http://127.0.0.1:51234/callback?x").is_none());
        assert!(find_match(&r, "http://u@127.0.0.1:51234/callback").is_none());
        // `localhost` is not a loopback IP literal (RFC 8252 §8.3).
        let r = reg(&["http://localhost/cb"]);
        assert!(find_match(&r, "http://localhost:9999/cb").is_none());
    }
}
