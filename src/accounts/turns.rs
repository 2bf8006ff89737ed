//! Password checks of one user take turns on a replica (see `accounts::check`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// Per-replica turns of the password checks of one user (see `check`). In memory: it only orders
/// this replica's checks; what must hold across replicas (the failure count and the lock) is
/// in the database. An entry lives while a check of its user runs or waits, so the map holds at
/// most as many users as there are password checks in flight.
#[derive(Default)]
pub struct UserTurns(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// A user's turn; the next check of that user starts when it is dropped.
pub struct Turn<'a> {
    turns: &'a UserTurns,
    user_id: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl UserTurns {
    pub async fn take(&self, user_id: &str) -> Turn<'_> {
        let lock = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(user_id.to_string())
            .or_default()
            .clone();
        Turn {
            turns: self,
            user_id: user_id.to_string(),
            guard: Some(lock.lock_owned().await),
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.guard = None;
        let mut map = self.turns.0.lock().unwrap_or_else(|p| p.into_inner());
        // Nobody else holds or waits for this user's turn: forget the user.
        if map
            .get(&self.user_id)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            map.remove(&self.user_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_users_checks_take_turns_and_the_map_empties() {
        let turns = UserTurns::default();
        let first = turns.take("ada").await;
        // Another user is not kept waiting.
        drop(turns.take("bob").await);
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), turns.take("ada")).await;
        assert!(waiting.is_err(), "ada's second check waits for the first");
        drop(first);
        drop(turns.take("ada").await);
        assert!(turns.0.lock().unwrap().is_empty());
    }
}
