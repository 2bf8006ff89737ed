//! Single logout (OpenID Connect Back-Channel Logout 1.0): ending sessions, and delivering their
//! logout tokens to the clients that received tokens in them.
//!
//! Deliveries go through the durable outbox of `store::logout`: queued in the transaction that
//! ends the session, leased by one sender at a time across replicas, retried with backoff for
//! `logout.retry_for`, then given up with a `logout_delivery_failed` audit event. A logout sends
//! its own deliveries at once and waits for them at most `logout.page_wait`; every replica also
//! polls the outbox every `logout.poll_interval` for what is due (retries, deliveries queued by
//! the CLI, those of a replica that died holding the lease).

use std::sync::OnceLock;
use std::time::Duration;

use crate::audit::{Event, Kind};
use crate::auth_server::AuthServer;
use crate::clock::UnixTime;
use crate::error::Error;
use crate::metrics::DeliveryOutcome;
use crate::state::AppState;
use crate::store::{LogoutDelivery, Sessions};
use crate::tokens::logout_token::{self, LogoutTokenRequest};

/// Deliveries one poll leases at most; the rest wait for the next poll.
const LEASE_BATCH: i64 = 32;
/// The longest wait between two attempts of one delivery.
const MAX_BACKOFF: i64 = 300;

/// End `which` sessions: queue their back-channel deliveries, withdraw their online grants and
/// refresh tokens, end them (one transaction), then send the deliveries, waiting for them at
/// most `logout.page_wait`. Returns the number of deliveries queued.
pub async fn end_sessions(
    state: &AppState,
    which: Sessions<'_>,
    now: UnixTime,
) -> Result<usize, Error> {
    let queued = state.store.end_sessions(which, now).await?;
    let count = queued.len();
    if !queued.is_empty() {
        let sender = state.clone();
        let sending = tokio::spawn(async move { send_now(&sender, queued).await });
        // The page never waits on a slow app beyond the bound; the task goes on without it.
        let _ = tokio::time::timeout(state.config.logout.page_wait.as_duration(), sending).await;
    }
    Ok(count)
}

/// Send these just-queued deliveries now, concurrently.
async fn send_now(state: &AppState, ids: Vec<String>) {
    let attempts = ids.into_iter().map(|id| async move {
        let now = state.now();
        match state.store.lease_logout(&id, now, lease_end(state, now)).await {
            Ok(Some(delivery)) => attempt(state, delivery).await,
            // Another sender has it, or it is done.
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot lease a logout delivery; the outbox poll will send it"),
        }
    });
    futures_util::future::join_all(attempts).await;
}

/// Every replica's outbox poll: send what is due, count what waits.
pub async fn run(state: AppState) {
    let period = state
        .config
        .logout
        .poll_interval
        .as_duration()
        .max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(period).await;
        if let Err(e) = send_due(&state).await {
            tracing::warn!(error = %e, "logout outbox poll failed");
        }
    }
}

/// Lease what is due and send it; the number sent (in any outcome).
pub async fn send_due(state: &AppState) -> Result<usize, Error> {
    let now = state.now();
    let due = state
        .store
        .lease_due_logouts(now, lease_end(state, now), LEASE_BATCH)
        .await?;
    let count = due.len();
    futures_util::future::join_all(due.into_iter().map(|d| attempt(state, d))).await;
    state
        .metrics
        .set_logout_outbox_depth(state.store.logout_outbox_depth().await?);
    Ok(count)
}

/// A lease outlasts an attempt (bounded by `delivery_timeout`) with room to record its outcome,
/// so no second sender starts while the first may still deliver.
fn lease_end(state: &AppState, now: UnixTime) -> UnixTime {
    now + 2 * state.config.logout.delivery_timeout.as_i64() + 5
}

/// One attempt: sign a fresh logout token (same `jti` every time), POST it, record the outcome.
async fn attempt(state: &AppState, delivery: LogoutDelivery) {
    let outcome = post(state, &delivery).await;
    let now = state.now();
    let recorded = match outcome {
        Ok(()) => {
            state.metrics.logout_delivery(DeliveryOutcome::Sent);
            tracing::info!(client_id = %delivery.client_id, server = %delivery.server_id, jti = %delivery.id, "back-channel logout delivered");
            state.store.delete_logout(&delivery.id).await
        }
        Err(reason) if now >= delivery.created_at + state.config.logout.retry_for.as_i64() => {
            state.metrics.logout_delivery(DeliveryOutcome::Failed);
            tracing::warn!(client_id = %delivery.client_id, server = %delivery.server_id, jti = %delivery.id, attempts = delivery.attempts, %reason, "back-channel logout given up");
            state.audit.record(
                Event::new(Kind::LogoutDeliveryFailed, now)
                    .server(&delivery.server_id)
                    .actor("portcullis")
                    .subject(delivery.subject.as_str())
                    .detail("client_id", delivery.client_id.as_str())
                    .detail("jti", delivery.id.as_str())
                    .detail("attempts", delivery.attempts)
                    .detail("reason", reason.as_str()),
            );
            state.store.delete_logout(&delivery.id).await
        }
        Err(reason) => {
            state.metrics.logout_delivery(DeliveryOutcome::Retried);
            let backoff = backoff(delivery.attempts);
            tracing::info!(client_id = %delivery.client_id, jti = %delivery.id, attempts = delivery.attempts, retry_in = backoff, %reason, "back-channel logout will be retried");
            state
                .store
                .retry_logout(&delivery.id, now + backoff, &reason)
                .await
        }
    };
    if let Err(e) = recorded {
        // The lease runs out and the delivery is tried again: at least once, never lost.
        tracing::warn!(error = %e, jti = %delivery.id, "cannot record a logout delivery's outcome");
    }
}

/// Seconds before the next attempt: 1, 2, 4, … up to `MAX_BACKOFF`.
fn backoff(attempts: i32) -> i64 {
    let exponent = attempts.clamp(1, 20) - 1;
    (1i64 << exponent).min(MAX_BACKOFF)
}

/// POST the logout token (§2.5). `Err` with a reason to retry for anything but 2xx and 400 (§2.8:
/// 400 is the client refusing this token, which a retry would not change).
async fn post(state: &AppState, delivery: &LogoutDelivery) -> Result<(), String> {
    let now = state.now();
    let server = state
        .store
        .cached_server(&delivery.server_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the authorization server is gone")?;
    let server = AuthServer::new(&state.config.issuer, server);
    let keys = state
        .keys
        .key_set(&server.server, now)
        .await
        .map_err(|e| e.to_string())?;
    let key = keys.signing_key(now).ok_or("no signing key")?;
    let token = logout_token::mint(
        key,
        LogoutTokenRequest {
            issuer: &server.issuer,
            client_id: &delivery.client_id,
            subject: &delivery.subject,
            sid: delivery.sid.as_deref(),
            jti: &delivery.id,
        },
        now,
    )?;
    let response = client(state)
        .post(&delivery.uri)
        .form(&[("logout_token", token.as_str())])
        .send()
        .await
        .map_err(|e| format!("POST failed: {}", without_url(&e)))?;
    let status = response.status();
    if status.is_success() || status == reqwest::StatusCode::BAD_REQUEST {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

/// reqwest's error text, without the URL (a client's URI may carry a credential in its query).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<uri>");
    }
    if e.is_timeout() {
        text.push_str(" (timed out)");
    }
    text
}

/// One HTTP client per process, with its connection pool. Safe in memory: it holds connections,
/// nothing that replicas must agree on. No redirects: a logout token goes to the registered URI
/// only.
fn client(state: &AppState) -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        // The process's TLS provider; an error means one is installed already, which is fine.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        reqwest::Client::builder()
            .timeout(state.config.logout.delivery_timeout.as_duration())
            .connect_timeout(state.config.logout.delivery_timeout.as_duration())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(
            [1, 2, 3, 4, 9, 10, 30].map(backoff),
            [1, 2, 4, 8, 256, 300, 300]
        );
        assert_eq!(backoff(0), 1, "never zero, never negative");
    }
}
