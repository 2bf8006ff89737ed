//! Which keys sign and which are published, at a given time. Pure, so rotation is tested
//! with a clock rather than by sleeping.
//!
//! Keys are ordered by generation. A key signs from its `not_before` until a later key's
//! `not_before` has passed; it stays published from creation until every token it signed has
//! expired, that is `max_ttl` after its last signature.

use crate::clock::UnixTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyTimes {
    pub generation: i64,
    pub not_before: UnixTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Published, not yet signing.
    Pending,
    /// The key that signs.
    Active,
    /// Superseded; published until `unpublish_at`.
    Retired { unpublish_at: UnixTime },
    /// Superseded and no token it signed is still valid.
    Expired,
}

impl KeyStatus {
    pub fn is_published(self) -> bool {
        !matches!(self, KeyStatus::Expired)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Pending => "pending",
            KeyStatus::Active => "active",
            KeyStatus::Retired { .. } => "retired",
            KeyStatus::Expired => "expired",
        }
    }
}

/// The status of each key (`keys` sorted by generation) at `now`.
pub fn statuses(keys: &[KeyTimes], now: UnixTime, max_ttl: i64) -> Vec<KeyStatus> {
    keys.iter()
        .enumerate()
        .map(|(i, key)| {
            // The key stopped signing when the first later key became able to.
            let superseded_at = keys[i + 1..]
                .iter()
                .map(|k| k.not_before)
                .filter(|nb| *nb <= now)
                .min();
            match superseded_at {
                Some(end) if now < end + max_ttl => KeyStatus::Retired {
                    unpublish_at: end + max_ttl,
                },
                Some(_) => KeyStatus::Expired,
                None if key.not_before <= now => KeyStatus::Active,
                None => KeyStatus::Pending,
            }
        })
        .collect()
}

/// The next time any status changes, so a cached JWKS knows when to re-render.
pub fn next_change(keys: &[KeyTimes], now: UnixTime, max_ttl: i64) -> Option<UnixTime> {
    let activations = keys.iter().map(|k| k.not_before).filter(|nb| *nb > now);
    let unpublications = statuses(keys, now, max_ttl)
        .into_iter()
        .filter_map(|s| match s {
            KeyStatus::Retired { unpublish_at } => Some(unpublish_at),
            _ => None,
        });
    activations.chain(unpublications).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(generation: i64, not_before: i64) -> KeyTimes {
        KeyTimes {
            generation,
            not_before,
        }
    }

    #[test]
    fn a_rotated_key_is_published_before_it_signs() {
        let keys = [k(1, 0), k(2, 1000)];
        assert_eq!(
            statuses(&keys, 500, 3600),
            vec![KeyStatus::Active, KeyStatus::Pending]
        );
        assert_eq!(next_change(&keys, 500, 3600), Some(1000));
    }

    #[test]
    fn a_retired_key_stays_published_until_its_tokens_expire() {
        let keys = [k(1, 0), k(2, 1000)];
        assert_eq!(
            statuses(&keys, 1000, 3600),
            vec![KeyStatus::Retired { unpublish_at: 4600 }, KeyStatus::Active]
        );
        assert_eq!(
            statuses(&keys, 4600, 3600),
            vec![KeyStatus::Expired, KeyStatus::Active]
        );
    }

    #[test]
    fn an_immediate_rotation_supersedes_a_pending_one() {
        let keys = [k(1, 0), k(2, 1000), k(3, 10)];
        let s = statuses(&keys, 20, 100);
        assert_eq!(s[2], KeyStatus::Active);
        assert_eq!(s[0], KeyStatus::Retired { unpublish_at: 110 });
        assert!(matches!(s[1], KeyStatus::Retired { .. }));
    }
}
