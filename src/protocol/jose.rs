//! JWTs that clients sign with their own keys: `private_key_jwt` assertions (RFC 7523), DPoP
//! proofs (RFC 9449) and request objects (RFC 9101). Only asymmetric algorithms, each with the
//! key type it belongs to, and never the algorithm a token merely claims (RFC 8725 §3.1).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The algorithms accepted from clients: RFC 7518 RS256/PS256/ES256 and RFC 8037 EdDSA
/// (Ed25519). `none` and the HMAC family are never accepted: an HMAC "key" taken from a public
/// JWK is the classic algorithm-confusion attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAlg {
    Rs256,
    Ps256,
    Es256,
    EdDsa,
}

impl ClientAlg {
    pub const ALL: [ClientAlg; 4] = [Self::Rs256, Self::Ps256, Self::Es256, Self::EdDsa];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == value)
    }

    /// Every name, for discovery (`*_signing_alg_values_supported`).
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|a| a.as_str()).collect()
    }

    fn jsonwebtoken(self) -> Algorithm {
        match self {
            Self::Rs256 => Algorithm::RS256,
            Self::Ps256 => Algorithm::PS256,
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }

    /// Does `jwk` belong to this algorithm: an RSA key for RS256/PS256, a P-256 key for ES256,
    /// an Ed25519 key for EdDSA; and, when the JWK names an algorithm or a use, this one and
    /// `sig` (RFC 7517 §4.2, §4.4).
    pub fn fits(self, jwk: &Jwk) -> bool {
        let kind_fits = match (&jwk.algorithm, self) {
            (AlgorithmParameters::RSA(_), Self::Rs256 | Self::Ps256) => true,
            (AlgorithmParameters::EllipticCurve(ec), Self::Es256) => {
                ec.curve == EllipticCurve::P256
            }
            (AlgorithmParameters::OctetKeyPair(okp), Self::EdDsa) => {
                okp.curve == EllipticCurve::Ed25519
            }
            _ => false,
        };
        let alg_fits = jwk
            .common
            .key_algorithm
            .is_none_or(|named| format!("{named:?}").eq_ignore_ascii_case(self.as_str()));
        let use_fits = jwk
            .common
            .public_key_use
            .as_ref()
            .is_none_or(|u| *u == PublicKeyUse::Signature);
        kind_fits && alg_fits && use_fits
    }
}

/// A compact JWS taken apart, before its signature is checked: the protected header as JSON,
/// its algorithm (one we accept), and the unverified claims.
///
/// Parsed once: the signature is then checked over the parts as they came (`verify`), not by
/// decoding the token a second time (docs/performance.md, issue 21).
#[derive(Debug)]
pub struct Jws<'a> {
    pub header: Map<String, Value>,
    pub alg: ClientAlg,
    pub claims: Map<String, Value>,
    /// What was signed: the encoded header and payload with the dot between them.
    signing_input: &'a str,
    /// The encoded signature.
    signature: &'a str,
}

/// Header parameters of RFC 7515 §4.1 that must be strings when present.
const STRING_HEADERS: [&str; 7] = ["typ", "cty", "kid", "jku", "x5u", "x5t", "x5t#S256"];

impl<'a> Jws<'a> {
    /// Split and decode `token`; Err(reason) for anything but a compact JWS with an
    /// accepted algorithm and no critical extension. A header or claims set naming a member
    /// twice is refused (RFC 7515 §5.2, RFC 7519 §4: which one counts would be up to the
    /// parser), as is a registered header parameter of the wrong type.
    pub fn parse(token: &'a str) -> Result<Self, &'static str> {
        let (signing_input, signature) = token
            .rsplit_once('.')
            .ok_or("not a compact JWS (three parts)")?;
        let (header, payload) = signing_input
            .split_once('.')
            .filter(|(_, payload)| !payload.contains('.'))
            .ok_or("not a compact JWS (three parts)")?;
        let header = decode_object(header).ok_or("malformed JWS header")?;
        let well_typed = STRING_HEADERS
            .iter()
            .all(|name| header.get(*name).is_none_or(Value::is_string))
            && header.get("jwk").is_none_or(Value::is_object)
            && header.get("x5c").is_none_or(|chain| {
                chain
                    .as_array()
                    .is_some_and(|certs| certs.iter().all(Value::is_string))
            });
        if !well_typed {
            return Err("malformed JWS header (a parameter of the wrong type)");
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or("no alg in the JWS header")?;
        let alg = ClientAlg::parse(alg)
            .ok_or("unsupported alg: RS256, PS256, ES256 or EdDSA only (never none or HMAC)")?;
        // RFC 7515 §4.1.11: we understand no critical extension.
        if header.contains_key("crit") {
            return Err("unsupported critical header");
        }
        let claims = decode_object(payload).ok_or("malformed JWT claims")?;
        Ok(Self {
            header,
            alg,
            claims,
            signing_input,
            signature,
        })
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    pub fn claim_i64(&self, name: &str) -> Option<i64> {
        self.claims.get(name).and_then(Value::as_i64)
    }

    /// Check the signature with `jwk`, which must fit the header's algorithm.
    pub fn verify(&self, jwk: &Jwk) -> Result<(), &'static str> {
        if !self.alg.fits(jwk) {
            return Err("the key does not fit the JWS algorithm");
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|_| "unusable key")?;
        // The claims are checked by the caller, against the injected clock.
        match jsonwebtoken::crypto::verify(
            self.signature,
            self.signing_input.as_bytes(),
            &key,
            self.alg.jsonwebtoken(),
        ) {
            Ok(true) => Ok(()),
            _ => Err("invalid signature"),
        }
    }

    /// `aud` as a string or an array of strings (RFC 7519 §4.1.3).
    pub fn audiences(&self) -> Vec<&str> {
        match self.claims.get("aud") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// The claims of a compact JWS without checking anything: only to learn which client an
/// assertion claims to come from, before its keys are looked up.
pub fn peek_claims(token: &str) -> Option<Map<String, Value>> {
    decode_object(token.split('.').nth(1)?)
}

/// A base64url-encoded JSON object; None when it is not one, or names a member twice.
fn decode_object(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice::<UniqueObject>(&bytes)
        .ok()
        .map(|object| object.0)
}

/// A JSON object whose members each appear once (serde_json's own map keeps the last of
/// duplicates silently).
struct UniqueObject(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UniqueObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<UniqueObject, A::Error> {
                let mut map = Map::new();
                while let Some((name, value)) = access.next_entry::<String, Value>()? {
                    if map.contains_key(&name) {
                        return Err(serde::de::Error::custom("a member is named twice"));
                    }
                    map.insert(name, value);
                }
                Ok(UniqueObject(map))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// A public JWK as a client presented it (a DPoP proof's `jwk` header): no private or
/// symmetric member (RFC 9449 §4.3 step 7), and of a kind we accept.
pub fn public_jwk(value: &Value) -> Result<Jwk, &'static str> {
    let members = value.as_object().ok_or("jwk is not a JSON object")?;
    const PRIVATE: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];
    if PRIVATE.iter().any(|m| members.contains_key(*m)) {
        return Err("jwk must be a public key (it holds private or symmetric key material)");
    }
    // From the borrowed value: no copy of the header's JSON per proof.
    Jwk::deserialize(value).map_err(|_| "jwk is not a supported public key")
}

/// RFC 7638 SHA-256 thumbprint of a key that fits one of our algorithms (jsonwebtoken's own
/// panics on curves of the wrong key type, which `fits` has excluded).
pub fn thumbprint(jwk: &Jwk) -> Option<String> {
    ClientAlg::ALL
        .into_iter()
        .any(|alg| alg.fits(jwk))
        .then(|| jwk.thumbprint(ThumbprintHash::SHA256))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &str) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    #[test]
    fn alg_none_and_hmac_are_refused() {
        for alg in ["none", "HS256", "RS384", ""] {
            let token = format!("{}.{}.", b64(&format!(r#"{{"alg":"{alg}"}}"#)), b64("{}"));
            assert!(Jws::parse(&token).is_err(), "{alg}");
        }
    }

    #[test]
    fn members_named_twice_or_mistyped_headers_are_refused() {
        let token = |header: &str, claims: &str| format!("{}.{}.c2ln", b64(header), b64(claims));
        assert!(Jws::parse(&token(r#"{"alg":"ES256"}"#, r#"{"iss":"a"}"#)).is_ok());
        for (header, claims) in [
            (r#"{"alg":"ES256","alg":"ES256"}"#, r#"{}"#),
            (r#"{"alg":"ES256","kid":"a","kid":"b"}"#, r#"{}"#),
            (r#"{"alg":"ES256"}"#, r#"{"iss":"a","iss":"b"}"#),
            (r#"{"alg":"ES256"}"#, r#"{"exp":1,"exp":9999999999}"#),
            (r#"{"alg":"ES256","kid":7}"#, r#"{}"#),
            (r#"{"alg":"ES256","typ":["JWT"]}"#, r#"{}"#),
            (r#"{"alg":"ES256","jwk":"key"}"#, r#"{}"#),
            (r#"{"alg":"ES256","x5c":[1]}"#, r#"{}"#),
            (r#"{"alg":"ES256"}"#, r#"[]"#),
        ] {
            assert!(
                Jws::parse(&token(header, claims)).is_err(),
                "{header} {claims}"
            );
        }
        for broken in ["a.b", "a.b.c.d", "", "..", "e30.e30"] {
            assert!(Jws::parse(broken).is_err(), "{broken}");
        }
    }

    #[test]
    fn private_jwks_are_refused() {
        let jwk = serde_json::json!({"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"});
        assert!(public_jwk(&jwk).is_err());
        let oct = serde_json::json!({"kty":"oct","k":"c2VjcmV0"});
        assert!(public_jwk(&oct).is_err());
    }
}
