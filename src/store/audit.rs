//! The audit log: append, query newest first, delete by age.

use super::{on_pool, Store, StoreError};
use crate::clock::UnixTime;

/// One stored event. `detail` is a JSON object; nothing in it is secret (see `crate::audit`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: i64,
    pub at: UnixTime,
    pub server_id: Option<String>,
    pub kind: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub detail: String,
}

/// An event to store (the id is the database's).
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub at: UnixTime,
    pub server_id: Option<String>,
    pub kind: &'static str,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub detail: serde_json::Value,
}

/// Which events `audit_events` returns.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub server_id: Option<String>,
    pub kind: Option<String>,
    pub since: Option<UnixTime>,
    pub limit: i64,
}

impl Store {
    /// Append `events` in one statement.
    pub async fn insert_audit_events(&self, events: &[NewAuditEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        // One multi-row INSERT per batch: the buffered writer sends up to a few hundred rows.
        on_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO audit_events (at, server_id, kind, actor, subject, detail) ",
            );
            query.push_values(events, |mut row, e| {
                row.push_bind(e.at)
                    .push_bind(e.server_id.clone())
                    .push_bind(e.kind)
                    .push_bind(e.actor.clone())
                    .push_bind(e.subject.clone())
                    .push_bind(e.detail.to_string());
            });
            query.build().execute(pool).await?.rows_affected()
        });
        Ok(())
    }

    /// Events matching `filter`, newest first.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        self.audit_events_before(filter, None).await
    }

    /// Events matching `filter` older than `before` (`(at, id)` of the last event of the
    /// previous page: the management API's keyset cursor), newest first.
    pub async fn audit_events_before(
        &self,
        filter: &AuditFilter,
        before: Option<(UnixTime, i64)>,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = on_pool!(self, pool => sqlx::query_as::<_, AuditEvent>(
            "SELECT id, at, server_id, kind, actor, subject, detail FROM audit_events \
             WHERE ($1 IS NULL OR server_id = $1) AND ($2 IS NULL OR kind = $2) \
               AND ($3 IS NULL OR at >= $3) \
               AND ($5 IS NULL OR at < $5 OR (at = $5 AND id < $6)) \
             ORDER BY at DESC, id DESC LIMIT $4",
        )
        .bind(filter.server_id.as_deref())
        .bind(filter.kind.as_deref())
        .bind(filter.since)
        .bind(filter.limit)
        .bind(before.map(|(at, _)| at))
        .bind(before.map(|(_, id)| id).unwrap_or(0))
        .fetch_all(pool)
        .await?);
        Ok(rows)
    }

    /// Delete up to `batch` events older than `before` (retention); the number deleted. Call
    /// repeatedly until it returns less than `batch`, so no statement holds locks for long.
    pub async fn delete_audit_before(
        &self,
        before: UnixTime,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let n = on_pool!(self, pool => sqlx::query(
            "DELETE FROM audit_events WHERE id IN \
             (SELECT id FROM audit_events WHERE at < $1 ORDER BY id LIMIT $2)",
        )
        .bind(before)
        .bind(batch)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n)
    }
}
