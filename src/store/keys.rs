//! Signing keys.

use super::{is_unique_violation, on_pool, Store, StoreError};

#[derive(Clone, sqlx::FromRow)]
pub struct StoredKey {
    pub kid: String,
    pub server_id: String,
    pub generation: i64,
    pub alg: String,
    /// `plain` (PKCS#8 DER) or `aes-256-gcm` (an envelope, see keys::kek).
    pub key_storage: String,
    pub private_key: Vec<u8>,
    pub public_jwk: String,
    pub created_at: i64,
    pub not_before: i64,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("server_id", &self.server_id)
            .field("generation", &self.generation)
            .field("alg", &self.alg)
            .field("key_storage", &self.key_storage)
            .field("private_key", &"[redacted]")
            .field("not_before", &self.not_before)
            .finish()
    }
}

/// A server's newest key, as the rotation schedule sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NewestKey {
    pub generation: i64,
    pub alg: String,
    pub created_at: i64,
}

/// A server whose newest key is due for rotation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueRotation {
    pub server_id: String,
    pub generation: i64,
}

/// A private key re-encrypted: written only if the row still holds `old`.
pub struct Rewrapped {
    pub kid: String,
    pub old: Vec<u8>,
    pub key_storage: String,
    pub private_key: Vec<u8>,
}

const COLUMNS: &str =
    "kid, server_id, generation, alg, key_storage, private_key, public_jwk, created_at, not_before";

impl Store {
    /// Every key of a server, oldest generation first.
    pub async fn keys(&self, server_id: &str) -> Result<Vec<StoredKey>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM signing_keys WHERE server_id = $1 ORDER BY generation");
        Ok(on_pool!(self, pool => sqlx::query_as::<_, StoredKey>(&sql)
            .bind(server_id)
            .fetch_all(pool)
            .await?))
    }

    /// Every key of every server (re-encryption).
    pub async fn all_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM signing_keys ORDER BY server_id, generation");
        Ok(on_pool!(self, pool => sqlx::query_as::<_, StoredKey>(&sql)
            .fetch_all(pool)
            .await?))
    }

    /// The keys not sealed under the KEK whose id is `kek_id` (the envelope's bytes 2 to 9, see
    /// keys::kek): what start-up re-encrypts, without reading every key of every server.
    pub async fn keys_not_sealed_under(&self, kek_id: &[u8]) -> Result<Vec<StoredKey>, StoreError> {
        let condition = match &self.db {
            super::Db::Sqlite(_) => "substr(private_key, 2, 8)",
            super::Db::Postgres(_) => "substring(private_key FROM 2 FOR 8)",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM signing_keys \
             WHERE NOT (key_storage = 'aes-256-gcm' AND {condition} = $1) \
             ORDER BY server_id, generation"
        );
        Ok(on_pool!(self, pool => sqlx::query_as::<_, StoredKey>(&sql)
            .bind(kek_id)
            .fetch_all(pool)
            .await?))
    }

    /// The kid of any key stored sealed (not plaintext), if there is one.
    pub async fn a_sealed_key(&self) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT kid FROM signing_keys WHERE key_storage <> 'plain' LIMIT 1",
        )
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|(kid,)| kid))
    }

    /// Insert a key as the next generation. Returns false when another writer took that
    /// generation first (two replicas generating or rotating at once: exactly one wins).
    pub async fn insert_key(&self, key: &StoredKey) -> Result<bool, StoreError> {
        let sql = format!(
            "INSERT INTO signing_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (server_id, generation) DO NOTHING"
        );
        let result = on_pool!(self, pool => sqlx::query(&sql)
        .bind(&key.kid)
        .bind(&key.server_id)
        .bind(key.generation)
        .bind(&key.alg)
        .bind(&key.key_storage)
        .bind(&key.private_key)
        .bind(&key.public_jwk)
        .bind(key.created_at)
        .bind(key.not_before)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()));
        match result {
            Ok(rows) => Ok(rows == 1),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Replace private keys in one transaction: all or none. A row changed since it was read
    /// (another writer re-encrypting) aborts the whole change.
    pub async fn rewrap_keys(&self, keys: &[Rewrapped]) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut lane = pool.acquire().await?;
            let mut tx = lane.begin().await?;
            for key in keys {
                let written = sqlx::query(
                    "UPDATE signing_keys SET key_storage = $1, private_key = $2 \
                     WHERE kid = $3 AND private_key = $4",
                )
                .bind(&key.key_storage)
                .bind(&key.private_key)
                .bind(&key.kid)
                .bind(&key.old)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if written != 1 {
                    tx.rollback().await?;
                    return Err(StoreError::Conflict(format!(
                        "key {} changed while it was being re-encrypted; nothing was written, try again",
                        key.kid
                    )));
                }
            }
            tx.commit().await?;
            lane.release();
        });
        Ok(())
    }

    /// Remove keys that are no longer published (housekeeping).
    pub async fn delete_key(&self, kid: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// The newest generation of a server's keys, if any.
    pub async fn latest_key_generation(&self, server_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.newest_key(server_id).await?.map(|k| k.generation))
    }

    /// A server's newest key (highest generation), if any.
    pub async fn newest_key(&self, server_id: &str) -> Result<Option<NewestKey>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, NewestKey>(
            "SELECT generation, alg, created_at FROM signing_keys WHERE server_id = $1 \
             ORDER BY generation DESC LIMIT 1",
        )
        .bind(server_id)
        .fetch_optional(pool)
        .await?))
    }

    /// Servers whose newest key was created at or before `created_before`, or is of another
    /// algorithm than the server's: at most `limit`, the oldest keys first. One query however
    /// many servers there are (servers without a key yet are not due: their first key comes on
    /// first use).
    pub async fn due_rotations(
        &self,
        created_before: i64,
        limit: u32,
    ) -> Result<Vec<DueRotation>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, DueRotation>(
            "SELECT k.server_id, k.generation FROM signing_keys k \
             JOIN authorization_servers s ON s.id = k.server_id \
             WHERE k.generation = \
                 (SELECT MAX(n.generation) FROM signing_keys n WHERE n.server_id = k.server_id) \
             AND (k.created_at <= $1 OR k.alg <> s.signing_alg) \
             ORDER BY k.created_at, k.server_id LIMIT $2",
        )
        .bind(created_before)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?))
    }
}
