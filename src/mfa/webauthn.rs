//! Passkeys: the WebAuthn Level 2 relying-party checks (W3C WebAuthn §7.1 registration, §7.2
//! authentication) without HTTP. CBOR (RFC 8949) and COSE keys (RFC 9053) are read with
//! `ciborium`; signatures are verified with aws-lc-rs. Attestation is not verified: we ask for
//! `attestation: "none"` (§5.4.7) and ignore any statement a "packed" or other authenticator
//! sends anyway (§8.7 "none" semantics), as most relying parties do: we trust the key the
//! user's browser registered for the signed-in user, not the make of the authenticator.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use ciborium::value::Value;
use serde::Deserialize;

use crate::security::{constant_time_eq, sha256};

/// COSE algorithms (RFC 9053 §2.1, §2.2, RFC 8812 §2): ES256, EdDSA (Ed25519), RS256.
pub const ES256: i64 = -7;
pub const EDDSA: i64 = -8;
pub const RS256: i64 = -257;
/// In the order of preference offered to the authenticator (`pubKeyCredParams`).
pub const ALGORITHMS: [i64; 3] = [ES256, EDDSA, RS256];

/// The largest credential response (the JSON the page posts) accepted. Real ones are below
/// 2 KiB (an RS256 key is the largest part); anything bigger is refused before it is parsed.
pub const MAX_RESPONSE_LEN: usize = 16 * 1024;
/// §5.8.3 (Level 3): a credential id is at most 1023 bytes.
pub const MAX_CREDENTIAL_ID_LEN: usize = 1023;

// §6.1 authenticator data flags.
const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_BE: u8 = 0x08;
const FLAG_AT: u8 = 0x40;

/// Why a ceremony was refused: a short reason for the audit log (never shown in detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(pub &'static str);

/// The relying party: its id is the issuer's host (§5.1.2: a registrable domain suffix of the
/// origin's effective domain, here the domain itself), its origin exactly the issuer's origin.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    pub id: String,
    pub origin: String,
}

impl RelyingParty {
    pub fn from_issuer(issuer: &str) -> Option<Self> {
        let url = url::Url::parse(issuer).ok()?;
        let id = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
        Some(Self {
            id,
            origin: url.origin().ascii_serialization(),
        })
    }
}

/// A credential as the page posts it (`PublicKeyCredential`, binary fields base64url).
#[derive(Debug, Deserialize)]
pub struct PostedCredential {
    #[serde(rename = "rawId")]
    pub raw_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub response: PostedResponse,
}

#[derive(Debug, Deserialize)]
pub struct PostedResponse {
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    #[serde(rename = "attestationObject")]
    pub attestation_object: Option<String>,
    #[serde(rename = "authenticatorData")]
    pub authenticator_data: Option<String>,
    pub signature: Option<String>,
    #[serde(rename = "userHandle")]
    pub user_handle: Option<String>,
    #[serde(default)]
    pub transports: Vec<String>,
}

/// A posted credential, decoded: refused when too big, not JSON, or not base64url.
pub struct Decoded {
    pub credential_id: Vec<u8>,
    pub client_data_json: Vec<u8>,
    pub attestation_object: Option<Vec<u8>>,
    pub authenticator_data: Option<Vec<u8>>,
    pub signature: Option<Vec<u8>>,
    pub user_handle: Option<Vec<u8>>,
    pub transports: Vec<String>,
}

pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()
}

pub fn decode(posted: &str) -> Result<Decoded, Refused> {
    if posted.len() > MAX_RESPONSE_LEN {
        return Err(Refused("oversized"));
    }
    let c: PostedCredential = serde_json::from_str(posted).map_err(|_| Refused("malformed"))?;
    if c.kind != "public-key" {
        return Err(Refused("malformed"));
    }
    let opt = |v: &Option<String>| match v {
        None => Ok(None),
        Some(s) => b64url_decode(s).map(Some).ok_or(Refused("malformed")),
    };
    let credential_id = b64url_decode(&c.raw_id).ok_or(Refused("malformed"))?;
    if credential_id.is_empty() || credential_id.len() > MAX_CREDENTIAL_ID_LEN {
        return Err(Refused("malformed"));
    }
    Ok(Decoded {
        credential_id,
        client_data_json: b64url_decode(&c.response.client_data_json)
            .ok_or(Refused("malformed"))?,
        attestation_object: opt(&c.response.attestation_object)?,
        authenticator_data: opt(&c.response.authenticator_data)?,
        signature: opt(&c.response.signature)?,
        user_handle: opt(&c.response.user_handle)?,
        transports: c
            .response
            .transports
            .into_iter()
            .filter(|t| t.len() <= 16 && t.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
            .take(8)
            .collect(),
    })
}

#[derive(Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: bool,
}

/// The challenge the client data carries (to find the stored one), before anything is checked.
pub fn challenge_of(client_data_json: &[u8]) -> Result<String, Refused> {
    let cd: ClientData =
        serde_json::from_slice(client_data_json).map_err(|_| Refused("malformed"))?;
    Ok(cd.challenge)
}

/// §7.1 steps 7–10 / §7.2 steps 11–14: type, challenge and origin, exactly.
fn check_client_data(
    client_data_json: &[u8],
    kind: &str,
    challenge: &str,
    rp: &RelyingParty,
) -> Result<(), Refused> {
    let cd: ClientData =
        serde_json::from_slice(client_data_json).map_err(|_| Refused("malformed"))?;
    if cd.kind != kind {
        return Err(Refused("wrong_type"));
    }
    if !constant_time_eq(&cd.challenge, challenge) {
        return Err(Refused("wrong_challenge"));
    }
    if cd.origin != rp.origin || cd.cross_origin {
        return Err(Refused("wrong_origin"));
    }
    Ok(())
}

/// §6.1 authenticator data.
struct AuthData {
    rp_id_hash: [u8; 32],
    flags: u8,
    sign_count: u32,
    /// §6.5.1 attested credential data: credential id and COSE public key bytes.
    attested: Option<(Vec<u8>, Vec<u8>)>,
}

fn parse_auth_data(b: &[u8]) -> Result<AuthData, Refused> {
    let bad = Refused("malformed");
    if b.len() < 37 {
        return Err(bad);
    }
    let mut rp_id_hash = [0u8; 32];
    rp_id_hash.copy_from_slice(&b[..32]);
    let flags = b[32];
    let sign_count = u32::from_be_bytes([b[33], b[34], b[35], b[36]]);
    let attested = if flags & FLAG_AT != 0 {
        // 16 bytes AAGUID, 2 bytes length, the id, then one CBOR value: the key.
        let rest = b.get(37 + 16..).ok_or(bad)?;
        let len = u16::from_be_bytes([*rest.first().ok_or(bad)?, *rest.get(1).ok_or(bad)?]);
        let len = usize::from(len);
        if len == 0 || len > MAX_CREDENTIAL_ID_LEN {
            return Err(bad);
        }
        let id = rest.get(2..2 + len).ok_or(bad)?.to_vec();
        let key_and_more = &rest[2 + len..];
        let mut cursor = std::io::Cursor::new(key_and_more);
        let _: Value = ciborium::de::from_reader(&mut cursor).map_err(|_| bad)?;
        let used = usize::try_from(cursor.position()).map_err(|_| bad)?;
        Some((id, key_and_more[..used].to_vec()))
    } else {
        None
    };
    Ok(AuthData {
        rp_id_hash,
        flags,
        sign_count,
        attested,
    })
}

/// A public key from its COSE_Key form (RFC 9052 §7), of one of `ALGORITHMS`.
enum PublicKey {
    P256(Vec<u8>),
    Ed25519(Vec<u8>),
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

fn cose_key(bytes: &[u8]) -> Result<PublicKey, Refused> {
    let bad = Refused("unsupported_key");
    let value: Value = ciborium::de::from_reader(bytes).map_err(|_| bad)?;
    let Value::Map(entries) = value else {
        return Err(bad);
    };
    let get = |label: i128| {
        entries.iter().find_map(|(k, v)| match k {
            Value::Integer(i) if i128::from(*i) == label => Some(v),
            _ => None,
        })
    };
    let int = |label: i128| match get(label) {
        Some(Value::Integer(i)) => Some(i128::from(*i)),
        _ => None,
    };
    let bytes_of = |label: i128| match get(label) {
        Some(Value::Bytes(b)) => Some(b.clone()),
        _ => None,
    };
    // 1: kty, 3: alg, -1: crv (EC2/OKP) or n (RSA), -2: x or e, -3: y.
    match (int(1), int(3)) {
        (Some(2), Some(-7)) => {
            let (x, y) = (bytes_of(-2).ok_or(bad)?, bytes_of(-3).ok_or(bad)?);
            if int(-1) != Some(1) || x.len() != 32 || y.len() != 32 {
                return Err(bad);
            }
            let mut point = vec![0x04];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Ok(PublicKey::P256(point))
        }
        (Some(1), Some(-8)) => {
            let x = bytes_of(-2).ok_or(bad)?;
            if int(-1) != Some(6) || x.len() != 32 {
                return Err(bad);
            }
            Ok(PublicKey::Ed25519(x))
        }
        (Some(3), Some(-257)) => {
            let (n, e) = (bytes_of(-1).ok_or(bad)?, bytes_of(-2).ok_or(bad)?);
            if n.len() < 256 || n.len() > 1024 || e.is_empty() || e.len() > 8 {
                return Err(bad);
            }
            Ok(PublicKey::Rsa { n, e })
        }
        _ => Err(bad),
    }
}

fn verify(key: &PublicKey, message: &[u8], sig: &[u8]) -> bool {
    match key {
        PublicKey::P256(point) => UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, point)
            .verify(message, sig)
            .is_ok(),
        PublicKey::Ed25519(x) => UnparsedPublicKey::new(&signature::ED25519, x)
            .verify(message, sig)
            .is_ok(),
        PublicKey::Rsa { n, e } => RsaPublicKeyComponents { n, e }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
            .is_ok(),
    }
}

fn check_rp_and_presence(auth: &AuthData, rp: &RelyingParty) -> Result<(), Refused> {
    if auth.rp_id_hash != sha256(rp.id.as_bytes()) {
        return Err(Refused("wrong_rp_id"));
    }
    if auth.flags & FLAG_UP == 0 {
        return Err(Refused("user_not_present"));
    }
    Ok(())
}

/// A credential just registered (§7.1), to be stored for the signed-in user.
#[derive(Debug)]
pub struct Registered {
    pub credential_id: Vec<u8>,
    pub public_key: Vec<u8>,
    pub sign_count: u32,
    pub user_verified: bool,
    pub backup_eligible: bool,
}

/// §7.1: the attestation object of `navigator.credentials.create()`, for `challenge`.
pub fn register(
    rp: &RelyingParty,
    challenge: &str,
    credential: &Decoded,
) -> Result<Registered, Refused> {
    check_client_data(
        &credential.client_data_json,
        "webauthn.create",
        challenge,
        rp,
    )?;
    let object = credential
        .attestation_object
        .as_deref()
        .ok_or(Refused("malformed"))?;
    let value: Value = ciborium::de::from_reader(object).map_err(|_| Refused("malformed"))?;
    let Value::Map(entries) = value else {
        return Err(Refused("malformed"));
    };
    let auth_data = entries
        .iter()
        .find_map(|(k, v)| match (k, v) {
            (Value::Text(k), Value::Bytes(b)) if k == "authData" => Some(b.as_slice()),
            _ => None,
        })
        .ok_or(Refused("malformed"))?;
    let auth = parse_auth_data(auth_data)?;
    check_rp_and_presence(&auth, rp)?;
    let (credential_id, public_key) = auth.attested.ok_or(Refused("malformed"))?;
    if credential_id != credential.credential_id {
        return Err(Refused("malformed"));
    }
    cose_key(&public_key)?;
    Ok(Registered {
        credential_id,
        public_key,
        sign_count: auth.sign_count,
        user_verified: auth.flags & FLAG_UV != 0,
        backup_eligible: auth.flags & FLAG_BE != 0,
    })
}

/// An assertion that proved right (§7.2).
#[derive(Debug)]
pub struct Asserted {
    pub sign_count: u32,
    pub user_verified: bool,
    pub backup_eligible: bool,
}

/// §7.2: the assertion of `navigator.credentials.get()` for `challenge`, by the stored key,
/// whose signature counter was `stored_count`. §6.1.1: a counter that does not grow (when
/// either is non-zero) means a cloned authenticator: refused.
pub fn authenticate(
    rp: &RelyingParty,
    challenge: &str,
    public_key: &[u8],
    stored_count: i64,
    credential: &Decoded,
) -> Result<Asserted, Refused> {
    check_client_data(&credential.client_data_json, "webauthn.get", challenge, rp)?;
    let auth_bytes = credential
        .authenticator_data
        .as_deref()
        .ok_or(Refused("malformed"))?;
    let sig = credential
        .signature
        .as_deref()
        .ok_or(Refused("malformed"))?;
    let auth = parse_auth_data(auth_bytes)?;
    check_rp_and_presence(&auth, rp)?;
    let key = cose_key(public_key)?;
    let mut message = auth_bytes.to_vec();
    message.extend_from_slice(&sha256(&credential.client_data_json));
    if !verify(&key, &message, sig) {
        return Err(Refused("bad_signature"));
    }
    let count = i64::from(auth.sign_count);
    if (count != 0 || stored_count != 0) && count <= stored_count {
        return Err(Refused("counter_regression"));
    }
    Ok(Asserted {
        sign_count: auth.sign_count,
        user_verified: auth.flags & FLAG_UV != 0,
        backup_eligible: auth.flags & FLAG_BE != 0,
    })
}

/// The RFC 8176 values a passkey use adds: `swk` for a credential that may be synced to other
/// devices (backup eligible, §6.1), `hwk` for one bound to its authenticator; and `user` when
/// the authenticator verified the user (PIN or biometric: WebAuthn does not say which, so never
/// `pin`). Only with `user` is a passkey sign-in multi-factor by itself.
pub fn amr_values(backup_eligible: bool, user_verified: bool) -> Vec<&'static str> {
    let mut values = vec![if backup_eligible {
        super::amr::SWK
    } else {
        super::amr::HWK
    }];
    if user_verified {
        values.push(super::amr::USER);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_issuers_host_and_origin() {
        let rp = RelyingParty::from_issuer("https://Login.Example.com:8443/oauth2/x").unwrap();
        assert_eq!(rp.id, "login.example.com");
        assert_eq!(rp.origin, "https://login.example.com:8443");
    }

    #[test]
    fn oversized_and_malformed_responses_are_refused() {
        assert_eq!(
            decode(&"x".repeat(MAX_RESPONSE_LEN + 1)).err(),
            Some(Refused("oversized"))
        );
        assert_eq!(decode("{}").err(), Some(Refused("malformed")));
        assert!(parse_auth_data(&[0; 36]).is_err());
        assert!(cose_key(&[0xa0]).is_err());
        // A byte string claiming 4 GiB, a map claiming 2^32 entries, deep nesting: errors,
        // without allocating what they claim or overflowing the stack.
        assert!(cose_key(&[0x5a, 0xff, 0xff, 0xff, 0xff, 0x00]).is_err());
        assert!(cose_key(&[0xba, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
        assert!(cose_key(&[0x81; 10_000]).is_err());
        let mut auth = vec![0u8; 37 + 16];
        auth[32] = FLAG_AT | FLAG_UP;
        auth.extend_from_slice(&[0xff, 0xff]);
        assert!(
            parse_auth_data(&auth).is_err(),
            "credential id longer than the data"
        );
    }
}
