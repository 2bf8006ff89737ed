//! A user's second factors as an operator sees and resets them (a lost phone): the same for
//! `portcullis user mfa list|reset` and the management API. Never a secret.

use serde::Serialize;

use super::clients::RegistrationError as ManageError;
use super::Actor;
use crate::audit::{self, Event, Kind};
use crate::clock::UnixTime;
use crate::store::{Store, User};

/// A factor: an authenticator app (`totp`) or a passkey; never its secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FactorSummary {
    pub id: String,
    /// `totp` or `passkey`.
    pub kind: String,
    pub label: String,
    pub created_at: i64,
    /// A TOTP enrolment waiting for its first code is not confirmed.
    pub confirmed: bool,
    pub last_used_at: Option<i64>,
}

/// The user's factors, TOTP first then passkeys, and how many recovery codes are left.
pub async fn factors(store: &Store, user: &User) -> Result<(Vec<FactorSummary>, i64), ManageError> {
    let mut list: Vec<FactorSummary> = store
        .mfa_factors_of(&user.id)
        .await?
        .into_iter()
        .map(|f| FactorSummary {
            confirmed: f.confirmed_at.is_some(),
            id: f.id,
            kind: f.kind,
            label: f.label,
            created_at: f.created_at,
            last_used_at: f.last_used_at,
        })
        .collect();
    list.extend(
        store
            .passkeys_of(&user.id)
            .await?
            .into_iter()
            .map(|p| FactorSummary {
                id: p.id,
                kind: "passkey".to_string(),
                label: p.name,
                created_at: p.created_at,
                confirmed: true,
                last_used_at: p.last_used_at,
            }),
    );
    let left = store.recovery_codes_left(&user.id).await?;
    Ok((list, left))
}

/// Remove one factor of the user (`NotFound` when they have no such factor), or all of them
/// with their recovery codes. The number of factors removed.
pub async fn reset(
    store: &Store,
    user: &User,
    factor: Option<&str>,
    actor: &Actor,
    now: UnixTime,
) -> Result<u64, ManageError> {
    let removed = store.reset_mfa(&user.id, factor).await?;
    if let (Some(id), 0) = (factor, removed) {
        return Err(ManageError::NotFound(format!(
            "user `{}` has no factor `{id}`",
            user.username
        )));
    }
    let event = Event::new(Kind::MfaReset, now)
        .actor(actor.label())
        .subject(user.id.as_str())
        .detail("username", user.username.as_str())
        .detail("factor", factor.unwrap_or("all"));
    audit::write(store, event).await;
    Ok(removed)
}
