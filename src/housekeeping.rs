//! Housekeeping: deleting what has expired, so tables stay the size of what is live.
//!
//! Every replica runs it every `housekeeping.interval` (`spawn`); one run (`run`) is a plain
//! function of the store and `now`, so tests drive it with a manual clock. Each table is purged
//! in batches of `housekeeping.batch_size` rows per statement, until a batch comes back short
//! or `MAX_BATCHES` batches were deleted: no statement holds locks for long, and a run is
//! bounded however much has piled up (the rest goes in the next runs). Every delete is idempotent, so replicas running at once
//! are harmless; on PostgreSQL an advisory lock lets one of them do the work each time anyway.

use std::future::Future;
use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::clock::UnixTime;
use crate::config::{HousekeepingConfig, Seconds};
use crate::state::AppState;
use crate::store::{Store, StoreError};

/// Rows deleted by one run, per table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// False when another replica held the lock and this run did nothing.
    pub ran: bool,
    pub authorization_codes: u64,
    pub device_codes: u64,
    pub refresh_tokens: u64,
    pub grants: u64,
    pub sessions: u64,
    pub interactions: u64,
    pub revoked_tokens: u64,
    pub rate_limits: u64,
    pub audit_events: u64,
    /// Recorded configuration changes older than `CONFIG_CHANGES_RETENTION` (`store/cache.rs`).
    pub config_changes: u64,
    // High-assurance clients (issue 21).
    pub used_jtis: u64,
    pub pushed_requests: u64,
}

/// Batches one table may delete in one run: `MAX_BATCHES × housekeeping.batch_size` rows.
pub const MAX_BATCHES: u32 = 100;

/// How long a recorded configuration change is kept: a replica that has not checked for
/// changes for longer drops its whole cache instead of reading them.
pub const CONFIG_CHANGES_RETENTION: i64 = 86_400;

impl Report {
    pub fn total(&self) -> u64 {
        self.tables().iter().map(|(_, n)| n).sum()
    }

    /// (table, rows deleted) pairs, for logs and metrics.
    pub fn tables(&self) -> [(&'static str, u64); 12] {
        [
            ("authorization_codes", self.authorization_codes),
            ("refresh_tokens", self.refresh_tokens),
            ("grants", self.grants),
            ("sessions", self.sessions),
            ("interactions", self.interactions),
            ("revoked_tokens", self.revoked_tokens),
            ("rate_limits", self.rate_limits),
            ("audit_events", self.audit_events),
            ("device_codes", self.device_codes),
            ("config_changes", self.config_changes),
            ("used_jtis", self.used_jtis),
            ("pushed_requests", self.pushed_requests),
        ]
    }
}

/// One run at `now`; audit events older than `audit_retention` go too.
pub async fn run(
    store: &Store,
    config: &HousekeepingConfig,
    audit_retention: Seconds,
    now: UnixTime,
) -> Result<Report, StoreError> {
    let Some(lock) = store.try_lock_housekeeping().await? else {
        return Ok(Report::default());
    };
    let result = purge_all(store, config, now - audit_retention.as_i64(), now).await;
    lock.release().await;
    result
}

async fn purge_all(
    store: &Store,
    config: &HousekeepingConfig,
    audit_cutoff: UnixTime,
    now: UnixTime,
) -> Result<Report, StoreError> {
    let batch = config.batch_size;
    let rate_limit_cutoff = now - config.rate_limit_retention.as_i64();
    Ok(Report {
        ran: true,
        authorization_codes: purge(batch, move |n| store.delete_expired_codes(now, n)).await?,
        device_codes: purge(batch, move |n| store.delete_expired_device_codes(now, n)).await?,
        // Refresh tokens before grants: an expired grant then rarely has rows left to cascade.
        refresh_tokens: purge(batch, move |n| store.delete_unusable_refresh_tokens(now, n)).await?,
        grants: purge(batch, move |n| store.delete_expired_grants(now, n)).await?,
        sessions: purge(batch, move |n| store.delete_expired_sessions(now, n)).await?,
        interactions: purge(batch, move |n| store.delete_expired_interactions(now, n)).await?,
        revoked_tokens: purge(batch, move |n| store.delete_expired_revocations(now, n)).await?,
        rate_limits: purge(batch, move |n| {
            store.delete_stale_rate_limits(rate_limit_cutoff, n)
        })
        .await?,
        audit_events: purge(batch, move |n| {
            store.delete_audit_before(audit_cutoff, i64::from(n))
        })
        .await?,
        config_changes: purge(batch, move |n| {
            store.delete_config_changes_before(now - CONFIG_CHANGES_RETENTION, n)
        })
        .await?,
        used_jtis: purge(batch, move |n| store.delete_expired_jtis(now, n)).await?,
        pushed_requests: purge(batch, move |n| store.delete_expired_pushed_requests(now, n))
            .await?,
    })
}

/// Repeat one batched delete until a batch deletes fewer rows than it could, at most
/// `MAX_BATCHES` times.
async fn purge<F, Fut>(batch: u32, mut delete: F) -> Result<u64, StoreError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        let deleted = delete(batch).await?;
        total += deleted;
        if deleted < u64::from(batch) {
            break;
        }
    }
    Ok(total)
}

/// Run housekeeping every `housekeeping.interval` on this replica, until the task is aborted;
/// `None` when the interval is 0 (disabled).
pub fn spawn(state: AppState) -> Option<JoinHandle<()>> {
    let config = Arc::new(state.config.housekeeping.clone());
    let audit_retention = state.config.audit.retention;
    if config.interval.0 == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(config.interval.as_duration());
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match run(&state.store, &config, audit_retention, state.now()).await {
                Ok(report) => {
                    for (table, rows) in report.tables() {
                        state.metrics.housekeeping_deleted(table, rows);
                    }
                    if report.total() > 0 {
                        tracing::info!(?report, "housekeeping deleted expired rows");
                    }
                }
                // The next tick tries again; nothing is left half-done.
                Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
            }
        }
    }))
}
