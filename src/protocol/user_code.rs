//! The user code of the device authorization grant (RFC 8628 §6.1): 8 characters from 20
//! consonants (no vowels, so no words; no digits, so nothing to confuse with letters), shown
//! as `BCDF-GHJK` and accepted in any case, with or without the hyphen or spaces.

use crate::security::{random_bytes, Secret};

/// §6.1: "BCDFGHJKLMNPQRSTVWXZ", 20^8 ≈ 2^34.5 codes.
pub const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
pub const LENGTH: usize = 8;

/// A user code, normalised: 8 upper-case letters of `ALPHABET`, no separator. A secret while
/// it is pending (whoever types it approves the device's request), so `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCode(Secret);

impl std::fmt::Debug for UserCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserCode([redacted])")
    }
}

impl UserCode {
    /// A fresh code from the OS generator, each letter uniform (rejection sampling: bytes
    /// past the last whole multiple of 20 are drawn again).
    pub fn generate() -> Self {
        let mut code = String::with_capacity(LENGTH);
        while code.len() < LENGTH {
            for byte in random_bytes(LENGTH * 2) {
                if usize::from(byte) < 256 - 256 % ALPHABET.len() && code.len() < LENGTH {
                    code.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
                }
            }
        }
        Self(Secret::new(code))
    }

    /// What the user typed: case, hyphens and spaces aside. `None` when it cannot be a code.
    pub fn parse(typed: &str) -> Option<Self> {
        let code: String = typed
            .chars()
            .filter(|c| !matches!(c, '-' | ' ' | '\t'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let valid = code.len() == LENGTH && code.bytes().all(|b| ALPHABET.contains(&b));
        valid.then(|| Self(Secret::new(code)))
    }

    /// The normalised code, as hashed for storage.
    pub fn normalized(&self) -> &str {
        self.0.expose()
    }

    /// As shown to the user: `BCDF-GHJK`.
    pub fn display(&self) -> String {
        let code = self.0.expose();
        format!("{}-{}", &code[..LENGTH / 2], &code[LENGTH / 2..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_use_the_alphabet_and_show_with_a_hyphen() {
        for _ in 0..200 {
            let code = UserCode::generate();
            assert_eq!(code.normalized().len(), LENGTH);
            assert!(code.normalized().bytes().all(|b| ALPHABET.contains(&b)));
            let shown = code.display();
            assert_eq!(shown.len(), LENGTH + 1);
            assert_eq!(&shown[4..5], "-");
            assert_eq!(UserCode::parse(&shown), Some(code));
        }
    }

    #[test]
    fn entry_ignores_case_hyphens_and_spaces() {
        let code = UserCode::parse("BCDF-GHJK").unwrap();
        for typed in ["bcdfghjk", "bcdf-ghjk", " BCDF GHJK ", "Bcdf-Ghjk"] {
            assert_eq!(UserCode::parse(typed), Some(code.clone()), "{typed}");
        }
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "BCDFÉGHJ",
        ] {
            assert!(UserCode::parse(bad).is_none(), "{bad}");
        }
        assert!(!format!("{code:?}").contains("BCDF"));
    }
}
