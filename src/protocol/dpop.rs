//! DPoP proofs (RFC 9449 §4): a JWT the client signs with a key of its own, naming the method
//! and URL of the request, fresh, and (at a resource) the access token it goes with. Checked
//! here as values; the nonce and the single use of its `jti` need the store (`crate::dpop`).

use axum::http::HeaderMap;

use crate::clock::UnixTime;
use crate::protocol::jose::{public_jwk, thumbprint, Jws};
use crate::security::{base64url, constant_time_eq, sha256};

/// The request header carrying the proof (§4.1).
pub const DPOP_HEADER: &str = "dpop";

/// The longest `jti` remembered.
const MAX_JTI: usize = 256;

/// What a valid proof tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// RFC 7638 thumbprint of the proof's key: what tokens are bound to (`cnf.jkt`, §6.1).
    pub jkt: String,
    pub jti: String,
    pub iat: UnixTime,
    /// The server nonce it carries (§8).
    pub nonce: Option<String>,
}

/// The request a proof must be for.
pub struct Expected<'a> {
    /// `htm`: the HTTP method.
    pub method: &'a str,
    /// `htu`: the URL, without query and fragment.
    pub url: &'a str,
    /// The access token it comes with (`ath`, §4.3 step 11), at a resource.
    pub access_token: Option<&'a str>,
    pub now: UnixTime,
    /// How old (`iat`) a proof may be.
    pub max_age: i64,
    /// How far ahead of our clock its `iat` may be.
    pub max_skew: i64,
}

/// The one `DPoP` header of the request, if any. Err when there are several (§4.3 step 1).
pub fn proof_header(headers: &HeaderMap) -> Result<Option<&str>, &'static str> {
    let mut values = headers.get_all(DPOP_HEADER).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("send one DPoP header");
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| "the DPoP header is not a JWT")
}

/// RFC 9449 §4.3: check a proof against the request it came with. Err(reason) describes the
/// first rule it breaks.
pub fn check(proof: &str, expected: &Expected<'_>) -> Result<Proof, &'static str> {
    let jws = Jws::parse(proof)?;
    // Step 4: `typ` is dpop+jwt.
    if jws.header_str("typ") != Some("dpop+jwt") {
        return Err("typ must be dpop+jwt");
    }
    // Steps 5-7: an asymmetric algorithm (Jws::parse), a public key that fits it, and a
    // signature by that key.
    let jwk = public_jwk(jws.header.get("jwk").ok_or("the proof has no jwk header")?)?;
    jws.verify(&jwk)?;
    let jkt = thumbprint(&jwk).ok_or("unsupported jwk")?;
    // Step 8: jti, htm, htu, iat.
    let jti = match jws.claim_str("jti") {
        Some(jti) if !jti.is_empty() && jti.len() <= MAX_JTI => jti.to_string(),
        _ => return Err("jti must be 1 to 256 characters"),
    };
    if jws.claim_str("htm") != Some(expected.method) {
        return Err("htm does not match the request method");
    }
    match jws.claim_str("htu") {
        Some(htu) if same_url(htu, expected.url) => {}
        _ => return Err("htu does not match the request URL"),
    }
    let iat = jws.claim_i64("iat").ok_or("iat is missing")?;
    // Step 11: within an acceptable window.
    if iat > expected.now + expected.max_skew {
        return Err("iat is in the future");
    }
    if iat < expected.now - expected.max_age {
        return Err("the proof is too old (iat)");
    }
    // Step 12 (at a resource): bound to the access token it comes with.
    if let Some(token) = expected.access_token {
        let ath = jws.claim_str("ath").ok_or("ath is missing")?;
        if !constant_time_eq(ath, &access_token_hash(token)) {
            return Err("ath does not match the access token");
        }
    }
    Ok(Proof {
        jkt,
        jti,
        iat,
        nonce: jws.claim_str("nonce").map(str::to_string),
    })
}

/// `ath`: base64url of the SHA-256 of the access token (§4.2).
pub fn access_token_hash(token: &str) -> String {
    base64url(&sha256(token.as_bytes()))
}

/// §4.3 step 9: the URLs match once normalized (RFC 3986 §6.2.2-6.2.3: scheme and host case,
/// default port), ignoring query and fragment.
fn same_url(presented: &str, expected: &str) -> bool {
    // The common case, without parsing: the client copied our URL (`expected` is always a
    // valid URL: ours).
    if presented == expected {
        return true;
    }
    let normalize = |u: &str| {
        url::Url::parse(u).ok().map(|mut u| {
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        })
    };
    match (normalize(presented), normalize(expected)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::same_url;

    #[test]
    fn htu_ignores_query_case_and_default_port() {
        assert!(same_url(
            "HTTPS://Example.com:443/token?x=1",
            "https://example.com/token"
        ));
        assert!(!same_url(
            "https://example.com/other",
            "https://example.com/token"
        ));
        assert!(!same_url("not a url", "https://example.com/token"));
    }
}
