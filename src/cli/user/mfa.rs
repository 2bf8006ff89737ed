//! `portcullis user mfa enroll-totp|list|reset|recovery-codes USER`: an operator's view of a
//! user's second factors. Every change is audited; a secret or a recovery code is printed once,
//! by the command that made it, and stored only sealed or hashed.

use clap::Subcommand;
use serde_json::json;

use super::{find_user, CliError};
use crate::audit::{self, Event, Kind};
use crate::cli::print_json;
use crate::clock::UnixTime;
use crate::config::Config;
use crate::keys::kek::Keks;
use crate::manage::Actor;
use crate::mfa::{base32, enrol, totp};
use crate::store::{Store, User, TOTP};

#[derive(Debug, Subcommand)]
pub enum MfaCommand {
    /// Enrol an authenticator app for the user (confirmed at once); prints
    /// `{"id", "secret", "otpauth_uri"}` once. Refused when the user already has one.
    EnrollTotp { user: String },
    /// The user's factors (never their secrets) and how many recovery codes are left.
    List { user: String },
    /// Remove the user's factors and recovery codes (a lost phone), or one factor.
    Reset {
        user: String,
        /// Only this factor (its id, from `user mfa list`).
        #[arg(long, value_name = "ID")]
        factor: Option<String>,
    },
    /// Replace the user's recovery codes with ten new ones; prints them once.
    RecoveryCodes { user: String },
}

pub async fn execute(
    config: &Config,
    store: &Store,
    command: MfaCommand,
    now: UnixTime,
) -> Result<(), CliError> {
    match command {
        MfaCommand::EnrollTotp { user } => {
            let user = find_user(store, &user).await?;
            let factors = store
                .mfa_factors_of(&user.id)
                .await
                .map_err(CliError::from)?;
            if factors
                .iter()
                .any(|f| f.kind == TOTP && f.confirmed_at.is_some())
            {
                return Err(CliError(format!(
                    "user `{}` already has an authenticator app; `user mfa reset` it first",
                    user.username
                )));
            }
            let keks = Keks::from_config(&config.keys).map_err(CliError)?;
            let new = enrol::totp(store, &keks, &user.id, true, now)
                .await
                .map_err(CliError::from)?;
            audit_mfa(store, Kind::MfaEnrolled, &user, now, |e| {
                e.detail("factor", new.factor.id.as_str())
                    .detail("kind", TOTP)
            })
            .await;
            print_json(&json!({
                "id": new.factor.id,
                "secret": base32::encode(&new.secret),
                "otpauth_uri": totp::otpauth_uri(&totp::issuer_label(&config.issuer), &user.username, &new.secret),
            }));
        }
        MfaCommand::List { user } => {
            let user = find_user(store, &user).await?;
            let factors = store
                .mfa_factors_of(&user.id)
                .await
                .map_err(CliError::from)?;
            let left = store
                .recovery_codes_left(&user.id)
                .await
                .map_err(CliError::from)?;
            let list: Vec<_> = factors
                .iter()
                .map(|f| {
                    json!({
                        "id": f.id,
                        "kind": f.kind,
                        "label": f.label,
                        "created_at": f.created_at,
                        "confirmed": f.confirmed_at.is_some(),
                        "confirmed_at": f.confirmed_at,
                        "last_used_at": f.last_used_at,
                    })
                })
                .collect();
            let passkeys = store.passkeys_of(&user.id).await.map_err(CliError::from)?;
            // Passkeys are listed with the other factors; `reset --factor` takes their id too.
            let list: Vec<_> = list
                .into_iter()
                .chain(passkeys.iter().map(|p| {
                    json!({
                        "id": p.id,
                        "kind": "passkey",
                        "label": p.name,
                        "created_at": p.created_at,
                        "confirmed": true,
                        "confirmed_at": p.created_at,
                        "last_used_at": p.last_used_at,
                        "rp_id": p.rp_id,
                        "credential_id": p.credential_id,
                        "sign_count": p.sign_count,
                        "transports": p.transports.split_whitespace().collect::<Vec<_>>(),
                    })
                }))
                .collect();
            print_json(&json!({
                "user": user.id,
                "username": user.username,
                "factors": list,
                "recovery_codes_left": left,
            }));
        }
        MfaCommand::Reset { user, factor } => {
            let user = find_user(store, &user).await?;
            let removed =
                crate::manage::mfa::reset(store, &user, factor.as_deref(), &Actor::Cli, now)
                    .await
                    .map_err(CliError::from)?;
            print_json(&json!({
                "user": user.id,
                "username": user.username,
                "removed": removed,
                "recovery_codes_removed": factor.is_none(),
            }));
        }
        MfaCommand::RecoveryCodes { user } => {
            let user = find_user(store, &user).await?;
            let codes = enrol::recovery_codes(store, &user.id, now)
                .await
                .map_err(CliError::from)?;
            audit_mfa(store, Kind::MfaRecoveryCodesGenerated, &user, now, |e| {
                e.detail("count", codes.len())
            })
            .await;
            print_json(&json!({
                "user": user.id,
                "recovery_codes": codes.iter().map(|c| c.expose()).collect::<Vec<_>>(),
            }));
        }
    }
    Ok(())
}

async fn audit_mfa(
    store: &Store,
    kind: Kind,
    user: &User,
    now: UnixTime,
    details: impl FnOnce(Event) -> Event,
) {
    let event = Event::new(kind, now)
        .actor("cli")
        .subject(user.id.as_str())
        .detail("username", user.username.as_str());
    audit::write(store, details(event)).await;
}
