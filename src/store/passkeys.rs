//! Passkeys (WebAuthn credentials) and the challenges of ceremonies under way. A challenge is
//! taken once by one `DELETE … RETURNING` (atomic on both databases, whichever replica asks);
//! a signature counter moves only forward, by one conditional UPDATE.

use super::{on_pool, Store, StoreError};
use crate::clock::UnixTime;

/// A user's passkey: `public_key` is the COSE_Key the authenticator registered (public, so not
/// sealed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Passkey {
    pub id: String,
    /// base64url of the credential id.
    pub credential_id: String,
    pub user_id: String,
    pub rp_id: String,
    pub public_key: Vec<u8>,
    pub sign_count: i64,
    pub name: String,
    /// Space-separated transport hints (`internal`, `usb`, `hybrid`…), for `allowCredentials`.
    pub transports: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A challenge handed out; the row is its only record (the challenge itself is not stored).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebauthnChallenge {
    pub challenge_hash: Vec<u8>,
    pub server_id: String,
    pub ceremony: String,
    pub interaction_hash: Vec<u8>,
    pub browser: String,
    pub user_id: Option<String>,
    pub expires_at: i64,
}

const COLUMNS: &str = "id, credential_id, user_id, rp_id, public_key, sign_count, name, \
                       transports, created_at, last_used_at";
const CHALLENGE_COLUMNS: &str =
    "challenge_hash, server_id, ceremony, interaction_hash, browser, user_id, expires_at";

impl Store {
    /// Store a new passkey; false when its credential id is already registered (to anyone).
    pub async fn insert_passkey(&self, p: &Passkey) -> Result<bool, StoreError> {
        let inserted = on_pool!(self, pool => sqlx::query(
            "INSERT INTO passkeys (id, credential_id, user_id, rp_id, public_key, sign_count, \
             name, transports, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (credential_id) DO NOTHING",
        )
        .bind(&p.id)
        .bind(&p.credential_id)
        .bind(&p.user_id)
        .bind(&p.rp_id)
        .bind(&p.public_key)
        .bind(p.sign_count)
        .bind(&p.name)
        .bind(&p.transports)
        .bind(p.created_at)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(inserted == 1)
    }

    /// A user's passkeys, oldest first.
    pub async fn passkeys_of(&self, user_id: &str) -> Result<Vec<Passkey>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id");
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Passkey>(&sql)
            .bind(user_id)
            .fetch_all(pool)
            .await?))
    }

    pub async fn passkey_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<Passkey>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE credential_id = $1");
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Passkey>(&sql)
            .bind(credential_id)
            .fetch_optional(pool)
            .await?))
    }

    /// Record a use: the counter moves from `seen` to `count`, only if nobody moved it since
    /// (two replicas checking the same assertion: one wins).
    pub async fn use_passkey(
        &self,
        id: &str,
        seen: i64,
        count: i64,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE passkeys SET sign_count = $3, last_used_at = $4 \
             WHERE id = $1 AND sign_count = $2",
        )
        .bind(id)
        .bind(seen)
        .bind(count)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Hand out a challenge. It replaces the interaction's previous one (one live challenge per
    /// sign-in request, so pressing the button again cannot pile rows up), and challenges that
    /// expired unused go at the same time.
    pub async fn insert_webauthn_challenge(
        &self,
        c: &WebauthnChallenge,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "DELETE FROM webauthn_challenges WHERE expires_at <= $1 OR interaction_hash = $2",
            )
            .bind(now)
            .bind(&c.interaction_hash)
            .execute(pool)
            .await?;
            sqlx::query(
                "INSERT INTO webauthn_challenges (challenge_hash, server_id, ceremony, \
                 interaction_hash, browser, user_id, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&c.challenge_hash)
            .bind(&c.server_id)
            .bind(&c.ceremony)
            .bind(&c.interaction_hash)
            .bind(&c.browser)
            .bind(&c.user_id)
            .bind(c.expires_at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Take a challenge: it is gone whatever the ceremony's outcome (single use). The caller
    /// checks its expiry and bindings.
    pub async fn take_webauthn_challenge(
        &self,
        challenge_hash: &[u8],
    ) -> Result<Option<WebauthnChallenge>, StoreError> {
        let sql = format!(
            "DELETE FROM webauthn_challenges WHERE challenge_hash = $1 \
             RETURNING {CHALLENGE_COLUMNS}"
        );
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, WebauthnChallenge>(&sql)
            .bind(challenge_hash)
            .fetch_optional(pool)
            .await?),
        )
    }
}
