//! TOTP (RFC 6238) over HOTP (RFC 4226): HMAC-SHA-1, 6 digits, 30-second steps from the Unix
//! epoch, and one step of clock drift either way (RFC 6238 §5.2).

use aws_lc_rs::hmac;

use crate::clock::UnixTime;
use crate::security::random_bytes;

/// RFC 6238 §4.1: X, the time step.
pub const STEP: i64 = 30;
pub const DIGITS: u32 = 6;
/// Steps of drift accepted on either side of the current one (RFC 6238 §5.2 recommends one).
pub const DRIFT: i64 = 1;
/// RFC 4226 §4 R6: at least 128 bits; 160 is the HMAC-SHA-1 output length it recommends.
pub const SECRET_LEN: usize = 20;

pub fn generate_secret() -> Vec<u8> {
    random_bytes(SECRET_LEN)
}

/// RFC 6238 §4.2: T = floor((now - T0) / X), T0 = 0.
pub fn step_at(now: UnixTime) -> i64 {
    now.div_euclid(STEP)
}

/// RFC 4226 §5.3: HOTP(K, C) with dynamic truncation, as a zero-padded decimal string.
pub fn code(secret: &[u8], step: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &step.to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

/// Is `presented` well formed: exactly six ASCII digits (spaces a phone inserts removed)?
pub fn normalize(presented: &str) -> Option<String> {
    let digits: String = presented.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some(digits)
}

/// The step `presented` is valid for, within the drift window around `now`. Every step of the
/// window is compared, in constant time, so timing does not tell which one matched. Single use
/// is the caller's (the store's `claim_totp_step`).
pub fn matching_step(secret: &[u8], presented: &str, now: UnixTime) -> Option<i64> {
    let presented = normalize(presented)?;
    let current = step_at(now);
    let mut found = None;
    for step in current - DRIFT..=current + DRIFT {
        if crate::security::constant_time_eq(&code(secret, step), &presented) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The issuer label authenticator apps show: the issuer's host, so two deployments are told
/// apart.
pub fn issuer_label(issuer: &str) -> String {
    url::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "Portcullis".to_string())
}

/// The Key Uri Format authenticator apps read from a QR code:
/// `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        enc(issuer),
        enc(account),
        super::base32::encode(secret),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (the 8-digit values, of which a 6-digit code is the
    /// last six digits: the truncation is modulo 10^digits).
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, expected8) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(code(secret, step_at(time)), expected8[2..], "at {time}");
        }
    }

    #[test]
    fn one_step_of_drift_is_accepted_and_two_are_not() {
        let secret = generate_secret();
        let now = 1_700_000_000;
        let step = step_at(now);
        for (offset, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let c = code(&secret, step + offset);
            assert_eq!(
                matching_step(&secret, &c, now),
                accepted.then_some(step + offset),
                "offset {offset}"
            );
        }
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６", "-12345"] {
            assert_eq!(matching_step(&secret, bad, now), None, "{bad}");
        }
    }
}
