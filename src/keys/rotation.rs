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

/// Rotations one replica performs per tick at most. Servers created together age together: ten
/// thousand keys due at once are rotated this many per tick (every `keys.cache_ttl`, 30 s by
/// default: 10,000 in about 10 hours), oldest first, rather than ten thousand key generations
/// in one tick. A key is used a little longer than `keys.rotation_interval`, never less.
pub const ROTATIONS_PER_TICK: u32 = 8;

/// One pass at `now`: the rotations this replica performed or lost. One query finds the servers
/// due, so a tick costs the same with ten servers or ten thousand.
pub async fn tick(state: &AppState, now: UnixTime) -> Result<Vec<(String, Rotation)>, KeyError> {
    let interval = state.config.keys.rotation_interval.as_i64();
    let delay = state.config.keys.activation_delay.as_i64();
    // Aged: created `interval` ago or earlier. Interval 0: only a change of algorithm whose
    // rotation did not happen (the CLI failed half-way) is due.
    let created_before = if interval > 0 {
        now - interval
    } else {
        i64::MIN
    };
    let mut done = Vec::new();
    for due in state
        .store
        .due_rotations(created_before, ROTATIONS_PER_TICK)
        .await?
    {
        let Some(server) = state.store.server(&due.server_id).await? else {
            continue;
        };
        let outcome = state
            .keys
            .rotate_to(&server, due.generation + 1, now, delay)
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
