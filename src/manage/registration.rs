//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592): client
//! metadata checked against RFC 7591 §2 and the rules of `client create`, under each server's
//! registration policy. Registered clients are never first-party (users consent), may not use
//! the password or token-exchange grants, and may ask only for scopes the server already has.

use serde::{Deserialize, Serialize};

use super::clients::{
    change_client, create_client, delete_client, validate_redirect_uri, ClientChanges,
    ClientRecord, ClientRequest, RegistrationError,
};
use super::logout::LogoutChanges;
use super::Actor;
use crate::audit::{self, Event, Kind};
use crate::clock::UnixTime;
use crate::protocol::admin_scopes::ADMIN_SERVER;
use crate::protocol::scope::{OFFLINE_ACCESS, OIDC_SCOPES};
use crate::protocol::{ClientAuthMethod, GrantType};
use crate::security::{hash_secret, random_id, random_secret, Secret};
use crate::store::registration::{RegistrationPolicy, RegistrationToken};
use crate::store::{Store, StoreError};

/// The longest client name kept.
const MAX_NAME_CHARS: usize = 200;
/// Bounds a registration's size beyond the body limit.
const MAX_URIS: usize = 20;

/// RFC 7591 §2 client metadata, as registered and as returned. Members we do not implement
/// (`logo_uri`, `contacts`, …) are ignored, as §2 allows.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ClientMetadata {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub client_name: Option<String>,
    pub scope: Option<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// RFC 7592 §2.2: an update names the client it updates.
    #[serde(default, skip_serializing)]
    pub client_id: Option<String>,
}

/// RFC 7591 §3.2.2's errors.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationRefused {
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("{0}")]
    InvalidClientMetadata(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RegistrationError> for RegistrationRefused {
    fn from(e: RegistrationError) -> Self {
        match e {
            RegistrationError::Invalid(m) | RegistrationError::NotFound(m) => {
                Self::InvalidClientMetadata(m)
            }
            RegistrationError::Store(e) => Self::Store(e),
        }
    }
}

fn metadata_error(message: impl Into<String>) -> RegistrationRefused {
    RegistrationRefused::InvalidClientMetadata(message.into())
}

/// What registration makes of the metadata: the client's rules, checked.
struct Checked {
    grant_types: Vec<GrantType>,
    response_types: Vec<String>,
    auth_method: ClientAuthMethod,
    name: String,
    scopes: Vec<String>,
}

/// RFC 7591 §2 and §2.1: defaults, known values, grant and response types that agree, redirect
/// URIs (no fragment; https, loopback http or a private-use scheme), scopes the server has.
async fn check(
    store: &Store,
    server_id: &str,
    metadata: &ClientMetadata,
) -> Result<Checked, RegistrationRefused> {
    if metadata.redirect_uris.len() > MAX_URIS
        || metadata.post_logout_redirect_uris.len() > MAX_URIS
    {
        return Err(metadata_error(format!(
            "at most {MAX_URIS} URIs of each kind"
        )));
    }
    for uri in metadata
        .redirect_uris
        .iter()
        .chain(&metadata.post_logout_redirect_uris)
    {
        validate_redirect_uri(uri)
            .map_err(|e| RegistrationRefused::InvalidRedirectUri(e.to_string()))?;
    }
    // §2: grant_types defaults to authorization_code, response_types to code.
    let grant_names = metadata
        .grant_types
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    let mut grant_types = Vec::new();
    for name in &grant_names {
        let grant = GrantType::from_cli(name).map_err(metadata_error)?;
        if matches!(grant, GrantType::Password | GrantType::TokenExchange) {
            return Err(metadata_error(format!(
                "the {grant} grant is not open to registration; ask an operator"
            )));
        }
        grant_types.push(grant);
    }
    let response_types = metadata.response_types.clone().unwrap_or_else(|| {
        if grant_types.contains(&GrantType::AuthorizationCode) {
            vec!["code".into()]
        } else {
            Vec::new()
        }
    });
    // §2.1: each response type needs its grant, and each redirecting grant a response type.
    let mut wants_code = false;
    let mut wants_implicit = false;
    for response_type in &response_types {
        if !crate::protocol::response_type::SUPPORTED.contains(&response_type.as_str()) {
            return Err(metadata_error(format!(
                "response type `{response_type}` is not supported"
            )));
        }
        if response_type == "code" {
            wants_code = true;
        } else {
            wants_implicit = true;
        }
    }
    if wants_code != grant_types.contains(&GrantType::AuthorizationCode)
        || wants_implicit != grant_types.contains(&GrantType::Implicit)
    {
        return Err(metadata_error(
            "grant_types and response_types disagree (RFC 7591 §2.1): `code` goes with \
             authorization_code, `token`/`id_token` with implicit",
        ));
    }
    let auth_method = match metadata.token_endpoint_auth_method.as_deref() {
        None => ClientAuthMethod::ClientSecretBasic,
        Some(method) => match method.parse() {
            Ok(
                m @ (ClientAuthMethod::ClientSecretBasic
                | ClientAuthMethod::ClientSecretPost
                | ClientAuthMethod::None),
            ) => m,
            // private_key_jwt needs keys (`jwks`/`jwks_uri`), which registration does not take
            // yet: an operator registers such clients.
            _ => {
                return Err(metadata_error(format!(
                    "token_endpoint_auth_method `{method}` is not supported here \
                     (client_secret_basic, client_secret_post, none)"
                )))
            }
        },
    };
    let name = metadata
        .client_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("Registered client")
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    let scopes: Vec<String> = metadata
        .scope
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let known = store.scope_names(server_id).await?;
    for scope in &scopes {
        if !(OIDC_SCOPES.contains(&scope.as_str())
            || scope == OFFLINE_ACCESS
            || known.contains(scope))
        {
            return Err(metadata_error(format!(
                "scope `{scope}` is not one this server offers to registered clients"
            )));
        }
    }
    Ok(Checked {
        grant_types,
        response_types,
        auth_method,
        name,
        scopes,
    })
}

/// A client registered: its record, the secret (confidential clients) and the registration
/// access token, both shown only in this response.
pub struct Registered {
    pub record: ClientRecord,
    pub client_secret: Option<Secret>,
    pub registration_access_token: Secret,
    pub response_types: Vec<String>,
}

/// RFC 7591 §3.1: register a client on `server_id`.
pub async fn register(
    store: &Store,
    server_id: &str,
    metadata: &ClientMetadata,
    actor: &Actor,
    now: UnixTime,
) -> Result<Registered, RegistrationRefused> {
    if server_id == ADMIN_SERVER {
        return Err(metadata_error(
            "the admin server does not take registrations",
        ));
    }
    let checked = check(store, server_id, metadata).await?;
    let public = checked.auth_method == ClientAuthMethod::None;
    let request = ClientRequest {
        server_id: server_id.to_string(),
        name: checked.name,
        grant_types: checked.grant_types,
        redirect_uris: metadata.redirect_uris.clone(),
        post_logout_redirect_uris: metadata.post_logout_redirect_uris.clone(),
        scopes: checked.scopes,
        default_scopes: Vec::new(),
        public,
        first_party: false,
        auth_method: Some(checked.auth_method),
    };
    let (record, client_secret) =
        create_client(store, request, LogoutChanges::default(), actor, now).await?;
    let registration_access_token = random_secret();
    store
        .set_registration_access_token(
            &record.client.id,
            &hash_secret(registration_access_token.expose()),
            now,
        )
        .await?;
    Ok(Registered {
        record,
        client_secret,
        registration_access_token,
        response_types: checked.response_types,
    })
}

/// RFC 7592 §2.2: replace a registered client's metadata; the registration access token is
/// rotated (the new one returned). The authentication method cannot change.
pub async fn update(
    store: &Store,
    record: &ClientRecord,
    metadata: &ClientMetadata,
    actor: &Actor,
    now: UnixTime,
) -> Result<Registered, RegistrationRefused> {
    if metadata.client_id.as_deref() != Some(record.client.id.as_str()) {
        return Err(metadata_error(
            "client_id must be given and be the client's own (RFC 7592 §2.2)",
        ));
    }
    let checked = check(store, &record.client.server_id, metadata).await?;
    if checked.auth_method != record.client.auth_method {
        return Err(metadata_error(format!(
            "token_endpoint_auth_method cannot change (it is {})",
            record.client.auth_method.as_str()
        )));
    }
    let changes = ClientChanges {
        name: Some(checked.name),
        grant_types: Some(checked.grant_types),
        redirect_uris: Some(metadata.redirect_uris.clone()),
        post_logout_redirect_uris: Some(metadata.post_logout_redirect_uris.clone()),
        scopes: Some(checked.scopes),
        default_scopes: Some(Vec::new()),
        ..ClientChanges::default()
    };
    let record = change_client(
        store,
        &record.client.id,
        changes,
        None,
        LogoutChanges::default(),
        actor,
        now,
    )
    .await?;
    let registration_access_token = random_secret();
    store
        .set_registration_access_token(
            &record.client.id,
            &hash_secret(registration_access_token.expose()),
            now,
        )
        .await?;
    Ok(Registered {
        record,
        client_secret: None,
        registration_access_token,
        response_types: checked.response_types,
    })
}

/// RFC 7592 §2.3: deregister (delete) the client.
pub async fn deregister(
    store: &Store,
    client_id: &str,
    actor: &Actor,
    now: UnixTime,
) -> Result<(), RegistrationRefused> {
    delete_client(store, client_id, actor, now).await?;
    Ok(())
}

/// The metadata of a registered client, as RFC 7591 §3.2.1 returns it.
pub fn metadata_of(record: &ClientRecord) -> ClientMetadata {
    let c = &record.client;
    let mut response_types = Vec::new();
    if c.allows(GrantType::AuthorizationCode) {
        response_types.push("code".to_string());
    }
    if c.allows(GrantType::Implicit) {
        response_types.push("id_token token".to_string());
    }
    ClientMetadata {
        redirect_uris: c.redirect_uris.clone(),
        token_endpoint_auth_method: Some(c.auth_method.as_str().to_string()),
        grant_types: Some(
            c.grant_types
                .iter()
                .map(|g| g.as_str().to_string())
                .collect(),
        ),
        response_types: Some(response_types),
        client_name: Some(c.name.clone()),
        scope: Some(c.scopes.to_string()),
        post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
        client_id: None,
    }
}

/// `server update --registration`: who may register clients at the server; audited.
pub async fn set_policy(
    store: &Store,
    server_id: &str,
    policy: RegistrationPolicy,
    actor: &Actor,
    now: UnixTime,
) -> Result<(), RegistrationError> {
    if server_id == ADMIN_SERVER && policy != RegistrationPolicy::Closed {
        return Err(RegistrationError::Invalid(
            "the admin server's clients are made by operators only: its registration stays closed"
                .into(),
        ));
    }
    if store.server(server_id).await?.is_none() {
        return Err(RegistrationError::NotFound(format!(
            "no authorization server `{server_id}`"
        )));
    }
    store
        .set_registration_policy(server_id, policy, now)
        .await?;
    let event = Event::new(Kind::ServerUpdated, now)
        .server(server_id)
        .actor(actor.label())
        .subject(server_id)
        .detail("registration", policy.as_str());
    audit::write(store, event).await;
    Ok(())
}

/// `registration-token create`: an initial access token for `server_id`, valid for `ttl`
/// seconds and `uses` registrations (None: any number). The token is returned this once and
/// stored only as its hash.
pub async fn create_initial_token(
    store: &Store,
    server_id: &str,
    ttl: i64,
    uses: Option<i64>,
    actor: &Actor,
    now: UnixTime,
) -> Result<(RegistrationToken, Secret), RegistrationError> {
    if store.server(server_id).await?.is_none() {
        return Err(RegistrationError::NotFound(format!(
            "no authorization server `{server_id}`"
        )));
    }
    if server_id == ADMIN_SERVER {
        return Err(RegistrationError::Invalid(
            "the admin server does not take registrations".into(),
        ));
    }
    if uses.is_some_and(|n| n < 1) {
        return Err(RegistrationError::Invalid(
            "--uses must be at least 1".into(),
        ));
    }
    let secret = random_secret();
    let token = RegistrationToken {
        id: random_id(16),
        server_id: server_id.to_string(),
        expires_at: now.saturating_add(ttl),
        uses_left: uses,
        created_at: now,
    };
    store
        .insert_registration_token(&token, &hash_secret(secret.expose()))
        .await?;
    let event = Event::new(Kind::RegistrationTokenCreated, now)
        .server(server_id)
        .actor(actor.label())
        .subject(token.id.as_str())
        .detail("expires_at", token.expires_at)
        .detail("uses", uses);
    audit::write(store, event).await;
    Ok((token, secret))
}

/// `registration-token revoke`: false if there was no such token.
pub async fn revoke_initial_token(
    store: &Store,
    id: &str,
    actor: &Actor,
    now: UnixTime,
) -> Result<bool, RegistrationError> {
    let revoked = store.delete_registration_token(id).await?;
    if revoked {
        let event = Event::new(Kind::RegistrationTokenRevoked, now)
            .actor(actor.label())
            .subject(id);
        audit::write(store, event).await;
    }
    Ok(revoked)
}
