//! Scheduled rotation: every replica runs `tick` periodically; a server whose newest key is
//! `keys.rotation_interval` old (or of another algorithm than the server's) gets a new one,
//! published at once and signing after `keys.activation_delay`.
//!
//! Exactly one replica rotates: each decides on the newest generation it saw and inserts the
//! next one; the unique (server, generation) makes the others' inserts lose
//! (`Rotation::LostRace`), and a replica that reads after the insert sees a fresh key.

use std::time::Duration;

use super::{KeyError, Rotation};
use crate::clock::UnixTime;
use crate::state::AppState;

/// One pass over every server at `now`: the rotations this replica performed or lost.
pub async fn tick(state: &AppState, now: UnixTime) -> Result<Vec<(String, Rotation)>, KeyError> {
    let interval = state.config.keys.rotation_interval.as_i64();
    let delay = state.config.keys.activation_delay.as_i64();
    let mut done = Vec::new();
    for server in state.store.servers().await? {
        let Some(newest) = state.store.newest_key(&server.id).await? else {
            // No key yet: the first is generated on first use.
            continue;
        };
        let aged = interval > 0 && now - newest.created_at >= interval;
        // A change of algorithm whose rotation did not happen (the CLI failed half-way).
        let alg_changed = newest.alg != server.signing_alg;
        if !(aged || alg_changed) {
            continue;
        }
        let outcome = state
            .keys
            .rotate_to(&server, newest.generation + 1, now, delay)
            .await?;
        done.push((server.id.clone(), outcome));
    }
    Ok(done)
}

/// Run `tick` every `period` until the process ends, logging what it did.
pub async fn run(state: AppState, period: Duration) {
    let mut timer = tokio::time::interval(period);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        match tick(&state, state.now()).await {
            Ok(rotations) => {
                for (server, rotation) in rotations {
                    match rotation {
                        Rotation::Added { kid, not_before } => {
                            tracing::info!(%server, %kid, not_before, "signing key rotated")
                        }
                        Rotation::LostRace => {
                            tracing::debug!(%server, "another replica rotated the signing key")
                        }
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "scheduled key rotation failed"),
        }
    }
}
