//! Clients: the rules for registering and changing one (grant types, redirect URIs, scopes,
//! authentication method), shared by the CLI and the tests.

use super::logout::{check_logout_changes, update_client_logout, LogoutChanges};
use super::Actor;
use crate::audit::{self, Event, Kind};
use crate::clock::UnixTime;
use crate::protocol::{ClientAuthMethod, GrantType, ScopeSet};
use crate::security::{hash_secret, random_id, random_secret, Secret};
use crate::store::{Client, ClientLogout, NewClient, Store};

/// What an operator asks for.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    pub server_id: String,
    pub name: String,
    pub grant_types: Vec<GrantType>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub default_scopes: Vec<String>,
    pub public: bool,
    pub first_party: bool,
    /// Defaults to client_secret_basic (confidential) or none (public).
    pub auth_method: Option<ClientAuthMethod>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("{0}")]
    Invalid(String),
    /// The client (or user, group, …) named does not exist.
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

fn invalid(message: impl Into<String>) -> RegistrationError {
    RegistrationError::Invalid(message.into())
}

fn no_client(client_id: &str) -> RegistrationError {
    RegistrationError::NotFound(format!("no client `{client_id}`"))
}

/// A client with its single-logout settings: what `client show` prints and the management API
/// returns.
#[derive(Debug, Clone)]
pub struct ClientRecord {
    pub client: Client,
    pub logout: ClientLogout,
}

impl ClientRecord {
    pub async fn load(store: &Store, client_id: &str) -> Result<Option<Self>, RegistrationError> {
        let Some(client) = store.client(client_id).await? else {
            return Ok(None);
        };
        let logout = store.client_logout(&client.id).await?;
        Ok(Some(Self { client, logout }))
    }

    /// The client's JSON (never its secret or the secret's hash) with its logout settings.
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = self.client.to_json();
        if let Some(map) = out.as_object_mut() {
            let l = &self.logout;
            map.insert(
                "backchannel_logout_uri".into(),
                l.backchannel_logout_uri.clone().into(),
            );
            map.insert(
                "backchannel_logout_session_required".into(),
                l.backchannel_session_required.into(),
            );
            map.insert(
                "frontchannel_logout_uri".into(),
                l.frontchannel_logout_uri.clone().into(),
            );
            map.insert(
                "frontchannel_logout_session_required".into(),
                l.frontchannel_session_required.into(),
            );
        }
        out
    }
}

/// `client create`: register the client with its logout settings (all checked before anything
/// is stored) and audit it. The secret, if any, is returned this once.
pub async fn create_client(
    store: &Store,
    request: ClientRequest,
    logout: LogoutChanges,
    actor: &Actor,
    now: UnixTime,
) -> Result<(ClientRecord, Option<Secret>), RegistrationError> {
    check_logout_changes(&logout)?;
    let (client, secret) = register_client(store, request, now).await?;
    let logout = update_client_logout(store, &client.id, logout).await?;
    audit_client(store, Kind::ClientCreated, &client, actor, now).await;
    Ok((ClientRecord { client, logout }, secret))
}

/// `client update`: change the registration, its app-assignment requirement and its logout
/// settings under the rules of `create`, and audit it.
pub async fn change_client(
    store: &Store,
    client_id: &str,
    changes: ClientChanges,
    assignment_required: Option<bool>,
    logout: LogoutChanges,
    actor: &Actor,
    now: UnixTime,
) -> Result<ClientRecord, RegistrationError> {
    check_logout_changes(&logout)?;
    let mut client = update_client(store, client_id, changes, now).await?;
    if let Some(required) = assignment_required {
        store
            .set_client_assignment_required(&client.id, required, now)
            .await?;
        client.assignment_required = required;
    }
    let logout = update_client_logout(store, &client.id, logout).await?;
    audit_client(store, Kind::ClientUpdated, &client, actor, now).await;
    Ok(ClientRecord { client, logout })
}

/// `client rotate-secret`, audited; the new secret is returned this once.
pub async fn rotate_secret(
    store: &Store,
    client_id: &str,
    actor: &Actor,
    now: UnixTime,
) -> Result<(ClientRecord, Secret), RegistrationError> {
    let (client, secret) = rotate_client_secret(store, client_id, now).await?;
    audit_client(store, Kind::ClientSecretRotated, &client, actor, now).await;
    let logout = store.client_logout(&client.id).await?;
    Ok((ClientRecord { client, logout }, secret))
}

/// `client delete`, with its grants, codes and refresh tokens; audited. False if there was no
/// such client.
pub async fn delete_client(
    store: &Store,
    client_id: &str,
    actor: &Actor,
    now: UnixTime,
) -> Result<bool, RegistrationError> {
    let server_id = store.client(client_id).await?.map(|c| c.server_id);
    let deleted = store.delete_client(client_id).await?;
    if deleted {
        let mut event = Event::new(Kind::ClientDeleted, now)
            .actor(actor.label())
            .subject(client_id);
        if let Some(server_id) = &server_id {
            event = event.server(server_id);
        }
        audit::write(store, event).await;
    }
    Ok(deleted)
}

/// A client change, in the audit log: which client, never its secret.
async fn audit_client(store: &Store, kind: Kind, client: &Client, actor: &Actor, now: UnixTime) {
    let event = Event::new(kind, now)
        .server(&client.server_id)
        .actor(actor.label())
        .subject(client.id.as_str());
    audit::write(store, event).await;
}

/// Validate and store a client. The secret (confidential clients only) is returned once and
/// stored only as its SHA-256 hash.
pub async fn register_client(
    store: &Store,
    request: ClientRequest,
    now: UnixTime,
) -> Result<(Client, Option<Secret>), RegistrationError> {
    if store.server(&request.server_id).await?.is_none() {
        return Err(invalid(format!(
            "no authorization server `{}`",
            request.server_id
        )));
    }
    let auth_method = match (request.public, request.auth_method) {
        (true, None | Some(ClientAuthMethod::None)) => ClientAuthMethod::None,
        (true, Some(m)) => {
            return Err(invalid(format!("a public client cannot use {m}")));
        }
        (false, None) => ClientAuthMethod::ClientSecretBasic,
        (false, Some(ClientAuthMethod::None)) => {
            return Err(invalid(
                "auth method `none` is for public clients (--public)",
            ));
        }
        (false, Some(m)) => m,
    };
    let scopes = ScopeSet::from_tokens(&request.scopes).map_err(|e| invalid(e.to_string()))?;
    let default_scopes =
        ScopeSet::from_tokens(&request.default_scopes).map_err(|e| invalid(e.to_string()))?;
    check_rules(&Rules {
        public: request.public,
        name: &request.name,
        grant_types: &request.grant_types,
        redirect_uris: &request.redirect_uris,
        post_logout_redirect_uris: &request.post_logout_redirect_uris,
        scopes: &scopes,
        default_scopes: &default_scopes,
    })?;
    // A public client has no secret, and a private_key_jwt client authenticates with its key.
    let secret = matches!(
        auth_method,
        ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost
    )
    .then(random_secret);
    let new = NewClient {
        id: random_id(20),
        server_id: request.server_id,
        name: request.name.trim().to_string(),
        secret_hash: secret.as_ref().map(|s| hash_secret(s.expose())),
        auth_method,
        first_party: request.first_party,
        grant_types: dedup(request.grant_types),
        redirect_uris: request.redirect_uris,
        post_logout_redirect_uris: request.post_logout_redirect_uris,
        scopes,
        default_scopes,
    };
    store
        .ensure_scopes(&new.server_id, &new.scopes, now)
        .await?;
    let client = store.insert_client(&new, now).await?;
    Ok((client, secret))
}

/// What `client update` changes; `None` leaves a value as it is. Lists replace the stored
/// list; for a lifetime, `Some(None)` clears the override back to the server's policy.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub grant_types: Option<Vec<GrantType>>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub default_scopes: Option<Vec<String>>,
    pub first_party: Option<bool>,
    pub access_token_ttl: Option<Option<i64>>,
    pub id_token_ttl: Option<Option<i64>>,
    pub refresh_token_ttl: Option<Option<i64>>,
    /// RFC 8693: the audiences it may exchange tokens for (replaces them; empty: none).
    pub token_exchange_audiences: Option<Vec<String>>,
}

/// Change a client under the rules it was registered with. Tokens already issued keep what
/// they carry until they expire; every new request is decided by the new registration.
pub async fn update_client(
    store: &Store,
    client_id: &str,
    changes: ClientChanges,
    now: UnixTime,
) -> Result<Client, RegistrationError> {
    let mut client = store
        .client(client_id)
        .await?
        .ok_or_else(|| no_client(client_id))?;
    let parse =
        |tokens: &[String]| ScopeSet::from_tokens(tokens).map_err(|e| invalid(e.to_string()));
    if let Some(name) = changes.name {
        client.name = name.trim().to_string();
    }
    if let Some(grants) = changes.grant_types {
        client.grant_types = dedup(grants);
    }
    if let Some(uris) = changes.redirect_uris {
        client.redirect_uris = uris;
    }
    if let Some(uris) = changes.post_logout_redirect_uris {
        client.post_logout_redirect_uris = uris;
    }
    if let Some(scopes) = &changes.scopes {
        client.scopes = parse(scopes)?;
    }
    if let Some(scopes) = &changes.default_scopes {
        client.default_scopes = parse(scopes)?;
    }
    if let Some(first_party) = changes.first_party {
        client.first_party = first_party;
    }
    for (flag, ttl) in [
        ("access-token-ttl", changes.access_token_ttl),
        ("id-token-ttl", changes.id_token_ttl),
        ("refresh-token-ttl", changes.refresh_token_ttl),
    ] {
        if let Some(Some(ttl)) = ttl {
            if !(1..=super::servers::MAX_TTL).contains(&ttl) {
                return Err(invalid(format!("--{flag} must be 1s to ten years")));
            }
        }
    }
    if let Some(ttl) = changes.access_token_ttl {
        client.access_token_ttl = ttl;
    }
    if let Some(ttl) = changes.id_token_ttl {
        client.id_token_ttl = ttl;
    }
    if let Some(ttl) = changes.refresh_token_ttl {
        client.refresh_token_ttl = ttl;
    }
    if let Some(mut audiences) = changes.token_exchange_audiences {
        for audience in &audiences {
            validate_audience(audience)?;
        }
        audiences.sort();
        audiences.dedup();
        client.token_exchange_audiences = audiences;
    }
    if !client.token_exchange_audiences.is_empty() && client.is_public() {
        return Err(invalid(
            "a public client cannot exchange tokens (RFC 8693 needs client authentication)",
        ));
    }
    check_rules(&Rules {
        public: client.is_public(),
        name: &client.name,
        grant_types: &client.grant_types,
        redirect_uris: &client.redirect_uris,
        post_logout_redirect_uris: &client.post_logout_redirect_uris,
        scopes: &client.scopes,
        default_scopes: &client.default_scopes,
    })?;
    store
        .ensure_scopes(&client.server_id, &client.scopes, now)
        .await?;
    Ok(store.update_client(&client, now).await?)
}

/// Give a confidential client a new secret, returned once and stored only as its hash. The old
/// one stops working at once here and, on other replicas, at their next cache check; tokens
/// already issued stay valid until they expire (revoke them apart if the secret leaked).
pub async fn rotate_client_secret(
    store: &Store,
    client_id: &str,
    now: UnixTime,
) -> Result<(Client, Secret), RegistrationError> {
    let client = store
        .client(client_id)
        .await?
        .ok_or_else(|| no_client(client_id))?;
    if client.is_public() {
        return Err(invalid(format!(
            "client `{client_id}` is public: it has no secret to rotate"
        )));
    }
    let secret = random_secret();
    if !store
        .set_client_secret(client_id, &hash_secret(secret.expose()), now)
        .await?
    {
        // Deleted (or its secret removed) between the read and the write.
        return Err(no_client(client_id));
    }
    let client = store
        .client(client_id)
        .await?
        .ok_or_else(|| no_client(client_id))?;
    Ok((client, secret))
}

/// What every registration must satisfy, at creation and after every update.
struct Rules<'a> {
    public: bool,
    name: &'a str,
    grant_types: &'a [GrantType],
    redirect_uris: &'a [String],
    post_logout_redirect_uris: &'a [String],
    scopes: &'a ScopeSet,
    default_scopes: &'a ScopeSet,
}

fn check_rules(r: &Rules<'_>) -> Result<(), RegistrationError> {
    if r.name.trim().is_empty() {
        return Err(invalid("--name must not be empty"));
    }
    if r.grant_types.is_empty() {
        return Err(invalid("give at least one --grant-type"));
    }
    if r.public {
        if let Some(g) = r
            .grant_types
            .iter()
            .find(|g| g.requires_confidential_client())
        {
            return Err(invalid(format!(
                "a public client cannot use the {g} grant (it needs a client secret)"
            )));
        }
    }
    let redirecting = r
        .grant_types
        .iter()
        .any(|g| matches!(g, GrantType::AuthorizationCode | GrantType::Implicit));
    if redirecting && r.redirect_uris.is_empty() {
        return Err(invalid(
            "the authorization_code and implicit grants need at least one --redirect-uri",
        ));
    }
    for uri in r.redirect_uris.iter().chain(r.post_logout_redirect_uris) {
        validate_redirect_uri(uri)?;
    }
    if !r.default_scopes.is_subset(r.scopes) {
        return Err(invalid("every --default-scope must also be a --scope"));
    }
    Ok(())
}

/// A new client id: 120 random bits, base64url, never starting with `-` so that
/// `portcullis client show ID` cannot mistake it for a flag.
fn dedup(mut grants: Vec<GrantType>) -> Vec<GrantType> {
    grants.sort();
    grants.dedup();
    grants
}

/// RFC 8693 §2.1: an audience is a logical name or a URI; stored space-separated, so no
/// whitespace.
fn validate_audience(audience: &str) -> Result<(), RegistrationError> {
    if audience.is_empty() || audience.len() > 512 || audience.chars().any(char::is_whitespace) {
        return Err(invalid(format!(
            "token exchange audience `{audience}` must be 1-512 characters without spaces"
        )));
    }
    Ok(())
}

/// RFC 6749 §3.1.2: an absolute URI without a fragment. Plain http only for loopback
/// (RFC 8252 §7.3); private-use schemes (`com.example.app:/cb`) for native apps.
pub fn validate_redirect_uri(uri: &str) -> Result<(), RegistrationError> {
    let parsed = url::Url::parse(uri).map_err(|e| invalid(format!("redirect URI `{uri}`: {e}")))?;
    if parsed.fragment().is_some() {
        return Err(invalid(format!(
            "redirect URI `{uri}` must not have a fragment"
        )));
    }
    if parsed.scheme() == "http" {
        let loopback = match parsed.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if !loopback {
            return Err(invalid(format!(
                "redirect URI `{uri}`: plain http is allowed only for loopback hosts"
            )));
        }
    }
    if parsed.scheme() == "javascript" || parsed.scheme() == "data" {
        return Err(invalid(format!("redirect URI `{uri}`: scheme not allowed")));
    }
    Ok(())
}
