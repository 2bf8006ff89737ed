//! A client's single-logout settings (OpenID Connect Back-Channel Logout 1.0 §2.2, Front-Channel
//! Logout 1.0 §2), under the rules of redirect URIs.

use super::clients::{validate_redirect_uri, RegistrationError};
use crate::store::{ClientLogout, Store};

/// What an operator changes; `None` leaves a setting as it is, an empty URI removes it.
#[derive(Debug, Clone, Default)]
pub struct LogoutChanges {
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_session_required: Option<bool>,
    pub frontchannel_logout_uri: Option<String>,
    pub frontchannel_session_required: Option<bool>,
}

impl LogoutChanges {
    pub fn is_empty(&self) -> bool {
        self.backchannel_logout_uri.is_none()
            && self.backchannel_session_required.is_none()
            && self.frontchannel_logout_uri.is_none()
            && self.frontchannel_session_required.is_none()
    }
}

/// The rules of [`update_client_logout`], checked before anything is stored (a client
/// created with a bad logout URI would otherwise be left behind).
pub fn check_logout_changes(changes: &LogoutChanges) -> Result<(), RegistrationError> {
    for uri in [
        &changes.backchannel_logout_uri,
        &changes.frontchannel_logout_uri,
    ]
    .into_iter()
    .flatten()
    .filter(|u| !u.trim().is_empty())
    {
        validate_redirect_uri(uri)?;
        if !(uri.starts_with("https://") || uri.starts_with("http://")) {
            return Err(RegistrationError::Invalid(format!(
                "logout URI `{uri}` must be http(s)"
            )));
        }
    }
    Ok(())
}

/// Apply `changes` to client `client_id`'s logout settings; the settings as stored. Back-channel
/// URIs go from server to client, so, like redirect URIs, they need https except on loopback;
/// a fragment is refused (Back-Channel Logout §2.2), and so is a private-use scheme, which no
/// server can POST to.
pub async fn update_client_logout(
    store: &Store,
    client_id: &str,
    changes: LogoutChanges,
) -> Result<ClientLogout, RegistrationError> {
    check_logout_changes(&changes)?;
    let mut logout = store.client_logout(client_id).await?;
    if changes.is_empty() {
        return Ok(logout);
    }
    let uri = |value: Option<String>, current: Option<String>| match value {
        None => current,
        Some(v) if v.trim().is_empty() => None,
        Some(v) => Some(v),
    };
    logout.backchannel_logout_uri = uri(
        changes.backchannel_logout_uri,
        logout.backchannel_logout_uri.take(),
    );
    logout.frontchannel_logout_uri = uri(
        changes.frontchannel_logout_uri,
        logout.frontchannel_logout_uri.take(),
    );
    if let Some(required) = changes.backchannel_session_required {
        logout.backchannel_session_required = required;
    }
    if let Some(required) = changes.frontchannel_session_required {
        logout.frontchannel_session_required = required;
    }
    store.set_client_logout(client_id, &logout).await?;
    Ok(logout)
}
