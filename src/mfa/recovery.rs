//! Recovery codes: ten single-use codes shown once at enrolment (and when regenerated), for a
//! user who lost their authenticator. 16 base32 characters (80 random bits) each, so a
//! SHA-256 hash is enough to store them (as for refresh tokens): no offline guessing.

use crate::security::{random_bytes, sha256};

pub const COUNT: usize = 10;

/// Ten fresh codes, as shown: `ABCD-EFGH-IJKL-MNOP`.
pub fn generate() -> Vec<String> {
    (0..COUNT)
        .map(|_| {
            let raw = super::base32::encode(&random_bytes(10));
            raw.as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// The code as typed again: case, dashes and spaces aside. None when it cannot be one.
pub fn normalize(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 16 && super::base32::decode(&code).is_some()).then_some(code)
}

/// What is stored: the SHA-256 of the normalized code.
pub fn hash(normalized: &str) -> Vec<u8> {
    sha256(format!("portcullis recovery code\0{normalized}").as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_read_back_however_typed() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let first = &codes[0];
        assert_eq!(first.len(), 19);
        let typed = first.to_lowercase().replace('-', " ");
        assert_eq!(
            normalize(&typed).map(|n| hash(&n)),
            normalize(first).map(|n| hash(&n))
        );
        assert!(normalize("short").is_none());
        assert!(normalize("0000-0000-0000-0000").is_none());
    }
}
