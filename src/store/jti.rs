//! JWT ids seen, so that a client assertion (RFC 7523 §3 item 7), a DPoP proof (RFC 9449 §11.1)
//! or a request object (RFC 9101 §10.8) is accepted once, on every replica, until it expires.

use super::{on_pool, Store, StoreError};
use crate::clock::UnixTime;

/// Whose ids: each kind and issuer is its own namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JtiKind {
    /// Per client.
    ClientAssertion,
    /// Per DPoP key thumbprint.
    DpopProof,
    /// Per client.
    RequestObject,
}

impl JtiKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::ClientAssertion => "client_assertion",
            Self::DpopProof => "dpop_proof",
            Self::RequestObject => "request_object",
        }
    }
}

impl Store {
    /// Record `jti` as used until `expires_at`: `true` for the first use, `false` for a replay.
    /// One statement on either database: the primary key lets exactly one INSERT through,
    /// however many replicas race; an entry already expired (housekeeping has not deleted it
    /// yet) is taken over by the same statement.
    pub async fn use_jti(
        &self,
        kind: JtiKind,
        issuer: &str,
        jti: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "INSERT INTO used_jtis (kind, issuer, jti, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, issuer, jti) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE used_jtis.expires_at <= $5",
        )
        .bind(kind.as_str())
        .bind(issuer)
        .bind(jti)
        .bind(expires_at)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Housekeeping: ids past their JWT's expiry (a replay of it is refused as expired).
    pub async fn delete_expired_jtis(&self, now: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.delete_batch(
            "DELETE FROM used_jtis WHERE (kind, issuer, jti) IN \
             (SELECT kind, issuer, jti FROM used_jtis WHERE expires_at <= $1 LIMIT $2)",
            now,
            limit,
        )
        .await
    }
}
