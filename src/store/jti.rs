//! JWT ids seen, so that a client assertion (RFC 7523 §3 item 7), a DPoP proof (RFC 9449 §11.1)
//! or a request object (RFC 9101 §10.8) is accepted once, on every replica, until it expires.

use super::{on_pool, Store, StoreError};
use crate::clock::UnixTime;

/// Whose ids: each kind and issuer is its own namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// One JWT id to record as used until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JtiUse {
    pub kind: JtiKind,
    /// The client id, or the DPoP key's thumbprint.
    pub issuer: String,
    pub jti: String,
    pub expires_at: UnixTime,
}

impl Store {
    /// Record each id as used until its `expires_at` (the group commit of `crate::used_jtis`):
    /// for each, `true` for its first use, `false` for a replay. One INSERT on either database:
    /// the primary key lets exactly one INSERT of an id through, however many replicas race, and
    /// `RETURNING` names the rows it wrote; an entry already expired at `now` (housekeeping has
    /// not deleted it yet) is taken over by the same statement. An id twice in `uses` is a first
    /// use at most once, at its first place.
    pub async fn use_jtis(&self, uses: &[JtiUse], now: UnixTime) -> Result<Vec<bool>, StoreError> {
        let mut seen = std::collections::HashSet::with_capacity(uses.len());
        // PostgreSQL refuses an upsert that touches one row twice: each id goes in once.
        let unique: Vec<&JtiUse> = uses
            .iter()
            .filter(|u| seen.insert((u.kind, u.issuer.as_str(), u.jti.as_str())))
            .collect();
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        let recorded: Vec<(String, String, String)> = on_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO used_jtis (kind, issuer, jti, expires_at) ",
            );
            query.push_values(&unique, |mut row, u| {
                row.push_bind(u.kind.as_str())
                    .push_bind(u.issuer.as_str())
                    .push_bind(u.jti.as_str())
                    .push_bind(u.expires_at);
            });
            query
                .push(
                    " ON CONFLICT (kind, issuer, jti) DO UPDATE SET expires_at = excluded.expires_at \
                     WHERE used_jtis.expires_at <= ",
                )
                .push_bind(now)
                .push(" RETURNING kind, issuer, jti");
            query.build_query_as().fetch_all(pool).await?
        });
        let recorded: std::collections::HashSet<(&str, &str, &str)> = recorded
            .iter()
            .map(|(k, i, j)| (k.as_str(), i.as_str(), j.as_str()))
            .collect();
        let mut first = std::collections::HashSet::with_capacity(uses.len());
        Ok(uses
            .iter()
            .map(|u| {
                let key = (u.kind.as_str(), u.issuer.as_str(), u.jti.as_str());
                recorded.contains(&key) && first.insert(key)
            })
            .collect())
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
